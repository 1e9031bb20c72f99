"""Tests for clevermail.store.flags: the keyword map of one folder and its file."""

import os
import threading

from clevermail import durable
from clevermail.store import flags
from clevermail.store.flags import FlagMap


def test_new_keyword_is_saved_durably_with_its_directory(tmp_path, monkeypatch):
    """A keyword letter goes into file names right after it is defined: the map must
    survive a crash with its name (directory fsync), else the letter means nothing."""
    synced = []
    real = durable.fsync_dir
    monkeypatch.setattr(durable, "fsync_dir", lambda p: synced.append(p) or real(p))
    fm = FlagMap(str(tmp_path), threading.RLock())
    assert fm.letters_for(["Work", "\\Seen", "$Label1"]) == {"a", "b", "S"}
    assert synced == [str(tmp_path), str(tmp_path)]          # one save per new keyword
    assert (tmp_path / flags.KEYWORDS_NAME).read_text(encoding="utf-8") == "0 Work\n1 $Label1\n"
    assert sorted(os.listdir(tmp_path)) == [flags.KEYWORDS_NAME]
    assert FlagMap(str(tmp_path), threading.RLock()).keywords() == ["Work", "$Label1"]
    assert fm.letters_for(["work"]) == {"a"}
    assert len(synced) == 2                      # a known keyword writes nothing
