"""URLAUTH (RFC 4467) with URLAUTH=BINARY (RFC 5524): GENURLAUTH, RESETKEY, URLFETCH.

A user authorizes a URL of one of their messages (or a part) for someone: GENURLAUTH
takes "imap://user@host/mailbox/;uid=n[/;section=s];urlauth=access" and answers the
same URL with ":internal:<token>" appended, the token an HMAC of the URL with the
mailbox's access key (store/url_keys.py; keys never leave the store).  URLFETCH
gives the content of such URLs to whoever the access identifier allows ("anonymous",
"authuser", "user+<address>"; "submit+<address>" is for a submission server's BURL,
so IMAP never fetches it), NIL for any URL that does not verify, is expired, or
names a message that is gone: the reason is never told (RFC 4467 6).  RESETKEY
replaces keys, so every URL signed with them stops working.

URLAUTH=BINARY: URLFETCH (url BODY|BINARY|BODYPARTSTRUCTURE...) answers the part's
content, decoded content (binary.py) or BODYSTRUCTURE as a list.
"""

import datetime

from ..store.errors import MessageGone, NoSuchFolder
from ..store.paths import SEPARATOR
from . import binary, mime
from . import replies as R
from .bodystructure import part_structure
from .sections import parse_section
from .names import mailbox_name
from .parser import astring, quote
from .replies import IMAPBad
from .url import UrlError, parse_url

MECHANISM = "INTERNAL"
# the order of the answer, whatever the request's (as Dovecot and imaptest have it)
_PARAMS = ("BODYPARTSTRUCTURE", "BODY", "BINARY")


def cmd_genurlauth(session, cmd):
    """Sign URLs of the user's own messages.
    States: authenticated, selected.
    RFC 4467 3.1."""
    args = cmd.args
    if not args or len(args) % 2:
        raise R.GENURLAUTH_ARGS.error()
    signed = []
    for text_arg, mech_arg in zip(args[::2], args[1::2]):
        text, mechanism = astring(text_arg), astring(mech_arg)
        if mechanism.upper() != MECHANISM:
            raise R.UNKNOWN_URLAUTH_MECHANISM.error()
        try:
            url = parse_url(text)
        except UrlError as exc:
            raise R.BAD_URL.error(str(exc)) from None
        if url.access is None or url.token is not None:
            raise R.BAD_URL.error("needs ;URLAUTH=<access> and no token")
        if url.owner.lower() != session.account.address.lower():
            raise R.URL_NOT_OURS.error()
        name = _folder_name(url.mailbox)
        try:
            token = session.server.handler.sign_url(session.account.address, name, url.rump)
        except NoSuchFolder:
            raise R.NONEXISTENT.error() from None
        signed.append(f"{url.rump}:{MECHANISM.lower()}:{token}")
    session.send(b"* GENURLAUTH " + b" ".join(quote(u) for u in signed) + b"\r\n")
    return "GENURLAUTH completed"


def cmd_resetkey(session, cmd):
    """New access keys for a mailbox (or all of the user's): its URLs stop working.
    States: authenticated, selected.
    RFC 4467 3.2."""
    name = None
    if cmd.args:
        name = mailbox_name(cmd.args[0], session.utf8)
        for mech in cmd.args[1:]:
            if astring(mech).upper() != MECHANISM:
                raise R.UNKNOWN_URLAUTH_MECHANISM.error()
    try:
        session.server.handler.reset_url_keys(session.account.address, name)
    except NoSuchFolder:
        raise R.NONEXISTENT.error() from None
    return "RESETKEY completed"


def cmd_urlfetch(session, cmd):
    """The content of authorized URLs, NIL for those that do not verify.
    States: authenticated, selected.
    RFC 4467 3.3, RFC 5524 (the parenthesized form)."""
    if not cmd.args:
        raise R.URLFETCH_ARGS.error()
    for arg in cmd.args:
        if isinstance(arg, list):
            if not arg or isinstance(arg[0], list):
                raise R.URLFETCH_ARGS.error()
            text = astring(arg[0])
            params = [_param(p) for p in arg[1:]]
            data = _fetch(session, text, params)
        else:
            text = astring(arg)
            data = _fetch(session, text, None)
        session.send(b"* URLFETCH " + quote(text) + b" " + data + b"\r\n")
    return "URLFETCH completed"


