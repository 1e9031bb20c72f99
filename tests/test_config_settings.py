"""Tests for the values clevermail.config hands out: the host:port type, the show and
defaults renderings (secrets masked), the typed Settings it returns
(clevermail.settings: listeners, limits, policies, relay settings) and the names
(domains, hostname).  Loading and its errors are in test_config.py."""

import dataclasses
import ipaddress
import os

import pytest

from clevermail import config as cfgmod
from clevermail.config import (ConfigError, default_hostname, format_config, load_config, masked,
                               read_config, render_defaults)
from clevermail.config_types import parse_hostport
from clevermail.netbase import Limits, SessionPolicy
from clevermail.relay.settings import RelaySettings

from config_helpers import comparable


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
    assert comparable(load_config(str(path))) == comparable(load_config(overrides=overrides))


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
    assert comparable(from_example) == comparable(defaults)


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
