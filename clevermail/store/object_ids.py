"""Stable ids of folders and messages, for IMAP OBJECTID (RFC 8474) and anyone else
who must know "the same folder" or "the same message" across renames and moves.

- A folder's id is random, made the first time it is asked for and kept in the
  folder's directory (`clevermail-mailboxid`), so it moves with a RENAME and a folder
  created again under an old name gets a new one (RFC 8474 4).
- A message's id is derived, never stored: COPY and MOVE hard-link the one file
  (changes.py), so the file's device and inode, with the internal date and size that a
  copy keeps, name the content in every folder it is in (RFC 8474 5.1: the same for a
  moved message).  The date and size guard against an inode reused by a later message.
  A copy that had to be written anew (another filesystem) gets an id of its own.

Ids are 1*255 of ALPHA / DIGIT / "_" / "-" (RFC 8474 7): a letter, then URL-safe
base64 without padding.
"""

import base64
import hashlib
import os
import secrets

FILENAME = "clevermail-mailboxid"


def _text(kind, raw):
    return kind + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def mailbox_id(folder_path):
    """The folder's id, made if it has none yet (two processes or threads asking at
    once agree: the first to link its file into place wins, the others read it).  The
    file is written whole under a temporary name first, so nobody ever reads it empty
    (10,000 sessions SELECTing a new folder at once: an empty file read between
    another's create and write failed the SELECT)."""
    path = os.path.join(folder_path, FILENAME)
    for _ in range(2):
        try:
            with open(path, encoding="ascii") as f:
                value = f.read().strip()
            if value:
                return value
        except FileNotFoundError:
            pass
        value = _text("F", secrets.token_bytes(15))
        tmp = f"{path}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                os.write(fd, value.encode("ascii") + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            os.link(tmp, path)      # fails if another writer was first: read theirs
            return value
        except FileExistsError:
            continue
        finally:
            os.unlink(tmp)
    raise OSError(f"cannot read the folder id in {folder_path}")


def message_id(st, date, size):
    """The id of a message whose file has os.stat result `st`."""
    digest = hashlib.blake2b(b"%d:%d:%d:%d" % (st.st_dev, st.st_ino, int(date), size),
                             digest_size=12).digest()
    return _text("M", digest)