def _param(token):
    if isinstance(token, list):
        raise R.URLFETCH_ARGS.error()
    name = astring(token).upper()
    if name not in _PARAMS:
        raise IMAPBad(f"Unknown URLFETCH parameter {name[:30]}")
    return name


def _fetch(session, text, params):
    """The response data for one URL: an nstring, or for the parenthesized form a list
    of the parameters asked for (NIL when the URL gives nothing)."""
    found = _resolve(session, text)
    if found is None:
        return b"NIL"
    pm, nums, section_text, fields, partial = found
    if params is None:
        return binary.literal(section_bytes(found))
    out = []
    for name in (p for p in _PARAMS if p in params):
        if name == "BODYPARTSTRUCTURE":
            if section_text is not None:
                continue                        # only parts have a structure
            structure = (binary.decoded_structure if "BINARY" in params else part_structure)(pm, nums)
            out.append(b"BODYPARTSTRUCTURE " + (structure or b"NIL"))
        elif name == "BINARY":
            try:
                data = binary.decoded(pm, nums) if section_text is None else None
            except binary.UnknownCTE:
                data = None
            out.append(b"BINARY " + (b"NIL" if data is None else binary.literal(_cut(data, partial))))
        else:
            out.append(b"BODY " + binary.literal(section_bytes(found)))
    return b"(" + b" ".join(out) + b")"


def _resolve(session, text):
    """(parsed message, part numbers, section text, header names, partial) of a URL
    that verifies for this session, else None."""
    try:
        url = parse_url(text)
    except UrlError:
        return None
    return read_part(session, url.owner, url) if verified_for(session, url) else None


def read_part(session, owner, url):
    """What `url` (an ImapUrl) names in `owner`'s mailboxes, as (parsed message, part
    numbers, section text, header names, partial); None when it is gone or malformed.
    The caller has checked that the session may read it."""
    try:
        section = parse_section(url.section) if url.section else ((), None, ())
        raw = session.server.handler.read_url_message(owner, _folder_name(url.mailbox), url.uid,
                                                      url.uidvalidity)
    except (IMAPBad, MessageGone, NoSuchFolder, FileNotFoundError, ValueError):
        return None
    return (mime.parse(raw), *section, url.partial)


def section_bytes(found):
    """The bytes of a read_part() result: its section, cut to its partial."""
    pm, nums, text, fields, partial = found
    return _cut(mime.section(pm, nums, text, fields), partial)


def verified_for(session, url):
    """True when an absolute URL carrying URLAUTH authorizes this session (URLFETCH's
    rules: a valid token of the owner's key, not expired, the access identifier)."""
    if url.access is None or url.token is None or url.mechanism.upper() != MECHANISM:
        return False
    if url.expire is not None and url.expire <= datetime.datetime.now(datetime.timezone.utc):
        return False
    if not _allowed(url.access, session.account.address):
        return False
    try:
        return session.server.handler.verify_url(url.owner, _folder_name(url.mailbox), url.rump, url.token)
    except (NoSuchFolder, FileNotFoundError, ValueError):
        return False


def _allowed(access, address):
    kind, _, who = access.partition("+")
    kind = kind.lower()
    if kind in ("anonymous", "authuser"):
        return True
    return kind == "user" and who.lower() == address.lower()


def _folder_name(name):
    if name.upper() == "INBOX" or name.upper().startswith("INBOX" + SEPARATOR):
        return "INBOX" + name[5:]
    return name


def _cut(data, partial):
    if partial is None:
        return data
    offset, length = partial
    return data[offset:] if length is None else data[offset:offset + length]
