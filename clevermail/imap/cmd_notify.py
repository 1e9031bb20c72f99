"""The NOTIFY command (RFC 5465 3.1) and the waits of a session with NOTIFY set: for
its next command (3.1: updates between commands) and in IDLE (4: the same events).

`cmd_notify` parses (notify_spec.py), builds the new Notifier (notify.py) before the
old one goes (a refused NOTIFY leaves the old in force), sends the first STATUS
responses for SET STATUS, then answers OK; the session's update path sends what had
accumulated for the selected mailbox (3.1: an implicit NOOP).  `wait` and `cmd_idle`
poll the client's socket, the notifier's eventfd and the server's drain signal
together, sending the updates as each change comes and, every notify.POLL seconds,
after a look for other processes' tree changes.
"""

import select
import socket
import time

from . import replies as R
from .idle import cmd_idle as plain_idle
from .idle import read_done
from .notify import POLL, Notifier
from .notify_spec import parse_notify

# commands that add messages themselves: no fetch-atts for those (RFC 5465 5.2 SHOULD NOT)
ADDING = frozenset({"APPEND", "COPY", "MOVE", "UID COPY", "UID MOVE"})


def cmd_notify(session, cmd):
    """Set (or with NONE, stop) the events the server sends unasked.
    States: authenticated, selected.
    RFC 5465 3.1."""
    spec = parse_notify(cmd.args)
    old = session.notifier
    # what had accumulated for the selected mailbox goes out now, as for a NOOP
    session.flush_updates("NOOP")
    notifier = Notifier(session, spec)
    session.notifier = notifier
    if old is not None:
        old.close()
    if spec.status:
        lines = notifier.initial_status()
        if lines:
            session.send_many(lines)
    return "NOTIFY completed"


def close(session):
    """The session ends (or logs out): its notifier stops watching."""
    notifier, session.notifier = session.notifier, None
    if notifier is not None:
        notifier.close()


def wait(session):
    """Between commands: send the updates as they come until the client's next command
    can be read or the server drains (the caller looks at both), or the session's
    time runs out (socket.timeout)."""
    sock_fd = session.connection.fileno()
    drain_fd = session.server.drain_fd
    deadline = time.monotonic() + session.timeout
    while True:
        if session.server.draining or session.reader.has_buffered():
            return
        notifier = session.notifier         # an overflow (5.8) replaces it
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out")
        session.flush()             # the updates said out before the wait
        ready, changed = _poll(sock_fd, notifier, drain_fd, min(remaining, POLL))
        if sock_fd in ready or (drain_fd is not None and drain_fd in ready):
            return
        notifier.flush(allow_expunge=not notifier.spec.delayed, poll=not changed)
        if session.mailbox is not None and session.mailbox.gone:
            session.flush_updates("NOOP")   # says BYE and ends the session


def cmd_idle(session, cmd):
    """Report changes as they happen until DONE: those NOTIFY asks, else idle.py's.
    States: authenticated, selected.
    RFC 2177, RFC 5465 4."""
    if session.notifier is None:
        return plain_idle(session, cmd)
    if cmd.args:
        raise R.IDLE_ARGS.error()
    session.send(b"+ idling\r\n")
    sock_fd = session.connection.fileno()
    drain_fd = session.server.drain_fd
    deadline = time.monotonic() + session.server.limits.timeout
    poll = False
    while True:
        if session.server.draining:
            raise R.SHUTTING_DOWN.error()
        session.notifier.flush(allow_expunge=True, poll=poll)
        if session.mailbox is not None and session.mailbox.gone:
            raise R.MAILBOX_DELETED.error()
        notifier = session.notifier
        if not session.reader.has_buffered():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise R.AUTOLOGOUT.error()
            session.flush()         # `+ idling` and the updates out before the wait
            ready, changed = _poll(sock_fd, notifier, drain_fd, min(remaining, POLL))
            poll = not (ready or changed)
            if sock_fd not in ready:
                continue
        read_done(session.reader, session.line_limit)
        return "IDLE terminated"


def _poll(sock_fd, notifier, drain_fd, seconds):
    """(the descriptors found readable among the client's socket and the server's
    drain signal, whether the notifier has changes to send), waiting up to `seconds`
    (not at all when a change is already waiting)."""
    poller = select.poll()
    poller.register(sock_fd, select.POLLIN)
    if drain_fd is not None:
        poller.register(drain_fd, select.POLLIN)
    fds = notifier.arm()
    if fds is None:
        seconds = 0             # a folder changed since its last look: no sleep
        fds = []
    for fd in fds:
        poller.register(fd, select.POLLIN)
    ready = set()
    try:
        ready = {fd for fd, _ in poller.poll(seconds * 1000)}
    finally:
        changed = notifier.disarm(ready)
    return ready & {sock_fd, drain_fd}, changed
