"""The pytest plugin of CleverMail (the `pytest11` entry point `clevermail`): a whole
mail server for an application's tests, in the test process.

    def test_welcome(clevermail_server):
        app.send_welcome(clevermail_server.smtp_settings, "ann@example.org")
        msg = clevermail_server.wait_for("ann@example.org", subject="Welcome")
        assert "Hello" in msg.get_content()

Fixtures:
- `clevermail_server`: a sandbox (clevermail/sandbox/: every recipient of every domain
  accepted into its own mailbox, nothing relayed, any login) on free loopback ports,
  started once per test session and emptied after every test (faults reset too);
- `clevermail_account`: a real account of that sandbox, whose password alone logs in,
  removed after the test.

Inert until a test asks for one of them: importing this module (pytest does it for every
run wherever CleverMail is installed) imports nothing of the server and starts nothing.
"""

import itertools
import secrets
import time
from dataclasses import dataclass

import pytest

DEFAULT_USER = "tester@example.test"    # whose mailbox the server's own settings open
DEFAULT_PASSWORD = "sandbox"            # any password logs in to a sandbox mailbox
_accounts = itertools.count(1)


class ClevermailServer:
    """What `clevermail_server` gives a test: the settings clients need and the
    mailboxes as `email.message.EmailMessage` objects."""

    def __init__(self, sandbox, start_seconds):
        self.sandbox = sandbox
        self.host = sandbox.host
        self.start_seconds = start_seconds      # what starting the sandbox took

    def settings(self, kind, user=DEFAULT_USER, password=DEFAULT_PASSWORD):
        """{host, port, user, password} of one listener ('smtp', 'submission',
        'imap', 'pop3')."""
        return {"host": self.host, "port": self.sandbox.port(kind), "user": user, "password": password}

    @property
    def smtp_settings(self):
        """The MX port: sending needs no login, and a login with any password works."""
        return self.settings("smtp")

    @property
    def submission_settings(self):
        """The submission port: every message needs a login (any username and password)."""
        return self.settings("submission")

    @property
    def imap_settings(self):
        return self.settings("imap")

    @property
    def pop3_settings(self):
        return self.settings("pop3")

    @property
    def cafile(self):
        """The sandbox's self-signed certificate, for clients that verify STARTTLS."""
        return self.sandbox.cafile

    def messages(self, address, folder="INBOX"):
        """The messages in a mailbox, oldest first, as EmailMessage objects."""
        from .sandbox.mailboxes import parse
        return [parse(raw) for _, raw in self.sandbox.mailboxes.raw_messages(address, folder)]

    def wait_for(self, address, subject=None, headers=None, timeout=10.0, folder=None):
        """The first message of `address` whose Subject contains `subject` and whose
        fields contain the values of `headers` ({name: part of the value}, any case),
        in any of its folders (INBOX first; a copy filed by Sieve or put in Junk
        counts) or only in `folder`, waiting up to `timeout` seconds; AssertionError
        saying what the mailbox holds when none came."""
        from .sandbox.mailboxes import parse
        wanted = [f"{name}:{value}" for name, value in (headers or {}).items()]
        found = self.sandbox.mailboxes.wait(address, subject=subject, headers=wanted, timeout=timeout,
                                            folder=folder)
        if found is None:
            boxes = self.sandbox.mailboxes
            held = {name: [str(m.get("Subject", "")) for m in self.messages(address, name)]
                    for name in ([folder] if folder else boxes.folders(address))}
            # INBOX always, the other folders when they hold something
            where = "; ".join(f"{name} holds {len(s)}: {s!r}" for name, s in held.items()
                              if s or name == (folder or "INBOX"))
            raise AssertionError(f"no message for {address} with subject {subject!r} and "
                                 f"headers {headers!r} within {timeout:g} s; {where or 'no mailbox'}")
        return parse(found[2])

    def set_faults(self, fail_rcpt=(), delay=0.0, drop_after_data=False):
        """Faults until the end of the test: fail_rcpt ['*@bounce.test=550', ...],
        delay seconds before every SMTP reply, drop_after_data (the connection closes
        before the reply to a message, which is not delivered)."""
        from .sandbox.faults import Faults
        self.sandbox.faults = Faults.from_options(fail_rcpt, delay, drop_after_data)

    def clear(self):
        """Empty every mailbox (done after every test) and drop the faults."""
        from .sandbox.faults import NO_FAULTS
        self.sandbox.faults = NO_FAULTS
        self.sandbox.mailboxes.clear()


@dataclass(frozen=True)
class ClevermailAccount:
    """A real account: only `password` logs in as `address`."""

    address: str
    password: str
    server: ClevermailServer

    @property
    def smtp_settings(self):
        return self.server.settings("submission", self.address, self.password)

    @property
    def imap_settings(self):
        return self.server.settings("imap", self.address, self.password)

    @property
    def pop3_settings(self):
        return self.server.settings("pop3", self.address, self.password)


@pytest.fixture(scope="session")
def _clevermail_session():
    from .sandbox.service import Sandbox

    began = time.perf_counter()
    sandbox = Sandbox().start()
    server = ClevermailServer(sandbox, time.perf_counter() - began)
    try:
        yield server
    finally:
        sandbox.stop()


@pytest.fixture
def clevermail_server(_clevermail_session):
    """A CleverMail sandbox for the test session, emptied after each test."""
    try:
        yield _clevermail_session
    finally:
        _clevermail_session.clear()


@pytest.fixture
def clevermail_account(clevermail_server):
    """A real account with its own password on the sandbox, removed after the test."""
    password = secrets.token_urlsafe(12)
    address = clevermail_server.sandbox.add_account(
        f"account{next(_accounts)}-{secrets.token_hex(3)}@example.test", password)
    account = ClevermailAccount(address, password, clevermail_server)
    yield account
    clevermail_server.sandbox.remove_account(account.address)
