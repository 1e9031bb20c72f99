"""The Sieve interpreter: a checked Script and one message -> the list of actions
(actions.py), with RFC 5228's implicit keep (2.10.2) added when no action cancelled
it.  Pure: it reads the message through MessageView and the envelope, asks
`mailbox_exists` for RFC 5490's test, and does nothing itself; deliver.py carries
the actions out.

One function per command and test of grammar.py.  Bounds (RFC 5228 2.10.6: a run
that cannot finish is a runtime error, and the caller keeps the message): the
`SieveLimits` of [sieve] (actions, redirects, vacation's :days range), one vacation,
one reject, reject not with keep/fileinto/redirect (RFC 5429 2.1 leaves that to us),
variable sizes (variables.py).
"""

from dataclasses import dataclass, field

from .actions import Discard, FileInto, Keep, Redirect, Reject, Vacation
from .check import ADDRESS, has_address, check_mailbox
from .errors import SieveRuntimeError, SieveSyntaxError
from .match import address_part, match_any, relational
from .message import MessageView
from .variables import Variables

MAX_FLAGS = 64
DEFAULT_DAYS = 7            # vacation without :days (RFC 5230 4.1 leaves it to the site)


@dataclass(frozen=True)
class SieveLimits:
    """What one run may do ([sieve] in the config; these defaults otherwise)."""

    max_actions: int = 64
    max_redirects: int = 4                  # per message (RFC 5228 4.2: bound them)
    vacation_min_days: int = 1              # :days is brought into this range
    vacation_max_days: int = 90             # (RFC 5230 4.1)


