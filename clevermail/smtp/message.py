"""A received SMTP message on its way to the file handler: the body as DATA or BDAT
brought it, checked and turned into CRLF wire form (RFC 5321 4.5.2 dot-stuffing,
4.5.3.1.6 line length), its queue id, the Received trace header the server adds
(RFC 5321 4.4, with the "with" keywords of RFC 3848), and the fields a submission
server adds when the client left them out (RFC 6409 8.2 Date, 8.3 Message-ID).
Pure: no session, no socket.

The DATA path is LineReader.read_dot_terminated plus whole-body bytes operations:
only CRLF.CRLF ends a message (no smuggling with bare LF/CR), bare LF/CR are then
normalized to CRLF before the dots are unstuffed, and line lengths are checked with
about one C-level search per 1000 octets - no Python loop per line.
"""

import email.utils
import random
import re
import secrets
import time

from ..wire import dot_unstuff, has_long_line, normalize_crlf
from .replies import R554_LONG_LINE, SMTPReplyError

# The longest text line with its CRLF (RFC 5321 4.5.3.1.6: 998 octets before it).
TEXT_LINE_LIMIT = 1000


def prepare_body(body, stuffed):
    """Received bytes -> the message in CRLF wire form, or SMTPReplyError.

    Bare LF/CR become CRLF first (a lax client such as smtplib given LF-only bytes
    stuffs dots after its LFs), then dots are unstuffed (RFC 5321 4.5.2).  Since the
    end of data was found by CRLF.CRLF only, normalizing cannot split the message."""
    body = normalize_crlf(body)
    if stuffed:
        body = dot_unstuff(body)
    if has_long_line(body, TEXT_LINE_LIMIT):
        raise SMTPReplyError(R554_LONG_LINE)
    return body


# Received and Delivered-To fields a message may carry before it counts as looping
# (RFC 5321 6.3 asks for a hop limit; 30 as the routing issue and Postfix's
# hopcount_limit of 50 suggest for a small server).
MAX_HOPS = 30


def header_fields(message):
    """The header of `message` (CRLF bytes) as fields, each the list of its raw lines
    (folded continuations included), and the offset where the header ends: after its
    last CRLF, or the whole message when there is no empty line.  Joining every line
    with CRLF gives message[:end] back."""
    end = message.find(b"\r\n\r\n")
    head_end = len(message) if end < 0 else end + 2
    fields = []
    for line in message[:head_end].split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)             # a continuation of the field above
        else:
            fields.append([line])
    return fields, head_end


def field_name(lines):
    """The lower-cased name of a field from header_fields (b"" for a line without a colon)."""
    name, colon, _ = lines[0].partition(b":")
    return name.strip().lower() if colon else b""


def field_value(lines):
    """A field's value, unfolded (its lines joined by a space)."""
    return b" ".join([lines[0].partition(b":")[2], *lines[1:]])


class Header:
    """The header section of `data` (a message in CRLF wire form) split into fields
    once (header_fields: `fields`, `end`), for every step of the end of DATA that
    reads it: the hop count, the From: rules, the removal of forged
    Authentication-Results, the DKIM and DMARC checks (inbound/)."""

    __slots__ = ("data", "fields", "end")

    def __init__(self, data, fields=None, end=None):
        if fields is None:
            fields, end = header_fields(data)
        self.data, self.fields, self.end = data, fields, end

    @classmethod
    def of(cls, data, header=None):
        """`header` when it is the split of `data` (the same bytes object), else a new one."""
        return header if header is not None and header.data is data else cls(data)

    def values(self, name):
        """The unfolded values of the fields called `name` (lower-case bytes)."""
        return [field_value(lines) for lines in self.fields if field_name(lines) == name]

    def without(self, drop):
        """The Header of this message without the fields at the indexes `drop`,
        built from the fields already split; the body untouched."""
        fields = [lines for i, lines in enumerate(self.fields) if i not in drop]
        head = b"\r\n".join(line for lines in fields for line in lines)
        if not head:        # nothing left before the empty line: split as header_fields does
            return Header(self.data[self.end:])
        return Header(head + self.data[self.end:], fields, len(head))


def hop_count(message, header=None):
    """The Received: and Delivered-To: fields in the header of `message` (CRLF bytes;
    `header`: its Header when split already)."""
    fields = Header.of(message, header).fields
    return sum(1 for lines in fields if field_name(lines) in (b"received", b"delivered-to"))


