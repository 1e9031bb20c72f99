"""relay.delivery: one attempt against sink servers on 127.0.0.1 (MX and smarthost)."""
import logging
import socket
import ssl

import dns.resolver
import pytest
import trustme

from clevermail.relay.delivery import deliver_mx, deliver_smarthost
from clevermail.relay.smtp_client import Result, Transport, enhanced_status
from relay_sink import FakeResolver, Sink, message, mx_zone

MSG = message(1)


class ConnectMap:
    """Worker connect seam: fake address -> port of a sink on 127.0.0.1. Unknown
    addresses are refused. `tried` lists the addresses in the order tried."""

    def __init__(self, mapping: dict[str, int]):
        self.mapping, self.tried = mapping, []

    def __call__(self, address: str, port: int, timeout: float) -> socket.socket:
        self.tried.append(address)
        if address not in self.mapping:
            raise ConnectionRefusedError(f"{address} refused (test)")
        return socket.create_connection(("127.0.0.1", self.mapping[address]), timeout)


def dead_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mx.there.test", "localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="module")
def client_tls(ca):
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def sinks():
    made = []

    def make(**kw):
        s = Sink(**kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def transport(port, records=None, **kw):
    return Transport(hostname="relay.here.test", resolver=FakeResolver(mx_zone(["there.test"]) if records is None else records),
                     port=port, timeout=5, command_timeout=5, **kw)


def states(results):
    return {a: r.state for a, r in results.items()}


def test_result_states_and_enhanced_status():
    assert [Result(c, "").state for c in (250, 451, 550, -1)] == ["delivered", "deferred", "failed", "deferred"]
    assert enhanced_status("550 5.1.1 no such user") == "5.1.1"
    assert enhanced_status("4.2.2 full") == "4.2.2"
    assert enhanced_status("550 go away") is None


def test_delivers_all_recipients_in_one_connection(sinks):
    s = sinks(size=10_000)
    res = deliver_mx(transport(s.port), "there.test", "a@here.test",
                     ["b@there.test", "c@there.test"], MSG)
    assert states(res) == {"b@there.test": "delivered", "c@there.test": "delivered"}
    assert res["b@there.test"].remote == f"mx.there.test[127.0.0.1]:{s.port}"
    [m] = s.messages
    assert len(s.sessions) == 1
    assert (m.sender, m.rcpts, m.data, m.helo) == ("a@here.test", ["b@there.test", "c@there.test"],
                                                   MSG, "relay.here.test")
    assert f"SIZE={len(MSG)}" in m.mail_params


def test_per_recipient_replies(sinks):
    s = sinks(rcpt={"later@there.test": (451, "4.2.1 greylisted"),
                    "gone@there.test": (550, "5.1.1 no such user")})
    res = deliver_mx(transport(s.port), "there.test", "a@here.test",
                     ["ok@there.test", "later@there.test", "gone@there.test"], MSG)
    assert states(res) == {"ok@there.test": "delivered", "later@there.test": "deferred",
                           "gone@there.test": "failed"}
    assert res["gone@there.test"].reply == "550 5.1.1 no such user"
    assert s.messages[0].rcpts == ["ok@there.test"]


def test_null_sender_and_no_accepted_recipient(sinks):
    s = sinks(rcpt=lambda a: (550, "5.1.1 nobody"))
    res = deliver_mx(transport(s.port), "there.test", "", ["x@there.test"], MSG)
    assert states(res) == {"x@there.test": "failed"}
    assert "DATA" not in s.sessions[0]["commands"] and s.messages == []


def test_mx_fallback_order_on_refusal_and_4xx(sinks):
    busy = sinks(greeting=(421, "4.3.2 too busy"))
    good = sinks()
    records = {"there.test": {"MX": ["10 mx1.there.test.", "20 mx2.there.test.", "30 mx3.there.test."]},
               "mx1.there.test": {"A": ["192.0.2.1"]},
               "mx2.there.test": {"A": ["192.0.2.2"]},
               "mx3.there.test": {"A": ["192.0.2.3"]}}
    t = transport(25, records)
    t.connect = ConnectMap({"192.0.2.2": busy.port, "192.0.2.3": good.port})
    res = deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG)
    assert states(res) == {"b@there.test": "delivered"}
    assert t.connect.tried == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert res["b@there.test"].remote.startswith("mx3.there.test[192.0.2.3]")
    assert len(good.messages) == 1 and busy.messages == []


