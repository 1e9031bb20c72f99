"""The sandbox's TLS certificate: self-signed for localhost, 127.0.0.1 and ::1, made
with `cryptography` (a dependency already) and written under the data directory, so
that STARTTLS works without any setup.  A client that wants to verify it loads
`cert.pem` as its CA (ssl.create_default_context(cafile=...)); it is its own issuer.
"""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..durable import atomic_write

VALID_DAYS = 365


def certificate_paths(directory):
    return os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")


def ensure_certificate(directory, hostname="localhost"):
    """(cert path, key path) under `directory`, made now when missing (a kept --data
    directory keeps its certificate until it expires)."""
    cert_path, key_path = certificate_paths(directory)
    if os.path.exists(cert_path) and os.path.exists(key_path) and _still_valid(cert_path):
        return cert_path, key_path
    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())       # P-256: made in a millisecond
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    names = {hostname, "localhost"}
    san = [x509.DNSName(n) for n in sorted(names)]
    san += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    atomic_write(key_path, key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()), 0o600,
                 durable=False)     # a file lost in a crash is made again
    atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644, durable=False)
    return cert_path, key_path


def _still_valid(cert_path):
    try:
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError):
        return False
    utc = datetime.timezone.utc
    # not_valid_after_utc is cryptography 42's; 41 has the naive UTC form only
    expires = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(tzinfo=utc)
    return expires > datetime.datetime.now(utc) + datetime.timedelta(days=1)
