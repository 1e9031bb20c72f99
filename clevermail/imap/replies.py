"""IMAP status responses as named constants, and the errors that carry them (RFC 3501
7.1; response codes RFC 3501 7.1, RFC 5530, RFC 4315, RFC 7888, RFC 7162, RFC 6154).

A command raises `R.READ_ONLY.error()` (or `R.UNKNOWN_UID_COMMAND.error(word)` for a
text with a placeholder); the session's single catch point sends `exc.reply(tag)`
and counts the error when it is a BAD.  IMAPNo, IMAPBad and IMAPBye can still be
raised with a free text (the parsers do, naming the token they stopped at).  The
untagged lines the session sends on its own (BYE, the line-too-long BAD) are named
here too, and so is the one answer to an unexpected error (internal_error).
"""

import logging

from .. import login
from ..store.errors import FolderExists, InvalidName, MessageGone, NoSuchFolder, SpecialUseError
from ..store.quota import OverQuota


class IMAPError(Exception):
    """Base: a tagged reply of kind `status` with optional response code."""

    status = "NO"

    def __init__(self, text, code=None):
        super().__init__(text)
        self.text = text
        self.code = code

    def reply(self, tag):
        """The tagged reply line as bytes (CRLF included)."""
        code = f"[{self.code}] " if self.code else ""
        return f"{tag} {self.status} {code}{self.text}\r\n".encode("utf-8", "replace")


class IMAPNo(IMAPError):
    """The command was understood but failed (tagged NO)."""

    status = "NO"


class IMAPBad(IMAPError):
    """Protocol-level error: unknown command, bad syntax, wrong state (tagged BAD)."""

    status = "BAD"


class IMAPBye(IMAPError):
    """The server ends the session: untagged BYE, then close."""

    status = "BYE"

    def reply(self, tag=None):
        code = f"[{self.code}] " if self.code else ""
        return f"* BYE {code}{self.text}\r\n".encode("utf-8", "replace")


_ERRORS = {"NO": IMAPNo, "BAD": IMAPBad, "BYE": IMAPBye}


class Reply:
    """One named status response: status (NO, BAD or BYE), response code or None,
    text; `{}` in the text are filled by error(*args)."""

    __slots__ = ("status", "code", "text")

    def __init__(self, status, code, text):
        self.status = status
        self.code = code
        self.text = text

    def error(self, *args):
        """A new exception carrying this reply, its text filled with args (a new one
        per raise: a raised instance keeps its traceback)."""
        text = self.text.format(*args) if args else self.text
        return _ERRORS[self.status](text, self.code)

    def untagged(self):
        """The untagged line as bytes ("* BYE ...")."""
        code = f"[{self.code}] " if self.code else ""
        return f"* {self.status} {code}{self.text}\r\n".encode("utf-8", "replace")

    def __repr__(self):
        return f"Reply({self.status} [{self.code}] {self.text!r})"


# -- any state and the session's own lines ---------------------------------------------
UNKNOWN_COMMAND = Reply("BAD", None, "Unknown command")
WRONG_STATE = Reply("BAD", None, "{} not allowed in this state: {}")
LINE_TOO_LONG = Reply("BAD", None, "Command line too long")
TOO_MANY_ERRORS = Reply("BYE", None, "Too many invalid commands")
BUSY = Reply("BYE", "UNAVAILABLE", "Too many connections, try later")
AUTOLOGOUT = Reply("BYE", None, "Autologout; idle for too long")
SHUTTING_DOWN = Reply("BYE", None, "Server shutting down")      # RFC 3501 7.1.5
LOGGING_OUT = Reply("BYE", None, "CleverMail logging out")
MAILBOX_DELETED = Reply("BYE", None, "Selected mailbox was deleted")
# RFC 7888 4: a non-synchronizing literal over the limit is already on its way, so
# the session cannot resynchronise and ends; a command over the limit in total too
LITERAL_TOO_LARGE = Reply("BYE", "TOOBIG", "Literal too large")
COMMAND_TOO_LARGE = Reply("BYE", "TOOBIG", "Command too large")
ID_ARGS = Reply("BAD", None, "ID takes one argument: a list or NIL")
# An unexpected exception (a bug, a disk error): see internal_error()
SERVERBUG = Reply("NO", "SERVERBUG", "Internal error, the command was not completed")
STORAGE_ERROR = Reply("NO", "SERVERBUG", "Storage error, try again")

