"""Tests for clevermail.tls_context: the server context and its holder, ServerContext,
which loads a renewed certificate/key pair on its own (stat of the resolved files at
most every check_interval seconds, lazily in get()), never replaces a good context with
a pair that does not load (a WARNING, and another try at the next check), and swaps
the pair named by a configuration reload (replace).

Which certificate a context serves is read the way a client sees it: a TLS handshake
over a socketpair, the peer certificate's DER compared with trustme's.  Time is a fake
clock handed to the holder."""

import logging
import os
import socket
import ssl
import threading

import pytest
import trustme

from clevermail.tls_context import ServerContext, make_server_context

HOST = "mail.example.test"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def write_pair(ca, folder, name):
    """A fresh certificate for HOST: (cert path, key path, DER of the certificate)."""
    cert = ca.issue_cert(HOST)
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_path)
    cert.private_key_pem.write_to_path(key_path)
    return str(cert_path), str(key_path), ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())


def served(ca, server_ctx):
    """The DER certificate a client sees when it connects to `server_ctx`."""
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    a, b = socket.socketpair()
    a.settimeout(10)
    b.settimeout(10)
    errors = []

    def serve():
        try:
            with server_ctx.wrap_socket(b, server_side=True):
                pass
        except OSError as exc:    # the client closing first is fine
            errors.append(exc)

    t = threading.Thread(target=serve)
    t.start()
    try:
        with client_ctx.wrap_socket(a, server_hostname=HOST) as tls:
            return tls.getpeercert(binary_form=True)
    finally:
        t.join(10)
        b.close()


def swap_symlink(link, target):
    """certbot's way: a new symlink renamed over the old one."""
    tmp = f"{link}.new"
    os.symlink(target, tmp)
    os.replace(tmp, link)


def test_make_server_context_tls12_minimum_or_none(ca, tmp_path):
    cert, key, _ = write_pair(ca, tmp_path, "a")
    assert make_server_context(cert, key).minimum_version == ssl.TLSVersion.TLSv1_2
    assert make_server_context("", "") is None


def test_no_certificate_holds_none(tmp_path):
    holder = ServerContext("", "")
    assert holder.get() is None
    assert holder.check() is False


def test_renewal_through_symlinks_is_picked_up_after_the_interval(ca, tmp_path):
    c1, k1, der1 = write_pair(ca, tmp_path / "archive", "1")
    c2, k2, der2 = write_pair(ca, tmp_path / "archive", "2")
    live = tmp_path / "live"
    live.mkdir()
    cert_link, key_link = str(live / "fullchain.pem"), str(live / "privkey.pem")
    os.symlink(c1, cert_link)
    os.symlink(k1, key_link)
    clock = Clock()
    holder = ServerContext(cert_link, key_link, check_interval=30, clock=clock)
    first = holder.get()
    assert served(ca, first) == der1

    swap_symlink(key_link, k2)
    swap_symlink(cert_link, c2)
    clock.now += 29
    assert holder.get() is first            # not looked at before the interval
    clock.now += 1
    renewed = holder.get()
    assert renewed is not first
    assert served(ca, renewed) == der2
    assert served(ca, first) == der1        # a context already handed out is unchanged
    clock.now += 30
    assert holder.get() is renewed          # nothing changed: the same context


def test_half_written_pair_keeps_the_old_context_and_retries(ca, tmp_path, caplog):
    c1, k1, der1 = write_pair(ca, tmp_path, "1")
    c2, k2, der2 = write_pair(ca, tmp_path / "next", "2")
    clock = Clock()
    holder = ServerContext(c1, k1, check_interval=5, clock=clock)
    good = holder.get()
    # the new certificate is in place, its key not yet: they do not match
    os.replace(c2, c1)
    clock.now += 5
    with caplog.at_level(logging.WARNING, logger="clevermail.tls"):
        assert holder.get() is good
    assert any(r.levelno == logging.WARNING and "cannot be loaded" in r.getMessage()
               for r in caplog.records)
    assert served(ca, holder.get()) == der1
    # the key arrives: the next check takes the pair
    os.replace(k2, k1)
    clock.now += 5
    assert served(ca, holder.get()) == der2


def test_truncated_certificate_file_keeps_the_old_context(ca, tmp_path, caplog):
    c1, k1, der1 = write_pair(ca, tmp_path, "1")
    clock = Clock()
    holder = ServerContext(c1, k1, check_interval=1, clock=clock)
    good = holder.get()
    with open(c1, "r+b") as f:
        f.truncate(100)
    clock.now += 1
    with caplog.at_level(logging.WARNING, logger="clevermail.tls"):
        assert holder.get() is good
    assert "keeping the certificate loaded before" in caplog.text


def test_replace_swaps_now_and_refuses_a_bad_pair(ca, tmp_path):
    c1, k1, der1 = write_pair(ca, tmp_path, "1")
    c2, k2, der2 = write_pair(ca, tmp_path, "2")
    holder = ServerContext(c1, k1, clock=Clock())
    holder.replace(c2, k2)
    assert holder.certificate == c2
    assert served(ca, holder.get()) == der2
    with pytest.raises(ssl.SSLError):
        holder.replace(c1, k2)              # the key of another certificate
    assert served(ca, holder.get()) == der2
    holder.replace("", "")                  # TLS switched off
    assert holder.get() is None


def test_startup_with_a_bad_pair_raises(ca, tmp_path):
    c1, _, _ = write_pair(ca, tmp_path, "1")
    _, k2, _ = write_pair(ca, tmp_path, "2")
    with pytest.raises(ssl.SSLError):
        ServerContext(c1, k2)
    with pytest.raises(OSError):
        ServerContext(str(tmp_path / "missing.pem"), k2)
