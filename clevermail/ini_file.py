"""A configobj file that the CLI edits while the server reads it (aliases.ini).

Readers call current(parse): the file's stat (mtime, size, inode) is compared on
every call, outside any lock, and the file is parsed again only when it changed, so
a running server sees `clevermail alias add` at its next lookup without a restart.
Writers use edit(): an exclusive flock on `<path>.lock` (other processes) and a
thread lock (this one), the ConfigObj handed out, then written back all at once by
durable.atomic_write, keeping the file's mode.  A file that cannot be parsed keeps
what was loaded before (a hand edit gone wrong must not drop every entry of a
running server) and is logged once per change.
"""

import contextlib
import fcntl
import io
import logging
import os
import threading

from configobj import ConfigObj, ConfigObjError

from .durable import atomic_write

log = logging.getLogger("clevermail.config")


class SharedIniFile:
    def __init__(self, path, header=()):
        self.path = os.path.abspath(os.fspath(path))
        self.header = list(header)          # comment lines of a newly created file
        self._lock = threading.Lock()
        self._loaded = (None, None)         # (stamp, parsed value), replaced whole

    def _stamp(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self, parse):
        """parse(ConfigObj or None) of the file as it is now, cached per file state.
        `parse` gets None when the file does not exist."""
        stamp = self._stamp()
        loaded_stamp, value = self._loaded
        if stamp == loaded_stamp and value is not None:
            return value
        with self._lock:
            if self._loaded[0] != stamp or self._loaded[1] is None:
                self._loaded = (stamp, self._read(stamp, parse))
            return self._loaded[1]

    def reread(self):
        """Parse the file again at the next read whatever its stat says (a
        configuration reload); until then, and if it cannot be read, the value stays."""
        with self._lock:
            self._loaded = (None, self._loaded[1])

    def _read(self, stamp, parse):
        if stamp is None:
            return parse(None)
        try:
            cfg = ConfigObj(self.path, encoding="utf-8")
        except (ConfigObjError, OSError, UnicodeDecodeError) as exc:
            log.error("%s cannot be read, keeping what was loaded before: %s", self.path, exc)
            previous = self._loaded[1]
            return previous if previous is not None else parse(None)
        return parse(cfg)

    @contextlib.contextmanager
    def edit(self):
        """The file's ConfigObj under both locks; written back atomically when the
        block ends without an exception (an exception writes nothing)."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with self._lock, open(self.path + ".lock", "a") as lockfile:
            fcntl.flock(lockfile, fcntl.LOCK_EX)
            exists = os.path.exists(self.path)
            cfg = ConfigObj(self.path if exists else None, encoding="utf-8")
            if not exists:
                cfg.initial_comment = [f"# {line}" for line in self.header]
            yield cfg
            out = io.BytesIO()
            cfg.write(out)
            mode = os.stat(self.path).st_mode & 0o777 if exists else 0o640
            atomic_write(self.path, out.getvalue(), mode)
            self._loaded = (None, None)     # the next read parses what was written
