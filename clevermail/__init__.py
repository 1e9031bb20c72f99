"""CleverMail: SMTP, POP3 and IMAP servers over one account file and one Maildir++ store,
with a relay queue delivered to MX hosts by a timer thread."""

__version__ = "0.1.0"
