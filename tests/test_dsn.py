"""Tests for dsn.py and the DSN parameters in smtp/parser.py (RFC 3461), pure: the
xtext codec, every parameter with good and bad values and the reply a bad one gets,
the NOTIFY rule, what goes on to a next hop, and the report's DSN fields
(relay/bounce.py)."""

import email
from email import policy
from types import SimpleNamespace

import pytest

from clevermail import dsn
from clevermail.relay.bounce import make_dsn
from clevermail.relay.entry import Entry, Recipient
from clevermail.smtp import parser
from clevermail.smtp.replies import SMTPReplyError


# -- xtext (RFC 3461 4) ----------------------------------------------------------------
@pytest.mark.parametrize("encoded, decoded", [
    ("abc", "abc"),
    ("a+2Bb", "a+b"),
    ("a+3Db", "a=b"),
    ("a+20b", "a b"),
    ("+2B+3D", "+="),
    ("x+2by", "x+y"),                   # lower-case hex tolerated
    ("caf+C3+A9", "café"),              # UTF-8 octets
    ("!\"#$%&'()*,-./:;<>?@[\\]^_`{|}~", "!\"#$%&'()*,-./:;<>?@[\\]^_`{|}~"),
])
def test_xtext_decode(encoded, decoded):
    assert dsn.xtext_decode(encoded) == decoded


@pytest.mark.parametrize("bad", ["a+", "a+2", "a+G0", "a=b", "a b", "é", "a\x7fb", "+FF"])
def test_xtext_decode_refuses(bad):
    with pytest.raises(ValueError):
        dsn.xtext_decode(bad)


def test_xtext_encode_round_trips():
    for text in ("plain", "a+b=c", "with space", "tab\there", "café", "~!"):
        encoded = dsn.xtext_encode(text)
        assert all(33 <= ord(c) <= 126 and c != "=" for c in encoded)
        assert dsn.xtext_decode(encoded) == text
    assert dsn.xtext_encode("a+b=c d") == "a+2Bb+3Dc+20d"


# -- the parameters --------------------------------------------------------------------
def test_ret():
    assert parser.parse_ret("FULL") == "FULL" and parser.parse_ret("hdrs") == "HDRS"
    for bad in (None, "", "BODY", "FULL,HDRS"):
        with pytest.raises(SMTPReplyError) as exc:
            parser.parse_ret(bad)
        assert (exc.value.reply.code, exc.value.reply.status) == (501, "5.5.4")
        assert "RET must be FULL or HDRS" in exc.value.reply.text


def test_envid():
    assert parser.parse_envid("QQ314159") == "QQ314159"
    assert parser.parse_envid("id+2Bone+20two") == "id+one two"
    assert parser.parse_envid("x" * 100) == "x" * 100
    for bad, why in ((None, "needs a value"), ("x" * 101, "longer than 100"),
                     ("a=b", "not allowed"), ("a+0Ab", "printable"), ("a+", "two hex")):
        with pytest.raises(SMTPReplyError) as exc:
            parser.parse_envid(bad)
        assert exc.value.reply.code == 501 and why in exc.value.reply.text, exc.value.reply


def test_notify():
    rcpt = parser.parse_rcpt_dsn
    assert rcpt({}) == (None, None)
    assert rcpt({"NOTIFY": "NEVER"}) == (("NEVER",), None)
    assert rcpt({"NOTIFY": "never"}) == (("NEVER",), None)
    assert rcpt({"NOTIFY": "DELAY,SUCCESS"}) == (("SUCCESS", "DELAY"), None)
    assert rcpt({"NOTIFY": "FAILURE"}) == (("FAILURE",), None)
    assert rcpt({"NOTIFY": "success,failure,delay"})[0] == ("SUCCESS", "FAILURE", "DELAY")
    for bad, why in (("NEVER,SUCCESS", "cannot be combined"), ("SUCCESS,SUCCESS", "twice"),
                     ("SOMETIMES", "SOMETIMES is not"), ("SUCCESS,", "(empty) is not"),
                     (None, "needs a value")):
        with pytest.raises(SMTPReplyError) as exc:
            rcpt({"NOTIFY": bad})
        assert (exc.value.reply.code, exc.value.reply.status) == (501, "5.5.4")
        assert why in exc.value.reply.text, exc.value.reply


