"""ManageSieve end to end: a real MailService on 127.0.0.1 port 0 with a
[managesieve] listener and TLS, driven by a raw client over TCP and by Debian's
sieve-connect (the Perl ManageSieve client: STARTTLS with a verified certificate,
SASL PLAIN through Authen::SASL, non-synchronizing literals)."""

import smtplib
import socket
import ssl

import pytest

from clevermail.sieve.interp import DEFAULT_LIMITS
from interop_helpers import ALICE, BOB, PASSWORD, Server, need, run, tls_files
from managesieve_helpers import Client, plain

pytestmark = pytest.mark.e2e

SCRIPT = 'require ["fileinto"];\nif header :contains "subject" "[list]" {\n  fileinto "Lists";\n}\n'
BAD = 'require ["fileinto"];\nif header :contains "subject" "x" {\n  fileinot "Lists";\n}\n'


@pytest.fixture
def env(tmp_path, thread_guard):
    cert, key, ca = tls_files(tmp_path)
    server = Server(tmp_path / "srv", cert, key, managesieve={"listen": ["127.0.0.1:0"]},
                    limits={"managesieve_timeout": 30})
    server.ca = ca
    try:
        yield server
    finally:
        server.stop()


def connect(env):
    sock = socket.create_connection(("127.0.0.1", env.port("managesieve")), timeout=30)
    return Client(sock, None)


def test_raw_client_over_starttls(env):
    c = connect(env)
    try:
        lines, status = c.response()
        assert status.startswith('OK "CleverMail ManageSieve ready') and '"STARTTLS"' in lines
        assert f'"MAXREDIRECTS" "{DEFAULT_LIMITS.max_redirects}"' in lines     # the bound delivery applies
        assert c.cmd("STARTTLS") == ([], 'OK "begin TLS negotiation now"')
        ctx = ssl.create_default_context(cafile=env.ca)
        c.starttls(ctx, "localhost")
        lines, status = c.response()
        assert status == 'OK "TLS negotiation successful"' and '"STARTTLS"' not in lines
        assert '"SASL" "PLAIN LOGIN"' in lines
        c.login()
        c.put("lists", SCRIPT)
        c.expect('SETACTIVE "lists"', 'OK "SETACTIVE completed"')
        assert c.cmd("LISTSCRIPTS") == (['"lists" ACTIVE'], 'OK "LISTSCRIPTS completed"')
        assert env.service.sieve_scripts.active(ALICE) == ("lists", SCRIPT)
        c.expect("LOGOUT", 'OK "logout completed"')
        assert c.at_eof()
    finally:
        c.close()


def test_plain_refused_without_tls_off_loopback_policy_is_per_peer(env):
    """Loopback may log in without TLS (like the other servers); BOB's scripts are BOB's."""
    c = connect(env)
    try:
        c.response()
        c.login(BOB)
        assert c.cmd("LISTSCRIPTS") == ([], 'OK "LISTSCRIPTS completed"')
    finally:
        c.close()


def test_reload_applies_the_timeout_and_names_a_listener_change(env, tmp_path):
    from conftest import make_config
    srv = dict(env.service.servers)["managesieve"]
    base = env.service.settings
    new = make_config(tmp_path / "srv", tls={"certificate": base.server.certificate, "key": base.server.key},
                      managesieve={"listen": ["127.0.0.1:0", "127.0.0.2:0"]},
                      limits={"managesieve_timeout": 77})
    notes = env.service.reload(new)
    assert srv.limits.timeout == 77
    assert "[managesieve] listen changed: restart to apply" in notes


# -- sieve-connect --------------------------------------------------------------------------------

def sieve_connect(env, home, *args, check=True):
    argv = [need("sieve-connect"), "--nosrv", "--server", "127.0.0.1", "--port", str(env.port("managesieve")),
            "--user", ALICE, "--passwordfd", "0", "--tlscafile", env.ca, "--authmech", "PLAIN", *args]
    return run(argv, home, stdin=PASSWORD.encode() + b"\n", check=check)


