"""Sieve at final local delivery: for an account with an active script, run it on
the message and turn its actions into prepared (not yet committed) writes, which
the SMTP file handler commits with the rest of the transaction before its 250
(smtp/handler.py `deliver`, and `deliver_queued` for the relay's local deliveries).

- keep -> INBOX (or the folder the inbound checks chose, e.g. Junk), with flags;
  fileinto -> that folder, created first with :create (RFC 5490); a folder that does
  not exist without :create -> INBOX, logged; the same folder twice is one copy;
- discard -> nothing;
- redirect -> a relay queue entry with the SRS sender (the null sender stays null) and
  `Delivered-To: <account>` on top; a message that already carries it comes back
  from a redirect loop and is kept instead;
- reject/ereject -> an MDN to the envelope sender through the queue (reports.py;
  none to the null sender); an ereject also sets `Prepared.ereject` to its reason:
  when every recipient of an SMTP transaction erejects, the SMTP handler refuses
  the message at the end of DATA instead (RFC 5429 2.1) and the MDN is dropped;
- vacation -> a reply through the queue with the null sender, at most one per sender
  and :days period (vacation.py), DKIM-signed for the user's domain when signing is on.

A copy for a mailbox over quota (the account's whole delivery `defer`red by the SMTP
handler, or one copy whose reservation fails) is not written: its folder and flags
go into `Prepared.deferred`, and the handler queues it with them for the relay's
local delivery, which files it there once there is room (without a second run).

A script that does not parse, or a run that fails, never loses mail: the message is
kept in INBOX and a WARNING names the user.  Accounts without an active script take
the store's single hard-linked delivery (`split`).
"""

import logging
import os

from ..store.quota import OverQuota
from . import parse
from .actions import Discard, FileInto, Keep, Redirect, Reject, Vacation
from .errors import SieveError, SieveSyntaxError
from .interp import DEFAULT_LIMITS, Envelope, evaluate
from .message import MessageView
from .reports import make_refusal
from .scripts import SieveScripts
from .vacation import Responses, make_reply, refusal

log = logging.getLogger("clevermail.sieve")
MAX_CACHED = 10_000


class Prepared:
    """What a run made: `mailbox` writes (store PendingDelivery) and `queued` entries
    (relay PendingEntry), committed mailboxes first; `after` runs once all committed
    (the vacation record); `ereject`: the reason of an ereject (None without one),
    which SMTP may say at the protocol level instead of the MDN; `deferred`: the
    (folder, flags) of copies a full mailbox could not take now."""

    def __init__(self):
        self.mailbox = []
        self.queued = []
        self.after = []
        self.ereject = None
        self.deferred = []

    def abort(self):
        for p in self.mailbox + self.queued:
            try:
                p.abort()
            except Exception:
                log.exception("sieve: abort of a prepared write failed")


