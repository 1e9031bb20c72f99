"""IMAP URLs that point at one message or part (RFC 5092 section 6, "imessagepart"),
with the URLAUTH authorization of RFC 4467: parsing only, a pure module.

    imap://user@host[:port]/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]
        [;EXPIRE=date-time][;URLAUTH=access[:mechanism:token]]

`parse_url(text)` gives an `ImapUrl`; `rump` is the text up to and including the
access identifier, which is what the token signs (RFC 4467 2.4, 7).  The mailbox and
section are percent-decoded (UTF-8); the owner is the URL's user, as an address: a
user without "@" is user@host (the host is the mail domain, as imaptest writes
"imap://user@domain/...").  Anything malformed raises UrlError.
"""

import datetime
import re
import urllib.parse
from dataclasses import dataclass

__all__ = ["ImapUrl", "UrlError", "parse_url", "relative_url"]

_MAX_NUMBER = 0xFFFFFFFF
_ACCESS = re.compile(r"(anonymous|authuser|(user|submit)\+(.+))\Z", re.IGNORECASE)


class UrlError(ValueError):
    """Not an IMAP URL of a message or part (or not one this server can use)."""


@dataclass(frozen=True)
class ImapUrl:
    owner: str | None           # None in a relative URL (the session's own mailbox)
    mailbox: str
    uidvalidity: int | None
    uid: int
    section: str | None         # as in BODY[section], e.g. "1.2", "HEADER", "TEXT"
    partial: tuple | None       # (offset, length or None)
    expire: datetime.datetime | None = None
    access: str | None = None   # "anonymous", "authuser", "user+X", "submit+X"
    mechanism: str | None = None
    token: str | None = None
    rump: str | None = None     # the text the token signs


def parse_url(text):
    """An absolute imap:// URL, with or without URLAUTH."""
    if not text.lower().startswith("imap://"):
        raise UrlError("not an imap:// URL")
    rest = text[7:]
    authority, slash, path = rest.partition("/")
    if not slash:
        raise UrlError("no mailbox in the URL")
    owner = _owner(authority)
    path, expire, access, mechanism, token, rump_end = _urlauth(path)
    url = _message_part(path, owner)
    rump = text[:len(text) - len(rest) + len(authority) + 1 + rump_end] if access else None
    return ImapUrl(url.owner, url.mailbox, url.uidvalidity, url.uid, url.section, url.partial,
                   expire, access, mechanism, token, rump)


def relative_url(text):
    """A URL of the session's own mailboxes: "/mailbox;UIDVALIDITY=n/;UID=n/;SECTION=s"
    (RFC 4469 CATENATE's form) or an absolute one."""
    if text.lower().startswith("imap://"):
        return parse_url(text)
    if not text.startswith("/"):
        raise UrlError("not an absolute path")
    return _message_part(text[1:], None)


def _owner(authority):
    userinfo, at, host = authority.rpartition("@")
    if not at:
        raise UrlError("no user in the URL")
    user = urllib.parse.unquote(userinfo.split(";", 1)[0])      # ;AUTH=... is not ours to use
    host = host.split(":", 1)[0]
    if not user or not host:
        raise UrlError("no user in the URL")
    return user if "@" in user else f"{user}@{host}"


def _urlauth(path):
    """path -> (path without the authorization part, expire, access, mechanism, token,
    where the rump ends in path)."""
    lower = path.lower()
    i = lower.rfind(";urlauth=")
    if i < 0:
        return path, None, None, None, None, 0
    auth = path[i + 9:]
    access, _, mech_token = auth.partition(":")
    if not _ACCESS.match(access):
        raise UrlError("bad access identifier")
    mechanism = token = None
    if mech_token:
        mechanism, colon, token = mech_token.partition(":")
        if not colon or not mechanism or not re.fullmatch(r"[0-9A-Fa-f]{32,}", token):
            raise UrlError("bad URLAUTH mechanism or token")
    rump_end = i + 9 + len(access)
    head = path[:i]
    expire = None
    j = head.lower().rfind(";expire=")
    if j >= 0:
        expire = _datetime(urllib.parse.unquote(head[j + 8:]))
        head = head[:j]
    return head, expire, access, mechanism, token, rump_end


def _datetime(text):
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UrlError("bad expire date") from None
    if value.tzinfo is None:
        raise UrlError("expire date without a time zone")
    return value


def _message_part(path, owner):
    lower = path.lower()
    i = lower.find("/;uid=")
    if i < 0:
        raise UrlError("no UID in the URL")
    mailbox, parts = path[:i], path[i + 6:].split("/;")
    uidvalidity = None
    j = mailbox.lower().rfind(";uidvalidity=")
    if j >= 0:
        uidvalidity = _number(mailbox[j + 13:], "UIDVALIDITY")
        mailbox = mailbox[:j]
    try:
        mailbox = urllib.parse.unquote(mailbox, errors="strict")
    except UnicodeDecodeError:
        raise UrlError("mailbox name is not UTF-8") from None
    if not mailbox:
        raise UrlError("empty mailbox name")
    uid = _number(parts[0], "UID")
    section = partial = None
    for part in parts[1:]:
        name, eq, value = part.partition("=")
        name = name.lower()
        if not eq:
            raise UrlError(f"bad URL part {part[:20]!r}")
        if name == "section" and section is None and partial is None:
            section = urllib.parse.unquote(value)
            if not section:
                raise UrlError("empty section")
        elif name == "partial" and partial is None:
            offset, dot, length = value.partition(".")
            partial = (_number(offset, "partial offset", zero=True),
                       _number(length, "partial length") if dot else None)
        else:
            raise UrlError(f"bad URL part {part[:20]!r}")
    return ImapUrl(owner, mailbox, uidvalidity, uid, section, partial)


def _number(text, what, zero=False):
    if (not text.isascii() or not text.isdigit() or len(text) > 10
            or (text[0] == "0" and not (zero and text == "0"))):
        raise UrlError(f"bad {what}")
    value = int(text)
    if value > _MAX_NUMBER or (value == 0 and not zero):
        raise UrlError(f"bad {what}")
    return value
