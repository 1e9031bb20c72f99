"""Per-user Sieve script storage: the scripts ManageSieve (RFC 5804) and
`clevermail sieve` manage, and the one active script final delivery runs.

Layout, under the user's root (store/paths.user_dir: <data_dir>/mail/<domain>/<local>):

    sieve/<file name>.sieve     one script each, UTF-8 text as put
    sieve/active                the active script's name (UTF-8), absent when none

A script name (RFC 5804 1.6: UTF-8, no control characters, no U+2028/U+2029) becomes
a file name only through `file_name`: '%', '/', '\\' and '.' are percent-escaped, so a
name is never '.', '..', a hidden file or a path, and the mapping is reversible.
Every write goes through durable.atomic_write; changes are made under an flock of the
sieve directory, so the CLI, the ManageSieve server and a second instance see one
state (a reader needs no lock: each file is replaced whole).
"""

import contextlib
import fcntl
import os
import unicodedata

from ..durable import atomic_write, fsync_dir, unlink_quiet
from ..store import paths
from ..store.errors import InvalidName
from .errors import ActiveScript, BadScriptName, NoSuchScript, QuotaExceeded, ScriptExists

SIEVE_DIR = "sieve"
ACTIVE_FILE = "active"
SUFFIX = ".sieve"
MAX_NAME = 128                    # characters (RFC 5804 leaves the bound to the server)
DEFAULT_MAX_SCRIPTS = 20
DEFAULT_MAX_SIZE = 64 * 1024      # bytes of one script
_ESCAPED = {"%": "%25", "/": "%2F", "\\": "%5C", ".": "%2E"}


def check_name(name):
    """`name` if it is a valid script name (RFC 5804 1.6), else BadScriptName."""
    if not isinstance(name, str) or not name:
        raise BadScriptName("empty script name")
    if len(name) > MAX_NAME:
        raise BadScriptName(f"script name longer than {MAX_NAME} characters")
    for c in name:
        o = ord(c)
        if o < 0x20 or 0x7F <= o <= 0x9F or c in "\u2028\u2029" or 0xD800 <= o <= 0xDFFF:
            raise BadScriptName("control character in script name")
    if unicodedata.normalize("NFC", name) != name:
        # RFC 5804 1.6: names are compared as NFC; one spelling per name on disk
        raise BadScriptName("script name is not in Unicode NFC")
    return name


def file_name(name):
    """A script name -> its file name in the sieve directory (see the module doc)."""
    return "".join(_ESCAPED.get(c, c) for c in check_name(name)) + SUFFIX


def name_of(file):
    """A file name -> the script name, or None when the file is no script of ours."""
    if not file.endswith(SUFFIX) or file.startswith("."):
        return None
    stem = file[:-len(SUFFIX)]
    out, i = [], 0
    while i < len(stem):
        if stem[i] == "%":
            code = stem[i + 1:i + 3]
            try:
                out.append(chr(int(code, 16)))
            except ValueError:
                return None
            i += 3
        elif stem[i] == ".":
            return None
        else:
            out.append(stem[i])
            i += 1
    name = "".join(out)
    try:
        return name if file_name(name) == file else None
    except BadScriptName:
        return None


