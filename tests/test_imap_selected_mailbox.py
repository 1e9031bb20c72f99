"""Tests for clevermail.imap.selected_mailbox: SelectedMailbox, the wire rendering of one
session's folder view (the view itself is tested in test_store_view.py).

Views are built directly over a real Folder from a MailStore in tmp_path; "another
session" is simply a second view (or the store itself) changing the same Folder.
"""

import pytest

from clevermail.imap.selected_mailbox import SelectedMailbox
from clevermail.store.view import FolderView, ViewMode
from fakes import open_inbox
from imap_helpers import ALICE, message
from view_fixtures import store  # noqa: F401 (a fixture)

FLAGS_LINE = b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"


@pytest.fixture
def folder(store):
    with open_inbox(store, ALICE, map(message, range(1, 4))) as folder:
        yield folder


def view(folder, readonly=False):
    return SelectedMailbox(FolderView(folder, "INBOX", ViewMode.EXAMINE if readonly else ViewMode.SELECT))


def test_select_responses(folder):
    v = view(folder)
    assert v.select_responses() == b"".join([
        FLAGS_LINE,
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted\r\n",
        b"* 3 EXISTS\r\n",
        b"* 3 RECENT\r\n",
        b"* OK [UNSEEN 1] First unseen\r\n",
        b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % folder.uidvalidity,
        b"* OK [UIDNEXT 4] Predicted next UID\r\n",
        b"* OK [MAILBOXID (%s)] Ok\r\n" % folder.mailbox_id().encode(),
        b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % folder.modseq,
    ])


def test_select_responses_read_only_and_keywords(folder):
    folder.store_flags([1], folder.letters_for(["$Work"]), "+")
    folder.store_flags([1, 2, 3], {"S"}, "+")
    v = view(folder, readonly=True)
    out = v.select_responses().split(b"\r\n")
    assert out[0] == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)"
    assert out[1] == b"* OK [PERMANENTFLAGS ()] Flags permitted"
    assert not any(b"UNSEEN" in line for line in out)


def test_no_changes_no_updates(folder):
    v = view(folder)
    assert v.updates(allow_expunge=True) == []


def test_new_mail_gives_exists_and_recent(store, folder):
    v = view(folder)
    other = view(folder)
    store.deliver_local("", [ALICE], message(4))
    assert v.updates(allow_expunge=False) == [b"* 4 EXISTS\r\n", b"* 4 RECENT\r\n"]
    assert v.view.uids == [1, 2, 3, 4]
    assert other.updates(allow_expunge=False) == [b"* 4 EXISTS\r\n", b"* 0 RECENT\r\n"]
    assert v.updates(allow_expunge=False) == []


def test_new_mail_in_read_only_view_claims_nothing(store, folder):
    ro = view(folder, readonly=True)
    store.deliver_local("", [ALICE], message(4))
    assert ro.updates(allow_expunge=True) == [b"* 4 EXISTS\r\n", b"* 3 RECENT\r\n"]
    rw = view(folder)
    assert rw.view.recent == {1, 2, 3, 4}


def test_flag_change_by_other_view_is_reported_once(folder):
    v, other = view(folder), view(folder)
    other.view.set_flags([2], ["\\Flagged"], "+")
    assert v.updates(allow_expunge=False) == [b"* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))\r\n"]
    assert v.updates(allow_expunge=False) == []
    assert other.updates(allow_expunge=False) == []          # its own change: silent


def test_own_change_then_foreign_change_is_reported(folder):
    v, other = view(folder), view(folder)
    v.view.set_flags([1], ["\\Seen"], "+")
    folder.store_flags([1], {"F"}, "+")                      # someone else, later
    assert v.updates(allow_expunge=True) == [b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Seen \\Recent))\r\n"]
    assert other.updates(allow_expunge=True) == [b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Seen))\r\n"]


def test_keyword_flag_change_is_named(folder):
    """A keyword new to the mailbox is announced (FLAGS, PERMANENTFLAGS) before the
    FETCH that shows it, once (RFC 3501 7.2.6; imaptest's "Keyword used without being
    in FLAGS")."""
    v = view(folder)
    v.select_responses()
    folder.store_flags([3], folder.letters_for(["$Label1"]), "+")
    assert v.updates(allow_expunge=True) == [
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)\r\n"
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 \\*)] Flags permitted\r\n",
        b"* 3 FETCH (UID 3 FLAGS ($Label1 \\Recent))\r\n"]
    folder.store_flags([2], folder.letters_for(["$Label1"]), "+")
    assert v.updates(allow_expunge=True) == [b"* 2 FETCH (UID 2 FLAGS ($Label1 \\Recent))\r\n"]
    assert v.keyword_updates() == []


def test_keyword_updates_between_commands_say_each_new_keyword_once(folder):
    """The check before every command (session.py): nothing while the folder's keywords
    stay as they were, FLAGS once for each keyword that comes into use (also one defined
    by another view after the last look), nothing again for one already said."""
    v = view(folder)
    v.select_responses()
    assert v.keyword_updates() == []
    assert v.keyword_updates() == []
    folder.letters_for(["$One"])            # defined (another session's STORE or APPEND)
    assert v.keyword_updates() == [
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $One)\r\n"
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $One \\*)] Flags permitted\r\n"]
    assert v.keyword_updates() == []
    folder.letters_for(["$Two"])
    assert v.keyword_updates()[0].startswith(
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $One $Two)\r\n")
    assert v.keyword_updates() == []
    assert v.unannounced({"$Two"}) is False
    other = view(folder)                     # selected after both: its FLAGS had them
    other.select_responses()
    assert other.keyword_updates() == []


