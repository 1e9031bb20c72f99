"""Tests for clevermail.dkim.signature and clevermail.dkim.signer: signatures checked by
dkimpy's verifier in a separate process against a loopback DNS server holding the
published records (tests/dkim_verify.py), the signed and oversigned header set, which
messages are signed for which domain, the reports' domain, and reloading keys."""

import logging
import re
import shutil

import pytest

from clevermail.dkim import canon, signature
from clevermail.dkim.keys import KeyStore
from clevermail.dkim.signer import Signer
from dkim_verify import verify
from dns_server import DNSServer

NOW = 1796244000


@pytest.fixture(scope="module")
def master_keys(tmp_path_factory):
    """One pair for example.test and one for other.test, made once (RSA is slow to make)."""
    root = tmp_path_factory.mktemp("dkim-keys") / "dkim"
    store = KeyStore(str(root))
    store.generate("example.test", now=NOW)
    store.generate("other.test", now=NOW)
    return root


@pytest.fixture
def store(tmp_path, master_keys):
    shutil.copytree(master_keys, tmp_path / "dkim")
    return KeyStore(str(tmp_path / "dkim"))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def monotonic():
    return Clock()


@pytest.fixture
def signer(store, monotonic):
    return Signer(store, ["example.test", "other.test", "localhost"], report_domain="other.test",
                  monotonic=monotonic)


def published(store, *domains):
    """The zone: every selector's record of `domains`, as `dkim list` prints them."""
    return "\n".join(store.load(s).zone_line for d in domains for s in store.selectors(d))


@pytest.fixture
def dns(store):
    with DNSServer(published(store, "example.test", "other.test")) as server:
        yield server


MESSAGE = (b"Received: from somewhere\r\n"
           b"From: Alice <alice@example.test>\r\n"
           b"To: bob@there.test\r\n"
           b"Subject: a   subject\r\n\t folded\r\n"
           b"Date: Wed, 02 Dec 2026 10:00:00 +0000\r\n"
           b"Message-ID: <1@example.test>\r\n"
           b"X-Mailer: test\r\n"
           b"\r\n"
           b"Hello  \r\n\r\nBob.\r\n\r\n\r\n")


def sigs(data):
    return re.findall(rb"(?im)^dkim-signature:", data.split(b"\r\n\r\n", 1)[0])


def h_list(result):
    return re.sub(r"\s", "", result["h"]).split(":")


def test_both_algorithms_sign_and_an_outside_verifier_accepts_them(signer, dns):
    signed = signer.sign(MESSAGE)
    assert signed.endswith(MESSAGE)
    results = verify(signed, dns.port)
    assert [(r["d"], r["s"], r["a"], r["ok"]) for r in results] == [
        ("example.test", "202612r", "rsa-sha256", True),
        ("example.test", "202612e", "ed25519-sha256", True)]
    # every line of the new fields stays short (RFC 5322 2.1.1)
    head = signed[:len(signed) - len(MESSAGE)]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))


def test_the_rfc6376_set_is_signed_and_eight_fields_oversigned(signer, dns):
    [rsa_result, ed_result] = verify(signer.sign(MESSAGE), dns.port)
    names = h_list(rsa_result)
    assert names == h_list(ed_result)
    counts = {n: names.count(n) for n in set(names)}
    # present once, listed twice; absent, listed once (RFC 6376 5.4.2)
    assert counts == {"from": 2, "to": 2, "subject": 2, "date": 2, "message-id": 2,
                      "cc": 1, "mime-version": 1, "content-type": 1}
    assert "received" not in names and "x-mailer" not in names


@pytest.mark.parametrize("change,still_valid", [
    (lambda m: m.replace(b"X-Mailer: test\r\n", b"X-Mailer: other\r\n"), True),   # unsigned field
    (lambda m: m.replace(b"Hello  \r\n", b"Hello \t\r\n"), True),                    # relaxed body
    (lambda m: m.replace(b"Subject: a   subject", b"subject:  a subject"), True),    # relaxed header
    (lambda m: m.replace(b"\r\n\r\nHello", b"\r\nCc: eve@evil.test\r\n\r\nHello"), False),  # oversigned
    (lambda m: m.replace(b"\r\n\r\nHello", b"\r\nFrom: eve@evil.test\r\n\r\nHello"), False),
    (lambda m: m.replace(b"Bob.", b"Eve."), False),
])
def test_changes_in_transit(signer, dns, change, still_valid):
    results = verify(change(signer.sign(MESSAGE)), dns.port)
    assert [r["ok"] for r in results] == [still_valid, still_valid]


