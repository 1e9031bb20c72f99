"""Tests for clevermail.routing: accounts, aliases, role addresses, catch-all, SRS."""

import pytest

from clevermail import routing
from clevermail.accounts import AccountStore
from clevermail.aliases import AliasStore
from clevermail.routing import Route, Router
from clevermail.srs import SRS


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    path = tmp_path_factory.mktemp("routing") / "users.ini"
    accounts = AccountStore(str(path), ["example.test", "other.test"])
    for name in ("alice@example.test", "bob@example.test", "carol@other.test"):
        accounts.add(name, "pw")
    return str(path)


@pytest.fixture
def aliases(tmp_path):
    return AliasStore(str(tmp_path / "aliases.ini"), ["example.test", "other.test"])


@pytest.fixture
def srs():
    return SRS(b"s" * 32, "example.test")


@pytest.fixture
def router(users, aliases, srs):
    accounts = AccountStore(users, ["example.test", "other.test"])
    return Router(accounts, aliases, postmaster="bob@example.test", srs=srs)


def test_accounts_with_detail_and_case(router):
    assert router.resolve("Alice+News@Example.TEST") == Route(accounts=("alice@example.test",))
    with pytest.raises(routing.NoSuchAddress):
        router.resolve("nobody@example.test")


def test_other_domains_route_to_themselves(router):
    assert router.resolve("x@far.test") == Route(external=("x@far.test",))
    with pytest.raises(routing.BadDomain):
        router.resolve("x@bü--cher.example")


def test_aliases_lists_nesting_and_forwards(router, aliases):
    aliases.add("team@example.test", ["alice@example.test", "sales@example.test"])
    aliases.add("sales@example.test", ["bob@example.test", "carol@other.test", "rep@far.test"])
    route = router.resolve("Team@example.test")
    assert route == Route(accounts=("alice@example.test", "bob@example.test", "carol@other.test"),
                          external=("rep@far.test",), forwarded=True)
    # an alias with a detail: the full name first, then the base name
    aliases.add("team+urgent@example.test", ["bob@example.test"])
    assert router.resolve("team+urgent@example.test").accounts == ("bob@example.test",)
    assert router.resolve("team+other@example.test").accounts[0] == "alice@example.test"


def test_role_addresses_always_resolve_unless_an_alias_says_otherwise(router, aliases):
    assert router.resolve("postmaster@other.test").accounts == ("bob@example.test",)
    assert router.resolve("ABUSE@example.test").accounts == ("bob@example.test",)
    assert router.resolve("postmaster").accounts == ("bob@example.test",)        # RFC 5321 4.1.1.3
    aliases.add("abuse@example.test", ["alice@example.test"])
    assert router.resolve("abuse@example.test").accounts == ("alice@example.test",)
    abuse = Router(router.accounts, aliases, postmaster="bob@example.test", abuse="carol@other.test")
    assert abuse.resolve("abuse@other.test").accounts == ("carol@other.test",)


def test_catch_all_only_when_nothing_else_matches(router, aliases):
    aliases.add("@example.test", ["carol@other.test"])
    assert router.resolve("anything@example.test").accounts == ("carol@other.test",)
    assert router.resolve("alice@example.test").accounts == ("alice@example.test",)
    assert router.resolve("postmaster@example.test").accounts == ("bob@example.test",)
    with pytest.raises(routing.NoSuchAddress):
        router.resolve("anything@other.test")                 # another domain's catch-all


def test_alias_to_nothing_is_no_such_address(router, aliases):
    aliases.add("ghost@example.test", ["gone@example.test"])
    with pytest.raises(routing.NoSuchAddress):
        router.resolve("ghost@example.test")


def test_loops_and_wide_aliases_are_bounded(router, aliases, monkeypatch):
    aliases.add("a@example.test", ["b@example.test"])
    aliases.add("b@example.test", ["a@example.test"])
    with pytest.raises(routing.TooManyDestinations, match="deeper"):
        router.resolve("a@example.test")
    monkeypatch.setattr(routing, "MAX_DESTINATIONS", 3)
    aliases.add("wide@example.test", [f"r{i}@far.test" for i in range(5)])
    with pytest.raises(routing.TooManyDestinations, match="more than 3"):
        router.resolve("wide@example.test")


def test_srs_bounces_go_back_to_the_original_sender(router, srs):
    address = srs.forward("origin@far.test")
    assert router.resolve(address) == Route(external=("origin@far.test",), forwarded=True)
    with pytest.raises(routing.BadSRS):
        router.resolve(address.replace("=origin@", "=victim@"))


def test_separator_is_configurable(users, aliases):
    router = Router(AccountStore(users, ["example.test"]), aliases, separator="-")
    assert router.resolve("alice-lists@example.test").accounts == ("alice@example.test",)
    with pytest.raises(routing.NoSuchAddress):
        router.resolve("alice+lists@example.test")      # "+" is no separator here
    plain = Router(AccountStore(users, ["example.test"]), aliases, separator="")
    aliases.add("x-y@example.test", ["bob@example.test"])
    assert plain.resolve("x-y@example.test").accounts == ("bob@example.test",)
    for address in ("alice+lists@example.test", "alice-lists@example.test"):
        with pytest.raises(routing.NoSuchAddress):
            plain.resolve(address)


def test_owners_are_the_local_targets(router, aliases):
    aliases.add("sales@example.test", ["alice@example.test", "ext@far.test", "team@example.test"])
    assert router.owners("Sales@Example.test") == ("alice@example.test",)
    assert router.owners("nobody@example.test") == ()
