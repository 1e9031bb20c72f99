#!/usr/bin/env python3
"""The first render of a message, as imaptest's bench asks for it, timed and counted;
and a golden record of what IMAP makes of a corpus, to check a rewrite changes no byte.

Every message of an mbox (default imaptest's /var/tmp/imaptest/bench.mbox, made by
/work/shared/imaptest/build.sh; in wire form, CRLF) is rendered in one of two ways:
- `module`: what mime.py, envelope.py and bodystructure.py do for a first render:
  the parse, BODYSTRUCTURE, BODY, ENVELOPE, BODY[HEADER], BODY[1], BODY[TEXT] and
  BODY[HEADER.FIELDS (imaptest's names)];
- `fetch`: the same through fetch.py's FETCH path as a session makes it, one FETCH per
  item form imaptest sends (ENVELOPE; BODY BODYSTRUCTURE; RFC822.HEADER; BODY.PEEK[1];
  BODY.PEEK[TEXT]; header fields), a fresh FetchCache per round so every render is a
  first one (the content cache keeps the parse between the FETCHes, as in the server).
It prints CPU microseconds per message (time.process_time, median of the rounds):

    PYTHONPATH=$PWD python3 scripts/bench_mime.py [--mode module|fetch] [--rounds 20]

Instructions per message (repeatable on a busy machine): run it under callgrind with
one round and with two, and divide the difference by the message count:

    PYTHONPATH=$PWD python3 scripts/bench_mime.py --callgrind [--mode fetch]

Golden outputs: --record FILE writes (pickle) everything the IMAP side derives from
each message of the mbox, of tests/data/messages and of a few thousand deterministic
mutations of them (no colon, NULs, bare CR and LF, folds, cut boundaries, deep nesting,
a 1 MB header...): ENVELOPE, BODY, BODYSTRUCTURE, sections, SEARCH's decoded header
and text, addresses as SORT and SEARCH read them.  --check FILE compares and names the
first differences.  Record before a change, check after.
"""

import argparse
import os
import pathlib
import pickle
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

from clevermail.imap import decode, fetch, mime
from clevermail.imap.bodystructure import bodystructure, part_structure
from clevermail.imap.envelope import envelope, parse_addresses
from clevermail.imap.fetch_cache import FetchCache
from clevermail.imap.fetch_items import parse_fetch_items
from clevermail.imap.header_fields import field_lines, select

ROOT = pathlib.Path(__file__).resolve().parent.parent
MBOX = "/var/tmp/imaptest/bench.mbox"
FIELDS = ("From", "To", "Cc", "Subject", "References", "In-Reply-To", "Message-ID")
_LOWER_FIELDS = frozenset(f.lower() for f in FIELDS)
# imaptest's FETCH forms (client-state.c STATE_FETCH and STATE_FETCH2), one command each
REQUESTS = [["UID", "ENVELOPE"], ["BODY", "BODYSTRUCTURE"], ["UID", "RFC822.HEADER"],
            ["UID", "BODY.PEEK[1]"], ["UID", "BODY.PEEK[TEXT]"],
            ["UID", "BODY.PEEK[HEADER.FIELDS (%s)]" % " ".join(FIELDS)]]


def mbox_messages(path):
    """The messages of an mbox in wire form (CRLF), "From " lines dropped."""
    data = pathlib.Path(path).read_bytes()
    out = []
    for chunk in re.split(rb"(?:^|\n)From [^\n]*\n", data):
        if chunk:
            out.append(chunk.replace(b"\n", b"\r\n"))
    return out


def render_module(raw):
    pm = mime.parse(raw, repair=False)
    header = mime.section(pm, (), "HEADER")
    # the header fields as FETCH makes them, from the header (header_fields.py): the
    # golden record of mime.section's answer checks that they are the same bytes
    return [bodystructure(pm), bodystructure(pm, extended=False), envelope(pm),
            header, mime.section(pm, (1,)), mime.section(pm, (), "TEXT"),
            select(field_lines(header), _LOWER_FIELDS)]


class Message:
    __slots__ = ("seq", "uid", "flags", "internaldate", "size", "modseq")

    def __init__(self, n, raw):
        self.seq = self.uid = n
        self.flags, self.internaldate, self.size, self.modseq = frozenset(), 0, len(raw), 1


def render_fetch_round(messages, requests):
    """Every message through every request, as first renders (fresh caches)."""
    cache = FetchCache()
    folder = ("u", "INBOX", 1)
    msgs = [Message(n, raw) for n, raw in enumerate(messages, 1)]
    source = fetch.FetchSource(lambda m: messages[m.uid - 1], repair=False,
                               kept=cache.content, folder=folder, live=lambda uid: True)
    out = []
    for msg in msgs:
        for req in requests:
            out.append(b"".join(fetch.fetch_response(req, msg, source, cache.memo(folder, msg.uid))))
    return out


