"""Tests for clevermail.store.maildir: names, line endings, durable writes, tmp cleaning."""

import os
import time

import pytest

from clevermail.store import maildir


def test_to_disk_and_back():
    wire = b"Subject: x\r\n\r\nline\r\n\r\nend\r\n"
    disk = maildir.to_disk(wire)
    assert disk == b"Subject: x\n\nline\n\nend\n"
    assert maildir.to_wire(disk) == wire


def test_new_base_is_unique_and_parses():
    bases = {maildir.new_base(10, 12) for _ in range(2000)}
    assert len(bases) == 2000
    base = maildir.new_base(123, 130, date=1_700_000_000)
    assert base.startswith("1700000000.M")
    assert f"P{os.getpid()}Q" in base
    assert ":" not in base and "/" not in base
    assert maildir.parse_name(base) == (base, "", 123, 130, 1_700_000_000)
    assert maildir.parse_name(base + ":2,FS") == (base, "FS", 123, 130, 1_700_000_000)


def test_new_base_default_date_is_now():
    before = int(time.time())
    date = maildir.parse_name(maildir.new_base(1, 1))[4]
    assert before <= date <= int(time.time())


def test_host_part_is_escaped():
    assert "/" not in maildir._HOST and ":" not in maildir._HOST and "," not in maildir._HOST


@pytest.mark.parametrize("name, expected", [
    ("1234.M1P2.host", ("1234.M1P2.host", "", None, None, 1234)),
    ("1234.M1P2.host:2,", ("1234.M1P2.host", "", None, None, 1234)),
    ("1234.x,S=99:2,RS", ("1234.x,S=99", "RS", 99, None, 1234)),
    ("1234.x,W=7,S=5:2,a", ("1234.x,W=7,S=5", "a", 5, 7, 1234)),
    ("mutt-file", ("mutt-file", "", None, None, None)),
    ("123.x,S=abc", ("123.x,S=abc", "", None, None, 123)),
])
def test_parse_name_foreign_forms(name, expected):
    assert maildir.parse_name(name) == expected


def test_make_maildir_idempotent(tmp_path):
    path = tmp_path / "box"
    maildir.make_maildir(str(path))
    maildir.make_maildir(str(path))
    assert sorted(os.listdir(path)) == ["cur", "new", "tmp"]
    assert oct(os.stat(path / "new").st_mode & 0o777) == oct(0o700)


def test_write_and_commit_durably_in_order(tmp_path, monkeypatch):
    box = str(tmp_path / "box")
    maildir.make_maildir(box)
    events = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def link(src, dst, **kw):
        events.append(("link", dst))
        return real_link(src, dst, **kw)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    base = maildir.new_base(5, 7)
    tmp = maildir.write_tmp(box, b"a\nb\nc", base)
    target = maildir.commit_tmp(box, tmp, base)
    real = os.path.realpath(box)
    assert events == [("fsync", os.path.join(real, "tmp", base)),
                      ("link", os.path.join(box, "new", base)),
                      ("fsync", os.path.join(real, "new"))]
    assert target == os.path.join(box, "new", base)
    assert open(target, "rb").read() == b"a\nb\nc"
    assert os.listdir(os.path.join(box, "tmp")) == []


def test_commit_never_overwrites(tmp_path):
    box = str(tmp_path / "box")
    maildir.make_maildir(box)
    base = maildir.new_base(1, 1)
    with open(os.path.join(box, "cur", base + ":2,S"), "wb") as f:
        f.write(b"old")
    tmp = maildir.write_tmp(box, b"new", base)
    with pytest.raises(FileExistsError):
        maildir.commit_tmp(box, tmp, base + ":2,S", sub="cur")
    assert open(os.path.join(box, "cur", base + ":2,S"), "rb").read() == b"old"


def test_write_tmp_refuses_existing_and_cleans_on_failure(tmp_path, monkeypatch):
    box = str(tmp_path / "box")
    maildir.make_maildir(box)
    base = maildir.new_base(1, 1)
    maildir.write_tmp(box, b"x", base)
    with pytest.raises(FileExistsError):
        maildir.write_tmp(box, b"y", base)

    def broken_fsync(fd):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    other = maildir.new_base(1, 1)
    with pytest.raises(OSError):
        maildir.write_tmp(box, b"z", other)
    assert os.listdir(os.path.join(box, "tmp")) == [base]


