"""The file an IMAP cache is kept in across restarts (sortcache.py's
<data_dir>/imap-sort.cache; the FETCH metadata has its journals, fetch_journal.py): one marshal
value (a tag naming the cache and its version, then the payload), written whole and
renamed into place without fsync (a cache is only a speed-up: a crash costs a rebuild).

marshal reads only plain values (tuples, lists, dicts, strings, bytes, numbers), never
code or objects; a file that is missing, of another version, truncated or damaged
reads as None, and the caller checks every value of what it gets before trusting it.
"""

import logging
import marshal

from ..durable import atomic_write

log = logging.getLogger("clevermail.imap")


def write(path, tag, payload):
    """Replace the file at `path` with (tag, payload); OSError when it cannot."""
    atomic_write(path, marshal.dumps((tag, payload)), durable=False)


def read(path, tag):
    """The payload of a file write() made with `tag`; None when it is missing, of
    another tag or not readable as one (a warning then: the cache starts empty)."""
    try:
        with open(path, "rb") as f:
            found, payload = marshal.loads(f.read())
        if found != tag:
            raise ValueError(f"not a {tag[0]} of version {tag[1]}")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, TypeError) as exc:
        log.warning("-: %s ignored: %s", path, exc)
        return None
    return payload