def test_sieve_connect_upload_list_activate_download_delete(env, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "lists.sieve").write_text(SCRIPT)
    sieve_connect(env, home, "--localsieve", "lists.sieve", "--remotesieve", "lists", "--upload")
    assert env.service.sieve_scripts.get(ALICE, "lists") == SCRIPT
    result = sieve_connect(env, home, "--list")
    assert result.stdout.splitlines() == ['"lists"'], str(result)      # the LISTSCRIPTS lines
    sieve_connect(env, home, "--remotesieve", "lists", "--activate")
    assert env.service.sieve_scripts.active(ALICE) == ("lists", SCRIPT)
    result = sieve_connect(env, home, "--list")
    assert result.stdout.splitlines() == ['"lists" ACTIVE'], str(result)
    sieve_connect(env, home, "--localsieve", "copy.sieve", "--remotesieve", "lists", "--download")
    assert (home / "copy.sieve").read_text() == SCRIPT
    # the active script cannot be deleted; once deactivated it can
    result = sieve_connect(env, home, "--remotesieve", "lists", "--delete", check=False)
    assert result.returncode != 0 and "active" in result.output.lower(), str(result)
    sieve_connect(env, home, "--deactivate")
    sieve_connect(env, home, "--remotesieve", "lists", "--delete")
    assert env.service.sieve_scripts.list(ALICE) == []


def test_sieve_connect_upload_of_a_bad_script_says_the_line(env, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "bad.sieve").write_text(BAD)
    result = sieve_connect(env, home, "--localsieve", "bad.sieve", "--upload", check=False)
    assert result.returncode != 0 and "line 3" in result.output, str(result)
    assert env.service.sieve_scripts.list(ALICE) == []
    result = sieve_connect(env, home, "--localsieve", "bad.sieve", "--checkscript", check=False)
    assert result.returncode != 0 and "line 3" in result.output, str(result)


def test_sieve_connect_wrong_password(env, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    argv = [need("sieve-connect"), "--nosrv", "--server", "127.0.0.1", "--port", str(env.port("managesieve")),
            "--user", ALICE, "--passwordfd", "0", "--tlscafile", env.ca, "--list"]
    result = run(argv, home, stdin=b"wrong\n", check=False)
    assert result.returncode != 0 and "authentication failed" in result.output.lower(), str(result)


# -- what ManageSieve stores is what delivery runs ------------------------------------------------

def test_a_script_uploaded_and_activated_runs_at_delivery(env, tmp_path):
    """sieve-connect uploads and activates; a message over SMTP is filed as it says."""
    home = tmp_path / "home"
    home.mkdir()
    # fileinto :create (RFC 5490): the folder need not exist yet
    (home / "lists.sieve").write_text(SCRIPT.replace('["fileinto"]', '["fileinto", "mailbox"]')
                                      .replace('fileinto "Lists"', 'fileinto :create "Lists"'))
    sieve_connect(env, home, "--localsieve", "lists.sieve", "--upload")
    sieve_connect(env, home, "--remotesieve", "lists.sieve", "--activate")
    message = (f"From: list@lists.example\r\nTo: {ALICE}\r\nSubject: [list] news\r\n"
               "Message-ID: <1@lists.example>\r\n\r\nhello\r\n")
    with smtplib.SMTP("127.0.0.1", env.port("smtp"), timeout=30) as smtp:
        smtp.sendmail("list@lists.example", [ALICE], message)
        smtp.sendmail("list@lists.example", [ALICE], message.replace("[list] news", "personal"))
    filed = env.messages(ALICE, "Lists")
    inbox = env.messages(ALICE)
    assert [b"Subject: [list] news" in data for data in filed.values()] == [True], filed
    assert [b"Subject: personal" in data for data in inbox.values()] == [True], inbox
