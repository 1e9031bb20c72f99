"""Tests for clevermail.smtp.sender_identity: who may send as whom (pure rules)."""

import email.utils
import random

import pytest

from clevermail.smtp import replies as R
from clevermail.smtp.sender_identity import _SIMPLE_FROM, SenderIdentity, canonical_sender, from_addresses

LOCAL = {"example.test", "xn--bcher-kva.example"}


@pytest.fixture
def identity():
    return SenderIdentity(lambda domain: domain.lower() in LOCAL,
                          send_as=[("noreply@example.test", "*@example.test"),
                                   ("alerts@example.test", "ops@other.test")])


def test_canonical_sender():
    assert canonical_sender("User+Tag@Bücher.Example") == ("user+tag", "xn--bcher-kva.example")
    assert canonical_sender("nodomain") is None
    assert canonical_sender("@example.test") is None
    assert canonical_sender("x@bü--cher.example") is None        # no valid IDN


@pytest.mark.parametrize("user, address, owned", [
    ("alice@example.test", "alice@example.test", True),
    ("alice@example.test", "Alice@EXAMPLE.test", True),
    ("alice@example.test", "alice+lists@example.test", True),       # RFC 5233 detail
    ("alice@example.test", "alice@example.test.", True),            # a final dot: the same domain
    ("alice@example.test", "bob@example.test", False),
    ("alice@example.test", "alicex@example.test", False),
    ("alice@example.test", "alice@other.test", False),
    ("alice@example.test", "", False),
    ("ute@xn--bcher-kva.example", "ute@bücher.example", True),     # U-label spelling
    ("noreply@example.test", "billing@example.test", True),        # granted pattern
    ("noreply@example.test", "billing@other.test", False),
    ("alerts@example.test", "ops@other.test", True),
    ("alerts@example.test", "ops2@other.test", False),
])
def test_owns(identity, user, address, owned):
    assert identity.owns(user, address) is owned


def test_envelope_rules(identity):
    user = "alice@example.test"
    assert identity.envelope_refusal("", user=user, trusted=False) is None        # bounces
    assert identity.envelope_refusal("", user=None, trusted=False) is None
    assert identity.envelope_refusal("alice+x@example.test", user=user, trusted=False) is None
    refusal = identity.envelope_refusal("bob@example.test", user=user, trusted=False)
    assert (refusal.code, refusal.status) == (553, "5.7.1") and user in refusal.text
    # the same for a foreign domain: a user sends only as themselves
    assert identity.envelope_refusal("someone@far.test", user=user, trusted=True).code == 553
    # unauthenticated: a local domain needs AUTH, unless the client is trusted
    assert identity.envelope_refusal("bob@Example.TEST", user=None, trusted=False) is R.R550_LOCAL_SENDER_NEEDS_AUTH
    assert identity.envelope_refusal("bob@bücher.example", user=None, trusted=False) is R.R550_LOCAL_SENDER_NEEDS_AUTH
    assert identity.envelope_refusal("bob@example.test", user=None, trusted=True) is None
    assert identity.envelope_refusal("x@far.test", user=None, trusted=False) is None


def test_from_addresses():
    msg = (b"Subject: x\r\nFrom: \"Alice, A.\" <alice@example.test>,\r\n"
           b" bob@example.test (Bob)\r\nTo: carol@example.test\r\nfrom: =?utf-8?q?D?= <d@x.test>\r\n"
           b"\r\nFrom: body@not.header\r\n")
    assert from_addresses(msg) == ["alice@example.test", "bob@example.test", "d@x.test"]
    assert from_addresses(b"Subject: none\r\n\r\nbody\r\n") == []
    assert "" in from_addresses(b"From: <<broken\r\n\r\n")    # unreadable: owned by nobody


def test_header_rules(identity):
    user = "alice@example.test"
    ok = b"From: Alice <ALICE+x@example.test>\r\n\r\nhi\r\n"
    assert identity.header_refusal(ok, user=user) is None
    assert identity.header_refusal(b"Subject: no from\r\n\r\n", user=user) is None
    for forged in (b"From: Bob <bob@example.test>\r\n\r\n",
                   b"From: alice@example.test, bob@example.test\r\n\r\n",      # every address
                   b"From: alice@example.test\r\nFrom: bob@example.test\r\n\r\n",  # every field
                   b"From: <<broken\r\n\r\n"):
        refusal = identity.header_refusal(forged, user=user)
        assert (refusal.code, refusal.status) == (550, "5.7.1"), forged
    # unauthenticated mail is not the header rule's business
    assert identity.header_refusal(b"From: bob@example.test\r\n\r\n", user=None) is None


def test_from_addresses_reads_simple_values_as_email_utils_does():
    """The pattern for a bare address or one display name and <address> gives what
    email.utils.getaddresses gives, on real forms and 30,000 random values."""
    rng = random.Random(5322)
    pieces = ["a", "b.c", "@", "x.test", "<", ">", " ", "\t", '"', "Al Ice", ".", "..", "-", "+tag", ",",
              "(c)", ";", ":", "é", "[1.2.3.4]", "\\", "'", "_", "=?utf-8?q?x?="]
    cases = ["bench@client.test", " Bench <a@b.c>", '"Be nch" <a.b@c.d>', "<a@b>", "a@b, c@d", "A..b@c",
             " a@b (x)", "a@b.", '"a,b" <c@d>', "x <a@b> y", "<a@b>>", "a@b@c", " \t a+b@c-d.e \t"]
    cases += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 9))) for _ in range(20000)]
    # and 20,000 near the simple forms: display name, local part, domain, brackets
    locals_ = ["a", "b.c", "x+y", "_-", "a..b", ".a", "é", "a b", "O'N", "#$%&*/=?^`{|}~"]
    domains = ["x.test", "a-b.c", "x..y", "-", "x.", "X.TEST", "[1.2.3.4]", "é.test"]
    displays = ["", "Al Ice", '"Al Ice"', '"a,b"', "A\tB", '"', "(c)", "é"]
    forms = ["{}<{}>", "{} <{}>", " {}<{}> ", "{}{}", "{} {} (c)", "<{1}>{0}"]
    for _ in range(20000):
        address = rng.choice(locals_) + rng.choice(["@", "@", "@@", ""]) + rng.choice(domains)
        cases.append(rng.choice(forms).format(rng.choice(displays), address) + rng.choice(["", " ", "\t", ","]))
    assert sum(1 for case in cases if _SIMPLE_FROM.fullmatch(case)) > 500      # the pattern is exercised
    for case in cases:
        message = f"From:{case}\r\nTo: x@y\r\n\r\nbody\r\n".encode()
        assert from_addresses(message) == [a for _, a in email.utils.getaddresses([case])], case
