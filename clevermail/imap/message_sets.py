"""Message sets of the selected state resolved against the session's folder view
(RFC 3501 6.4 and 9: sequence-set, seq-number; 6.4.8: UID sets; RFC 5182: "$", the
saved search result) into the view's sequence numbers, for cmd_selected.py's commands.
The set syntax is seqset.py's; a set of one plain number, what most FETCH and STORE
commands name, is read here without it."""

from . import replies as R
from .parser import Atom
from .seqset import parse_sequence_set

__all__ = ["saved_seqs", "seqs_by_number", "seqs_by_uid"]


def _sequence_set(token):
    if not isinstance(token, Atom):
        raise R.EXPECTED_SEQUENCE_SET.error()
    return parse_sequence_set(token)


def _one_number(token):
    """The number of a set that is one plain number ("5": most FETCH and STORE commands),
    else None (parse_sequence_set reads it); what parse_sequence_set would read: ASCII
    digits, no leading zero, 32 bits."""
    if isinstance(token, Atom) and len(token) < 10 and token.isascii() and token.isdigit() \
            and token[0] != "0":
        return int(token)
    return None


def seqs_by_number(view, token):
    """The sequence numbers a set of message sequence numbers names; a number past the
    last message is BAD (RFC 3501 6.4.5 and 9, seq-number)."""
    one = _one_number(token)
    if one is not None:
        if one > len(view):
            raise R.BAD_SEQUENCE_NUMBER.error()
        return range(one, one + 1)          # as SequenceSet.numbers gives it
    seqset = _sequence_set(token)
    if seqset.max_number() > len(view):
        raise R.BAD_SEQUENCE_NUMBER.error()
    return seqset.numbers(len(view))


def seqs_by_uid(view, token):
    """The sequence numbers of the messages a set of UIDs names; UIDs that do not
    exist are left out, not an error (RFC 3501 6.4.8)."""
    one = _one_number(token)
    if one is not None:
        seq = view.seq_of(one)
        return [] if seq is None else range(seq, seq + 1)     # as SequenceSet.positions
    seqset = _sequence_set(token)
    if not view.uids:
        return []
    return seqset.positions(view.uids, view.uids[-1])


def _set_to_seqs(mailbox, token, uid_mode):
    """A set of UIDs (uid_mode) or of message numbers -> sequence numbers; "$" is
    the saved search result (RFC 5182), the messages of it that still exist."""
    if token == "$":
        return saved_seqs(mailbox)
    view = mailbox.view
    if not uid_mode and token.__class__ is Atom and len(token) < 10 and token.isdigit() \
            and token.isascii() and token[0] != "0":
        # seqs_by_number's one-number case, here: most FETCH and STORE commands
        one = int(token)
        if one > len(view.uids):
            raise R.BAD_SEQUENCE_NUMBER.error()
        return range(one, one + 1)
    return seqs_by_uid(view, token) if uid_mode else seqs_by_number(view, token)


def saved_seqs(mailbox):
    """The sequence numbers of the saved result's messages still in the view."""
    seq_of = mailbox.view.seq_of
    return sorted(s for s in map(seq_of, mailbox.saved) if s is not None)
