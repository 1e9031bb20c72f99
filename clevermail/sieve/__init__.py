"""Sieve (RFC 5228): users' mail filters, run at final local delivery.

    errors.py    SieveError and its kinds (storage, syntax with its line, runtime)
    scripts.py   SieveScripts: per-user script storage under the user's root, the
                 active script (what ManageSieve and `clevermail sieve` manage)
    lexer.py     text -> tokens (comments, multi-line strings, numbers with K/M/G)
    parser.py    tokens -> Command/Test tree (RFC 5228 8.2)
    grammar.py   the one table of commands, tests, tags and extensions
    check.py     the tree against the table: requires, arguments, constant values

`parse(text)` is parse + check: a Script, or SieveSyntaxError with the line and a
message a user can act on; never another exception.
"""

from .check import check
from .errors import SieveError, SieveSyntaxError
from .grammar import EXTENSIONS
from .parser import Script, parse_tree

__all__ = ["EXTENSIONS", "Script", "SieveError", "SieveSyntaxError", "parse"]

MAX_SCRIPT_CHARS = 1 << 20       # far above any script store's limit; bounds the work


def parse(text):
    """The checked Script of `text` (str, or UTF-8 bytes), or SieveSyntaxError."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SieveSyntaxError(f"script is not UTF-8 (byte {exc.start})", None) from None
    if len(text) > MAX_SCRIPT_CHARS:
        raise SieveSyntaxError("script too large", None)
    try:
        return check(parse_tree(text))
    except RecursionError:
        raise SieveSyntaxError("script nested too deeply", None) from None