def test_expunge_deferred_then_sent_highest_first(folder):
    v = view(folder)
    folder.expunge([1, 3])
    assert v.updates(allow_expunge=False) == []
    assert v.view.uids == [1, 2, 3]                 # numbers unchanged while deferred
    assert [m.uid for m in v.view.messages([1, 2, 3], expunged=False)] == [2]
    assert [m.uid for m in v.view.messages([1, 2, 3])] == [1, 2, 3]     # RFC 2180 4.1
    assert v.updates(allow_expunge=False) == []
    assert v.updates(allow_expunge=True) == [b"* 3 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"]
    assert v.view.uids == [2]
    assert v.view.recent == {2}
    assert v.updates(allow_expunge=True) == []


def test_expunge_and_new_mail_together(store, folder):
    v = view(folder)
    folder.expunge([2])
    store.deliver_local("", [ALICE], message(4))
    # new mail is announced even while the expunge waits; EXISTS counts the
    # messages the client still knows about
    assert v.updates(allow_expunge=False) == [b"* 4 EXISTS\r\n", b"* 4 RECENT\r\n"]
    assert v.view.uids == [1, 2, 3, 4]
    assert v.updates(allow_expunge=True) == [b"* 2 EXPUNGE\r\n"]
    assert v.view.uids == [1, 3, 4]
    assert v.view.seq_of(4) == 3


def test_flag_change_after_deferred_expunge_uses_current_numbers(folder):
    v = view(folder)
    folder.expunge([1])
    folder.store_flags([3], {"S"}, "+")
    assert v.updates(allow_expunge=False) == [b"* 3 FETCH (UID 3 FLAGS (\\Seen \\Recent))\r\n"]
    folder.store_flags([3], {"F"}, "+")
    assert v.updates(allow_expunge=True) == [b"* 1 EXPUNGE\r\n",
                                             b"* 2 FETCH (UID 3 FLAGS (\\Flagged \\Seen \\Recent))\r\n"]


def test_flag_change_of_expunged_message_is_dropped(folder):
    v = view(folder)
    folder.store_flags([2], {"T"}, "+")
    folder.expunge([2])
    assert v.updates(allow_expunge=True) == [b"* 2 EXPUNGE\r\n"]


def test_full_compare_when_change_log_is_trimmed(folder, monkeypatch):
    v = view(folder)
    folder.store_flags([1], {"F"}, "+")
    folder.expunge([3])
    monkeypatch.setattr(folder, "_log_floor", folder.modseq + 1)
    assert v.updates(allow_expunge=True) == [b"* 3 EXPUNGE\r\n",
                                             b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))\r\n"]


def test_changes_made_on_disk_by_another_program(folder):
    import os
    v = view(folder)
    entry = folder.by_uid[2]
    cur = os.path.join(folder.path, "cur")
    os.rename(folder.file_path(entry), os.path.join(cur, entry.base + ":2,S"))
    os.unlink(folder.file_path(folder.by_uid[1]))
    out = v.updates(allow_expunge=True)
    assert out == [b"* 1 EXPUNGE\r\n", b"* 1 FETCH (UID 2 FLAGS (\\Seen \\Recent))\r\n"]


def test_deleted_folder_marks_view_gone(store):
    store.ensure_user(ALICE)
    store.create_folder(ALICE, "Work")
    folder = store.open_folder(ALICE, "Work")
    try:
        v = SelectedMailbox(FolderView(folder, "Work", ViewMode.SELECT))
        store.delete_folder(ALICE, "Work")
        assert v.updates(allow_expunge=True) == []
        assert v.gone
    finally:
        store.release_folder(folder)


def test_sequence_numbers_stay_consistent_over_many_changes(store, folder):
    """A model check: after each update the view's numbering equals the folder's."""
    v = view(folder)
    for i in range(4, 12):
        store.deliver_local("", [ALICE], message(i))
    v.updates(allow_expunge=True)
    shadow = list(v.view.uids)
    for doomed in ([2, 5], [11], [1, 3, 4]):
        folder.expunge(doomed)
        for line in v.updates(allow_expunge=True):
            if line.endswith(b" EXPUNGE\r\n"):
                seq = int(line.split()[1])
                del shadow[seq - 1]
        assert shadow == v.view.uids == folder.uids


def test_nothing_changed_says_nothing_and_reads_no_keyword_map(folder, monkeypatch):
    """Between most commands nothing changed: updates() is [] without a look at the
    keyword map (its folder lock); a change looks again."""
    v = view(folder)
    v.select_responses()
    looks = []
    keywords = v.view.keywords
    monkeypatch.setattr(v.view, "keywords", lambda: looks.append(1) or keywords())
    assert v.updates(allow_expunge=True) == []
    assert v.updates(allow_expunge=False) == []
    assert looks == []
    folder.store_flags([1], folder.letters_for(["\\Seen"]), "+")
    assert v.updates(allow_expunge=True) == [b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))\r\n"]
    assert looks == [1]
