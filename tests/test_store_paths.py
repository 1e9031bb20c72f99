"""Tests for clevermail.store.paths: untrusted names never become paths outside the root."""

import os

import pytest

from clevermail.store import paths
from clevermail.store.errors import InvalidName
from clevermail.store.mailstore import MailStore


# -- components ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a", "alice", "jösé", "~tilde", "a.b", "%", "x" * 255, "ü" * 127])
def test_check_component_accepts(name):
    assert paths.check_component(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/", "/etc", "a\\b", "a\x00b", "\x00", "a\nb",
                                  "a\rb", "\x1b[31m", "a\x7fb", "x" * 256, "ü" * 128, None, 5, b"bytes"])
def test_check_component_rejects(name):
    with pytest.raises(InvalidName):
        paths.check_component(name)


def test_safe_join_stays_under_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    assert paths.safe_join(str(root), "a", "b") == os.path.join(os.path.realpath(root), "a", "b")
    for bad in (("..",), ("a", ".."), ("../x",), ("/etc",), ("a/../../x",)):
        with pytest.raises(InvalidName):
            paths.safe_join(str(root), *bad)


def test_safe_join_refuses_symlink_escape(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "link")
    with pytest.raises(InvalidName, match="escapes"):
        paths.safe_join(str(root), "link")
    with pytest.raises(InvalidName, match="escapes"):
        paths.safe_join(str(root), "link", "file")


# -- users ---------------------------------------------------------------------------------
def test_user_dir(tmp_path):
    root = os.path.realpath(tmp_path)
    assert paths.user_dir(str(tmp_path), "Alice@Example.TEST") == os.path.join(root, "example.test", "alice")


@pytest.mark.parametrize("address", ["alice", "@example.test", "alice@", "..@example.test", "alice@..",
                                     "a/b@example.test", "alice@ex/ample", "a\x00@example.test", ".@x",
                                     "alice@.", "x" * 300 + "@example.test"])
def test_user_dir_rejects(tmp_path, address):
    with pytest.raises(InvalidName):
        paths.user_dir(str(tmp_path), address)


# -- folders ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name, dirname", [
    ("INBOX", ""),
    ("inbox", ""),
    ("Inbox", ""),
    ("Sent", ".Sent"),
    ("Archive/2024", ".Archive.2024"),
    ("a.b", ".a%2Eb"),
    ("a.b/c.d", ".a%2Eb.c%2Ed"),
    ("100%", ".100%25"),
    ("%2E", ".%252E"),
    ("Entwürfe", ".Entwürfe"),
    ("日本語/メール", ".日本語.メール"),
    ("INBOX/child", ".INBOX.child"),
    ("inbox/child", ".INBOX.child"),
    ("a~b", ".a~b"),
    ("with space", ".with space"),
])
def test_folder_dirname(name, dirname):
    assert paths.folder_dirname(name) == dirname


@pytest.mark.parametrize("name", ["Sent", "Archive/2024", "a.b", "a.b/c.d", "100%", "%2E", "%25", "%%..%%",
                                  "Entwürfe", "日本語/メール", "INBOX/child", "a~b", "with space", ". dot",
                                  "x.", "emoji 📬/sub", "a%2Eb"])
def test_folder_name_round_trip(name):
    dirname = paths.folder_dirname(name)
    assert paths.folder_from_dirname(dirname) == name
    paths.check_component(dirname)


@pytest.mark.parametrize("name", ["", "..", ".", "a/../b", "../x", "a/..", "/", "/abs", "a//b", "a/", "a\x00b",
                                  "a\nb", "a\x01", "a\\b", "~user", "a/~b", "x" * 256, "a/" * 16 + "a", None])
def test_folder_names_rejected(name):
    with pytest.raises(InvalidName):
        paths.folder_dirname(name)


def test_folder_dirname_total_length_checked():
    with pytest.raises(InvalidName):
        paths.folder_dirname("/".join(["x" * 100] * 3))


def test_folder_depth_limit_allows_sixteen():
    name = "/".join(["l"] * 16)
    assert paths.folder_dirname(name) == "." + ".".join(["l"] * 16)


@pytest.mark.parametrize("dirname", ["", ".", "..", "cur", "tmp", "subscriptions", "..x", ".a..b", ".a.", "x.y"])
def test_folder_from_dirname_non_folders(dirname):
    assert paths.folder_from_dirname(dirname) is None


def test_folder_path(tmp_path):
    root = str(tmp_path)
    assert paths.folder_path(root, "INBOX") == os.path.realpath(root)
    assert paths.folder_path(root, "a/b") == os.path.join(os.path.realpath(root), ".a.b")


# -- the store refuses to create or read outside its root -----------------------------------------
@pytest.mark.parametrize("name", ["..", "../../etc", "/etc/passwd", "a\x00", "~root", "a/../../..", "x" * 300])
def test_store_never_escapes(tmp_path, name):
    store = MailStore(str(tmp_path / "data"))
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(InvalidName):
        store.create_folder("alice@example.test", name)
    with pytest.raises(InvalidName):
        store.open_folder("alice@example.test", name)
    with pytest.raises(InvalidName):
        store.delete_folder("alice@example.test", name)
    with pytest.raises(InvalidName):
        store.rename_folder("alice@example.test", "INBOX", name)
    assert store.folder_exists("alice@example.test", name) is False
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize("address", ["../x@example.test", "x@../..", "/@x", "a@b/c", "x\x00@example.test"])
def test_store_rejects_bad_users(tmp_path, address):
    store = MailStore(str(tmp_path / "data"))
    with pytest.raises(InvalidName):
        store.deliver_local("", [address], b"Subject: x\r\n\r\nx\r\n")
    with pytest.raises(InvalidName):
        store.ensure_user(address)
    files = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs]
    assert files == []


def test_a_root_is_resolved_once(tmp_path, monkeypatch):
    """INBOX's path and every other folder's come from the user root resolved once
    (os.path.realpath is an lstat per level: it was most of APPEND's system calls)."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    root = str(tmp_path / "link")
    calls = []
    realpath = os.path.realpath
    monkeypatch.setattr(paths.os.path, "realpath", lambda p: calls.append(p) or realpath(p))
    for _ in range(3):
        assert paths.folder_path(root, "INBOX") == str(real)
        assert paths.folder_path(root, "Sent") == os.path.join(str(real), ".Sent")
    assert calls == [root]
