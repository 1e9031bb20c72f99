"""MailService.reload(settings): what changes live (TLS certificate, limits, local
domains, session policy, login throttle, relay settings, postmaster, log level, users.ini
re-read), what is named as needing a restart, a certificate renewed on disk picked up
without any reload, and logs.reopen after logrotate's rename.

End to end on 127.0.0.1 port 0 with raw sockets, smtplib and stdlib ssl; settings are
built with make_config, as the CLI's reload builds them with load_config."""

import logging
import os
import shutil
import smtplib
import socket
import ssl

import pytest
import trustme

from clevermail import logs
from clevermail.accounts import AccountStore
from clevermail.service import MailService
from relay_sink import ServiceEnv, Sink
from smtp_helpers import USERS, inbox, make_users_file
from waiting import wait_for

pytestmark = pytest.mark.e2e

HOST = "mail.example.test"
ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    return make_users_file(tmp_path_factory.mktemp("reload-users"))


def write_pair(ca, folder, name):
    """A certificate for HOST and 127.0.0.1: (cert path, key path, its DER)."""
    cert = ca.issue_cert(HOST, "127.0.0.1")
    cert_path, key_path = folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_path)
    cert.private_key_pem.write_to_path(key_path)
    return str(cert_path), str(key_path), ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())


@pytest.fixture
def env(tmp_path, ca, users_file, make_config, thread_guard):
    """env.start(**sections) starts a service (TLS with pair "1"); env.config(**sections)
    the settings to reload with (the same TLS unless given)."""

    class Env:
        pair1 = write_pair(ca, tmp_path, "1")
        pair2 = write_pair(ca, tmp_path, "2")
        service = None

        def config(self, **sections):
            cert, key, _ = self.pair1
            sections.setdefault("tls", {"certificate": cert, "key": key})
            return make_config(tmp_path, **sections)

        def start(self, tls_check_interval=30.0, **sections):
            self.service = MailService(self.config(**sections), tls_check_interval=tls_check_interval)
            self.service.data_dir = str(tmp_path / "data")
            return self.service.start()

    shutil.copy(users_file, tmp_path / "users.ini")
    e = Env()
    yield e
    if e.service is not None and e.service.started:
        e.service.stop(drain=0)


@pytest.fixture
def client_ctx(ca):
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def starttls_cert(port, client_ctx):
    """(DER certificate seen, the smtplib session now in TLS) over SMTP STARTTLS."""
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=10)
    s.starttls(context=client_ctx)
    return s.sock.getpeercert(binary_form=True), s


def ehlo_size(port):
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=10) as s:
        s.ehlo()
        return int(s.esmtp_features["size"])


def rcpt(port, address, sender="s@remote.test"):
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=10) as s:
        s.ehlo()
        s.mail(sender)
        return s.rcpt(address)[0]


# -- TLS ----------------------------------------------------------------------------------------
def test_reload_with_a_new_certificate(env, client_ctx):
    svc = env.start()
    port = svc.port("smtp")
    der, old_session = starttls_cert(port, client_ctx)
    assert der == env.pair1[2]
    try:
        cert, key, der2 = env.pair2
        assert svc.reload(env.config(tls={"certificate": cert, "key": key})) == []
        new_der, new_session = starttls_cert(port, client_ctx)
        assert new_der == der2
        new_session.quit()
        # the session that was in TLS before the reload goes on with its own
        assert old_session.noop()[0] == 250
        assert old_session.sock.getpeercert(binary_form=True) == env.pair1[2]
    finally:
        old_session.quit()


def test_reload_with_a_bad_pair_keeps_the_certificate_and_says_so(env, client_ctx):
    svc = env.start()
    cert1, _, der1 = env.pair1
    _, key2, _ = env.pair2
    notes = svc.reload(env.config(tls={"certificate": cert1, "key": key2}))
    assert len(notes) == 1 and notes[0].startswith("[tls] certificate/key not loaded")
    der, s = starttls_cert(svc.port("smtp"), client_ctx)
    s.quit()
    assert der == der1


