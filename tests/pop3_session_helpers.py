"""Fixtures and helpers of the POP3 session tests (test_pop3_session.py,
test_pop3_login.py, test_pop3_transaction.py): handler, store and open_session
(fakes.session_fixtures; the store's Folders closed at teardown), the greeting and
capabilities, deliver(), inbox() and b64()."""

import base64

import fakes
from fakes import session_fixtures
from pop3_helpers import ALICE, FakeServer, make_handler, message, start_session


GREETING = "+OK CleverMail POP3 server ready (mail.example.test)"
CAPA_BASE = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
CAPA_TAIL = ["EXPIRE NEVER", "IMPLEMENTATION CleverMail"]


def read_greeting(client):
    assert client.line().decode() == GREETING


handler, store, open_session = session_fixtures(make_handler, FakeServer, start_session,
                                                read_greeting, lambda h: fakes.close_store(h.store))


def deliver(store, n, address=ALICE, body=None):
    for i in range(1, n + 1):
        store.deliver_local("", [address], message(i, body))


def inbox(store, address=ALICE):
    folder = store.open_folder(address, "INBOX")
    store.release_folder(folder)
    return folder


def b64(text):
    return base64.b64encode(text.encode()).decode()
