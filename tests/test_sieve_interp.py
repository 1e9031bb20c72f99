"""sieve interpreter: RFC 5228 tests and actions, the extensions, the bounds."""

import pytest

from clevermail.sieve import parse
from clevermail.sieve.actions import Discard, FileInto, Keep, Redirect, Reject, Vacation
from clevermail.sieve.errors import SieveRuntimeError
from clevermail.sieve.interp import Envelope, evaluate
from clevermail.sieve.match import address_part, match_one

MESSAGE = (b"Return-Path: <x@y>\r\n"
           b"From: \"Coyote, W.\" <coyote@desert.example.org>\r\n"
           b"To: roadrunner+acme@acme.example.com, <other@example.net>\r\n"
           b"Cc: group: a@b.example, c@d.example;\r\n"
           b"Subject: =?utf-8?q?Caf=C3=A9?= [acme-users] [fwd] version 1.0\r\n"
           b"List-ID: <coyote-tricks@example.com>\r\n"
           b"X-Priority: 3 (normal)\r\n"
           b"X-Folded: one\r\n two\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: multipart/alternative; boundary=BB\r\n"
           b"\r\n"
           b"--BB\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
           b"I have a =E2=82=AC500 anvil for sale.\r\n"
           b"--BB\r\nContent-Type: text/html\r\n\r\n<p>HTML only phrase</p>\r\n"
           b"--BB--\r\n")
ENV = Envelope("coyote@desert.example.org", "roadrunner+acme@acme.example.com",
               "roadrunner@acme.example.com")
ALL = ('require ["fileinto", "envelope", "subaddress", "copy", "imap4flags", "body", "variables",'
       ' "vacation", "reject", "ereject", "mailbox", "comparator-i;ascii-numeric", "relational"];\n')


def run(script, message=MESSAGE, envelope=ENV, exists=lambda name: name in ("INBOX", "Lists")):
    return evaluate(parse(ALL + script), message, envelope, exists)


def true(test):
    """Whether `test` holds for MESSAGE."""
    return run(f'if {test} {{ fileinto "yes"; }}') == [FileInto("yes")]


# -- match types and comparators ------------------------------------------------------
@pytest.mark.parametrize("value,key,kind,comparator,expected", [
    ("Hello", "hello", "is", "i;ascii-casemap", True),
    ("Hello", "hello", "is", "i;octet", False),
    ("Café", "CAFÉ", "is", "i;ascii-casemap", False),     # only ASCII letters fold
    ("Hello World", "o w", "contains", "i;ascii-casemap", True),
    ("Hello World", "o w", "contains", "i;octet", False),
    ("Hello", "", "contains", "i;octet", True),
    ("Hello", "h*o", "matches", "i;ascii-casemap", ["Hello", "ell"]),
    ("Hello", "h?llo", "matches", "i;octet", False),
    ("Hello", "?ell?", "matches", "i;octet", ["Hello", "H", "o"]),
    ("a*b", r"a\*b", "matches", "i;octet", ["a*b"]),
    ("axb", r"a\*b", "matches", "i;octet", False),
    ("a?b\\", r"a\?b\\", "matches", "i;octet", ["a?b\\"]),
    ("line1\nline2", "*line2", "matches", "i;octet", ["line1\nline2", "line1\n"]),
    ("", "*", "matches", "i;octet", ["", ""]),
    ("x", "", "matches", "i;octet", False),
    ("10", "010", "is", "i;ascii-numeric", True),
    ("10 apples", "10", "is", "i;ascii-numeric", True),
    ("abc", "def", "is", "i;ascii-numeric", True),          # both positive infinity
    ("abc", "1", "is", "i;ascii-numeric", False),
])
def test_match_one(value, key, kind, comparator, expected):
    assert match_one(value, key, kind, comparator) == expected


def test_matches_star_is_shortest_from_the_left():
    # RFC 5229 3.2's examples
    assert match_one("[acme-users] [fwd] version 1.0 is out", "[*] *", "matches") == \
        ["[acme-users] [fwd] version 1.0 is out", "acme-users", "[fwd] version 1.0 is out"]
    assert match_one("<coyote-tricks@example.com>", "*<*@*", "matches") == \
        ["<coyote-tricks@example.com>", "", "coyote-tricks", "example.com>"]


