"""Shared by the tests of mail from outside (inbound checks, MX defences, rspamd):
an RSA key for DKIM signatures made in the test, and a factory of MailServices
(SMTP only, users alice and bob) whose config sections the test chooses.

    start = mx_service_factory(tmp_path, users_file)
    svc = start(inbound={"checks": True}, relay={"nameservers": [...]})
    ...
    start.stop_all()

scrape(svc) reads a service's /metrics (with [metrics] listen set).
"""

import base64
import shutil
import urllib.request

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client.parser import text_string_to_metric_families

from clevermail.service import MailService
from conftest import make_config


def rsa_test_key():
    """(private PEM for dkim.sign, public key base64 for the DKIM TXT record p=)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(der).decode()


def dkim_txt(public_b64):
    """The record's value as zone-file strings (at most 200 characters each)."""
    chunks = " ".join(f'"{public_b64[i:i + 200]}"' for i in range(0, len(public_b64), 200))
    return f'"v=DKIM1; k=rsa; p=" {chunks}'


def scrape(svc):
    """{(sample name, frozenset(labels.items())): value} of one GET of `svc`'s /metrics
    (a MailService started with [metrics] listen), parsed by prometheus_client."""
    with urllib.request.urlopen(f"http://127.0.0.1:{svc.metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode("utf-8")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(samples, name, **labels):
    """One value of scrape()'s result (None when absent)."""
    return samples.get((name, frozenset(labels.items())))


class MXServices:
    """start(**sections) -> a started MailService (SMTP on port 0 only) with its
    data_dir attribute; stop_all() at teardown."""

    def __init__(self, tmp_path, users_file):
        shutil.copy(users_file, tmp_path / "users.ini")
        self.tmp_path = tmp_path
        self.services = []

    def __call__(self, **sections):
        sections.setdefault("pop3", {"listen": []})
        sections.setdefault("imap", {"listen": []})
        svc = MailService(make_config(self.tmp_path, **sections))
        self.services.append(svc.start())
        svc.data_dir = str(self.tmp_path / "data")
        return svc

    def stop_all(self):
        """Stop those a test did not stop itself (a second stop of a MailService
        finds its drain eventfd closed once its session threads are gone)."""
        for svc in self.services:
            if svc.started:
                svc.stop()
