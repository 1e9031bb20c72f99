"""Pure tests of clevermail.smtp.parser (RFC 5321 4.1.2 paths and parameters)."""

import pytest

from clevermail.smtp import parser
from clevermail.smtp.replies import SMTPReplyError


def code_of(fn, *args):
    with pytest.raises(SMTPReplyError) as info:
        fn(*args)
    return info.value.reply.code, info.value.reply.status


@pytest.mark.parametrize("line, verb, arg", [
    (b"EHLO client.test\r\n", "EHLO", "client.test"),
    (b"ehlo client.test\r\n", "EHLO", "client.test"),
    (b"MAIL FROM:<a@b.test> SIZE=10\r\n", "MAIL", "FROM:<a@b.test> SIZE=10"),
    (b"NOOP\n", "NOOP", ""),                       # bare LF tolerated for commands
    (b"QUIT\r\n", "QUIT", ""),
    (b"RSET   \r\n", "RSET", ""),
    (b"", "", ""),
])
def test_parse_command(line, verb, arg):
    assert parser.parse_command(line) == (verb, arg)


@pytest.mark.parametrize("line", [b"NOOP\x00\r\n", b"MAIL FROM:<a@b>\rRCPT TO:<c@d>\r\n",
                                  b"HELO \xff\xfe\r\n", b"NOOP\x1b[31m\r\n"])
def test_parse_command_refuses_control_and_bad_utf8(line):
    assert code_of(parser.parse_command, line) == (500, "5.5.2")


@pytest.mark.parametrize("arg, sender, params", [
    ("FROM:<alice@example.test>", "alice@example.test", {}),
    ("from:<Alice@Example.TEST>", "Alice@Example.TEST", {}),
    ("FROM: <a@b.test>", "a@b.test", {}),                         # lax space
    ("FROM:<>", "", {}),
    ("FROM:<> SIZE=100", "", {"SIZE": "100"}),
    ("FROM:<a@b.test> SIZE=100 BODY=8BITMIME SMTPUTF8",
     "a@b.test", {"SIZE": "100", "BODY": "8BITMIME", "SMTPUTF8": None}),
    ("FROM:<a@b.test> size=1  body=7BIT", "a@b.test", {"SIZE": "1", "BODY": "7BIT"}),
    ("FROM:<@relay.test,@other.test:a@b.test>", "a@b.test", {}),  # source route ignored
    ('FROM:<"john doe"@b.test>', '"john doe"@b.test', {}),
    ('FROM:<"john"@b.test>', "john@b.test", {}),                  # needless quotes dropped
    ('FROM:<"a>b\\"c"@b.test>', '"a>b\\"c"@b.test', {}),
    ("FROM:<a@[192.0.2.1]>", "a@[192.0.2.1]", {}),
    ("FROM:<a@[IPv6:2001:db8::1]>", "a@[IPv6:2001:db8::1]", {}),
    ("FROM:<ü@bücher.test> SMTPUTF8", "ü@bücher.test", {"SMTPUTF8": None}),
    ("FROM:<a+tag.x-y@sub-1.b.test> AUTH=<>", "a+tag.x-y@sub-1.b.test", {"AUTH": "<>"}),
])
def test_parse_mail(arg, sender, params):
    assert parser.parse_mail(arg) == (sender, params)


@pytest.mark.parametrize("arg, status", [
    ("FROM:alice@example.test", "5.1.7"),          # no angle brackets
    ("FROM:<alice@example.test", "5.1.7"),
    ("FROM:<alice>", "5.1.7"),                     # no domain
    ("FROM:<a..b@example.test>", "5.1.7"),
    ("FROM:<.a@example.test>", "5.1.7"),
    ("FROM:<a@-example.test>", "5.1.7"),
    ("FROM:<a@example.test.>", "5.1.7"),
    ("FROM:<a b@example.test>", "5.1.7"),
    ("FROM:<a@[300.1.1.1]>", "5.1.7"),
    ("FROM:<a@[IPv6:zz::1]>", "5.1.7"),
    ("FROM:<a@[tag:thing]>", "5.1.7"),
    ("FROM:<" + "x" * 65 + "@b.test>", "5.1.7"),   # local part over 64
    ("FROM:<a@" + ("d" * 60 + ".") * 5 + "test>", "5.1.7"),   # domain over 255
    ("FROM:<" + "a" * 64 + "@" + ("d" * 60 + ".") * 3 + "test.test>", "5.1.7"),   # path over 256
    ("TO:<a@b.test>", "5.5.4"),
    ("FROM<a@b.test>", "5.5.4"),
    ("FROM:<a@b.test>SIZE=1", "5.5.4"),            # parameters need a space
    ("FROM:<a@b.test> SIZE=1 SIZE=2", "5.5.4"),
    ("FROM:<a@b.test> =x", "5.5.4"),
    ("FROM:<a@b.test> SIZE=", "5.5.4"),
    ("FROM:<a@b.test> X=a=b", "5.5.4"),
])
def test_parse_mail_errors(arg, status):
    assert code_of(parser.parse_mail, arg) == (501, status)


