"""Helpers of the MIME tests (test_imap_mime.py, test_imap_envelope.py,
test_imap_bodystructure.py): the message corpus (tests/data/messages) read in CRLF
form (load), parsed (pm), and text made CRLF bytes (crlf)."""

import pathlib

from clevermail.imap import mime


DATA = pathlib.Path(__file__).parent / "data" / "messages"


def load(name):
    """A corpus message in CRLF form (files are stored with LF endings)."""
    return (DATA / name).read_bytes().replace(b"\n", b"\r\n")


def pm(name):
    return mime.parse(load(name))


def crlf(text):
    return text.replace("\n", "\r\n").encode("utf-8")
