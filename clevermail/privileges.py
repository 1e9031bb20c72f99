"""Running as an unprivileged user: [server] user and group.

Started as root (to bind ports below 1024, or to read a root-only TLS key), the
server binds every listener, then drop() takes on the configured user for good:
supplementary groups (the user's, as initgroups(3) gives them), then the group, then
the user (real, effective and saved ids, in that order, since after setuid nothing
else may be changed), and checks that root cannot be had back.  MailService does this
before it opens the store, serves a connection or starts the relay worker, so that
every file the server creates belongs to that user.

check_paths() runs before: the data directory (and what is directly in it) must be
writable by the user the server will run as and the users and aliases files readable by it,
or start-up stops with one line that says what to chown.  A missing data directory is
created for that user, and an empty one (systemd's StateDirectory=) given to it.

Started as root without a user the server still runs, with a WARNING naming the
setting.  A user set while not started as root is fine when it is the user already
running (systemd's User=), and an error otherwise.
"""

import grp
import logging
import os
import pwd
import stat
from dataclasses import dataclass

log = logging.getLogger("clevermail.privileges")

ROOT_WARNING = ("running as root: set [server] user (and group) so that the server drops "
                "privileges once its ports are bound")


class PrivilegeError(Exception):
    """Why the server cannot run as the configured user (one line)."""


@dataclass(frozen=True)
class RunAs:
    """The user and group the server runs as after the drop."""

    user: str
    uid: int
    group: str
    gid: int

    @property
    def groups(self):
        """The supplementary groups initgroups(3) would give (the primary one included)."""
        return sorted(set(os.getgrouplist(self.user, self.gid)) | {self.gid})


