"""Helpers of the SEARCH tests (test_imap_search.py, test_imap_search_costs.py,
test_imap_search_robustness.py): a message stand-in (Msg, NoRaw without its raw
bytes), a search context (Ctx), match() of search keys against one message,
and sample messages (HEADERS, PLAIN, MULTI)."""

import base64

from clevermail.imap.search import parse_search


class Msg:
    """A message as the folder view's Message value gives it (flags a frozenset of
    names, \\Recent among them when held); raw() is its content for Ctx.read, and
    counts the reads."""

    def __init__(self, raw=b"", seq=1, uid=1, flags=(), recent=False,
                 internaldate=0.0, size=None):
        self._raw = raw
        self.seq, self.uid = seq, uid
        self.flags = frozenset(flags) | ({"\\Recent"} if recent else set())
        self.internaldate = internaldate
        self.size = len(raw) if size is None else size
        self.raw_calls = 0

    def raw(self):
        self.raw_calls += 1
        return self._raw


class NoRaw(Msg):
    def raw(self):
        raise AssertionError("raw() must not be called for this search")


class Ctx:
    def __init__(self, max_seq=10, max_uid=100, saved=frozenset()):
        self.max_seq, self.max_uid, self.saved = max_seq, max_uid, saved

    @staticmethod
    def read(msg):
        """The file handler's read_message, for a Msg."""
        return msg.raw()


def match(args, msg, ctx=None, **kw):
    return parse_search(args, **kw).matches(msg, ctx or Ctx())


HEADERS = (
    b"From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <jorg@example.com>\r\n"
    b"To: alice@example.com\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Cc: carol@example.net\r\n"
    b"Bcc: dave@example.net\r\n"
    b"Subject: =?iso-8859-1?q?Caf=E9?= meeting\r\n"
    b" =?utf-8?b?bsOkY2hzdGU=?= =?utf-8?b?IFdvY2hl?=\r\n"
    b"X-Mailer: Hand\r\n"
    b"X-Empty:\r\n"
    b"Date: Tue, 1 Feb 1994 23:30:00 -0800\r\n"
)
PLAIN = HEADERS + b"\r\nThe body says hello.\r\n"
MULTI = (
    b"Subject: parts\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    b"preamble\r\n--XX\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=FC=DFe aus K=F6ln, soft=\r\nbreak\r\n"
    b"--XX\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes("<p>Ünïcode HTML</p>".encode()).replace(b"\n", b"\r\n")
    + b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(b"secret attachment words").replace(b"\n", b"\r\n")
    + b"--XX--\r\n"
)
