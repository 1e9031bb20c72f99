"""The Sieve parser (RFC 5228 8.2 grammar): tokens -> a tree of Command and Test
nodes with their raw arguments.  Pure; what each command may take is checked next
(check.py), against the one command table (grammar.py).

    commands    = *command
    command     = identifier arguments (";" / block)
    arguments   = *argument [test / test-list]
    argument    = string-list / number / tag
    block       = "{" commands "}"
    test        = identifier arguments
    test-list   = "(" test *("," test) ")"
    string-list = "[" string *("," string) "]" / string
"""

from dataclasses import dataclass, field

from .errors import SieveSyntaxError
from .lexer import tokenize

MAX_DEPTH = 32            # nested blocks and tests together
MAX_LIST = 1024           # strings in one string list, tests in one test list


@dataclass
class Tag:
    name: str             # without the colon, lower case
    line: int


@dataclass
class StringList:
    values: list
    single: bool          # written as one string, not [ ... ]
    line: int


@dataclass
class Number:
    value: int
    line: int


@dataclass
class Test:
    name: str
    args: list
    tests: list
    line: int
    # filled in by check.py: tag name -> value (True for a flag), and the positionals
    tagged: dict = field(default_factory=dict)
    positional: list = field(default_factory=list)


@dataclass
class Command(Test):
    block: list = None    # list of Command, or None without a block


@dataclass
class Script:
    commands: list
    extensions: frozenset = frozenset()     # what it requires (check.py)


class _Parser:
    def __init__(self, tokens):
        self.tokens = tokens
        self.i = 0

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, what):
        tok = self.peek()
        if tok is None:
            last = self.tokens[-1].line if self.tokens else 1
            raise SieveSyntaxError(f"unexpected end of script, expected {what}", last)
        self.i += 1
        return tok

    def expect(self, kind, what):
        tok = self.next(what)
        if tok.kind != kind:
            raise SieveSyntaxError(f"expected {what}, found {_describe(tok)}", tok.line)
        return tok

    def commands(self, depth, closing=None):
        out = []
        while True:
            tok = self.peek()
            if tok is None:
                if closing:
                    raise SieveSyntaxError("missing '}' at the end of a block",
                                           self.tokens[-1].line)
                return out
            if tok.kind == "}" and closing:
                self.i += 1
                return out
            out.append(self.command(depth))

    def command(self, depth):
        tok = self.next("a command")
        if tok.kind != "identifier":
            raise SieveSyntaxError(f"expected a command, found {_describe(tok)}", tok.line)
        args, tests = self.arguments(depth)
        end = self.next("';' or '{'")
        block = None
        if end.kind == "{":
            if depth >= MAX_DEPTH:
                raise SieveSyntaxError("blocks nested too deeply", end.line)
            block = self.commands(depth + 1, closing=True)
        elif end.kind != ";":
            raise SieveSyntaxError(f"expected ';' after {tok.value}, found {_describe(end)}", end.line)
        return Command(tok.value, args, tests, tok.line, block=block)

    def arguments(self, depth):
        args = []
        while True:
            tok = self.peek()
            if tok is None:
                return args, []
            if tok.kind == "tag":
                self.i += 1
                args.append(Tag(tok.value, tok.line))
            elif tok.kind == "number":
                self.i += 1
                args.append(Number(tok.value, tok.line))
            elif tok.kind in ("string", "["):
                args.append(self.string_list())
            elif tok.kind == "identifier":
                return args, [self.test(depth + 1)]
            elif tok.kind == "(":
                return args, self.test_list(depth + 1)
            else:
                return args, []

    def string_list(self):
        tok = self.next("a string")
        if tok.kind == "string":
            return StringList([tok.value], True, tok.line)
        values = []
        while True:
            s = self.next("a string")
            if s.kind != "string":
                raise SieveSyntaxError(f"expected a string in the list, found {_describe(s)}", s.line)
            values.append(s.value)
            if len(values) > MAX_LIST:
                raise SieveSyntaxError("string list too long", s.line)
            sep = self.next("',' or ']'")
            if sep.kind == "]":
                return StringList(values, False, tok.line)
            if sep.kind != ",":
                raise SieveSyntaxError(f"expected ',' or ']' in a string list, found {_describe(sep)}",
                                       sep.line)

    def test(self, depth):
        if depth >= MAX_DEPTH:
            raise SieveSyntaxError("tests nested too deeply", self.peek().line)
        tok = self.expect("identifier", "a test")
        args, tests = self.arguments(depth)
        return Test(tok.value, args, tests, tok.line)

    def test_list(self, depth):
        self.expect("(", "'('")
        tests = []
        while True:
            tests.append(self.test(depth))
            if len(tests) > MAX_LIST:
                raise SieveSyntaxError("test list too long", tests[-1].line)
            sep = self.next("',' or ')'")
            if sep.kind == ")":
                return tests
            if sep.kind != ",":
                raise SieveSyntaxError(f"expected ',' or ')' in a test list, found {_describe(sep)}",
                                       sep.line)


def _describe(tok):
    if tok.kind == "identifier":
        return f"identifier {tok.value!r}"
    if tok.kind == "tag":
        return f"tag :{tok.value}"
    if tok.kind == "string":
        return "a string"
    if tok.kind == "number":
        return f"number {tok.value}"
    return f"'{tok.kind}'"


def parse_tree(text):
    """The unchecked tree of `text` (str), or SieveSyntaxError."""
    return Script(_Parser(tokenize(text)).commands(0))
