"""`clevermail sieve`: put/get/list/activate/deactivate/delete/check through click."""

import shutil

import pytest
from click.testing import CliRunner

from clevermail.cli import main
from clevermail.sieve.scripts import SieveScripts

ALICE = "alice@example.test"


@pytest.fixture
def cfg(tmp_path, write_config, relay_users):
    shutil.copy(relay_users, tmp_path / "users.ini")
    return write_config(tmp_path, server={"log_file": str(tmp_path / "admin.log")})


def cli(cfg, *args, input=None):
    return CliRunner().invoke(main, ["--config", cfg, "sieve", *args], input=input)


def test_put_list_get_activate_delete(cfg, tmp_path):
    script = tmp_path / "s.sieve"
    script.write_text('require "fileinto";\nif header :contains "subject" "x" { fileinto "X"; }\n')
    result = cli(cfg, "put", "Alice", "main", str(script))        # any spelling of the account
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{ALICE}: stored main\n"
    assert cli(cfg, "put", ALICE, "other", "-", input="discard;\n").exit_code == 0
    assert cli(cfg, "list", ALICE).stdout == "main\nother\n"
    assert cli(cfg, "activate", ALICE, "main").stdout == f"{ALICE}: main is active\n"
    assert cli(cfg, "list", ALICE).stdout == "main  (active)\nother\n"
    assert cli(cfg, "get", ALICE, "other").stdout == "discard;\n"
    # the server's store sees the same state
    scripts = SieveScripts.for_data_dir(str(tmp_path / "data"))
    assert scripts.active(ALICE)[0] == "main"
    result = cli(cfg, "delete", ALICE, "main")
    assert result.exit_code == 1 and "is active" in result.stderr
    assert cli(cfg, "activate", ALICE, "--none").stdout == f"{ALICE}: no active script\n"
    assert cli(cfg, "delete", ALICE, "main").stdout == f"{ALICE}: deleted main\n"
    assert cli(cfg, "activate", ALICE, "other").exit_code == 0
    assert cli(cfg, "deactivate", ALICE).exit_code == 0
    assert scripts.active(ALICE) is None
    log = (tmp_path / "admin.log").read_text()
    for what in ("sieve script 'main' stored", "sieve script 'main' activated",
                 "sieve scripts deactivated", "sieve script 'main' deleted"):
        assert f"{ALICE}: {what} by uid=" in log


def test_put_refuses_a_bad_script_with_its_line(cfg, tmp_path):
    result = cli(cfg, "put", ALICE, "bad", "-", input='keep;\nfileinto "x";\n')
    assert result.exit_code == 1
    assert result.stderr == '-:2: error: command fileinto needs require "fileinto"\n'
    assert cli(cfg, "list", ALICE).stdout == ""


@pytest.mark.parametrize("args,words", [
    (("list", "nobody@example.test"), "no such account: nobody@example.test"),
    (("list", "a b"), "invalid account name"),
    (("get", ALICE, "missing"), "no script named 'missing'"),
    (("activate", ALICE, "missing"), "no script named 'missing'"),
    (("activate", ALICE), "give a script NAME or --none"),
    (("delete", ALICE, "missing"), "no script named 'missing'"),
    (("put", ALICE, "x", "/nonexistent/file"), "cannot read /nonexistent/file"),
    (("put", ALICE, "bad\tname", "-"), "control character in script name"),
])
def test_errors_are_one_line(cfg, args, words):
    result = cli(cfg, *args, input="keep;")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and words in result.stderr
    assert result.stderr.count("\n") == 1


def test_check(cfg, tmp_path):
    good = tmp_path / "good.sieve"
    good.write_text('require ["vacation", "fileinto"];\nvacation "away";\n')
    result = cli(cfg, "check", str(good))
    assert result.exit_code == 0 and result.stdout == f"{good}: ok (extensions: fileinto, vacation)\n"
    result = cli(cfg, "check", "-", input="if true {\n  keep;\n  frob;\n}\n")
    assert result.exit_code == 1
    assert result.stderr == "-:3: error: unknown command 'frob'\n"
    result = cli(cfg, "check", "-", input=b"keep; \xff")
    assert result.exit_code == 1 and "UTF-8" in result.stderr
