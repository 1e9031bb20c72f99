"""[server] user/group: config checks, the ownership checks with their one-line chown
advice, and the drop itself in a real `clevermail start` started as root (to nobody:
nogroup, which Debian has), verified from /proc and by serving mail as that user."""

import imaplib
import os
import pwd
import shutil
import signal
import smtplib
import tempfile

import pytest

from clevermail import privileges
from clevermail.config import ConfigError, load_config
from clevermail.privileges import PrivilegeError, RunAs, check_paths, resolve
from components import component_missing
from server_process import ServerProcess
from test_sdnotify import Receiver
from waiting import wait_for

@pytest.fixture
def root_only():
    if os.geteuid() != 0:
        component_missing("dropping privileges needs root (CI runs as root)")


def nobody():
    try:
        return resolve("nobody", "nogroup")
    except PrivilegeError:
        component_missing("this system has no user nobody / group nogroup (Debian has both)")


@pytest.fixture
def reachable_dir():
    """A directory every user can reach (pytest's tmp_path is under a 0700 root dir)."""
    path = tempfile.mkdtemp(prefix="cm-priv-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# -- configuration -------------------------------------------------------------------------------
def test_user_and_group_must_exist(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"server": {"data_dir": str(tmp_path), "user": "no-such-user-cm",
                                          "group": "no-such-group-cm"}})
    assert info.value.problems == [
        "<defaults>: [server] user: no such user 'no-such-user-cm' on this system",
        "<defaults>: [server] group: no such group 'no-such-group-cm' on this system"]


def test_group_needs_a_user():
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"server": {"group": "root"}})
    assert info.value.problems == ["<defaults>: [server] group: needs [server] user too"]


def test_settings_carry_user_and_group():
    conf = load_config(overrides={"server": {"user": "root", "group": "root"}})
    assert (conf.server.user, conf.server.group) == ("root", "root")
    assert (load_config().server.user, load_config().server.group) == ("", "")


def test_resolve_takes_the_users_own_group_by_default():
    pw = pwd.getpwnam("root")
    assert resolve("root") == RunAs("root", 0, "root", pw.pw_gid)
    assert resolve("0").user == "root"      # numeric ids too


def test_a_user_other_than_the_running_one_needs_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    with pytest.raises(PrivilegeError, match="only root can switch to another user"):
        privileges.plan("root", "")


def test_no_user_means_no_drop():
    assert privileges.plan("", "") is None


# -- what the user must own -------------------------------------------------------------------------
def _as_other(run_as):
    """A RunAs that is not root, for the checks (they only read the mode bits)."""
    return RunAs(run_as.user, run_as.uid, run_as.group, run_as.gid)


@pytest.mark.usefixtures("root_only")
def test_missing_data_dir_is_made_for_the_user(reachable_dir):
    user = nobody()
    data = os.path.join(reachable_dir, "data")
    check_paths(user, data, {"users file": os.path.join(reachable_dir, "users.ini")})
    st = os.stat(data)
    assert (st.st_uid, st.st_gid) == (user.uid, user.gid)


@pytest.mark.usefixtures("root_only")
def test_empty_data_dir_of_root_is_given_to_the_user(reachable_dir):
    """systemd's StateDirectory= makes /var/lib/clevermail root's when the unit has no User=."""
    user = nobody()
    data = os.path.join(reachable_dir, "data")
    os.mkdir(data, 0o750)
    check_paths(user, data)
    assert os.stat(data).st_uid == user.uid


@pytest.mark.usefixtures("root_only")
def test_data_dir_owned_by_root_says_what_to_chown(reachable_dir):
    user = nobody()
    data = os.path.join(reachable_dir, "data")
    os.mkdir(data, 0o755)
    with open(os.path.join(data, "clevermail.pid"), "w"):
        pass                              # not empty: nothing is chowned behind the admin's back
    with pytest.raises(PrivilegeError) as info:
        check_paths(user, data)
    assert str(info.value) == f"data directory {data} is owned by root; run: chown -R nobody: {data}"
    assert os.stat(data).st_uid == 0
    # the data directory is the user's, but something in it is not
    os.chown(data, user.uid, user.gid)
    os.chown(os.path.join(data, "clevermail.pid"), user.uid, user.gid)
    os.mkdir(os.path.join(data, "queue"), 0o700)
    with pytest.raises(PrivilegeError) as info:
        check_paths(user, data)
    assert str(info.value) == (f"data directory entry {data}/queue is owned by root; "
                               f"run: chown -R nobody: {data}")
    os.chown(os.path.join(data, "queue"), user.uid, user.gid)
    check_paths(user, data)


