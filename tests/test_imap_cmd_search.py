"""Tests for clevermail.imap.cmd_search over socket.socketpair(): ESEARCH reply shapes
(RFC 4731), the saved result "$" of SEARCHRES (RFC 5182) in SEARCH, FETCH, STORE, COPY
and UID EXPUNGE, SORT with every key (RFC 5256, RFC 5957), ESORT (RFC 5267), THREAD,
and the errors; plus the file handler's sort-key cache."""

import re

import pytest

from imap_helpers import (  # noqa: F401 (client, handler, open_session, selected, store: fixtures)
    append, check, client, handler, message, open_session, selected, store)


def _search(client, text):
    """The untagged lines of a command, an ESEARCH's tag written as "t"."""
    return [re.sub(r'^\* ESEARCH \(TAG "a\d+"\)', '* ESEARCH (TAG "t")', line)
            for line in client.expect(text).untagged]


# -- ESEARCH (RFC 4731) -------------------------------------------------------------------
def test_esearch_reply_shapes(selected):
    s = selected
    s.expect("STORE 2 +FLAGS.SILENT (\\Seen)")
    assert _search(s, "SEARCH RETURN () ALL") == ['* ESEARCH (TAG "t") ALL 1:3']
    assert _search(s, "SEARCH RETURN (MIN MAX COUNT ALL) ALL") == [
        '* ESEARCH (TAG "t") MIN 1 MAX 3 ALL 1:3 COUNT 3']
    assert _search(s, "SEARCH RETURN (COUNT) UNSEEN") == ['* ESEARCH (TAG "t") COUNT 2']
    assert _search(s, "SEARCH RETURN (ALL) UNSEEN") == ['* ESEARCH (TAG "t") ALL 1,3']
    assert _search(s, "UID SEARCH RETURN (MIN MAX) UNSEEN") == ['* ESEARCH (TAG "t") UID MIN 1 MAX 3']
    # nothing matched: no MIN, MAX or ALL; COUNT 0
    assert _search(s, "SEARCH RETURN (MIN MAX ALL COUNT) DELETED") == ['* ESEARCH (TAG "t") COUNT 0']
    assert _search(s, "UID SEARCH RETURN () DELETED") == ['* ESEARCH (TAG "t") UID']
    # CHARSET after RETURN; a plain SEARCH still answers * SEARCH
    assert _search(s, "SEARCH RETURN (COUNT) CHARSET UTF-8 ALL") == ['* ESEARCH (TAG "t") COUNT 3']
    assert _search(s, "SEARCH ALL") == ["* SEARCH 1 2 3"]


def test_esearch_uid_form_after_expunge(selected, store):
    s = selected
    s.expect("STORE 2 +FLAGS.SILENT (\\Deleted)")
    s.expect("EXPUNGE")
    assert _search(s, "UID SEARCH RETURN (ALL) ALL") == ['* ESEARCH (TAG "t") UID ALL 1,3']
    assert _search(s, "SEARCH RETURN (ALL) ALL") == ['* ESEARCH (TAG "t") ALL 1:2']


@pytest.mark.parametrize("command", ["SEARCH RETURN ALL", "SEARCH RETURN (BOGUS) ALL",
                                     "SEARCH RETURN (PARTIAL 1:5 ALL) ALL", "SEARCH RETURN"])
def test_esearch_bad_return(selected, command):
    selected.expect(command, "BAD")
    selected.expect("NOOP")


# -- SEARCHRES (RFC 5182) -----------------------------------------------------------------------
def test_saved_result_in_fetch_store_search(selected):
    s = selected
    assert s.expect("SEARCH RETURN (SAVE) 2:3").untagged == []       # SAVE alone: no ESEARCH
    assert s.expect("FETCH $ (UID)").untagged == ["* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)"]
    assert s.expect("UID FETCH $ (FLAGS)").untagged == ["* 2 FETCH (UID 2 FLAGS (\\Recent))",
                                                        "* 3 FETCH (UID 3 FLAGS (\\Recent))"]
    s.expect("STORE $ +FLAGS.SILENT (\\Flagged)")
    assert _search(s, "SEARCH FLAGGED") == ["* SEARCH 2 3"]
    assert _search(s, "SEARCH $ 3") == ["* SEARCH 3"]
    assert _search(s, "SEARCH NOT $") == ["* SEARCH 1"]
    assert _search(s, "SEARCH OR $ 1") == ["* SEARCH 1 2 3"]
    # $ inside the search that saves is the old result
    s.expect("SEARCH RETURN (SAVE) $ 3")
    assert _search(s, "SEARCH $") == ["* SEARCH 3"]


