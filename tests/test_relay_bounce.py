"""relay.bounce: the RFC 3464 report's structure and fields."""
import email
import re
from email import policy

import pytest

from clevermail.relay.bounce import make_dsn
from clevermail.relay.queue import Recipient

ORIGINAL = (b"From: alice@here.test\r\nTo: bob@there.test\r\nSubject: lunch?\r\n"
            b"Message-ID: <orig-1@here.test>\r\n\r\nSECRET BODY TEXT\r\n")


def dsn(rcpts, **kw):
    args = dict(reporting_mta="mx.here.test", sender="alice@here.test", queue_id="Q42",
                arrival=1_700_000_000.0, recipients=rcpts, original=ORIGINAL, now=1_700_000_600.0)
    args.update(kw)
    return make_dsn(**args)


def parse(raw):
    return email.message_from_bytes(raw, policy=policy.default)


def test_failed_report_structure():
    raw = dsn([Recipient("bob@there.test", state="failed", last_reply="550 5.1.1 no such user",
                         remote="mx.there.test[192.0.2.1]:25"),
               Recipient("carol@there.test", state="failed", last_reply="554 rejected")])
    assert b"\n" not in raw.replace(b"\r\n", b"")          # CRLF only
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@mx.here.test"
    assert msg["To"].addresses[0].addr_spec == "alice@here.test"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["In-Reply-To"] == "<orig-1@here.test>"
    human, status, headers = msg.get_payload()
    assert human.get_content_type() == "text/plain"
    assert "bob@there.test" in human.get_content() and "550 5.1.1 no such user" in human.get_content()
    assert status.get_content_type() == "message/delivery-status"
    per_message, bob, carol = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; mx.here.test"
    assert per_message["Arrival-Date"]
    assert bob["Final-Recipient"] == "rfc822; bob@there.test"
    assert bob["Action"] == "failed" and bob["Status"] == "5.1.1"
    assert bob["Remote-MTA"] == "dns; mx.there.test"
    assert bob["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user"
    assert carol["Status"] == "5.0.0" and carol["Remote-MTA"] is None
    assert headers.get_content_type() == "text/rfc822-headers"
    text = headers.get_payload(decode=True)
    assert b"Subject: lunch?" in text and b"SECRET BODY" not in text


def test_expired_recipient_keeps_temporary_status():
    msg = parse(dsn([Recipient("bob@there.test", state="failed", last_reply="451 timed out")]))
    rcpt = msg.get_payload()[1].get_payload()[1]
    assert rcpt["Action"] == "failed" and rcpt["Status"] == "4.4.7"
    assert "queue ran out" in msg.get_payload()[0].get_content()


def test_delayed_report():
    msg = parse(dsn([Recipient("bob@there.test", state="deferred", last_reply="451 4.7.1 greylisted")],
                    action="delayed", retry_until=1_700_400_000.0))
    assert "Delayed" in msg["Subject"]
    rcpt = msg.get_payload()[1].get_payload()[1]
    assert rcpt["Action"] == "delayed" and rcpt["Status"] == "4.7.1"
    assert rcpt["Will-Retry-Until"]


def test_remote_text_cannot_inject_fields():
    raw = dsn([Recipient("bob@there.test", state="failed", last_reply="550 x\r\nAction: delivered")])
    assert not re.search(rb"\r\nAction: delivered", raw)
    assert parse(raw).get_payload()[1].get_payload()[1]["Action"] == "failed"


def test_eight_bit_original_headers_and_no_message_id():
    raw = dsn([Recipient("bob@there.test", state="failed", last_reply="550 no")],
              original="Subject: grüße\r\n\r\nx".encode())
    msg = parse(raw)
    assert msg["In-Reply-To"] is None
    assert "grüße".encode() in msg.get_payload()[2].get_payload(decode=True)


def test_action_checked():
    with pytest.raises(ValueError):
        dsn([], action="delivered")
