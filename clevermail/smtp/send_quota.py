"""Per-user sending limits: messages and recipients an authenticated user may send in
the last hour (a stolen password must not turn into ten thousand spam messages
before anyone looks).  Past a limit the session answers 450 4.7.1 (a temporary
refusal: a client with a real burst retries later) and logs a WARNING naming the user.

The counts survive a restart: every accepted message appends one line
"<epoch> <recipients> <user>" to `<data_dir>/send-quota.log` with one write(2) on an
O_APPEND descriptor, no fsync: a crashed process loses nothing (the page cache has
the line), a crashed machine may forget the last seconds of counts, which for a rate
limit is harmless and keeps the accept path free of a second fsync.  At start the
lines of the last hour are read back and the file is rewritten with only those
(durable.atomic_write), and again whenever it grows past COMPACT_LINES lines.

A limit of 0 means no limit; a SendQuota without a data_dir keeps its counts in
memory only (a file handler built without one, in tests and tools).
"""

import collections
import logging
import os
import threading
import time

from .. import durable

log = logging.getLogger("clevermail.smtp")

WINDOW = 3600.0             # seconds: the limits are per hour
COMPACT_LINES = 10000       # appended lines before the file is rewritten
FILE_NAME = "send-quota.log"


class SendQuota:
    def __init__(self, data_dir, messages_per_hour, recipients_per_hour, clock=time.time):
        self.path = None if data_dir is None else os.path.join(data_dir, FILE_NAME)
        self.messages_per_hour = messages_per_hour
        self.recipients_per_hour = recipients_per_hour
        self.clock = clock
        self._lock = threading.Lock()
        self._sent = collections.defaultdict(collections.deque)    # user -> deque[(t, n)]
        self._fd = None
        self._appended = 0
        self._load()

    # -- the checks -----------------------------------------------------------------
    def refusal(self, user, recipients=0):
        """None when `user` may send one more message to `recipients` more recipients
        now, else the limit that says no ("300 messages per hour")."""
        with self._lock:
            sent = self._window(user)
            if self.messages_per_hour and len(sent) >= self.messages_per_hour:
                return f"{self.messages_per_hour} messages per hour"
            total = sum(n for _, n in sent) + recipients
            if self.recipients_per_hour and total > self.recipients_per_hour:
                return f"{self.recipients_per_hour} recipients per hour"
        return None

    def record(self, user, recipients):
        """Count one accepted message of `user` to `recipients` recipients."""
        now = self.clock()
        line = f"{now:.3f} {recipients} {user}\n".encode("utf-8")
        with self._lock:
            self._sent[user].append((now, recipients))
            if self.path is None:
                return
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
                durable.write_all(self._fd, line)
                self._appended += 1
                if self._appended >= COMPACT_LINES:
                    self._compact()
            except OSError as exc:
                # the message is accepted already: a full disk costs the count, not the mail
                log.error("cannot record sending of %s in %s: %s", user, self.path, exc.strerror)

    def set_limits(self, messages_per_hour, recipients_per_hour):
        """New limits (a reload); the counts stay."""
        with self._lock:
            self.messages_per_hour = messages_per_hour
            self.recipients_per_hour = recipients_per_hour

    def close(self):
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    # -- inside ---------------------------------------------------------------------------
    def _window(self, user):
        sent = self._sent.get(user)
        if sent is None:
            return ()
        horizon = self.clock() - WINDOW
        while sent and sent[0][0] <= horizon:
            sent.popleft()
        if not sent:
            del self._sent[user]
        return sent

    def _load(self):
        if self.path is None:
            return
        horizon = self.clock() - WINDOW
        try:
            with open(self.path, "rb") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                when, count, user = line.decode("utf-8").split(" ", 2)
                when, count = float(when), int(count)
            except ValueError:
                continue            # a torn last line after a crash
            if when > horizon:
                self._sent[user].append((when, count))
        self._compact()

    def _compact(self):
        """Rewrite the file with the current window only (under the lock)."""
        horizon = self.clock() - WINDOW
        lines = [f"{t:.3f} {n} {user}\n" for user, sent in self._sent.items()
                 for t, n in sent if t > horizon]
        lines.sort()
        durable.atomic_write(self.path, "".join(lines).encode("utf-8"))
        if self._fd is not None:
            os.close(self._fd)          # the old inode: reopen the new file on the next write
            self._fd = None
        self._appended = 0
