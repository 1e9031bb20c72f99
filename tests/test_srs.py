"""Tests for clevermail.srs: forwarding senders and reversing bounces to them."""

import os
import stat

import pytest

from clevermail import srs
from clevermail.srs import SRS, SRSError, load_secret

DAY = 86400


class Clock:
    def __init__(self, now=20000 * DAY + 3600):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def rewriter(clock):
    return SRS(b"k" * 32, "example.test", clock=clock)


def test_forward_and_reverse(rewriter):
    out = rewriter.forward("Alice@Origin.Example")
    local, _, domain = out.rpartition("@")
    assert domain == "example.test" and local.startswith("SRS0=")
    assert local.endswith("=Origin.Example=Alice")
    assert rewriter.reverse(out) == "Alice@Origin.Example"
    # an MTA on the way may lower-case the whole address
    assert rewriter.reverse(out.lower()) == "alice@origin.example"


def test_null_sender_and_our_own_domain_are_kept(rewriter):
    assert rewriter.forward("") == ""
    assert rewriter.forward("bob@example.test") == "bob@example.test"
    assert rewriter.forward("postmaster") == "postmaster"


def test_forged_and_malformed_addresses_are_refused(rewriter):
    good = rewriter.forward("alice@origin.example")
    forged = good.replace("=alice@", "=mallory@")
    for bad in (forged, "SRS0=AAAAAA=AB=origin.example=alice@example.test",
                "SRS0=broken@example.test", "alice@example.test", "SRS1=x@example.test"):
        with pytest.raises(SRSError):
            rewriter.reverse(bad)
    other = SRS(b"z" * 32, "example.test", clock=rewriter.clock)
    with pytest.raises(SRSError, match="hash"):
        other.reverse(good)                   # another server's secret


def test_expiry(rewriter, clock):
    out = rewriter.forward("alice@origin.example")
    clock.now += srs.MAX_AGE_DAYS * DAY
    assert rewriter.reverse(out) == "alice@origin.example"
    clock.now += DAY
    with pytest.raises(SRSError, match="expired"):
        rewriter.reverse(out)


def test_time_stamp_wraps_after_1024_days(rewriter, clock):
    clock.now = 1023 * DAY + 5            # stamp 1023
    out = rewriter.forward("alice@origin.example")
    clock.now += 2 * DAY                  # day 1025: stamp 1, two days later
    assert rewriter.reverse(out) == "alice@origin.example"


def test_forwarded_twice_becomes_srs1_and_reverses_to_the_first_forwarder(clock):
    first = SRS(b"a" * 32, "first.test", clock=clock)
    second = SRS(b"b" * 32, "example.test", clock=clock)
    srs0 = first.forward("alice@origin.example")
    srs1 = second.forward(srs0)
    assert srs1.startswith("SRS1=") and srs1.endswith("@example.test") and "=first.test==" in srs1
    assert second.reverse(srs1) == srs0
    assert first.reverse(second.reverse(srs1)) == "alice@origin.example"
    # a third hop keeps pointing at the first forwarder
    third = SRS(b"c" * 32, "third.test", clock=clock)
    srs1_again = third.forward(srs1)
    assert "=first.test==" in srs1_again and third.reverse(srs1_again) == srs0


def test_secret_is_created_once_with_mode_0600(tmp_path):
    secret = load_secret(str(tmp_path))
    path = tmp_path / srs.KEY_FILE
    assert len(secret) == 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_secret(str(tmp_path)) == secret