# -- not authenticated: STARTTLS, LOGIN, AUTHENTICATE ------------------------------------
TLS_UNAVAILABLE = Reply("BAD", None, "TLS not available")
TLS_ACTIVE = Reply("BAD", None, "TLS already active")
LOGIN_ARGS = Reply("BAD", None, "LOGIN takes a user name and a password")
AUTHENTICATE_ARGS = Reply("BAD", None, "AUTHENTICATE takes a mechanism and an optional initial response")
UNSUPPORTED_MECHANISM = Reply("NO", "CANNOT", "Unsupported authentication mechanism")
LOGIN_NEEDS_TLS = Reply("NO", "PRIVACYREQUIRED", "Plaintext login is disabled, use STARTTLS")
AUTHENTICATE_NEEDS_TLS = Reply("NO", "PRIVACYREQUIRED", "Authentication needs TLS, use STARTTLS")
AUTHENTICATION_FAILED = Reply("NO", "AUTHENTICATIONFAILED", "Authentication failed")
AUTHORIZATION_FAILED = Reply("NO", "AUTHORIZATIONFAILED", "Authorization identity must match the user")
THROTTLED = Reply("NO", "UNAVAILABLE", "Too many failed logins, try later")
AUTH_CANCELLED = Reply("BAD", None, "Authentication cancelled")
AUTH_RESPONSE_TOO_LONG = Reply("BAD", None, "Authentication response too long")
BAD_SASL = Reply("BAD", None, "Invalid SASL response: {}")

# -- authenticated: mailboxes -----------------------------------------------------------
ONE_MAILBOX_ARG = Reply("BAD", None, "{} takes one mailbox name")
CREATE_ARGS = Reply("BAD", None, "CREATE takes a mailbox name and (USE (attributes))")
# RFC 6154 3: CREATE-SPECIAL-USE
USEATTR_UNSUPPORTED = Reply("NO", "USEATTR", "Unsupported special-use attribute {}")
USEATTR_TAKEN = Reply("NO", "USEATTR", "{} is already the special use of another mailbox")
RENAME_ARGS = Reply("BAD", None, "RENAME takes two mailbox names")
LIST_ARGS = Reply("BAD", None, "{} takes a reference and a mailbox pattern")
LIST_EXTENDED_ARGS = Reply("BAD", None, "LIST takes [(options)] reference (patterns) [RETURN (options)]")
UNKNOWN_LIST_OPTION = Reply("BAD", None, "Unknown LIST option")
RECURSIVEMATCH_ALONE = Reply("BAD", None, "RECURSIVEMATCH needs another selection option")
STATUS_ARGS = Reply("BAD", None, "STATUS takes a mailbox name and a list of items")
UNKNOWN_STATUS_ITEM = Reply("BAD", None, "Unknown STATUS item {!r}")
APPEND_ARGS = Reply("BAD", None, "APPEND takes a mailbox, optional flags and date, and a message literal")
APPEND_TOO_MANY = Reply("BAD", None, "Too many APPEND arguments")
APPEND_TWO_DATES = Reply("BAD", None, "APPEND takes one date")
ENABLE_ARGS = Reply("BAD", None, "ENABLE needs at least one capability")
BAD_MUTF7 = Reply("NO", "CANNOT", "Mailbox name is not valid modified UTF-7")
NOT_NET_UNICODE = Reply("NO", "CANNOT", "Mailbox name is not Net-Unicode: {}")   # RFC 6855 3
# RFC 6855 4: without ENABLE UTF8=ACCEPT (or IMAP4rev2) a message's header is 7-bit
EIGHT_BIT_HEADER = Reply("NO", "CANNOT", "8-bit header fields need ENABLE UTF8=ACCEPT")
UTF8_APPEND_ARGS = Reply("BAD", None, "UTF8 takes a (literal8) message")
NONEXISTENT = Reply("NO", "NONEXISTENT", "Mailbox does not exist")
ALREADYEXISTS = Reply("NO", "ALREADYEXISTS", "Mailbox already exists")
INVALID_NAME = Reply("NO", "CANNOT", "Invalid mailbox name: {}")
INBOX_EXISTS = Reply("NO", "ALREADYEXISTS", "INBOX always exists")
INBOX_UNDELETABLE = Reply("NO", "CANNOT", "INBOX cannot be deleted")
RENAME_TO_INBOX = Reply("NO", "ALREADYEXISTS", "Cannot rename to INBOX")
# RFC 3501 6.3.11, 6.4.7: the target is missing but CREATE would make it
TRYCREATE = Reply("NO", "TRYCREATE", "Mailbox does not exist")
EMPTY_MESSAGE = Reply("NO", None, "Refusing an empty message")