def timed(messages, mode, rounds):
    """CPU microseconds per message, per round."""
    requests = [parse_fetch_items(r) for r in REQUESTS]
    per = []
    for _ in range(rounds):
        t0 = time.process_time()
        if mode == "module":
            for raw in messages:
                render_module(raw)
        else:
            render_fetch_round(messages, requests)
        per.append((time.process_time() - t0) * 1e6 / len(messages))
    return per


def callgrind(args, count):
    """Instructions per message: callgrind totals of 2 rounds less 1, / count."""
    totals = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rounds in (1, 2):
            out = os.path.join(tmp, f"cg.{rounds}")
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                   sys.executable, __file__, "--mode", args.mode, "--rounds", str(rounds),
                   "--mbox", args.mbox, "--quiet"]
            subprocess.run(cmd, check=True, capture_output=True)
            with open(out) as f:
                totals[rounds] = int(re.search(r"^summary: (\d+)", f.read(), re.M).group(1))
    return (totals[2] - totals[1]) / count


# ------------------------------------------------------------------ golden corpus

def _mutations(raw, rnd, n):
    """n deterministic hostile variants of one message."""
    out = []
    head, sep, body = raw.partition(b"\r\n\r\n")
    for _ in range(n):
        k = rnd.randrange(14)
        m = bytearray(raw)
        if k == 0:                      # a header line without a colon
            lines = head.split(b"\r\n")
            i = rnd.randrange(len(lines))
            lines.insert(i, b"NoColonHere just text")
            v = b"\r\n".join(lines) + sep + body
        elif k == 1:                    # NULs sprinkled
            for _ in range(rnd.randrange(1, 6)):
                m.insert(rnd.randrange(len(m) + 1), 0)
            v = bytes(m)
        elif k == 2:                    # bare CRs and LFs
            v = bytes(m)
            for _ in range(rnd.randrange(1, 6)):
                i = rnd.randrange(len(v) + 1)
                v = v[:i] + rnd.choice((b"\r", b"\n", b"\r\r\n", b"\n\r")) + v[i:]
        elif k == 3:                    # cut anywhere
            v = raw[:rnd.randrange(len(raw) + 1)]
        elif k == 4:                    # folds at random spaces of the header
            v = re.sub(rb" ", lambda _m: rnd.choice((b" ", b" ", b"\r\n ", b"\r\n\t", b"\r\n \r\n ")),
                       head) + sep + body
        elif k == 5:                    # 8-bit and odd characters in the header
            chars = [b"\xe9", b"\xff", b"(", b")", b"\\", b'"', b"<", b">", b"@", b",", b";",
                     b":", b"[", b"]", b"=?", b"?=", b"\t", b"  "]
            h = bytearray(head)
            for _ in range(rnd.randrange(1, 12)):
                h[rnd.randrange(len(h) + 1):0] = rnd.choice(chars)
            v = bytes(h) + sep + body
        elif k == 6:                    # duplicate and empty fields
            v = (b"From:\r\nTo: \r\nSubject:\r\nCc: ,,\r\nFrom: x@y\r\nBcc: ;\r\n"
                 + head + sep + body)
        elif k == 7:                    # group syntax, routes, comments
            v = (b"To: Group: a@b, \"c d\" <e@f>;, (only a comment), <@r1,@r2:g@h>,"
                 b" i (name) @ j . k, \"q\\\"x\"@l, [m]@[n], <>, @, x@, @y\r\n" + raw)
        elif k == 8:                    # a boundary cut short or doubled
            v = re.sub(rb"boundary=\"?([^\"\r\n;]+)\"?", lambda mo: rnd.choice(
                (b"boundary=\"\"", b"boundary=" + mo.group(1)[:3], b"boundary=\"" + mo.group(1) + b"\"; boundary=zz",
                 b"boundary=\"" + mo.group(1) + b"x\"")), raw)
        elif k == 9:                    # nested: the message inside multipart/mixed inside rfc822
            v = raw
            for depth in range(rnd.randrange(1, 8)):
                b = b"b%d" % depth
                v = (b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\npre\r\n--" + b
                     + b"\r\nContent-Type: message/rfc822\r\n\r\n" + v + b"\r\n--" + b
                     + b"--\r\nepi\r\n")
        elif k == 10:                   # header only, no blank line, no final CRLF
            v = head + rnd.choice((b"", b"\r\n", b"\r", b"\n"))
        elif k == 11:                   # Content-* oddities
            v = rnd.choice((b"Content-Type: text\r\n", b"Content-Type: ;\r\n",
                            b"Content-Type: TEXT/Plain; CharSet*0=us; charset*1*=''x; name=\"a b\"\r\n",
                            b"Content-Disposition: attachment; filename=\"f\\\"g\"\r\n"
                            b"Content-Language: en, (c) fr\r\nContent-Location: a b\r\n",
                            b"Content-Transfer-Encoding: BASE64 (x)\r\nContent-ID: <i>\r\n",
                            b"MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n")) + raw
        elif k == 12:                   # whitespace-leading first line, continuation first
            v = rnd.choice((b" folded: first\r\n", b"\tX: y\r\n", b":empty name\r\n",
                            b"Na me: v\r\n", b"X-\x00: nul\r\n")) + raw
        else:                           # long header values
            v = b"Subject: " + b"word " * rnd.randrange(1, 4000) + b"\r\n" + raw
        out.append(v)
    return out