def test_saved_result_with_min_max_and_with_all(selected):
    s = selected
    assert _search(s, "SEARCH RETURN (SAVE MIN) ALL") == ['* ESEARCH (TAG "t") MIN 1']
    assert _search(s, "SEARCH $") == ["* SEARCH 1"]
    s.expect("SEARCH RETURN (MAX SAVE MIN) ALL")
    assert _search(s, "SEARCH $") == ["* SEARCH 1 3"]
    s.expect("SEARCH RETURN (SAVE MIN COUNT) ALL")        # COUNT too: the whole result
    assert _search(s, "SEARCH $") == ["* SEARCH 1 2 3"]


def test_saved_result_is_empty_after_a_failing_search_and_a_new_select(selected):
    s = selected
    s.expect("SEARCH RETURN (SAVE) ALL")
    s.expect("SEARCH RETURN (SAVE) BOGUS", "BAD")
    assert _search(s, "SEARCH $") == ["* SEARCH"]
    assert s.expect("FETCH $ (UID)").untagged == []
    s.expect("SEARCH RETURN (SAVE) ALL")
    s.expect("SEARCH RETURN (SAVE) CHARSET KOI8-R ALL", "NO", "BADCHARSET (US-ASCII UTF-8)")
    assert _search(s, "SEARCH $") == ["* SEARCH"]
    s.expect("SEARCH RETURN (SAVE) ALL")
    s.select()
    assert _search(s, "SEARCH $") == ["* SEARCH"]


def test_saved_result_follows_expunges_and_copy(selected, store):
    s = selected
    s.expect("SEARCH RETURN (SAVE) 2:3")
    s.expect("STORE 1 +FLAGS.SILENT (\\Deleted)")
    s.expect("EXPUNGE")
    # the saved messages are now 1 and 2
    assert s.expect("FETCH $ (UID)").untagged == ["* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)"]
    s.expect("CREATE Saved")
    r = s.expect("COPY $ Saved")
    assert r.tagged.endswith("[COPYUID %s 2:3 1:2] COPY completed" % r.tagged.split()[3])
    s.expect("UID STORE $ +FLAGS.SILENT (\\Deleted)")
    s.expect("UID EXPUNGE $")
    assert _search(s, "SEARCH ALL") == ["* SEARCH"]
    assert s.expect("FETCH $ (UID)").untagged == []


# -- SORT (RFC 5256, RFC 5957) ---------------------------------------------------------------------
def _mail(subject, sender, to, date, extra=""):
    return (f"From: {sender}\r\nTo: {to}\r\nCc: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n"
            f"{extra}\r\nbody\r\n").encode()


@pytest.fixture
def sorted_box(client):
    """INBOX with four messages made to sort differently on every key."""
    mails = [
        _mail("Re: beta", "Zoe <zoe@x.org>", "carl@x.org", "Mon, 7 Feb 2022 10:00:00 +0000",
              "Message-ID: <1@x>\r\n" + "X-Pad: " + "p" * 300 + "\r\n"),
        _mail("alpha", "adam@x.org", "Bea <bea@x.org>", "Mon, 7 Feb 2022 09:00:00 -0300",
              "Message-ID: <2@x>\r\n"),
        _mail("[list] Beta (fwd)", "=?utf-8?q?Yann?= <bob@x.org>", "al@x.org",
              "Mon, 7 Feb 2022 11:00:00 +0000", "Message-ID: <3@x>\r\nIn-Reply-To: <1@x>\r\n"),
        _mail("Gamma", "mia@x.org", "dan@x.org", "garbage", "Message-ID: <4@x>\r\nReferences: <2@x>\r\n"),
    ]
    for n, data in enumerate(mails):
        check(append(client, "INBOX", data, f' "0{n + 1}-Jan-2022 00:00:00 +0000"'), "OK")
    client.select()
    return client


