"""Tests for clevermail.imap.replies: named replies and the errors they make, the one
unexpected-error answer, and the store and login error mappings (RFC 3501 7.1, RFC
5530 codes)."""

import pytest

from clevermail import login
from clevermail.imap import replies as R
from clevermail.store.errors import FolderExists, InvalidName, MessageGone, NoSuchFolder, StoreError


def test_a_named_reply_makes_an_error_of_its_kind_with_its_code():
    exc = R.READ_ONLY.error()
    assert type(exc) is R.IMAPNo
    assert exc.reply("a1") == b"a1 NO [READ-ONLY] Mailbox is read-only\r\n"
    exc = R.EXPECTED_DONE.error()
    assert type(exc) is R.IMAPBad and exc.code is None
    assert exc.reply("i1") == b"i1 BAD Expected DONE\r\n"
    exc = R.MAILBOX_DELETED.error()
    assert type(exc) is R.IMAPBye
    assert exc.reply() == b"* BYE Selected mailbox was deleted\r\n"


def test_each_raise_gets_a_new_exception():
    # a raised instance keeps its traceback; sharing one across raises would grow it
    assert R.TRYCREATE.error() is not R.TRYCREATE.error()


def test_placeholders_are_filled_from_the_arguments():
    assert R.UNKNOWN_UID_COMMAND.error("FROB").reply("a") == b"a BAD Unknown UID command FROB\r\n"
    assert R.UNKNOWN_STATUS_ITEM.error("X").text == "Unknown STATUS item 'X'"
    assert R.WRONG_STATE.error("UID", "Log in first").text == "UID not allowed in this state: Log in first"


def test_untagged_lines():
    assert R.AUTOLOGOUT.untagged() == b"* BYE Autologout; idle for too long\r\n"
    assert R.BUSY.untagged() == b"* BYE [UNAVAILABLE] Too many connections, try later\r\n"
    assert R.LINE_TOO_LONG.untagged() == b"* BAD Command line too long\r\n"


def test_internal_error_is_one_definition_in_two_forms():
    assert R.internal_error("a7") == b"a7 NO [SERVERBUG] Internal error, the command was not completed\r\n"
    assert R.internal_error() == b"* BAD [SERVERBUG] Internal error, the command was not completed\r\n"


@pytest.mark.parametrize("exc, line", [
    (NoSuchFolder("x"), b"t NO [NONEXISTENT] Mailbox does not exist\r\n"),
    (FolderExists("x"), b"t NO [ALREADYEXISTS] Mailbox already exists\r\n"),
    (InvalidName("bad/../name"), b"t NO [CANNOT] Invalid mailbox name: bad/../name\r\n"),
    (MessageGone("x"), b"t NO [EXPUNGEISSUED] Some of the requested messages no longer exist\r\n"),
    (StoreError("disk"), b"t NO [SERVERBUG] Storage error, try again\r\n"),
])
def test_store_errors(exc, line):
    assert R.store_error(exc).reply("t") == line


def test_login_errors():
    def line(exc):
        return R.login_error(exc).reply("t")
    assert line(login.Failed()) == b"t NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
    assert line(login.Failed(foreign_authzid=True)) == b"t NO [AUTHORIZATIONFAILED] Authorization identity must match the user\r\n"
    assert line(login.Throttled()) == b"t NO [UNAVAILABLE] Too many failed logins, try later\r\n"
    assert line(login.Cancelled()) == b"t BAD Authentication cancelled\r\n"
    assert line(login.ResponseTooLong()) == b"t BAD Authentication response too long\r\n"
    assert line(login.Malformed("no NUL")) == b"t BAD Invalid SASL response: no NUL\r\n"
