"""sieve/deliver.py with the SMTP file handler (no network): the script's copies
are part of the all-or-nothing transaction, flags reach the file names, the Junk
choice of the inbound checks is the keep target, the vacation record is written
only once the reply is committed, accounts without a script share one file."""

import os

import pytest

from clevermail.relay import queue as queuemod
from clevermail.relay.queue import RelayQueue
from clevermail.smtp.handler import DeliveryFailed, Recipient, SMTPFileHandler
from clevermail.sieve.deliver import SieveFilter
from clevermail.sieve.scripts import SieveScripts
from clevermail.sieve.vacation import Responses
from clevermail.store import MailStore

ALICE, BOB, CAROL = "alice@example.test", "bob@example.test", "carol@example.test"
TRACE = b"Received: from client by mail.example.test; today\r\n"
DATA = f"From: x@far.test\r\nTo: {BOB}\r\nSubject: hello\r\n\r\nbody\r\n".encode()


@pytest.fixture
def store(tmp_path):
    return MailStore(str(tmp_path / "data"))


@pytest.fixture
def queue(tmp_path):
    return RelayQueue(tmp_path / "queue")


@pytest.fixture
def scripts(tmp_path):
    return SieveScripts.for_data_dir(str(tmp_path / "data"))


@pytest.fixture
def handler(store, queue, scripts):
    sieve = SieveFilter(scripts, store, queue, "mail.example.test")
    return SMTPFileHandler(store, accounts=None, queue=queue, sieve=sieve)


def rcpts(*addresses):
    return [Recipient(a, (a.replace("+x", ""),) if "@example.test" in a else ()) for a in addresses]


def activate(scripts, user, text):
    scripts.put(user, "s", text)
    scripts.activate(user, "s")


def files(store, user, folder="INBOX"):
    path = store.folder_path(user, folder)
    return {sub: sorted(os.listdir(os.path.join(path, sub))) for sub in ("new", "cur")}


def test_accounts_without_a_script_share_one_file(handler, store, scripts):
    activate(scripts, BOB, 'require "fileinto";\nfileinto "Work";')
    store.ensure_user(BOB)
    store.create_folder(BOB, "Work")
    handler.deliver(ALICE, rcpts(BOB, CAROL, "dave@example.test"), DATA, TRACE, "Q1")
    carol = os.path.join(store.folder_path(CAROL, "INBOX"), "new", files(store, CAROL)["new"][0])
    dave = os.path.join(store.folder_path("dave@example.test", "INBOX"), "new",
                        files(store, "dave@example.test")["new"][0])
    assert os.path.samefile(carol, dave)
    assert files(store, BOB) == {"new": [], "cur": []}
    assert len(files(store, BOB, "Work")["new"]) == 1


def test_flags_go_into_the_file_name_and_keywords_get_letters(handler, store, scripts):
    activate(scripts, BOB, 'require ["imap4flags"];\naddflag ["\\\\Seen", "\\\\Flagged", "$Work"];')
    handler.deliver(ALICE, rcpts(BOB), DATA, TRACE, "Q2")
    got = files(store, BOB)
    assert got["new"] == [] and len(got["cur"]) == 1
    assert got["cur"][0].endswith(":2,FSa")
    folder = store.open_folder(BOB, "INBOX")
    try:
        (uid,) = folder.uids
        assert set(folder.flag_names(got["cur"][0].rpartition(",")[2])) == {"\\Seen", "\\Flagged", "$Work"}
    finally:
        store.release_folder(folder)


def test_quarantine_folder_is_the_keep_target(handler, store, scripts):
    activate(scripts, BOB, 'require "fileinto";\nif false { fileinto "X"; }')
    handler.deliver(ALICE, rcpts(BOB), DATA, TRACE, "Q3", folder="Junk")
    assert len(files(store, BOB, "Junk")["new"]) == 1
    assert files(store, BOB) == {"new": [], "cur": []}


def test_keep_and_fileinto_inbox_make_one_copy(handler, store, scripts):
    activate(scripts, BOB, 'require "fileinto";\nkeep;\nfileinto "INBOX";\nfileinto "inbox";')
    handler.deliver(ALICE, rcpts(BOB), DATA, TRACE, "Q4")
    assert len(files(store, BOB)["new"]) == 1


