"""Run by tests/test_thread_stack.py in a process of its own (a stack overflow kills
the process, not the test run): a real MailService whose threads all have the stack
size given on the command line, and the deepest work a client can ask of a session.
Prints one line per step and "OK" at the end."""

import imaplib
import json
import pathlib
import sys
import tempfile
import threading

threading.stack_size(int(sys.argv[1]))      # before any thread of the service exists

from clevermail.imap import mime, search  # noqa: E402
from clevermail.service import MailService  # noqa: E402
from conftest import make_config  # noqa: E402
from imap_helpers import ALICE, PASSWORD, make_accounts  # noqa: E402


def nested(depth):
    """A message nested `depth` deep, multipart and message/rfc822 in turn."""
    body = b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for i in range(depth):
        if i % 2:
            body = b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n%s" % (i, body)
        else:
            body = (b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n%s\r\n--b%d--\r\n"
                    % (i, i, body, i))
    return b"From: a@example.test\r\nSubject: deep\r\nMIME-Version: 1.0\r\n" + body


def in_a_thread(step):
    """`step` in a new thread (of the small stack): its result or its exception's name."""
    out = []

    def run():
        try:
            out.append(step())
        except RecursionError:
            out.append("RecursionError")
    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out[0]


def main():
    with tempfile.TemporaryDirectory(prefix="cm-stack-probe-") as tmp:
        serve(pathlib.Path(tmp))
    # hostile nesting where Python's recursion limit is the only bound (the control
    # socket's JSON): an exception, never a crash
    print("json", in_a_thread(lambda: json.loads("[" * 100000)))
    print("OK")


def serve(tmp):
    conf = make_config(tmp, limits={"auth_failure_delay": 0})
    make_accounts(conf.server.users_file)
    service = MailService(conf).start()
    try:
        service.store.deliver_local("", [ALICE], nested(mime.MAX_DEPTH + 10))
        c = imaplib.IMAP4("127.0.0.1", service.port("imap"), timeout=60)
        c.login(ALICE, PASSWORD)
        c.select("INBOX")
        typ, data = c.fetch("1", "(BODYSTRUCTURE BODY ENVELOPE BODY.PEEK[TEXT])")
        print("bodystructure", typ, b"innermost" in data[0][1])
        section = ".".join(["1"] * (mime.MAX_DEPTH // 2))
        print("section", c.fetch("1", f"(BODY.PEEK[{section}] BODY.PEEK[{section}.MIME])")[0])
        limit = search._MAX_DEPTH - 1
        print("search not", c.search(None, "NOT " * limit + "ALL")[0])
        print("search or", c.search(None, "OR " * limit + "BODY x " * limit + "BODY innermost")[1])
        print("search parens", c.search(None, "(" * 95 + "ALL" + ")" * 95)[0])
        c.logout()
    finally:
        service.stop()


if __name__ == "__main__":
    main()
