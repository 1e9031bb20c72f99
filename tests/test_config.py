"""Tests for clevermail.config: the one configspec, load_config and the typed Settings it
returns (clevermail.settings), misspelt keys, the host:port types, its error report, and
the show/defaults renderings."""

import dataclasses
import ipaddress
import os

import pytest

from clevermail import config as cfgmod
from clevermail.config import (CONFIG_ENV, ConfigError, default_hostname, format_config, load_config,
                               masked, read_config, render_defaults)
from clevermail.config_types import parse_hostport
from clevermail.netbase import Limits, SessionPolicy
from clevermail.relay.settings import RelaySettings
from clevermail.settings import Listener


def _comparable(settings):
    return dataclasses.replace(settings, source="")


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
    assert _comparable(from_file) == _comparable(from_dict)


# -- hostport --------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:25", ("127.0.0.1", 25)),
    (" mail.example:587 ", ("mail.example", 587)),
    ("[::1]:143", ("::1", 143)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
])
def test_parse_hostport(text, expected):
    assert parse_hostport(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("192.0.2.53", ("192.0.2.53", 53)), ("192.0.2.53:5353", ("192.0.2.53", 5353)),
    ("2001:db8::53", ("2001:db8::53", 53)), ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
    ("[::1]", ("::1", 53)), ("ns.example", ("ns.example", 53)),
])
def test_parse_hostport_with_a_default_port(text, expected):
    assert parse_hostport(text, default_port=53) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", "::1:25", "[::1]25", ":25", "host:port", "host:65536", "host:-1", "[]:1"])
def test_parse_hostport_rejects(text):
    with pytest.raises(ValueError):
        parse_hostport(text)


# -- show / defaults ----------------------------------------------------------------------------
def test_masked_hides_secret_and_leaves_original():
    conf = read_config(overrides={"relay": {"smarthost": "relay.example:587", "smarthost_password": "hunter2"}})
    shown = masked(conf)
    assert shown["relay"]["smarthost_password"] == "********"
    assert conf["relay"]["smarthost_password"] == "hunter2"
    text = format_config(conf)
    assert "hunter2" not in text
    assert "smarthost_password = ********" in text
    settings = load_config(overrides={"relay": {"smarthost": "relay.example:587", "smarthost_password": "hunter2"}})
    assert settings.relay.smarthost_password == "hunter2"
    assert "hunter2" not in repr(settings)              # settings may be logged whole


def test_format_config_reloads_to_the_same_config(tmp_path):
    overrides = {
        "server": {"data_dir": str(tmp_path / "d"), "users_file": str(tmp_path / "u.ini"), "hostname": "h.example",
                   "trusted_networks": ["10.0.0.0/8"], "domains": ["a.example", "b.example"]},
        "smtp": {"listen": ["127.0.0.1:25", "[::1]:25"]},
        "relay": {"nameservers": ["127.0.0.1:53", "::1"], "smarthost": "[::1]:2525", "delay_warning": 60}}
    path = tmp_path / "shown.ini"
    path.write_text(format_config(read_config(overrides=overrides)))
    assert _comparable(load_config(str(path))) == _comparable(load_config(overrides=overrides))


def test_render_defaults_is_documented_and_loads_to_the_defaults(tmp_path, monkeypatch):
    text = render_defaults()
    spec = cfgmod._spec()
    for section in spec.sections:
        assert f"[{section}]" in text
        for key in spec[section].scalars:
            assert f"\n{key} = " in text, key
    # the help text of a key precedes it
    assert "# Largest message accepted (bytes)" in text
    assert text.index("# Largest message accepted") < text.index("message_size = 26214400")
    path = tmp_path / "example.ini"
    path.write_text(text)
    monkeypatch.chdir(tmp_path)
    from_example = load_config(str(path))
    defaults = load_config()
    assert _comparable(from_example) == _comparable(defaults)


