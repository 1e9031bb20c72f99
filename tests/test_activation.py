"""Socket activation: LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES read as sd_listen_fds does,
inherited sockets matched to the configured listeners by name, MailService serving on
them instead of binding, and one-line start-up errors when they do not fit.  End to
end with descriptors handed to a real `clevermail start` at 3, 4, ... as systemd does."""

import imaplib
import os
import poplib
import smtplib
import socket

import pytest

from clevermail import activation
from clevermail.activation import ActivationError, listen_fds, match
from clevermail.service import MailService, StartupError
from server_process import ServerProcess

pytestmark = pytest.mark.e2e


def listening(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    s.listen(16)
    return s


def port_of(sock):
    return sock.getsockname()[1]


# -- the environment ----------------------------------------------------------------------------
def test_variables_for_another_process_are_ignored_and_removed():
    env = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "smtp:imap", "X": "y"}
    assert listen_fds(env) == []
    assert env == {"X": "y"}


def test_no_variables_no_sockets():
    assert listen_fds({}) == []


@pytest.mark.parametrize("env, error", [
    ({"LISTEN_FDS": "two"}, "are not numbers"),
    ({"LISTEN_FDS": "-1"}, "LISTEN_FDS=-1 is negative"),
    ({"LISTEN_FDS": "2", "LISTEN_FDNAMES": "smtp"}, "LISTEN_FDNAMES has 1 names for 2 sockets"),
])
def test_malformed_variables(env, error):
    env = dict(env, LISTEN_PID=str(os.getpid()))
    with pytest.raises(ActivationError, match=error):
        listen_fds(env)
    assert not any(key.startswith("LISTEN_") for key in env)     # removed even so


# -- matching -----------------------------------------------------------------------------------
def test_match_pairs_sockets_with_listeners_by_name_in_order(tmp_path, make_config):
    conf = make_config(tmp_path, smtp={"listen": ["127.0.0.1:25", "127.0.0.1:2525"]})
    socks = [listening() for _ in range(4)]
    try:
        named = [("imap", socks[0].fileno()), ("smtp", socks[1].fileno()),
                 ("pop3", socks[2].fileno()), ("smtp", socks[3].fileno())]
        pairs = match(conf.listeners, named)
        assert [(listener.kind, listener.address[1], s.fileno()) for listener, s in pairs] == [
            ("smtp", 25, socks[1].fileno()), ("smtp", 2525, socks[3].fileno()),
            ("pop3", 0, socks[2].fileno()), ("imap", 0, socks[0].fileno())]
        for _, s in pairs:
            s.detach()                  # the originals below own the descriptors
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("names, error", [
    (["smtp", "pop3", "imap", "unknown"], "inherited socket .* is named 'unknown'; set FileDescriptorName="),
    (["smtp", "pop3"], "imap: 1 listener\\(s\\) in \\[imap\\] listen but 0 inherited socket\\(s\\) named 'imap'"),
    (["smtp", "pop3", "imap", "imaps"], "imaps: 1 inherited socket\\(s\\) named 'imaps' but 0 listener\\(s\\) "
                                        "in \\[imap\\] tls_listen"),
])
def test_match_errors(tmp_path, make_config, names, error):
    conf = make_config(tmp_path)
    socks = [listening() for _ in names]
    try:
        with pytest.raises(ActivationError, match=error) as info:
            match(conf.listeners, list(zip(names, (s.fileno() for s in socks))))
        assert "\n" not in str(info.value)
    finally:
        for s in socks:
            s.close()


def test_a_socket_that_is_not_listening_is_refused(tmp_path, make_config):
    conf = make_config(tmp_path, pop3={"listen": []}, imap={"listen": []})
    s = socket.socket()
    s.bind(("127.0.0.1", 0))            # bound, never listen()ed
    try:
        with pytest.raises(ActivationError, match="is not a listening TCP socket"):
            match(conf.listeners, [("smtp", s.fileno())])
        assert s.fileno() >= 0          # not closed by the refusal: it is not ours to close
    finally:
        s.close()


