"""LIST with the extensions of RFC 5258 (LIST-EXTENDED): selection options SUBSCRIBED,
REMOTE, RECURSIVEMATCH and SPECIAL-USE (RFC 6154), several patterns, and the RETURN
options SUBSCRIBED, CHILDREN, SPECIAL-USE and STATUS (RFC 5819, LIST-STATUS).

`cmd_list(session, cmd)` is the LIST of the command table.  A LIST in RFC 3501's form
(a reference and one pattern) answers as before; `parse_list()` (pure) reads the
extended form.  What each mailbox is: the handler's folder tree (existing folders and
the missing parents of nested ones) and the user's subscriptions.

- SUBSCRIBED selects the subscribed names (\\Subscribed), a name that is no folder is
  \\NonExistent (RFC 5258 3.4); RECURSIVEMATCH adds a name the patterns match that is
  not selected itself but has a selected descendant the patterns do not match, with
  CHILDINFO ("SUBSCRIBED") (RFC 5258 3.5).
- SPECIAL-USE selects the folders with a special-use attribute (those of their names,
  or those they were created with: CREATE-SPECIAL-USE, RFC 6154 3).
- RETURN (STATUS (...)) sends a STATUS response after the LIST line of each selectable
  mailbox (RFC 5819), the items of the STATUS command.
"""

import functools

from ..store.paths import SEPARATOR
from . import replies as R
from .cmd_mailboxes import STATUS_ITEMS, status_line
from .names import ListPattern, list_attributes, list_form, wire_name
from .parser import astring

SELECTION = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
RETURNS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})


# Every LIST spells every folder name of the user (mUTF-7 and quoting) and compiles
# its patterns: the same few names and patterns again and again, so both are kept
# (pure functions of their arguments; a pattern object is not changed once made).
@functools.lru_cache(maxsize=4096)
def _spelled(name, utf8):
    """(list form, quoted wire bytes) of a folder name: names.list_form, wire_name."""
    return list_form(name, utf8), wire_name(name, utf8)


_pattern = functools.lru_cache(maxsize=256)(ListPattern)


@functools.lru_cache(maxsize=4096)
def _list_line(name, attrs, extra, utf8):
    """The LIST response line of a name with its attributes (a tuple) and extended data."""
    return b"* LIST (%s) \"%s\" %s%s\r\n" % (" ".join(attrs).encode(), SEPARATOR.encode(),
                                             _spelled(name, utf8)[1], extra)


class ListRequest:
    """A parsed LIST: reference, patterns, selection options, RETURN options and the
    STATUS items; `extended` when any RFC 5258 syntax was used."""

    def __init__(self, reference, patterns, selection=(), returns=(), status=(), extended=False):
        self.reference, self.patterns = reference, patterns
        self.selection, self.returns, self.status = frozenset(selection), frozenset(returns), status
        self.extended = extended
        # everything the lines depend on, apart from the tree and the session's spelling
        self.key = (reference, tuple(patterns), self.selection, self.returns, status, extended)


def _options(token, known):
    if not isinstance(token, list):
        raise R.LIST_EXTENDED_ARGS.error()
    out = []
    for tok in token:
        word = tok.upper() if isinstance(tok, str) else None
        if word not in known:
            raise R.UNKNOWN_LIST_OPTION.error()
        out.append(word)
    return out


def parse_list(args):
    """LIST arguments -> ListRequest; BAD (IMAPBad) for what RFC 5258 does not allow."""
    args = list(args)
    selection, extended = [], False
    if args and isinstance(args[0], list):
        selection, extended = _options(args.pop(0), SELECTION), True
        # RECURSIVEMATCH only refines another selection option (RFC 5258 3.1)
        if "RECURSIVEMATCH" in selection and not set(selection) - {"RECURSIVEMATCH", "REMOTE"}:
            raise R.RECURSIVEMATCH_ALONE.error()
    if len(args) < 2:
        raise R.LIST_ARGS.error("LIST")
    reference = astring(args[0])
    if isinstance(args[1], list):
        if not args[1]:
            raise R.LIST_EXTENDED_ARGS.error()
        patterns, extended = [astring(p) for p in args[1]], True
    else:
        patterns = [astring(args[1])]
    rest = args[2:]
    returns, status = [], ()
    if rest:
        if len(rest) != 2 or not isinstance(rest[0], str) or rest[0].upper() != "RETURN" \
                or not isinstance(rest[1], list):
            raise R.LIST_EXTENDED_ARGS.error()
        extended = True
        opts = rest[1]
        i = 0
        while i < len(opts):
            word = opts[i].upper() if isinstance(opts[i], str) else None
            if word not in RETURNS:
                raise R.UNKNOWN_LIST_OPTION.error()
            if word == "STATUS":
                i += 1
                if i >= len(opts) or not isinstance(opts[i], list) or not opts[i]:
                    raise R.LIST_EXTENDED_ARGS.error()
                status = []
                for tok in opts[i]:
                    item = tok.upper() if isinstance(tok, str) else None
                    if item not in STATUS_ITEMS:
                        raise R.UNKNOWN_STATUS_ITEM.error(tok)
                    status.append(item)
            returns.append(word)
            i += 1
    return ListRequest(reference, patterns, selection, returns, tuple(status), extended)