def test_write_tmp_large(tmp_path):
    box = str(tmp_path / "box")
    maildir.make_maildir(box)
    data = os.urandom(3 * 1024 * 1024)
    tmp = maildir.write_tmp(box, data, maildir.new_base(len(data), len(data)))
    assert open(tmp, "rb").read() == data


def test_clean_tmp_removes_only_stale(tmp_path):
    box = str(tmp_path / "box")
    maildir.make_maildir(box)
    old = os.path.join(box, "tmp", "old")
    fresh = os.path.join(box, "tmp", "fresh")
    for p in (old, fresh):
        with open(p, "w") as f:
            f.write("x")
    past = time.time() - maildir.STALE_TMP_SECONDS - 60
    os.utime(old, (past, past))
    assert maildir.clean_tmp(box) == 1
    assert os.listdir(os.path.join(box, "tmp")) == ["fresh"]
    assert maildir.clean_tmp(str(tmp_path / "missing")) == 0


def test_names_sort_in_arrival_order_within_a_second(monkeypatch):
    clock = iter([1000.05, 1000.5, 1000.999999, 1001.000001])
    monkeypatch.setattr(maildir.time, "time", lambda: next(clock))
    bases = [maildir.new_base(1, 1) for _ in range(4)]
    assert sorted(bases) == bases


@pytest.mark.parametrize("wire", [
    b"",
    b"Subject: x\r\n\r\nbody\r\n",
    b"a\r\n\r\n.\r\n..\r\nlast line without end",
    b"x" * 5000 + b"\r\n" + b"y\r\n" * 1000,
])
def test_to_disk_clean_is_the_same_as_the_general_form(wire):
    """The clean shortcut (delete every CR) must give byte for byte what the general
    CRLF -> LF conversion gives, for every message whose only CRs start CRLFs."""
    from clevermail.store.maildir import to_disk, to_wire
    assert to_disk(wire, clean=True) == to_disk(wire)
    # what prepare_local(clean=True) records as W= without counting
    assert len(to_wire(to_disk(wire, clean=True))) == len(wire)


def _reference_to_disk(wire):
    """CRLF -> LF, anything else kept: the definition to_disk must meet."""
    return wire.replace(b"\r\n", b"\n")


def test_to_disk_is_crlf_to_lf_on_every_short_input():
    """Every string of up to 8 bytes over CR, LF and a letter (lone CRs at the start,
    in the middle and at the end, CR CR LF, LF CR, bare LFs): exactly CRLF -> LF."""
    import itertools
    for n in range(9):
        for chars in itertools.product((b"\r", b"\n", b"a"), repeat=n):
            wire = b"".join(chars)
            assert maildir.to_disk(wire) == _reference_to_disk(wire), wire


def test_to_disk_is_crlf_to_lf_on_long_hostile_inputs():
    """Long messages, clean and with one stray CR or LF planted anywhere (the fast
    path's scan must find a lone CR however deep it is)."""
    import random
    rng = random.Random(18)
    line = b"Subject: a line of text with \t and \x00 and \xff in it\r\n"
    clean = b"Header: x\r\n\r\n" + line * 2000
    assert maildir.to_disk(clean) == _reference_to_disk(clean)
    for _ in range(300):
        at = rng.randrange(len(clean) + 1)
        stray = rng.choice((b"\r", b"\n", b"\r\r", b"\n\r", b"\r\r\n"))
        wire = clean[:at] + stray + clean[at:]
        assert maildir.to_disk(wire) == _reference_to_disk(wire), (at, stray)
    for _ in range(300):
        wire = bytes(rng.choice(b"\r\na.") for _ in range(rng.randrange(1, 200)))
        assert maildir.to_disk(wire) == _reference_to_disk(wire), wire
    assert maildir.to_disk(bytearray(b"a\r\nb\r")) == b"a\nb\r"
