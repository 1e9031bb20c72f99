"""`clevermail sandbox`: a whole CleverMail on loopback for testing applications that
send and read mail (every recipient accepted into its own mailbox, nothing relayed,
any login accepted), with a JSON API and faults on demand; the pytest plugin
(clevermail/pytest_plugin.py) runs the same thing in the test process.

    service.py      Sandbox (data dir, certificate, sandbox.ini, service, API) and
                    SandboxService, MailService with the collaborators below
    accounts.py     SandboxAccounts: every address has a mailbox, any password logs in
                    (users.ini accounts need theirs)
    routing.py      SandboxRouter (every recipient is its own local mailbox) and
                    AnySender (no sender rules)
    faults.py       --fail-rcpt, --delay, --drop-after-data: the SMTP session variant
    mailboxes.py    the mailboxes and messages as JSON-ready values, wait, empty
    api.py          the JSON API (http.server, loopback only)
    certificate.py  the self-signed certificate for STARTTLS
"""
