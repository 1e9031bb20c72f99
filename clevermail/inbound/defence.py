"""The MX listener's defences against abuse, without a content filter: DNS block and
allow lists (dnsbl.py), greylisting (greylist.py), per-client-address rate limits on
connections and messages per minute (as Postfix's anvil), the limit of unknown
recipients per session (directory harvesting), and pregreet detection (a client that
talks before the banner, as Postfix's postscreen catches it).

None of it applies to authenticated sessions or trusted_networks: the session asks
only for other clients.  Each method returns the reply that refuses, or None; the
session raises it.  Off until configured ([spam]; 0 = no limit), except the unknown
recipient limit (5).  Pregreet detection is off by default too: a client that
pipelines before the banner breaks RFC 5321 3.1, but clients that do are not rare
behind proxies and in tests, so an operator turns it on knowingly.

The content filter (rspamd.py, [spam] rspamd) is held here too, as `content`, so the
session finds every defence in one place; it is asked at the end of DATA.
"""

import collections
import threading
import time
from dataclasses import dataclass

from ..metrics import NO_METRICS
from ..smtp import replies as R


@dataclass(frozen=True)
class SpamSettings:
    """[spam]: the built-in defences."""

    dnsbl: tuple = ()                       # block list zones (zen.spamhaus.org, ...)
    dnswl: tuple = ()                       # allow list zones, asked first
    greylist: bool = False
    greylist_delay: float = 300.0           # seconds before a retry passes
    connections_per_minute: int = 0         # per client address; 0 = no limit
    messages_per_minute: int = 0
    unknown_recipients: int = 5             # per session before 421 (harvesting)
    pregreet: bool = False                  # refuse a client that talks before the banner
    pregreet_wait: float = 0.0              # seconds to watch for it (0: no delay)
    rspamd: tuple | None = None             # (host, port) of rspamd's normal worker; None = off
    rspamd_timeout: float = 10.0
    rspamd_fail: str = "open"               # open | tempfail, when rspamd cannot answer


class ClientRates:
    """Events per client address in the last minute, in memory (a restart forgets:
    these limits are about bursts)."""

    def __init__(self, limit, clock=time.monotonic):
        self.limit = limit
        self.clock = clock
        self._events = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def hit(self, key):
        """Count one event; True when it is over the limit (then it is not counted)."""
        if not self.limit:
            return False
        now = self.clock()
        with self._lock:
            events = self._events[key]
            while events and events[0] <= now - 60.0:
                events.popleft()
            if len(events) >= self.limit:
                return True
            events.append(now)
            if len(self._events) > 100000:          # bounded: forget the idle ones
                for k in [k for k, v in self._events.items() if not v]:
                    del self._events[k]
            return False


class Defence:
    """Each defence that is on, asked, counts its answer in `metrics` (refused or
    passed; a rate limit of 0 is off and counts nothing)."""

    def __init__(self, settings, dnslists=None, greylist=None, clock=time.monotonic, content=None,
                 metrics=NO_METRICS):
        self.settings = settings
        self.content = content          # the content filter (rspamd.ContentFilter), or None
        self.dnslists = dnslists
        self.greylist = greylist
        self.metrics = metrics
        self.connections = ClientRates(settings.connections_per_minute, clock)
        self.messages = ClientRates(settings.messages_per_minute, clock)

    def on_connect(self, ip, hostname):
        if self.connections.limit:
            over = self.connections.hit(ip)
            self.metrics.defence("connection_rate", over)
            if over:
                return R.R421_CLIENT_RATE.format(hostname)
        return None

    def on_mail(self, ip):
        if self.dnslists is not None:
            listing = self.dnslists.check(ip)
            self.metrics.defence("dnsbl", listing is not None)
            if listing is not None:
                return R.R554_DNSBL.format(ip, listing.zone, listing.reason)
        if self.messages.limit:
            over = self.messages.hit(ip)
            self.metrics.defence("message_rate", over)
            if over:
                return R.R450_MESSAGE_RATE
        return None

    def on_rcpt(self, ip, sender, rcpt):
        if self.greylist is not None:
            wait = self.greylist.check(ip, sender, rcpt)
            self.metrics.defence("greylist", wait is not None)
            if wait is not None:
                return R.R451_GREYLISTED.format(int(wait) + 1)
        return None

    def on_message(self, body, **envelope):
        """The content filter's Outcome for `body` (inbound/rspamd.py), or None when
        there is no filter."""
        if self.content is None:
            return None
        return self.content.check(body, **envelope)

    def close(self):
        if self.greylist is not None:
            self.greylist.close()
