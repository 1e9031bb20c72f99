"""Interop: mutt (Debian) against the real server: a batch send (an 8-bit message
with an attachment through SMTP submission with STARTTLS + AUTH, its Fcc copy APPENDed
to an IMAP folder over STARTTLS) and the same IMAP dialogue deflated (imap_deflate,
COMPRESS=DEFLATE).  Fixtures and helpers: interop_helpers.py (as test_interop.py)."""

import email
import email.policy
import re

import pytest

from interop_helpers import (ALICE, BOB, IMAP, PASSWORD, delivered, lf, need, run,  # noqa: F401
                             ca, home, server, tls)         # (the last four: fixtures)

pytestmark = pytest.mark.interop


# == mutt =====================================================================================
def muttrc(server, home, ca, *extra):
    """A muttrc for ALICE: SMTP submission and IMAP, both over STARTTLS, Fcc to =Sent."""
    rc = home / "muttrc"
    rc.write_text(f"""\
set from = "{ALICE}"
set realname = "Alice"
set smtp_url = "smtp://{ALICE.replace('@', '%40')}@localhost:{server.port('submission')}/"
set smtp_pass = "{PASSWORD}"
set ssl_starttls = yes
set ssl_force_tls = yes
set certificate_file = "{ca}"
set imap_user = "{ALICE}"
set imap_pass = "{PASSWORD}"
set folder = "imap://{ALICE.replace('@', '%40')}@localhost:{server.port('imap')}/"
set record = "=Sent"
set copy = yes
set sendmail_wait = 0
set charset = "utf-8"
set send_charset = "utf-8"
set allow_8bit = yes
""" + "".join(line + "\n" for line in extra))
    return rc


def test_mutt_batch_send_with_imap_fcc(server, home, ca):
    """mutt in batch mode: SMTP submission (STARTTLS, AUTH) and an Fcc copy APPENDed to
    the IMAP Sent folder over STARTTLS."""
    need("mutt")
    rc = muttrc(server, home, ca)
    body = "Grüße aus Köln ✓\n.\n..two\nlast line\n"
    attachment = bytes(range(256)) * 12
    (home / "data.bin").write_bytes(attachment)
    run([need("mutt"), "-n", "-F", str(rc), "-s", "Über mutt", "-a", str(home / "data.bin"),
         "--", BOB], home, stdin=body.encode())
    (trace, message), = delivered(server, BOB).values()
    assert b"with ESMTPSA" in trace and b"(TLSv1." in trace
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert parsed["Subject"] == "Über mutt"
    text, att = parsed.iter_parts()
    assert text.get_content() == body                      # 8bit UTF-8 text, lone '.' kept
    assert att.get_content() == attachment and att.get_filename() == "data.bin"
    with IMAP(server.port("imap")) as imap:
        (flags, wire, _), = imap.messages("Sent").values()
    assert "\\Seen" in flags
    # mutt formats the Fcc copy separately: its Date may be a second later
    same = lambda data: re.sub(rb"(?m)^Date: .*\n", b"", data)
    # the delivered copy carries our two DKIM signatures on top, the Fcc copy none
    unsigned, signatures = re.subn(rb"\ADKIM-Signature:.*\n(?:[ \t].*\n)*", b"", message)
    unsigned, more = re.subn(rb"\ADKIM-Signature:.*\n(?:[ \t].*\n)*", b"", unsigned)
    assert signatures + more == 2
    assert same(lf(wire)) == same(unsigned)


def test_mutt_imap_deflate(server, home, ca, monkeypatch):
    """mutt with imap_deflate (COMPRESS=DEFLATE, RFC 4978; imapclient has no call for
    it): its IMAP dialogue for the Fcc copy runs deflated after COMPRESS, and the copy
    arrives whole."""
    from clevermail.line_session import LineSession
    deflated = []
    start = LineSession.start_deflate

    def recording(session):
        deflated.append(session.protocol)
        return start(session)
    monkeypatch.setattr(LineSession, "start_deflate", recording)
    rc = muttrc(server, home, ca, "set imap_deflate = yes")
    body = "deflated both ways\n" + "".join(f"line {n} of a longer body\n" for n in range(400))
    run([need("mutt"), "-n", "-F", str(rc), "-s", "compressed", "--", BOB], home,
        stdin=body.encode())
    assert deflated == ["imap"]
    with IMAP(server.port("imap")) as imap:
        (flags, wire, _), = imap.messages("Sent").values()
    parsed = email.message_from_bytes(lf(wire), policy=email.policy.default)
    assert parsed["Subject"] == "compressed" and parsed.get_content() == body
    assert "\\Seen" in flags
