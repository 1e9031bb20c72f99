"""The SMTP session's policy steps: what the server decides about a client and its
mail at connect, MAIL, RCPT and the end of DATA, apart from the dialogue itself.

The session (session.py) holds one `Policy` per connection and asks it at each step;
a refusal is raised as SMTPReplyError carrying its Reply (or, at connect, returned),
so the session's one catch point answers it.  The steps:

- connect: the MX defences (inbound/defence.py: block/allow lists, rates) and the
  pregreet test (postscreen's: bytes before the banner);
- MAIL: sender identity (sender_identity.py: 553/550 5.7.1) and the user's sending
  limit (send_quota.py: 450 4.7.1), then the per-client message rate;
- RCPT: the sending limit counted in recipients, the directory-harvest cut-off
  (421 after too many unknown recipients), greylisting;
- end of DATA: SPF, DKIM, DMARC, ARC (inbound/checks.py, RFC 7208/6376/7489/8617)
  and then the content filter (inbound/rspamd.py via the defences).

The MX defences and the inbound checks are never asked for trusted networks (`[server]
trusted_networks`), submission, implicit TLS, or an authenticated client.  The
components are read from the file handler at each use, so a reload (which swaps
`handler.defence`, `handler.inbound`, `handler.senders`) takes effect at the next step.
"""

import select
import socket

from ..login import in_networks
from . import replies as R
from .message import Header
from .replies import SMTPReplyError


class Policy:
    """One session's policy: `server` gives the handler, hostname, mode and trusted
    networks; `peer` is the client address, `log` the session's logger."""

    def __init__(self, server, peer, log):
        self.server = server
        self.peer = peer
        self.log = log
        self.trusted = in_networks(peer, server.policy.trusted_networks)
        self.unknown_recipients = 0         # RCPTs refused as unknown: harvesting

    def defence(self, user=None):
        """The MX defences (inbound/defence.py) for this client, or None: never for
        trusted networks, submission, implicit TLS or an authenticated `user`."""
        server = self.server
        defence = server.handler.defence
        if (defence is None or self.trusted or server.mode != "mx" or server.implicit_tls
                or user is not None):
            return None
        return defence

    # -- connect -------------------------------------------------------------------
    def at_connect(self, connection):
        """The Reply refusing a new client (block list, connection rate, pregreet),
        or None to greet it."""
        defence = self.defence()
        if defence is None:
            return None
        refusal = defence.on_connect(self.peer, self.server.hostname)
        if refusal is None and defence.settings.pregreet:
            refusal = self._pregreet(connection, defence.settings.pregreet_wait)
        return refusal

    @staticmethod
    def _pregreet(connection, wait):
        """554 for a client that sent bytes before the banner (postscreen's pregreet
        test), waiting up to `wait` seconds for it to give itself away."""
        try:
            readable, _, _ = select.select([connection], [], [], wait)
            if readable and connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                return R.R554_PREGREET
        except (BlockingIOError, InterruptedError):
            pass
        return None

    # -- MAIL ----------------------------------------------------------------------
    def check_mail(self, sender, user):
        """Sender identity and, for a `user`, the messages-per-hour limit; then the
        client's message rate.  Raises the reply refusing MAIL FROM:<sender>."""
        refusal = self.server.handler.senders.envelope_refusal(sender, user=user, trusted=self.trusted)
        if refusal is not None:
            self.log.warning("sender <%s> refused: %s (user %s)", sender, refusal.text, user)
            raise SMTPReplyError(refusal)
        if user is not None:
            self.check_quota(user, 0)
        defence = self.defence(user)
        if defence is not None:
            refusal = defence.on_mail(self.peer)
            if refusal is not None:
                self.log.info("sender <%s> refused: %s", sender, refusal.text)
                raise SMTPReplyError(refusal)

    def check_quota(self, user, recipients):
        """450 4.7.1 when the user's sending limit (send_quota.py) says no to one more
        message with `recipients` recipients."""
        limit = self.server.handler.quota.refusal(user, recipients)
        if limit is not None:
            self.log.warning("sending limit of %s reached: %s", user, limit)
            raise SMTPReplyError(R.R450_SEND_LIMIT.format(limit))

    # -- RCPT ----------------------------------------------------------------------
    def unknown_recipient(self, user):
        """Count a recipient refused as unknown; raises 421 when this client is
        guessing addresses (directory harvesting), else returns."""
        self.unknown_recipients += 1
        defence = self.defence(user)
        if defence is not None and self.unknown_recipients > defence.settings.unknown_recipients > 0:
            self.log.info("disconnected after %d unknown recipients", self.unknown_recipients)
            raise SMTPReplyError(R.R421_HARVEST.format(self.server.hostname))

    def check_rcpt(self, sender, address, user):
        """Greylisting of (client, sender, recipient): raises the deferral."""
        defence = self.defence(user)
        if defence is not None:
            refusal = defence.on_rcpt(self.peer, sender, address)
            if refusal is not None:
                self.log.info("recipient <%s> deferred: %s (from=<%s>)", address, refusal.text, sender)
                raise SMTPReplyError(refusal)

    # -- end of DATA -----------------------------------------------------------------
    def check_message(self, body, *, sender, recipients, queue_id, user, helo, header=None):
        """The authentication checks, then the content filter, of mail from outside:
        returns (body with the fields they add, folder or None), or raises the
        refusal.  Nothing for authenticated or trusted clients.  `header`: the
        message.Header of `body`, when split already."""
        if user is not None or self.trusted:
            return body, None
        body, folder = self._inbound_checks(body, sender, helo, header)
        return self._content_filter(body, folder, sender, recipients, queue_id, helo)

    def _inbound_checks(self, body, sender, helo, header):
        """SPF, DKIM, DMARC and ARC (inbound/checks.py): the message with its
        Authentication-Results and the folder it goes to, or the refusal raised."""
        inbound = self.server.handler.inbound
        if inbound is None:
            return body, None
        # forged fields claiming to be ours go; the header is split once for every check
        header = inbound.strip_header(Header.of(body, header))
        body = header.data
        verdict = inbound.check(body, self.peer, helo, sender, header=header)
        if verdict.action == "reject":
            self.log.info("refused from=<%s>: %s", sender, verdict.reason)
            raise SMTPReplyError(R.R550_AUTH_POLICY.format(verdict.reason))
        if verdict.action == "tempfail":
            self.log.info("deferred from=<%s>: %s", sender, verdict.reason)
            raise SMTPReplyError(R.R451_AUTH_DNS.format(verdict.reason))
        if verdict.reason:
            self.log.info("from=<%s>: %s", sender, verdict.reason)
        return verdict.header + body, verdict.folder

    def _content_filter(self, body, folder, sender, recipients, queue_id, helo):
        """rspamd (inbound/rspamd.py, held by the defences) after the authentication
        checks: it may refuse, label, or choose Junk."""
        defence = self.server.handler.defence
        if defence is None:
            return body, folder
        outcome = defence.on_message(body, ip=self.peer, helo=helo or "", sender=sender,
                                     recipients=recipients, queue_id=queue_id,
                                     hostname=self.server.hostname)
        if outcome is None:
            return body, folder
        if outcome.refusal is not None:
            self.log.info("refused from=<%s>: %s", sender, outcome.reason)
            raise SMTPReplyError(outcome.refusal)
        if outcome.reason:
            self.log.info("from=<%s>: %s", sender, outcome.reason)
        return outcome.body, outcome.folder or folder