def test_a_failing_queue_takes_back_the_scripts_copies(handler, store, queue, scripts, monkeypatch):
    activate(scripts, BOB, 'require ["fileinto", "mailbox", "vacation"];\nfileinto :create "F";\n'
                           'redirect "out@there.test";\nvacation "away";')

    def broken_commit(self):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(queuemod.PendingEntry, "commit", broken_commit)
    with pytest.raises(DeliveryFailed):
        handler.deliver("x@far.test", rcpts(BOB, CAROL), DATA, TRACE, "Q5")
    assert files(store, BOB, "F") == {"new": [], "cur": []}
    assert files(store, CAROL) == {"new": [], "cur": []}
    assert not any(p.suffix == ".json" for p in queue.path.iterdir())
    # no reply went out, so none is remembered
    assert not Responses(scripts.directory(BOB)).recent("away\x00\x00", "x@far.test")


def test_vacation_is_recorded_after_commit(handler, queue, scripts):
    activate(scripts, BOB, 'require "vacation";\nvacation :handle "h" "away";')
    handler.deliver("x@far.test", rcpts(BOB), DATA, TRACE, "Q6")
    assert Responses(scripts.directory(BOB)).recent("h", "x@far.test")
    [entry] = queue.list()
    assert entry.sender == "" and [r.address for r in entry.recipients] == ["x@far.test"]
    handler.deliver("x@far.test", rcpts(BOB), DATA, TRACE, "Q7")
    assert len(queue.list()) == 1


def test_envelope_to_is_the_rcpt_address(handler, store, scripts):
    activate(scripts, BOB, 'require ["envelope", "subaddress", "fileinto", "mailbox"];\n'
                           'if envelope :detail "to" "x" { fileinto :create "Plus"; }')
    handler.deliver(ALICE, rcpts("bob+x@example.test"), DATA, TRACE, "Q8")
    assert len(files(store, BOB, "Plus")["new"]) == 1


def test_the_relay_local_delivery_path(handler, store, scripts):
    activate(scripts, BOB, "discard;")
    store.ensure_user(BOB)
    handler.router.resolve = lambda address: type("R", (), {"accounts": (address,), "external": (),
                                                            "forwarded": False})()
    handler.deliver_queued(ALICE, [BOB, CAROL], DATA, "Q1")
    assert files(store, BOB) == {"new": [], "cur": []}
    assert len(files(store, CAROL)["new"]) == 1


class StubSigner:
    """Records which of the signer's two entry points signed what."""

    def sign(self, data):
        return b"X-Signed: user-domain\r\n" + data

    def sign_report(self, data):
        return b"X-Signed: report\r\n" + data


def test_replies_and_refusals_are_signed_like_the_servers_own_mail(store, queue, scripts):
    sieve = SieveFilter(scripts, store, queue, "mail.example.test", signer=StubSigner())
    handler = SMTPFileHandler(store, accounts=None, queue=queue, sieve=sieve)
    activate(scripts, BOB, 'require "vacation";\nvacation "away";')
    activate(scripts, CAROL, 'require "reject";\nreject "no";')
    handler.deliver("x@far.test", rcpts(BOB), DATA, TRACE, "Q9")
    handler.deliver("x@far.test", rcpts(CAROL), DATA.replace(BOB.encode(), CAROL.encode()), TRACE, "QA")
    bodies = sorted(queue.read_body(e.id) for e in queue.list())
    assert len(bodies) == 2
    assert bodies[0].startswith(b"X-Signed: report\r\nFrom: Mail Delivery System")       # the MDN
    assert bodies[1].startswith(b"X-Signed: user-domain\r\nFrom: <bob@example.test>")    # the reply


def test_an_action_that_cannot_be_prepared_keeps_the_message(handler, store, queue, scripts,
                                                            monkeypatch, caplog):
    activate(scripts, BOB, 'require "vacation";\nvacation "away";\nredirect "a@there.test";')

    def broken(*args, **kwargs):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(Responses, "recent", broken)
    handler.deliver("x@far.test", rcpts(BOB), DATA, TRACE, "QB")
    assert len(files(store, BOB)["new"]) == 1
    assert queue.list() == []
    assert "could not be carried out; kept in INBOX" in caplog.text and BOB in caplog.text


def test_system_flags_need_no_keyword_map(handler, store, scripts, monkeypatch):
    activate(scripts, BOB, 'require ["fileinto", "mailbox", "imap4flags"];\n'
                           'fileinto :create :flags ["\\\\flagged", "\\\\SEEN"] "F";')

    def no_open(*args):
        raise AssertionError("the folder was opened")
    monkeypatch.setattr(store.delivery.folders, "open", no_open)
    handler.deliver(ALICE, rcpts(BOB), DATA, TRACE, "QC")
    (name,) = files(store, BOB, "F")["cur"]
    assert name.endswith(":2,FS")
