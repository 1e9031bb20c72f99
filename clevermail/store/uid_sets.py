"""UID sets as the store writes them ("1:3,7": ascending ranges), in the modseq file
(modseq.py) and, through imap/seqset.py, in IMAP responses (COPYUID, VANISHED,
MODIFIED)."""


def uid_set_text(uids):
    """Ascending, distinct UIDs -> "1:3,7"."""
    if uids and uids[-1] - uids[0] + 1 == len(uids):
        return f"{uids[0]}:{uids[-1]}" if len(uids) > 1 else str(uids[0])   # one run: an import
    parts = []
    start = prev = None
    for uid in uids:
        if start is None:
            start = prev = uid
        elif uid == prev + 1:
            prev = uid
        else:
            parts.append(f"{start}:{prev}" if prev != start else str(start))
            start = prev = uid
    if start is not None:
        parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


def parse_uid_set(text):
    """"1:3,7" -> [1, 2, 3, 7]; ValueError when damaged."""
    uids = []
    for part in text.split(","):
        first, _, last = part.partition(":")
        if last:
            uids.extend(range(int(first), int(last) + 1))
        else:
            uids.append(int(first))
    return uids
