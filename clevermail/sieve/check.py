"""The Sieve checker: a parsed tree against the command table (grammar.py) and
RFC 5228's rules, before a script is stored or run.

- `require` only at the start (3.2), naming extensions CleverMail has;
- every command, test and tag known and, if an extension's, required;
- tagged arguments before positional ones (2.6.2), each tag once, one tag per group
  (one match type, one comparator, ...), the value a tag takes present;
- positional arguments of the right kinds, tests and blocks where they belong;
  `elsif`/`else` only after `if`/`elsif`;
- constant values that can be judged now: comparators (supported and required),
  :matches/:contains never with i;ascii-numeric, variable names, redirect and
  vacation addresses, mailbox names, :days.

Fills each node's `tagged` (name -> value, True for a flag) and `positional`
(values: a list of str for a string list, a str for a string, an int for a number).
"""

import email.utils
import re

from ..store import paths
from ..store.errors import InvalidName
from .errors import SieveSyntaxError
from .grammar import (COMMANDS, COMPARATORS, EXTENSIONS, FLAG, NUMBER, RELATIONS, STRING, STRLIST,
                      TESTS)
from .parser import Number, StringList, Tag

MAX_COMMANDS = 2000        # commands and tests in one script
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\Z")


def check(script):
    """Check `script` (parser.Script) in place and set its `extensions`; returns it."""
    checker = _Checker()
    commands = script.commands
    i = 0
    while i < len(commands) and commands[i].name == "require":
        checker.require(commands[i])
        i += 1
    checker.block(commands[i:])
    script.extensions = frozenset(checker.required)
    return script


