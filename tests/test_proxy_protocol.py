"""The PROXY protocol (clevermail/proxy_protocol.py, HAProxy's proxy-protocol.txt): the
pure v1/v2 parsers, the header read off a socket, and listeners of [server]
proxy_protocol end to end (the client named in the header is the session's peer;
anything else is refused).  test_haproxy.py puts a real HAProxy in front."""

import logging
import os
import smtplib
import socket
import ssl
import struct

import pytest

from clevermail.accounts import AccountStore
from clevermail.config import ConfigError
from clevermail.proxy_protocol import ProxyError, parse_v1, parse_v2, read_header
from clevermail.service import MailService
from conftest import make_config
from interop_helpers import tls_files
from waiting import wait_for

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(command=1, family=0x11, body=None):
    if body is None:
        body = socket.inet_aton("198.51.100.9") + socket.inet_aton("127.0.0.1") + struct.pack("!HH", 5555, 25)
    return SIG + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


# -- pure parsers ---------------------------------------------------------------------------
def test_v1_tcp4_tcp6_and_unknown():
    assert parse_v1(b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n") == ("203.0.113.7", 40000)
    assert parse_v1(b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 993\r\n") == ("2001:db8::7", 40000)
    assert parse_v1(b"PROXY UNKNOWN\r\n") is None
    assert parse_v1(b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n") is None


@pytest.mark.parametrize("line, why", [
    (b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\n", "not a PROXY v1 line"),
    (b"PROXY TCP5 203.0.113.7 192.0.2.1 40000 25\r\n", "TCP4|TCP6"),
    (b"PROXY TCP4 2001:db8::7 192.0.2.1 40000 25\r\n", "is not TCP4"),
    (b"PROXY TCP6 203.0.113.7 2001:db8::1 40000 25\r\n", "is not TCP6"),
    (b"PROXY TCP4 203.0.113.999 192.0.2.1 40000 25\r\n", "not an IP address"),
    (b"PROXY TCP4 203.0.113.7 192.0.2.1 70000 25\r\n", "not a port number"),
    (b"PROXY TCP4 203.0.113.7 192.0.2.1 040 25\r\n", "not a port number"),
    (b"PROXY TCP4 203.0.113.7 192.0.2.1 \xd9\xa1 25\r\n", "not ASCII"),
    (b"PROXY TCP4 203.0.113.7 192.0.2.1 40000\r\n", "TCP4|TCP6"),
])
def test_v1_malformed(line, why):
    with pytest.raises(ProxyError, match=why.replace("|", r"\|")):
        parse_v1(line)


def test_v2_inet_inet6_local_unspec():
    head = v2()
    assert parse_v2(head[:16], head[16:]) == ("198.51.100.9", 5555)
    six = socket.inet_pton(socket.AF_INET6, "2001:db8::9") + socket.inet_pton(socket.AF_INET6, "::1") \
        + struct.pack("!HH", 6000, 993) + b"\x04\x00\x01x"          # and a TLV, skipped
    head = v2(family=0x21, body=six)
    assert parse_v2(head[:16], head[16:]) == ("2001:db8::9", 6000)
    head = v2(command=0)
    assert parse_v2(head[:16], head[16:]) is None        # LOCAL: the proxy's own check
    head = v2(family=0x00, body=b"")
    assert parse_v2(head[:16], head[16:]) is None


@pytest.mark.parametrize("head_body, why", [
    ((b"\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x00", b""), "not a PROXY v2 header"),
    ((SIG + b"\x31\x11\x00\x00", b""), "version 3"),
    ((SIG + b"\x22\x11\x00\x0c", b"\x00" * 12), "neither LOCAL nor PROXY"),
    ((SIG + b"\x21\x11\x00\x04", b"\x00" * 4), "IPv4 addresses cut short"),
    ((SIG + b"\x21\x21\x00\x0c", b"\x00" * 12), "IPv6 addresses cut short"),
    ((SIG + b"\x21\x31\x00\x0c", b"\x00" * 12), "not TCP over IPv4 or IPv6"),
    ((SIG + b"\x21\x12\x00\x0c", b"\x00" * 12), "not TCP over IPv4 or IPv6"),
    ((SIG + b"\x21\x11\x00\x0c", b"\x00" * 11), "shorter than its length"),
])
def test_v2_malformed(head_body, why):
    with pytest.raises(ProxyError, match=why):
        parse_v2(*head_body)


@pytest.mark.parametrize("header", [b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n", v2()])
def test_read_header_takes_exactly_the_header(header):
    a, b = socket.socketpair()
    with a, b:
        a.sendall(header + b"EHLO client\r\n")
        b.settimeout(5)
        assert read_header(b)[0] in ("203.0.113.7", "198.51.100.9")
        assert b.recv(100) == b"EHLO client\r\n"          # the client's bytes are left


@pytest.mark.parametrize("data, why", [
    (b"EHLO client\r\n", "does not begin with a PROXY header"),
    (b"PROXY TCP4 " + b"1" * 120 + b"\r\n", "longer than 107 bytes"),
    (SIG + b"\x21\x11\x10\x00", "PROXY v2 header of 4096 bytes"),
    (b"PROX", "connection closed inside the PROXY header"),
])
def test_read_header_refuses(data, why):
    a, b = socket.socketpair()
    with a, b:
        a.sendall(data)
        a.shutdown(socket.SHUT_WR)
        b.settimeout(5)
        with pytest.raises(ProxyError, match=why):
            read_header(b)


# -- config -----------------------------------------------------------------------------------
def test_config_needs_proxy_networks_and_known_kinds(tmp_path):
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, server={"proxy_protocol": ["smtp", "imapx"]})
    text = "\n".join(err.value.problems)
    assert "'imapx' is not a listener kind" in text
    assert "set proxy_networks to the load balancers' addresses" in text
    conf = make_config(tmp_path, server={"proxy_protocol": ["smtp"], "proxy_networks": ["127.0.0.1/32"]})
    assert conf.server.proxy_protocol == ("smtp",)
    assert [str(n) for n in conf.server.proxy_networks] == ["127.0.0.1/32"]


# -- listeners behind a proxy, end to end -------------------------------------------------------
@pytest.fixture(name="proxied")
def _proxied(tmp_path):
    cert, key, ca = tls_files(tmp_path)
    conf = make_config(tmp_path, tls={"certificate": cert, "key": key},
                       server={"proxy_protocol": ["smtp", "imaps"], "proxy_networks": ["127.0.0.0/8"],
                               "trusted_networks": ["203.0.113.0/24"]},
                       imap={"listen": ["127.0.0.1:0"], "tls_listen": ["127.0.0.1:0"]})
    AccountStore(conf.server.users_file, ["example.test"]).add("alice@example.test", "secret")
    service = MailService(conf).start()
    try:
        yield service, ca
    finally:
        service.stop()


def _smtp_via(port, header):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(header)
    client = smtplib.SMTP(timeout=10)
    client.sock = sock
    client.file = None
    code, banner = client.getreply()
    assert code == 220, banner
    return client


def test_the_client_in_the_header_is_the_peer(proxied, caplog):
    service, _ = proxied
    caplog.set_level(logging.INFO, logger="clevermail")
    port = service.port("smtp")
    # 203.0.113.7 is in trusted_networks: it may relay; the proxy itself (127.0.0.1) is not
    client = _smtp_via(port, b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 25\r\n")
    client.ehlo("client.test")
    assert client.mail("a@there.test")[0] == 250
    assert client.rcpt("b@far.test")[0] == 250
    client.quit()
    client = _smtp_via(port, v2())          # 198.51.100.9: not trusted
    client.ehlo("client.test")
    client.mail("a@there.test")
    assert client.rcpt("b@far.test")[0] == 554
    client.rset()
    client.sendmail("a@there.test", ["alice@example.test"], b"Subject: via proxy\r\n\r\nhi\r\n")
    client.quit()
    text = caplog.text
    assert " 203.0.113.7] connect via proxy 127.0.0.1" in text
    assert " 198.51.100.9] connect via proxy 127.0.0.1" in text
    # the Received line names the client, not the proxy
    assert wait_for(lambda: _received_from(service, "198.51.100.9"))


def _received_from(service, address):
    for folder, _, files in os.walk(service.settings.server.data_dir):
        for name in files:
            if os.sep + "new" in folder or os.sep + "cur" in folder:
                with open(os.path.join(folder, name), "rb") as f:
                    if f"[{address}]".encode() in f.read(4096):
                        return True
    return False


@pytest.mark.parametrize("data", [b"EHLO client.test\r\n", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 x\r\n", b""])
def test_a_connection_without_a_valid_header_is_closed_unanswered(proxied, caplog, data):
    service, _ = proxied
    caplog.set_level(logging.INFO, logger="clevermail")
    with socket.create_connection(("127.0.0.1", service.port("smtp")), timeout=10) as sock:
        sock.sendall(data)
        if not data:
            sock.shutdown(socket.SHUT_WR)
        try:
            assert sock.recv(100) == b""        # no banner: closed
        except ConnectionResetError:
            pass
    assert wait_for(lambda: "connection refused: PROXY protocol: from proxy 127.0.0.1" in caplog.text)
    # the server goes on
    _smtp_via(service.port("smtp"), b"PROXY UNKNOWN\r\n").quit()


def test_only_the_proxies_may_connect(tmp_path, caplog):
    conf = make_config(tmp_path, server={"proxy_protocol": ["imap"], "proxy_networks": ["10.0.0.0/8"]})
    caplog.set_level(logging.INFO, logger="clevermail")
    with MailService(conf) as service:
        with socket.create_connection(("127.0.0.1", service.port("imap")), timeout=10) as sock:
            sock.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 143\r\n")
            try:
                assert sock.recv(100) == b""
            except ConnectionResetError:
                pass
        # a listener not named in proxy_protocol takes plain connections
        with smtplib.SMTP("127.0.0.1", service.port("smtp"), timeout=10) as smtp:
            assert smtp.noop()[0] == 250
    assert "connection refused: PROXY protocol: 127.0.0.1 is not in [server] proxy_networks" in caplog.text


def test_implicit_tls_takes_the_header_before_the_handshake(proxied, caplog):
    service, ca = proxied
    caplog.set_level(logging.INFO, logger="clevermail")
    raw = socket.create_connection(("127.0.0.1", service.port("imaps")), timeout=10)
    raw.sendall(b"PROXY TCP4 192.0.2.44 127.0.0.1 40000 993\r\n")
    ctx = ssl.create_default_context(cafile=ca)
    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.recv(100).startswith(b"* OK")
        tls.sendall(b"a LOGOUT\r\n")
    assert wait_for(lambda: " 192.0.2.44] connect via proxy 127.0.0.1" in caplog.text)
