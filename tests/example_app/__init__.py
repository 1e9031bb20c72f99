"""A small application as a user of CleverMail's pytest plugin would have one: it sends
its mail through smtplib and reads a mailbox through imaplib, configured by the
{host, port, user, password} dicts it is given.  tests/test_example_app.py tests it with
the plugin's fixtures only."""

import email
import email.policy
import imaplib
import smtplib
import ssl
from email.message import EmailMessage


class Mailer:
    """Sends the shop's mail.  `settings`: {host, port, user, password}; `login`:
    whether to authenticate; `cafile`: verify STARTTLS with it (None: no TLS)."""

    def __init__(self, settings, sender="shop@example.com", login=True, cafile=None):
        self.settings = settings
        self.sender = sender
        self.login = login
        self.cafile = cafile

    def send_order_confirmation(self, to, order, items, invoice_pdf=None):
        msg = EmailMessage()
        msg["From"] = f"Example Shop <{self.sender}>"
        msg["To"] = to
        msg["Subject"] = f"Order {order} confirmed"
        msg["X-Order-Id"] = str(order)
        msg.set_content("Thank you for your order:\n" + "".join(f"- {item}\n" for item in items))
        if invoice_pdf is not None:
            msg.add_attachment(invoice_pdf, maintype="application", subtype="pdf",
                               filename=f"invoice-{order}.pdf")
        return self.send(msg)

    def send(self, msg):
        """Send; returns the refused recipients {address: (code, text)} (smtplib's)."""
        s = self.settings
        with smtplib.SMTP(s["host"], s["port"], timeout=30) as smtp:
            if self.cafile:
                smtp.starttls(context=ssl.create_default_context(cafile=self.cafile))
            if self.login:
                smtp.login(s["user"], s["password"])
            return smtp.send_message(msg)


class Inbox:
    """Reads a mailbox over IMAP: `settings` {host, port, user, password}."""

    def __init__(self, settings):
        self.settings = settings

    def subjects(self, unseen_only=False):
        s = self.settings
        imap = imaplib.IMAP4(s["host"], s["port"], timeout=30)
        try:
            imap.login(s["user"], s["password"])
            imap.select("INBOX", readonly=True)
            _, data = imap.search(None, "UNSEEN" if unseen_only else "ALL")
            out = []
            for num in data[0].split():
                _, parts = imap.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                out.append(str(email.message_from_bytes(parts[0][1], policy=email.policy.default)["Subject"]))
            return out
        finally:
            imap.logout()
