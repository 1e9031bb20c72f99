"""Another process's folder renames told as renames (RFC 5465 5.4 OLDNAME): the
store's root watch (store/tree_watch.py) over a real inotify descriptor on a temporary
directory, and NOTIFY's TreeWatch (imap/notify_tree.py) over a scripted tree and watch,
so that every order in which another process's rename can be seen is tried."""

import os
import select
import types

import pytest

from clevermail.imap.handler import TreeNode
from clevermail.imap.notify_spec import parse_notify
from clevermail.imap import notify_tree
from clevermail.imap.notify_tree import TreeWatch
from clevermail.imap.parser import parse_command
from clevermail.store.tree_watch import open_root_watch


# -- the root watch: renames of folders, and only those -------------------------------------
@pytest.fixture
def root(tmp_path):
    watch = open_root_watch(str(tmp_path))
    if watch is None:
        pytest.skip("no inotify here")
    yield tmp_path, watch
    watch.close()


def readable(watch):
    return bool(select.select([watch.fileno()], [], [], 5)[0])


def test_a_rename_is_told_and_a_creation_or_deletion_is_not(root):
    path, watch = root
    # a creation as tree.py makes one: built under a hidden name, renamed into place
    os.mkdir(path / ".Box..creating-1-2")
    os.rename(path / ".Box..creating-1-2", path / ".Box")
    os.mkdir(path / ".Box.Child")
    assert readable(watch) and watch.drain()
    assert watch.take_renames() == []
    os.rename(path / ".Box", path / ".Crate")
    os.rename(path / ".Box.Child", path / ".Crate.Child")
    (path / "subscriptions.tmp").write_text("Crate\n")
    os.rename(path / "subscriptions.tmp", path / "subscriptions")
    assert readable(watch) and watch.drain()
    assert watch.take_renames() == [("Box", "Crate"), ("Box/Child", "Crate/Child")]
    assert watch.take_renames() == []           # taken once
    # a deletion as tree.py does it: renamed away first
    os.rename(path / ".Crate", path / ".Crate..deleted-1-2")
    os.rename(path / ".Crate.Child", path / ".Crate.Child..deleted-1-2")
    assert readable(watch) and watch.drain()
    assert watch.take_renames() == []
    assert not watch.drain()


def test_a_move_out_of_the_root_and_in_from_elsewhere(root, tmp_path_factory):
    path, watch = root
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    os.mkdir(path / ".Out")
    os.mkdir(elsewhere / ".In")
    os.rename(path / ".Out", elsewhere / ".Out")
    os.rename(elsewhere / ".In", path / ".In")
    assert readable(watch) and watch.drain()
    assert watch.take_renames() == []


# -- NOTIFY's view of the tree: every order another process's rename can be seen in ------------
class Root:
    """A scripted root watch: the moves the next drain() reads."""

    def __init__(self):
        self.queued, self.renames = [], []

    def fileno(self):
        return -1

    def drain(self):
        got, self.queued = self.queued, []
        self.renames += got
        return bool(got)

    def take_renames(self):
        out, self.renames = self.renames, []
        return out

    def close(self):
        pass


class Handler:
    """The tree (names, subscriptions) as another process leaves it, step by step."""

    def __init__(self, names, subscribed=()):
        self.names, self.subs = set(names), list(subscribed)
        self.root = Root()

    def folder_tree(self, address):
        every = set(self.names) | {n.rsplit("/", 1)[0] for n in self.names if "/" in n}
        return [TreeNode(n, any(m.startswith(n + "/") for m in every), n in self.names, ())
                for n in sorted(every)]

    def subscriptions(self, address):
        return list(self.subs)

    def listen_tree(self, address, callback):
        pass

    def unlisten_tree(self, address, callback):
        pass

    def tree_changing(self, address):
        return False

    def watch_tree(self, address):
        return self.root

    def rename(self, old, new, children=True, subscriptions=True):
        """One step of tree.rename: the folder (then each child) moved, the moves
        queued as inotify would."""
        moves = [(old, new)]
        if children:
            moves += [(n, new + n[len(old):]) for n in sorted(self.names) if n.startswith(old + "/")]
        for a, b in moves:
            self.names.discard(a)
            self.names.add(b)
            self.root.queued.append((a, b))
        if subscriptions:
            self.move_subscriptions(old, new)

    def move_subscriptions(self, old, new):
        self.subs = [new + s[len(old):] if s == old or s.startswith(old + "/") else s for s in self.subs]