def test_all_hosts_down_defers(sinks):
    t = transport(dead_port())
    res = deliver_mx(t, "there.test", "a@here.test", ["b@there.test"], MSG)
    assert states(res) == {"b@there.test": "deferred"}
    assert "4.4.1" in res["b@there.test"].reply


def test_5xx_greeting_is_skipped_and_defers(sinks):
    s = sinks(greeting=(554, "5.3.2 no service"))
    res = deliver_mx(transport(s.port), "there.test", "a@here.test", ["b@there.test"], MSG)
    assert states(res) == {"b@there.test": "deferred"}


def test_implicit_mx(sinks):
    s = sinks()
    records = {"there.test": {"A": ["127.0.0.1"]}}
    res = deliver_mx(transport(s.port, records), "there.test", "a@here.test", ["b@there.test"], MSG)
    assert states(res) == {"b@there.test": "delivered"}
    assert res["b@there.test"].remote.startswith("there.test[127.0.0.1]")


@pytest.mark.parametrize("records,expected", [
    ({"there.test": {"MX": ["0 ."]}}, "failed"),
    ({}, "failed"),
    ({"there.test": {"MX": dns.resolver.NoNameservers}}, "deferred"),
    ({"there.test": {"MX": dns.resolver.LifetimeTimeout}}, "deferred"),
    ({"there.test": {"MX": ["10 mx.there.test."]}, "mx.there.test": {"A": dns.resolver.LifetimeTimeout}},
     "deferred"),
])
def test_dns_outcomes(records, expected):
    res = deliver_mx(transport(dead_port(), records), "there.test", "a@here.test", ["b@there.test"], MSG)
    assert states(res) == {"b@there.test": expected}


@pytest.mark.parametrize("drop", ["greeting", "mail", "rcpt", "dot"])
def test_dropped_connection_defers(sinks, drop):
    s = sinks(drop=drop)
    res = deliver_mx(transport(s.port), "there.test", "a@here.test", ["b@there.test"], MSG)
    assert states(res) == {"b@there.test": "deferred"}


def test_drop_after_rcpt_keeps_per_recipient_failures(sinks):
    s = sinks(drop="dot", rcpt={"gone@there.test": (550, "5.1.1 no")})
    res = deliver_mx(transport(s.port), "there.test", "a@here.test",
                     ["b@there.test", "gone@there.test"], MSG)
    assert states(res) == {"b@there.test": "deferred", "gone@there.test": "failed"}


@pytest.mark.parametrize("mail,data,expected", [
    ((550, "5.7.1 sender rejected"), (250, "ok"), "failed"),
    ((451, "4.3.0 try later"), (250, "ok"), "deferred"),
    ((250, "ok"), (452, "4.3.1 full"), "deferred"),
    ((250, "ok"), (554, "5.6.0 spam"), "failed"),
])
def test_mail_and_data_replies(sinks, mail, data, expected):
    s = sinks(mail_reply=mail, data_reply=data)
    res = deliver_mx(transport(s.port), "there.test", "a@here.test", ["b@there.test"], MSG)
    assert states(res) == {"b@there.test": expected}


def test_size_limit_respected(sinks):
    s = sinks(size=10)
    res = deliver_mx(transport(s.port), "there.test", "a@here.test", ["b@there.test"], MSG)
    assert states(res) == {"b@there.test": "failed"} and "5.3.4" in res["b@there.test"].reply
    assert "MAIL" not in s.sessions[0]["commands"]


def test_smtputf8_needed_but_not_offered(sinks):
    s = sinks(smtputf8=False)
    res = deliver_mx(transport(s.port), "there.test", "a@here.test", ["jörg@there.test"], MSG)
    assert states(res) == {"jörg@there.test": "failed"} and "5.6.7" in res["jörg@there.test"].reply
    s2 = sinks()
    res = deliver_mx(transport(s2.port), "there.test", "a@here.test", ["jörg@there.test"], MSG)
    assert states(res) == {"jörg@there.test": "delivered"}
    assert "SMTPUTF8" in s2.messages[0].mail_params


def test_opportunistic_starttls(sinks, server_tls, client_tls):
    s = sinks(starttls=server_tls)
    res = deliver_mx(transport(s.port, tls_context=client_tls), "there.test", "a@here.test",
                     ["b@there.test"], MSG)
    assert states(res) == {"b@there.test": "delivered"}
    assert s.messages[0].tls is True
    assert res["b@there.test"].tls.verified == "ca"


