"""End-to-end SMTP: stdlib smtplib against clevermail.service.MailService on port 0
(MX, STARTTLS submission, implicit-TLS submission) with a trustme certificate."""

import base64
import email.message
import shutil
import smtplib
import socket
import ssl

import pytest
import trustme

from clevermail.accounts import AccountStore
from clevermail.service import MailService
from smtp_helpers import inbox, make_users_file, queued

pytestmark = pytest.mark.e2e

LOCAL = "127.0.0.1:0"


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    return make_users_file(tmp_path_factory.mktemp("smtp-users"))


@pytest.fixture
def client_ctx(ca):
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def start(tmp_path, ca, users_file, make_config):
    """start(**sections) -> a running MailService with TLS and alice/bob; stopped after."""
    cert = ca.issue_cert("mail.example.test", "127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(key_file)
    for i, pem in enumerate(cert.cert_chain_pems):
        pem.write_to_path(cert_file, append=i > 0)
    shutil.copy(users_file, tmp_path / "users.ini")
    services = []

    def start(**sections):
        sections.setdefault("smtp", {}).update(
            {"listen": [LOCAL], "submission_listen": [LOCAL], "submissions_listen": [LOCAL]})
        sections["tls"] = {"certificate": str(cert_file), "key": str(key_file)}
        sections.setdefault("pop3", {"listen": []})
        sections.setdefault("imap", {"listen": []})
        svc = MailService(make_config(tmp_path, **sections))
        services.append(svc)
        svc.data_dir = str(tmp_path / "data")
        return svc.start()

    yield start
    for svc in services:
        svc.stop()


def smtp(svc, kind="smtp"):
    return smtplib.SMTP("127.0.0.1", svc.port(kind), local_hostname="client.test", timeout=10)


def message(to="alice@example.test", size=0, sender="sender@remote.test"):
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, "e2e"
    msg.set_content("hello\n.line with dot\n" + "x" * size)
    return msg


def test_mx_local_delivery(start):
    svc = start()
    with smtp(svc) as s:
        assert s.ehlo()[0] == 250 and s.has_extn("pipelining") and s.has_extn("starttls")
        assert s.send_message(message(to="Alice+news@Example.TEST")) == {}
        # bytes with bare LF, as msg.as_bytes() gives them: normalized, dots right
        s.sendmail("sender@remote.test", ["bob@example.test"], b"Subject: lf\n\n.dot\nend\n")
    [msg] = inbox(svc.data_dir, "alice@example.test")
    assert msg.startswith(b"Return-Path: <sender@remote.test>\nReceived: from client.test ")
    assert b"\n.line with dot\n" in msg
    [lf] = inbox(svc.data_dir, "bob@example.test")
    assert lf.endswith(b"Subject: lf\n\n.dot\nend\n\n")     # smtplib appends CRLF


def test_mx_refuses_unknown_users_and_relay(start):
    svc = start()
    with smtp(svc) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            s.sendmail("a@remote.test", ["nobody@example.test", "x@far.test"], b"Subject: x\r\n\r\nx\r\n")
        refused = info.value.recipients
        assert refused["nobody@example.test"][0] == 550 and b"5.1.1" in refused["nobody@example.test"][1]
        assert refused["x@far.test"][0] == 554 and b"5.7.1" in refused["x@far.test"][1]
    assert queued(svc.data_dir) == []


def test_submission_starttls_auth_relays(start, client_ctx):
    svc = start()
    with smtp(svc, "submission") as s:
        s.ehlo()
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            s.sendmail("alice@example.test", ["x@far.test"], b"Subject: x\r\n\r\nx\r\n")
        assert info.value.smtp_code == 530
        s.rset()
        s.starttls(context=client_ctx)
        s.ehlo()
        assert s.has_extn("auth") and not s.has_extn("starttls")
        s.login("alice@example.test", "alice-pw")
        refused = s.sendmail("alice@example.test", ["x@far.test", "bob@example.test"],
                             message(to="x@far.test", sender="alice@example.test").as_bytes())
        assert refused == {}
    [entry] = queued(svc.data_dir)
    assert [r.address for r in entry.recipients] == ["x@far.test"]
    [msg] = inbox(svc.data_dir, "bob@example.test")
    assert b"with ESMTPSA id " + entry.queue_id.encode() in msg


def test_implicit_tls_submission(start, client_ctx):
    svc = start()
    with smtplib.SMTP_SSL("127.0.0.1", svc.port("submissions"), local_hostname="client.test",
                          context=client_ctx, timeout=10) as s:
        s.login("bob@example.test", "bob-pw")
        s.send_message(message(sender="Bob <bob@example.test>"))
    assert len(inbox(svc.data_dir, "alice@example.test")) == 1


def test_size_limits(start):
    svc = start(limits={"message_size": 4096})
    with smtp(svc) as s:
        with pytest.raises(smtplib.SMTPSenderRefused) as info:   # smtplib sends SIZE=
            s.send_message(message(size=5000))
        assert info.value.smtp_code == 552
        s.rset()
        s.ehlo()
        s.esmtp_features.pop("size")                              # now only DATA can tell
        with pytest.raises(smtplib.SMTPDataError) as info:
            s.send_message(message(size=5000))
        assert info.value.smtp_code == 552
        assert s.send_message(message(size=100)) == {}
    assert len(inbox(svc.data_dir, "alice@example.test")) == 1


def test_too_many_recipients(start):
    svc = start(limits={"recipients": 2})
    with smtp(svc) as s:
        refused = s.sendmail("a@remote.test", ["alice@example.test", "bob@example.test", "alice+3@example.test"],
                             b"Subject: x\r\n\r\nx\r\n")
        assert refused["alice+3@example.test"][0] == 452
    assert len(inbox(svc.data_dir, "bob@example.test")) == 1


def test_auth_throttling(start):
    svc = start(limits={"auth_failures_per_client": 2})
    with smtp(svc) as s:
        with pytest.raises(smtplib.SMTPAuthenticationError):   # tries PLAIN, then LOGIN
            s.login("alice@example.test", "wrong")
    s = smtp(svc)
    with pytest.raises((smtplib.SMTPAuthenticationError, smtplib.SMTPServerDisconnected)) as info:
        s.login("alice@example.test", "alice-pw")
    if isinstance(info.value, smtplib.SMTPAuthenticationError):
        assert info.value.smtp_code == 421
    s.close()


def test_hostile_input_and_connection_limits(start):
    svc = start(limits={"connections_per_client": 3})
    raw = socket.create_connection(("127.0.0.1", svc.port("smtp")), timeout=10)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"220 ")
    raw.sendall(b"EHLO " + b"x" * 2000 + b"\r\n\x00\xff\r\nNOOP\r\n")
    assert f.readline().startswith(b"500 5.5.2")
    assert f.readline().startswith(b"500 5.5.2")
    assert f.readline().startswith(b"250 2.0.0")
    extra = [socket.create_connection(("127.0.0.1", svc.port("smtp")), timeout=10) for _ in range(3)]
    ext_files = [e.makefile("rb") for e in extra]
    replies = [g.readline() for g in ext_files]
    assert sum(r.startswith(b"220 ") for r in replies) == 2
    assert sum(r.startswith(b"421 4.7.0") for r in replies) == 1
    for sock, g, greeting in zip(extra + [raw], ext_files + [f], replies + [b"220 "]):
        if greeting.startswith(b"220 "):     # the refused one is closed already
            sock.sendall(b"QUIT\r\n")
            while g.readline():              # EOF: the server has released it
                pass
        sock.close()
    with smtp(svc) as s:                       # the server is still fine
        assert s.noop()[0] == 250


