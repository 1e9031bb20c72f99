"""Pure tests of imap/thread.py: ORDEREDSUBJECT and the REFERENCES algorithm of RFC 5256
section 4 on hand-made reference graphs (dummies, loops, missing messages, duplicate
Message-IDs, subject merging) and the THREAD response format."""

from clevermail.imap.sort import SortKeys, base_subject
from clevermail.imap.thread import Item, ordered_subject, references


def msg(n, mid=None, refs=(), subject="", date=None, seq=None):
    """Message number n; the sent date defaults to n (so mailbox order is date order)."""
    base, reply = base_subject(subject)
    keys = SortKeys(date, base, reply, "", "", "", "", "", mid, tuple(refs))
    return Item(n, seq or n, n if date is None else date, keys)


def refs(*items):
    return references(list(items)).decode()


# -- REFERENCES ---------------------------------------------------------------------------
def test_single_messages_and_a_simple_chain():
    assert refs() == ""
    assert refs(msg(1, "a@x")) == "(1)"
    assert refs(msg(1, "a@x"), msg(2, "b@x", ["a@x"]), msg(3, "c@x", ["a@x", "b@x"])) == "(1 2 3)"


def test_siblings_nest_in_parentheses():
    got = refs(msg(1, "a@x"), msg(2, "b@x", ["a@x"]), msg(3, "c@x", ["a@x"]),
               msg(4, "d@x", ["a@x", "b@x"]))
    assert got == "(1 (2 4)(3))"


def test_in_reply_to_alone_links_too():
    # sort_keys puts the first In-Reply-To msg-id in `references` when References is missing
    assert refs(msg(1, "a@x"), msg(2, "b@x", ["a@x"])) == "(1 2)"


def test_missing_parent_makes_a_dummy_that_is_pruned():
    # (3) a dummy with one child at the top level gives way to it
    assert refs(msg(1, "b@x", ["gone@x"])) == "(1)"
    # a dummy with several children stays at the top level: no number, nested lists
    assert refs(msg(1, "b@x", ["gone@x"]), msg(2, "c@x", ["gone@x"])) == "((1)(2))"
    # a dummy below a message gives way to its children, whatever their number
    got = refs(msg(1, "a@x"), msg(2, "c@x", ["a@x", "gone@x"]), msg(3, "d@x", ["a@x", "gone@x"]))
    assert got == "(1 (2)(3))"


def test_chain_of_missing_references():
    assert refs(msg(1, "a@x"), msg(2, "z@x", ["a@x", "m1@x", "m2@x"])) == "(1 2)"


def test_truncated_references_do_not_replace_a_parent_and_the_last_wins():
    # message 3 says its parent is b (References truncated for 2's sake); 1A never changes
    # a parent already set, 1B moves the message itself under its last reference
    got = refs(msg(1, "a@x"), msg(2, "b@x", ["a@x"]), msg(3, "c@x", ["b@x"]),
               msg(4, "c2@x", ["x@x", "b@x"]))
    assert got == "(1 2 (3)(4))"


def test_loop_in_references_is_not_linked():
    # 2 says a -> c -> b; then 3 (c) names b as its parent: that link would loop, so c
    # leaves its old parent and stays a root of its own (imaptest "thread", Dovecot)
    got = refs(msg(1, "a@x", date=30), msg(2, "b@x", ["a@x", "c@x"], date=10),
               msg(3, "c@x", ["b@x"], date=20))
    assert got == "(3 2)(1)"
    # a message referencing itself
    assert refs(msg(1, "a@x", ["a@x"])) == "(1)"


def test_duplicate_message_ids_become_unique():
    assert refs(msg(1, "a@x"), msg(2, "a@x")) == "(1)(2)"
    # the duplicate is a message of its own, reached by no reference
    got = refs(msg(1, "a@x"), msg(2, "b@x", ["a@x"]), msg(3, "c@x", ["b@x"]), msg(4, "b@x", ["a@x"]))
    assert got == "(1 (2 3)(4))"
    # a dummy made by a reference is filled by the first message with that id
    assert refs(msg(1, "c@x", ["b@x"]), msg(2, "b@x")) == "(2 1)"


def test_messages_without_ids_stand_alone():
    assert refs(msg(1), msg(2), msg(3, None, ["nothing@x"])) == "(1)(2)(3)"


def test_top_level_sorted_by_sent_date_a_dummy_by_its_first_child():
    got = refs(msg(1, "a@x", date=50), msg(2, "b@x", ["gone@x"], date=40),
               msg(3, "c@x", ["gone@x"], date=10), msg(4, "d@x", date=20))
    assert got == "((3)(2))(4)(1)"
    # equal dates: mailbox order
    assert refs(msg(1, "a@x", date=5), msg(2, "b@x", date=5)) == "(1)(2)"