def new_queue_id():
    """A queue id: 12 hex digits, unique, not secret (nothing takes a queue id from the
    network, so no os.urandom per message)."""
    return f"{random.getrandbits(48):012X}"


_date_cache = (0, "")


def _rfc5322_date():
    """The current date for a Received header, formatted at most once a second."""
    global _date_cache
    now = int(time.time())
    stamp, text = _date_cache
    if stamp != now:
        text = email.utils.formatdate(now, localtime=True)
        _date_cache = (now, text)
    return text


# A field name at the start of a header line (continuation lines start with WSP).
_DATE = re.compile(rb"(?im)^date[ \t]*:")
_MESSAGE_ID = re.compile(rb"(?im)^message-id[ \t]*:")


def submission_fixups(body, hostname):
    """`body` (wire form) with a Date and a Message-ID field added at the end of its
    header section when it has none (RFC 6409 8.2, 8.3: a submission server may
    complete a message; done before DKIM signing, so the signature covers them).
    The Message-ID is <random@hostname>: 128 random bits, unique without a counter."""
    if body.startswith(b"\r\n"):
        end = 0                                 # an empty header section
    else:
        end = body.find(b"\r\n\r\n")
        end = len(body) if end < 0 else end + 2
    head = body[:end]
    added = b""
    if not _DATE.search(head):
        added += f"Date: {_rfc5322_date()}\r\n".encode("ascii")
    if not _MESSAGE_ID.search(head):
        added += f"Message-ID: <{secrets.token_hex(16)}@{hostname}>\r\n".encode("utf-8")
    return body[:end] + added + body[end:] if added else body


def received_header(*, helo, peer, hostname, esmtp, tls_info, authenticated,
                    queue_id, session_id, recipients):
    """The Received header block (bytes, CRLF, folded) for one accepted message.

    `tls_info` is (protocol version, cipher) or None; `authenticated` says whether the
    client used AUTH.  "with" is SMTP, ESMTP, ESMTPS, ESMTPA or ESMTPSA (RFC 3848)."""
    proto = "ESMTP" if esmtp else "SMTP"
    if esmtp and (tls_info or authenticated):
        proto += ("S" if tls_info else "") + ("A" if authenticated else "")
    # Only a single recipient is named: more would disclose Bcc recipients.
    rcpt = f"\r\n\tfor <{recipients[0].address}>" if len(recipients) == 1 else ""
    tls = f" ({tls_info[0]} {tls_info[1]})" if tls_info else ""
    literal = f"IPv6:{peer}" if ":" in peer else peer
    return (f"Received: from {helo} ({peer} [{literal}]){tls}\r\n"
            f"\tby {hostname} (CleverMail) with {proto} id {queue_id}"
            f" session {session_id}{rcpt};\r\n"
            f"\t{_rfc5322_date()}\r\n").encode("utf-8")


# The Message-ID field of the header section, folded lines included (RFC 5322 3.6.4).
_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:((?:[^\r\n]|\r\n[ \t])*)", re.IGNORECASE | re.MULTILINE)
_LOG_ID_LIMIT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


_last_id = (None, "-")      # (message, its id): the accepted and delivered lines ask in turn


def message_id(data):
    """The message's Message-ID for the log ('-' if none): searched in the header
    section only, whitespace collapsed, cut at 200 characters, control characters
    as '?' (it is the client's text).  The last message's is kept: its accepted line
    and its delivered lines ask for the same bytes object."""
    global _last_id
    last, text = _last_id
    if last is data:
        return text
    end = data.find(b"\r\n\r\n")
    m = _MESSAGE_ID.search(data, 0, end + 2 if end >= 0 else len(data))
    text = "-"
    if m:
        text = b" ".join(m.group(1).split()).decode("utf-8", "replace")[:_LOG_ID_LIMIT]
        text = _CONTROL.sub("?", text) or "-"
    _last_id = (data, text)
    return text


def recipients_text(recipients):
    """'local=<a>,<b> relay=<c> forward=<d>' for the accepted line: each local
    account once, as delivered (an alias names its owners), each relayed address as
    given, and an alias's forwarding targets."""
    local, relay, forward = [], [], []
    for r in recipients:
        for account in r.accounts:
            if account not in local:
                local.append(account)
        into = forward if r.forwarded else relay
        for address in r.external:
            if address not in into:
                into.append(address)
    return " ".join(f"{name}=" + ",".join(f"<{a}>" for a in addresses)
                    for name, addresses in (("local", local), ("relay", relay), ("forward", forward))
                    if addresses)