@pytest.mark.parametrize("criteria, order", [
    ("ARRIVAL", "1 2 3 4"),
    ("REVERSE ARRIVAL", "4 3 2 1"),
    ("DATE", "4 1 3 2"),          # 4's Date is garbage: its INTERNALDATE (Jan 2022) is first
    ("SUBJECT", "2 1 3 4"),       # ALPHA, BETA, BETA, GAMMA: ties in mailbox order
    ("REVERSE SUBJECT", "4 1 3 2"),
    ("SUBJECT REVERSE DATE", "2 3 1 4"),
    ("FROM", "2 3 4 1"),          # adam, bob, mia, zoe: the mailbox, not the name
    ("TO", "3 2 1 4"),            # al, bea, carl, dan
    ("CC", "3 2 1 4"),
    ("DISPLAYFROM", "2 4 3 1"),   # adam@x.org, mia@x.org, Yann, Zoe
    ("DISPLAYTO", "3 2 1 4"),     # al@x.org, Bea, carl@x.org, dan@x.org
    ("SIZE", "4 2 3 1"),          # 124, 141, 177, 448 octets
])
def test_sort_keys(sorted_box, criteria, order):
    r = sorted_box.expect(f"SORT ({criteria}) UTF-8 ALL")
    assert r.untagged == [f"* SORT {order}"]


def test_uid_sort_search_keys_and_empty_result(sorted_box):
    s = sorted_box
    assert _search(s, "UID SORT (SUBJECT) US-ASCII 2:4") == ["* SORT 2 3 4"]
    assert _search(s, 'SORT (FROM) UTF-8 SUBJECT "beta"') == ["* SORT 3 1"]
    assert _search(s, "SORT (DATE) UTF-8 DELETED") == ["* SORT"]


def test_esort_and_saved_sort(sorted_box):
    s = sorted_box
    assert _search(s, "SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL") == [
        '* ESEARCH (TAG "t") MIN 4 MAX 2 COUNT 4']
    assert _search(s, "SORT RETURN (ALL) (REVERSE ARRIVAL) UTF-8 ALL") == ['* ESEARCH (TAG "t") ALL 4,3,2,1']
    assert _search(s, "SORT RETURN () (ARRIVAL) UTF-8 ALL") == ['* ESEARCH (TAG "t") ALL 1:4']
    assert _search(s, "UID SORT RETURN (ALL) (DATE) UTF-8 ALL") == ['* ESEARCH (TAG "t") UID ALL 4,1,3,2']
    assert _search(s, "SORT RETURN (COUNT) (DATE) UTF-8 DELETED") == ['* ESEARCH (TAG "t") COUNT 0']
    s.expect("SORT RETURN (SAVE MIN) (DATE) UTF-8 ALL")
    assert _search(s, "SEARCH $") == ["* SEARCH 4"]


@pytest.mark.parametrize("command, status", [
    ("SORT", "BAD"), ("SORT (DATE)", "BAD"), ("SORT (DATE) UTF-8", "BAD"),
    ("SORT DATE UTF-8 ALL", "BAD"), ("SORT () UTF-8 ALL", "BAD"), ("SORT (BOGUS) UTF-8 ALL", "BAD"),
    ("SORT (REVERSE) UTF-8 ALL", "BAD"), ("SORT (DATE) UTF-8 BOGUS", "BAD"),
    ("SORT (DATE) KOI8-R ALL", "NO"), ("THREAD", "BAD"), ("THREAD REFERENCES UTF-8", "BAD"),
    ("THREAD BOGUS UTF-8 ALL", "BAD"), ("THREAD (REFERENCES) UTF-8 ALL", "BAD"),
    ("THREAD REFERENCES KOI8-R ALL", "NO"),
])
def test_sort_and_thread_errors(selected, command, status):
    selected.expect(command, status)
    selected.expect("NOOP")


def test_sort_needs_a_selected_mailbox(client):
    client.expect("SORT (DATE) UTF-8 ALL", "BAD")
    client.expect("THREAD REFERENCES UTF-8 ALL", "BAD")


