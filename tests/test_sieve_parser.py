"""sieve lexer, parser and checker: RFC 5228 syntax, every error with its line."""

import pytest

from clevermail.sieve import EXTENSIONS, SieveSyntaxError, parse
from clevermail.sieve.lexer import tokenize


def kinds(text):
    return [(t.kind, t.value) for t in tokenize(text)]


def test_lexer_tokens_comments_and_numbers():
    assert kinds('if size :over 100K { discard; } # bye\n/* a\ncomment */ keep;') == [
        ("identifier", "if"), ("identifier", "size"), ("tag", "over"), ("number", 102400),
        ("{", "{"), ("identifier", "discard"), (";", ";"), ("}", "}"),
        ("identifier", "keep"), (";", ";")]
    assert kinds("1M 2G 3k 0") == [("number", 1 << 20), ("number", 2 << 30), ("number", 3072),
                                   ("number", 0)]


def test_lexer_strings():
    # only \" and \\ are escapes; any other backslash disappears (RFC 5228 2.4.2)
    assert kinds(r'"a\"b" "c\\d" "e\qf"') == [("string", 'a"b'), ("string", "c\\d"),
                                               ("string", "eqf")]
    # multi-line: CRLF or LF, dot-unstuffing, a comment after text:
    text = "text: # note\r\nline one\r\n..dot\r\n.\r\n;"
    assert kinds(text) == [("string", "line one\n.dot\n"), (";", ";")]
    assert kinds('"two\nlines" x') == [("string", "two\nlines"), ("identifier", "x")]


def test_lexer_lines_are_counted_through_strings_and_comments():
    toks = tokenize('/*\n\n*/ "a\nb"\ntext:\nx\n.\nkeep')
    assert [t.line for t in toks] == [3, 5, 8]


@pytest.mark.parametrize("text,line,words", [
    ('"abc', 1, "unterminated string"),
    ("keep;\n/* open", 2, "unterminated /* comment"),
    ("keep;\nset \"a\" text:\nno end\n", 2, "unterminated multi-line"),
    ("text: x\n.\n", 1, "text: must end its line"),
    ("keep; 12abc", 1, "bad number"),
    ("keep; @", 1, "unexpected character"),
    ("keep;\n: x", 2, "':' must start a tag"),
    ("99999999999999999999G", 1, "number too large"),
])
def test_lexer_errors(text, line, words):
    with pytest.raises(SieveSyntaxError) as exc:
        parse(text)
    assert exc.value.line == line and words in exc.value.message


def test_rfc5228_example_script_parses():
    # RFC 5228 section 9 (the example script), with its extensions
    script = parse(r'''
    #
    # Example Sieve Filter
    # Declare any optional features or extension used by the script
    #
    require ["fileinto"];

    #
    # Handle messages from known mailing lists
    # Move messages from IETF filter discussion list to filter mailbox
    #
    if header :is "Sender" "owner-ietf-mta-filters@imc.org"
            {
            fileinto "filter";  # move to "filter" mailbox
            }
    #
    # Keep all messages to or from people in my company
    #
    elsif address :DOMAIN :is ["From", "To"] "example.com"
            {
            keep;               # keep in "In" mailbox
            }

    #
    # Try and catch unsolicited email.  If a message is not to me,
    # or it contains a subject known to be spam, file it away.
    #
    elsif anyof (NOT address :all :contains
                   ["To", "Cc", "Bcc"] "me@example.com",
                 header :matches "subject"
                   ["*make*money*fast*", "*university*dipl*mas*"])
            {
            fileinto "spam";   # move to "spam" mailbox
            }
    else
            {
            # Move all other (non-company) mail to "personal"
            # mailbox.
            fileinto "personal";
            }
    ''')
    assert [c.name for c in script.commands] == ["require", "if", "elsif", "elsif", "else"]
    assert script.extensions == {"fileinto"}
    test = script.commands[2].tests[0]
    assert test.tagged == {"domain": True, "is": True}
    assert test.positional == [["From", "To"], ["example.com"]]


def test_every_extension_parses():
    script = parse(r'''require ["fileinto", "envelope", "subaddress", "copy", "imap4flags",
        "body", "variables", "vacation", "reject", "ereject", "mailbox",
        "comparator-i;ascii-numeric"];
    if envelope :detail "to" "lists" { fileinto :copy :create :flags "\\Seen" "Lists"; }
    if body :content "text" :contains "hello" { addflag "flagvar" "$Hello"; }
    if body :raw :matches "*x*" { setflag "\\Flagged"; removeflag "\\Flagged"; }
    if hasflag :is "\\Seen" { redirect :copy "bob@example.org"; }
    if string :is "${a}" "" { set :lower :upperfirst "name" "${1}"; }
    if mailboxexists "Lists" { keep :flags ["a", "b"]; }
    if header :comparator "i;ascii-numeric" :is "X-Pri" "1" { ereject "no"; }
    if false { reject text:
    Go away
.
    ; }
    vacation :days 7 :subject "Away" :from "me@example.test" :addresses ["a@b.c"] :mime
             :handle "h1" "I am away";
    ''')
    assert set(EXTENSIONS) >= script.extensions
    assert "vacation" in script.extensions