def test_paths_resolved_absolute_without_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    conf = load_config(overrides={"server": {"data_dir": "rel/data", "log_file": "logs/cm.log"}})
    assert conf.server.data_dir == os.path.join(str(tmp_path), "rel", "data")
    assert conf.server.log_file == os.path.join(str(tmp_path), "logs", "cm.log")


# -- the typed settings -----------------------------------------------------------------------
def test_settings_per_layer(tmp_path):
    conf = load_config(overrides={
        "server": {"data_dir": str(tmp_path / "d"), "hostname": "mx.example", "allow_plaintext_auth": True,
                   "trusted_networks": ["192.0.2.0/24"]},
        "smtp": {"submission_listen": ["127.0.0.1:0"], "submissions_listen": ["[::1]:0"]},
        "pop3": {"tls_listen": ["127.0.0.1:0"]},
        "tls": {"certificate": "/c.pem", "key": "/k.pem"},
        "limits": {"smtp_timeout": 10, "pop3_timeout": 20, "imap_timeout": 30, "recipients": 5,
                   "auth_failure_delay": 0.5, "auth_failures_per_client": 3, "auth_failure_window": 60},
        "relay": {"smarthost": "relay.example:587", "smarthost_user": "u", "smarthost_password": "p",
                  "smarthost_tls": "implicit", "retry_schedule": [60, 120], "queue_lifetime": 3600,
                  "delay_warning": 600, "concurrency": 2, "connect_timeout": 5, "interval": 1,
                  "mx_port": 2525, "nameservers": ["192.0.2.53"]},
    })
    assert {p: l.timeout for p, l in conf.limits.items()} == {"smtp": 10, "pop3": 20, "imap": 30,
                                                             "managesieve": 600}
    assert conf.limits["pop3"] == Limits(message_size=26214400, recipients=5, connections=1000,
                                         connections_per_client=50, timeout=20, auth_failure_delay=0.5,
                                         errors_per_session=20)
    assert conf.policy == SessionPolicy(allow_plaintext_auth=True,
                                        trusted_networks=(ipaddress.ip_network("192.0.2.0/24"),))
    assert (conf.login.failures_per_client, conf.login.failure_window) == (3, 60)
    assert conf.relay == RelaySettings(
        hostname="mx.example", interval=1, mx_port=2525, nameservers=(("192.0.2.53", 53),),
        retry_schedule=(60, 120), queue_lifetime=3600, delay_warning=600,
        smarthost=("relay.example", 587), smarthost_user="u", smarthost_password="p",
        smarthost_tls="implicit", concurrency=2, connect_timeout=5,
        mta_sts_cache=str(tmp_path / "d" / "mta-sts"))
    assert [(l.kind, l.protocol, l.address, l.implicit_tls) for l in conf.listeners] == [
        ("smtp", "smtp", ("127.0.0.1", 2525), False),
        ("submission", "smtp", ("127.0.0.1", 0), False),
        ("submissions", "smtp", ("::1", 0), True),
        ("pop3", "pop3", ("127.0.0.1", 1110), False),
        ("pop3s", "pop3", ("127.0.0.1", 0), True),
        ("imap", "imap", ("127.0.0.1", 1143), False)]
    assert (conf.server.certificate, conf.server.key) == ("/c.pem", "/k.pem")


def test_relay_settings_empty_values_mean_none():
    relay = load_config(overrides={"relay": {"delay_warning": 0, "smarthost_user": "", "smarthost_password": ""}}).relay
    assert relay.delay_warning is None and relay.smarthost_user is None and relay.smarthost_password is None


def test_settings_are_frozen_and_misspelt_fields_fail():
    conf = load_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        conf.limits["smtp"].timeout = 1
    with pytest.raises(TypeError):
        conf.limits["smtp"] = Limits()                  # a read-only mapping
    with pytest.raises(TypeError):
        Limits(timout=5)
    with pytest.raises(TypeError):
        SessionPolicy(allow_plain_auth=True)
    with pytest.raises(TypeError):
        RelaySettings(hostname="h", smart_host=("a", 25))


