"""Tests for clevermail.config: the one configspec's defaults, load_config and which
file it reads (the option, the environment, none), misspelt keys and its error report
(all at once, with file, section, key and why), and the overrides tests build their
config with.  The typed values and renderings are in test_config_settings.py."""

import ipaddress

import pytest

from clevermail import config as cfgmod
from clevermail.config import CONFIG_ENV, ConfigError, default_hostname, load_config
from clevermail.netbase import SessionPolicy
from clevermail.settings import Listener

from config_helpers import comparable


# -- defaults ----------------------------------------------------------------------
def test_defaults_without_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    conf = load_config()
    assert conf.source == "<defaults>"
    assert conf.server.data_dir == str(tmp_path / "maildata")
    assert conf.server.users_file == str(tmp_path / "users.ini")
    assert conf.server.domains == ("localhost",)
    assert conf.server.hostname == default_hostname() != ""
    assert conf.listeners == (Listener("smtp", "smtp", ("127.0.0.1", 2525), False),
                              Listener("pop3", "pop3", ("127.0.0.1", 1110), False),
                              Listener("imap", "imap", ("127.0.0.1", 1143), False))
    assert conf.policy == SessionPolicy(allow_plaintext_auth=False, trusted_networks=())
    assert conf.limits["smtp"].message_size == 26214400
    assert conf.limits["smtp"].auth_failure_delay == 1.5
    assert conf.relay.retry_schedule == (300, 600, 1200, 2400, 4800, 9600, 14400)
    assert conf.relay.nameservers == () and conf.relay.smarthost is None
    assert conf.server.certificate == conf.server.key == ""
    assert conf.server.log_file == ""


def test_every_spec_key_has_a_default():
    spec = cfgmod._spec()
    for section in spec.sections:
        for key in spec[section].scalars:
            assert "default=" in spec[section][key], (section, key)


# -- selecting a file --------------------------------------------------------------------
def test_file_values_and_relative_paths(tmp_path):
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "cm.ini"
    path.write_text("[server]\ndata_dir = spool\nusers_file = ../accounts.ini\ndomains = B.Example, c.example\n"
                    "hostname = mx.b.example\n[smtp]\nlisten = 0.0.0.0:25, [::1]:2525\n"
                    "[limits]\nmessage_size = 4096\n")
    conf = load_config(str(path))
    assert conf.source == str(path)
    assert conf.server.data_dir == str(folder / "spool")
    assert conf.server.users_file == str(tmp_path / "accounts.ini")
    assert conf.server.domains == ("b.example", "c.example")
    assert conf.server.hostname == "mx.b.example" == conf.relay.hostname
    assert [(l.kind, l.address) for l in conf.listeners] == [
        ("smtp", ("0.0.0.0", 25)), ("smtp", ("::1", 2525)),
        ("pop3", ("127.0.0.1", 1110)),                      # untouched keys keep defaults
        ("imap", ("127.0.0.1", 1143))]
    assert all(limits.message_size == 4096 for limits in conf.limits.values())


def test_env_selects_file(tmp_path, monkeypatch):
    path = tmp_path / "env.ini"
    path.write_text("[server]\ndomains = env.example,\n")
    monkeypatch.setenv(CONFIG_ENV, str(path))
    conf = load_config()
    assert conf.source == str(path)
    assert conf.server.domains == ("env.example",)


def test_explicit_path_beats_env(tmp_path, monkeypatch):
    (tmp_path / "env.ini").write_text("[server]\ndomains = env.example,\n")
    (tmp_path / "arg.ini").write_text("[server]\ndomains = arg.example,\n")
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "env.ini"))
    assert load_config(str(tmp_path / "arg.ini")).server.domains == ("arg.example",)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "nope.ini"))
    assert info.value.problems == [f"{tmp_path / 'nope.ini'}: file not found"]


def test_env_pointing_at_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "gone.ini"))
    with pytest.raises(ConfigError) as info:
        load_config()
    assert info.value.problems == [f"{tmp_path / 'gone.ini'}: file not found"]