def test_orcpt():
    rcpt = parser.parse_rcpt_dsn
    assert rcpt({"ORCPT": "rfc822;bob@example.test"}) == (None, "rfc822;bob@example.test")
    assert rcpt({"ORCPT": "RFC822;b+2Bx@example.test"})[1] == "rfc822;b+x@example.test"
    assert rcpt({"ORCPT": "utf-8;j\\x{F6}rg@example.test"})[1] == "utf-8;jörg@example.test"
    assert rcpt({"ORCPT": "utf-8;jörg@example.test"})[1] == "utf-8;jörg@example.test"
    assert rcpt({"ORCPT": "x-custom;id-42"})[1] == "x-custom;id-42"
    for bad, why in (("bob@example.test", "addr-type;address"), ("rfc822;", "addr-type;address"),
                     (";bob@x.test", "addr-type;address"), ("rfc822;a+0Db@x.test", "control"),
                     ("rfc822;" + "a" * 500, "longer than 500"), ("rfc822;b=c", "not allowed"),
                     ("rfc822;b+C3+A9@x.test", "US-ASCII")):
        with pytest.raises(SMTPReplyError) as exc:
            rcpt({"ORCPT": bad})
        assert exc.value.reply.code == 501 and why in exc.value.reply.text, exc.value.reply


def test_other_rcpt_parameters_are_555():
    with pytest.raises(SMTPReplyError) as exc:
        parser.parse_rcpt_dsn({"NOTIFY": "NEVER", "XFOO": None})
    assert (exc.value.reply.code, exc.value.reply.status) == (555, "5.5.4")


def test_a_whole_rcpt_line():
    address, params = parser.parse_rcpt("TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE "
                                        "ORCPT=rfc822;Bob+2Bx@example.test")
    assert address == "bob@example.test"
    assert parser.parse_rcpt_dsn(params) == (("SUCCESS", "FAILURE"), "rfc822;Bob+x@example.test")


# -- which reports -----------------------------------------------------------------------
def test_wants():
    assert dsn.wants(None, dsn.FAILURE) and dsn.wants(None, dsn.DELAY)
    assert not dsn.wants(None, dsn.SUCCESS)
    never = ("NEVER",)
    assert not any(dsn.wants(never, k) for k in (dsn.SUCCESS, dsn.FAILURE, dsn.DELAY))
    assert dsn.wants(("SUCCESS",), dsn.SUCCESS) and not dsn.wants(("SUCCESS",), dsn.FAILURE)


def test_pass_on_encodes_again():
    p = dsn.PassOn.of("HDRS", "id one", [("a@x.test", ("SUCCESS", "FAILURE"), "rfc822;A+b@x.test"),
                                        ("b@x.test", None, None),
                                        ("c@x.test", ("NEVER",), "utf-8;jörg@x.test")])
    assert p.mail == ("RET=HDRS", "ENVID=id+20one")
    assert p.rcpt["a@x.test"] == ("NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;A+2Bb@x.test")
    assert p.rcpt["b@x.test"] == ()
    assert p.rcpt["c@x.test"] == ("NOTIFY=NEVER", "ORCPT=utf-8;j\\x{F6}rg@x.test")
    assert dsn.PassOn.of(None, None, []).mail == ()


# -- the queue entry --------------------------------------------------------------------
def test_entry_keeps_the_dsn_request_and_old_entries_load():
    e = Entry(id="Q1", queue_id="Q1", sender="a@x.test", arrival=1.0, ret="FULL", envid="E 1",
              recipients=[Recipient("b@y.test", notify=["SUCCESS"], orcpt="rfc822;B@y.test")])
    back = Entry.from_json(e.to_json())
    assert (back.ret, back.envid) == ("FULL", "E 1")
    assert (back.recipients[0].notify, back.recipients[0].orcpt) == (["SUCCESS"], "rfc822;B@y.test")
    old = {"id": "Q2", "sender": "a@x.test", "arrival": 2.0,
           "recipients": [{"address": "b@y.test", "state": "failed"}]}
    entry = Entry.from_json(old)
    assert (entry.ret, entry.envid, entry.recipients[0].notify, entry.recipients[0].report) == (
        None, None, None, None)
    assert entry.needs_bounce()                   # no NOTIFY: failures are reported, as before
    text = back.describe(now=2.0)
    assert "RET=FULL  ENVID=E 1" in text.splitlines()[0] and "NOTIFY=SUCCESS" in text.splitlines()[1]