def test_a_foreign_from_is_not_signed(signer):
    data = MESSAGE.replace(b"alice@example.test", b"alice@elsewhere.test")
    assert signer.sign(data) == data


@pytest.mark.parametrize("data", [
    b"Subject: no from\r\n\r\nbody\r\n",
    b"From: a@example.test\r\nFrom: b@example.test\r\n\r\ntwo From fields\r\n",
    b"From a@example.test\r\nno header: section\r\nat all\r\n\r\nbody\r\n",
    b"\r\nonly a body, From: a@example.test\r\n",
    b"From: undisclosed-recipients:;\r\n\r\nbody\r\n",
])
def test_no_single_local_from_no_signature(signer, data):
    assert signer.sign(data) == data


def test_a_local_domain_without_keys_is_not_signed(signer):
    data = MESSAGE.replace(b"alice@example.test", b"alice@localhost")
    assert signer.sign(data) == data


def test_from_with_two_local_domains_gets_both(signer, dns):
    data = MESSAGE.replace(b"From: Alice <alice@example.test>",
                           b"From: Alice <alice@EXAMPLE.test>, \"Eve, O\" <eve@other.test>")
    results = verify(signer.sign(data), dns.port)
    assert [(r["d"], r["ok"]) for r in results] == [("example.test", True), ("example.test", True),
                                                   ("other.test", True), ("other.test", True)]


def test_an_empty_body_and_no_body(signer, dns):
    for data in (b"From: a@example.test\r\nSubject: x\r\n\r\n", b"From: a@example.test\r\nSubject: x\r\n"):
        assert [r["ok"] for r in verify(signer.sign(data), dns.port)] == [True, True]


def test_reports_are_signed_for_the_postmasters_domain(signer, store, dns):
    report = (b"From: Mail Delivery System <MAILER-DAEMON@mail.example.test>\r\n"
              b"To: <alice@example.test>\r\nSubject: Undelivered\r\n\r\nreport\r\n")
    results = verify(signer.sign_report(report), dns.port)
    assert [(r["d"], r["ok"]) for r in results] == [("other.test", True), ("other.test", True)]
    # no postmaster domain (or one without keys): the first local domain with keys
    fallback = Signer(store, ["localhost", "example.test"], report_domain="localhost")
    assert fallback.report_domain == "example.test"
    assert Signer(store, ["localhost"]).sign_report(report) == report


def test_keys_are_reloaded_when_a_new_pair_is_activated(signer, store, monotonic, caplog):
    before = signer.sign(MESSAGE)
    store.generate("example.test", base="rot", now=NOW)
    monotonic.now += 1.5
    assert signer.sign(MESSAGE).count(b"s=202612") == 2        # pending: not published yet
    store.activate("example.test", ["rotr", "rote"])
    assert signer.sign(MESSAGE).count(b"s=202612") == 2        # not looked at within the second
    monotonic.now += 1.5
    with caplog.at_level(logging.INFO, logger="clevermail.dkim"):
        after = signer.sign(MESSAGE)
    assert b"s=rotr;" in after and b"s=rote;" in after and b"s=202612" not in after
    assert b"s=202612r;" in before
    assert "example.test now signs with rotr, rote" in caplog.text
    with DNSServer(published(store, "example.test")) as server:
        assert [r["ok"] for r in verify(after, server.port)] == [True, True]


def test_a_failed_reload_keeps_the_keys_and_says_so_once(signer, store, monotonic, caplog):
    [rsa_key, ed_key] = store.generate("example.test", base="rot", now=NOW)
    store.activate("example.test", ["rotr", "rote"])
    shutil.rmtree(store.domain_dir("other.test"))       # a domain losing its keys entirely
    import os
    os.unlink(ed_key.selector.path)
    with caplog.at_level(logging.ERROR, logger="clevermail.dkim"):
        for _ in range(3):
            monotonic.now += 1.5
            data = signer.sign(MESSAGE)
            assert data.count(b"s=202612") == 2                  # the old, published keys
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "still signing with 202612r, 202612e" in errors[0].getMessage()
    assert ed_key.selector.path in errors[0].getMessage()
    # other.test keeps its keys too
    other = MESSAGE.replace(b"alice@example.test", b"alice@other.test")
    assert signer.sign(other).count(b"d=other.test;") == 2


