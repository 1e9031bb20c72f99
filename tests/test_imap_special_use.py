"""CREATE-SPECIAL-USE (RFC 6154 section 3): CREATE mailbox (USE (\\Attr ...)) stores the
attributes with the folder (store/special_use.py), LIST shows them (SPECIAL-USE
selection and return option), NO [USEATTR] for an unsupported attribute or one only one
folder may carry; they move with RENAME and go with DELETE.  Over socket.socketpair(),
the pure checks, and end to end with imaplib and imapclient (find_special_folder)."""

import imaplib
import os

import imapclient
from imapclient.imapclient import DRAFTS
import pytest

from clevermail.service import MailService
from clevermail.store import special_use
from clevermail.store.errors import SpecialUseError
from conftest import make_config
from imap_helpers import (  # noqa: F401 (client, handler, open_session, store: fixtures)
    ALICE, PASSWORD, client, handler, make_accounts, open_session, store)


def _special(client, pattern="*"):
    """LIST (SPECIAL-USE) lines of the pattern, without the "* LIST " and separator."""
    return [line.replace('* LIST ', '').replace(' "/" ', ' ')
            for line in client.expect(f'LIST (SPECIAL-USE) "" "{pattern}"').untagged]


DEFAULTS = ['(\\HasNoChildren \\Archive) "Archive"', '(\\HasNoChildren \\Drafts) "Drafts"',
            '(\\HasNoChildren \\Junk) "Junk"', '(\\HasNoChildren \\Sent) "Sent"',
            '(\\HasNoChildren \\Trash) "Trash"']


# -- pure ------------------------------------------------------------------------------------
def test_canonical_and_check():
    assert special_use.canonical(["\\archive", "\\ARCHIVE", "\\Junk"]) == ("\\Archive", "\\Junk")
    for attr in ("\\All", "\\Flagged", "\\Important", "\\Bogus"):
        with pytest.raises(SpecialUseError) as err:
            special_use.canonical([attr])
        assert err.value.holder is None
    existing = {"Sent": ("\\Sent",), "Archive": ("\\Archive",)}
    special_use.check(existing, ("\\Archive", "\\Drafts"))          # \Archive may repeat
    with pytest.raises(SpecialUseError) as err:
        special_use.check(existing, ("\\Archive", "\\Sent"))
    assert (err.value.attribute, err.value.holder) == ("\\Sent", "Sent")


def test_store_checks_under_its_lock_and_leaves_nothing_aside(store):
    """The store checks again (the handler's check and the creation are not one step:
    two sessions may race); a folder appears whole, with its attributes."""
    store.create_folder(ALICE, "Old", ("\\Archive",))
    with pytest.raises(SpecialUseError):
        store.create_folder(ALICE, "Other", ("\\Trash",))     # "Trash" has it by name
    assert store.special_use(ALICE)["Old"] == ("\\Archive",)
    assert "Other" not in store.list_folders(ALICE)
    root = store.user_root(ALICE)
    assert sorted(d for d in os.listdir(root) if d.startswith(".")) == [
        ".Archive", ".Drafts", ".Junk", ".Old", ".Sent", ".Trash"]


# -- over a session ------------------------------------------------------------------------
def test_create_with_attributes_shows_in_list(client):
    c = client
    assert c.expect('CREATE "Old/2024" (USE (\\archive))').tagged.split()[2] == "[MAILBOXID"
    assert _special(c) == DEFAULTS[:3] + ['(\\HasNoChildren \\Archive) "Old/2024"'] + DEFAULTS[3:]
    # the superior made on the way has none
    assert c.expect('LIST "" "Old*" RETURN (SPECIAL-USE)').untagged == [
        '* LIST (\\HasChildren) "/" "Old"', '* LIST (\\HasNoChildren \\Archive) "/" "Old/2024"']
    # they move with RENAME and go with DELETE
    c.expect('RENAME "Old/2024" Kept')
    assert c.expect('LIST "" Kept').untagged == ['* LIST (\\HasNoChildren \\Archive) "/" "Kept"']
    c.expect("DELETE Kept")
    c.expect("CREATE Kept")
    assert c.expect('LIST "" Kept').untagged == ['* LIST (\\HasNoChildren) "/" "Kept"']
    c.expect("CREATE Empty (USE ())")
    assert c.expect('LIST "" Empty').untagged == ['* LIST (\\HasNoChildren) "/" "Empty"']


def test_useattr_refusals_create_nothing(client):
    c = client
    for attrs in ("\\All", "\\Flagged", "\\Important", "\\Bogus"):
        c.expect(f"CREATE New/Sub (USE ({attrs}))", "NO", "USEATTR",
                 f"Unsupported special-use attribute {attrs}")
    # one folder each for \Sent, \Drafts, \Junk, \Trash
    c.expect("CREATE New/Sub (USE (\\Archive \\Sent))", "NO", "USEATTR",
             "\\Sent is already the special use of another mailbox")
    assert c.expect('LIST "" "New*"').untagged == []       # not even the superior
    c.expect("CREATE Sent (USE (\\Sent))", "NO", "ALREADYEXISTS")
    c.expect("DELETE Sent")
    c.expect('CREATE "Sent Items" (USE (\\Sent \\Archive))', "OK")
    # a plain "Sent" made again does not take \Sent from the folder made for it
    c.expect("CREATE Sent")
    assert _special(c, "Sent*") == ['(\\HasNoChildren \\Sent \\Archive) "Sent Items"']
    c.expect("CREATE Other (USE (\\Sent))", "NO", "USEATTR")


@pytest.mark.parametrize("args", ["(USE)", "(USE \\Archive)", "(FOO (\\Archive))", "(USE (Archive))",
                                  "(USE (\\Archive) USE (\\Junk))", "()", "USE (\\Archive)",
                                  '(USE ("\\Archive"))', "(USE (\\Archive)) extra"])
def test_create_params_syntax(client, args):
    client.expect(f"CREATE Box {args}", "BAD")
    assert client.expect('LIST "" Box').untagged == []


# -- end to end ---------------------------------------------------------------------------
@pytest.fixture
def service(thread_guard, tmp_path):
    conf = make_config(tmp_path, limits={"auth_failure_delay": 0, "imap_timeout": 30})
    make_accounts(conf.server.users_file)
    service = MailService(conf).start()
    try:
        yield service
    finally:
        service.stop()


@pytest.mark.e2e
def test_imaplib_and_imapclient(service):
    port = service.port("imap")
    c = imapclient.IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10)
    try:
        c.login(ALICE, PASSWORD)
        assert c.has_capability("CREATE-SPECIAL-USE")
        c.delete_folder("Drafts")
        assert c.find_special_folder(DRAFTS) is None
        # imaplib sends the create-params as given
        m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        try:
            m.login(ALICE, PASSWORD)
            assert m._simple_command("CREATE", '"&AMk-bauches"', "(USE (\\Drafts))")[0] == "OK"
            typ, data = m._simple_command("CREATE", "Spam", "(USE (\\Junk))")
            assert (typ, data) == ("NO", [b"[USEATTR] \\Junk is already the special use of another mailbox"])
        finally:
            m.logout()
        # a client that looks for the drafts folder by its attribute finds the new one
        assert c.find_special_folder(DRAFTS) == "\u00c9bauches"
        flags = {name: set(f) for f, _sep, name in c.list_folders()}
        assert flags["\u00c9bauches"] == {b"\\HasNoChildren", b"\\Drafts"}
        assert "Spam" not in flags
    finally:
        c.logout()
