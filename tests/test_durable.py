"""Tests for clevermail.durable: exclusive create, atomic replace, directory fsync."""

import os
import threading

import pytest

from clevermail import durable


def test_write_exclusive_creates_and_refuses_existing(tmp_path):
    path = tmp_path / "f"
    durable.write_exclusive(str(path), b"hello")
    assert path.read_bytes() == b"hello"
    assert (path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(FileExistsError):
        durable.write_exclusive(str(path), b"other")
    assert path.read_bytes() == b"hello"


def test_write_exclusive_failure_leaves_no_file(tmp_path, monkeypatch):
    path = tmp_path / "f"

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(durable.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        durable.write_exclusive(str(path), b"x" * 100)
    assert not path.exists()


def test_atomic_write_replaces_and_fsyncs_file_and_directory(tmp_path, monkeypatch):
    path = tmp_path / "data.txt"
    path.write_text("old")
    synced = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        real_fsync(fd)
    monkeypatch.setattr(durable.os, "fsync", spy)
    durable.atomic_write(str(path), "new text")
    assert path.read_text() == "new text"
    assert str(tmp_path) in synced                      # the directory entry is durable
    assert any(s.startswith(str(path) + ".") for s in synced)   # the data, before rename
    assert sorted(os.listdir(tmp_path)) == ["data.txt"]  # no temp left


def test_atomic_write_without_durable_makes_no_fsync(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(durable.os, "fsync", lambda fd: calls.append(fd))
    durable.atomic_write(str(tmp_path / "cache"), b"x", durable=False)
    assert calls == []
    assert (tmp_path / "cache").read_bytes() == b"x"


def test_atomic_write_failed_replace_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(5, "I/O error")
    monkeypatch.setattr(durable.os, "replace", broken_replace)
    with pytest.raises(OSError):
        durable.atomic_write(str(path), b"new")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def test_concurrent_atomic_writes_never_mix(tmp_path):
    path = str(tmp_path / "f")
    payloads = [bytes([65 + i]) * 50_000 for i in range(8)]
    errors = []

    def writer(data):
        try:
            for _ in range(20):
                durable.atomic_write(path, data)
        except Exception as exc:   # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert open(path, "rb").read() in payloads
    assert os.listdir(tmp_path) == ["f"]


def test_unlink_quiet(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    durable.unlink_quiet(str(path))
    durable.unlink_quiet(str(path))
    assert not path.exists()
