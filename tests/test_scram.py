"""SCRAM-SHA-256 (RFC 5802, RFC 7677) on the server side, pure: the RFC 7677 test
vector against clevermail/scram.py, the keys users.ini keeps, SASLprep (RFC 4013),
and every way a hostile client can break an exchange.  The client side is
tests/scram_client.py, written from the RFC apart from the server's code."""

import base64

import pytest

from clevermail import scram
from scram_client import ScramClient

# RFC 7677 3: user "user", password "pencil"
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_CLIENT_FIRST = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_FIRST = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
RFC_CLIENT_FINAL = ("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
RFC_SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
SECRET = b"k" * 32


def exchange(keys=None, address="user@example.test", nonce=RFC_SERVER_NONCE):
    keys = keys if keys is not None else scram.derive("pencil", RFC_SALT, 4096)

    def credentials(name):
        return (address, keys) if name == "user" else (None, None)
    return scram.ServerExchange(credentials, SECRET, nonce)


def test_the_rfc_7677_test_vector():
    ex = exchange()
    assert ex.first(RFC_CLIENT_FIRST) == RFC_SERVER_FIRST
    server_final, outcome = ex.final(RFC_CLIENT_FINAL)
    assert server_final == RFC_SERVER_FINAL
    assert outcome == scram.Outcome("user", "", "user@example.test")


def test_the_test_client_agrees_with_the_rfc_vector():
    """The independent client gives the RFC's client-final message and accepts its
    server-final one: the two sides meet in the RFC, not in each other."""
    client = ScramClient("user", "pencil", nonce=RFC_CLIENT_NONCE)
    assert client.first() == RFC_CLIENT_FIRST
    assert client.final(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL
    assert client.check(RFC_SERVER_FINAL)


def test_a_login_with_new_keys_and_the_client():
    keys = scram.derive("correct horse")
    assert keys.iterations == scram.ITERATIONS >= 4096 and len(keys.salt) == 16
    ex = exchange(keys, nonce=None)
    client = ScramClient("user", "correct horse")
    server_final, outcome = ex.final(client.final(ex.first(client.first())))
    assert client.check(server_final) and outcome.address == "user@example.test"


def test_stored_keys_round_trip_and_never_hold_the_password():
    keys = scram.derive("pencil", RFC_SALT, 4096)
    text = keys.encode()
    assert text.startswith("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$") and "pencil" not in text
    assert scram.StoredKeys.parse(text) == keys


@pytest.mark.parametrize("text", [
    "", "scrypt$1$2$3", "SCRAM-SHA-256$4096:c2FsdA==$xx", "SCRAM-SHA-256$x:c2FsdA==$AAAA:AAAA",
    "SCRAM-SHA-256$4096:c2FsdA==$" + "A" * 44 + ":" + "A" * 40,           # a key of 30 bytes
    "SCRAM-SHA-256$100:c2FsdA==$" + "A" * 43 + "=:" + "A" * 43 + "=",      # too few iterations
    "SCRAM-SHA-256$4096:$" + "A" * 43 + "=:" + "A" * 43 + "=",             # no salt
    "SCRAM-SHA-256$4096:c2FsdA==$" + "A" * 43 + "=:" + "*" * 44,           # not base64
])
def test_stored_keys_that_are_not(text):
    with pytest.raises(ValueError):
        scram.StoredKeys.parse(text)


# -- SASLprep (RFC 4013 3's examples) ---------------------------------------------------------
@pytest.mark.parametrize("given, prepared", [
    ("I\u00adX", "IX"), ("user", "user"), ("USER", "USER"), ("\u00aa", "a"), ("\u2168", "IX"),
    ("a\u00a0b", "a b"), ("pass word", "pass word")])
def test_saslprep(given, prepared):
    assert scram.saslprep(given) == prepared


@pytest.mark.parametrize("given", ["\u0007", "\u0627\u0031", "a\U000e0001"])
def test_saslprep_refuses(given):
    with pytest.raises(ValueError):
        scram.saslprep(given)


def test_a_password_saslprep_refuses_gets_no_keys():
    assert scram.derive("bell\u0007") is None
    # mapped the same way on both sides: the soft hyphen is nothing
    assert scram.derive("pen\u00adcil", RFC_SALT, 4096) == scram.derive("pencil", RFC_SALT, 4096)


# -- names without keys --------------------------------------------------------------------
def test_an_unknown_name_gets_a_stable_salt_and_fails_at_the_proof():
    firsts = []
    for _ in range(2):
        ex = exchange()
        firsts.append(ex.first("n,,n=nobody,r=abc").split(",s=", 1)[1])
        client = ScramClient("nobody", "pencil", nonce="abc")
        client.first()
        server_first = ex.first("n,,n=nobody,r=abc")
        assert ex.final(client.final(server_first)) == (None, scram.Outcome("nobody", "", None))
    assert firsts[0] == firsts[1]                                   # the same salt each time
    assert firsts[0] == f"{base64.b64encode(scram.stand_in(SECRET, 'nobody').salt).decode()},i={scram.ITERATIONS}"
    other = exchange().first("n,,n=somebody,r=abc").split(",s=", 1)[1]
    assert other != firsts[0]


def test_a_known_name_without_keys_looks_like_an_unknown_one():
    ex = scram.ServerExchange(lambda name: ("user@example.test", None), SECRET, "x")
    assert ex.first("n,,n=user,r=abc") == exchange(nonce="x").first("n,,n=user,r=abc").replace(
        ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        f",s={base64.b64encode(scram.stand_in(SECRET, 'user').salt).decode()},i={scram.ITERATIONS}")
    client = ScramClient("user", "pencil", nonce="abc")
    client.first()
    server_final, outcome = ex.final(client.final(ex.first("n,,n=user,r=abc")))
    assert server_final is None and outcome.address is None


# -- hostile clients ---------------------------------------------------------------------------
@pytest.mark.parametrize("message, reason", [
    ("", "malformed client-first message"),
    ("n", "malformed client-first message"),
    ("x,,n=user,r=abc", "malformed gs2 channel binding flag"),
    ("p=tls-exporter,,n=user,r=abc", "channel binding is not offered (no SCRAM-SHA-256-PLUS)"),
    ("n,b=user,n=user,r=abc", "malformed authzid"),
    ("n,a=,n=user,r=abc", "malformed authzid"),
    ("n,a=us=er,n=user,r=abc", "malformed authzid"),
    ("n,,m=ext,n=user,r=abc", "mandatory extension not supported"),
    ("n,,r=abc,n=user", "malformed client-first message: n= expected"),
    ("n,,n=user", "malformed client-first message"),
    ("n,,n=,r=abc", "malformed username"),
    ("n,,n=a=2Xb,r=abc", "malformed username"),
    ("n,,n=user,r=", "malformed client nonce"),
    ("n,,n=user,r=a,b", "malformed client-first message"),
    ("n,,n=user,r=ab\u00e9", "malformed client nonce"),
    ("n,,n=user,r=abc,x", "malformed client-first message"),
    ("n,,", "malformed client-first message"),
])
def test_malformed_client_first(message, reason):
    with pytest.raises(scram.Invalid) as info:
        exchange().first(message)
    assert str(info.value) == reason


def test_names_unescape_and_extensions_pass():
    ex = exchange()
    ex.first("y,a=us=2Cer=3D,n=us=3Der,r=abc,x=ext")
    assert (ex.username, ex.authzid) == ("us=er", "us,er=")


def good_final(flag="n", nonce=RFC_SERVER_NONCE):
    client = ScramClient("user", "pencil", nonce="abc", flag=flag)
    ex = exchange(nonce=nonce)
    return ex, client, client.final(ex.first(client.first()))


@pytest.mark.parametrize("mangle, reason", [
    (lambda m: m.rsplit(",p=", 1)[0], "malformed client-final message: no proof"),
    (lambda m: "r=x," + m, "malformed client-final message: c= expected"),
    (lambda m: m.replace("c=biws", "c=eSws"), "channel binding data does not match the gs2 header"),
    (lambda m: m.replace("c=biws", "c=bi!s"), "malformed client-final message: bad base64"),
    (lambda m: m.replace(",r=abc", ",r=abd"), "nonce mismatch"),
    (lambda m: m.replace(",r=abc" + RFC_SERVER_NONCE, ",r=abc"), "nonce mismatch"),
    (lambda m: m.rsplit(",p=", 1)[0] + ",p=AAAA", "malformed proof"),
    (lambda m: m.rsplit(",p=", 1)[0] + ",p=***", "malformed client-final message: bad base64"),
    (lambda m: ",p=" + m.rsplit(",p=", 1)[1], "malformed client-final message: no proof"),
])
def test_malformed_client_final(mangle, reason):
    ex, _, final = good_final()
    with pytest.raises(scram.Invalid) as info:
        ex.final(mangle(final))
    assert str(info.value) == reason


def test_a_wrong_proof_fails_without_a_server_signature():
    client = ScramClient("user", "pen", nonce="abc")
    ex = exchange()
    assert ex.final(client.final(ex.first(client.first()))) == (None, scram.Outcome("user", "", None))


def test_the_y_flag_is_bound_into_c():
    ex, client, final = good_final(flag="y")
    server_final, outcome = ex.final(final)
    assert client.check(server_final) and outcome.address


def test_a_replayed_client_final_fails():
    """An eavesdropper's copy of a good client-final message is worth nothing in a
    new exchange: the server's nonce is new."""
    ex, _, final = good_final(nonce=None)
    assert ex.final(final)[1].address
    again = exchange(nonce=None)
    again.first("n,,n=user,r=abc")
    with pytest.raises(scram.Invalid, match="nonce mismatch"):
        again.final(final)


def test_run_says_why_and_who():
    answers = iter(["n,,n=user,r=abc,ext"])
    outcome = scram.run(None, lambda challenge: next(answers) if challenge == "" else "x", lambda n: (None, None),
                        SECRET)
    assert outcome == scram.Outcome("", "", None, "malformed client-first message")
    ex_client = ScramClient("user", "pencil", nonce="abc")
    steps = iter([ex_client.final, lambda v: ex_client.check(v) and "not empty"])
    outcome = scram.run(ex_client.first(), lambda challenge: next(steps)(challenge),
                        lambda n: ("user@example.test", scram.derive("pencil", RFC_SALT, 4096)), SECRET)
    assert outcome == scram.Outcome("user", "", None, "no empty answer to the server-final message")
