"""Top-level BODY[HEADER.FIELDS (...)] and .NOT from the header split once
(clevermail/imap/header_fields.py): the same bytes as mime.section over the corpus, the
nasty messages and mutations of them, and the kept splits bounded by bytes."""

import random

from clevermail.imap import mime
from clevermail.imap.header_fields import FieldLines, field_lines, select
from fetch_helpers import DATA, load
from test_imap_fetch_strict import NASTY, mutate

NAMES = [("From", "Subject"), ("SUBJECT",), ("to", "Cc", "x-nothing"), ("Received",),
         ("Content-Type", "MIME-Version", "Date", "Message-ID"), ("",), ("X",)]


def test_answers_equal_the_section_of_the_message_for_the_corpus_and_mutations():
    rng = random.Random(18)
    corpus = [load(p.name) for p in sorted(DATA.glob("*.eml"))] + NASTY
    corpus += [mutate(rng, rng.choice(corpus)) for _ in range(300)]
    corpus += [b"Subject: x\r\nTo: a", b"Subject: x\r\n To: folded\r\n\r\nb", b" lead\r\nX: y\r\n\r\n",
               b"X-A : spaced\r\nno colon line\r\n\rY: cr\r\n\r\n", b"Subject: \xc0\xe9\r\n\r\n"]
    for n, raw in enumerate(corpus):
        for repair in (False, True):
            pm = mime.parse(raw, repair)
            lines = field_lines(mime.section(pm, (), "HEADER"))
            for names in NAMES:
                want = frozenset(f.lower() for f in names)
                for text, keep in (("HEADER.FIELDS", True), ("HEADER.FIELDS.NOT", False)):
                    assert select(lines, want, keep) == mime.section(pm, (), text, names), (n, names, text)


def test_kept_splits_are_bounded_by_bytes_least_recently_used_first():
    kept = FieldLines(max_bytes=64 << 10)
    headers = [b"Subject: %d\r\nX: %s\r\n\r\n" % (n, b"y" * 300) for n in range(100)]
    first = kept.get(headers[0])
    assert kept.get(headers[0]) is first            # kept: not split again
    for header in headers[1:]:
        kept.get(header)
        kept.get(headers[0])                        # used again: stays
    assert kept.size <= kept.max_bytes and 0 < len(kept) < 100
    assert kept.get(headers[0]) is first
    assert select(kept.get(headers[50]), {"subject"}) == b"Subject: 50\r\n\r\n"
    big = b"X: " + b"z" * (2 << 10) + b"\r\n\r\n"      # past a sixteenth of the bound
    assert kept.get(big) == ((("x", big[:-2]),)) and big not in kept._entries