def test_notify_decides_what_is_owed():
    def entry(notify, state):
        return Entry(id="Q", queue_id="Q", sender="a@x.test", arrival=0.0,
                     recipients=[Recipient("b@y.test", state=state, notify=notify)])
    assert entry(None, "failed").needs_bounce()
    assert entry(["FAILURE"], "failed").needs_bounce()
    assert not entry(["NEVER"], "failed").needs_bounce() and entry(["NEVER"], "failed").finished()
    assert not entry(["SUCCESS", "DELAY"], "failed").needs_bounce()
    owed = entry(["SUCCESS"], "delivered")
    owed.recipients[0].report = "relayed"
    assert owed.needs_success_report() and not owed.finished() and owed.next_due() == 0
    assert owed.state(0.0) == "bounce"
    owed.sender = ""                              # never a report to the null sender
    assert owed.finished()


# -- the report's fields -----------------------------------------------------------------
ORIGINAL = (b"From: a@x.test\r\nTo: b@y.test\r\nSubject: hello\r\nMessage-ID: <m1@x.test>\r\n\r\n"
            b"the body line\r\n")


def report(action, recipients, **kw):
    raw = make_dsn(reporting_mta="mx.here.test", sender="a@x.test", queue_id="Q1", arrival=1e9,
                   recipients=recipients, original=ORIGINAL, action=action, now=1e9 + 5, **kw)
    msg = email.message_from_bytes(raw, policy=policy.default)
    status = msg.get_payload()[1].get_payload()
    return raw, msg, status[0], status[1:]


def rcpt(address, reply, orcpt=None, report=None, remote=None):
    return SimpleNamespace(address=address, last_reply=reply, remote=remote, orcpt=orcpt, report=report)


def test_report_has_envelope_id_and_original_recipient():
    raw, msg, per_message, [group] = report(
        "failed", [rcpt("b@y.test", "550 5.1.1 unknown", orcpt="rfc822;B+x@y.test")], envid="E-42")
    assert per_message["Original-Envelope-Id"] == "E-42"
    assert group["Original-Recipient"] == "rfc822;B+x@y.test"
    assert group["Final-Recipient"] == "rfc822; b@y.test" and group["Action"] == "failed"
    assert group["Status"] == "5.1.1"
    third = msg.get_payload()[2]
    assert third.get_content_type() == "text/rfc822-headers" and b"the body line" not in raw


def test_ret_full_returns_the_whole_message_in_a_failure_report_only():
    raw, msg, _, _ = report("failed", [rcpt("b@y.test", "550 5.1.1 unknown")], ret="FULL")
    third = msg.get_payload()[2]
    assert third.get_content_type() == "message/rfc822"
    assert b"the body line" in raw and third.get_payload()[0]["Subject"] == "hello"
    raw, msg, _, _ = report("delayed", [rcpt("b@y.test", "451 4.7.1 later")], ret="FULL")
    assert msg.get_payload()[2].get_content_type() == "text/rfc822-headers"
    assert b"the body line" not in raw
    raw, _, _, _ = report("failed", [rcpt("b@y.test", "550 5.1.1 unknown")], ret="HDRS")
    assert b"the body line" not in raw


def test_success_report_actions():
    raw, msg, per_message, groups = report("success", [
        rcpt("b@y.test", "250 2.0.0 delivered to the local mailbox", report="delivered"),
        rcpt("c@z.test", "250 2.0.0 queued", report="relayed", remote="mx.z.test[192.0.2.1]:25")])
    assert "Successful" in msg["Subject"]
    assert [(g["Action"], g["Status"]) for g in groups] == [("delivered", "2.0.0"), ("relayed", "2.0.0")]
    assert groups[1]["Remote-MTA"] == "dns; mx.z.test"
    assert "Original-Envelope-Id" not in per_message