# -- names ------------------------------------------------------------------------------
def lookup_user(name):
    """The passwd entry of a user name (or a numeric uid); KeyError when there is none."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        if name.isdigit():
            return pwd.getpwuid(int(name))
        raise


def lookup_group(name):
    try:
        return grp.getgrnam(name)
    except KeyError:
        if name.isdigit():
            return grp.getgrgid(int(name))
        raise


def check_names(user, group):
    """Problems with [server] user/group, for config checking (empty: fine)."""
    problems = []
    if user:
        try:
            lookup_user(user)
        except KeyError:
            problems.append(f"[server] user: no such user {user!r} on this system")
    if group:
        try:
            lookup_group(group)
        except KeyError:
            problems.append(f"[server] group: no such group {group!r} on this system")
        if not user:
            problems.append("[server] group: needs [server] user too")
    return problems


def resolve(user, group=""):
    """RunAs for the configured names (the user's own group when none is given)."""
    try:
        pw = lookup_user(user)
    except KeyError:
        raise PrivilegeError(f"[server] user: no such user {user!r}") from None
    if group:
        try:
            gr = lookup_group(group)
        except KeyError:
            raise PrivilegeError(f"[server] group: no such group {group!r}") from None
    else:
        try:
            gr = grp.getgrgid(pw.pw_gid)
        except KeyError:       # a primary gid with no group entry: still a valid gid
            return RunAs(pw.pw_name, pw.pw_uid, str(pw.pw_gid), pw.pw_gid)
    return RunAs(pw.pw_name, pw.pw_uid, gr.gr_name, gr.gr_gid)


def plan(user, group):
    """Who to become: a RunAs to drop to, or None to stay as this process is (warn()
    says so when that is root).  Raises PrivilegeError when a user is set that this
    process can neither become nor already is."""
    euid = os.geteuid()
    if not user:
        return None
    run_as = resolve(user, group)
    if euid == 0:
        return None if run_as.uid == 0 else run_as
    if euid == run_as.uid and os.getegid() == run_as.gid:
        return None            # already that user (systemd User=, su): nothing to drop
    me = _user_name(euid)
    raise PrivilegeError(f"[server] user = {run_as.user}: the server runs as {me}, and only root "
                         f"can switch to another user (start it as root or as {run_as.user}, or unset the key)")


def warn_if_root():
    """The WARNING of a server left running as root (once it is up, not on a failed start)."""
    if os.geteuid() == 0:
        log.warning(ROOT_WARNING)


def current():
    """The RunAs of this process as it is."""
    euid, egid = os.geteuid(), os.getegid()
    return RunAs(_user_name(euid), euid, _group_name(egid), egid)


# -- the drop --------------------------------------------------------------------------------
def drop(run_as):
    """Become run_as for good; raises PrivilegeError if any step fails or root could
    be had back afterwards."""
    try:
        os.setgroups(run_as.groups)
        os.setgid(run_as.gid)     # root: real, effective and saved gid
        os.setuid(run_as.uid)     # root: real, effective and saved uid; last, it ends root
    except OSError as exc:
        raise PrivilegeError(f"cannot switch to user {run_as.user} (group {run_as.group}): "
                             f"{exc.strerror or exc}") from None
    verify(run_as)
    log.info("running as user %s, group %s", run_as.user, run_as.group)


def verify(run_as):
    """Every uid and gid is run_as's, and setuid(0) fails (no saved root to return to)."""
    if os.getresuid() != (run_as.uid,) * 3 or os.getresgid() != (run_as.gid,) * 3:
        raise PrivilegeError(f"after switching to {run_as.user}: uids {os.getresuid()}, gids {os.getresgid()}")
    if run_as.uid == 0:
        return
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise PrivilegeError(f"after switching to {run_as.user} the process could become root again")


# -- files the user must own -------------------------------------------------------------------
def check_paths(run_as, data_dir, readable=None, log_file=""):
    """Before the drop (or, without one, as the user running): the data directory and
    what is directly in it writable by run_as, and the files in `readable` ({"users
    file": path, ...}; a path not there yet is fine) readable by it.
    A missing or empty data directory is given to run_as, and so is a root-owned log
    file (setup_logging opened it as root; reopened after a rotation, it must be
    run_as's).  Raises PrivilegeError."""
    if run_as.uid == 0:
        return                 # root writes anything
    if log_file and os.geteuid() == 0 and os.path.isfile(log_file):
        st = os.stat(log_file)
        if st.st_uid == 0:
            os.chown(log_file, run_as.uid, run_as.gid)
        elif not _allowed(st, run_as, 0o2):
            raise PrivilegeError(f"log file {log_file} is owned by {_user_name(st.st_uid)}; "
                                 f"run: chown {run_as.user}: {log_file}")
    if not os.path.lexists(data_dir):
        _unreachable(run_as, data_dir, "data directory")
        try:
            os.makedirs(data_dir, mode=0o750, exist_ok=True)
            if os.geteuid() == 0:
                os.chown(data_dir, run_as.uid, run_as.gid)
        except OSError:
            return             # MailService's write test says why, as for any user
    elif os.geteuid() == 0 and _empty_dir(data_dir) and os.stat(data_dir).st_uid != run_as.uid:
        # an empty one (systemd's StateDirectory= makes it root's) holds nothing to lose
        os.chown(data_dir, run_as.uid, run_as.gid)
    _unreachable(run_as, data_dir, "data directory")
    chown = f"chown -R {run_as.user}: {data_dir}"
    try:
        entries = [data_dir] + [os.path.join(data_dir, name) for name in sorted(os.listdir(data_dir))]
    except OSError:
        entries = [data_dir]
    for path in entries:
        try:
            st = os.stat(path)
        except OSError:
            continue
        what = "data directory" if path == data_dir else "data directory entry"
        directory = stat.S_ISDIR(st.st_mode)
        if _allowed(st, run_as, 0o3 if directory else 0o6):
            continue
        if st.st_uid != run_as.uid:
            raise PrivilegeError(f"{what} {path} is owned by {_user_name(st.st_uid)}; run: {chown}")
        raise PrivilegeError(f"{what} {path} is mode {stat.S_IMODE(st.st_mode):04o}, not writable by "
                             f"{run_as.user}; run: chmod u+rw{'x' if directory else ''} {path}")
    for what, path in (readable or {}).items():
        if not path or not os.path.exists(path):
            continue
        _unreachable(run_as, path, what)
        st = os.stat(path)
        if not _allowed(st, run_as, 0o4):
            raise PrivilegeError(f"{what} {path} (owner {_user_name(st.st_uid)}, mode "
                                 f"{stat.S_IMODE(st.st_mode):04o}) is not readable by {run_as.user}; "
                                 f"run: chown {run_as.user}: {path}")


def _empty_dir(path):
    try:
        return os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path)
    except OSError:
        return False


def _unreachable(run_as, path, what):
    """Every directory above `path` must let run_as through (search permission)."""
    parent = os.path.dirname(os.path.abspath(path))
    chain = []
    while True:
        chain.append(parent)
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    for directory in reversed(chain):
        try:
            st = os.stat(directory)
        except OSError:
            return              # missing (makedirs makes it) or not a directory (it fails)
        if not stat.S_ISDIR(st.st_mode):
            return
        if not _allowed(st, run_as, 0o1):
            raise PrivilegeError(f"{what} {path} cannot be reached by {run_as.user}: {directory} is mode "
                                 f"{stat.S_IMODE(st.st_mode):04o}, owner {_user_name(st.st_uid)}")


def _allowed(st, run_as, bits):
    """Whether run_as has every permission in `bits` (4 read, 2 write, 1 search) by the
    mode bits (the owner's class, else the group's, else the others', as the kernel does)."""
    if st.st_uid == run_as.uid:
        shift = 6
    elif st.st_gid in run_as.groups:
        shift = 3
    else:
        shift = 0
    return (st.st_mode >> shift) & bits == bits


def _user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
