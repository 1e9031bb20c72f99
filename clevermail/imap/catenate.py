"""CATENATE (RFC 4469): an APPENDed message put together on the server from text
literals and URLs of messages or parts the user may read.

    APPEND mailbox [flags] [date] CATENATE (TEXT literal URL "/INBOX/;UID=3/;SECTION=1" ...)
    (with UTF8=ACCEPT a part may also be UTF8 (literal8), RFC 6855 4)

`parse_parts(tokens)` checks the list's shape (BAD when it is wrong); `assemble`
resolves each URL and joins the pieces.  A URL is one of the user's own mailboxes
("/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o.l]", or an imap:// URL
naming the user), or any URL authorized by URLAUTH (RFC 4467) for this session; one
that names nothing (a wrong UIDVALIDITY, a message gone) makes the APPEND fail with
NO [BADURL url] (RFC 4469 5.1), the whole message past `limit` with NO [TOOBIG].
"""

from . import binary, cmd_urlauth
from .parser import Atom, Literal, Literal8, astring
from .replies import IMAPBad, IMAPNo
from .url import UrlError, relative_url

MAX_PARTS = 100      # pieces in one CATENATE list: a message, not a program


class Parts(list):
    """The parts of one CATENATE message (parse_parts' list), put together by
    `assemble` when the APPEND runs, after its mailbox was found to exist."""


def parse_parts(tokens):
    """The list after CATENATE -> [("TEXT", bytes) | ("URL", str)]; a literal8 text
    (RFC 4469 5, with BINARY) stays a Literal8; "UTF8 (literal8)" (RFC 6855 4) is a
    text too."""
    if not isinstance(tokens, list) or not tokens:
        raise IMAPBad("CATENATE takes a list of TEXT literals and URLs")
    if len(tokens) > 2 * MAX_PARTS:
        raise IMAPBad(f"CATENATE takes at most {MAX_PARTS} parts")
    parts = []
    i = 0
    while i < len(tokens):
        kind = tokens[i]
        if not isinstance(kind, Atom) or i + 1 >= len(tokens):
            raise IMAPBad("CATENATE parts are TEXT literal or URL url")
        value = tokens[i + 1]
        if kind.upper() == "TEXT" and isinstance(value, bytes):
            parts.append(("TEXT", value))
        elif kind.upper() == "UTF8" and isinstance(value, list) and len(value) == 1 \
                and isinstance(value[0], Literal):
            parts.append(("TEXT", value[0]))
        elif kind.upper() == "URL" and not isinstance(value, list):
            parts.append(("URL", astring(value)))
        else:
            raise IMAPBad("CATENATE parts are TEXT literal or URL url")
        i += 2
    return parts


def assemble(session, parts, limit):
    """The message the parts make, in wire form (made storable as a binary APPEND's
    when a text came as a literal8)."""
    out, size = [], 0
    for kind, value in parts:
        data = value if kind == "TEXT" else _url_bytes(session, value)
        size += len(data)
        if size > limit:
            raise IMAPNo("The message would be too big", "TOOBIG")
        out.append(data)
    message = b"".join(out)
    if any(isinstance(value, Literal8) for _, value in parts):
        message = binary.storable(message)
    return message


def _url_bytes(session, text):
    try:
        url = relative_url(text)
    except UrlError:
        raise _badurl(text) from None
    me = session.account.address
    if url.owner is None or (url.access is None and url.owner.lower() == me.lower()):
        found = cmd_urlauth.read_part(session, me, url)
    elif url.access is not None and cmd_urlauth.verified_for(session, url):
        found = cmd_urlauth.read_part(session, url.owner, url)
    else:
        found = None
    if found is None:
        raise _badurl(text)
    return cmd_urlauth.section_bytes(found)


def _badurl(text):
    # the URL goes back inside a response code: no "]" or line break may end it early
    shown = text.replace("]", "%5D").replace("\r", "").replace("\n", "")[:300]
    return IMAPNo("Unable to fetch the URL", f"BADURL {shown}")
