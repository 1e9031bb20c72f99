"""FETCH responses read as a client would: a small strict parser of RFC 3501 response
syntax (quoted strings, literals, lists; ENVELOPE and BODYSTRUCTURE shapes) over the
corpus, nasty messages and random mutations of them; header items rendered from the
kept header equal those from the file."""

import random
import re

import pytest

from clevermail.imap import mime
from fetch_helpers import DATA, Msg, fetch, load


# ------------------------------------------ strict response reader (a client)

class Reader:
    """Parse an RFC 3501 response fragment; assert on anything malformed."""

    def __init__(self, data):
        self.d, self.i = data, 0

    def peek(self):
        return self.d[self.i:self.i + 1]

    def value(self):
        c = self.peek()
        if c == b"(":
            self.i += 1
            out = []
            while self.peek() != b")":
                if out:
                    if self.peek() == b" ":
                        self.i += 1
                    else:   # 1*body and 1*address lists have no separator
                        assert isinstance(out[-1], list) and self.peek() == b"(", self.d[self.i:]
                out.append(self.value())
            self.i += 1
            return out
        if c == b'"':
            j, buf = self.i + 1, bytearray()
            while True:
                ch = self.d[j]
                assert ch not in (13, 10) and 0 < ch < 0x80, (j, self.d)
                if ch == 0x5C:
                    assert self.d[j + 1] in b'"\\'
                    buf.append(self.d[j + 1])
                    j += 2
                elif ch == 0x22:
                    break
                else:
                    buf.append(ch)
                    j += 1
            self.i = j + 1
            return bytes(buf)
        if c == b"{":
            m = re.compile(rb"\{(\d+)\}\r\n").match(self.d, self.i)
            assert m, self.d[self.i:self.i + 20]
            n = int(m.group(1))
            data = self.d[m.end():m.end() + n]
            assert len(data) == n and b"\0" not in data
            self.i = m.end() + n
            return bytes(data)
        m = re.compile(rb"(?:[^ ()\[\]\x00-\x1f\x7f-\xff]|\[[^\]]*\])+").match(self.d, self.i)
        assert m, self.d[self.i:self.i + 20]
        self.i = m.end()
        word = m.group().decode("ascii")
        if word == "NIL":
            return None
        return int(word) if word.isdigit() else word


def read_fetch(data):
    r = Reader(data)
    top = r.value()
    assert r.i == len(data)
    assert len(top) % 2 == 0
    return dict(zip(top[0::2], top[1::2]))


def is_nstring(v):
    return v is None or isinstance(v, bytes)


def check_params(p):
    assert p is None or (isinstance(p, list) and p and len(p) % 2 == 0
                         and all(isinstance(x, bytes) for x in p))


def check_ext(rest):
    dsp, lang, loc = rest
    if dsp is not None:
        assert len(dsp) == 2 and isinstance(dsp[0], bytes)
        check_params(dsp[1])
    assert is_nstring(lang) or all(isinstance(x, bytes) for x in lang)
    assert is_nstring(loc)


def check_envelope(e):
    assert isinstance(e, list) and len(e) == 10
    assert all(is_nstring(e[i]) for i in (0, 1, 8, 9))
    for addrs in e[2:8]:
        assert addrs is None or (addrs and all(len(a) == 4 and all(map(is_nstring, a))
                                               for a in addrs))


def check_body(b, ext):
    assert isinstance(b, list) and b
    if isinstance(b[0], list):
        i = 0
        while isinstance(b[i], list):
            check_body(b[i], ext)
            i += 1
        assert isinstance(b[i], bytes)
        rest = b[i + 1:]
        if ext:
            assert len(rest) == 4
            check_params(rest[0])
            check_ext(rest[1:])
        else:
            assert rest == []
        return
    t, s, params, cid, desc, enc, size = b[:7]
    assert isinstance(t, bytes) and isinstance(s, bytes) and isinstance(enc, bytes)
    check_params(params)
    assert is_nstring(cid) and is_nstring(desc) and isinstance(size, int)
    rest = b[7:]
    if t.upper() == b"TEXT":
        assert isinstance(rest[0], int)
        rest = rest[1:]
    elif (t.upper(), s.upper()) == (b"MESSAGE", b"RFC822"):
        check_envelope(rest[0])
        check_body(rest[1], ext)
        assert isinstance(rest[2], int)
        rest = rest[3:]
    if ext:
        assert len(rest) == 4 and is_nstring(rest[0])
        check_ext(rest[1:])
    else:
        assert rest == []


ALL_ITEMS = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE",
             "BODY", "BODY[]", "BODY[HEADER]", "BODY[TEXT]", "BODY[1]", "BODY[1.MIME]",
             "BODY[2]", "BODY[2.HEADER]", "BODY[2.TEXT]", "BODY[2.1.TEXT]", "BODY[2.2.MIME]",
             "BODY[HEADER.FIELDS (FROM SUBJECT)]", "BODY.PEEK[HEADER.FIELDS.NOT (TO)]<0.50>",
             "BODY[3.2.1]<5.10>", "BODY[1.1.1.1]", "RFC822", "RFC822.HEADER", "RFC822.TEXT"]