def corpus(mbox):
    msgs = mbox_messages(mbox)
    data = ROOT / "tests" / "data" / "messages"
    files = [p.read_bytes().replace(b"\n", b"\r\n") for p in sorted(data.glob("*.eml"))]
    rnd = random.Random(18)
    base = files + msgs[::10]
    extra = [b"", b"\r\n", b"X", b"X: y", b"\r\n\r\n", b"\x00", b"\r" * 50, b"\n" * 50,
             b"Subject: " + b"x" * (1 << 20) + b"\r\n\r\nbody\r\n",
             b"Subject: a\r\n" + b"X-Long: " + b"y " * 300000 + b"\r\n\r\n",
             b"From: " + b"a@b, " * 20000 + b"\r\n\r\n",
             b"To: " + b"(" * 5000 + b"\r\n\r\n"]
    for raw in base:
        extra += _mutations(raw, rnd, 40)
    return msgs + files + extra


def golden(raw):
    """Everything IMAP derives from one message (repaired and not)."""
    out = []
    for repair in (False, True):
        pm = mime.parse(raw, repair)
        out += render_module(raw) if not repair else []
        out += [bodystructure(pm), bodystructure(pm, extended=False), envelope(pm)]
        for nums in ((1,), (2,), (1, 1), (2, 1), (1, 2, 1), (3,)):
            for text in (None, "MIME", "HEADER", "TEXT", "HEADER.FIELDS.NOT"):
                out.append(mime.section(pm, nums, text, FIELDS))
            out.append(part_structure(pm, nums))
        out.append(envelope(mime.parse(mime.section(pm, (), "HEADER"), repair=False)))
        out.append(repr(decode.header_fields(pm)))
        out.append(decode.body_text(pm))
        top = pm.top()
        for f in top.fields:
            if f[0] in ("from", "to", "cc", "bcc", "sender", "reply-to"):
                v = pm.field_value(f)
                out.append(repr(parse_addresses(v)))
                out.append(decode.address_text(v))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mbox", default=MBOX)
    ap.add_argument("--mode", choices=("module", "fetch"), default="module")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--record")
    ap.add_argument("--check")
    args = ap.parse_args()
    if args.record or args.check:
        results = [golden(raw) for raw in corpus(args.mbox)]
        if args.record:
            with open(args.record, "wb") as f:
                pickle.dump(results, f)
            print(f"recorded {len(results)} messages")
            return
        with open(args.check, "rb") as f:
            want = pickle.load(f)
        bad = [i for i, (a, b) in enumerate(zip(results, want)) if a != b]
        if len(results) != len(want):
            print(f"corpus size differs: {len(results)} vs {len(want)}")
        for i in bad[:5]:
            j = next(k for k, (a, b) in enumerate(zip(results[i], want[i])) if a != b)
            print(f"message {i} item {j}:\n  now  {results[i][j]!r:.300}\n  was  {want[i][j]!r:.300}")
        print(f"{len(results) - len(bad)}/{len(results)} messages identical")
        sys.exit(1 if bad or len(results) != len(want) else 0)
    messages = mbox_messages(args.mbox)
    if args.callgrind:
        print(f"{args.mode}: {callgrind(args, len(messages)):,.0f} instructions per message")
        return
    per = timed(messages, args.mode, args.rounds)
    if not args.quiet:
        print(f"{args.mode}: {len(messages)} messages, {args.rounds} rounds: median "
              f"{statistics.median(per):.1f} us/message (min {min(per):.1f})")


if __name__ == "__main__":
    main()
