"""THREAD (RFC 5256): the ORDEREDSUBJECT and REFERENCES algorithms and the THREAD
response format.  Pure: messages come in as `Item`s (the number to show, the sequence
number for ties, the sent date already resolved by RFC 5256 2.2, and the message's
sort.SortKeys), threads go out as the text after "* THREAD".

REFERENCES follows RFC 5256 section 4 step by step (the step numbers are in the
comments): links from References (or the first In-Reply-To msg-id), dummy containers
for missing messages, no link that would make a loop, duplicate Message-IDs made
unique, dummies pruned, top-level threads sorted by sent date, threads with the same
base subject merged, every sibling list sorted by sent date.  A dummy is sorted by
its first child (step 4 and 6).  Every walk over the tree is a loop with its own stack:
a References chain as long as the mailbox must not reach Python's recursion limit.
"""

from typing import NamedTuple

ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")


class Item(NamedTuple):
    number: int      # what the response shows: sequence number or UID
    seq: int         # the mailbox order, for exact ties
    date: int        # the sent date (RFC 5256 2.2), epoch seconds
    keys: object     # sort.SortKeys


def thread(algorithm, items):
    """The THREAD response data (bytes, after "THREAD") of `items` in mailbox order."""
    if algorithm == "ORDEREDSUBJECT":
        return ordered_subject(items)
    return references(items)


# -- ORDEREDSUBJECT (RFC 5256 section 4, "ORDEREDSUBJECT") ---------------------------
def ordered_subject(items):
    """Messages grouped by base subject, each group sorted by sent date; the first of
    a group is the parent of the others; groups ordered by their first's sent date."""
    ordered = sorted(items, key=lambda i: (i.keys.subject, i.date, i.seq))
    groups, last = [], None
    for item in ordered:
        if groups and item.keys.subject == last:
            groups[-1].append(item)
        else:
            groups.append([item])
            last = item.keys.subject
    groups.sort(key=lambda g: (g[0].date, g[0].seq))
    out = []
    for group in groups:
        first, rest = b"%d" % group[0].number, group[1:]
        if not rest:
            out.append(b"(" + first + b")")
        elif len(rest) == 1:
            out.append(b"(%s %d)" % (first, rest[0].number))
        else:
            out.append(b"(" + first + b" " + b"".join(b"(%d)" % i.number for i in rest) + b")")
    return b"".join(out)


# -- REFERENCES (RFC 5256 section 4, "REFERENCES") --------------------------------------
class _Node:
    """A container: a message (item) or a dummy (item None), its parent, children."""
    __slots__ = ("item", "parent", "children")

    def __init__(self, item=None):
        self.item = item
        self.parent = None
        self.children = []


def _is_ancestor(node, of):
    """Is `node` `of` itself or one of its ancestors?"""
    while of is not None:
        if of is node:
            return True
        of = of.parent
    return False


def _link(parent, child):
    child.parent = parent
    parent.children.append(child)


def _unlink(child):
    child.parent.children.remove(child)
    child.parent = None


def references(items):
    roots = _build(items)
    roots = _prune(roots)
    _sort_level(roots)                 # (4) the top level by sent date
    roots = _merge_subjects(roots)     # (5)
    _sort_all(roots)                   # (6)
    try:
        return render(roots)           # (7)
    finally:
        _untie(roots)


def _untie(roots):
    """Clear every parent link of the tree: a parent and its children refer to each
    other, and 100,000 such cycles left to the cyclic GC cost it seconds; untied,
    reference counting frees the tree at once."""
    stack = list(roots)
    while stack:
        node = stack.pop()
        node.parent = None
        stack.extend(node.children)


def _build(items):
    """Steps 1 and 2: the containers, linked; the list of those without a parent."""
    by_id = {}
    nodes = []
    for item in items:
        mid = item.keys.message_id
        node = by_id.get(mid) if mid is not None else None
        if node is None or node.item is not None:
            # (1) no Message-ID, or one a message before this one already has: a
            # unique one (this message is known to no reference)
            node = _Node(item)
            nodes.append(node)
            if mid is not None and mid not in by_id:
                by_id[mid] = node
        else:
            node.item = item           # a dummy made by an earlier reference
        # (1A) link the references in their order, parent before child, never
        # changing a parent already set, never making a loop
        prev = None
        for ref in item.keys.references:
            ref_node = by_id.get(ref)
            if ref_node is None:
                ref_node = by_id[ref] = _Node()
                nodes.append(ref_node)
            if (prev is not None and ref_node.parent is None
                    and not _is_ancestor(ref_node, prev)):
                _link(prev, ref_node)
            prev = ref_node
        # (1B) the last reference (or none) is the parent of this message: a parent
        # set before (from a truncated References) gives way first; then the link is
        # made unless it would loop (the message then stays a root, as in Dovecot)
        if node.parent is not None and node.parent is not prev:
            _unlink(node)
        if prev is not None and node.parent is None and not _is_ancestor(node, prev):
            _link(prev, node)
    # (2) the root set: every container without a parent
    return [n for n in nodes if n.parent is None]


