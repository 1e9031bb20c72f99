"""CONDSTORE and QRESYNC (RFC 7162) on the wire: the parameters and modifiers the
commands take, and the responses a resynchronisation sends.

The store keeps a modseq per message and the expunges with their modseq
(store/modseq.py); the folder view answers "changed since" and "vanished since"
(store/view.py).  This module only reads the protocol's pieces and says the answers:

- SELECT/EXAMINE parameters `(CONDSTORE)` and `(QRESYNC (uidvalidity modseq
  [known-uids [(seq-set uid-set)]]))` (3.1.8, 3.2.5);
- FETCH modifiers `(CHANGEDSINCE m [VANISHED])` (3.1.4.1, 3.2.6) and the STORE
  modifier `(UNCHANGEDSINCE m)` (3.1.3);
- `* VANISHED [(EARLIER)] uid-set` (3.2.10) and the untagged part of a QRESYNC
  SELECT after the usual one: VANISHED (EARLIER), then FETCH of what changed (3.2.5.1).

The session remembers what is enabled (ENABLE, or a CONDSTORE enabling command:
3.1); cmd_mailboxes.py and cmd_selected.py call these functions.
"""

from typing import NamedTuple

from . import replies as R
from .fetch import flag_text
from .parser import Atom
from .seqset import parse_sequence_set, uid_set_text

MAX_MODSEQ = (1 << 63) - 1      # mod-sequence-value: 1 .. 2^63 - 1


def mod_sequence(tok, zero=False):
    """A mod-sequence-value token (mod-sequence-valzer with `zero`); BAD if not."""
    text = str(tok) if isinstance(tok, Atom) else ""
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise R.BAD_MODSEQ.error()
    value = int(text)
    if value > MAX_MODSEQ or (value == 0 and not zero):
        raise R.BAD_MODSEQ.error()
    return value


def _uid_set(tok):
    """A known-uids or seq-match-data set token -> SequenceSet; BAD if not one."""
    if not isinstance(tok, Atom):
        raise R.BAD_QRESYNC.error()
    return parse_sequence_set(tok)


class Resync(NamedTuple):
    """QRESYNC's SELECT parameter: the client's UIDVALIDITY and modseq, the UIDs it
    knows (a SequenceSet, or None: all), and its seq-match-data (checked, not needed:
    the store remembers expunges one by one as far back as `floor`)."""
    uidvalidity: int
    modseq: int
    known: object


class SelectParams(NamedTuple):
    condstore: bool
    resync: Resync | None


def select_params(args, qresync_enabled):
    """The parameter list after the mailbox name of SELECT/EXAMINE (or none)."""
    if not args:
        return SelectParams(False, None)
    if len(args) != 1 or not isinstance(args[0], list) or not args[0]:
        raise R.BAD_SELECT_PARAMS.error()
    items = list(args[0])
    condstore, resync = False, None
    while items:
        name = items.pop(0)
        word = name.upper() if isinstance(name, Atom) else None
        if word == "CONDSTORE":
            condstore = True
        elif word == "QRESYNC":
            if not qresync_enabled:
                raise R.QRESYNC_NOT_ENABLED.error()     # RFC 7162 3.2.5
            if not items or not isinstance(items[0], list) or resync is not None:
                raise R.BAD_QRESYNC.error()
            resync = _qresync(items.pop(0))
        else:
            raise R.BAD_SELECT_PARAMS.error()
    return SelectParams(condstore or resync is not None, resync)


