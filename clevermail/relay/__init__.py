"""The relay: mail for remote domains, queued on disk and delivered by a worker thread.

- queue.py     the file queue (<data_dir>/queue/): enqueue by rename, per-recipient
               state, atomic claims between workers and processes, operator actions.
- mx.py        MX/A/AAAA lookup with dnspython (RFC 5321 5.1, RFC 7505 null MX).
- delivery.py  one SMTP attempt per domain or smarthost with smtplib (RFC 5321,
               3207 STARTTLS, 1870 SIZE, 4954 AUTH, 8314 implicit TLS).
- worker.py    RelayWorker: the timer thread that schedules, retries, expires and
               reports.
- bounce.py    RFC 3464 delivery status notifications (bounces, delay warnings).

No module here reads configuration; service.py passes plain arguments.
"""
