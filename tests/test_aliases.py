"""Tests for clevermail.aliases (aliases.ini, edited under its lock, re-read on change)
and clevermail.ini_file."""

import os
import stat

import pytest

from clevermail.aliases import AliasError, AliasStore


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "aliases.ini")


@pytest.fixture
def store(path):
    return AliasStore(path, ["example.test", "Bücher.Example"])


def test_add_list_and_canonical_spelling(store, path):
    assert store.list() == []
    assert store.add("Sales@Example.TEST", ["Alice@example.test", "bob@example.test"]) == \
        ("sales@example.test", ("alice@example.test", "bob@example.test"))
    store.add("sales@example.test", ["bob@example.test", "ext@Far.Test"])      # merged, no repeats
    store.add("@bücher.example", ["alice@example.test"])
    assert store.list() == [("@xn--bcher-kva.example", ("alice@example.test",)),
                            ("sales@example.test", ("alice@example.test", "bob@example.test",
                                                    "ext@far.test"))]
    assert store.targets("sales@example.test")[2] == "ext@far.test"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    text = open(path).read()
    assert text.startswith("# CleverMail aliases") and "[aliases]" in text


def test_remove_targets_or_the_whole_alias(store):
    store.add("list@example.test", ["a@example.test", "b@example.test"])
    assert store.remove("list@example.test", ["A@example.test"]) == ("list@example.test", ("b@example.test",))
    with pytest.raises(AliasError, match="has no target"):
        store.remove("list@example.test", ["zz@example.test"])
    assert store.remove("list@example.test") == ("list@example.test", ())
    assert store.list() == []
    with pytest.raises(AliasError, match="no such alias"):
        store.remove("list@example.test")


@pytest.mark.parametrize("address, targets, message", [
    ("sales@far.test", ["a@example.test"], "not a local domain"),
    ("no-at-sign", ["a@example.test"], "is not an address"),
    ("x@example.test", ["not an address"], "is not an address"),
    ("x@example.test", [], "at least one target"),
    ("x@bü--cher.example", ["a@example.test"], "invalid international domain"),
])
def test_bad_input_is_an_alias_error_and_writes_nothing(store, path, address, targets, message):
    with pytest.raises(AliasError, match=message):
        store.add(address, targets)
    assert not os.path.exists(path)


def test_another_process_edit_is_seen_and_bad_lines_are_skipped(store, path):
    other = AliasStore(path, ["example.test"])            # the CLI, say
    assert store.targets("a@example.test") == ()
    other.add("a@example.test", ["alice@example.test"])
    assert store.targets("a@example.test") == ("alice@example.test",)
    with open(path, "a") as f:
        f.write("broken entry = not an address\nb@example.test = bob@example.test\n")
    assert store.targets("b@example.test") == ("bob@example.test",)
    assert store.targets("a@example.test") == ("alice@example.test",)


def test_unparsable_file_keeps_what_was_loaded(store, path, caplog):
    store.add("a@example.test", ["alice@example.test"])
    assert store.targets("a@example.test")
    with open(path, "a") as f:
        f.write("[aliases\n")                             # a hand edit gone wrong
    assert store.targets("a@example.test") == ("alice@example.test",)
    assert "cannot be read" in caplog.text


def test_cli_errors_are_one_line_and_unknown_local_targets_warn(tmp_path, write_config):
    from click.testing import CliRunner

    from clevermail.cli import main

    cfg = write_config(tmp_path)
    run = lambda *args: CliRunner().invoke(main, ["--config", cfg, "alias", *args])  # noqa: E731
    result = run("add", "x@far.test", "a@example.test")
    assert result.exit_code == 1 and result.stderr == \
        "error: 'far.test' is not a local domain (local domains: example.test, localhost)\n"
    result = run("add", "x@example.test", "ghost@example.test", "out@far.test")
    assert result.exit_code == 0
    assert result.stdout == "x@example.test -> ghost@example.test, out@far.test\n"
    assert result.stderr == "warning: ghost@example.test is neither an account nor an alias (yet)\n"
    assert run("list", "--json").stdout.strip().startswith('{\n  "x@example.test": [')
    assert run("del", "x@example.test", "ghost@example.test").stdout == "x@example.test -> out@far.test\n"
    result = run("del", "y@example.test")
    assert result.exit_code == 1 and result.stderr == "error: no such alias: y@example.test\n"
    assert (tmp_path / "aliases.ini").exists()             # beside users.ini by default
