"""Tests for clevermail.cli with click's CliRunner: --version, config check/show,
start's process tuning, and the one-line errors (all or nothing, which files are named);
the user commands are in test_cli_users.py (start itself runs as a real process in
test_service.py)."""

import os

from clevermail import __version__
from clevermail.config import render_defaults

from cli_helpers import accounts, cfg, run, runner, with_mail  # noqa: F401 (fixtures)


def test_version(runner):
    result = run(runner, None, "--version")
    assert result.exit_code == 0
    assert result.output == f"clevermail, version {__version__}\n"


# -- config -----------------------------------------------------------------------------------
def test_config_check_ok(runner, cfg):
    result = run(runner, cfg, "config", "check")
    assert result.exit_code == 0
    assert result.stdout == "config ok\n"


def test_config_check_lists_every_problem(runner, tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text("[limits]\nmessage_size = big\nrecipients = 0\n[smtp]\nlisten = nowhere\n[nope]\n")
    result = run(runner, None, "config", "check", str(bad))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 4
    assert all(line.startswith(f"{bad}: ") for line in lines)
    assert "[limits] message_size:" in result.stderr
    assert "[limits] recipients:" in result.stderr
    assert "[smtp] listen:" in result.stderr
    assert f"{bad}: [nope]: unknown section" in lines
    assert "Traceback" not in result.output


def test_config_check_missing_file(runner, tmp_path):
    result = run(runner, None, "config", "check", str(tmp_path / "none.ini"))
    assert result.exit_code == 1
    assert result.stderr == f"{tmp_path / 'none.ini'}: file not found\n"


def test_config_check_uses_env(runner, tmp_path):
    bad = tmp_path / "env.ini"
    bad.write_text("[limits]\nrecipients = -1\n")
    result = run(runner, None, "config", "check", env={"CLEVERMAIL_CONFIG": str(bad)})
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{bad}: [limits] recipients:")


def test_bad_config_stops_any_command(runner, tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text("[server]\nlog_level = LOUD\n[limits]\nrecipients = 0\n")
    result = run(runner, str(bad), "user", "list")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f'config error: {bad}: [limits] recipients: the value "0" is too small.',
        f'config error: {bad}: [server] log_level: the value "LOUD" is unacceptable.',
    ]


def test_missing_config_file_is_one_line(runner, tmp_path):
    result = run(runner, str(tmp_path / "missing.ini"), "user", "list")
    assert result.exit_code == 2
    assert result.stderr == f"config error: {tmp_path / 'missing.ini'}: file not found\n"


def test_config_show_masks_secrets(runner, tmp_path, write_config):
    cfg = write_config(tmp_path, relay={"smarthost": "relay.example:587", "smarthost_password": "hunter2"})
    result = run(runner, cfg, "config", "show")
    assert result.exit_code == 0
    assert "hunter2" not in result.output
    assert "smarthost_password = ********" in result.stdout
    assert f"data_dir = {tmp_path / 'data'}" in result.stdout
    assert "listen = 127.0.0.1:0," in result.stdout
    assert "[limits]" in result.stdout


def test_config_show_defaults(runner):
    result = run(runner, None, "config", "show", "--defaults")
    assert result.exit_code == 0
    assert result.stdout == render_defaults() + "\n"


def test_config_show_without_file_is_the_defaults(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(runner, None, "config", "show")
    assert result.exit_code == 0
    assert "listen = 127.0.0.1:2525," in result.stdout
    assert "listen = 127.0.0.1:1110," in result.stdout
    assert "listen = 127.0.0.1:1143," in result.stdout
    assert f"data_dir = {tmp_path / 'maildata'}" in result.stdout


# -- user add -------------------------------------------------------------------------------------
def test_start_tunes_the_process_before_starting_the_service(runner, cfg, monkeypatch):
    """`clevermail start` is the one caller of process.tune_process and process.place,
    before the service starts.  Tuning, logging set-up, signal handlers and the service are stand-ins here,
    so this test process is left as it is."""
    import signal

    from clevermail import logs, process, service

    events = []

    class Service:
        def __init__(self, settings, inherited=(), board=None):
            events.append(("service", settings.source))

        def start(self):
            events.append("start")
            raise service.StartupError("stand-in")

    monkeypatch.setattr(process, "tune_process", lambda: events.append("tune"))
    # keeping to one CPU would keep this test process (and the rest of the suite) there
    monkeypatch.setattr(process, "place", lambda mode, index, cpus: events.append(("place", mode, index)))
    monkeypatch.setattr(logs, "setup_logging", lambda *a, **kw: None)
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    monkeypatch.setattr(service, "MailService", Service)
    result = run(runner, cfg, "start")
    assert result.exit_code == 1 and "cannot start: stand-in" in result.stderr
    assert events == ["tune", ("place", "auto", 0), ("service", cfg), "start"]


# -- never a traceback, all or nothing, which files ---------------------------------------------
def _one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert result.stdout == "" or result.stdout.startswith("Password")
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_user_add_with_an_unwritable_users_file_leaves_no_mailbox(runner, tmp_path, write_config):
    (tmp_path / "not-a-dir").write_text("a file where the users file's folder should be")
    users = tmp_path / "not-a-dir" / "users.ini"
    cfg = write_config(tmp_path, server={"users_file": str(users)})
    result = run(runner, cfg, "user", "add", "joe", "--password-stdin", input="pw\n")
    _one_line_error(result, "cannot add joe@example.test: cannot write the users file", str(users))
    assert not (tmp_path / "data" / "mail" / "example.test").exists()
    assert os.listdir(tmp_path / "data" / "mail") == []


def test_user_add_with_an_unusable_data_dir_adds_no_account(runner, tmp_path, write_config):
    (tmp_path / "blocker").write_text("x")
    cfg = write_config(tmp_path, server={"data_dir": str(tmp_path / "blocker" / "data")})
    result = run(runner, cfg, "user", "add", "joe", "--password-stdin", input="pw\n")
    _one_line_error(result, "cannot use the data directory", "blocker")
    assert not (tmp_path / "users.ini").exists()
    assert run(runner, cfg, "user", "list").stdout == ""


def test_user_add_whose_mailbox_cannot_be_made_adds_no_account(runner, cfg, tmp_path):
    mail = tmp_path / "data" / "mail"
    mail.mkdir(parents=True)
    (mail / "example.test").write_text("a file where the domain's folder should be")
    result = run(runner, cfg, "user", "add", "joe", "--password-stdin", input="pw\n")
    _one_line_error(result, "cannot add joe@example.test: cannot write the mailbox of joe@example.test")
    assert accounts(tmp_path).list() == []
    assert (mail / "example.test").is_file()                     # not ours: left alone


def test_user_add_keeps_the_mail_of_an_earlier_account_when_it_fails(runner, cfg, tmp_path):
    root = with_mail(runner, cfg, tmp_path)
    run(runner, cfg, "user", "del", "alice", "--keep-mail")
    (tmp_path / "users.ini.lock").unlink()
    (tmp_path / "users.ini.lock").mkdir()                        # the users file cannot be locked now
    result = run(runner, cfg, "user", "add", "alice", "--password-stdin", input="pw\n")
    _one_line_error(result, "cannot write the users file")
    assert len(os.listdir(os.path.join(root, "new"))) == 1       # the kept mail is still there


def test_passwd_and_del_with_an_unwritable_users_file_are_one_line_errors(runner, cfg, tmp_path):
    run(runner, cfg, "user", "add", "alice", "--password-stdin", input="pw\n")
    (tmp_path / "users.ini.lock").unlink()
    (tmp_path / "users.ini.lock").mkdir()
    _one_line_error(run(runner, cfg, "user", "passwd", "alice", "--password-stdin", input="new\n"),
                    f"cannot write the users file {tmp_path / 'users.ini'}")
    _one_line_error(run(runner, cfg, "user", "del", "alice", "--yes"), "cannot write the users file")
    assert accounts(tmp_path).authenticate("alice", "pw") is not None


def test_user_add_empty_password_at_the_prompt_is_refused_with_a_message(runner, cfg, tmp_path):
    result = run(runner, cfg, "user", "add", "dave", input="\n\n")
    assert result.exit_code == 1 and result.stderr == "error: empty password\n"
    assert accounts(tmp_path).list() == []
    assert not (tmp_path / "data" / "mail" / "example.test" / "dave").exists()


def test_user_changes_are_in_the_admin_log(runner, tmp_path, write_config):
    log_file = tmp_path / "clevermail.log"
    cfg = write_config(tmp_path, server={"log_file": str(log_file)})
    run(runner, cfg, "user", "add", "amy", "--password-stdin", input="pw\n")
    run(runner, cfg, "user", "passwd", "amy", "--password-stdin", input="pw2\n")
    run(runner, cfg, "user", "del", "amy", "--yes")
    lines = [line.split(" clevermail.admin: ")[1] for line in log_file.read_text().splitlines()]
    assert [line.split(" by uid=")[0] for line in lines] == [
        "amy@example.test: account added", "amy@example.test: password changed",
        "amy@example.test: account and mail deleted"]
    assert "pw" not in log_file.read_text().replace("passwd", "")


def test_without_config_the_files_in_use_are_named_on_stderr(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLEVERMAIL_CONFIG", raising=False)
    result = run(runner, None, "user", "list")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == (f"using built-in defaults (no --config, no CLEVERMAIL_CONFIG): users file "
                             f"{tmp_path / 'users.ini'}, data {tmp_path / 'maildata'}\n")
    assert run(runner, None, "queue", "list").stderr == result.stderr


def test_with_a_config_nothing_extra_is_said(runner, cfg, monkeypatch):
    assert run(runner, cfg, "user", "list").stderr == ""
    monkeypatch.setenv("CLEVERMAIL_CONFIG", cfg)
    assert run(runner, None, "user", "list").stderr == ""