@pytest.mark.parametrize("part,expected", [
    ("all", "ken+sieve@example.org"), ("localpart", "ken+sieve"), ("domain", "example.org"),
    ("user", "ken"), ("detail", "sieve")])
def test_address_parts(part, expected):
    assert address_part("ken+sieve@example.org", part, "+") == expected


def test_detail_without_separator_is_none():
    assert address_part("ken@example.org", "detail", "+") is None
    assert address_part("ken+@example.org", "detail", "+") == ""
    assert address_part("ken-x@example.org", "detail", "-") == "x"


# -- tests ----------------------------------------------------------------------------
@pytest.mark.parametrize("test,expected", [
    ("true", True), ("false", False), ("not true", False),
    ("allof (true, false)", False), ("anyof (false, true)", True),
    ("allof (true, not false)", True),
    ('header :is "subject" "Café [acme-users] [fwd] version 1.0"', True),   # encoded-word decoded
    ('header :contains "Subject" "ACME-USERS"', True),
    ('header :contains :comparator "i;octet" "Subject" "ACME-USERS"', False),
    ('header :is "X-Folded" "one two"', True),                             # unfolded
    ('header :is "X-Folded" "one  two"', False),
    ('header :matches "List-ID" "*<*@*"', True),
    ('header :is ["nope", "subject"] ["x", "Café*"]', False),
    ('header :matches ["nope", "subject"] ["x", "Café*"]', True),
    ('header :contains "missing" ""', False),                               # no such field
    ('header :comparator "i;ascii-numeric" :is "X-Priority" "3"', True),
    ('address :is "from" "coyote@desert.example.org"', True),
    ('address :domain :is "from" "DESERT.example.org"', True),
    ('address :localpart :is "from" "coyote"', True),
    ('address :all :is "to" "other@example.net"', True),
    ('address :user "to" "roadrunner"', True),
    ('address :detail "to" "acme"', True),
    ('address :detail "to" ""', False),                                     # other@ has no detail
    ('address :domain "cc" "d.example"', True),                             # group syntax
    ('address :contains "subject" "Café"', False),
    ('envelope :is "from" "coyote@desert.example.org"', True),
    ('envelope :domain "to" "acme.example.com"', True),
    ('envelope :detail "to" "acme"', True),
    ('envelope :user "TO" "roadrunner"', True),
    ('envelope :is "auth" ""', False),
    ('exists "subject"', True), ('exists ["subject", "to"]', True),
    ('exists ["subject", "x-nope"]', False),
    ('size :over 100', True), ('size :under 100', False), ('size :over 1K', False),
    ('body :contains "€500 anvil"', True),                                  # decoded q-p, text/*
    ('body :text :contains "HTML only"', True),
    ('body :content "text/html" :contains "€500"', False),
    ('body :content "text/html" :contains "HTML ONLY"', True),
    ('body :content "image" :contains "anvil"', False),
    ('body :raw :contains "=E2=82=AC500"', True),
    ('body :raw :contains "€500"', False),
    ('string :is "${nothing}" ""', True),
    ('mailboxexists "Lists"', True), ('mailboxexists ["Lists", "Nope"]', False),
    ('hasflag "\\\\Seen"', False),
])
def test_tests(test, expected):
    assert true(test) is expected


def test_null_envelope_sender_is_empty_whatever_the_part():
    env = Envelope("", "bob@example.test")
    for part in ("", ":localpart", ":domain", ":user", ":detail"):
        assert run(f'if envelope {part} :is "from" "" {{ discard; }}', envelope=env) == [Discard()]


# -- actions --------------------------------------------------------------------------
def test_implicit_keep_and_what_cancels_it():
    assert run("") == [Keep(implicit=True)]
    assert run("keep;") == [Keep()]
    assert run("discard;") == [Discard()]
    assert run('fileinto "A";') == [FileInto("A")]
    assert run('fileinto :copy "A";') == [FileInto("A"), Keep(implicit=True)]
    assert run('redirect "a@b.example";') == [Redirect("a@b.example")]
    assert run('redirect :copy "a@b.example";') == [Redirect("a@b.example"), Keep(implicit=True)]
    assert run('reject "no";') == [Reject("no")]
    assert run('ereject "no";') == [Reject("no", extended=True)]
    assert run("discard; keep;") == [Discard(), Keep()]
    assert run("stop; discard;") == [Keep(implicit=True)]


