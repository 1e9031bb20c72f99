"""Helpers of the IMAP parser tests (test_imap_parser.py, test_imap_parser_values.py):
parse(), args() and error() run parse_command on one line, with FakeMore serving the
literals and next lines it asks for (no_more: it must ask for none)."""

from clevermail.imap.parser import parse_command


class FakeMore:
    """A `more` callback serving (literal, next_line) pairs and recording calls."""

    def __init__(self, *chunks):
        self.chunks = list(chunks)
        self.calls = []

    def __call__(self, n, synchronizing):
        self.calls.append((n, synchronizing))
        return self.chunks.pop(0)


def no_more(n, synchronizing):
    raise AssertionError("more() must not be called")


def parse(line, *chunks, max_literal=1000):
    more = FakeMore(*chunks) if chunks else no_more
    return parse_command(line, more, max_literal)


def args(line, *chunks):
    return parse(line, *chunks).args