@pytest.mark.parametrize("arg, rcpt, params", [
    ("TO:<bob@example.test>", "bob@example.test", {}),
    ("to: <bob+x@example.test> NOTIFY=NEVER", "bob+x@example.test", {"NOTIFY": "NEVER"}),
    ("TO:<Postmaster>", "postmaster", {}),
    ("TO:<postmaster>", "postmaster", {}),
    ("TO:<@a.test:bob@example.test>", "bob@example.test", {}),
])
def test_parse_rcpt(arg, rcpt, params):
    assert parser.parse_rcpt(arg) == (rcpt, params)


@pytest.mark.parametrize("arg, code", [("TO:<>", 501), ("TO:bob@example.test", 501),
                                       ("FROM:<bob@example.test>", 501), ("TO:<bob>", 501)])
def test_parse_rcpt_errors(arg, code):
    assert code_of(parser.parse_rcpt, arg)[0] == code


def test_parse_size():
    assert parser.parse_size("12345") == 12345
    for bad in (None, "", "-1", "1e3", "1" * 21, "١٢"):
        assert code_of(parser.parse_size, bad)[0] == 501


def test_parse_mail_params():
    params = parser.parse_mail("FROM:<a@b.test> SIZE=100 BODY=8bitmime SMTPUTF8 AUTH=<> RET=HDRS ENVID=x+2By")[1]
    assert parser.parse_mail_params(params, size_limit=100, requiretls=False, tls=False) == \
        parser.MailParams(size=100, smtputf8=True, requiretls=False, ret="HDRS", envid="x+y")
    assert parser.parse_mail_params({}, size_limit=0, requiretls=False, tls=False) == (0, False, False, None, None)
    assert parser.parse_mail_params({"REQUIRETLS": None}, size_limit=0, requiretls=True, tls=True).requiretls


@pytest.mark.parametrize("params, requiretls, tls, code", [
    ({"SIZE": "101"}, False, False, (552, "5.3.4")), ({"SIZE": "x"}, False, False, (501, "5.5.4")),
    ({"BODY": "BINARYMIME"}, False, False, (501, "5.5.4")), ({"BODY": None}, False, False, (501, "5.5.4")),
    ({"SMTPUTF8": "yes"}, False, False, (555, "5.5.4")), ({"AUTH": None}, False, False, (555, "5.5.4")),
    ({"REQUIRETLS": None}, False, True, (555, "5.5.4")),        # MX listener: not offered
    ({"REQUIRETLS": None}, True, False, (530, "5.7.10")), ({"RET": "ALL"}, False, False, (501, "5.5.4")),
    ({"XFOO": "1"}, False, False, (555, "5.5.4"))])
def test_parse_mail_params_errors(params, requiretls, tls, code):
    def parse(p):
        return parser.parse_mail_params(p, size_limit=100, requiretls=requiretls, tls=tls)
    assert code_of(parse, params) == code


def test_parse_helo():
    assert parser.parse_helo("client.test") == "client.test"
    assert parser.parse_helo("[192.0.2.1]") == "[192.0.2.1]"
    assert parser.parse_helo("") is None
    assert parser.parse_helo("two words") is None
    assert parser.parse_helo("x" * 300) is None


@pytest.mark.parametrize("arg, result", [("100", (100, False)), ("0 LAST", (0, True)),
                                          ("42 last", (42, True))])
def test_parse_bdat(arg, result):
    assert parser.parse_bdat(arg) == result


@pytest.mark.parametrize("arg", ["", "x", "-1", "10 FIRST", "1" * 21, "10 LAST x"])
def test_parse_bdat_errors(arg):
    assert code_of(parser.parse_bdat, arg)[0] == 501


def test_parse_auth():
    assert parser.parse_auth("PLAIN") == ("PLAIN", None)
    assert parser.parse_auth("plain AGEAYg==") == ("PLAIN", "AGEAYg==")
    assert parser.parse_auth("LOGIN =") == ("LOGIN", "=")
    for bad in ("", "PLAIN a b", "PLAIN not*b64", "PL/AIN"):
        assert code_of(parser.parse_auth, bad)[0] == 501
