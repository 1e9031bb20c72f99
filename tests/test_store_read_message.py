"""A message's content read whole (Folder.read_message, store/folder_files.py): one
read of the size its file name gives, and the whole file whatever the name says
(a file another program put there, without S= or with a wrong one)."""

import os

import pytest

from clevermail.store import MessageGone
from store_helpers import USER, inbox, msg, store  # noqa: F401 (fixtures)


def test_a_message_reads_back_in_wire_form(inbox):
    uid = inbox.append(msg(1, b"line\r\n" * 5000))
    assert inbox.read_message(uid) == msg(1, b"line\r\n" * 5000)


def _put(inbox, name, data):
    with open(os.path.join(inbox.path, "cur", name), "wb") as f:
        f.write(data)
    inbox.sync(force=True)
    return inbox.uids[-1]


@pytest.mark.parametrize("name", [
    "1700000000.other.host:2,S",                 # no sizes at all (measured at the scan)
    "1700000001.wrong.host,S=5,W=6:2,",          # says 5 bytes, holds more
    "1700000002.short.host,S=99999,W=99999:2,",  # says more than it holds
])
def test_a_file_whose_name_does_not_say_its_size_is_read_whole(inbox, name):
    body = b"Subject: other\n\n" + b"x" * 70000 + b"\n"
    uid = _put(inbox, name, body)
    assert inbox.read_message(uid) == body.replace(b"\n", b"\r\n")


def test_an_empty_file_and_an_expunged_message(inbox):
    uid = _put(inbox, "1700000003.empty.host,S=0,W=0:2,", b"")
    assert inbox.read_message(uid) == b""
    inbox.expunge([uid])
    with pytest.raises(MessageGone):
        inbox.read_message(uid)