@pytest.mark.parametrize("kw, fragment", [
    ({"smarthost_tls": "sometimes"}, "smarthost_tls"),
    ({"retry_schedule": ()}, "retry_schedule"),
    ({"concurrency": 0}, "concurrency"),
])
def test_relay_settings_checks_its_values(kw, fragment):
    with pytest.raises(ValueError, match=fragment):
        RelaySettings(hostname="h", **kw)


@pytest.mark.parametrize("text, problem", [
    ("[limits]\nmesage_size = 4096\n", "[limits] mesage_size: unknown key (did you mean 'message_size'?)"),
    ("[limit]\nmessage_size = 4096\n", "[limit]: unknown section (did you mean 'limits'?)"),
    ("[relay]\nsmarthost_pasword = x\n", "[relay] smarthost_pasword: unknown key (did you mean 'smarthost_password'?)"),
    ("[server]\nzzz = 1\n", "[server] zzz: unknown key"),
    ("hostname = x\n[server]\n", "top level: hostname: unknown key (keys belong in a [section])"),
])
def test_misspelt_key_in_a_file_names_file_section_and_key(tmp_path, text, problem):
    path = tmp_path / "typo.ini"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert info.value.problems == [f"{path}: {problem}"]


@pytest.mark.parametrize("schedule, problem", [
    ([], 'the value "[]" is too short.'),
    ([60, 0], "every delay is at least 1 second"),
])
def test_retry_schedule_is_checked_at_load(schedule, problem):
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"relay": {"retry_schedule": schedule}})
    assert info.value.problems == [f"<defaults>: [relay] retry_schedule: {problem}"]


def test_misspelt_section_in_overrides():
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"limit": {"message_size": 4096}})
    assert info.value.problems == ["<defaults>: [limit]: unknown section (did you mean 'limits'?)"]


# -- names: domains, hostname ------------------------------------------------------
@pytest.mark.parametrize("fqdn, hostname, expected", [
    ("mail.example.org", "mail", "mail.example.org"),       # the FQDN when there is one
    ("localhost", "vm1", "vm1"),                             # /etc/hosts maps the name to localhost
    ("localhost.localdomain", "box.example.org", "box.example.org"),
    ("localhost", "localhost", "localhost"),                 # nothing better: config check warns
])
def test_default_hostname_falls_back_to_the_host_name(monkeypatch, fqdn, hostname, expected):
    monkeypatch.setattr(cfgmod.socket, "getfqdn", lambda: fqdn)
    monkeypatch.setattr(cfgmod.socket, "gethostname", lambda: hostname)
    assert default_hostname() == expected
    assert load_config(overrides={"server": {"hostname": ""}}).server.hostname == expected


@pytest.mark.parametrize("server, fragment", [
    ({"domains": ["exa mple"]}, "[server] domains: invalid domain 'exa mple'"),
    ({"domains": ["example.test", "-bad.test"]}, "[server] domains: invalid domain '-bad.test'"),
    ({"domains": ["a" * 64 + ".test"]}, "[server] domains: invalid domain"),
    ({"domains": ["xn--a.test"]}, "[server] domains: invalid"),                # not a valid A-label
    ({"hostname": "bad host name!"}, "[server] hostname: invalid host name 'bad host name!'"),
    ({"hostname": "mail_1.example.test"}, "[server] hostname: invalid host name"),
    ({"hostname": "mäil.example.test"}, "write it as 'xn--mil-qla.example.test'"),
])
def test_bad_domain_and_host_names_are_config_errors(server, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"server": server})
    assert any(fragment in p for p in info.value.problems), info.value.problems


def test_good_names_pass_in_any_spelling():
    conf = load_config(overrides={"server": {"domains": ["Bücher.example", "example.test.", "localhost"],
                                             "hostname": "MX1.example.test"}})
    assert conf.server.hostname == "MX1.example.test"
