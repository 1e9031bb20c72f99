"""Two CleverMail instances on one data directory behind a real HAProxy (Debian's
haproxy), as several machines would share one store: HAProxy balances SMTP and IMAP
round robin over both, telling each the client with the PROXY protocol (v2 to one
instance, v1 to the other).  Mixed SMTP/IMAP load: nothing is lost or duplicated, both
instances give the same UIDs, IDLE on one sees mail delivered through the other, and
the logs name the real client (127.0.0.2, not HAProxy's 127.0.0.1)."""

import imaplib
import logging
import re
import shutil
import smtplib
import socket
import subprocess

import pytest

from clevermail.accounts import AccountStore
from clevermail.service import MailService
from components import component_missing
from conftest import make_config
from waiting import wait_for

CLIENT = "127.0.0.2"           # the client's own address: loopback, but not HAProxy's


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HAPROXY_CFG = """global
    maxconn 256
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend smtp
    bind 127.0.0.1:{smtp}
    default_backend smtp
backend smtp
    balance roundrobin
    server a 127.0.0.1:{a_smtp} send-proxy-v2
    server b 127.0.0.1:{b_smtp} send-proxy
frontend imap
    bind 127.0.0.1:{imap}
    default_backend imap
backend imap
    balance roundrobin
    server a 127.0.0.1:{a_imap} send-proxy-v2
    server b 127.0.0.1:{b_imap} send-proxy
"""


@pytest.fixture(name="cluster")
def _cluster(tmp_path):
    binary = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if binary is None:
        component_missing("haproxy is not installed (apt-get install haproxy)")
    services = []
    proc = None
    try:
        for name in ("a", "b"):
            # one data dir, users file and config but for the name each says in its greeting
            conf = make_config(tmp_path, server={"proxy_protocol": ["smtp", "imap"],
                                                 "proxy_networks": ["127.0.0.1/32"],
                                                 "hostname": f"{name}.example.test"},
                               limits={"imap_timeout": 60})
            if not services:
                AccountStore(conf.server.users_file, ["example.test"]).add("alice@example.test", "secret")
            services.append(MailService(conf).start())
        a, b = services
        ports = {"smtp": _free_port(), "imap": _free_port(),
                 "a_smtp": a.port("smtp"), "b_smtp": b.port("smtp"),
                 "a_imap": a.port("imap"), "b_imap": b.port("imap")}
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(HAPROXY_CFG.format(**ports))
        proc = subprocess.Popen([binary, "-db", "-f", str(cfg)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)

        def up():
            try:
                socket.create_connection(("127.0.0.1", ports["imap"]), timeout=1).close()
                return True
            except OSError:
                return proc.poll() is not None
        assert wait_for(up, timeout=20) and proc.poll() is None, proc.stdout.read().decode()
        yield services, ports
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
            proc.stdout.close()
        for service in services:
            service.stop()


def _smtp(port):
    return smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=(CLIENT, 0))


class _IMAP(imaplib.IMAP4):
    """imaplib from the client's own address (one connection: HAProxy balances each)."""

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(CLIENT, 0))


def _imap(port):
    client = _IMAP("127.0.0.1", port, timeout=20)
    client.login("alice@example.test", "secret")
    return client


def _instance(client):
    """'a' or 'b': which instance HAProxy gave this IMAP connection."""
    return re.search(rb"\] ([ab])\.example\.test ", client.welcome).group(1).decode()


def _ids(client):
    """{UID: Message-ID} of INBOX through one IMAP connection."""
    client.select("INBOX")
    typ, data = client.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK"
    out = {}
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            out[uid] = re.search(rb"<([^>]+)>", item[1]).group(1).decode()
    return out


def test_two_instances_behind_haproxy(cluster, caplog):
    _, ports = cluster
    caplog.set_level(logging.INFO, logger="clevermail")
    # IDLE first, on whichever instance HAProxy picks: half the mail below arrives
    # through the other one
    watcher = _imap(ports["imap"])
    watcher.select("INBOX")
    watcher.send(b"W1 IDLE\r\n")
    assert watcher.readline().startswith(b"+ ")
    idle_on = _instance(watcher)
    sent, through = [], []
    for i in range(20):                 # each a new connection: round robin over a and b
        with _smtp(ports["smtp"]) as smtp:
            mid = f"m{i}@client.test"
            smtp.sendmail("x@client.test", ["alice@example.test"],
                          f"Message-ID: <{mid}>\r\nSubject: {i}\r\n\r\nbody {i}\r\n".encode())
            sent.append(mid)
            through.append(smtp.ehlo_resp.split(b" ")[0].decode()[0])      # a.example.test...
    # the IDLE session's instance took some, the other instance the rest
    assert sorted(set(through)) == ["a", "b"], through
    assert idle_on in ("a", "b")
    exists = 0
    watcher.sock.settimeout(20)
    while exists < 20:
        line = watcher.readline()
        assert line, "IDLE connection closed"
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            exists = int(m.group(1))
    watcher.send(b"DONE\r\n")
    while not watcher.readline().startswith(b"W1 "):
        pass
    watcher.logout()
    # a reader on each instance (HAProxy's threads share the round robin: connect
    # until both have answered) agree on every UID; nothing lost, nothing twice
    readers = {}
    for _ in range(20):
        client = _imap(ports["imap"])
        if _instance(client) in readers:
            client.logout()
        else:
            readers[_instance(client)] = client
        if len(readers) == 2:
            break
    try:
        assert sorted(readers) == ["a", "b"]
        one, two = _ids(readers["a"]), _ids(readers["b"])
    finally:
        for client in readers.values():
            client.logout()
    assert one == two
    assert sorted(one.values()) == sorted(sent)
    # the logs of both name the real client, who came through the header
    smtp_lines = [line for line in caplog.text.splitlines() if "clevermail.smtp" in line and "connect via proxy" in line]
    assert len(smtp_lines) == 20
    assert all(f" {CLIENT}] connect via proxy 127.0.0.1" in line for line in smtp_lines)
    # (the fixture's probes of HAProxy's port come from 127.0.0.1 itself)
    imap_lines = [line for line in caplog.text.splitlines()
                  if "clevermail.imap" in line and f" {CLIENT}] connect via proxy 127.0.0.1" in line]
    assert len(imap_lines) >= 3             # the IDLE session and a reader on each instance