# -- errors: all at once, with file, section, key, why ---------------------------------
def test_every_problem_listed_at_once(tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text("[server]\nlog_level = LOUD\n[limits]\nmessage_size = abc\nrecipients = 0\nextra = 1\n"
                    "[bogus]\nx = 1\n[smtp]\nlisten = 1.2.3.4\n[relay]\nmx_port = 70000\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    problems = info.value.problems
    assert len(problems) == 7, problems
    assert all(p.startswith(f"{path}: ") for p in problems)
    text = "\n".join(problems)
    assert f'{path}: [limits] message_size: the value "abc" is of the wrong type.' in problems
    assert f'{path}: [limits] recipients: the value "0" is too small.' in problems
    assert f'{path}: [server] log_level: the value "LOUD" is unacceptable.' in problems
    assert f'{path}: [relay] mx_port: the value "70000" is too big.' in problems
    assert f"{path}: [bogus]: unknown section" in problems
    assert f"{path}: [limits] extra: unknown key" in problems
    assert "[smtp] listen:" in text and "not host:port" in text
    assert str(info.value) == text


def test_several_parse_errors_each_listed(tmp_path):
    path = tmp_path / "broken.ini"
    path.write_text("[server]\nfoo\nbar\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    problems = info.value.problems
    assert len(problems) == 2
    assert "line 2" in problems[0] and "'foo'" in problems[0]
    assert "line 3" in problems[1] and "'bar'" in problems[1]
    assert all(p.startswith(f"{path}: ") for p in problems)


def test_duplicate_key_is_a_problem_not_a_traceback(tmp_path):
    path = tmp_path / "dup.ini"
    path.write_text("[server]\nhostname = a\nhostname = b\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert len(info.value.problems) == 1
    assert "Duplicate keyword name at line 3" in info.value.problems[0]


@pytest.mark.parametrize("text, fragment", [
    ("[tls]\ncertificate = /x.pem\n", "[tls]: certificate and key must be set together"),
    ("[imap]\ntls_listen = 127.0.0.1:993,\n", "[imap] tls_listen: TLS listeners need [tls] certificate and key"),
    ("[relay]\nsmarthost = nohostport\n", "[relay] smarthost: 'nohostport' is not host:port"),
    ("[relay]\nsmarthost = relay.example:0\n", "[relay] smarthost: 'relay.example:0' has no valid port"),
    ("[relay]\nsmarthost = a.example:25, b.example:25\n", "[relay] smarthost: one host:port is needed"),
    ("[relay]\nnameservers = 8.8.8.8, not-an-ip\n", "[relay] nameservers: 'not-an-ip' is not an address"),
    ('[server]\ndomains = ""\n', "[server] domains: at least one local domain is needed"),
])
def test_cross_key_and_typed_value_rules(tmp_path, text, fragment):
    path = tmp_path / "sem.ini"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"{path}: ")
    assert fragment in info.value.problems[0]


def test_nameservers_accepted_forms(tmp_path):
    path = tmp_path / "ns.ini"
    path.write_text("[relay]\nnameservers = 127.0.0.1:5353, [::1]:53, 10.0.0.1, 2001:db8::53, [::1]\n")
    assert load_config(str(path)).relay.nameservers == (
        ("127.0.0.1", 5353), ("::1", 53), ("10.0.0.1", 53), ("2001:db8::53", 53), ("::1", 53))


@pytest.mark.parametrize("spec", ["ns.example.com", "1.2.3.4:0", "1.2.3.4:x", "[::1", "[::1]x"])
def test_nameservers_rejected_forms(spec):
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"relay": {"nameservers": [spec]}})
    assert info.value.problems == [f"<defaults>: [relay] nameservers: {spec!r} is not an address or address:port"]


def test_smarthost_is_a_host_port_tuple():
    assert load_config(overrides={"relay": {"smarthost": "relay.example:587"}}).relay.smarthost == ("relay.example", 587)
    assert load_config(overrides={"relay": {"smarthost": "[2001:db8::25]:25"}}).relay.smarthost == ("2001:db8::25", 25)
    assert load_config(overrides={"relay": {"smarthost": ""}}).relay.smarthost is None


def test_trusted_networks_parsed(tmp_path):
    path = tmp_path / "tn.ini"
    path.write_text("[server]\ntrusted_networks = 10.0.0.0/8, 192.168.1.7, fd00::/8\n")
    nets = load_config(str(path)).policy.trusted_networks
    assert nets == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.168.1.7/32"),
                    ipaddress.ip_network("fd00::/8"))


def test_bad_network(tmp_path):
    path = tmp_path / "tn.ini"
    path.write_text("[server]\ntrusted_networks = 10.0.0.0/33\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert len(info.value.problems) == 1 and "[server] trusted_networks:" in info.value.problems[0]


# -- overrides (how tests build config) ----------------------------------------------------
def test_overrides_merge_over_file(tmp_path):
    path = tmp_path / "o.ini"
    path.write_text("[limits]\nrecipients = 5\nmessage_size = 4096\n")
    conf = load_config(str(path), overrides={"limits": {"recipients": "7"}, "smtp": {"listen": ["127.0.0.1:0"]}})
    assert conf.limits["smtp"].recipients == 7
    assert conf.limits["smtp"].message_size == 4096
    assert conf.listeners[0] == Listener("smtp", "smtp", ("127.0.0.1", 0), False)


def test_overrides_are_validated(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"limits": {"recipients": 0, "nonsense": 1}})
    assert sorted(info.value.problems) == sorted([
        '<defaults>: [limits] recipients: the value "0" is too small.',
        "<defaults>: [limits] nonsense: unknown key"])


def test_make_config_fixture(tmp_path, make_config):
    conf = make_config(tmp_path, limits={"message_size": 4096})
    assert conf.server.data_dir == str(tmp_path / "data")
    assert conf.server.users_file == str(tmp_path / "users.ini")
    assert [(l.kind, l.address) for l in conf.listeners] == [
        ("smtp", ("127.0.0.1", 0)), ("pop3", ("127.0.0.1", 0)), ("imap", ("127.0.0.1", 0))]
    assert all(limits.auth_failure_delay == 0 for limits in conf.limits.values())
    assert conf.limits["imap"].message_size == 4096


def test_make_config_fixture_rejects_a_misspelt_key(tmp_path, make_config):
    with pytest.raises(ConfigError) as info:
        make_config(tmp_path, limits={"mesage_size": 4096})
    assert info.value.problems == [
        "<defaults>: [limits] mesage_size: unknown key (did you mean 'message_size'?)"]


def test_write_config_fixture_round_trips(tmp_path, make_config, write_config):
    path = write_config(tmp_path, smtp={"submission_listen": []}, server={"allow_plaintext_auth": True})
    from_file = load_config(path)
    from_dict = make_config(tmp_path, server={"allow_plaintext_auth": True})
    assert comparable(from_file) == comparable(from_dict)
