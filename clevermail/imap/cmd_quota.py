"""IMAP QUOTA (RFC 9208) and the STATUS items that come with quotas and sizes:
GETQUOTA, GETQUOTAROOT and SETQUOTA; STATUS SIZE (RFC 8438), DELETED and
DELETED-STORAGE (RFC 9208 4.2), APPENDLIMIT (RFC 7889); the capabilities that
announce them.

One quota root per user, named "" (as the RFC's examples and mox do): every folder
of the user counts against it, so GETQUOTAROOT of any mailbox names "" (the mailbox
need not exist: the client asks which limits would apply).  Resources: STORAGE in
units of 1024 octets (usage rounded up, limit rounded down: never less used nor
more allowed than is true) and MESSAGE; a resource without a limit is left out,
and with no limit at all no QUOTA response is sent (its list may not be empty).
The limits are the administrator's (`clevermail user quota`, [quota]): QUOTASET is
not offered and SETQUOTA is answered NO [NOPERM].  APPEND and COPY over quota are
refused NO [OVERQUOTA] by the store error OverQuota (replies.store_error); so is a
MOVE, whose messages leave a folder of the same root, only when the user is over
quota already, and never into \\Trash (imap/handler.py copy()).

Plain functions `cmd_x(session, cmd)` in IMAPSession.COMMANDS, like cmd_mailboxes.py.
"""

from . import replies as R
from .names import mailbox_name, wire_name
from .parser import astring, quote

CAPABILITIES = ("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "STATUS=SIZE")
ROOT = ""
# STATUS item -> field of the values status_values() adds to the store's FolderStatus
STATUS_ITEMS = {"SIZE": "size", "DELETED": "deleted", "DELETED-STORAGE": "deleted_size",
                "APPENDLIMIT": "appendlimit"}


def capabilities(session):
    """QUOTA's capabilities, STATUS=SIZE, and APPENDLIMIT=<the largest literal>."""
    return [*CAPABILITIES, f"APPENDLIMIT={session.server.limits.message_size}"]


def status_values(session, name, items):
    """{field: value} of the STATUS items of this module among `items` (none asked:
    nothing is read)."""
    wanted = {STATUS_ITEMS[i] for i in items if i in STATUS_ITEMS}
    if not wanted:
        return {}
    values = {"appendlimit": session.server.limits.message_size}
    if wanted - {"appendlimit"}:
        values.update(session.server.handler.folder_sizes(session.account.address, name)._asdict())
    return values


def quota_line(usage, limits):
    """The untagged QUOTA response of the user's root, or None without any limit."""
    resources = []
    if limits.storage is not None:
        resources.append(f"STORAGE {-(-usage.storage // 1024)} {limits.storage // 1024}")
    if limits.messages is not None:
        resources.append(f"MESSAGE {usage.messages} {limits.messages}")
    if not resources:
        return None
    return f"* QUOTA {quote(ROOT).decode()} ({' '.join(resources)})\r\n".encode()


def cmd_getquotaroot(session, cmd):
    """The quota roots of a mailbox and their usage and limits.
    States: authenticated, selected.
    RFC 9208 4.1.2."""
    if len(cmd.args) != 1:
        raise R.GETQUOTAROOT_ARGS.error()
    name = mailbox_name(cmd.args[0], session.utf8)
    line = quota_line(*session.server.handler.quota(session.account.address, name))
    session.send(b"* QUOTAROOT %s %s\r\n" % (wire_name(name, session.utf8), quote(ROOT)) + (line or b""))


def cmd_getquota(session, cmd):
    """The usage and limits of a quota root (only the user's own, "").
    States: authenticated, selected.
    RFC 9208 4.1.1."""
    if len(cmd.args) != 1:
        raise R.GETQUOTA_ARGS.error()
    if astring(cmd.args[0]) != ROOT:
        raise R.NO_SUCH_QUOTA_ROOT.error()
    line = quota_line(*session.server.handler.quota(session.account.address))
    if line:
        session.send(line)


def cmd_setquota(session, cmd):
    """Refused: the limits are set by the administrator (no QUOTASET capability).
    States: authenticated, selected.
    RFC 9208 4.1.3."""
    if len(cmd.args) != 2 or not isinstance(cmd.args[1], list):
        raise R.SETQUOTA_ARGS.error()
    raise R.SETQUOTA_DENIED.error()