def test_200_concurrent_sessions_then_a_normal_one(start):
    svc = start(limits={"connections": 400, "connections_per_client": 400})
    socks = []
    try:
        for _ in range(200):
            socks.append(socket.create_connection(("127.0.0.1", svc.port("smtp")), timeout=10))
        for sock in socks:
            sock.sendall(b"EHLO many.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\n")
        for sock in socks:
            f = sock.makefile("rb")
            assert f.readline().startswith(b"220 ")
            line = f.readline()
            while line.startswith(b"250-"):
                line = f.readline()
            assert line.startswith(b"250 ")
            assert f.readline().startswith(b"250 2.1.0")
            assert f.readline().startswith(b"250 2.1.5")
        with smtp(svc) as s:
            assert s.send_message(message()) == {}
    finally:
        for sock in socks:
            sock.close()
    assert len(inbox(svc.data_dir, "alice@example.test")) == 1


@pytest.mark.parametrize("kind, tls", [("smtp", None), ("submission", "starttls"),
                                       ("submissions", "implicit")])
def test_idle_sessions_time_out(start, client_ctx, kind, tls):
    """A plaintext session times out in the kernel (SO_RCVTIMEO), a TLS one through the
    ssl module's own timeout: each gets its 421 and is closed, not left hanging."""
    svc = start(limits={"smtp_timeout": 1})
    sock = socket.create_connection(("127.0.0.1", svc.port(kind)), timeout=10)
    if tls == "implicit":
        sock = client_ctx.wrap_socket(sock, server_hostname="mail.example.test")
    reader = sock.makefile("rb")
    assert reader.readline().startswith(b"220 ")
    if tls == "starttls":
        sock.sendall(b"EHLO client.test\r\n")
        while not reader.readline().startswith(b"250 "):
            pass
        sock.sendall(b"STARTTLS\r\n")
        assert reader.readline().startswith(b"220 ")
        sock = client_ctx.wrap_socket(sock, server_hostname="mail.example.test")
        reader = sock.makefile("rb")
        sock.sendall(b"NOOP\r\n")
        assert reader.readline().startswith(b"250 ")
    assert reader.readline().startswith(b"421 4.4.2 ")
    assert reader.readline() == b""
    sock.close()


