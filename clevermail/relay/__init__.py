"""The relay: mail for remote domains, queued on disk and delivered by a worker thread.

- entry.py     Entry and Recipient: the JSON envelope of a queued message and the
               per-recipient states.
- queue.py     the file queue (<data_dir>/queue/): enqueue by rename, atomic claims
               between workers and processes, operator actions (hold, release,
               flush, bounce, delete), entries named by their queue id.
- handles.py   PendingEntry and Claim, the handles the queue gives out; NoSuchEntry.
- select.py    Selector (which entries an operator means) and QueueSummary (counts
               by state, oldest age: `queue list` and the metrics).
- mx.py        MX/A/AAAA lookup with dnspython (RFC 5321 5.1, RFC 7505 null MX).
- delivery.py  one attempt per domain or smarthost: hosts, addresses, TLS ways.
- smtp_client.py  one smtplib transaction with one host (RFC 5321, 3207 STARTTLS,
               1870 SIZE, 4954 AUTH, 8314 implicit TLS, 8689 REQUIRETLS, 3461 DSN
               parameters passed on).
- tls_policy.py  the TLS rules of one session (DANE, MTA-STS, REQUIRETLS, "may",
               smarthost pinning) and what a handshake achieved (TLSInfo).
- mta_sts.py   MTA-STS (RFC 8461): TXT id, HTTPS policy fetch, parse, cache.
- dane.py      DANE (RFC 7672, 6698): secure TLSA lookup and certificate matching.
- worker.py    RelayWorker: the timer thread and delivery threads; decides reports.
- local.py     the worker's local deliveries (a copy's folder and flags kept) and
               what their outcomes mean (250, 550 5.1.1, 452/552 X.2.2, 451).
- settings.py  RelaySettings: the worker's configuration as one frozen value.
- schedule.py  retry, expiry and report decisions (pure functions of an entry).
- bounce.py    RFC 3464 delivery status notifications (bounces, delay warnings,
               success reports; RFC 3461 ENVID, ORCPT, RET).
- reports.py   Reports: sends our reports (local mailbox or queue, null sender, DKIM).

No module here reads configuration; service.py passes a RelaySettings built by
config.py, and plain collaborators (queue, resolver, local delivery).
"""