def tree_watch(handler, signals):
    spec = parse_notify(parse_command(b"a NOTIFY SET (personal (MailboxName SubscriptionChange))",
                                      None, 0).args)
    return TreeWatch(handler, "alice@example.test", spec, lambda: signals.append(1))


def look(watch, poll=False):
    """What one look after the root watch fired says (str lines)."""
    watch._on_disk = True
    lines, _ = watch.updates(poll)
    return [line.decode().rstrip("\r\n") for line in lines]


def test_a_rename_seen_whole_is_one_line():
    handler, signals = Handler({"INBOX", "Box", "Box/Child"}, ["Box"]), []
    watch = tree_watch(handler, signals)
    handler.rename("Box", "Crate")
    assert look(watch) == ['* LIST (\\HasChildren \\Subscribed) "/" "Crate" ("OLDNAME" ("Box"))']
    assert watch.names == {"INBOX", "Crate", "Crate/Child"} and watch.subscribed == {"Crate"}
    assert look(watch) == []


def test_a_rename_seen_half_done_waits_for_the_rest():
    """tree.py moves the folder, then its children, then rewrites the subscriptions:
    a look between two steps says nothing yet, the look after the last says it all."""
    handler, signals = Handler({"INBOX", "Box", "Box/Child"}, ["Box/Child"]), []
    watch = tree_watch(handler, signals)
    handler.rename("Box", "Crate", children=False, subscriptions=False)
    assert look(watch) == []
    handler.names.discard("Box/Child")
    handler.names.add("Crate/Child")
    handler.root.queued.append(("Box/Child", "Crate/Child"))
    assert look(watch) == []                    # the subscriptions are not moved yet
    handler.move_subscriptions("Box", "Crate")
    assert look(watch) == ['* LIST (\\HasChildren) "/" "Crate" ("OLDNAME" ("Box"))']
    assert watch.subscribed == {"Crate/Child"}
    assert look(watch) == []


