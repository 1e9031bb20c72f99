"""Tests for clevermail.dkim.keys and clevermail.dkim.records: the on-disk layout and its
modes, the manifest (order, active keys, rotation, deletion), loading errors, first-start
keys, and the zone-file lines (parsed by dnspython)."""

import base64
import logging
import os
import stat

import dns.name
import dns.rdatatype
import dns.zone
import pytest

from clevermail.dkim import records
from clevermail.dkim.keys import DkimKeyError, KeyStore, ensure_keys, key_dir, publishable

NOW = 1796244000          # 2026-12-02 UTC


@pytest.fixture
def store(tmp_path):
    return KeyStore(key_dir(str(tmp_path / "data")))


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_generate_writes_a_pair_with_private_modes(store):
    keys = store.generate("example.com", now=NOW)
    assert [(k.selector.name, k.selector.algorithm) for k in keys] == [("202612r", "rsa"), ("202612e", "ed25519")]
    assert mode(store.root) == 0o700
    assert mode(store.domain_dir("example.com")) == 0o700
    for key in keys:
        assert os.path.basename(key.selector.path) == f"{key.selector.name}.{key.selector.algorithm}.key"
        assert mode(key.selector.path) == 0o600
    assert mode(store.manifest_path("example.com")) == 0o600
    rsa_key = keys[0].private
    assert rsa_key.key_size == 2048
    assert len(keys[1].public) == 32


def test_generate_with_a_selector_base_and_a_umask_that_would_open_files(store):
    old = os.umask(0)
    try:
        keys = store.generate("example.com", base="Mail2026", now=NOW)
    finally:
        os.umask(old)
    assert [k.selector.name for k in keys] == ["mail2026r", "mail2026e"]
    assert mode(store.domain_dir("example.com")) == 0o700
    assert all(mode(k.selector.path) == 0o600 for k in keys)


@pytest.mark.parametrize("base", ["a/b", "..", "-x", "x_y", "a" * 63])
def test_bad_selector_bases_are_refused(store, base):
    with pytest.raises(DkimKeyError):
        store.generate("example.com", base=base, now=NOW)
    assert store.selectors("example.com") == []


@pytest.mark.parametrize("domain", ["../etc", "Example.com", "a/b", "", "ex ample.com"])
def test_bad_domains_never_become_paths(store, domain):
    with pytest.raises(DkimKeyError):
        store.generate(domain, now=NOW)


def test_the_same_selector_twice_is_refused(store):
    store.generate("example.com", now=NOW)
    with pytest.raises(DkimKeyError, match="202612r exists"):
        store.generate("example.com", now=NOW)
    assert len(store.selectors("example.com")) == 2


def test_rotation_a_new_pair_is_pending_until_activated_then_the_old_stays_listed(store):
    old = store.generate("example.com", now=NOW)
    assert [s.pending for s in store.selectors("example.com")] == [False, False]   # the first pair signs
    new = store.generate("example.com", base="rot", now=NOW + 86400)
    assert [k.selector.pending for k in new] == [True, True]
    names = [s.name for s in store.selectors("example.com")]
    assert names == ["202612r", "202612e", "rotr", "rote"]
    active = store.load_active("example.com")                  # not published yet: the old one signs
    assert active["rsa"].selector.name == "202612r" and active["ed25519"].selector.name == "202612e"
    with open(store.manifest_path("example.com")) as f:
        assert f.read().splitlines()[-2:] == ["rotr rsa 2026-12-03 pending", "rote ed25519 2026-12-03 pending"]

    switched = store.activate("example.com", ["rotr", "rote"])
    assert [(s.name, s.pending) for s in switched] == [("rotr", False), ("rote", False)]
    active = store.load_active("example.com")
    assert active["rsa"].selector.name == "rotr" and active["ed25519"].selector.name == "rote"
    assert active["rsa"].public == new[0].public
    selectors = store.selectors("example.com")
    assert [(s.name, store.state(s, store.active(selectors))) for s in selectors] == [
        ("202612r", "old"), ("202612e", "old"), ("rotr", "signs"), ("rote", "signs")]
    assert store.load(selectors[0]).public == old[0].public
    # a base names its pair; going back is activating the old pair again
    assert [s.name for s in store.selectors_named("example.com", "202612")] == ["202612r", "202612e"]
    store.activate("example.com", ["202612r", "202612e"])
    assert store.load_active("example.com")["rsa"].selector.name == "202612r"
    with pytest.raises(DkimKeyError, match="no selector nothere"):
        store.activate("example.com", ["nothere"])


def test_delete_an_old_or_pending_selector_but_never_the_one_that_signs(store):
    store.generate("example.com", now=NOW)
    with pytest.raises(DkimKeyError, match="signs"):
        store.delete("example.com", "202612r")
    store.generate("example.com", base="given-up", now=NOW)
    store.delete("example.com", "given-upr")                  # a pending pair given up
    store.delete("example.com", "given-upe")
    store.generate("example.com", base="rot", now=NOW)
    with pytest.raises(DkimKeyError, match="signs"):          # rot is pending: 202612 still signs
        store.delete("example.com", "202612r")
    store.activate("example.com", ["rotr", "rote"])
    gone = store.delete("example.com", "202612r")
    assert not os.path.exists(gone.path)
    assert [s.name for s in store.selectors("example.com")] == ["202612e", "rotr", "rote"]
    with pytest.raises(DkimKeyError, match="no selector"):
        store.delete("example.com", "202612r")