# -- a dual-stack [::] listener: IPv4 clients arrive as ::ffff:a.b.c.d -----------------------------
def dual_stack_or_skip():
    """Skip unless a [::] listener here also accepts IPv4 clients."""
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6 support")
    try:
        probe = socket.socket(socket.AF_INET6)
        try:
            probe.bind(("::", 0))
            v6only = probe.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        finally:
            probe.close()
    except OSError as exc:
        pytest.skip(f"cannot listen on [::] on this machine: {exc}")
    if v6only:
        pytest.skip("[::] listeners are IPv6-only on this machine (net.ipv6.bindv6only=1)")


def plain(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_dual_stack_listener_keeps_ipv4_clients_apart(tmp_path, users_file, make_config, thread_guard):
    dual_stack_or_skip()
    shutil.copy(users_file, tmp_path / "users.ini")
    svc = MailService(make_config(tmp_path, smtp={"listen": ["[::]:0"]}, pop3={"listen": []},
                                  imap={"listen": []}, limits={"auth_failures_per_client": 10}))
    svc.start()
    try:
        assert svc.servers[0][1].address_family == socket.AF_INET6

        def connect(source):
            s = smtplib.SMTP("127.0.0.1", svc.port("smtp"), local_hostname="client.test", timeout=10,
                             source_address=(source, 0))
            s.ehlo()
            return s

        with connect("127.0.0.1") as s:
            # ::ffff:127.0.0.1 is loopback: AUTH is offered without TLS
            assert s.has_extn("auth") and not s.has_extn("starttls")
            for _ in range(10):
                assert s.docmd("AUTH", "PLAIN " + plain("alice@example.test", "wrong"))[0] == 535
        with connect("127.0.0.1") as s:                # this address is now throttled...
            code, text = s.docmd("AUTH", "PLAIN " + plain("alice@example.test", "alice-pw"))
            assert code == 421 and b"failed authentications" in text
        with connect("127.0.0.2") as s:                # ...another IPv4 client is not
            assert s.docmd("AUTH", "PLAIN " + plain("alice@example.test", "alice-pw"))[0] == 235
        assert svc.throttle.blocked("127.0.0.1") and not svc.throttle.blocked("127.0.0.2")
    finally:
        svc.stop()


# -- international domains ---------------------------------------------------------------------
IDN = "xn--bcher-kva.example"


def test_smtputf8_u_label_domain_reaches_the_a_label_account(start, tmp_path):
    AccountStore(str(tmp_path / "users.ini"), ["example.test", IDN]).add(f"alice@{IDN}", "pw")
    svc = start(server={"domains": ["example.test", IDN]})
    body = b"Subject: idn\r\n\r\nhello\r\n"
    with smtp(svc) as s:
        s.ehlo()
        assert s.has_extn("smtputf8")
        assert s.sendmail("sender@remote.test", ["alice@bücher.example"], body,
                          mail_options=["SMTPUTF8"]) == {}
        # U+2603 passes the stdlib's IDNA 2003 codec, not IDNA 2008: no such domain can exist
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            s.sendmail("sender@remote.test", ["alice@☃.example"], body, mail_options=["SMTPUTF8"])
        assert info.value.recipients == {"alice@☃.example": (501, b"5.1.3 Bad recipient address syntax")}
    [msg] = inbox(svc.data_dir, f"alice@{IDN}")
    assert msg.endswith(b"Subject: idn\n\nhello\n") and b"for <alice@b\xc3\xbccher.example>" in msg
    assert queued(svc.data_dir) == []


def test_send_as_grant_and_sending_limit_across_a_restart(start, client_ctx):
    """[senders]: a granted pattern lets bob send as a service address; the hourly
    message limit counts across a restart of the service."""
    senders = {"send_as": ["bob@example.test=*-noreply@example.test"], "messages_per_hour": 2}
    svc = start(senders=senders)
    with smtplib.SMTP_SSL("127.0.0.1", svc.port("submissions"), local_hostname="client.test",
                          context=client_ctx, timeout=10) as s:
        s.login("bob@example.test", "bob-pw")
        s.send_message(message(sender="Billing <billing-noreply@example.test>"))
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            s.send_message(message(sender="alice@example.test"))
        assert (info.value.smtp_code, info.value.smtp_error[:5]) == (553, b"5.7.1")
    svc.stop()
    again = start(senders=senders)
    with smtplib.SMTP_SSL("127.0.0.1", again.port("submissions"), local_hostname="client.test",
                          context=client_ctx, timeout=10) as s:
        s.login("bob@example.test", "bob-pw")
        s.send_message(message(sender="bob@example.test"))           # the second this hour
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            s.send_message(message(sender="bob@example.test"))
        assert (info.value.smtp_code, info.value.smtp_error[:5]) == (450, b"4.7.1")
    assert len(inbox(again.data_dir, "alice@example.test")) == 2


def test_senders_config_errors_are_listed(make_config, tmp_path):
    from clevermail.config import ConfigError

    with pytest.raises(ConfigError) as info:
        make_config(tmp_path, senders={"send_as": ["nobody", "a@b.test=c"], "messages_per_hour": -1})
    text = "\n".join(info.value.problems)
    assert "[senders] send_as: 'nobody' is not account@domain=pattern@domain" in text
    assert "[senders] messages_per_hour" in text