def test_certificate_renewed_on_disk_without_reload(env, client_ctx, tmp_path):
    cert, key, der1 = env.pair1
    svc = env.start(tls_check_interval=0.05)
    port = svc.port("smtp")
    assert starttls_cert(port, client_ctx)[0] == der1
    cert2, key2, der2 = env.pair2
    # certbot: the files named in the configuration now hold the renewed pair
    shutil.copy(key2, key + ".tmp")
    shutil.copy(cert2, cert + ".tmp")
    os.replace(key + ".tmp", key)
    os.replace(cert + ".tmp", cert)

    def renewed():
        der, s = starttls_cert(port, client_ctx)
        s.quit()
        return der == der2
    assert wait_for(renewed)


# -- live settings ------------------------------------------------------------------------------
def test_limits_domains_aliases_policy_postmaster_take_effect_for_new_sessions(env, tmp_path):
    aliases = str(tmp_path / "aliases.ini")
    with open(aliases, "w") as f:           # an alias in a domain that is not ours yet
        f.write("[aliases]\nsales@new.test = bob@example.test\n")
    svc = env.start(server={"aliases_file": aliases})
    port = svc.port("smtp")
    assert ehlo_size(port) == 26214400
    assert rcpt(port, "someone@new.test") == 554            # not ours: relay denied
    assert rcpt(port, "sales@new.test") == 554
    assert rcpt(port, "x@remote.test") == 554
    new = env.config(limits={"message_size": 50000},
                     server={"domains": ["example.test", "localhost", "new.test"],
                             "aliases_file": aliases,
                             "trusted_networks": ["127.0.0.0/8"], "postmaster": "bob@example.test"})
    assert svc.reload(new) == []
    assert ehlo_size(port) == 50000
    assert rcpt(port, "someone@new.test") == 550            # a local domain now
    assert rcpt(port, "x@remote.test") == 250               # loopback is trusted now
    # aliases.ini did not change on disk: its alias counts now that new.test is local
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=10) as s:
        assert s.sendmail("s@remote.test", ["sales@new.test", "postmaster@example.test"],
                          b"Subject: hi\r\n\r\nto the alias and the postmaster\r\n") == {}
    assert len(inbox(svc.data_dir, "bob@example.test")) == 1  # both are bob: one copy
    assert inbox(svc.data_dir, ALICE) == []
    for _, srv in svc.servers:
        assert srv.limits is new.limits[srv.protocol]
        assert srv.policy is new.policy


def test_login_throttle_and_log_level(env):
    svc = env.start()
    root = logging.getLogger("clevermail")
    level = root.level
    try:
        svc.reload(env.config(limits={"auth_failures_per_client": 3, "auth_failure_window": 60},
                              server={"log_level": "DEBUG"}))
        assert (svc.throttle.limit, svc.throttle.window) == (3, 60)
        assert root.level == logging.DEBUG
    finally:
        root.setLevel(level)


