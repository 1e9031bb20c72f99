"""Mailbox quota values: [quota] in the config, the per-user values in users.ini
(accounts.py, read live) and `clevermail user quota|show|list --quota`."""

import pytest
from click.testing import CliRunner
from configobj import ConfigObj

from clevermail.accounts import UNSET, AccountError, AccountStore
from clevermail.passwords import hash_password
from clevermail.cli import main
from clevermail.config import ConfigError, load_config
from clevermail.store import MailStore
from clevermail.store.quota import QuotaLimits

ALICE = "alice@example.test"


@pytest.fixture
def runner():
    return CliRunner()


def users_file(tmp_path):
    # a pre-hashed account: scrypt per test is slow
    path = tmp_path / "users.ini"
    path.write_text(f"[{ALICE}]\npassword = {HASH}\n[bob@example.test]\npassword = {HASH}\n")
    return path


HASH = hash_password("pw")


@pytest.fixture
def cfg(tmp_path, write_config):
    users_file(tmp_path)
    return write_config(tmp_path, quota={"storage": "1M"})


def run(runner, cfg, *args):
    return runner.invoke(main, ["--config", cfg, *args], catch_exceptions=False)


def test_config_default_quota(tmp_path, make_config):
    assert make_config(tmp_path).quota == QuotaLimits(None, None)
    assert make_config(tmp_path, quota={"storage": "2G", "messages": "500"}).quota == \
        QuotaLimits(2 << 30, 500)
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, quota={"storage": "lots", "messages": "1k"})
    assert "[quota] storage: 'lots' is not a size" in str(err.value)
    assert "[quota] messages: '1k' is not a number of messages" in str(err.value)


def test_config_show_reads_back(runner, cfg, tmp_path):
    shown = run(runner, cfg, "config", "show").stdout
    assert "[quota]\nstorage = 1048576\nmessages = \"\"\n" in shown
    (tmp_path / "again.ini").write_text(shown)
    assert load_config(str(tmp_path / "again.ini")).quota == QuotaLimits(1 << 20, None)


def test_accounts_quota_values_live(tmp_path):
    users_file(tmp_path)
    reader = AccountStore(str(tmp_path / "users.ini"), ["example.test"])
    writer = AccountStore(str(tmp_path / "users.ini"), ["example.test"])
    assert reader.quota_of(ALICE) == (UNSET, UNSET)
    writer.set_quota(ALICE, storage=5000)
    assert reader.quota_of(ALICE) == (5000, UNSET)        # seen without a restart
    writer.set_quota(ALICE, messages=None)
    assert reader.quota_of(ALICE) == (5000, None)
    writer.set_quota(ALICE, storage=UNSET, messages=UNSET)
    assert reader.quota_of(ALICE) == (UNSET, UNSET)
    assert "quota" not in (tmp_path / "users.ini").read_text()
    with pytest.raises(AccountError):
        writer.set_quota(ALICE, storage=-1)
    with pytest.raises(AccountError):
        writer.set_quota(ALICE, disk=1)
    assert reader.authenticate(ALICE, "pw") is not None     # the password is untouched


def test_hand_edited_bad_value_means_the_default(tmp_path):
    path = users_file(tmp_path)
    path.write_text(path.read_text().replace("[bob@example.test]",
                                             "quota_storage = lots\nquota_messages = 7\n[bob@example.test]"))
    assert AccountStore(str(path), ["example.test"]).quota_of(ALICE) == (UNSET, 7)


def test_user_quota_set_and_show(runner, cfg, tmp_path):
    result = run(runner, cfg, "user", "quota", "alice", "--storage", "2G", "--messages", "100")
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"{ALICE}: storage 0 used, limit 2G (own); "
                             "messages 0 used, limit 100 (own)\n")
    section = ConfigObj(str(tmp_path / "users.ini"))[ALICE]
    assert section["quota_storage"] == str(2 << 30) and section["quota_messages"] == "100"
    bob = run(runner, cfg, "user", "quota", "bob")
    assert bob.stdout == ("bob@example.test: storage 0 used, limit 1M (default); "
                          "messages 0 used, limit none (default)\n")
    assert run(runner, cfg, "user", "quota", "alice", "--none").stdout.count("limit none (own)") == 2
    assert "(default)" in run(runner, cfg, "user", "quota", "alice", "--default").stdout
    assert "quota_" not in (tmp_path / "users.ini").read_text()


def test_user_quota_shows_usage(runner, cfg, tmp_path):
    MailStore(tmp_path / "data").deliver_local("", [ALICE], b"Subject: x\r\n\r\nbody\r\n")
    out = run(runner, cfg, "user", "show", "alice").stdout
    size = len(b"Return-Path: <>\nSubject: x\n\nbody\n")
    assert f"quota: storage {size} used, limit 1M (default); messages 1 used" in out
    assert out.startswith(f"address: {ALICE}\nmailbox: ")
    listed = run(runner, cfg, "user", "list", "--quota").stdout.splitlines()
    assert listed[0] == f"{ALICE}\tstorage {size} used, limit 1M (default); messages 1 used, limit none (default)"
    assert run(runner, cfg, "user", "list").stdout == f"{ALICE}\nbob@example.test\n"


@pytest.mark.parametrize("args, message", [
    (["alice", "--storage", "big"],
     "'big' is not a size (bytes, or a number with K, M, G or T; or none)"),
    (["alice", "--messages", "many"], "'many' is not a number of messages (or none)"),
    (["alice", "--none", "--storage", "1G"], "give --none, --default, or --storage/--messages"),
    (["nobody"], "no such account: nobody@example.test"),
])
def test_user_quota_errors(runner, cfg, tmp_path, args, message):
    before = (tmp_path / "users.ini").read_text()
    result = run(runner, cfg, "user", "quota", *args)
    assert result.exit_code == 1
    assert result.stderr == f"error: {message}\n"
    assert (tmp_path / "users.ini").read_text() == before
