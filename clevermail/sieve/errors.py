"""The errors of the Sieve package: script storage (scripts.py, what ManageSieve
answers NO to, RFC 5804 1.3 response codes in `code`) and the language (a syntax or
check error with its line; a runtime error of one run).  Protocol-neutral: the
ManageSieve session and the CLI turn them into their own replies."""


class SieveError(Exception):
    """Base of every Sieve error; `code` is the RFC 5804 response code it maps to
    (None: a plain NO)."""

    code = None


class NoSuchScript(SieveError):
    code = "NONEXISTENT"


class ScriptExists(SieveError):
    code = "ALREADYEXISTS"


class ActiveScript(SieveError):
    code = "ACTIVE"


class BadScriptName(SieveError):
    code = None


class QuotaExceeded(SieveError):
    """Too many scripts, or a script too large (RFC 5804 QUOTA/MAXSCRIPTS, QUOTA/MAXSIZE)."""

    code = "QUOTA"

    def __init__(self, message, code="QUOTA"):
        super().__init__(message)
        self.code = code


class SieveSyntaxError(SieveError):
    """A script that does not parse or check (RFC 5228 syntax, a missing require, a
    bad argument); `line` is 1-based."""

    def __init__(self, message, line=None):
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


class SieveRuntimeError(SieveError):
    """A run that cannot finish (RFC 5228 2.10.6): the message is kept instead."""