def test_a_rename_left_half_done_is_said_after_a_while(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(notify_tree, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    handler, signals = Handler({"INBOX", "Box", "Box/Child"}), []
    watch = tree_watch(handler, signals)
    handler.rename("Box", "Crate", children=False)
    assert look(watch) == []
    assert look(watch, poll=True) == []         # a periodic look while it is under way
    # that process died: a look some seconds later says what there is
    clock[0] += notify_tree.UNDER_WAY
    # (the child that stayed behind: gone from under the new name, there under the old)
    assert look(watch, poll=True) == ['* LIST (\\HasNoChildren) "/" "Crate" ("OLDNAME" ("Box"))',
                                      '* LIST (\\NonExistent) "/" "Crate/Child"',
                                      '* LIST (\\HasNoChildren) "/" "Crate"',
                                      '* LIST (\\HasNoChildren) "/" "Box/Child"',
                                      '* LIST (\\HasChildren \\Noselect) "/" "Box"']


def test_renames_of_a_renamed_folder_are_one():
    handler, signals = Handler({"INBOX", "Box"}), []
    watch = tree_watch(handler, signals)
    handler.rename("Box", "Crate")
    handler.rename("Crate", "Chest")
    assert look(watch) == ['* LIST (\\HasNoChildren) "/" "Chest" ("OLDNAME" ("Box"))']
    handler.rename("Chest", "Box")                # and back: nothing changed
    assert look(watch) == ['* LIST (\\HasNoChildren) "/" "Box" ("OLDNAME" ("Chest"))']
    handler.rename("Box", "Crate")
    handler.rename("Crate", "Box")
    assert look(watch) == []


def test_a_rename_read_after_the_tree_is_said_at_the_next_look():
    """The moves are read before the tree; a rename made between the two shows in
    the tree without its moves: said as a rename when they are read, right after."""
    handler, signals = Handler({"INBOX", "Box"}), []
    watch = tree_watch(handler, signals)
    read = handler.subscriptions

    def rename_while_reading(address):      # the rename lands between drain and read
        handler.subscriptions = read
        handler.rename("Box", "Crate")
        return read(address)
    handler.subscriptions = rename_while_reading
    lines = look(watch)
    assert lines in ([], ['* LIST (\\HasNoChildren) "/" "Crate" ("OLDNAME" ("Box"))'])
    if not lines:
        assert signals and watch._on_disk         # a next look is asked for at once
        lines = watch.updates(False)[0]
        lines = [line.decode().rstrip("\r\n") for line in lines]
    assert lines == ['* LIST (\\HasNoChildren) "/" "Crate" ("OLDNAME" ("Box"))']


def test_creations_and_deletions_stay_what_they_are():
    handler, signals = Handler({"INBOX", "Box"}), []
    watch = tree_watch(handler, signals)
    handler.names.discard("Box")
    handler.names.add("Crate")                  # no move read: a deletion and a creation
    assert look(watch) == ['* LIST (\\NonExistent) "/" "Box"', '* LIST (\\HasNoChildren) "/" "Crate"']
    # a move whose names the tree does not confirm (this process's own, said already)
    handler.root.queued.append(("Crate", "Elsewhere"))
    assert look(watch) == []


def test_renames_of_a_renamed_folder_read_after_the_tree():
    """Two renames one after the other, landing between the first read of the moves
    and the tree: the next look says them as one, from the name the session knows."""
    handler, signals = Handler({"INBOX", "Box", "Box/Child"}), []
    watch = tree_watch(handler, signals)
    read = handler.subscriptions

    def renames_while_reading(address):
        handler.subscriptions = read
        handler.rename("Box", "Crate")
        handler.rename("Crate", "Chest")
        return read(address)
    handler.subscriptions = renames_while_reading
    lines = look(watch)
    if not lines:
        assert watch._on_disk
        lines = [line.decode().rstrip("\r\n") for line in watch.updates(False)[0]]
    assert lines == ['* LIST (\\HasChildren) "/" "Chest" ("OLDNAME" ("Box"))']
    assert watch.names == {"INBOX", "Chest", "Chest/Child"}
    # a later rename after moves already told: told from the name now known
    handler.rename("Chest", "Trunk")
    assert look(watch) == ['* LIST (\\HasChildren) "/" "Trunk" ("OLDNAME" ("Chest"))']


def test_a_listing_read_while_the_root_changed_is_read_again():
    """readdir(3) may miss an entry renamed while it reads (the new name lands where
    the listing has passed, the old one is gone before it gets there): a tree read
    while moves came is not compared (a missed child would be said deleted, then
    created); the look after says the rename as one line."""
    handler, signals = Handler({"INBOX", "Box", "Box/Child"}), []
    watch = tree_watch(handler, signals)
    listing = handler.folder_tree

    def rename_while_listing(address):
        handler.folder_tree = listing
        handler.rename("Box", "Crate", children=False)
        seen = listing(address)
        handler.names.discard("Box/Child")     # moved under the listing: missed
        handler.names.add("Crate/Child")
        handler.root.queued.append(("Box/Child", "Crate/Child"))
        return [node for node in seen if node.name != "Box/Child"]
    handler.folder_tree = rename_while_listing
    assert look(watch) == []
    assert signals and watch._on_disk           # read again at once
    assert [line.decode().rstrip("\r\n") for line in watch.updates(False)[0]] == [
        '* LIST (\\HasChildren) "/" "Crate" ("OLDNAME" ("Box"))']
    assert watch.names == {"INBOX", "Crate", "Crate/Child"}
    assert look(watch) == []