@pytest.mark.usefixtures("root_only")
def test_data_dir_out_of_reach(tmp_path):
    user = nobody()
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    data = str(closed / "data")
    with pytest.raises(PrivilegeError) as info:
        check_paths(user, data)
    assert str(info.value).startswith(f"data directory {data} cannot be reached by nobody: ")
    assert not os.path.exists(data)


@pytest.mark.usefixtures("root_only")
def test_users_file_must_be_readable(reachable_dir):
    user = nobody()
    data = os.path.join(reachable_dir, "data")
    users = os.path.join(reachable_dir, "users.ini")
    with open(users, "w") as f:
        f.write("")
    os.chmod(users, 0o600)
    with pytest.raises(PrivilegeError) as info:
        check_paths(user, data, {"users file": users})
    assert str(info.value) == (f"users file {users} (owner root, mode 0600) is not readable by nobody; "
                               f"run: chown nobody: {users}")
    os.chmod(users, 0o644)
    check_paths(user, data, {"users file": users})


@pytest.mark.usefixtures("root_only")
def test_start_checks_the_aliases_file_too(reachable_dir, make_config, monkeypatch, thread_guard):
    from clevermail.service import MailService, StartupError

    def no_drop_here(run_as):
        raise AssertionError("the check must refuse first: this test process keeps root")
    monkeypatch.setattr(privileges, "drop", no_drop_here)
    aliases = os.path.join(reachable_dir, "aliases.ini")
    with open(aliases, "w"):
        pass
    os.chmod(aliases, 0o600)
    conf = make_config(_Dir(reachable_dir), server={"user": "nobody", "aliases_file": aliases,
                                                    "data_dir": os.path.join(reachable_dir, "data")})
    with pytest.raises(StartupError) as info:
        MailService(conf).start()       # refused before anything is bound or dropped
    assert str(info.value) == (f"aliases file {aliases} (owner root, mode 0600) is not readable by nobody; "
                               f"run: chown nobody: {aliases}")
    assert os.geteuid() == 0


@pytest.mark.usefixtures("root_only")
def test_log_file_opened_as_root_is_given_to_the_user(reachable_dir):
    """setup_logging opens the log file before the drop; a reopen after logrotate runs as the user."""
    user = nobody()
    log_file = os.path.join(reachable_dir, "cm.log")
    with open(log_file, "w"):
        pass
    check_paths(user, os.path.join(reachable_dir, "data"), {}, log_file)
    assert os.stat(log_file).st_uid == user.uid
    os.chown(log_file, 1, 1)            # another user's (daemon), not root's: not taken over
    os.chmod(log_file, 0o644)
    with pytest.raises(PrivilegeError) as info:
        check_paths(user, os.path.join(reachable_dir, "data"), {}, log_file)
    owner = pwd.getpwuid(1).pw_name
    assert str(info.value) == f"log file {log_file} is owned by {owner}; run: chown nobody: {log_file}"


