"""Delivery Status Notification requests (RFC 3461), the values the SMTP side accepts
and the relay keeps, passes on and honours: the xtext codec (RFC 3461 4), the
MAIL FROM parameters RET and ENVID, the RCPT TO parameters NOTIFY and ORCPT, and the
rule of which reports a recipient's NOTIFY asks for.

Protocol-neutral and pure: smtp/parser.py turns a ValueError from here into a 501
5.5.4 reply; the relay (entry.py, delivery.py, schedule.py) stores the decoded values
and encodes them again for a next hop that offers DSN.

Which reports (RFC 3461 4.1, our local policy where the RFC leaves it to us):
- NOTIFY=NEVER: none; NOTIFY=SUCCESS,FAILURE,DELAY: exactly those named;
- no NOTIFY: failure reports, and delay reports when the relay's delay warning is on
  ([relay] delay_warning), never success reports;
- never a report to the null sender (RFC 3461 6.2, RFC 5321 6.1), whatever NOTIFY says.
"""

import re
from dataclasses import dataclass, field

SUCCESS, FAILURE, DELAY, NEVER = "SUCCESS", "FAILURE", "DELAY", "NEVER"
RET_VALUES = ("FULL", "HDRS")
MAX_ENVID = 100          # RFC 3461 4.4: characters of the (encoded) ENVID value
MAX_ORCPT = 500          # RFC 3461 4.2: characters of the (encoded) ORCPT value

_HEX = re.compile(r"[0-9A-Fa-f]{2}")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+\Z")
_UTF8_ESCAPE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")


def xtext_decode(text):
    """RFC 3461 4: xchar is '!'..'~' but '+' and '='; '+XX' is the octet XX (hex; the
    RFC writes it upper-case, lower-case is tolerated as Postfix does).  Raises
    ValueError for anything else: a bare '+', '=', a space or a non-ASCII character."""
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "+":
            if not _HEX.fullmatch(text, i + 1, i + 3):
                raise ValueError(f"'+' must be followed by two hex digits at offset {i}")
            out.append(int(text[i + 1:i + 3], 16))
            i += 3
            continue
        if c == "=" or not "!" <= c <= "~":
            raise ValueError(f"character {c!r} is not allowed in xtext")
        out.append(ord(c))
        i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("xtext does not decode to UTF-8") from None


def xtext_encode(text):
    """The xtext of `text`: printable ASCII but '+' and '=' as is, every other octet
    of its UTF-8 as '+XX'."""
    return "".join(chr(b) if 33 <= b <= 126 and b not in (43, 61) else f"+{b:02X}"
                   for b in text.encode("utf-8"))


def parse_ret(value):
    """RET=FULL|HDRS (RFC 3461 4.3) -> 'FULL' or 'HDRS'."""
    if value is None or value.upper() not in RET_VALUES:
        raise ValueError("RET must be FULL or HDRS")
    return value.upper()


def parse_envid(value):
    """ENVID=xtext (RFC 3461 4.4) -> the decoded envelope id: printable US-ASCII, the
    encoded form at most 100 characters."""
    if not value:
        raise ValueError("ENVID needs a value")
    if len(value) > MAX_ENVID:
        raise ValueError(f"ENVID is longer than {MAX_ENVID} characters")
    envid = xtext_decode(value)
    if not all(" " <= c <= "~" for c in envid):
        raise ValueError("ENVID must decode to printable US-ASCII")
    return envid


def parse_notify(value):
    """NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1) -> a
    tuple in that order; ('NEVER',) for NEVER.  Each keyword once, NEVER alone."""
    if not value:
        raise ValueError("NOTIFY needs a value")
    words = [w.upper() for w in value.split(",")]
    if words == [NEVER]:
        return (NEVER,)
    for w in words:
        if w == NEVER:
            raise ValueError("NOTIFY=NEVER cannot be combined with other values")
        if w not in (SUCCESS, FAILURE, DELAY):
            raise ValueError(f"NOTIFY value {w or '(empty)'} is not SUCCESS, FAILURE, DELAY or NEVER")
    if len(set(words)) != len(words):
        raise ValueError("NOTIFY names a value twice")
    return tuple(w for w in (SUCCESS, FAILURE, DELAY) if w in words)


def parse_orcpt(value):
    """ORCPT=addr-type;xtext (RFC 3461 4.2) -> 'addr-type;decoded address', the form
    of a report's Original-Recipient field (RFC 3464 2.3.1).  addr-type is an atom
    (rfc822 in practice); 'utf-8' takes RFC 6533's \\x{HEX} escapes and raw UTF-8."""
    if not value:
        raise ValueError("ORCPT needs a value")
    if len(value) > MAX_ORCPT:
        raise ValueError(f"ORCPT is longer than {MAX_ORCPT} characters")
    addr_type, sep, text = value.partition(";")
    if not sep or not _ATOM.match(addr_type) or not text:
        raise ValueError("ORCPT must be addr-type;address, e.g. rfc822;user@example.com")
    if addr_type.lower() == "utf-8":
        address = _UTF8_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), xtext_decode(text)
                                   if text.isascii() else text)
    else:
        address = xtext_decode(text)
        if not address.isascii():
            raise ValueError(f"ORCPT of type {addr_type} must be US-ASCII")
    if not address or any(ord(c) < 32 or ord(c) == 127 for c in address):
        raise ValueError("ORCPT address contains control characters")
    return f"{addr_type.lower() if addr_type.lower() in ('rfc822', 'utf-8') else addr_type};{address}"


def wants(notify, kind):
    """Whether a recipient whose NOTIFY is `notify` (None: not given) asks for the
    report `kind` (SUCCESS, FAILURE or DELAY); see the module doc for the default."""
    if notify is None:
        return kind != SUCCESS
    return kind in notify


def mail_options(ret, envid):
    """The MAIL FROM parameters for a next hop that offers DSN."""
    out = []
    if ret:
        out.append(f"RET={ret}")
    if envid:
        out.append(f"ENVID={xtext_encode(envid)}")
    return out


def rcpt_options(notify, orcpt):
    """The RCPT TO parameters for a next hop that offers DSN: NOTIFY as given, ORCPT
    encoded again (the utf-8 type's non-ASCII as RFC 6533 \\x{HEX})."""
    out = []
    if notify:
        out.append("NOTIFY=" + ",".join(notify))
    if orcpt:
        addr_type, _, address = orcpt.partition(";")
        if addr_type == "utf-8":
            address = "".join(c if c.isascii() else f"\\x{{{ord(c):X}}}" for c in address)
        out.append(f"ORCPT={addr_type};{xtext_encode(address)}")
    return out


@dataclass(frozen=True)
class PassOn:
    """What a message's DSN request adds to the MAIL FROM and each RCPT TO of a next
    hop that offers DSN (RFC 3461 6.2.1: the parameters travel with the message)."""

    mail: tuple = ()
    rcpt: dict = field(default_factory=dict)     # address -> tuple of parameters

    @classmethod
    def of(cls, ret, envid, recipients):
        """From RET, ENVID and (address, notify, orcpt) triples."""
        return cls(tuple(mail_options(ret, envid)),
                   {address: tuple(rcpt_options(notify, orcpt)) for address, notify, orcpt in recipients})