@pytest.mark.parametrize("text,line,words", [
    ('fileinto "x";', 1, 'needs require "fileinto"'),
    ('require "fileinto";\nkeep;\nrequire "envelope";', 3, "require must come before"),
    ('require "regex";', 1, "unsupported extension 'regex'"),
    ("frobnicate;", 1, "unknown command 'frobnicate'"),
    ("if frob { keep; }", 1, "unknown test 'frob'"),
    ("if true { keep; }\nelse\n{ foo; }", 3, "unknown command 'foo'"),
    ("else { keep; }", 1, "else without a preceding if"),
    ("keep;\nelsif true { keep; }", 2, "elsif without a preceding if"),
    ("keep", 1, "unexpected end of script"),
    ("if true { keep;", 1, "missing '}'"),
    ("if true keep;", 1, "expected ';' or '{' before keep"),
    ("if true;", 1, "if needs a block"),
    ("keep { }", 1, "keep takes no block"),
    ("if header :is :contains \"a\" \"b\" {}", 1, ":contains conflicts with :is"),
    ("if header :is :is \"a\" \"b\" {}", 1, "given twice"),
    ("if header :over \"a\" \"b\" {}", 1, "unknown tag :over for header"),
    ("if header \"a\" :is \"b\" {}", 1, "tag :is after the positional"),
    ("if header \"a\" {}", 1, "wrong arguments for header"),
    ("if header :comparator \"i;foo\" \"a\" \"b\" {}", 1, "unsupported comparator"),
    ("if header :comparator \"i;ascii-numeric\" \"a\" \"b\" {}", 1,
     'needs require "comparator-i;ascii-numeric"'),
    ("if header :comparator {}", 1, ":comparator needs a string"),
    ("if size 10 {}", 1, "size needs :over or :under"),
    ("if size :over \"10\" {}", 1, "wrong arguments for size"),
    ("size :over 1;", 1, "size is a test, not a command"),
    ("if keep {}", 1, "keep is a command, not a test"),
    ("if not (true, false) {}", 1, "not needs exactly one test"),
    ("if allof () {}", 1, "expected a test"),
    ("redirect \"not-an-address\";", 1, "is not an address"),
    ("redirect [\"a@b.c\", \"d@e.f\"];", 1, "wrong arguments for redirect"),
    ('require "fileinto";\nfileinto "a/../b";', 2, "bad mailbox name"),
    ('require "fileinto";\nfileinto :create "x";', 2, ':create needs require "mailbox"'),
    ('require "fileinto";\nfileinto :copy "x";', 2, ':copy needs require "copy"'),
    ("if address :user \"to\" \"x\" {}", 1, ':user needs require "subaddress"'),
    ('require "variables";\nset "1a" "x";', 2, "bad variable name"),
    ('require "variables";\nset :lower :upper "a" "x";', 2, ":upper conflicts with :lower"),
    ('require "vacation";\nvacation :from "nobody" "x";', 2, "is not an address"),
    ('require "vacation";\nvacation :days "7" "x";', 2, ":days needs a number"),
    ("keep;\n\n  [\"a\"];", 3, "expected a command, found '['"),
    ('if header "a" ["b", ] {}', 1, "expected a string in the list"),
    ('if anyof (true false) {}', 1, "true takes no test"),
])
def test_check_errors_name_the_line(text, line, words):
    with pytest.raises(SieveSyntaxError) as exc:
        parse(text)
    assert exc.value.line == line, exc.value
    assert words in exc.value.message, exc.value


def test_deep_nesting_is_a_syntax_error():
    deep = "if true {" * 100 + "keep;" + "}" * 100
    with pytest.raises(SieveSyntaxError) as exc:
        parse(deep)
    assert "nested too deeply" in exc.value.message
    tests = "if " + "not " * 200 + "true {}"
    with pytest.raises(SieveSyntaxError):
        parse(tests)


def test_bytes_must_be_utf8():
    assert parse("keep;".encode()).commands[0].name == "keep"
    with pytest.raises(SieveSyntaxError):
        parse(b"keep; # \xff")


@pytest.mark.parametrize("junk", ["\x00", "}", "{", ";;", ")", "if", "if (", "require;", "[", '"', "text:",
                                  "keep; " * 3 + "/", "if header :is", "\ufeffkeep;"])
def test_garbage_is_always_a_syntax_error(junk):
    with pytest.raises(SieveSyntaxError):
        parse(junk)


def test_mutated_scripts_parse_or_fail_cleanly_and_run_or_fail_cleanly():
    """Hostile input: every mutation of a script parses, or fails with a
    SieveSyntaxError; what parses runs, or fails with a SieveRuntimeError."""
    import random

    from clevermail.sieve.errors import SieveRuntimeError
    from clevermail.sieve.interp import Envelope, evaluate

    base = ('require ["fileinto", "variables", "imap4flags", "body", "vacation", "envelope"];\n'
            'if header :matches "subject" "*a?b*" { set :upper "x" "${1}"; fileinto "F/${x}"; }\n'
            'elsif body :content "text" :contains "z" { addflag "f" "\\\\Seen"; }\n'
            'if envelope :all :is "from" "a@b.c" { vacation :days 2 text:\nhi\n.\n; }\n'
            'redirect "r@x.example"; keep :flags "${f}"; stop;\n')
    alphabet = list('"[](){},;:\\*?$.#/ \n') + ["text:", "if", "${", "}", "require", "0", "9K"]
    message = b"Subject: xaxbx\r\nFrom: a@b.c\r\n\r\nzz\r\n"
    rng = random.Random(5228)
    parsed = 0
    for _ in range(3000):
        text = list(base)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(text) + 1)
            if rng.random() < 0.5 and text:
                del text[min(pos, len(text) - 1)]
            else:
                text.insert(pos, rng.choice(alphabet))
        try:
            script = parse("".join(text))
        except SieveSyntaxError as exc:
            assert exc.message
            continue
        parsed += 1
        try:
            evaluate(script, message, Envelope("a@b.c", "me@example.test"))
        except SieveRuntimeError:
            pass
    assert parsed > 100          # the mutations reach the interpreter too
