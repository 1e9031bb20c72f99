"""The example application (tests/example_app) tested as a user's project would test
it: with CleverMail's pytest fixtures and nothing else (no server of its own, no
knowledge of CleverMail's internals)."""

import imaplib
import smtplib

import pytest

from example_app import Inbox, Mailer

pytestmark = pytest.mark.e2e


def test_order_confirmation_arrives(clevermail_server):
    mailer = Mailer(clevermail_server.smtp_settings, login=False)
    assert mailer.send_order_confirmation("ann@customer.example", 1001, ["tea", "cups"]) == {}
    msg = clevermail_server.wait_for("ann@customer.example", subject="Order 1001")
    assert msg["X-Order-Id"] == "1001"
    assert msg.get_content() == "Thank you for your order:\n- tea\n- cups\n"


def test_attachment_and_starttls_through_submission(clevermail_server):
    mailer = Mailer(clevermail_server.submission_settings, cafile=clevermail_server.cafile)
    mailer.send_order_confirmation("ben@customer.example", 1002, ["kettle"], invoice_pdf=b"%PDF-1.4 ...")
    msg = clevermail_server.wait_for("ben@customer.example", headers={"X-Order-Id": "1002"})
    (invoice,) = msg.iter_attachments()
    assert (invoice.get_filename(), invoice.get_content()) == ("invoice-1002.pdf", b"%PDF-1.4 ...")


def test_mailboxes_are_empty_at_each_test_start(clevermail_server):
    """The two tests above left mail for ann and ben: gone now."""
    assert clevermail_server.messages("ann@customer.example") == []
    assert clevermail_server.messages("ben@customer.example") == []


def test_the_app_reads_what_it_sent_over_imap(clevermail_server, clevermail_account):
    Mailer(clevermail_account.smtp_settings).send_order_confirmation(
        clevermail_account.address, 1003, ["spoon"])
    clevermail_server.wait_for(clevermail_account.address, subject="Order 1003")
    assert Inbox(clevermail_account.imap_settings).subjects() == ["Order 1003 confirmed"]


def test_the_account_password_is_real(clevermail_account):
    settings = dict(clevermail_account.imap_settings, password="not the password")
    with pytest.raises(imaplib.IMAP4.error):
        Inbox(settings).subjects()
    with pytest.raises(smtplib.SMTPAuthenticationError):
        Mailer(dict(clevermail_account.smtp_settings, password="wrong")).send_order_confirmation(
            "x@example.org", 1, ["x"])


def test_any_address_reads_its_own_mailbox(clevermail_server):
    Mailer(clevermail_server.smtp_settings, login=False).send_order_confirmation("cy@example.net", 1004, ["a"])
    clevermail_server.wait_for("cy@example.net", subject="1004")
    settings = dict(clevermail_server.imap_settings, user="cy@example.net", password="anything")
    assert Inbox(settings).subjects(unseen_only=True) == ["Order 1004 confirmed"]


def test_wait_for_says_what_the_mailbox_holds_when_nothing_matches(clevermail_server):
    Mailer(clevermail_server.smtp_settings, login=False).send_order_confirmation("di@example.net", 1005, ["b"])
    with pytest.raises(AssertionError, match=r"holds 1: \['Order 1005 confirmed'\]"):
        clevermail_server.wait_for("di@example.net", subject="Order 9999", timeout=0.2)


def test_the_app_sees_a_refused_recipient(clevermail_server):
    clevermail_server.set_faults(fail_rcpt=["*@gone.example=550"])
    mailer = Mailer(clevermail_server.smtp_settings, login=False)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        mailer.send_order_confirmation("old@gone.example", 1006, ["c"])
    assert info.value.recipients["old@gone.example"][0] == 550


def test_the_app_sees_a_dropped_connection_and_nothing_is_delivered(clevermail_server):
    clevermail_server.set_faults(drop_after_data=True)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        Mailer(clevermail_server.smtp_settings, login=False).send_order_confirmation("ed@example.net", 1007, ["d"])
    assert clevermail_server.messages("ed@example.net") == []


def test_faults_end_with_their_test(clevermail_server):
    mailer = Mailer(clevermail_server.smtp_settings, login=False)
    assert mailer.send_order_confirmation("old@gone.example", 1008, ["e"]) == {}
    clevermail_server.wait_for("old@gone.example", subject="1008")


def test_settings_are_ready_for_the_stdlib_clients(clevermail_server):
    for settings in (clevermail_server.smtp_settings, clevermail_server.imap_settings,
                     clevermail_server.pop3_settings, clevermail_server.submission_settings):
        assert set(settings) == {"host", "port", "user", "password"}
        assert settings["host"] == "127.0.0.1" and settings["port"] > 0