# -- URLAUTH (RFC 4467) ------------------------------------------------------------------
GENURLAUTH_ARGS = Reply("BAD", None, "GENURLAUTH takes pairs of URL and mechanism")
URLFETCH_ARGS = Reply("BAD", None, "URLFETCH takes URLs, or (URL parameters...) lists")
UNKNOWN_URLAUTH_MECHANISM = Reply("NO", None, "Unknown URLAUTH mechanism (INTERNAL is the one)")
BAD_URL = Reply("BAD", None, "Invalid URL: {}")
URL_NOT_OURS = Reply("NO", None, "GENURLAUTH is for your own mailboxes")

# -- COMPRESS (RFC 4978) -----------------------------------------------------------------
COMPRESS_ARGS = Reply("BAD", None, "COMPRESS takes one mechanism")
UNKNOWN_COMPRESSION = Reply("NO", None, "Unknown compression mechanism")
COMPRESSION_ACTIVE = Reply("NO", "COMPRESSIONACTIVE", "DEFLATE active via COMPRESS")

# -- IDLE (RFC 2177) ---------------------------------------------------------------------
IDLE_ARGS = Reply("BAD", None, "IDLE takes no arguments")
EXPECTED_DONE = Reply("BAD", None, "Expected DONE")

# -- selected: messages -------------------------------------------------------------------
EXPECTED_SEQUENCE_SET = Reply("BAD", None, "Expected a sequence set")
BAD_SEQUENCE_NUMBER = Reply("BAD", None, "Invalid message sequence number")
FETCH_ARGS = Reply("BAD", None, "FETCH takes a sequence set and data items")
STORE_ARGS = Reply("BAD", None, "STORE takes a sequence set, a data item and flags")
UNKNOWN_STORE_ITEM = Reply("BAD", None, "Unknown STORE data item {}")
COPY_ARGS = Reply("BAD", None, "Expected a sequence set and a mailbox name")
UID_EXPUNGE_ARGS = Reply("BAD", None, "UID EXPUNGE takes a UID set")
UID_NEEDS_COMMAND = Reply("BAD", None, "UID needs a command")
UNKNOWN_UID_COMMAND = Reply("BAD", None, "Unknown UID command {}")
READ_ONLY = Reply("NO", "READ-ONLY", "Mailbox is read-only")
# RFC 5530 EXPUNGEISSUED: another session expunged some of the messages and nothing
# could be returned for them (their content is gone; flags, date and size of a message
# the session was not told of yet are still answered, RFC 2180 4.1)
MESSAGE_GONE = Reply("NO", "EXPUNGEISSUED", "Some of the requested messages no longer exist")