def _qresync(values):
    if not 2 <= len(values) <= 4:
        raise R.BAD_QRESYNC.error()
    uidvalidity = values[0]
    if not isinstance(uidvalidity, Atom) or not uidvalidity.isdigit() or not 0 < int(uidvalidity) < 1 << 32:
        raise R.BAD_QRESYNC.error()
    modseq = mod_sequence(values[1])
    known = None
    if len(values) >= 3:
        if isinstance(values[2], list):
            if len(values) == 4:
                raise R.BAD_QRESYNC.error()
            match = values[2]
        else:
            known = _uid_set(values[2])
            match = values[3] if len(values) == 4 else None
        if match is not None:
            # (known-sequence-set known-uid-set): as many numbers in each, no "*"
            if not isinstance(match, list) or len(match) != 2:
                raise R.BAD_QRESYNC.error()
            seqs, uids = _uid_set(match[0]), _uid_set(match[1])
            if "*" in match[0] + match[1] or seqs.size(0) != uids.size(0):
                raise R.BAD_QRESYNC.error()
    return Resync(int(uidvalidity), modseq, known)


class FetchModifiers(NamedTuple):
    changedsince: int | None
    vanished: bool


def fetch_modifiers(tok, uid_mode, qresync_enabled):
    """FETCH's `(CHANGEDSINCE m [VANISHED])` list (RFC 7162 3.1.4.1, 3.2.6)."""
    if not isinstance(tok, list) or not tok:
        raise R.BAD_FETCH_MODIFIERS.error()
    changedsince, vanished = None, False
    items = list(tok)
    while items:
        word = items.pop(0)
        word = word.upper() if isinstance(word, Atom) else None
        if word == "CHANGEDSINCE" and items and changedsince is None:
            changedsince = mod_sequence(items.pop(0), zero=True)
        elif word == "VANISHED" and not vanished:
            # only UID FETCH, only once QRESYNC is enabled (3.2.6)
            if not uid_mode or not qresync_enabled:
                raise R.BAD_VANISHED.error()
            vanished = True
        else:
            raise R.BAD_FETCH_MODIFIERS.error()
    if vanished and changedsince is None:
        raise R.BAD_VANISHED.error()
    return FetchModifiers(changedsince, vanished)


def store_unchangedsince(tok):
    """STORE's `(UNCHANGEDSINCE m)` (RFC 7162 3.1.3)."""
    if (not isinstance(tok, list) or len(tok) != 2 or not isinstance(tok[0], Atom)
            or tok[0].upper() != "UNCHANGEDSINCE"):
        raise R.BAD_STORE_MODIFIERS.error()
    return mod_sequence(tok[1], zero=True)


def vanished_line(uids, earlier):
    """`* VANISHED [(EARLIER)] uid-set` for ascending UIDs, in lines of bounded length."""
    out = []
    head = b"* VANISHED (EARLIER) " if earlier else b"* VANISHED "
    for i in range(0, len(uids), 10000):
        out.append(head + uid_set_text(uids[i:i + 10000]).encode() + b"\r\n")
    return out


def vanished_earlier(view, modseq, within):
    """The UIDs to send in VANISHED (EARLIER) for a client at `modseq` that asks
    about the UIDs of `within` (a SequenceSet, None: all below UIDNEXT): exact while
    the store remembers expunges that far back; else every UID of `within` that is
    not live (RFC 7162 3.2.5.1 lets the server send UIDs the client never had)."""
    gone = view.vanished_since(modseq)
    largest = view.uidnext - 1
    if gone is None:
        candidates = (range(1, largest + 1) if within is None
                      else within.iter(max(largest, 1)))
        return view.vanished_below([u for u in candidates if u <= largest])
    if within is None:
        return gone
    return [u for u in gone if within.contains(u, largest)]


def changed_fetches(view, modseq, within=None):
    """`* n FETCH (UID u FLAGS (...) MODSEQ (m))` of the messages changed since
    `modseq` (only those in the set of UIDs `within` when given), ascending."""
    uids = view.changed_since(modseq)
    if within is not None:
        largest = view.uidnext - 1
        uids = [u for u in uids if within.contains(u, largest)]
    seqs = [view.seq_of(u) for u in uids]
    return [b"* %d FETCH (UID %d FLAGS (%s) MODSEQ (%d))\r\n" % (m.seq, m.uid, flag_text(m.flags), m.modseq)
            for m in view.messages(seqs, expunged=False)]