class SieveFilter:
    def __init__(self, scripts: SieveScripts, store, queue, hostname, srs=None, router=None,
                 signer=None, clock=None, limits=DEFAULT_LIMITS):
        self.scripts = scripts
        self.limits = limits          # interp.SieveLimits of [sieve] (a reload swaps it)
        self.store = store
        self.queue = queue
        self.hostname = hostname
        self.srs = srs
        self.router = router          # its subaddress separator (live through reloads)
        self.signer = signer          # dkim.signer.Signer or None
        self.clock = clock
        self._cache = {}              # account -> (file stamp, Script or SieveSyntaxError)

    # -- which accounts -------------------------------------------------------------------
    def split(self, accounts):
        """(accounts without an active script, accounts with one)."""
        plain, filtered = [], []
        for account in accounts:
            (filtered if self._active_file(account) else plain).append(account)
        return plain, filtered

    def _active_file(self, account):
        try:
            directory = self.scripts.directory(account)
        except SieveError:
            return False
        return os.path.exists(os.path.join(directory, "active"))

    def _load(self, account):
        """(name, Script) of the active script, (name, SieveSyntaxError) or None;
        parsed once per version of the file."""
        found = self.scripts.active(account)
        if found is None:
            return None
        name, text = found
        stamp = (name, text)
        cached = self._cache.get(account)
        if cached is not None and cached[0] == stamp:
            return name, cached[1]
        try:
            script = parse(text)
        except SieveSyntaxError as exc:
            script = exc
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[account] = (stamp, script)
        return name, script

    # -- one account ----------------------------------------------------------------------
    def prepare(self, account, sender, recipient, parts, queue_id, keep_folder=None,
                clean=False, requiretls=False, defer=False):
        """Run `account`'s active script on the message made of `parts` (CRLF bytes,
        without Return-Path) and prepare what it asks: a Prepared.  Falls back to a
        keep in INBOX (or `keep_folder`) on any script error.  `defer`: the mailbox
        is full, every copy goes to `Prepared.deferred`."""
        data = b"".join(parts)
        actions = self._actions(account, sender, recipient, data, queue_id)
        prepared = Prepared()
        options = (keep_folder, clean, requiretls, defer)
        try:
            self._carry_out(prepared, actions, account, sender, recipient, data, queue_id, *options)
            return prepared
        except Exception:
            # an action that cannot be prepared (a folder that cannot be made, the
            # vacation record unreadable, ...) must not refuse the message for good:
            # it is kept instead; only a failure of that keep fails the delivery
            prepared.abort()
            log.warning("%s: the sieve actions of %s could not be carried out; kept in INBOX",
                        queue_id, account, exc_info=True)
        except BaseException:
            prepared.abort()
            raise
        prepared = Prepared()
        self._carry_out(prepared, [Keep(implicit=True)], account, sender, recipient, data, queue_id,
                        *options)
        return prepared

    def _actions(self, account, sender, recipient, data, queue_id):
        loaded = self._load(account)
        if loaded is None:
            return [Keep(implicit=True)]
        name, script = loaded
        if isinstance(script, SieveSyntaxError):
            log.warning("%s: sieve script %r of %s does not parse (%s); kept in INBOX",
                        queue_id, name, account, script)
            return [Keep(implicit=True)]
        separator = self.router.separator if self.router is not None else "+"
        envelope = Envelope(sender, recipient or account, account, separator)
        try:
            return evaluate(script, data, envelope,
                            lambda mailbox: self.store.folder_exists(account, mailbox), self.limits)
        except SieveError as exc:
            log.warning("%s: sieve script %r of %s failed (%s); kept in INBOX",
                        queue_id, name, account, exc)
        except Exception:
            log.exception("%s: sieve script %r of %s failed; kept in INBOX", queue_id, name, account)
        return [Keep(implicit=True)]

    def _carry_out(self, prepared, actions, account, sender, recipient, data, queue_id,
                   keep_folder, clean, requiretls, defer):
        placements = {}           # folder name -> flags, in order
        message = None
        for action in actions:
            if isinstance(action, Keep):
                _place(placements, keep_folder or "INBOX", action.flags)
            elif isinstance(action, FileInto):
                _place(placements, self._folder(account, action, queue_id), action.flags)
            elif isinstance(action, Redirect):
                message = message or MessageView(data)
                if not self._redirect(prepared, action, message, account, sender, data, queue_id,
                                      requiretls):
                    _place(placements, keep_folder or "INBOX", ())
            elif isinstance(action, Reject):
                message = message or MessageView(data)
                self._reject(prepared, action, message, sender, recipient or account, queue_id)
                if action.extended:
                    prepared.ereject = action.reason
            elif isinstance(action, Vacation):
                message = message or MessageView(data)
                self._vacation(prepared, action, message, account, sender, recipient, queue_id)
            elif isinstance(action, Discard):
                log.info("%s: sieve of %s discards the message", queue_id, account)
        for folder, flags in placements.items():
            if not defer:
                try:
                    prepared.mailbox.append(self.store.prepare_local(
                        sender, [account], data, clean=clean, folder=folder, flags=tuple(flags)))
                    continue
                except OverQuota:
                    pass                # no room for this copy: it waits in the queue
            prepared.deferred.append((folder, tuple(flags)))

    def _folder(self, account, action, queue_id):
        """The folder a fileinto writes to: INBOX when it is missing and not to be
        created."""
        name = action.mailbox
        if name.upper() == "INBOX":
            return "INBOX"
        self.store.ensure_user(account)
        if self.store.folder_exists(account, name):
            return name
        if action.create:
            try:
                self.store.create_folder(account, name)
                return name
            except Exception as exc:       # a bad name, a file in the way: keep instead
                log.warning("%s: sieve of %s cannot create folder %r (%s); kept in INBOX",
                            queue_id, account, name, exc)
                return "INBOX"
        log.warning("%s: sieve of %s files into %r, which does not exist; kept in INBOX",
                    queue_id, account, name)
        return "INBOX"

    def _redirect(self, prepared, action, message, account, sender, data, queue_id, requiretls):
        """Queue the redirected copy with `Delivered-To: <account>` on top; False (and
        nothing queued) when the account's redirect already passed this message: a
        loop, which would otherwise go round the queue for ever."""
        if any(v.strip("<> ").lower() == account.lower() for v in message.raw_values("delivered-to")):
            log.warning("%s: sieve of %s: redirect to <%s> would loop (Delivered-To: %s); kept "
                        "in INBOX", queue_id, account, action.address, account)
            return False
        forward = self.srs.forward(sender) if self.srs is not None and sender else sender
        copy = f"Delivered-To: {account}\r\n".encode() + data
        prepared.queued.append(self.queue.prepare(forward, [action.address], copy, queue_id,
                                                  requiretls=requiretls))
        log.info("%s: sieve of %s redirects to <%s>", queue_id, account, action.address)
        return True

    def _reject(self, prepared, action, message, sender, recipient, queue_id):
        if not sender:
            log.info("%s: sieve of %s rejects a message with the null sender: dropped, no "
                     "refusal sent", queue_id, recipient)
            return
        mdn = make_refusal(action.reason, message, sender, recipient, self.hostname)
        if self.signer is not None:
            mdn = self.signer.sign_report(mdn)
        prepared.queued.append(self.queue.prepare("", [sender], mdn, queue_id))
        log.info("%s: sieve of %s %s the message; refusal to <%s>", queue_id, recipient,
                 "erejects" if action.extended else "rejects", sender)

    def _vacation(self, prepared, action, message, account, sender, recipient, queue_id):
        own = [account, recipient or account, *action.addresses]
        why = refusal(message, sender, own)
        if why:
            log.info("%s: sieve vacation of %s: no reply (%s)", queue_id, account, why)
            return
        responses = Responses(self.scripts.directory(account),
                              **({"clock": self.clock} if self.clock else {}))
        if responses.recent(action.handle, sender):
            log.info("%s: sieve vacation of %s: <%s> already answered", queue_id, account, sender)
            return
        reply = make_reply(action, message, sender, account, recipient, self.hostname)
        if self.signer is not None:
            reply = self.signer.sign(reply)
        prepared.queued.append(self.queue.prepare("", [sender], reply, queue_id))
        prepared.after.append(lambda: responses.record(action.handle, sender, action.days))
        log.info("%s: sieve vacation of %s replies to <%s>", queue_id, account, sender)


def _place(placements, folder, flags):
    have = placements.setdefault(folder, [])
    for flag in flags:
        if flag.lower() not in (f.lower() for f in have):
            have.append(flag)