class SieveScripts:
    """The scripts of every user under one mail root (MailStore.mail_root);
    users are canonical account addresses.  Limits: `max_scripts` per user and
    `max_size` bytes per script (0: no limit)."""

    def __init__(self, mail_root, max_scripts=DEFAULT_MAX_SCRIPTS, max_size=DEFAULT_MAX_SIZE):
        self.mail_root = mail_root
        self.max_scripts = max_scripts
        self.max_size = max_size
        self._dirs = {}           # user -> sieve directory (checked once; delivery asks often)

    @classmethod
    def for_data_dir(cls, data_dir, **limits):
        """The store of `data_dir`'s mail tree (the layout MailStore uses)."""
        return cls(os.path.join(os.path.realpath(data_dir), "mail"), **limits)

    # -- paths -------------------------------------------------------------------------
    def directory(self, user):
        directory = self._dirs.get(user)
        if directory is None:
            try:
                directory = paths.safe_join(paths.user_dir(self.mail_root, user), SIEVE_DIR)
            except InvalidName as exc:
                raise BadScriptName(f"invalid user {user!r}: {exc}") from None
            if len(self._dirs) < 100_000:
                self._dirs[user] = directory
        return directory

    def _path(self, user, name):
        return os.path.join(self.directory(user), file_name(name))

    @contextlib.contextmanager
    def _locked(self, user):
        """The flock of the user's sieve directory (created on first use)."""
        directory = self.directory(user)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield directory
        finally:
            os.close(fd)

    # -- reading -----------------------------------------------------------------------
    def _names(self, directory):
        try:
            files = os.listdir(directory)
        except FileNotFoundError:
            return []
        return sorted(n for n in map(name_of, files) if n is not None)

    def _active_name(self, directory):
        try:
            with open(os.path.join(directory, ACTIVE_FILE), "rb") as f:
                name = f.read(4 * MAX_NAME + 1).decode("utf-8")
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        try:
            return name if os.path.exists(os.path.join(directory, file_name(name))) else None
        except BadScriptName:
            return None

    def list(self, user):
        """[(name, active)] sorted by name."""
        directory = self.directory(user)
        active = self._active_name(directory)
        return [(name, name == active) for name in self._names(directory)]

    def get(self, user, name):
        """The script's text (NoSuchScript)."""
        try:
            with open(self._path(user, name), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            raise NoSuchScript(f"no script named {name!r}") from None

    def active(self, user):
        """(name, text) of the active script, or None."""
        directory = self.directory(user)
        name = self._active_name(directory)
        if name is None:
            return None
        try:
            return name, self.get(user, name)
        except NoSuchScript:
            return None           # deleted between the two reads

    def used_bytes(self, user):
        """The bytes the user's scripts take (for HAVESPACE and quotas)."""
        directory = self.directory(user)
        total = 0
        for name in self._names(directory):
            try:
                total += os.path.getsize(os.path.join(directory, file_name(name)))
            except FileNotFoundError:
                pass
        return total

    def check_space(self, user, name, size):
        """QuotaExceeded unless a script `name` of `size` bytes may be stored now
        (RFC 5804 HAVESPACE, PUTSCRIPT)."""
        check_name(name)
        if self.max_size and size > self.max_size:
            raise QuotaExceeded(f"script larger than {self.max_size} bytes", "QUOTA/MAXSIZE")
        names = self._names(self.directory(user))
        if self.max_scripts and name not in names and len(names) >= self.max_scripts:
            raise QuotaExceeded(f"no more than {self.max_scripts} scripts", "QUOTA/MAXSCRIPTS")

    # -- changing ----------------------------------------------------------------------
    def put(self, user, name, text):
        """Store (or replace) script `name`; the syntax check is the caller's."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        with self._locked(user) as directory:
            self.check_space(user, name, len(data))
            atomic_write(os.path.join(directory, file_name(name)), data)

    def delete(self, user, name):
        with self._locked(user) as directory:
            path = os.path.join(directory, file_name(name))
            if not os.path.exists(path):
                raise NoSuchScript(f"no script named {name!r}")
            if self._active_name(directory) == name:
                raise ActiveScript(f"script {name!r} is active")
            os.unlink(path)
            fsync_dir(directory)

    def rename(self, user, old, new):
        with self._locked(user) as directory:
            source = os.path.join(directory, file_name(old))
            target = os.path.join(directory, file_name(new))
            if not os.path.exists(source):
                raise NoSuchScript(f"no script named {old!r}")
            if old == new:
                return
            if os.path.exists(target):
                raise ScriptExists(f"a script named {new!r} exists")
            was_active = self._active_name(directory) == old
            # link + unlink: never replaces a file made meanwhile
            os.link(source, target)
            if was_active:
                atomic_write(os.path.join(directory, ACTIVE_FILE), new)
            os.unlink(source)
            fsync_dir(directory)

    def activate(self, user, name):
        """Make `name` the active script; None deactivates."""
        with self._locked(user) as directory:
            pointer = os.path.join(directory, ACTIVE_FILE)
            if name is None:
                unlink_quiet(pointer)
                fsync_dir(directory)
                return
            if not os.path.exists(os.path.join(directory, file_name(name))):
                raise NoSuchScript(f"no script named {name!r}")
            atomic_write(pointer, name)
