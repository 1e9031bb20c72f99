"""Socket activation: listening sockets inherited from systemd (sd_listen_fds(3)).

A .socket unit binds the ports and starts the service with them open as descriptors
3, 4, ... (SD_LISTEN_FDS_START), saying how many in LISTEN_FDS, for which process in
LISTEN_PID, and their names, colon-separated, in LISTEN_FDNAMES (FileDescriptorName=
of the socket unit; "unknown" where none was given).  listen_fds() reads them the
way sd_listen_fds(unset_environment=1) does: only when LISTEN_PID is this process,
each descriptor made close-on-exec, and the three variables removed so that no child
takes the sockets for its own.

match() pairs each inherited socket with a configured listener by name: the listener
kinds of config.LISTENER_KEYS (smtp, submission, submissions, pop3, pop3s, imap,
imaps).  Several listeners of one kind take that kind's sockets in order.  When
activation is in use every configured listener must get a socket and every socket a
listener: anything else is an ActivationError, one line, and the server does not start.
"""

import os
import socket

from .config import LISTENER_KEYS

SD_LISTEN_FDS_START = 3
LISTEN_ENV = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
KINDS = tuple(kind for kind, *_ in LISTENER_KEYS)


class ActivationError(Exception):
    """Inherited sockets that do not fit the configuration (one line)."""


def listen_fds(environ=None, unset=True):
    """The inherited descriptors as [(name, fd)], in order; [] when none were passed
    to this process.  Raises ActivationError on malformed variables."""
    environ = os.environ if environ is None else environ
    try:
        pid, count, names = (environ.get(key) for key in LISTEN_ENV)
        if not pid or not count:
            return []
        try:
            if int(pid) != os.getpid():
                return []           # meant for another process (our parent, before a fork)
            count = int(count)
        except ValueError:
            raise ActivationError(f"LISTEN_PID={pid!r} LISTEN_FDS={count!r} are not numbers") from None
        if count < 0:
            raise ActivationError(f"LISTEN_FDS={count} is negative")
        names = names.split(":") if names else []
        if names and len(names) != count:
            raise ActivationError(f"LISTEN_FDNAMES has {len(names)} names for {count} sockets")
        fds = list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))
        for fd in fds:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                raise ActivationError(f"inherited descriptor {fd} is not open (LISTEN_FDS={count})") from None
        return list(zip(names or ["unknown"] * count, fds))
    finally:
        if unset:
            for key in LISTEN_ENV:
                environ.pop(key, None)


def adopt(name, fd):
    """A socket object for an inherited descriptor, checked to be a listening stream
    socket (an activated service would otherwise hang or fail on its first accept)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ActivationError(f"inherited descriptor {fd} ({name}) is not a socket: {exc.strerror}") from None
    if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6) \
            or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise ActivationError(f"inherited descriptor {fd} ({name}) is not a listening TCP socket "
                              "(ListenStream= with an address or port)")
    return sock


def match(listeners, inherited):
    """[(Listener, socket)] for every configured listener, in their order, from
    listen_fds()' pairs (adopted here).  Raises ActivationError; on error every
    adopted socket is closed."""
    by_kind = {}
    for name, fd in inherited:
        if name not in KINDS:
            raise ActivationError(
                f"inherited socket {fd} is named {name!r}; set FileDescriptorName= in its .socket unit "
                f"to a listener kind ({', '.join(KINDS)})")
        by_kind.setdefault(name, []).append((name, fd))
    wanted = {}
    for listener in listeners:
        wanted.setdefault(listener.kind, []).append(listener)
    for kind in KINDS:
        have, need = len(by_kind.get(kind, [])), len(wanted.get(kind, []))
        if have != need:
            raise ActivationError(_mismatch(kind, have, need))
    out = []
    try:
        for listener in listeners:
            name, fd = by_kind[listener.kind].pop(0)
            out.append((listener, adopt(name, fd)))
    except ActivationError:
        for _, sock in out:
            sock.close()
        raise
    return out


def _mismatch(kind, have, need):
    key = next(f"[{section}] {key}" for k, _, section, key, _ in LISTENER_KEYS if k == kind)
    if need > have:
        return (f"{kind}: {need} listener(s) in {key} but {have} inherited socket(s) named {kind!r}; "
                f"with socket activation every listener needs a .socket unit (FileDescriptorName={kind})")
    return (f"{kind}: {have} inherited socket(s) named {kind!r} but {need} listener(s) in {key}; "
            f"list each socket's address there too")


def describe(sock):
    """'127.0.0.1:25' or '[::]:993' of a bound socket, for log lines."""
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