class _Checker:
    def __init__(self):
        self.required = set()
        self.count = 0

    def require(self, cmd):
        self.node(cmd, COMMANDS["require"], "command")
        for name in cmd.positional[0]:
            if name.lower() not in EXTENSIONS:
                raise SieveSyntaxError(f"unsupported extension {name!r} in require", cmd.line)
            self.required.add(name.lower())

    def block(self, commands):
        previous = None
        for cmd in commands:
            if cmd.name == "require":
                raise SieveSyntaxError("require must come before any other command", cmd.line)
            spec = COMMANDS.get(cmd.name)
            if spec is None:
                if cmd.name in TESTS:
                    raise SieveSyntaxError(f"{cmd.name} is a test, not a command", cmd.line)
                raise SieveSyntaxError(f"unknown command {cmd.name!r}", cmd.line)
            if cmd.name in ("elsif", "else") and previous not in ("if", "elsif"):
                raise SieveSyntaxError(f"{cmd.name} without a preceding if", cmd.line)
            self.node(cmd, spec, "command")
            if spec.block and cmd.block is None:
                raise SieveSyntaxError(f"{cmd.name} needs a block {{ ... }}", cmd.line)
            if not spec.block and cmd.block is not None:
                raise SieveSyntaxError(f"{cmd.name} takes no block (missing ';'?)", cmd.line)
            if cmd.block is not None:
                self.block(cmd.block)
            self.command_values(cmd)
            previous = cmd.name

    def test(self, test):
        spec = TESTS.get(test.name)
        if spec is None:
            if test.name in COMMANDS:
                raise SieveSyntaxError(f"{test.name} is a command, not a test", test.line)
            raise SieveSyntaxError(f"unknown test {test.name!r}", test.line)
        self.node(test, spec, "test")
        self.matching(test)

    def node(self, node, spec, what):
        self.count += 1
        if self.count > MAX_COMMANDS:
            raise SieveSyntaxError("script has too many commands and tests", node.line)
        if spec.ext and spec.ext not in self.required:
            raise SieveSyntaxError(f'{what} {node.name} needs require "{spec.ext}"', node.line)
        tagged, positional, groups = {}, [], {}
        args = node.args
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if isinstance(arg, Tag):
                if positional:
                    raise SieveSyntaxError(f"tag :{arg.name} after the positional arguments of "
                                           f"{node.name}", arg.line)
                tag = spec.tags.get(arg.name)
                if tag is None:
                    raise SieveSyntaxError(f"unknown tag :{arg.name} for {node.name}", arg.line)
                if tag.ext and tag.ext not in self.required:
                    raise SieveSyntaxError(f':{arg.name} needs require "{tag.ext}"', arg.line)
                if arg.name in tagged:
                    raise SieveSyntaxError(f"tag :{arg.name} given twice", arg.line)
                if tag.group:
                    if tag.group in groups:
                        raise SieveSyntaxError(f":{arg.name} conflicts with :{groups[tag.group]}",
                                               arg.line)
                    groups[tag.group] = arg.name
                if tag.value == FLAG:
                    tagged[arg.name] = True
                else:
                    if i >= len(args) or not _is_kind(args[i], tag.value):
                        raise SieveSyntaxError(f":{arg.name} needs a {tag.value}", arg.line)
                    tagged[arg.name] = _value(args[i], tag.value)
                    i += 1
            else:
                positional.append(arg)
        if spec.required_group and spec.required_group not in groups:
            names = " or ".join(":" + n for n, t in spec.tags.items() if t.group == spec.required_group)
            raise SieveSyntaxError(f"{node.name} needs {names}", node.line)
        for shape in spec.positional:
            if len(shape) == len(positional) and all(map(_is_kind, positional, shape)):
                node.positional = [_value(a, k) for a, k in zip(positional, shape)]
                break
        else:
            wanted = " or ".join("(" + ", ".join(s) + ")" if s else "no arguments"
                                 for s in spec.positional)
            raise SieveSyntaxError(f"wrong arguments for {node.name}: expected {wanted}", node.line)
        node.tagged = tagged
        if spec.tests == 0 and node.tests:
            if node.tests[0].name in COMMANDS:
                raise SieveSyntaxError(f"expected ';' or '{{' before {node.tests[0].name}",
                                       node.tests[0].line)
            raise SieveSyntaxError(f"{node.name} takes no test", node.line)
        if spec.tests == 1 and len(node.tests) != 1:
            raise SieveSyntaxError(f"{node.name} needs exactly one test", node.line)
        if spec.tests == "many" and not node.tests:
            raise SieveSyntaxError(f"{node.name} needs a list of tests", node.line)
        for sub in node.tests:
            self.test(sub)

    def matching(self, test):
        for kind in ("value", "count"):
            relation = test.tagged.get(kind)
            if relation is not None and relation.lower() not in RELATIONS:
                raise SieveSyntaxError(f":{kind} {relation!r}: the relation is one of "
                                       f"{', '.join(RELATIONS)}", test.line)
        name = test.tagged.get("comparator")
        if name is not None:
            if name.lower() not in COMPARATORS:
                raise SieveSyntaxError(f"unsupported comparator {name!r}", test.line)
            ext = COMPARATORS[name.lower()]
            if ext and ext not in self.required:
                raise SieveSyntaxError(f'comparator {name} needs require "{ext}"', test.line)
            if name.lower() == "i;ascii-numeric" and ("contains" in test.tagged or
                                                      "matches" in test.tagged):
                raise SieveSyntaxError("i;ascii-numeric only compares with :is", test.line)

    def command_values(self, cmd):
        """The constant arguments that can be judged before a run (with variables,
        a string holding "${" is judged when the script runs)."""
        def constant(value):
            return "variables" not in self.required or "${" not in value

        if cmd.name == "redirect":
            address = cmd.positional[0]
            if constant(address) and not ADDRESS.match(address.strip()):
                raise SieveSyntaxError(f"redirect: {address!r} is not an address", cmd.line)
        elif cmd.name == "fileinto":
            if constant(cmd.positional[0]):
                check_mailbox(cmd.positional[0], cmd.line)
        elif cmd.name == "set":
            if not VARIABLE_NAME.match(cmd.positional[0]):
                raise SieveSyntaxError(f"set: bad variable name {cmd.positional[0]!r}", cmd.line)
        elif cmd.name in ("setflag", "addflag", "removeflag") and len(cmd.positional) == 2:
            if not VARIABLE_NAME.match(cmd.positional[0]):
                raise SieveSyntaxError(f"{cmd.name}: bad variable name {cmd.positional[0]!r}", cmd.line)
        elif cmd.name == "vacation":
            sender = cmd.tagged.get("from")
            if sender and constant(sender) and not has_address(sender):
                raise SieveSyntaxError(f"vacation :from {sender!r} is not an address", cmd.line)
            for address in cmd.tagged.get("addresses", ()):
                if constant(address) and not has_address(address):
                    raise SieveSyntaxError(f"vacation :addresses: {address!r} is not an address",
                                           cmd.line)


def check_mailbox(name, line):
    """SieveSyntaxError unless `name` is a valid folder name (store/paths.py rules)."""
    try:
        paths.folder_dirname(name)
    except InvalidName as exc:
        raise SieveSyntaxError(f"fileinto: bad mailbox name {name!r}: {exc}", line) from None


def has_address(text):
    _, address = email.utils.parseaddr(text)
    return bool(ADDRESS.match(address))


def _is_kind(arg, kind):
    if kind == NUMBER:
        return isinstance(arg, Number)
    if kind == STRING:
        return isinstance(arg, StringList) and arg.single
    if kind == STRLIST:
        return isinstance(arg, StringList)
    return False


def _value(arg, kind):
    if kind == NUMBER:
        return arg.value
    if kind == STRING:
        return arg.values[0]
    return list(arg.values)