def test_if_elsif_else_take_one_branch():
    script = ('if header :is "subject" "x" { fileinto "1"; } '
              'elsif exists "subject" { fileinto "2"; } '
              'elsif true { fileinto "3"; } else { fileinto "4"; }')
    assert run(script) == [FileInto("2")]
    assert run('if false { fileinto "1"; } else { fileinto "4"; }') == [FileInto("4")]
    assert run('if true { } elsif true { discard; }') == [Keep(implicit=True)]


def test_redirect_same_address_once_and_bounded():
    assert run('redirect "a@b.example"; redirect "A@b.example";') == [Redirect("a@b.example")]
    four = "".join(f'redirect "r{i}@b.example";' for i in range(4))
    assert len(run(four)) == 4
    with pytest.raises(SieveRuntimeError, match="redirects"):
        run(four + 'redirect "r9@b.example";')


def test_reject_conflicts_are_runtime_errors():
    for script in ('reject "a"; reject "b";', 'reject "a"; keep;', 'fileinto "x"; reject "a";',
                   'reject "a"; vacation "away";', 'redirect "a@b.example"; ereject "a";'):
        with pytest.raises(SieveRuntimeError):
            run(script)


def test_action_count_is_bounded():
    with pytest.raises(SieveRuntimeError, match="actions"):
        run("keep;" * 65)


# -- variables (RFC 5229) ---------------------------------------------------------------
def test_set_modifiers_and_expansion():
    script = ('set "a" "juMBlEd lETters"; set :lower "b" "${a}"; set :upper "c" "${a}";'
              'set :lowerfirst "d" "${a}"; set :upperfirst "e" "${b}"; set :length "f" "${a}";'
              'set :quotewildcard "g" "a*b?c\\\\d"; set :upperfirst :lower "h" "${a}";'
              'vacation "${b}|${c}|${d}|${e}|${f}|${g}|${h}|${A}|${undefined}|${x.y}";')
    (action, _) = run(script)
    assert action.reason == ("jumbled letters|JUMBLED LETTERS|juMBlEd lETters|Jumbled letters|15|"
                              "a\\*b\\?c\\\\d|Jumbled letters|juMBlEd lETters||${x.y}")


def test_match_variables_from_the_last_successful_matches():
    script = ('if header :matches "List-ID" "*<*@*" { fileinto "lists/${2}"; }'
              'if header :matches "Subject" "nomatch*" { fileinto "never"; }'
              'fileinto :copy "${0}|${1}|${3}|${9}";')
    assert run(script) == [FileInto("lists/coyote-tricks"),
                           FileInto("<coyote-tricks@example.com>||example.com>|")]


def test_subaddress_detail_into_a_variable():
    script = 'if envelope :matches :detail "to" "*" { fileinto "INBOX/${1}"; }'
    assert run(script) == [FileInto("INBOX/acme")]


def test_variable_mailbox_checked_at_run_time():
    with pytest.raises(SieveRuntimeError, match="bad mailbox"):
        run('set "f" "../x"; fileinto "a/${f}/..";')


def test_string_test():
    assert run('set "x" "abc"; if string :matches "${x}" "a*" { discard; }') == [Discard()]
    assert run('if string :is ["", "b"] "b" { discard; }') == [Discard()]


def test_variable_values_are_bounded():
    script = 'set "a" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";' + \
        'set "a" "${a}${a}${a}${a}";' * 8 + 'set :length "n" "${a}"; fileinto "${n}";'
    assert run(script) == [FileInto("4096")]


# -- imap4flags (RFC 5232) --------------------------------------------------------------
def test_flags_internal_variable_and_keep():
    script = ('setflag "\\\\seen"; addflag ["$Work", "\\\\Flagged \\\\Seen"]; removeflag "\\\\SEEN";'
              'addflag "\\\\Bogus bad(flag $Ok";')
    assert run(script) == [Keep(("$Work", "\\Flagged", "$Ok"), implicit=True)]
    assert run('addflag "\\\\Seen"; fileinto "A"; keep :flags "x";') == [
        FileInto("A", ("\\Seen",)), Keep(("x",))]
    assert run('addflag "a"; fileinto :flags "b c" "A";') == [FileInto("A", ("b", "c"))]


