"""sieve/scripts.py: per-user script storage (what ManageSieve and the CLI manage)."""

import os
import subprocess
import sys

import pytest

from clevermail.sieve.errors import (ActiveScript, BadScriptName, NoSuchScript, QuotaExceeded,
                                     ScriptExists)
from clevermail.sieve.scripts import SieveScripts, file_name, name_of

USER = "alice@example.test"


@pytest.fixture
def scripts(tmp_path):
    return SieveScripts.for_data_dir(str(tmp_path / "data"), max_scripts=3, max_size=100)


def test_put_get_list_activate(scripts, tmp_path):
    assert scripts.list(USER) == []
    assert scripts.active(USER) is None
    scripts.put(USER, "main", "keep;\n")
    scripts.put(USER, "other", "discard;\n")
    assert scripts.get(USER, "main") == "keep;\n"
    assert scripts.list(USER) == [("main", False), ("other", False)]
    scripts.activate(USER, "other")
    assert scripts.list(USER) == [("main", False), ("other", True)]
    assert scripts.active(USER) == ("other", "discard;\n")
    scripts.put(USER, "other", "stop;\n")             # replace keeps it active
    assert scripts.active(USER) == ("other", "stop;\n")
    scripts.activate(USER, None)
    assert scripts.active(USER) is None
    assert scripts.used_bytes(USER) == len("keep;\n") + len("stop;\n")
    # under the user's root, one file per script
    root = tmp_path / "data" / "mail" / "example.test" / "alice" / "sieve"
    assert sorted(os.listdir(root)) == ["main.sieve", "other.sieve"]


def test_delete_refuses_the_active_script(scripts):
    scripts.put(USER, "a", "keep;")
    scripts.activate(USER, "a")
    with pytest.raises(ActiveScript):
        scripts.delete(USER, "a")
    scripts.activate(USER, None)
    scripts.delete(USER, "a")
    assert scripts.list(USER) == []
    with pytest.raises(NoSuchScript):
        scripts.delete(USER, "a")
    with pytest.raises(NoSuchScript):
        scripts.get(USER, "a")
    with pytest.raises(NoSuchScript):
        scripts.activate(USER, "a")


def test_rename_keeps_the_active_mark_and_refuses_clashes(scripts):
    scripts.put(USER, "a", "keep;")
    scripts.put(USER, "b", "discard;")
    scripts.activate(USER, "a")
    with pytest.raises(ScriptExists):
        scripts.rename(USER, "a", "b")
    scripts.rename(USER, "a", "c")
    assert scripts.list(USER) == [("b", False), ("c", True)]
    assert scripts.active(USER) == ("c", "keep;")
    with pytest.raises(NoSuchScript):
        scripts.rename(USER, "zz", "y")


def test_limits(scripts):
    with pytest.raises(QuotaExceeded) as exc:
        scripts.put(USER, "big", "x" * 101)
    assert exc.value.code == "QUOTA/MAXSIZE"
    for name in "abc":
        scripts.put(USER, name, "keep;")
    scripts.put(USER, "a", "discard;")       # replacing is no new script
    with pytest.raises(QuotaExceeded) as exc:
        scripts.put(USER, "d", "keep;")
    assert exc.value.code == "QUOTA/MAXSCRIPTS"
    assert [n for n, _ in scripts.list(USER)] == ["a", "b", "c"]


@pytest.mark.parametrize("name", ["", "a\x00b", "tab\there", "x\x7f", "line\u2028sep", "n" * 129,
                                  "e\u0301"])
def test_bad_names(scripts, name):
    with pytest.raises(BadScriptName):
        scripts.put(USER, name, "keep;")
    assert scripts.list(USER) == []


@pytest.mark.parametrize("name", ["..", ".", "../../etc/passwd", "a/b", ".hidden", "100%",
                                  "Vacation (été)", "back\\slash", "active"])
def test_names_map_to_plain_files_and_back(scripts, tmp_path, name):
    scripts.put(USER, name, "keep;")
    assert scripts.list(USER) == [(name, False)]
    files = os.listdir(scripts.directory(USER))
    assert files == [file_name(name)]
    assert "/" not in files[0] and not files[0].startswith(".")
    assert name_of(files[0]) == name
    scripts.activate(USER, name)
    assert scripts.active(USER) == (name, "keep;")


def test_foreign_files_are_ignored(scripts):
    scripts.put(USER, "a", "keep;")
    directory = scripts.directory(USER)
    for junk in ("notes.txt", ".x.sieve", "a%zz.sieve", "x.y.sieve"):
        open(os.path.join(directory, junk), "w").close()
    assert scripts.list(USER) == [("a", False)]


def test_another_process_sees_the_same_state(scripts, tmp_path):
    scripts.put(USER, "a", "keep;")
    code = (f"from clevermail.sieve.scripts import SieveScripts\n"
            f"s = SieveScripts.for_data_dir({str(tmp_path / 'data')!r})\n"
            f"s.put({USER!r}, 'b', 'discard;')\n"
            f"s.activate({USER!r}, 'b')\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ)
    assert scripts.list(USER) == [("a", False), ("b", True)]
    assert scripts.active(USER) == ("b", "discard;")


def test_bad_user_is_a_name_error(scripts):
    with pytest.raises(BadScriptName):
        scripts.list("../x@example.test")
