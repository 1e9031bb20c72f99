"""smtp/replies.py: the EHLO extension lines built once per combination of settings, and
the refusal reason each reply carries (the clevermail_smtp_refused label), and the
ereject refusal made one printable line."""

import pytest

from clevermail.smtp import replies as R


def test_ehlo_extensions_wire_format():
    wire = R.ehlo_extensions(2000, True, True, ("PLAIN", "LOGIN"))
    assert wire == (b"250-SIZE 2000\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
                    b"250-SMTPUTF8\r\n250-CHUNKING\r\n250-DSN\r\n250-STARTTLS\r\n250-REQUIRETLS\r\n"
                    b"250-AUTH PLAIN LOGIN\r\n250 HELP\r\n")
    # the same reply multiline() builds, behind the greeting line the session puts first
    lines = ["SIZE 2000", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "DSN",
             "STARTTLS", "REQUIRETLS", "AUTH PLAIN LOGIN", "HELP"]
    assert b"250-mx greets c\r\n" + wire == R.multiline(250, ["mx greets c", *lines])


def test_ehlo_extensions_every_argument_is_part_of_the_key():
    plain = R.ehlo_extensions(1000, False, False, ())
    assert plain == (b"250-SIZE 1000\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
                     b"250-SMTPUTF8\r\n250-CHUNKING\r\n250-DSN\r\n250 HELP\r\n")
    assert R.ehlo_extensions(1000, False, False, ()) is plain          # built once
    assert b"SIZE 1001\r\n" in R.ehlo_extensions(1001, False, False, ())
    assert b"STARTTLS" in R.ehlo_extensions(1000, True, False, ())
    assert b"REQUIRETLS" in R.ehlo_extensions(1000, False, True, ())
    assert b"250-AUTH PLAIN\r\n" in R.ehlo_extensions(1000, False, False, ("PLAIN",))
    assert R.ehlo_extensions(1000, False, False, ()) == plain           # none of them changed it


def test_refusal_reasons_by_code_or_named():
    assert R.R550_NO_SUCH_USER.reason == "unknown_user"
    assert R.R554_RELAY_DENIED.reason == "relay_denied"
    # the same code and status as a relay denial or an AUTH throttle, reasons of their own
    assert (R.R554_DNSBL.code, R.R554_DNSBL.status, R.R554_DNSBL.reason) == (554, "5.7.1", "dnsbl")
    assert (R.R421_HARVEST.code, R.R421_HARVEST.status, R.R421_HARVEST.reason) == (421, "4.7.0", "harvest")
    assert R.R554_PREGREET.reason == "pregreet"
    assert R.R451_GREYLISTED.reason == "greylist"
    assert R.R421_CLIENT_RATE.reason == "rate"
    # format() keeps it; replies that refuse nothing have none
    assert R.R554_DNSBL.format("192.0.2.1", "zen.test", "listed").reason == "dnsbl"
    assert R.R421_HARVEST.format("mx.test").reason == "harvest"
    assert R.R250_OK.reason is None and R.R503_SEQUENCE.reason is None and R.R221_BYE.reason is None


@pytest.mark.parametrize("reason, text", [
    ("Not here", "Not here"),
    ("two\r\nlines\r\n250 OK", "two lines 250 OK"),
    ("tab\there\x00\x1b[31m", "tab here [31m"),
    ("caf\u00e9 \u2603", "caf? ?"),
    ("", "Message rejected by the recipient's filter"),
    ("\r\n\t", "Message rejected by the recipient's filter"),
    ("x" * 1000, "x" * 200),
])
def test_sieve_refusal_is_one_printable_line(reason, text):
    reply = R.sieve_refusal(reason)
    assert (reply.code, reply.status, reply.text) == (550, "5.7.1", text)
    assert reply.wire == f"550 5.7.1 {text}\r\n".encode()
    assert reply.reason == "sieve"
