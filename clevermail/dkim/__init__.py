"""DKIM signing of outgoing mail (RFC 6376; ed25519-sha256 of RFC 8463): the keys,
the DNS records to publish, and the signatures; and the pure core of verifying
incoming mail's signatures (inbound/dkimverify.py asks it, over the resolver).

    keys.py       the private keys under <data_dir>/dkim: one file per selector, a
                  manifest per domain that orders them, generation, deletion, checks
    records.py    a public key's TXT record and the zone-file lines to publish (pure)
    canon.py      what DKIM hashes, parsed once per message: header fields, the h=
                  choice, canonical bodies and their hashes (pure)
    signature.py  one DKIM-Signature header field for a message and a key (pure)
    pubkeys.py    verification keys: a key record -> a key, cached per record text
    verify.py     one DKIM-Signature verified as dkimpy verifies it (pure but for
                  the key lookup the caller passes)
    signer.py     Signer: the local domains' keys in memory (reloaded when they change)
                  and which messages get signed for which domain

Who signs what: smtp/handler.py signs every message of an authenticated session whose
From: domain is local, once, before the 250 (after the RFC 6409 fix-ups of
smtp/message.py); the relay worker's reports (relay/bounce.py) are signed for the
postmaster's domain.  service.py makes the keys a local domain lacks at its first start.
"""
