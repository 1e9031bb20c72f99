"""Tests for clevermail.imap.cmd_list over socket.socketpair(): LIST in RFC 3501 form and
with RFC 5258 (LIST-EXTENDED) selection and RETURN options, RFC 5819 (LIST-STATUS) and
the SPECIAL-USE selection and return options (RFC 6154)."""

import pytest

from imap_helpers import (  # noqa: F401 (client, handler, open_session, store: fixtures)
    ALICE, append, check, client, close_handler, handler, message, open_session, store)

from clevermail.imap.cmd_list import parse_list
from clevermail.imap.parser import Atom
from clevermail.imap.replies import IMAPBad


@pytest.fixture
def tree(client):
    """Mailboxes under T/: a, b (with b/x), c/d, gone (subscribed, then deleted)."""
    for name in ("T/a", "T/b/x", "T/c/d", "T/gone"):
        client.expect(f"CREATE {name}")
    for name in ("T/a", "T/b/x", "T/c/d", "T/gone"):
        client.expect(f"SUBSCRIBE {name}")
    client.expect("DELETE T/gone")
    return client


def lines(client, command):
    return client.expect(command).untagged


def test_plain_list_is_unchanged(tree):
    assert lines(tree, 'LIST "" ""') == ['* LIST (\\Noselect) "/" ""']
    assert lines(tree, 'LIST "" T/%') == ['* LIST (\\HasNoChildren) "/" "T/a"',
                                          '* LIST (\\HasChildren) "/" "T/b"',
                                          '* LIST (\\HasChildren) "/" "T/c"']


def test_several_patterns(tree):
    assert lines(tree, 'LIST "" (T/*x T/a)') == ['* LIST (\\HasNoChildren) "/" "T/a"',
                                                 '* LIST (\\HasNoChildren) "/" "T/b/x"']


def test_return_subscribed_and_children(tree):
    assert lines(tree, 'LIST "" T/% RETURN (SUBSCRIBED CHILDREN)') == [
        '* LIST (\\HasNoChildren \\Subscribed) "/" "T/a"',
        '* LIST (\\HasChildren) "/" "T/b"', '* LIST (\\HasChildren) "/" "T/c"']


def test_subscribed_selection_shows_nonexistent_names(tree):
    assert lines(tree, 'LIST (SUBSCRIBED) "" T/*') == [
        '* LIST (\\HasNoChildren \\Subscribed) "/" "T/a"',
        '* LIST (\\HasNoChildren \\Subscribed) "/" "T/b/x"',
        '* LIST (\\HasNoChildren \\Subscribed) "/" "T/c/d"',
        '* LIST (\\NonExistent \\Subscribed) "/" "T/gone"']
    # REMOTE changes nothing here
    assert lines(tree, 'LIST (REMOTE SUBSCRIBED) "" T/a') == ['* LIST (\\HasNoChildren \\Subscribed) "/" "T/a"']


def test_recursivematch_childinfo(tree):
    # T/b is not subscribed, T/b/x is and the pattern does not reach it: CHILDINFO
    assert lines(tree, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" T/%') == [
        '* LIST (\\HasNoChildren \\Subscribed) "/" "T/a"',
        '* LIST (\\HasChildren) "/" "T/b" ("CHILDINFO" ("SUBSCRIBED"))',
        '* LIST (\\HasChildren) "/" "T/c" ("CHILDINFO" ("SUBSCRIBED"))',
        '* LIST (\\NonExistent \\Subscribed) "/" "T/gone"']
    # the descendant matched itself: no CHILDINFO for its parent
    assert lines(tree, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" (T/b T/b/x)') == [
        '* LIST (\\HasNoChildren \\Subscribed) "/" "T/b/x"']


def test_list_status(tree, store):
    check(append(tree, "T/a", message(1)), "OK")
    check(append(tree, "T/a", message(2), " (\\Seen)"), "OK")
    assert lines(tree, 'LIST "" T/% RETURN (STATUS (MESSAGES UNSEEN))') == [
        '* LIST (\\HasNoChildren) "/" "T/a"', '* STATUS "T/a" (MESSAGES 2 UNSEEN 1)',
        '* LIST (\\HasChildren) "/" "T/b"', '* STATUS "T/b" (MESSAGES 0 UNSEEN 0)',
        '* LIST (\\HasChildren) "/" "T/c"', '* STATUS "T/c" (MESSAGES 0 UNSEEN 0)']
    # no STATUS for a name that is no mailbox
    assert lines(tree, 'LIST (SUBSCRIBED) "" T/gone RETURN (STATUS (MESSAGES))') == [
        '* LIST (\\NonExistent \\Subscribed) "/" "T/gone"']


