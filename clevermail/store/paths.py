"""Untrusted names -> safe paths.  The only way a user, domain or folder name becomes
a path in CleverMail.

Rules: a component is never empty, '.', '..', never holds a separator, NUL or other
control character, and is at most 255 bytes of UTF-8; the joined path is resolved and
must stay under its root.  Folder names are IMAP names ("Archive/2024", Unicode) and map
to Maildir++ directories (".Archive.2024"): '.' is the Maildir++ separator, so a literal
'.', '%' or '/' inside one level is percent-escaped.
"""

import os

from .errors import InvalidName

SEPARATOR = "/"          # IMAP hierarchy separator
MAX_COMPONENT = 255
MAX_FOLDER_DEPTH = 16


def check_component(name):
    """Return `name` if it is a safe single path component, else raise InvalidName."""
    if not isinstance(name, str) or not name or name in (".", ".."):
        raise InvalidName(f"invalid name {name!r}")
    if any(c in "/\\" or ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InvalidName(f"invalid character in name {name!r}")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_COMPONENT:
        raise InvalidName("name too long")
    return name


_real_roots = {}
REAL_ROOTS_LIMIT = 100_000      # roots whose resolved path is remembered (the store's, users')


def real_root(root):
    """os.path.realpath(root), remembered: a root (the mail root, a user's directory)
    is resolved once, not with an lstat per level on every command."""
    real = _real_roots.get(root)
    if real is None:
        real = os.path.realpath(root)
        if len(_real_roots) < REAL_ROOTS_LIMIT:
            _real_roots[root] = real
    return real


def safe_join(root, *components):
    """root/components..., each component checked, result kept under root.

    Only the appended components can be symlinks we have not vetted, so only they are
    looked at (one lstat each; a full realpath of the whole path on every delivery
    cost more CPU than the rest of the delivery together)."""
    base = path = real_root(root)
    for component in components:
        path = os.path.join(path, check_component(component))
        if os.path.islink(path):
            real = os.path.realpath(path)
            if real != base and not real.startswith(base + os.sep):
                raise InvalidName("path escapes the store")
    return path


def user_dir(mail_root, address):
    """<mail_root>/<domain>/<local> for a canonical address."""
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        raise InvalidName(f"invalid address {address!r}")
    return safe_join(mail_root, domain.lower(), local.lower())


def _escape(level):
    return level.replace("%", "%25").replace(".", "%2E")


def _unescape(level):
    return level.replace("%2E", ".").replace("%2e", ".").replace("%25", "%")


def split_folder(name):
    """An IMAP folder name -> its hierarchy levels, validated; INBOX is []."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise InvalidName("invalid folder name")
    levels = name.split(SEPARATOR)
    if levels[0].upper() == "INBOX" and len(levels) == 1:
        return []
    if levels[0].upper() == "INBOX":
        levels[0] = "INBOX"  # INBOX is case-insensitive at every depth
    if len(levels) > MAX_FOLDER_DEPTH:
        raise InvalidName("folder hierarchy too deep")
    for level in levels:
        if not level:
            raise InvalidName(f"empty hierarchy level in {name!r}")
        check_component(level)
        if level.startswith("~"):
            raise InvalidName("folder names may not start with '~'")
    return levels


def folder_dirname(name):
    """IMAP folder name -> Maildir++ directory name ('' for INBOX)."""
    levels = split_folder(name)
    if not levels:
        return ""
    dirname = "." + ".".join(_escape(level) for level in levels)
    check_component(dirname)
    return dirname


def folder_from_dirname(dirname):
    """Maildir++ directory name -> IMAP folder name, or None when it is not a folder."""
    if not dirname.startswith(".") or dirname in (".", ".."):
        return None
    levels = dirname[1:].split(".")
    if not all(levels):
        return None
    return SEPARATOR.join(_unescape(level) for level in levels)


def folder_path(user_root, name):
    """Absolute directory of folder `name` inside a user's Maildir++ tree."""
    dirname = folder_dirname(name)
    return safe_join(user_root, dirname) if dirname else real_root(user_root)
