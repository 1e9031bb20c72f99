"""A private Dovecot instance for the side-by-side IMAP benchmarks (bench_imap.py,
bench_imaptest.py): its own configuration, sockets, state and Maildirs under a work
dir, any password accepted, on a free loopback port (Debian: dovecot-imapd)."""

import os
import pwd
import socket
import subprocess
import time


class Dovecot:
    """A private Dovecot instance for side-by-side figures: its own configuration,
    sockets, state and Maildirs under `workdir`, any password accepted, on a free
    loopback port.  Mail is owned by an unprivileged user (Dovecot refuses UID 0)."""

    CONF = """protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
default_internal_user = {internal}
default_login_user = {login}
passdb {{
  driver = static
  args = password=secret
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/mail/%u
}}
mail_location = maildir:{base}/mail/%u/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""

    def __init__(self, workdir, binary):
        self.binary = binary
        self.base = os.path.join(workdir, "dovecot")
        for sub in ("run", "state", "mail"):
            os.makedirs(os.path.join(self.base, sub), exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("dovecot")
            internal, login = "dovecot", "dovenull"
            # The mail user must reach the Maildirs: open up only the directories this
            # script created (the temp dir and below), never its parents.
            for path in (workdir, self.base, os.path.join(self.base, "mail")):
                os.chmod(path, os.stat(path).st_mode | 0o711)
            parent = os.path.dirname(os.path.abspath(workdir))
            if not os.stat(parent).st_mode & 0o001:
                raise SystemExit(f"--dovecot: {parent} is not searchable by other users; "
                                 "set TMPDIR to a directory that is (e.g. /tmp)")
        else:
            owner = pwd.getpwuid(os.geteuid())
            internal = login = owner.pw_name
        self.uid, self.gid = owner.pw_uid, owner.pw_gid
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.conf = os.path.join(self.base, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(self.CONF.format(base=self.base, internal=internal, login=login,
                                     uid=self.uid, gid=self.gid, port=self.port))
        subprocess.run([binary, "-c", self.conf], check=True)
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("dovecot did not start; see " + self.conf)
                time.sleep(0.1)

    def home(self, user):
        return os.path.join(self.base, "mail", user)

    def own(self, top, files=True):
        """Give `top` and what is below it to the mail user (directories only unless
        `files`: hard-linked copies share their files' owner with the original)."""
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + (filenames if files else []):
                os.lchown(os.path.join(dirpath, name), self.uid, self.gid)
        os.lchown(top, self.uid, self.gid)

    def stop(self):
        subprocess.run([self.binary, "-c", self.conf, "stop"], check=False)