def test_a_manifest_of_three_words_a_line_still_reads(store):
    store.generate("example.com", now=NOW)
    path = store.manifest_path("example.com")
    with open(path, "w") as f:          # as written before pending existed
        f.write("202612r rsa 2026-12-04\n202612e ed25519 2026-12-04\n")
    assert [s.pending for s in store.selectors("example.com")] == [False, False]
    with open(path, "w") as f:
        f.write("202612r rsa 2026-12-04 maybe\n")
    with pytest.raises(DkimKeyError, match="pending"):
        store.selectors("example.com")


def test_a_listed_key_that_is_missing_is_an_error(store):
    keys = store.generate("example.com", now=NOW)
    os.unlink(keys[1].selector.path)
    with pytest.raises(DkimKeyError, match="missing"):
        store.load_active("example.com")
    [problem] = store.problems(["example.com"])
    assert keys[1].selector.path in problem and "missing" in problem


def test_an_unreadable_key_is_an_error(store):
    keys = store.generate("example.com", now=NOW)
    path = keys[0].selector.path
    os.unlink(path)
    os.mkdir(path)                  # unreadable even for root, unlike a chmod 000
    with pytest.raises(DkimKeyError, match="cannot read"):
        store.load_active("example.com")


@pytest.mark.parametrize("index,content,why", [
    (0, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "PEM"),
    (1, b"bm90IGEga2V5\n", "Ed25519"),
    (1, b"", "Ed25519"),
])
def test_a_damaged_key_is_an_error(store, index, content, why):
    keys = store.generate("example.com", now=NOW)
    with open(keys[index].selector.path, "wb") as f:
        f.write(content)
    with pytest.raises(DkimKeyError, match=why):
        store.load_active("example.com")


def test_an_ed25519_key_where_rsa_is_expected_is_an_error(store):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    keys = store.generate("example.com", now=NOW)
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with open(keys[0].selector.path, "wb") as f:
        f.write(pem)
    with pytest.raises(DkimKeyError, match="not an RSA key"):
        store.load_active("example.com")


def test_a_manifest_without_one_algorithm_is_an_error(store):
    store.generate("example.com", now=NOW)
    path = store.manifest_path("example.com")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in text.splitlines() if "ed25519" not in line))
    with pytest.raises(DkimKeyError, match="no ed25519 key"):
        store.load_active("example.com")


def test_a_garbled_manifest_line_is_an_error(store):
    store.generate("example.com", now=NOW)
    with open(store.manifest_path("example.com"), "a") as f:
        f.write("x dsa 2026-01-01\n")
    with pytest.raises(DkimKeyError, match="line 5"):
        store.selectors("example.com")


def test_key_files_are_what_dkimpy_and_openssl_read(store):
    """The files are the usual formats: another signer could take them over."""
    import dkim.crypto
    import nacl.signing
    rsa_key, ed_key = store.generate("example.com", now=NOW)
    with open(rsa_key.selector.path, "rb") as f:
        parsed = dkim.crypto.parse_pem_private_key(f.read())
    assert parsed["modulus"] == rsa_key.private.private_numbers().public_numbers.n
    with open(ed_key.selector.path, "rb") as f:
        seed = base64.b64decode(f.read())
    assert bytes(nacl.signing.SigningKey(seed).verify_key) == ed_key.public
    # the loaded key (OpenSSL's) signs as PyNaCl does with that seed: Ed25519 is deterministic
    loaded = store.load(ed_key.selector)
    for digest in (b"", b"x" * 32, bytes(range(32))):
        assert loaded.private.sign(digest) == nacl.signing.SigningKey(seed).sign(digest).signature


def test_ensure_keys_makes_keys_once_for_public_domains_and_logs_the_records(store, caplog):
    log = logging.getLogger("test.dkim")
    with caplog.at_level(logging.INFO, logger="test.dkim"):
        made = ensure_keys(store, ["example.com", "localhost"], log)
    assert list(made) == ["example.com"]
    assert store.selectors("localhost") == []
    for key in made["example.com"]:
        assert any(key.zone_line in r.getMessage() for r in caplog.records)
    again = ensure_keys(store, ["example.com", "localhost"], log)
    assert again == {}
    assert len(store.selectors("example.com")) == 2
    assert publishable("example.com") and not publishable("localhost")


def test_zone_lines_parse_as_a_zone_and_carry_the_record(store):
    keys = store.generate("example.com", now=NOW)
    text = "\n".join(k.zone_line for k in keys)
    zone = dns.zone.from_text(text, origin=dns.name.root, relativize=False, check_origin=False)
    for key in keys:
        name = dns.name.from_text(f"{key.selector.name}._domainkey.example.com.")
        rdataset = zone.find_rdataset(name, dns.rdatatype.TXT)
        assert rdataset.ttl == records.TTL
        [rdata] = list(rdataset)
        assert all(len(s) <= 255 for s in rdata.strings)
        assert b"".join(rdata.strings).decode() == key.record
    rsa_record = keys[0].record
    assert rsa_record.startswith("v=DKIM1; k=rsa; p=") and len(rsa_record) > 255
    assert keys[1].record.startswith("v=DKIM1; k=ed25519; p=")


def test_txt_strings_split_at_255_octets():
    assert records.txt_strings("a" * 255) == ["a" * 255]
    assert records.txt_strings("a" * 256) == ["a" * 255, "a"]
    assert records.txt_strings("") == [""]
    assert records.record_name("s1", "example.com.") == "s1._domainkey.example.com."
    with pytest.raises(ValueError):
        records.key_record("dsa", b"x")