def test_reload_rereads_users_ini_even_when_its_stat_looks_unchanged(tmp_path):
    path = tmp_path / "users.ini"
    accounts = AccountStore(str(path), ["example.test"])
    accounts.add("alice", "pw")
    assert accounts.list() == [ALICE]
    # an edit that keeps size, mtime and inode (a restored backup, a coarse clock)
    st = os.stat(path)
    text = path.read_text().replace("[alice@example.test]", "[carol@example.test]")
    with open(path, "r+") as f:
        f.write(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert accounts.list() == [ALICE]          # the stat did not change: still cached
    accounts.reload()
    assert accounts.list() == ["carol@example.test"]
    accounts.reload(["other.test"])            # carol's domain is not local any more
    assert accounts.list() == []


def test_relay_settings_are_swapped(tmp_path, make_config, thread_guard):
    ServiceEnv.make_users(tmp_path / "users.ini")
    first, second = Sink(), Sink()
    svc_env = ServiceEnv(make_config(tmp_path, relay={"mx_port": first.port}), first).start()
    try:
        svc = svc_env.service
        svc_env.send(["x@there.test"], b"Subject: one\r\n\r\nto the first sink\r\n")
        assert wait_for(lambda: len(first.messages) == 1)
        new = make_config(tmp_path, relay={"mx_port": second.port, "interval": 5})
        assert svc.reload(new) == []
        assert svc.worker.settings is new.relay
        svc_env.send(["y@there.test"], b"Subject: two\r\n\r\nto the second sink\r\n")
        assert wait_for(lambda: len(second.messages) == 1)
        assert b"to the second sink" in second.messages[0].data
        assert len(first.messages) == 1
    finally:
        svc_env.stop()
        first.close()
        second.close()


# -- restart needed -----------------------------------------------------------------------------
def test_changes_that_need_a_restart_are_named(env, tmp_path):
    svc = env.start()
    notes = svc.reload(env.config(
        smtp={"listen": ["127.0.0.1:0", "127.0.0.2:0"]}, pop3={"listen": []},
        server={"data_dir": str(tmp_path / "elsewhere"), "users_file": str(tmp_path / "u2.ini")},
        relay={"concurrency": 2}, metrics={"listen": "127.0.0.1:0"}))
    assert sorted(notes) == sorted([
        "[metrics] changed: restart to apply",      # a layer reload does not apply
        "[smtp] listen changed: restart to apply",
        "[pop3] listen changed: restart to apply",
        "[server] data_dir changed: restart to apply",
        "[server] users_file changed: restart to apply",
        "[relay] concurrency changed: restart to apply",
    ])
    # still serving on what it started with
    assert rcpt(svc.port("smtp"), ALICE) == 250
    # and said again on the next reload, until the restart
    assert "[smtp] listen changed: restart to apply" in svc.reload(env.config(
        smtp={"listen": ["127.0.0.1:0", "127.0.0.2:0"]}))


def test_reload_then_drain_stop(env):
    """reload keeps stop(drain=...) working: the new drain_time is the default."""
    svc = env.start()
    svc.reload(env.config(server={"drain_time": 0}))
    assert svc.settings.server.drain_time == 0
    c = socket.create_connection(("127.0.0.1", svc.port("smtp")), timeout=10)
    try:
        assert c.recv(100).startswith(b"220 ")
        svc.stop()
        reply = b""
        while chunk := c.recv(1000):        # everything up to the close: one reply
            reply += chunk
        assert reply == f"421 4.3.2 {HOST} Service shutting down\r\n".encode()
    finally:
        c.close()


# -- logs.reopen --------------------------------------------------------------------------------
def test_logs_reopen_writes_to_the_new_file_after_a_rename(tmp_path):
    path = tmp_path / "clevermail.log"
    logger = logging.getLogger("clevermail.test-reopen")
    handler = logs.open_log_file(str(path))
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info("before rotation")
        handler.flush()
        os.rename(path, tmp_path / "clevermail.log.1")      # logrotate
        logger.info("after rename, before reopen")
        logs.reopen()
        logger.info("after reopen")
        handler.flush()
        assert (tmp_path / "clevermail.log.1").read_text() == "before rotation\nafter rename, before reopen\n"
        assert path.read_text() == "after reopen\n"
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.propagate = True


def test_sender_inbound_and_spam_settings_are_applied_live(env):
    """[senders], [inbound] and [spam] need no restart: the next session uses them."""
    svc = env.start()
    smtp = svc.handlers["smtp"]
    assert smtp.inbound is None and smtp.defence.settings.unknown_recipients == 5
    notes = svc.reload(env.config(senders={"messages_per_hour": 7, "send_as": ["alice@example.test=*@example.test"]},
                                  inbound={"checks": True, "spf_fail": "reject"},
                                  spam={"unknown_recipients": 2, "greylist": True}))
    assert notes == []
    assert svc.send_quota.messages_per_hour == 7
    assert smtp.senders.owns("alice@example.test", "anyone@example.test")
    assert smtp.inbound is not None and smtp.inbound.policy.spf_fail == "reject"
    assert smtp.defence.settings.unknown_recipients == 2 and smtp.defence.greylist is not None
    kept = smtp.defence.greylist
    svc.reload(env.config(spam={"greylist": True, "greylist_delay": 10}))
    assert smtp.defence.greylist is kept and kept.delay == 10      # its state stays
    svc.reload(env.config())
    assert smtp.inbound is None and smtp.defence.greylist is None


def test_a_domain_added_by_reload_gets_dkim_keys_and_signing(env):
    svc = env.start(dkim={"sign": True})
    assert "new.test" not in svc.signer.domains
    notes = svc.reload(env.config(dkim={"sign": True},
                                  server={"domains": ["example.test", "localhost", "new.test"]}))
    assert notes == []
    assert "new.test" in svc.signer.domains
    assert sorted(key.selector.algorithm for key in svc.signer.active("new.test")) == ["ed25519", "rsa"]