def test_message_parses_once_and_hashes_the_body_once():
    m = signature.Message(MESSAGE)
    assert m.signed[:3] == (b"from", b"to", b"subject")         # Received is not signed
    assert m.signed[-len(signature.OVERSIGNED):] == signature.OVERSIGNED
    assert m.field_values(b"from") == [b" Alice <alice@example.test>\r\n"]


def test_the_sessions_header_split_signs_the_same_bytes(signer):
    """sign(data, groups) with the fields smtp.message.header_fields split (the SMTP
    session's, handed on by finish_authenticated) makes the bytes sign(data) makes,
    for messages with folding, an mbox From_ line, no body and an unparsable field;
    and the session's path signs a message its fix-ups completed."""
    from clevermail.smtp.handler import SMTPFileHandler
    from clevermail.smtp.message import Header, header_fields
    signer.clock = lambda: NOW
    cases = [MESSAGE, MESSAGE.replace(b"\r\n\r\nHello", b"\r\n"), b"From x\r\n" + MESSAGE,
             MESSAGE.replace(b"To:", b"To :"), MESSAGE.replace(b"X-Mailer: test\r\n", b"X-Mailer:\r\n \r\n"),
             b"From: alice@example.test\r\n\r\n", b"From: alice@example.test\r\n"]
    for data in cases:
        assert signer.sign(data, header_fields(data)[0]) == signer.sign(data), data
    handler = SMTPFileHandler(store=None, accounts=None, queue=None, signer=signer)
    bare = MESSAGE.replace(b"Date: Wed, 02 Dec 2026 10:00:00 +0000\r\n", b"")
    completed = handler.finish_authenticated(bare, "mx.example.test", Header(bare))
    assert b"\r\nDate: " in completed and len(sigs(completed)) == 2
    unsigned = completed[completed.index(b"Received:"):]
    assert completed == signer.sign(unsigned)


def test_the_field_is_made_once_per_key_and_field_set_and_each_message_verifies(signer, dns):
    """signature._template: the field's text and canonical form are kept per key and
    h= list; messages with other bodies, times or field sets still verify outside."""
    signature._TEMPLATES.clear()
    other_body = MESSAGE.replace(b"Bob.", b"Carol.")
    more_fields = MESSAGE.replace(b"X-Mailer: test\r\n", b"Cc: carol@there.test\r\nReply-To: a@example.test\r\n")
    signer.clock = lambda: NOW
    first = signer.sign(MESSAGE)
    signer.clock = lambda: NOW + 1
    second = signer.sign(other_body)
    assert len(signature._TEMPLATES) == 2                   # rsa and ed25519, one field set
    third = signer.sign(more_fields)
    assert len(signature._TEMPLATES) == 4
    for data in (first, second, third):
        assert [r["ok"] for r in verify(data, dns.port)] == [True, True]
    [(a_rsa, a_ed), (b_rsa, b_ed)] = [re.findall(rb"(?s)DKIM-Signature:.*?(?=DKIM-Signature:|From:)", d)
                                      for d in (first, second)]
    # only t=, bh= and b= differ
    strip = lambda f: re.sub(rb"(t=\d+|bh=[^;]+|b=[^;]*$)", b"", f)      # noqa: E731
    assert strip(a_rsa) == strip(b_rsa) and strip(a_ed) == strip(b_ed)
    assert b"t=%d;" % NOW in a_rsa and b"t=%d;" % (NOW + 1) in b_rsa


def test_relaxed_body_is_dkimpys_canonical_form():
    """canon.relaxed_body is a faster route to dkimpy's own result: the same bytes
    for edge cases and 20,000 random bodies of spaces, tabs, CR, LF and letters."""
    import random
    from dkim.canonicalization import Relaxed
    cases = [b"", b"\r\n", b"\r\n\r\n", b"a", b"a ", b"a\r\n", b" \r\n", b"\t\r\n", b"a \t b\r\n\r\n \r\n",
             b"x\r\n\r\n\r\ny  \t\r\n", b"  a  \r\n", b"base64+/=\r\nAAAA\r\n", MESSAGE.split(b"\r\n\r\n", 1)[1]]
    pieces = [b"a", b"b", b" ", b"  ", b"\t", b"\r\n", b"\r", b"\n"]
    rng = random.Random(6376)
    cases += [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))) for _ in range(20000)]
    assert [c for c in cases if canon.relaxed_body(c) != Relaxed.canonicalize_body(c)] == []