def _prune(roots):
    """Step 3: a dummy without children goes; a dummy with children gives way to
    them, except at the top level, where only a dummy with one child does."""
    # post-order without recursion: prune a node's children before the node decides
    stack = [(n, False) for n in reversed(roots)]
    while stack:
        node, done = stack.pop()
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in node.children)
            continue
        kept = []
        for child in node.children:
            if child.item is None:
                for grandchild in child.children:
                    grandchild.parent = node
                kept.extend(child.children)      # none: the dummy is just gone
            else:
                kept.append(child)
        node.children = kept
    out = []
    for node in roots:
        if node.item is None and len(node.children) <= 1:
            for child in node.children:
                child.parent = None
            out.extend(node.children)
        else:
            out.append(node)
    return out


def _date_key(node):
    """Sent date and mailbox order of a message, or of a dummy's first child."""
    while node.item is None:
        node = node.children[0]
    return node.item.date, node.item.seq


def _sort_level(nodes):
    for node in nodes:
        if node.item is None:
            node.children.sort(key=_date_key)
    nodes.sort(key=_date_key)


def _thread_subject(node):
    item = node.item if node.item is not None else node.children[0].item
    return item.keys.subject


def _is_reply(node):
    return node.item.keys.reply


def _merge_subjects(roots):
    """Step 5: top-level threads with the same base subject are merged."""
    table = {}
    for node in roots:                                       # (5B)
        subject = _thread_subject(node)
        if not subject:
            continue
        held = table.get(subject)
        if held is None:
            table[subject] = node
        elif held.item is not None and (node.item is None or
                                        (_is_reply(held) and not _is_reply(node))):
            table[subject] = node
    # (5C) merge: a thread joined to another leaves its place empty (None); a
    # message wrapped in a new dummy has the dummy take its place
    roots = list(roots)
    slot = {id(n): i for i, n in enumerate(roots)}
    for i in range(len(roots)):
        node = roots[i]
        subject = _thread_subject(node) if node is not None else ""
        held = table.get(subject) if subject else None
        if held is None or held is node:
            continue
        roots[i] = None
        if held.item is None and node.item is None:
            for child in node.children:
                child.parent = held
            held.children.extend(node.children)
        elif held.item is None or (_is_reply(node) and not _is_reply(held)):
            _link(held, node)
        else:
            dummy = _Node()
            j = slot[id(held)]
            _link(dummy, held)
            _link(dummy, node)
            roots[j] = dummy
            slot[id(dummy)] = j
            table[subject] = dummy
    return [n for n in roots if n is not None]


def _sort_all(roots):
    """Step 6: every sibling list by sent date, children before their parents (a
    dummy sorts by its first child)."""
    stack = [(n, False) for n in roots]
    while stack:
        node, done = stack.pop()
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in node.children)
        else:
            node.children.sort(key=_date_key)
    roots.sort(key=_date_key)


def render(roots):
    """Step 7: the THREAD response data.  A message with one child is followed by that
    child's thread inline; with several, each child's thread in parentheses; a dummy
    shows only its children's threads in parentheses."""
    out = []
    for root in roots:
        out.append(b"(")
        # a stack of nodes to write and of literal closing parentheses
        stack = [root]
        while stack:
            node = stack.pop()
            if isinstance(node, bytes):
                out.append(node)
                continue
            if node.item is not None:
                if out[-1] not in (b"(",):
                    out.append(b" ")
                out.append(b"%d" % node.item.number)
            children = node.children
            if len(children) == 1 and node.item is not None:
                stack.append(children[0])
            elif children:
                if node.item is not None:
                    out.append(b" ")
                for child in reversed(children):
                    stack.append(b")")
                    stack.append(child)
                    stack.append(b"(")
        out.append(b")")
    return b"".join(out)
