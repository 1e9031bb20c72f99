"""store/cur_journal.py across real processes: three processes change one folder at the
same time (flag changes, appends, expunges, chosen by a seeded random walk), in
rounds: in each, every process looks at the folder (following the lines the others
journaled in the round before) and makes its change while the others make theirs.  At
the end every one's index is the one a fresh full listing of the folder gives."""

import multiprocessing
import random

from clevermail.store import MailStore
from clevermail.store import sync

USER = "walk@example.test"
CHANGES = 250


def _message(n):
    return b"Subject: walk %d\r\n\r\nbody %d\r\n" % (n, n)


def _index(folder):
    return sorted((u, folder.entry(u).base, folder.entry(u).sub, folder.entry(u).flags)
                  for u in folder.uids)


def _walk(data, seed, rounds, out):
    """One process: CHANGES random changes, a sync before each, in step with the
    others (`rounds`, a barrier); then a last sync and its index."""
    folder = MailStore(data).open_folder(USER, "INBOX")
    followed = 0
    follow = sync.FolderSync._follow

    def counted(self, subs):
        nonlocal followed
        changed = follow(self, subs)
        followed += changed is not None
        return changed

    sync.FolderSync._follow = counted
    rng = random.Random(seed)
    for i in range(CHANGES):
        rounds.wait(timeout=60)
        folder.sync()
        uids = list(folder.uids)
        pick = rng.random()
        if pick < 0.5 and uids:
            chosen = rng.sample(uids, min(len(uids), rng.randint(1, 3)))
            folder.store_flags(chosen, rng.choice("SFaT"), rng.choice("+-="))
        elif pick < 0.75 or len(uids) < 5:
            folder.append(_message(seed * 100000 + i), rng.choice(("", "S", "Fa")))
        else:
            folder.expunge_flagged("T", uids)
    rounds.wait(timeout=60)        # every change made
    folder.sync()
    out.put((seed, followed, _index(folder)))


def test_three_processes_changing_one_folder_end_with_the_index_a_listing_gives(tmp_path):
    data = str(tmp_path / "data")
    folder = MailStore(data).open_folder(USER, "INBOX")
    for i in range(20):
        folder.append(_message(i))
    # spawn: a forked child would inherit this process's helper threads' locks
    context = multiprocessing.get_context("spawn")
    out, rounds = context.Queue(), context.Barrier(3)
    walkers = [context.Process(target=_walk, args=(data, seed, rounds, out)) for seed in (1, 2, 3)]
    for p in walkers:
        p.start()
    try:
        results = [out.get(timeout=180) for _ in walkers]
    finally:
        for p in walkers:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    listed = MailStore(data).open_folder(USER, "INBOX")
    listed.sync(force=True)
    truth = _index(listed)
    assert len(truth) > 20
    for seed, followed, index in results:
        assert index == truth, f"process {seed}"
        # each round's look finds the others' changes of the round before
        assert followed > CHANGES // 2, f"process {seed} followed the journal {followed} times"