# -- CONDSTORE and QRESYNC (RFC 7162) -------------------------------------------------------
BAD_MODSEQ = Reply("BAD", None, "Invalid mod-sequence value")
BAD_SELECT_PARAMS = Reply("BAD", None, "Unknown or invalid SELECT/EXAMINE parameters")
BAD_QRESYNC = Reply("BAD", None, "QRESYNC takes (uidvalidity modseq [known-uids [(seqs uids)]])")
QRESYNC_NOT_ENABLED = Reply("BAD", None, "QRESYNC parameter without ENABLE QRESYNC")
BAD_FETCH_MODIFIERS = Reply("BAD", None, "FETCH modifiers are (CHANGEDSINCE modseq [VANISHED])")
BAD_VANISHED = Reply("BAD", None, "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC")
BAD_STORE_MODIFIERS = Reply("BAD", None, "STORE modifier is (UNCHANGEDSINCE modseq)")

# -- selected: SORT, THREAD, ESEARCH (RFC 5256, RFC 4731, RFC 5182) ------------------------
SORT_ARGS = Reply("BAD", None, "SORT takes sort criteria, a charset and search keys")
BAD_SORT_CRITERIA = Reply("BAD", None, "{}")
THREAD_ARGS = Reply("BAD", None, "THREAD takes an algorithm, a charset and search keys")
UNKNOWN_THREAD_ALGORITHM = Reply("BAD", None, "Unknown THREAD algorithm (ORDEREDSUBJECT, REFERENCES)")
BAD_CHARSET = Reply("NO", "BADCHARSET (US-ASCII UTF-8)", "Unsupported charset")
# RFC 6855 3: after ENABLE UTF8=ACCEPT a SEARCH is UTF-8 and names no charset
CHARSET_AFTER_UTF8 = Reply("BAD", None, "SEARCH takes no CHARSET after ENABLE UTF8=ACCEPT")
RETURN_ARGS = Reply("BAD", None, "RETURN needs a parenthesized list of options")
UNKNOWN_RETURN_OPTION = Reply("BAD", None,
                              "Unknown RETURN option (MIN MAX ALL COUNT SAVE PARTIAL UPDATE CONTEXT)")
# -- search contexts (RFC 5267) ------------------------------------------------------------
BAD_PARTIAL = Reply("BAD", None, "PARTIAL takes one range n:m of positive numbers")
PARTIAL_WITH_ALL = Reply("BAD", None, "PARTIAL conflicts with ALL")
DUPLICATE_RETURN_OPTION = Reply("BAD", None, "{} given twice in RETURN")
DUPLICATE_CONTEXT_TAG = Reply("BAD", None, "A context with this tag is already updated")
CANCELUPDATE_ARGS = Reply("BAD", None, "CANCELUPDATE takes the quoted tags of contexts")
UNKNOWN_CONTEXT = Reply("NO", None, "No context with tag {}")


def seven_bit(line):
    """A response line (bytes) for a client that did not enable UTF-8: its text in
    US-ASCII (RFC 3501 TEXT-CHAR; RFC 9051 allows UTF-8 text only after ENABLE, its
    Appendix E 24), non-ASCII characters written as \\uXXXX escapes."""
    if line.isascii():
        return line
    return line.decode("utf-8", "replace").encode("ascii", "backslashreplace")


def internal_error(tag=None):
    """The one answer to an unexpected exception, as bytes.  Inside a command (its tag
    known) the command failed: tagged NO [SERVERBUG] (RFC 3501 7.1.2, RFC 5530).
    Before a command could be made out of the line (a bug while parsing) the untagged
    BAD that RFC 3501 7.1.3 gives "an internal server failure" for, same code and text."""
    if tag is not None:
        return SERVERBUG.error().reply(tag)
    return Reply("BAD", SERVERBUG.code, SERVERBUG.text).untagged()