DEFAULT_LIMITS = SieveLimits()
SYSTEM_FLAGS = {f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")}


@dataclass
class Envelope:
    sender: str                   # MAIL FROM ("" for the null sender)
    recipient: str                # the RCPT TO address this copy is for
    user: str = ""                # the account (canonical address)
    separator: str = "+"          # subaddress separator (RFC 5233)


@dataclass
class Run:
    actions: list = field(default_factory=list)
    implicit_keep: bool = True


class _Stop(Exception):
    pass


def evaluate(script, data, envelope, mailbox_exists=lambda name: True, limits=DEFAULT_LIMITS):
    """The actions for message `data` (bytes): the script's, then the implicit keep
    with the flags set by then when nothing cancelled it.  SieveRuntimeError when
    the run cannot finish (within `limits`)."""
    return _Interpreter(script, MessageView(data), envelope, mailbox_exists, limits).run()


class _Interpreter:
    def __init__(self, script, message, envelope, mailbox_exists, limits=DEFAULT_LIMITS):
        self.limits = limits
        self.script = script
        self.message = message
        self.envelope = envelope
        self.mailbox_exists = mailbox_exists
        self.variables = Variables()
        self.expanding = "variables" in script.extensions
        self.flags = []           # imap4flags' internal variable
        self.out = Run()
        self.redirects = set()

    def run(self):
        try:
            self.block(self.script.commands)
        except _Stop:
            pass
        except (OverflowError, RecursionError) as exc:
            raise SieveRuntimeError(str(exc)) from None
        actions = self.out.actions
        if self.out.implicit_keep:
            actions.append(Keep(tuple(self.flags), implicit=True))
        return actions

    def s(self, text):
        return self.variables.expand(text) if self.expanding else text

    def sl(self, values):
        return [self.s(v) for v in values]

    # -- control ---------------------------------------------------------------------
    def block(self, commands):
        branch_taken = False
        for cmd in commands:
            name = cmd.name
            if name == "if":
                branch_taken = self.test(cmd.tests[0])
                if branch_taken:
                    self.block(cmd.block)
            elif name == "elsif":
                if not branch_taken:
                    branch_taken = self.test(cmd.tests[0])
                    if branch_taken:
                        self.block(cmd.block)
            elif name == "else":
                if not branch_taken:
                    self.block(cmd.block)
                branch_taken = True
            else:
                getattr(self, "cmd_" + name)(cmd)

    def cmd_require(self, cmd):
        pass

    def cmd_stop(self, cmd):
        raise _Stop()

    # -- actions -----------------------------------------------------------------------
    def add(self, action, cancels_keep=True):
        if len(self.out.actions) >= self.limits.max_actions:
            raise SieveRuntimeError(f"more than {self.limits.max_actions} actions")
        kinds = {type(a) for a in self.out.actions}
        if isinstance(action, Reject):
            if Reject in kinds:
                raise SieveRuntimeError("more than one reject")
            if kinds & {Vacation, Keep, FileInto, Redirect}:
                raise SieveRuntimeError("reject with keep, fileinto, redirect or vacation")
        elif Reject in kinds and isinstance(action, (Vacation, Keep, FileInto, Redirect)):
            raise SieveRuntimeError("reject with keep, fileinto, redirect or vacation")
        self.out.actions.append(action)
        if cancels_keep:
            self.out.implicit_keep = False

    def flag_list(self, tagged_flags):
        return tuple(self.flags) if tagged_flags is None else tuple(_flags(self.sl(tagged_flags)))

    def cmd_keep(self, cmd):
        self.add(Keep(self.flag_list(cmd.tagged.get("flags"))))

    def cmd_discard(self, cmd):
        self.add(Discard())

    def cmd_fileinto(self, cmd):
        mailbox = self.s(cmd.positional[0])
        try:
            check_mailbox(mailbox, cmd.line)
        except SieveSyntaxError as exc:
            raise SieveRuntimeError(exc.message) from None
        self.add(FileInto(mailbox, self.flag_list(cmd.tagged.get("flags")),
                          bool(cmd.tagged.get("create"))), cancels_keep="copy" not in cmd.tagged)

    def cmd_redirect(self, cmd):
        address = self.s(cmd.positional[0]).strip()
        if not ADDRESS.match(address):
            raise SieveRuntimeError(f"redirect to {address!r}: not an address")
        if address.lower() in self.redirects:
            # the same address twice is one redirect (RFC 5228 4.2), :copy or not
            if "copy" not in cmd.tagged:
                self.out.implicit_keep = False
            return
        if len(self.redirects) >= self.limits.max_redirects:
            raise SieveRuntimeError(f"more than {self.limits.max_redirects} redirects")
        self.redirects.add(address.lower())
        self.add(Redirect(address), cancels_keep="copy" not in cmd.tagged)

    def cmd_reject(self, cmd, extended=False):
        self.add(Reject(self.s(cmd.positional[0]), extended))

    def cmd_ereject(self, cmd):
        self.cmd_reject(cmd, extended=True)

    def cmd_vacation(self, cmd):
        if any(isinstance(a, Vacation) for a in self.out.actions):
            raise SieveRuntimeError("more than one vacation")
        t = cmd.tagged
        limits = self.limits
        days = min(max(t.get("days", DEFAULT_DAYS), limits.vacation_min_days), limits.vacation_max_days)
        reason = self.s(cmd.positional[0])
        subject = self.s(t["subject"]) if "subject" in t else None
        sender = self.s(t["from"]) if "from" in t else None
        if sender is not None and not has_address(sender):
            sender = None         # a :from made of variables that is no address: the default
        # RFC 5230 4.2: without :handle, the reason, subject and from make the handle
        handle = self.s(t["handle"]) if "handle" in t else \
            f"{reason}\x00{subject or ''}\x00{sender or ''}"
        self.add(Vacation(reason, days, subject, sender, tuple(self.sl(t.get("addresses", ()))),
                          bool(t.get("mime")), handle), cancels_keep=False)

    # -- variables and flags ----------------------------------------------------------
    def cmd_set(self, cmd):
        name, value = cmd.positional
        self.variables.set(name, self.s(value), cmd.tagged)

    def _flag_target(self, cmd):
        if len(cmd.positional) == 2:
            name = cmd.positional[0]
            return (lambda: _flags([self.variables.get(name)]),
                    lambda flags: self.variables.set(name, " ".join(flags)))

        def store(flags):
            self.flags = flags
        return (lambda: list(self.flags)), store

    def cmd_setflag(self, cmd):
        _, store = self._flag_target(cmd)
        store(_flags(self.sl(cmd.positional[-1])))

    def cmd_addflag(self, cmd):
        load, store = self._flag_target(cmd)
        store(_flags(load() + self.sl(cmd.positional[-1])))

    def cmd_removeflag(self, cmd):
        load, store = self._flag_target(cmd)
        gone = {f.lower() for f in _flags(self.sl(cmd.positional[-1]))}
        store([f for f in load() if f.lower() not in gone])

    # -- tests ---------------------------------------------------------------------------
    def test(self, test):
        return getattr(self, "test_" + test.name)(test)

    def matched(self, test, values, keys):
        t = test.tagged
        comparator = t.get("comparator", "i;ascii-casemap")
        for kind in ("value", "count"):
            if kind in t:
                if kind == "count" and test.name == "string":
                    values = [v for v in values if v]     # RFC 5229 5: empty strings do not count
                return relational(values, self.sl(keys), kind, t[kind], comparator)
        match_type = "contains" if "contains" in t else "matches" if "matches" in t else "is"
        found = match_any(values, self.sl(keys), match_type, comparator)
        if found is False:
            return False
        if match_type == "matches" and self.expanding:
            self.variables.match = found
        return True

    def part(self, test, address):
        t = test.tagged
        for name in ("localpart", "domain", "user", "detail"):
            if name in t:
                return address_part(address, name, self.envelope.separator)
        return address

    def test_true(self, test):
        return True

    def test_false(self, test):
        return False

    def test_not(self, test):
        return not self.test(test.tests[0])

    def test_allof(self, test):
        return all(self.test(t) for t in test.tests)

    def test_anyof(self, test):
        return any(self.test(t) for t in test.tests)

    def test_size(self, test):
        limit = test.positional[0]
        return self.message.size > limit if "over" in test.tagged else self.message.size < limit

    def test_exists(self, test):
        return all(self.message.exists(name) for name in self.sl(test.positional[0]))

    def test_header(self, test):
        names, keys = test.positional
        values = [v for name in self.sl(names) for v in self.message.header(name)]
        return self.matched(test, values, keys)

    def test_address(self, test):
        names, keys = test.positional
        values = [self.part(test, a) for name in self.sl(names) for a in self.message.addresses(name)]
        return self.matched(test, [v for v in values if v is not None], keys)

    def test_envelope(self, test):
        names, keys = test.positional
        values = []
        for name in self.sl(names):
            name = name.lower()
            if name == "from":
                # the null reverse-path is "" whatever the address part (RFC 5228 5.4)
                sender = self.envelope.sender
                values.append(self.part(test, sender) if sender else "")
            elif name == "to":
                values.append(self.part(test, self.envelope.recipient))
        return self.matched(test, [v for v in values if v is not None], keys)

    def test_body(self, test):
        t = test.tagged
        if "raw" in t:
            values = [self.message.raw_body()]
        else:
            values = self.message.body_parts(self.sl(t["content"]) if "content" in t else ["text"])
        return self.matched(test, values, test.positional[0])

    def test_string(self, test):
        sources, keys = test.positional
        return self.matched(test, self.sl(sources), keys)

    def test_hasflag(self, test):
        if len(test.positional) == 2:
            names, keys = test.positional
            values = _flags([self.variables.get(n) for n in names])
        else:
            keys = test.positional[0]
            values = list(self.flags)
        return self.matched(test, values, keys)

    def test_mailboxexists(self, test):
        return all(self.mailbox_exists(name) for name in self.sl(test.positional[0]))


def _flags(strings):
    """Flag names from strings of space-separated flags (RFC 5232 3): system flags
    in their canonical spelling, each flag once (case-insensitive), invalid ones
    (an unknown \\flag, characters IMAP forbids) left out."""
    out, seen = [], set()
    for text in strings:
        for flag in text.split():
            if flag.startswith("\\"):
                flag = SYSTEM_FLAGS.get(flag.lower())
                if flag is None:
                    continue
            elif any(c in '(){%*"]\\' or ord(c) < 0x21 or ord(c) > 0x7E for c in flag):
                continue
            if flag.lower() not in seen and len(out) < MAX_FLAGS:
                seen.add(flag.lower())
                out.append(flag)
    return out