def check_sizes(pm, b, path):
    """Each part's size and line count in BODYSTRUCTURE match BODY[path]."""
    if isinstance(b[0], list):
        k = 0
        while isinstance(b[k], list):     # children come first, then subtype
            check_sizes(pm, b[k], path + (k + 1,))
            k += 1
        return
    path = path or (1,)         # a single-part message's body is part 1
    data = mime.section(pm, path)
    assert len(data) == b[6], (path, b)
    if b[0].upper() == b"TEXT":
        assert data.count(b"\n") == b[7]
    elif (b[0].upper(), b[1].upper()) == (b"MESSAGE", b"RFC822"):
        assert data.count(b"\n") == b[9]
        assert mime.section(pm, path, "HEADER") + mime.section(pm, path, "TEXT") == data
        inner = b[8]
        check_sizes(pm, inner, path if isinstance(inner[0], list) else path + (1,))


def check_message(raw):
    out = read_fetch(fetch(ALL_ITEMS, Msg(raw)))
    check_envelope(out["ENVELOPE"])
    check_body(out["BODYSTRUCTURE"], True)
    check_body(out["BODY"], False)
    check_sizes(mime.parse(raw), out["BODYSTRUCTURE"], ())
    crlf = raw if raw.count(b"\n") == raw.count(b"\r\n") else re.sub(rb"(?<!\r)\n", b"\r\n", raw)
    assert out["RFC822"] == out["BODY[]"] == crlf.replace(b"\0", b"\x80")
    return out


def test_corpus_responses_parse_as_a_client_would():
    for path in sorted(DATA.glob("*.eml")):
        out = check_message(load(path.name))
        assert out["BODY[]"] == load(path.name)


NASTY = [
    b"", b"\r\n", b"\r\n\r\n", b"no header terminator", b"X" * 100000,
    b"Subject: " + b"\xff\xfe\x00\x01" * 50 + b"\r\n\r\nbody",
    b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\nx\r\n----\r\n",
    b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n--a\r\n--a--",
    b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n",
    b"Content-Type: (unterminated comment\r\nFrom: \"unterminated\r\nTo: <a@b\r\n\r\n",
    b"From: ,,,;;;<<<>>>@@@:::\r\nTo: a:b:c;d;\r\nCc: (((\r\n\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/"
    b"mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n--b--\r\n",
]


@pytest.mark.parametrize("raw", NASTY, ids=range(len(NASTY)))
def test_nasty_messages(raw):
    check_message(raw)


MUTATION_TOKENS = [
    b"\r\n", b"\r\n\r\n", b"\n", b"\r", b"--", b"\r\n--", b"--outer\r\n", b"--alt-b--",
    b"--inner", b"------=_Part_0_12345", b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"Content-Type: message/rfc822\r\n\r\n", b"Content-Type: multipart/digest; boundary=q\r\n",
    b"\r\n--x\r\n", b"\r\n--q\r\n\r\n", b"\x00", b"\xff\xfe", b"\xc3\xa9", b"(", b")",
    b'"', b"\\", b"<", b">", b"@", b",", b";", b":", b"=?utf-8?q?", b"*0*=", b" \t ",
    b"A" * 3000,
]


def mutate(rng, raw):
    data = bytearray(raw)
    for _ in range(rng.randint(1, 5)):
        op = rng.randrange(6)
        pos = rng.randint(0, len(data))
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            del data[pos:pos + rng.randint(1, 40)]
        elif op == 2:
            data[pos:pos] = data[pos:pos + rng.randint(1, 200)]
        elif op == 3:
            data[pos:pos] = rng.choice(MUTATION_TOKENS)
        elif op == 4:
            del data[pos:]
        else:
            data = bytearray(bytes(data).replace(b"\r\n", b"\n"))
    return bytes(data)


def test_random_mutations_never_raise():
    rng = random.Random(20240101)
    corpus = [load(p.name) for p in sorted(DATA.glob("*.eml"))]
    for _ in range(300):
        check_message(mutate(rng, rng.choice(corpus)))


HEADER_ITEMS = ["ENVELOPE", "BODY.PEEK[HEADER.FIELDS (From To Subject)]",
                "BODY.PEEK[HEADER.FIELDS.NOT (Received Date)]", "BODY.PEEK[HEADER.FIELDS (X-None)]",
                "BODY.PEEK[HEADER.FIELDS (Subject)]<3.10>", "RFC822.HEADER"]


def test_header_items_from_the_kept_header_equal_those_from_the_file():
    """ENVELOPE and top-level header fields rendered from the cached BODY[HEADER]
    (fetch._Content.head) are byte for byte those rendered from the whole message,
    for the corpus, the nasty messages and random mutations of both."""
    from clevermail.imap.fetch_cache import FetchCache
    rng = random.Random(20261203)
    corpus = [load(p.name) for p in sorted(DATA.glob("*.eml"))] + NASTY
    messages = corpus + [mutate(rng, rng.choice(corpus)) for _ in range(300)]
    for n, raw in enumerate(messages):
        cache = FetchCache()
        msg = Msg(raw)
        fetch("BODY.PEEK[HEADER]", msg, memo=cache.memo(("u", "INBOX", 1), n))
        assert msg.raw_calls == 1
        for items in HEADER_ITEMS:
            kept = fetch(items, msg, memo=cache.memo(("u", "INBOX", 1), n))
            assert kept == fetch(items, Msg(raw)), (n, items)
        assert msg.raw_calls == 1               # none of them read the message again