def test_starttls_unverified_certificate_still_encrypts(sinks, server_tls, caplog):
    # Postfix "may": a certificate that does not verify gets TLS all the same, never
    # a cleartext resend (issue 14); the attempt records it as unverified.
    other = ssl.create_default_context()
    trustme.CA().configure_trust(other)         # does not trust the sink's CA
    s = sinks(starttls=server_tls)
    with caplog.at_level(logging.INFO, "clevermail.relay"):
        res = deliver_mx(transport(s.port, tls_context=other), "there.test", "a@here.test",
                         ["b@there.test"], MSG, qid="QTLS")
    assert states(res) == {"b@there.test": "delivered"}
    assert s.messages[0].tls is True and len(s.sessions) == 2
    assert res["b@there.test"].tls.verified == "none" and res["b@there.test"].tls.version
    assert not any("without TLS" in r.getMessage() for r in caplog.records)


def test_smarthost_starttls_auth(sinks, server_tls, client_tls, caplog):
    s = sinks(starttls=server_tls, auth=("relayuser", "s3cret-pw"))
    t = transport(1, {}, tls_context=client_tls)
    with caplog.at_level(logging.DEBUG):
        res = deliver_smarthost(t, "a@here.test", ["b@there.test", "c@else.test"], MSG,
                                host="127.0.0.1", port=s.port, tls="starttls",
                                user="relayuser", password="s3cret-pw")
    assert states(res) == {"b@there.test": "delivered", "c@else.test": "delivered"}
    [m] = s.messages
    assert m.tls and m.auth == "relayuser" and m.rcpts == ["b@there.test", "c@else.test"]
    assert "s3cret-pw" not in caplog.text


def test_smarthost_implicit_tls(sinks, server_tls, client_tls):
    s = sinks(implicit=server_tls, auth=("u", "p"))
    res = deliver_smarthost(transport(1, {}, tls_context=client_tls), "a@here.test", ["b@there.test"],
                            MSG, host="127.0.0.1", port=s.port, tls="implicit", user="u", password="p")
    assert states(res) == {"b@there.test": "delivered"} and s.messages[0].tls


def test_smarthost_bad_password_defers_and_is_not_logged(sinks, server_tls, client_tls, caplog):
    s = sinks(starttls=server_tls, auth=("u", "right"))
    with caplog.at_level(logging.DEBUG):
        res = deliver_smarthost(transport(1, {}, tls_context=client_tls), "a@here.test",
                                ["b@there.test"], MSG, host="127.0.0.1", port=s.port,
                                user="u", password="wrong-pass-xyz")
    assert states(res) == {"b@there.test": "deferred"} and "535" in res["b@there.test"].reply
    assert "wrong-pass-xyz" not in caplog.text and s.messages == []


def test_smarthost_requires_starttls(sinks):
    s = sinks(auth=("u", "p"))          # offers no STARTTLS
    res = deliver_smarthost(transport(1, {}), "a@here.test", ["b@there.test"], MSG,
                            host="127.0.0.1", port=s.port, user="u", password="p")
    assert states(res) == {"b@there.test": "deferred"} and "STARTTLS" in res["b@there.test"].reply
    assert s.sessions[0]["auth"] is None and "AUTH" not in s.sessions[0]["commands"]


def test_smarthost_plain_without_auth(sinks):
    s = sinks()
    res = deliver_smarthost(transport(1, {}), "a@here.test", ["b@there.test"], MSG,
                            host="127.0.0.1", port=s.port, tls="none")
    assert states(res) == {"b@there.test": "delivered"}


def test_unsafe_addresses_never_reach_the_wire(sinks):
    s = sinks()
    res = deliver_mx(transport(s.port), "there.test", "a@here.test",
                     ["ok@there.test", "x\r\nRSET@there.test", "<y>@there.test"], MSG)
    assert states(res) == {"ok@there.test": "delivered", "x\r\nRSET@there.test": "failed",
                           "<y>@there.test": "failed"}
    assert s.messages[0].rcpts == ["ok@there.test"]
    res = deliver_smarthost(transport(1, {}), "a\r\n@here.test", ["b@there.test"], MSG,
                            host="127.0.0.1", port=s.port, tls="none")
    assert states(res) == {"b@there.test": "failed"} and "5.1.7" in res["b@there.test"].reply


def test_smarthost_tls_mode_checked():
    with pytest.raises(ValueError):
        deliver_smarthost(transport(1, {}), "a@x", ["b@y"], MSG, host="h", tls="maybe")