def cmd_list(session, cmd):
    """List mailboxes matching a reference and patterns, selected and described as asked.
    States: authenticated, selected.
    RFC 3501 6.3.8, RFC 5258, RFC 5819, RFC 3348, RFC 6154."""
    req = parse_list(cmd.args)
    if session.rev2 and "RECENT" in req.status:
        raise R.UNKNOWN_STATUS_ITEM.error("RECENT")     # RFC 9051 has no RECENT item
    if not req.extended and req.patterns == [""]:
        # the hierarchy delimiter and root name (RFC 3501 6.3.8)
        session.send(f'* LIST (\\Noselect) "{SEPARATOR}" ""\r\n')
        return None
    handler, address = session.server.handler, session.account.address
    utf8 = session.utf8
    nodes = handler.folder_tree(address)
    want_subscribed = "SUBSCRIBED" in req.selection or "SUBSCRIBED" in req.returns
    # what a LIST answers depends on the tree alone unless subscriptions or STATUS
    # are asked: kept per request while the tree is the same (a client lists the same
    # way again and again; imaptest's LIST "" * is a twelfth of its mix)
    key = None if want_subscribed or req.status else (address, req.key, utf8, session.rev2)
    if key is not None:
        kept = handler.list_lines.get(key, nodes)
        if kept is not None:
            session.send_many(kept)
            return None
    matchers = [_pattern(req.reference, p) for p in req.patterns]
    if len(matchers) == 1:
        match = matchers[0].match

        def matches(name):
            return match(_spelled(name, utf8)[0])
    else:
        def matches(name):
            wire = _spelled(name, utf8)[0]
            return any(m.match(wire) for m in matchers)

    tree = {node.name: node for node in nodes}
    subscribed = set(handler.subscriptions(address)) if want_subscribed else set()
    out = []
    for name, attrs, extra in _listed(req, tree, subscribed, matches, session.rev2):
        out.append(_list_line(name, tuple(attrs), extra, utf8))
        if req.status and name in tree and tree[name].selectable:
            out.append(status_line(session, name, req.status))
    if key is not None:
        handler.list_lines.put(key, nodes, tuple(out))
    session.send_many(out)


def _listed(req, tree, subscribed, matches, rev2=False):
    """(name, attributes, extended data bytes) of each mailbox the LIST returns; a
    missing parent is \\NonExistent with SUBSCRIBED and for IMAP4rev2 (RFC 9051
    6.3.9.6), else \\Noselect."""
    sel = req.selection
    if "SUBSCRIBED" in sel:
        candidates = sorted(subscribed, key=lambda n: (n != "INBOX", n))
        selected = set(subscribed)
    elif "SPECIAL-USE" in sel:
        candidates = [n for n in tree if tree[n].special_use and tree[n].selectable]
        selected = set(candidates)
    else:
        candidates = list(tree)
        selected = None         # every mailbox
    chosen = [n for n in candidates if matches(n)]
    childinfo = {}
    if "RECURSIVEMATCH" in sel and selected is not None:
        # a name the patterns match, not selected, with a selected descendant that the
        # patterns do not match: listed for that descendant's sake (RFC 5258 3.5)
        for name in selected:
            if matches(name):
                continue
            levels = name.split(SEPARATOR)
            for i in range(len(levels) - 1, 0, -1):
                parent = SEPARATOR.join(levels[:i])
                if matches(parent):
                    if parent not in selected:
                        childinfo[parent] = True
                    break
    # (the candidates come INBOX first, then by name: the tree's order, or sorted so)
    names = sorted(set(chosen) | set(childinfo), key=lambda n: (n != "INBOX", n)) if childinfo else chosen
    for name in names:
        node = tree.get(name)
        attrs = []
        if node is None:
            attrs.append("\\NonExistent")
        else:
            attrs = list_attributes(node, nonexistent=rev2 or "SUBSCRIBED" in sel)
        if name in subscribed:
            attrs.append("\\Subscribed")
        extra = b' ("CHILDINFO" ("SUBSCRIBED"))' if name in childinfo else b""
        yield name, attrs, extra
