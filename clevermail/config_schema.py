"""The configuration schema: every section and key with its type, default and help
text, in configobj's spec syntax.  The one source of defaults: config.py reads and
checks files against it, `clevermail config show --defaults` prints it as a documented
example file, and config_types.py holds the value types it names."""

# Each key is preceded by its help text; `clevermail config show --defaults` prints
# this as a documented example file, so keep the help to one or two lines.
CONFIGSPEC = """
[server]
# Name this server gives itself in greetings, Received headers and EHLO ("" = the machine's FQDN, or its host name when the FQDN is localhost).
hostname = string(default='')
# Where mailboxes (mail/) and the relay queue (queue/) live; relative paths are taken from the config file's folder (or the working directory).
data_dir = string(default='maildata')
# The account file shared by SMTP, POP3 and IMAP.
users_file = string(default='users.ini')
# Addresses that are not accounts: lists, forwards, catch-alls (`clevermail alias`; "" = aliases.ini beside users_file).
aliases_file = string(default='')
# Account for abuse@<any local domain> when no alias says otherwise (RFC 2142; "" = the postmaster's).
abuse = string(default='')
# Separates an address from its detail ("alice+lists@"; RFC 5233); "" = no details.
subaddress_separator = string(max=1, default='+')
# Domain of the SRS sender that forwarded mail leaves with ("" = the first local domain).
srs_domain = string(default='')
# Domains whose mail is delivered here; the first one is used for bare user names.
domains = force_list(default=list('localhost'))
# Also log to this file ("" = stderr only).
log_file = string(default='')
log_level = option('DEBUG', 'INFO', 'WARNING', 'ERROR', default='INFO')
# Log lines as text, or as one JSON object per line (time, level, logger, message, session and queue ids).
log_format = option('text', 'json', default='text')
# Clients in these networks may relay without authenticating (CIDR list). Empty = nobody: never an open relay.
trusted_networks = cidr_list(default=list())
# Account that gets mail for postmaster@<any local domain> when no such account exists (RFC 5321 4.5.1; "" = the first account in users.ini).
postmaster = string(default='')
# Allow AUTH/LOGIN/USER-PASS without TLS from non-loopback clients. Leave off unless behind a TLS proxy.
allow_plaintext_auth = boolean(default=False)
# Log each message an IMAP FETCH or POP3 RETR sends (uid, user, folder) at INFO, for `clevermail trace` (no = at DEBUG only).
log_retrievals = boolean(default=False)
# Started as root, run as this user once the ports are bound ("" = stay as started; root gets a warning).
user = string(default='')
# ...and this group ("" = the user's own group).
group = string(default='')
# Seconds a stop waits for commands in progress (a message being received) before the remaining sessions are cut; idle ones are closed at once.
drain_time = float(min=0, default=10)
# Listener kinds behind a load balancer (smtp, submission, submissions, pop3, pop3s, imap, imaps, managesieve): each connection must come from proxy_networks and begin with a PROXY header (v1 or v2, HAProxy's send-proxy) naming the client.
proxy_protocol = force_list(default=list())
# The load balancers' addresses (CIDR list) for proxy_protocol.
proxy_networks = cidr_list(default=list())
# Processes serving the listeners (1 = one process; a busy server sets its number of cores): each a threaded server on the same sockets and data.
workers = integer(min=1, max=64, default=1)
# auto: each of those processes keeps to one CPU (the i-th process to the i-th CPU it may use): a Python process runs one thread at a time, and letting its threads hand over between CPUs halved its rate (measured); off: the kernel places them.
cpu_affinity = option('auto', 'off', default='auto')

[smtp]
# MX listeners (host:port, IPv6 as [::1]:25): local domains from anyone, any domain once authenticated.
listen = listen_list(default=list('127.0.0.1:2525'))
# Submission listeners (usually :587): every transaction needs AUTH.
submission_listen = listen_list(default=list())
# Implicit-TLS submission listeners (usually :465); needs [tls].
submissions_listen = listen_list(default=list())

[pop3]
listen = listen_list(default=list('127.0.0.1:1110'))
# Implicit-TLS POP3 listeners (usually :995); needs [tls].
tls_listen = listen_list(default=list())

[imap]
listen = listen_list(default=list('127.0.0.1:1143'))
# Implicit-TLS IMAP listeners (usually :993); needs [tls].
tls_listen = listen_list(default=list())

[managesieve]
# ManageSieve listeners (RFC 5804, usually :4190; STARTTLS, no implicit TLS): users manage their Sieve filters from Roundcube or Thunderbird. Empty = off.
listen = listen_list(default=list())

[sieve]
# Users' Sieve filters (RFC 5228): scripts per user and bytes per script (ManageSieve's HAVESPACE and PUTSCRIPT, `clevermail sieve put`; 0 = no limit).
max_scripts = integer(min=0, default=20)
max_script_size = integer(min=0, default=65536)
# Redirects of one message (RFC 5228 4.2, said as MAXREDIRECTS to ManageSieve clients) and actions of one run.
max_redirects = integer(min=0, max=1000, default=4)
max_actions = integer(min=1, max=10000, default=64)
# vacation's :days is brought into this range (RFC 5230 4.1).
vacation_min_days = integer(min=1, default=1)
vacation_max_days = integer(min=1, default=90)

[tls]
# PEM certificate chain and private key; both set = STARTTLS/STLS offered and TLS listeners allowed.
certificate = string(default='')
key = string(default='')

[inbound]
# SPF, DKIM, DMARC and ARC checks of mail from outside, with an Authentication-Results header (RFC 8601).
checks = boolean(default=True)
# A DMARC failure whose domain says p=reject: refuse it (550 5.7.1), deliver it to Junk, or only tag it.
dmarc_reject = option('reject', 'quarantine', 'tag', default='reject')
# A DMARC failure whose domain says p=quarantine: deliver it to Junk, or only tag it.
dmarc_quarantine = option('quarantine', 'tag', default='quarantine')
# An SPF fail of a domain without a DMARC policy: only tag it, or refuse it.
spf_fail = option('tag', 'reject', default='tag')

[spam]
# DNS block lists (RFC 5782) asked about each client of the MX port (e.g. zen.spamhaus.org,); a listed client gets 554 5.7.1 with the list's reason.
dnsbl = force_list(default=list())
# DNS allow lists, asked first: a client listed there skips the block lists.
dnswl = force_list(default=list())
# Greylisting (RFC 6647): 451 4.7.1 for an unknown (client /24 or /64, sender, recipient) until it retries after greylist_delay seconds.
greylist = boolean(default=False)
greylist_delay = float(min=0, default=300)
# Per client address and minute (0 = no limit): connections (421) and messages (450 4.7.1).
connections_per_minute = integer(min=0, default=0)
messages_per_minute = integer(min=0, default=0)
# Unknown recipients one session may try before it is cut off with 421 (directory harvesting; 0 = no limit).
unknown_recipients = integer(min=0, default=5)
# Refuse (554) a client that talks before the banner, as postscreen does, watching for pregreet_wait seconds first (0 = only what has arrived already: the banner is not delayed).
pregreet = boolean(default=False)
pregreet_wait = float(min=0, max=30, default=0)
# rspamd's normal worker (host:port, e.g. 127.0.0.1:11333; "" = no content filter), asked at the end of DATA for mail from outside: reject -> 550 5.7.1, soft reject/greylist -> 451 4.7.1, add header/rewrite subject -> X-Spam headers and the Junk folder.
rspamd = hostport(default='')
rspamd_timeout = float(min=0.1, max=600, default=10)
# rspamd slow or down: accept the mail unscanned with a WARNING (open), or answer 451 4.7.1 (tempfail).
rspamd_fail = option('open', 'tempfail', default='open')

[senders]
# What accounts may send as besides their own address and its +detail forms: "account=pattern" items, * matching any text (noreply@example.org=*@example.org).
send_as = send_as_list(default=list())
# Messages and recipients one authenticated user may send per hour (0 = no limit); past them 450 4.7.1.
messages_per_hour = integer(min=0, default=500)
recipients_per_hour = integer(min=0, default=2000)

[quota]
# Default mailbox quota of every account (store/quota.py): bytes (or 500M, 2G...) and messages over all its folders; "none" = no limit. Per-user values: `clevermail user quota`.
storage = quota_storage(default='none')
messages = quota_messages(default='none')

[limits]
# Largest message accepted (bytes), advertised as SMTP SIZE and used as the IMAP literal limit.
message_size = integer(min=1024, default=26214400)
# Recipients per SMTP transaction (452 past it).
recipients = integer(min=1, default=100)
# Concurrent connections per protocol listener group, and per client address.
connections = integer(min=1, default=1000)
connections_per_client = integer(min=1, default=50)
# Idle timeouts in seconds (RFC 5321 suggests 5 min, RFC 1939 10 min, RFC 3501 at least 30 min; RFC 5804 says none).
smtp_timeout = float(min=1, default=300)
pop3_timeout = float(min=1, default=600)
imap_timeout = float(min=1, default=1800)
managesieve_timeout = float(min=1, default=600)
# Seconds a failed authentication waits before it is answered.
auth_failure_delay = float(min=0, default=1.5)
# Failed authentications per client address within auth_failure_window seconds before it is refused outright.
auth_failures_per_client = integer(min=1, default=10)
auth_failure_window = float(min=1, default=300)
# Protocol errors in one session before it is disconnected.
errors_per_session = integer(min=1, default=20)

[relay]
# Seconds between queue scans (the worker is also woken on every enqueue).
interval = float(min=0.1, default=60)
# DNS servers for MX lookups (address, address:port or [v6]:port; port 53 if none); empty = the system's resolver.
nameservers = nameserver_list(default=list())
# Port used to reach MX hosts (25 on the internet; tests and staging use sinks elsewhere).
mx_port = integer(min=1, max=65535, default=25)
# Send all external mail through this host:port instead of MX lookup ("" = direct delivery).
smarthost = hostport(default='')
smarthost_user = string(default='')
smarthost_password = string(default='')
smarthost_tls = option('none', 'starttls', 'implicit', default='starttls')
# Seconds between delivery attempts; the last value repeats (jitter is added).
retry_schedule = int_list(min=1, default=list(300, 600, 1200, 2400, 4800, 9600, 14400))
# Seconds after which an undelivered recipient fails and is bounced.
queue_lifetime = integer(min=60, default=432000)
# Seconds after which the sender is warned of a delay, once (a "delayed" DSN, RFC 3464),
# for recipients whose NOTIFY includes DELAY or who gave no NOTIFY (0 = never).
delay_warning = integer(min=0, default=14400)
# Deliveries run in parallel (one slow domain does not hold up the others).
concurrency = integer(min=1, max=64, default=4)
# Seconds to wait for an MX host or smarthost to answer a connection.
connect_timeout = float(min=1, default=30)
# PEM CA certificate(s) that verify the smarthost's certificate ("" = the system CAs).
smarthost_ca_file = string(default='')
# SHA-256 fingerprint of the smarthost's certificate (hex, colons allowed): it must match ("" = not pinned).
smarthost_fingerprint = fingerprint(default='')
# The nameservers validate DNSSEC and the path to them is trusted: their AD bit is believed, and DANE (RFC 7672) applies to MX hosts with secure TLSA records.
dnssec = boolean(default=False)
# Apply recipient domains' MTA-STS policies (RFC 8461), fetched over HTTPS and cached under data_dir/mta-sts.
mta_sts = boolean(default=True)

[metrics]
# Prometheus metrics at http://host:port/metrics ("" = off). No authentication: loopback only unless allow_remote.
listen = listen_hostport(default='')
# Serve the metrics on a non-loopback address (anyone who reaches it reads them).
allow_remote = boolean(default=False)

[dkim]
# Sign mail of authenticated clients and the server's reports for local domains (RFC 6376, rsa-sha256 + ed25519-sha256); keys in <data_dir>/dkim, see `clevermail dkim list`.
sign = boolean(default=True)
"""
