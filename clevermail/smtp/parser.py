"""Pure SMTP command parsing: a line in, values or an SMTPReplyError out.

Grammar of RFC 5321 section 4.1.2 (paths, quoted local parts, address literals of
4.1.3, ESMTP parameters), widened for UTF-8 addresses by RFC 6531 section 3.3; the
source route (A-d-l) of a path is parsed and ignored (RFC 5321 4.1.1.3, appendix C).
Lengths follow 4.5.3.1 (local part 64, domain 255, path 256 octets).  The DSN
parameters (RFC 3461: RET, ENVID, NOTIFY, ORCPT) are read by dsn.py's pure rules; a bad
value is 501 5.5.4 saying what is wrong.  No sockets here.
"""

import ipaddress
import re
from typing import NamedTuple

from .. import dsn
from .replies import (R500_BAD_CHARS, R501_AUTH_SYNTAX, R501_BAD_RCPT, R501_BAD_SENDER,
                      R501_BDAT_SYNTAX, R501_DSN_PARAM, R501_MAIL_SYNTAX, R501_RCPT_SYNTAX,
                      R501_SYNTAX, R530_REQUIRETLS_NEEDS_TLS, R552_TOO_BIG, R555_PARAM,
                      SMTPReplyError)

# RFC 5321 4.1.2 plus UTF8-non-ascii (RFC 6531 3.3), which a str regex sees as
# code points >= U+0080.
_U = "\u0080-\U0010ffff"
_ATEXT = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~\-{_U}]"
_DOT_STRING = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_QUOTED = rf'"(?:[\x20\x21\x23-\x5b\x5d-\x7e{_U}]|\\[\x20-\x7e])*"'
_LABEL = rf"[A-Za-z0-9{_U}](?:[A-Za-z0-9\-{_U}]*[A-Za-z0-9{_U}])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_LITERAL = r"\[[\x21-\x5a\x5e-\x7e]+\]"
_PATH = re.compile(
    rf"<(?:@{_DOMAIN}(?:,@{_DOMAIN})*:)?"                 # source route, ignored
    rf"(?P<local>{_DOT_STRING}|{_QUOTED})@(?P<domain>{_DOMAIN}|{_LITERAL})>")