# -- THREAD ------------------------------------------------------------------------------------------
def test_thread_references_and_orderedsubject(sorted_box):
    s = sorted_box
    # 3 replies to 1 (In-Reply-To), 4 to 2 (References); the threads by their first
    # message's sent date: 1 (10:00 UTC) before 2 (09:00 -0300)
    assert _search(s, "THREAD REFERENCES UTF-8 ALL") == ["* THREAD (1 3)(2 4)"]
    assert _search(s, "UID THREAD REFERENCES UTF-8 1:3") == ["* THREAD (1 3)(2)"]
    # by subject: ALPHA (2), BETA (1, 3), GAMMA (4, dated by its INTERNALDATE, January)
    assert _search(s, "THREAD ORDEREDSUBJECT UTF-8 ALL") == ["* THREAD (4)(1 3)(2)"]
    assert _search(s, "THREAD REFERENCES UTF-8 DELETED") == ["* THREAD"]


def test_thread_after_expunge_and_new_mail(sorted_box, store):
    s = sorted_box
    s.expect("STORE 1 +FLAGS.SILENT (\\Deleted)")
    s.expect("EXPUNGE")
    # now 1 (alpha, 12:00 UTC) <- 3; 2's parent is gone: a dummy with one child, pruned,
    # and 2 (11:00 UTC) comes first
    assert _search(s, "THREAD REFERENCES UTF-8 ALL") == ["* THREAD (2)(1 3)"]
    check(append(s, "INBOX", _mail("Re: alpha", "a@x.org", "b@x.org", "Tue, 8 Feb 2022 10:00:00 +0000",
                                   "Message-ID: <5@x>\r\nReferences: <2@x> <4@x>\r\n")), "OK")
    r = s.expect("THREAD REFERENCES UTF-8 ALL")
    assert r.untagged[-1] == "* THREAD (2)(1 3 4)"


# -- the cache ---------------------------------------------------------------------------------------
def test_repeated_sort_reads_no_message_again(sorted_box, handler, monkeypatch):
    s = sorted_box
    s.expect("SORT (SUBJECT) UTF-8 ALL")
    from clevermail.store import view_index
    from clevermail.store.view import FolderView
    opened = []
    real_open, real_paths = FolderView.open_message, view_index.message_paths

    def spy_open(self, uid):
        opened.append(uid)
        return real_open(self, uid)

    def spy_paths(view, uids):      # the bulk read of a first SORT opens these paths
        opened.extend(uids)
        return real_paths(view, uids)
    monkeypatch.setattr(FolderView, "open_message", spy_open)
    monkeypatch.setattr(view_index, "message_paths", spy_paths)
    assert _search(s, "SORT (FROM) UTF-8 ALL") == ["* SORT 2 3 4 1"]
    assert _search(s, "THREAD REFERENCES UTF-8 ALL") == ["* THREAD (1 3)(2 4)"]
    assert opened == []
    # another session of the same user shares the cache; a new message is read alone
    check(append(s, "INBOX", message(9)), "OK")
    s.expect("NOOP")
    s.expect("SORT (DATE) UTF-8 ALL")
    assert opened == [5]


def test_search_modseq_in_esearch_is_that_of_the_messages_returned(selected):
    s = selected
    s.expect("STORE 1 +FLAGS.SILENT (\\Seen)")
    s.expect("STORE 3 +FLAGS.SILENT (\\Flagged)")
    modseqs = {int(line.split()[1]): int(line.split("MODSEQ (")[1].split(")")[0])
               for line in s.expect("FETCH 1:3 (MODSEQ)").untagged if " FETCH " in line}
    top = max(modseqs.values())
    assert _search(s, "SEARCH RETURN (MIN) MODSEQ 1") == [f'* ESEARCH (TAG "t") MIN 1 MODSEQ {modseqs[1]}']
    assert _search(s, "SEARCH RETURN (MAX) MODSEQ 1") == [f'* ESEARCH (TAG "t") MAX 3 MODSEQ {modseqs[3]}']
    assert _search(s, "SEARCH RETURN (COUNT) MODSEQ 1") == [f'* ESEARCH (TAG "t") COUNT 3 MODSEQ {top}']
    assert _search(s, "SEARCH MODSEQ 1") == [f"* SEARCH 1 2 3 (MODSEQ {top})"]