def store_error(exc):
    """The IMAPError for a store error (RFC 5530 codes); one that is not the client's
    doing is logged."""
    if isinstance(exc, NoSuchFolder):
        return NONEXISTENT.error()
    if isinstance(exc, FolderExists):
        return ALREADYEXISTS.error()
    if isinstance(exc, InvalidName):
        return INVALID_NAME.error(exc)
    if isinstance(exc, MessageGone):
        return MESSAGE_GONE.error()
    if isinstance(exc, OverQuota):
        return OVER_QUOTA.error()
    if isinstance(exc, SpecialUseError):
        attr = "".join(c if c.isascii() and c.isprintable() else "?" for c in exc.attribute[:40])
        return (USEATTR_UNSUPPORTED if exc.holder is None else USEATTR_TAKEN).error(attr)
    logging.getLogger("clevermail.imap").warning("store error: %s", exc)
    return STORAGE_ERROR.error()


def login_error(exc):
    """The IMAPError for a login.py error.  A foreign authzid keeps its RFC 5530 code; it
    is refused whatever the password, after the same delay as a wrong one, so the
    reply tells nothing about the password."""
    if isinstance(exc, login.Failed):
        return (AUTHORIZATION_FAILED if exc.foreign_authzid else AUTHENTICATION_FAILED).error()
    if isinstance(exc, login.Throttled):
        return THROTTLED.error()
    if isinstance(exc, login.Cancelled):
        return AUTH_CANCELLED.error()
    if isinstance(exc, login.ResponseTooLong):
        return AUTH_RESPONSE_TOO_LONG.error()
    return BAD_SASL.error(exc)


# -- QUOTA (RFC 9208; cmd_quota.py) ---------------------------------------------------------
# 4.3: APPEND, COPY (and MOVE to another quota root) that would go over a limit
OVER_QUOTA = Reply("NO", "OVERQUOTA", "Mailbox quota exceeded")
NO_SUCH_QUOTA_ROOT = Reply("NO", "NONEXISTENT", "No such quota root (yours is \"\")")
# without QUOTASET the limits are the administrator's (`clevermail user quota`)
SETQUOTA_DENIED = Reply("NO", "NOPERM", "Quota limits are set by the administrator")
GETQUOTA_ARGS = Reply("BAD", None, "GETQUOTA takes a quota root")
GETQUOTAROOT_ARGS = Reply("BAD", None, "GETQUOTAROOT takes a mailbox name")
SETQUOTA_ARGS = Reply("BAD", None, "SETQUOTA takes a quota root and a list of resource limits")

# -- NOTIFY (RFC 5465; notify_spec.py, notify.py) ---------------------------------------------
NOTIFY_ARGS = Reply("BAD", None, "NOTIFY takes NONE, or SET [STATUS] and event groups")
NOTIFY_GROUP_ARGS = Reply("BAD", None, "An event group is (filter [mailboxes] events)")
NOTIFY_EVENTS_ARGS = Reply("BAD", None, "Events are NONE or a list of event names")
NOTIFY_TWO_SELECTED = Reply("BAD", None, "Only one SELECTED or SELECTED-DELAYED group")
NOTIFY_SELECTED_EVENTS = Reply("BAD", None, "SELECTED takes message events only")
NOTIFY_NEW_EXPUNGE = Reply("BAD", None, "MessageNew and MessageExpunge must be together")
NOTIFY_FLAGS_ALONE = Reply("BAD", None, "FlagChange needs MessageNew and MessageExpunge")
NOTIFY_FETCH_NOT_SELECTED = Reply("BAD", None, "Fetch attributes are for the selected mailbox only")
NOTIFY_TOO_MANY = Reply("NO", "NOTIFICATIONOVERFLOW", "Too many mailboxes to watch")
# 3.1: NO, not BAD; the code lists the events that are supported (RFC 5465 8)
NOTIFY_BADEVENT = Reply("NO", "BADEVENT (MessageNew MessageExpunge FlagChange MailboxName "
                        "SubscriptionChange)", "Unsupported NOTIFY event")
NOTIFY_OVERFLOW = Reply("OK", "NOTIFICATIONOVERFLOW", "Too many changes: NOTIFY is now NONE")