def test_root_needs_no_checks(tmp_path):
    check_paths(RunAs("root", 0, "root", 0), str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_verify_refuses_ids_that_are_not_the_users():
    me = privileges.current()
    other = RunAs("someone", me.uid + 1, "them", me.gid + 1)
    with pytest.raises(PrivilegeError, match="after switching to someone: uids"):
        privileges.verify(other)


# -- `clevermail start` as root with [server] user -------------------------------------------------------
def _proc_ids(pid):
    ids = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups", "CapEff", "CapPrm"):
                ids[key] = value.split()
    return ids


@pytest.mark.usefixtures("root_only")
def test_start_drops_to_the_configured_user(reachable_dir, write_config, relay_users):
    user = nobody()
    users = os.path.join(reachable_dir, "users.ini")
    shutil.copy(relay_users, users)
    os.chmod(users, 0o640)
    os.chown(users, 0, user.gid)        # root-owned, readable by the group: the usual /etc layout
    data = os.path.join(reachable_dir, "data")
    log_file = os.path.join(reachable_dir, "cm.log")
    cfg = write_config(_Dir(reachable_dir), server={"user": "nobody", "group": "nogroup",
                                                    "data_dir": data, "users_file": users,
                                                    "log_file": log_file})
    receiver = Receiver()
    server = ServerProcess(cfg, env={"NOTIFY_SOCKET": receiver.env})
    try:
        (ready,) = receiver.messages(1)
        assert ready["READY"] == "1"
        # READY=1 only once the privileges are gone: every id is nobody's, no capability left
        ids = _proc_ids(server.pid)
        assert ids["Uid"] == [str(user.uid)] * 4 and ids["Gid"] == [str(user.gid)] * 4
        assert ids["Groups"] == [str(g) for g in user.groups]
        assert int(ids["CapEff"][0], 16) == 0 and int(ids["CapPrm"][0], 16) == 0
        ports = {item.split(" ")[0]: int(item.rsplit(":", 1)[1])
                 for item in ready["STATUS"].split("; ")[0].split(", ")}
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as smtp:
            smtp.sendmail("x@example.org", ["alice@example.test"], b"Subject: hi\r\n\r\nas nobody\r\n")
        imap = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=10)
        try:
            imap.login("alice@example.test", "alice-secret")
            assert imap.select("INBOX") == ("OK", [b"1"])
        finally:
            imap.logout()
        pid_file = os.path.join(data, "clevermail.pid")
        assert wait_for(lambda: os.path.exists(pid_file))
        server.signal(signal.SIGTERM)
        assert server.wait() == 0, server.stderr
    finally:
        server.close()
        receiver.close()
    err = server.stderr
    assert "running as user nobody, group nogroup" in err and "; user nobody" in err
    assert "running as root" not in err and "Traceback" not in err
    # the log file root opened is nobody's now (a reopen after logrotate runs as nobody)
    assert os.stat(log_file).st_uid == user.uid
    with open(log_file) as f:
        assert "clevermail stopped" in f.read()
    # everything the server made is nobody's: the mail, the queue, the indexes
    for top, dirs, files in os.walk(data):
        for name in dirs + files:
            st = os.lstat(os.path.join(top, name))
            assert st.st_uid == user.uid, os.path.join(top, name)


class _Dir:
    """write_config writes into a tmp_path-like object: here a directory nobody can reach."""

    def __init__(self, path):
        self.path = path

    def __truediv__(self, name):
        from pathlib import Path
        return Path(self.path) / name


@pytest.mark.usefixtures("root_only")
def test_start_refuses_a_data_dir_the_user_cannot_write(reachable_dir, write_config):
    data = os.path.join(reachable_dir, "data")
    os.makedirs(os.path.join(data, "mail"), 0o755)
    cfg = write_config(_Dir(reachable_dir), server={"user": "nobody", "data_dir": data,
                                                    "users_file": os.path.join(reachable_dir, "u.ini")})
    server = ServerProcess(cfg)
    try:
        assert server.wait() == 1
    finally:
        server.close()
    assert server.stderr.strip().splitlines() == [
        f"clevermail: cannot start: data directory {data} is owned by root; run: chown -R nobody: {data}"]


@pytest.mark.usefixtures("root_only")
def test_root_without_a_user_is_warned(tmp_path, write_config):
    server = ServerProcess(write_config(tmp_path))
    try:
        assert server.read_until(" running ("), server.stderr
        assert server.stop() == 0
    finally:
        server.close()
    warnings = [line for line in server.stderr.splitlines() if " WARNING " in line]
    assert len(warnings) == 1 and "running as root: set [server] user" in warnings[0]


# -- commands run as root write as the service user ----------------------------------------------
def test_cli_run_as_root_writes_the_servers_files_as_the_service_user(root_only, reachable_dir):
    """`clevermail user add` / `alias add` run as root with [server] user set: the files
    they write belong to that user, so the running server can still read them."""
    import subprocess
    import sys

    user = nobody()
    state = os.path.join(reachable_dir, "state")              # does not exist yet
    cfg = os.path.join(reachable_dir, "clevermail.ini")
    with open(cfg, "w") as f:
        f.write(f"[server]\ndata_dir = {state}/data\nusers_file = {state}/users.ini\n"
                f"domains = example.test,\nuser = nobody\ngroup = nogroup\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def cli(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "clevermail", "--config", cfg, *args], input=stdin,
                              capture_output=True, text=True, timeout=60, cwd=root)

    assert cli("user", "add", "alice", "--password-stdin", stdin="pw\n").returncode == 0
    assert cli("alias", "add", "sales@example.test", "alice@example.test").returncode == 0
    for path in (state, f"{state}/data", f"{state}/users.ini", f"{state}/aliases.ini",
                 f"{state}/data/mail/example.test/alice"):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid) == (user.uid, user.gid), path
    listing = cli("user", "list")
    assert (listing.returncode, listing.stdout) == (0, "alice@example.test\n")