# -- MailService on inherited sockets, in this process ----------------------------------------------
def test_service_serves_on_inherited_sockets(tmp_path, make_config, thread_guard, relay_users):
    import shutil
    shutil.copy(relay_users, tmp_path / "users.ini")
    conf = make_config(tmp_path, smtp={"listen": ["127.0.0.1:1"]}, imap={"listen": ["[::1]:1"]})
    # the configured ports (1) are not what is bound: the inherited sockets win
    socks = {"smtp": listening(), "pop3": listening(), "imap": listening("::1")}
    ports = {kind: port_of(s) for kind, s in socks.items()}
    service = MailService(conf, inherited=[(kind, s.detach()) for kind, s in socks.items()])
    service.start()
    try:
        assert service.ports == {kind: [port] for kind, port in ports.items()}
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as smtp:
            smtp.sendmail("x@example.org", ["alice@example.test"], b"Subject: hi\r\n\r\nactivated\r\n")
        imap = imaplib.IMAP4("::1", ports["imap"], timeout=10)
        try:
            imap.login("alice@example.test", "alice-secret")
            assert imap.select("INBOX") == ("OK", [b"1"])
        finally:
            imap.logout()
        pop = poplib.POP3("127.0.0.1", ports["pop3"], timeout=10)
        assert pop.getwelcome().startswith(b"+OK")
        pop.quit()
    finally:
        service.stop()
    for port in (ports["smtp"], ports["pop3"]):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_service_mismatch_is_a_startup_error_and_closes_nothing_it_did_not_take(tmp_path, make_config,
                                                                                  thread_guard):
    conf = make_config(tmp_path)
    s = listening()
    service = MailService(conf, inherited=[("smtp", s.fileno())])
    try:
        with pytest.raises(StartupError, match="^socket activation: pop3: 1 listener"):
            service.start()
        assert service.servers == [] and not service.started
    finally:
        s.close()


# -- `clevermail start` with descriptors from its parent, as systemd passes them ------------------
def test_start_with_inherited_descriptors(tmp_path, write_config, relay_users):
    import shutil
    shutil.copy(relay_users, tmp_path / "users.ini")
    log_file = tmp_path / "cm.log"
    cfg = write_config(tmp_path, server={"log_file": str(log_file)},
                       smtp={"listen": ["127.0.0.1:25"], "submission_listen": ["127.0.0.1:587"]},
                       imap={"listen": ["127.0.0.1:143"]})
    socks = [listening() for _ in range(4)]
    names = ["submission", "imap", "smtp", "pop3"]
    ports = dict(zip(names, map(port_of, socks)))
    server = ServerProcess(cfg, inherit=socks, names=names)
    for s in socks:
        s.close()                      # the child has them now; ours must not keep the ports
    try:
        assert server.read_until(" running ("), server.stderr
        line = next(x for x in server.stderr.splitlines() if " running (" in x)
        assert "(sockets from the service manager)" in line
        for kind, port in ports.items():
            assert f"{kind} 127.0.0.1:{port}" in line
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as smtp:
            smtp.sendmail("x@example.org", ["bob@example.test"], b"Subject: hi\r\n\r\nvia fd\r\n")
        with smtplib.SMTP("127.0.0.1", ports["submission"], timeout=10) as smtp:
            smtp.ehlo()
            assert smtp.has_extn("auth")
            assert smtp.mail("x@example.org")[0] == 530    # the submission listener: AUTH first
        imap = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=10)
        try:
            imap.login("bob@example.test", "bob-secret")
            assert imap.select("INBOX") == ("OK", [b"1"])
        finally:
            imap.logout()
        assert server.stop() == 0, server.stderr
    finally:
        server.close()
    assert "Traceback" not in server.stderr
    # the variables were for this process only: nothing it runs later sees them
    assert "LISTEN_FDS" not in server.stderr


@pytest.mark.parametrize("names, error", [
    (["smtp", "pop3", "imap", "bogus"], "is named 'bogus'"),
    (["smtp", "pop3"], "imap: 1 listener(s) in [imap] listen but 0 inherited socket(s)"),
    (None, "is named 'unknown'; set FileDescriptorName="),
])
def test_start_refuses_sockets_that_do_not_fit(tmp_path, write_config, names, error):
    cfg = write_config(tmp_path)
    socks = [listening() for _ in (names or ["a", "b", "c"])]
    server = ServerProcess(cfg, inherit=socks, names=names)
    for s in socks:
        s.close()
    try:
        assert server.wait() == 1
    finally:
        server.close()
    lines = server.stderr.strip().splitlines()
    assert len(lines) == 1, server.stderr
    assert lines[0].startswith("clevermail: cannot start: socket activation: ") and error in lines[0]