_DOT_STRING_RE = re.compile(_DOT_STRING + r"\Z")
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
# esmtp-value: %d33-60 / %d62-126, plus UTF-8 (RFC 6531 3.3)
_VALUE = re.compile(rf"[\x21-\x3c\x3e-\x7e{_U}]+\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BDAT = re.compile(r"(?P<size>[0-9]{1,20})(?: +(?P<last>LAST))? *\Z", re.IGNORECASE)
_B64 = re.compile(r"(?:[A-Za-z0-9+/]*={0,2}|=)\Z")

MAX_LOCAL = 64
MAX_DOMAIN = 255
MAX_PATH = 256


def parse_command(line):
    """b'MAIL FROM:<a@b>\\r\\n' -> ('MAIL', 'FROM:<a@b>').  The verb is upper-cased;
    the argument keeps its case and loses surrounding spaces.  Lines end in CRLF (a
    bare LF is tolerated from lax clients); any other control character, a NUL or
    invalid UTF-8 is refused rather than passed on."""
    if line.endswith(b"\r\n"):
        line = line[:-2]
    elif line.endswith(b"\n"):
        line = line[:-1]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise SMTPReplyError(R500_BAD_CHARS) from None
    if _CONTROL.search(text):
        raise SMTPReplyError(R500_BAD_CHARS)
    verb, _, arg = text.partition(" ")
    return verb.upper(), arg.strip(" ")


def parse_path(text, *, bad=R501_SYNTAX):
    """'<@route:local@domain> rest' -> ('local@domain', 'rest').

    A quoted local part that needs no quotes is returned unquoted (RFC 5321 4.1.2
    says the two forms are the same mailbox); the domain keeps its case."""
    m = _PATH.match(text)
    if m is None:
        raise SMTPReplyError(bad)
    local, domain = m.group("local"), m.group("domain")
    if local.startswith('"'):
        inner = re.sub(r"\\(.)", r"\1", local[1:-1])
        if _DOT_STRING_RE.match(inner):
            local = inner
    if domain.startswith("[") and not _valid_literal(domain[1:-1]):
        raise SMTPReplyError(bad)
    address = f"{local}@{domain}"
    if (len(local.encode("utf-8")) > MAX_LOCAL or len(domain.encode("utf-8")) > MAX_DOMAIN
            or len(address.encode("utf-8")) + 2 > MAX_PATH):
        raise SMTPReplyError(bad)
    return address, text[m.end():]


def _valid_literal(inner):
    """IPv4 or 'IPv6:' address literal (RFC 5321 4.1.3); other tags are refused."""
    try:
        if inner[:5].upper() == "IPV6:":
            return ipaddress.ip_address(inner[5:]).version == 6
        return ipaddress.ip_address(inner).version == 4
    except ValueError:
        return False


def parse_params(text):
    """' SIZE=100 BODY=8BITMIME SMTPUTF8' -> {'SIZE': '100', 'BODY': '8BITMIME',
    'SMTPUTF8': None}.  Keywords are upper-cased; a repeated keyword is an error."""
    params = {}
    if text and not text.startswith(" "):
        raise SMTPReplyError(R501_SYNTAX)
    for item in text.split():
        key, eq, value = item.partition("=")
        if not _KEYWORD.match(key) or (eq and not _VALUE.match(value)):
            raise SMTPReplyError(R501_SYNTAX)
        key = key.upper()
        if key in params:
            raise SMTPReplyError(R501_SYNTAX)
        params[key] = value if eq else None
    return params


def _split_prefix(arg, prefix, syntax):
    """'FROM:<x>' -> '<x>'; the prefix is case-insensitive and a space after the
    colon is tolerated (many clients send 'MAIL FROM: <x>')."""
    if arg[:len(prefix)].upper() != prefix:
        raise SMTPReplyError(syntax)
    return arg[len(prefix):].lstrip(" ")


def parse_mail(arg):
    """MAIL argument -> (reverse-path, params); the null path '<>' gives ''."""
    rest = _split_prefix(arg, "FROM:", R501_MAIL_SYNTAX)
    if rest.startswith("<>"):
        return "", parse_params(rest[2:])
    address, rest = parse_path(rest, bad=R501_BAD_SENDER)
    return address, parse_params(rest)


def parse_rcpt(arg):
    """RCPT argument -> (forward-path, params).  '<Postmaster>' without a domain is
    returned as 'postmaster' (RFC 5321 4.1.1.3: it must be accepted)."""
    rest = _split_prefix(arg, "TO:", R501_RCPT_SYNTAX)
    if rest[:12].lower() == "<postmaster>":
        return "postmaster", parse_params(rest[12:])
    address, rest = parse_path(rest, bad=R501_BAD_RCPT)
    return address, parse_params(rest)


def parse_size(value):
    """The SIZE= value as int (RFC 1870: 1*20DIGIT)."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 20:
        raise SMTPReplyError(R501_SYNTAX)
    return int(value)


def _dsn_value(parse, value):
    try:
        return parse(value)
    except ValueError as exc:
        raise SMTPReplyError(R501_DSN_PARAM.format(exc)) from None


def parse_ret(value):
    """RET=FULL|HDRS (RFC 3461 4.3) -> 'FULL' or 'HDRS'."""
    return _dsn_value(dsn.parse_ret, value)


def parse_envid(value):
    """ENVID=xtext (RFC 3461 4.4) -> the decoded envelope id."""
    return _dsn_value(dsn.parse_envid, value)


class MailParams(NamedTuple):
    """What MAIL FROM's parameters ask for (parse_mail_params)."""

    size: int                   # SIZE= (RFC 1870), 0 when not declared
    smtputf8: bool              # RFC 6531 3.4
    requiretls: bool            # RFC 8689 4.1
    ret: str | None             # RET= (RFC 3461 4.3)
    envid: str | None           # ENVID= (RFC 3461 4.4)


def parse_mail_params(params, *, size_limit, requiretls, tls):
    """The MAIL FROM parameters (RFC 1870, RFC 6152, RFC 6531 3.4, RFC 4954 5, RFC 8689
    4.1, RFC 3461 4.3-4.4) -> MailParams: a SIZE over `size_limit` is 552 5.3.4;
    REQUIRETLS is known only where `requiretls` (submission), and needs `tls` (530
    5.7.10); AUTH= is accepted and not trusted; anything else is 555 5.5.4."""
    size, smtputf8, wants_tls, ret, envid = 0, False, False, None, None
    for key, value in params.items():
        if key == "SIZE":
            size = parse_size(value)
            if size > size_limit:
                raise SMTPReplyError(R552_TOO_BIG)
        elif key == "BODY":
            if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                raise SMTPReplyError(R501_SYNTAX)
        elif key == "SMTPUTF8" and value is None:
            smtputf8 = True
        elif key == "AUTH" and value:
            pass                 # RFC 4954 5: accepted; we do not trust it
        elif key == "REQUIRETLS" and value is None and requiretls:
            if not tls:
                raise SMTPReplyError(R530_REQUIRETLS_NEEDS_TLS)
            wants_tls = True
        elif key == "RET":
            ret = parse_ret(value)
        elif key == "ENVID":
            envid = parse_envid(value)
        else:
            raise SMTPReplyError(R555_PARAM.format(key))
    return MailParams(size, smtputf8, wants_tls, ret, envid)


def parse_rcpt_dsn(params):
    """The RCPT TO parameters (RFC 3461 4.1, 4.2) -> (notify, orcpt): NOTIFY as a tuple
    ('NEVER',) or of SUCCESS/FAILURE/DELAY, ORCPT as 'addr-type;address', each None
    when not given.  Any other parameter is 555 5.5.4."""
    notify = orcpt = None
    for key, value in params.items():
        if key == "NOTIFY":
            notify = _dsn_value(dsn.parse_notify, value)
        elif key == "ORCPT":
            orcpt = _dsn_value(dsn.parse_orcpt, value)
        else:
            raise SMTPReplyError(R555_PARAM.format(key))
    return notify, orcpt


def parse_helo(arg):
    """The HELO/EHLO argument: one domain or address literal token, returned as
    given (lax on purpose: many clients send bare hostnames with '_')."""
    if not arg or " " in arg or len(arg) > MAX_DOMAIN + 2:
        return None
    return arg


def parse_bdat(arg):
    """'1234 LAST' -> (1234, True) (RFC 3030 2)."""
    m = _BDAT.match(arg)
    if m is None:
        raise SMTPReplyError(R501_BDAT_SYNTAX)
    return int(m.group("size")), m.group("last") is not None


def parse_auth(arg):
    """'PLAIN dGVzdA==' -> ('PLAIN', 'dGVzdA=='); no initial response gives None,
    '=' stays '=' (RFC 4954 4: an empty initial response)."""
    parts = arg.split()
    if not parts or len(parts) > 2 or not _KEYWORD.match(parts[0]):
        raise SMTPReplyError(R501_AUTH_SYNTAX)
    initial = parts[1] if len(parts) == 2 else None
    if initial is not None and not _B64.match(initial):
        raise SMTPReplyError(R501_AUTH_SYNTAX)
    return parts[0].upper(), initial