def test_siblings_sorted_by_sent_date_at_every_level():
    got = refs(msg(1, "a@x", date=1), msg(2, "b@x", ["a@x"], date=9), msg(3, "c@x", ["a@x"], date=5),
               msg(4, "d@x", ["a@x", "b@x"], date=7), msg(5, "e@x", ["a@x", "b@x"], date=6))
    assert got == "(1 (3)(2 (5)(4)))"


def test_subject_merging_rules():
    # a reply joins the thread of the original as its child
    assert refs(msg(1, "a@x", subject="topic"), msg(2, "b@x", subject="Re: topic")) == "(1 2)"
    # two originals with one subject: a new dummy holds both
    assert refs(msg(1, "a@x", subject="topic"), msg(2, "b@x", subject="topic")) == "((1)(2))"
    # two replies: the same
    assert refs(msg(1, "a@x", subject="Re: topic"), msg(2, "b@x", subject="Re: topic")) == "((1)(2))"
    # the original comes later than the reply: the reply still goes under it
    assert refs(msg(1, "a@x", subject="Re: topic"), msg(2, "b@x", subject="topic")) == "(2 1)"
    # a top-level dummy takes a message of its subject as a child
    got = refs(msg(1, "b@x", ["gone@x"], subject="Re: topic"), msg(2, "c@x", ["gone@x"], subject="Re: topic"),
               msg(3, "d@x", subject="topic"))
    assert got == "((1)(2)(3))"
    # two dummies of one subject: their children become siblings
    got = refs(msg(1, "b@x", ["g1@x"], subject="t"), msg(2, "c@x", ["g1@x"], subject="t"),
               msg(3, "d@x", ["g2@x"], subject="t"), msg(4, "e@x", ["g2@x"], subject="t"))
    assert got == "((1)(2)(3)(4))"
    # an empty subject merges nothing; only top-level threads are merged
    assert refs(msg(1, "a@x"), msg(2, "b@x")) == "(1)(2)"
    got = refs(msg(1, "a@x", subject="x"), msg(2, "b@x", ["a@x"], subject="topic"),
               msg(3, "c@x", subject="topic"))
    assert got == "(1 2)(3)"


def test_uid_numbers_are_shown_seq_orders_ties():
    items = [Item(101, 1, 5, msg(1, "a@x").keys), Item(205, 2, 5, msg(2, "b@x", ["a@x"]).keys)]
    assert references(items) == b"(101 205)"


def test_a_long_chain_needs_no_recursion():
    n = 5000
    items = [msg(1, "m1@x")] + [msg(i, f"m{i}@x", [f"m{i - 1}@x"]) for i in range(2, n + 1)]
    got = references(items).decode()
    assert got == "(" + " ".join(str(i) for i in range(1, n + 1)) + ")"
    # and a long References list, each new message under the previous
    items = [msg(i, f"m{i}@x", [f"m{j}@x" for j in range(1, i)]) for i in range(1, 300)]
    assert references(items).decode() == "(" + " ".join(str(i) for i in range(1, 300)) + ")"


# -- ORDEREDSUBJECT -------------------------------------------------------------------------
def os_(*items):
    return ordered_subject(list(items)).decode()


def test_ordered_subject_groups_by_base_subject():
    got = os_(msg(1, subject="a", date=4), msg(2, subject="b", date=3), msg(3, subject="Re: a", date=2),
              msg(4, subject="b", date=1), msg(5, subject="Fwd: a", date=6), msg(6, subject="c", date=5))
    # threads ordered by their first message's date; the rest are children of the first
    assert got == "(4 2)(3 (1)(5))(6)"
    assert os_() == ""
    assert os_(msg(1), msg(2)) == "(1 2)"        # empty base subjects group together too


def test_the_tree_is_freed_without_the_cyclic_gc():
    """A parent and its children refer to each other: references() unties them, so
    reference counting frees the tree (100,000 cycles cost the cyclic GC seconds)."""
    import gc

    from clevermail.imap import thread
    items = [msg(1, "a@x", subject="s"), msg(2, "b@x", ["a@x"]), msg(3, "c@x", ["gone@x", "a@x"]),
             msg(4, "d@x", ["e@x"], subject="s"), msg(5, "f@x", subject="Re: s")]
    gc.collect()
    gc.disable()
    try:
        assert references(items) == b"((1 (2)(3))(4)(5))"
        alive = [o for o in gc.get_objects() if type(o) is thread._Node]
    finally:
        gc.enable()
    assert alive == []


def test_gc_paused_nests_and_restores_what_it_found():
    import gc

    from clevermail.imap.sortcache import gc_paused
    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()           # the outer holder is still inside
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()           # disabled before: left so
    finally:
        gc.enable()