def test_flags_in_a_variable_and_hasflag():
    script = ('addflag "mine" ["a", "b"]; addflag "mine" "c a";'
              'if hasflag "mine" "c" { fileinto :copy "${mine}"; }'
              'if hasflag :contains "mine" "b" { discard; }'
              'if hasflag "a" { fileinto "internal"; }')
    assert run(script) == [FileInto("a b c"), Discard()]


# -- vacation (RFC 5230) ----------------------------------------------------------------
def test_vacation_arguments_and_implicit_keep():
    (vacation, keep) = run('vacation :days 400 :subject "Out" :from "me@acme.example.com"'
                           ' :addresses ["a@acme.example.com"] :mime :handle "h" "reason";')
    assert vacation == Vacation("reason", 90, "Out", "me@acme.example.com", ("a@acme.example.com",),
                                True, "h")
    assert keep == Keep(implicit=True)
    (vacation, _) = run('vacation :days 0 "r";')
    assert vacation.days == 1 and vacation.handle == "r\x00\x00"
    with pytest.raises(SieveRuntimeError):
        run('vacation "a"; vacation "b";')


def test_variables_in_vacation():
    (vacation, _) = run('if header :matches "subject" "*" { vacation :subject "Re: ${1}" "x"; }')
    assert vacation.subject == "Re: Café [acme-users] [fwd] version 1.0"


def test_rfc5228_example_script_runs():
    script = '''
    if header :is "Sender" "owner-ietf-mta-filters@imc.org" { fileinto "filter"; }
    elsif address :DOMAIN :is ["From", "To"] "example.com" { keep; }
    elsif anyof (NOT address :all :contains ["To", "Cc", "Bcc"] "me@example.com",
                 header :matches "subject" ["*make*money*fast*", "*university*dipl*mas*"])
        { fileinto "spam"; }
    else { fileinto "personal"; }'''
    assert run(script) == [FileInto("spam")]


def test_vacation_from_made_of_variables_must_be_an_address():
    (vacation, _) = run('set "f" "not an address"; vacation :from "${f}" "x";')
    assert vacation.sender is None
    (vacation, _) = run('set "f" "me@acme.example.com"; vacation :from "Me <${f}>" "x";')
    assert vacation.sender == "Me <me@acme.example.com>"


# -- relational (RFC 5231) --------------------------------------------------------------
@pytest.mark.parametrize("test,expected", [
    ('header :value "eq" :comparator "i;ascii-numeric" "x-priority" "3"', True),
    ('header :value "gt" :comparator "i;ascii-numeric" "x-priority" "2"', True),
    ('header :value "gt" :comparator "i;ascii-numeric" "x-priority" "10"', False),
    ('header :value "lt" :comparator "i;ascii-numeric" "x-priority" "10"', True),
    ('header :value "ne" :comparator "i;ascii-numeric" "x-priority" "3"', False),
    ('header :value "gt" "subject" "c"', True),             # "café ..." sorts after "c"
    ('header :value "lt" "subject" "CAF"', False),
    ('header :value "lt" :comparator "i;octet" "subject" "a"', True),      # "C" < "a" in octets
    ('header :value "ge" :comparator "i;ascii-numeric" "subject" "999"', True),  # no digits: infinity
    ('address :count "eq" :comparator "i;ascii-numeric" "to" "2"', True),
    ('address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] "4"', True),
    ('address :count "gt" :comparator "i;ascii-numeric" ["to", "cc"] "4"', False),
    ('header :count "eq" :comparator "i;ascii-numeric" "x-nope" "0"', True),
    ('string :count "eq" :comparator "i;ascii-numeric" ["a", "", "b"] "2"', True),
])
def test_relational(test, expected):
    assert true(test) is expected


def test_relational_needs_its_require_and_a_known_relation():
    from clevermail.sieve import SieveSyntaxError
    with pytest.raises(SieveSyntaxError, match='needs require "relational"'):
        parse('if header :value "gt" "a" "b" { keep; }')
    with pytest.raises(SieveSyntaxError, match="the relation is one of"):
        parse('require "relational";\nif header :count "more" "a" "1" { keep; }')
