"""Tests for account names in clevermail.accounts: canonical addresses (case, bare
names, what a local part and domain may hold), local domains, and international
domains spelt one way (IDNA 2008 lower-case A-labels) for lookup, login and RCPT TO's
lookup_ascii.  Adding and reading accounts is in test_accounts.py."""

import pytest

from clevermail import accounts as acc
from clevermail.accounts import Account, AccountError, AccountStore, split_address
from accounts_helpers import store, users  # noqa: F401 (fixtures)


# -- names ------------------------------------------------------------------------------
def test_canonical(store):
    assert store.canonical("alice") == "alice@example.test"
    assert store.canonical("  Alice ") == "alice@example.test"
    assert store.canonical("Bob@Other.TEST") == "bob@other.test"
    assert store.canonical("first.last") == "first.last@example.test"
    assert store.canonical("o'brien-x_y") == "o'brien-x_y@example.test"


@pytest.mark.parametrize("name, fragment", [
    ("", "empty account name"),
    ("   ", "empty account name"),
    ("../etc", "slashes"),
    ("a/b", "slashes"),
    ("a\\b", "slashes"),
    ("a b", "no spaces"),
    ("a\x00b", "control characters"),
    ("a\tb", "control characters"),
    ("a\x7fb", "control characters"),
    (".alice", "invalid local part"),
    ("alice.", "invalid local part"),
    ("a..b", "invalid local part"),
    ("..", "invalid local part"),
    ("a+b", "no '+'"),
    ("x" * 65, "invalid local part"),
    ("a@b@example.test", "invalid local part"),
    ("alice@", "invalid domain"),
    ("alice@bad_domain.test", "invalid domain"),
    ("alice@elsewhere.test", "is not a local domain"),
    ("@example.test", "invalid local part"),
])
def test_canonical_rejects(store, name, fragment):
    with pytest.raises(AccountError) as info:
        store.canonical(name)
    assert fragment in str(info.value)


def test_split_address_and_account():
    assert split_address(" Bob@Example.TEST ") == ("bob", "example.test")
    a = Account("bob@example.test")
    assert (a.address, a.local, a.domain) == ("bob@example.test", "bob", "example.test")


def test_is_local_domain(store):
    assert store.is_local_domain("EXAMPLE.test")
    assert store.is_local_domain("example.test.")
    assert not store.is_local_domain("example.org")


# -- international domains: one spelling, lower-case A-labels (IDNA 2008) -----------------------
IDN = "xn--bcher-kva.example"


@pytest.mark.parametrize("given, ascii_form", [
    ("bücher.example", IDN),
    ("Bücher.EXAMPLE.", IDN),          # UTS 46 mapping: case; the final dot goes
    (IDN.upper(), IDN),
    ("straße.de", "xn--strae-oqa.de"),  # IDNA 2008 keeps ß (IDNA 2003 made it "ss")
    ("Example.TEST", "example.test"),
])
def test_domain_to_ascii(given, ascii_form):
    assert acc.domain_to_ascii(given) == ascii_form


@pytest.mark.parametrize("bad", ["☃.example", "bü--cher.example", "-bü.example", "bü..example"])
def test_domain_to_ascii_refuses_what_is_no_idn(bad):
    # "☃.example" passes the stdlib's IDNA 2003 codec; IDNA 2008 disallows the symbol
    with pytest.raises(AccountError, match="invalid international domain name"):
        acc.domain_to_ascii(bad)


def test_u_label_and_a_label_name_the_same_account(users):
    store = AccountStore(users, ["example.test", "Bücher.example"])
    assert store.domains == ["example.test", IDN]
    account = store.add("Alice@bücher.example", "pw")
    assert account.address == f"alice@{IDN}"
    assert store.canonical("alice@BÜCHER.example") == f"alice@{IDN}"
    for spelling in ("alice@bücher.example", f"Alice+tag@{IDN}", "alice@Bücher.Example."):
        assert store.lookup(spelling).address == f"alice@{IDN}"
        assert store.is_local_domain(spelling.rpartition("@")[2])
    assert store.authenticate("alice@bücher.example", "pw").address == f"alice@{IDN}"
    assert store.lookup("alice@☃.example") is None
    assert not store.is_local_domain("☃.example")
    with pytest.raises(AccountError, match="invalid international domain name"):
        store.canonical("alice@☃.example")


def test_lookup_ascii_is_lookup_for_a_normalised_domain(users):
    """RCPT TO normalises the domain once and hands the pieces to lookup_ascii: it must
    answer as lookup() does for the whole address (case, '+detail', leading blanks)."""
    store = AccountStore(users, ["example.test", "Bücher.example"])
    store.add("alice@example.test", "pw")
    store.add("alice@bücher.example", "pw")
    for address in ("alice@example.test", " ALICE+x@Example.Test.", "alice@bücher.example",
                    f"Alice@{IDN}", "bob@example.test", "+x@example.test", "alice@other.test"):
        local, _, domain = address.rpartition("@")
        found, expected = store.lookup_ascii(local, acc.domain_to_ascii(domain)), store.lookup(address)
        assert (found and found.address) == (expected and expected.address), address