def test_special_use_selection(client):
    got = lines(client, 'LIST (SPECIAL-USE) "" * RETURN (SPECIAL-USE)')
    assert got and all(("\\Sent" in g or "\\Drafts" in g or "\\Trash" in g or "\\Junk" in g
                        or "\\Archive" in g) for g in got)
    assert not any('"INBOX"' in g for g in got)


@pytest.mark.parametrize("command", [
    'LIST (BOGUS) "" *', 'LIST (RECURSIVEMATCH) "" *', 'LIST (RECURSIVEMATCH REMOTE) "" *',
    'LIST "" * RETURN (BOGUS)', 'LIST "" * RETURN', 'LIST "" * RETURN (STATUS)',
    'LIST "" * RETURN (STATUS (BOGUS))', 'LIST "" ()', 'LIST ()', 'LIST "" * EXTRA (X)',
])
def test_errors(client, command):
    client.expect(command, "BAD")
    client.expect("NOOP")


def test_parse_list_forms():
    req = parse_list([b"", Atom("*")])
    assert (req.reference, req.patterns, req.extended) == ("", ["*"], False)
    req = parse_list([[Atom("subscribed"), Atom("RecursiveMatch")], Atom("x"), [Atom("a"), b"b"],
                      Atom("return"), [Atom("children"), Atom("STATUS"), [Atom("messages")]]])
    assert req.selection == {"SUBSCRIBED", "RECURSIVEMATCH"} and req.patterns == ["a", "b"]
    assert req.returns == {"CHILDREN", "STATUS"} and req.status == ("MESSAGES",) and req.extended
    with pytest.raises(IMAPBad):
        parse_list([b"", [Atom("*")], Atom("RETURN"), [Atom("STATUS"), []]])


def test_lines_are_kept_per_request_while_the_tree_is_unchanged(tree, monkeypatch):
    from clevermail.imap import cmd_list
    first = lines(tree, 'LIST "" T/%')
    made = []
    real = cmd_list._listed
    monkeypatch.setattr(cmd_list, "_listed", lambda *a: made.append(a[0].patterns) or real(*a))
    assert lines(tree, 'LIST "" T/%') == first
    assert made == []                           # answered from the kept lines
    assert lines(tree, 'LIST "" T/*') != first and made == [["T/*"]]    # another request
    tree.expect("CREATE T/e")                   # the tree changed: made again
    assert lines(tree, 'LIST "" T/%') == first + ['* LIST (\\HasNoChildren) "/" "T/e"']
    assert made == [["T/*"], ["T/%"]]


def test_kept_lines_follow_another_process_and_each_spelling(tree, handler, tmp_path, open_session):
    from clevermail.imap.handler import IMAPFileHandler
    from clevermail.store import MailStore
    other = IMAPFileHandler(MailStore(tmp_path / "data"), handler.accounts)
    before = lines(tree, 'LIST "" T/%')
    # another worker process (its own store on the data dir) creates a folder: the
    # kept lines of this one are not answered again
    try:
        other.create(ALICE, "T/Ärger")
    finally:
        close_handler(other)
    after = lines(tree, 'LIST "" T/%')
    assert after == before + ['* LIST (\\HasNoChildren) "/" "T/&AMQ-rger"']
    # a session that enabled UTF8=ACCEPT gets its own spelling, not the kept mUTF-7 lines,
    # and the mUTF-7 session gets its own back after it
    utf8 = open_session()
    utf8.login()
    utf8.expect("ENABLE UTF8=ACCEPT")
    assert lines(utf8, 'LIST "" T/%')[-1] == '* LIST (\\HasNoChildren) "/" "T/Ärger"'
    assert lines(tree, 'LIST "" T/%') == after


def test_subscriptions_are_never_answered_from_kept_lines(tree):
    assert lines(tree, 'LIST "" T/% RETURN (SUBSCRIBED)')[1] == '* LIST (\\HasChildren) "/" "T/b"'
    tree.expect("SUBSCRIBE T/b")
    assert lines(tree, 'LIST "" T/% RETURN (SUBSCRIBED)')[1] == '* LIST (\\HasChildren \\Subscribed) "/" "T/b"'
