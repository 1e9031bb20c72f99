"""The pytest plugin's `clevermail_server.wait_for` looks in every folder of the
address (a copy Sieve filed elsewhere is found), or in the one folder asked for, and
says what each folder holds when nothing matched."""

import smtplib
from email.message import EmailMessage

import pytest

pytestmark = pytest.mark.e2e


def send(server, rcpt, subject):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "app@myapp.test", rcpt, subject
    msg.set_content("body\n")
    with smtplib.SMTP(server.smtp_settings["host"], server.smtp_settings["port"], timeout=10) as smtp:
        smtp.send_message(msg)


@pytest.fixture
def filtered(clevermail_server):
    """ivy@example.net files mail about invoices into Billing; the script goes with the test."""
    scripts = clevermail_server.sandbox.service.sieve_scripts
    scripts.put("ivy@example.net", "filter", 'require ["fileinto", "mailbox"];\r\n'
                'if header :contains "subject" "invoice" { fileinto :create "Billing"; }\r\n')
    scripts.activate("ivy@example.net", "filter")
    yield clevermail_server
    scripts.activate("ivy@example.net", None)


def test_wait_for_finds_a_filed_copy_and_takes_a_folder(filtered):
    send(filtered, "ivy@example.net", "invoice 7")
    send(filtered, "ivy@example.net", "hello")
    assert filtered.wait_for("ivy@example.net", subject="invoice 7")["Subject"] == "invoice 7"
    assert filtered.wait_for("ivy@example.net", subject="invoice", folder="Billing")["Subject"] == "invoice 7"
    assert filtered.wait_for("ivy@example.net", subject="hello", folder="INBOX")["Subject"] == "hello"
    with pytest.raises(AssertionError, match=r"INBOX holds 1: \['hello'\]"):
        filtered.wait_for("ivy@example.net", subject="invoice", folder="INBOX", timeout=0.2)
    with pytest.raises(AssertionError, match=r"INBOX holds 1: \['hello'\]; Billing holds 1: \['invoice 7'\]"):
        filtered.wait_for("ivy@example.net", subject="nothing like it", timeout=0.2)
