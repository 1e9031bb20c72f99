"""Tests for clevermail.cli's user commands with click's CliRunner: user add (prompts,
stdin, duplicates, invalid names, the config option after the subcommand), list, passwd
and del (asked, keeping or deleting the mail), seen by a running server's store."""

import os

import pytest

from clevermail.store import MailStore

from cli_helpers import accounts, cfg, run, runner, with_mail  # noqa: F401 (fixtures)


# -- user add -------------------------------------------------------------------------------------
def test_user_add_prompts_twice(runner, cfg, tmp_path):
    result = run(runner, cfg, "user", "add", "Alice", input="s3cret\ns3cret\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("added alice@example.test\n")
    assert result.stdout.count("Password") == 1 and "Repeat for confirmation" in result.stdout
    assert "s3cret" not in result.output
    assert accounts(tmp_path).authenticate("alice", "s3cret") is not None
    store = MailStore(str(tmp_path / "data"))
    assert os.path.isdir(os.path.join(store.user_root("alice@example.test"), "cur"))


def test_user_add_mismatch_asks_again(runner, cfg, tmp_path):
    result = run(runner, cfg, "user", "add", "bob", input="one\ntwo\nthree\nthree\n")
    assert result.exit_code == 0
    assert "do not match" in result.output
    acc = accounts(tmp_path)
    assert acc.authenticate("bob", "three") is not None
    assert acc.authenticate("bob", "one") is None


def test_user_add_password_stdin(runner, cfg, tmp_path):
    result = run(runner, cfg, "user", "add", "carol@localhost", "--password-stdin", input="pw with spaces\n")
    assert result.exit_code == 0
    assert result.stdout == "added carol@localhost\n"
    assert accounts(tmp_path).authenticate("carol@localhost", "pw with spaces") is not None


def test_user_add_empty_password_stdin(runner, cfg, tmp_path):
    result = run(runner, cfg, "user", "add", "dave", "--password-stdin", input="\n")
    assert result.exit_code == 1
    assert result.stderr == "error: empty password\n"
    assert accounts(tmp_path).list() == []


def test_user_add_duplicate(runner, cfg):
    run(runner, cfg, "user", "add", "alice", "--password-stdin", input="a\n")
    result = run(runner, cfg, "user", "add", "ALICE@example.test", "--password-stdin", input="b\n")
    assert result.exit_code == 1
    assert result.stderr == "error: alice@example.test already exists\n"


@pytest.mark.parametrize("name, fragment", [
    ("../evil", "slashes"),
    ("a/b", "slashes"),
    ("bob@elsewhere.test", "'elsewhere.test' is not a local domain"),
    ("..", "invalid local part"),
    ("x+y", "no '+'"),
])
def test_user_add_invalid_names(runner, cfg, tmp_path, name, fragment):
    result = run(runner, cfg, "user", "add", name, "--password-stdin", input="pw\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert fragment in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "users.ini").exists()
    assert not (tmp_path / "data" / "mail" / "example.test").exists()


def test_user_add_invalid_name_does_not_prompt(runner, cfg):
    result = run(runner, cfg, "user", "add", "a/b")
    assert result.exit_code == 1
    assert "Password" not in result.output


def test_config_after_the_subcommand(runner, cfg, tmp_path):
    """--config is taken after the sub-command as well as before it, on every command."""
    result = run(runner, None, "user", "add", "amy", "--password-stdin", "--config", cfg, input="pw\n")
    assert result.exit_code == 0, result.output
    assert accounts(tmp_path).lookup("amy@example.test") is not None
    assert run(runner, None, "user", "list", "--config", cfg).stdout == "amy@example.test\n"
    # the later one wins: the sub-command's over the group's
    missing = str(tmp_path / "missing.ini")
    result = run(runner, None, "--config", missing, "user", "list", "--config", cfg)
    assert result.stdout == "amy@example.test\n"
    result = run(runner, None, "--config", cfg, "queue", "list", "--config", missing)
    assert result.exit_code == 2 and "missing.ini: file not found" in result.stderr


# -- list / passwd / del ---------------------------------------------------------------------------
def test_user_list(runner, cfg):
    assert run(runner, cfg, "user", "list").stdout == ""
    for name in ("zed", "amy", "mo@localhost"):
        run(runner, cfg, "user", "add", name, "--password-stdin", input="pw\n")
    result = run(runner, cfg, "user", "list")
    assert result.exit_code == 0
    assert result.stdout == "amy@example.test\nmo@localhost\nzed@example.test\n"


def test_user_passwd(runner, cfg, tmp_path):
    run(runner, cfg, "user", "add", "alice", "--password-stdin", input="old\n")
    result = run(runner, cfg, "user", "passwd", "alice", input="new\nnew\n")
    assert result.exit_code == 0
    assert result.stdout.endswith("password changed for alice@example.test\n")
    acc = accounts(tmp_path)
    assert acc.authenticate("alice", "new") is not None
    assert acc.authenticate("alice", "old") is None
    result = run(runner, cfg, "user", "passwd", "alice", "--password-stdin", input="newer\n")
    assert result.exit_code == 0
    assert acc.authenticate("alice", "newer") is not None


def test_user_passwd_unknown(runner, cfg):
    result = run(runner, cfg, "user", "passwd", "ghost", "--password-stdin", input="x\n")
    assert result.exit_code == 1
    assert result.stderr == "error: no such account: ghost@example.test\n"


def test_user_del_asks_and_keeps_mail_on_no(runner, cfg, tmp_path):
    root = with_mail(runner, cfg, tmp_path)
    result = run(runner, cfg, "user", "del", "alice", input="n\n")
    assert result.exit_code == 0
    assert "Delete all mail of alice@example.test too?" in result.stdout
    assert result.stdout.endswith("deleted alice@example.test (mail kept)\n")
    assert accounts(tmp_path).list() == []
    assert len(os.listdir(os.path.join(root, "new"))) == 1


def test_user_del_asks_and_deletes_mail_on_yes(runner, cfg, tmp_path):
    root = with_mail(runner, cfg, tmp_path)
    result = run(runner, cfg, "user", "del", "alice", input="y\n")
    assert result.exit_code == 0
    assert result.stdout.endswith("deleted alice@example.test and its mail\n")
    assert not os.path.exists(root)


def test_user_del_keep_mail_does_not_ask(runner, cfg, tmp_path):
    root = with_mail(runner, cfg, tmp_path)
    result = run(runner, cfg, "user", "del", "alice", "--keep-mail")
    assert result.exit_code == 0
    assert "Delete all mail" not in result.output
    assert result.stdout == "deleted alice@example.test (mail kept)\n"
    assert os.path.isdir(root)


def test_user_del_yes(runner, cfg, tmp_path):
    root = with_mail(runner, cfg, tmp_path)
    result = run(runner, cfg, "user", "del", "alice", "--yes")
    assert result.exit_code == 0
    assert result.stdout == "deleted alice@example.test and its mail\n"
    assert not os.path.exists(root)


def test_user_del_unknown(runner, cfg):
    result = run(runner, cfg, "user", "del", "ghost", "--yes")
    assert result.exit_code == 1
    assert result.stderr == "error: no such account: ghost@example.test\n"


def test_cli_edit_seen_by_running_server_store(runner, cfg, tmp_path):
    server_view = accounts(tmp_path)
    assert server_view.list() == []
    run(runner, cfg, "user", "add", "eve", "--password-stdin", input="pw\n")
    assert server_view.authenticate("eve", "pw") is not None
    run(runner, cfg, "user", "del", "eve", "--keep-mail")
    assert server_view.authenticate("eve", "pw") is None
