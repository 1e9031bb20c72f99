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


def test_two_processes_adding_keywords_at_once_never_share_a_letter(tmp_path, monkeypatch):
    """Two maps of one folder (two processes: [server] workers), each adding a name
    at the same moment: the second decides under the folder's file lock after the
    first wrote, so each name keeps its own letter (seen: a worker's $Label3 turned
    into the other's keyword, and imaptest saw it dropped from FLAGS)."""
    from clevermail.store.locks import FileLock

    path = str(tmp_path)
    first = FlagMap(path, threading.RLock(), FileLock(path))
    second = FlagMap(path, threading.RLock(), FileLock(path))
    assert first.keywords() == second.keywords() == []      # both read the empty map
    writing, go_on = threading.Event(), threading.Event()
    real = flags.atomic_write

    def held_write(target, text):
        if threading.current_thread().name == "first":
            writing.set()
            assert go_on.wait(30)
        real(target, text)
    monkeypatch.setattr(flags, "atomic_write", held_write)
    got = {}
    a = threading.Thread(target=lambda: got.update(first=first.letters_for(["$Label3"])), name="first")
    a.start()
    assert writing.wait(30)                  # the first is writing its name
    b = threading.Thread(target=lambda: got.update(second=second.letters_for(["$Label4"])), name="second")
    b.start()
    b.join(0.5)             # without the file lock it would be done by now, on letter a
    go_on.set()
    a.join(30)
    b.join(30)
    assert got == {"first": {"a"}, "second": {"b"}}
    assert FlagMap(path, threading.RLock()).keywords() == ["$Label3", "$Label4"]
    assert first.flag_names("a") == ("$Label3",) and first.flag_names("b") == ("$Label4",)
