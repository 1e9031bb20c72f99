"""Fixtures and helpers of the SMTPSession tests over socket.socketpair()
(test_smtp_session.py, test_smtp_delivery.py, test_smtp_data.py, test_smtp_auth.py):
`users_file`, `env` (an smtp_helpers.Env in tmp_path), `tls`; hello(), start_mail(),
send_mail(), start_tls() and a small message MSG."""

import pytest

from fakes import tls_contexts
from smtp_helpers import Env, make_users_file


MSG = "Subject: hi\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    return make_users_file(tmp_path_factory.mktemp("smtp-users"))


@pytest.fixture
def env(tmp_path, users_file):
    e = Env(str(tmp_path / "data"), users_file)
    yield e
    e.connect.end(wait=False)


@pytest.fixture(scope="module")
def tls():
    return tls_contexts("mx.example.test")


def hello(env, server=None, **kw):
    """A greeted session (env.connect) that said EHLO client.test."""
    c = env.connect(server, **kw)
    c.expect(250, "EHLO client.test")
    return c


def start_mail(c, rcpts=("alice@example.test",), sender="a@b.test", data=True):
    """MAIL FROM, RCPT TO each of rcpts (all accepted) and, if data, DATA up to its 354."""
    c.expect(250, f"MAIL FROM:<{sender}>")
    for r in rcpts:
        c.expect(250, f"RCPT TO:<{r}>")
    if data:
        c.expect(354, "DATA")


def send_mail(c, rcpts=("alice@example.test",), body=MSG, sender="sender@remote.test"):
    start_mail(c, rcpts, sender)
    c.send(body + ".\r\n")
    return c.expect(250)
