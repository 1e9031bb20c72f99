"""An independent DKIM verifier for the tests: dkimpy's verifier in a separate Python
process that knows nothing of CleverMail, with a dnsfunc that asks a real DNS server
(tests/dns_server.py) on loopback, whose zone holds the records the operator was told
to publish.

    python -I tests/dkim_verify.py HOST PORT < message     # one JSON line out

The child runs isolated (-I: no PYTHONPATH, no current directory on sys.path), imports
only dkim and dnspython, checks every DKIM-Signature of the message (index 0 is the
topmost) and prints [{"d", "s", "a", "ok", "error"}, ...] plus the modules it loaded
from the clevermail package (none, or the verification proves nothing).

verify(message, dns_port) runs it; zone_lines(text) picks the zone-file lines out of
`clevermail dkim keygen|list` output.
"""

import json
import os
import subprocess
import sys

HERE = os.path.abspath(__file__)


def verify(message, dns_port, host="127.0.0.1"):
    """[{d, s, a, ok, error}, ...] for each signature of `message`, top first."""
    proc = subprocess.run([sys.executable, "-I", HERE, host, str(dns_port)], input=message,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out = json.loads(proc.stdout)
    assert out["clevermail_modules"] == [], out["clevermail_modules"]
    return out["signatures"]


def zone_lines(text):
    """The zone-file lines of `clevermail dkim` output (comments and listings dropped)."""
    return [line for line in text.splitlines() if " IN TXT " in line and not line.startswith((";", " "))]


def main(host, port):
    import logging
    import re

    import dkim
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)

    def dnsfunc(name, timeout=5):
        try:
            answer = resolver.resolve(name.decode("ascii"), "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(answer[0].strings)

    message = sys.stdin.buffer.read()
    logger = logging.getLogger("verifier")
    results = []
    count = len(re.findall(rb"(?im)^dkim-signature:", message.split(b"\r\n\r\n", 1)[0]))
    for i in range(count):
        d = dkim.DKIM(message, logger=logger)
        try:
            ok = bool(d.verify(idx=i, dnsfunc=dnsfunc))
            error = None
        except dkim.DKIMException as exc:
            ok, error = False, str(exc)
        fields = d.signature_fields
        results.append({"d": fields.get(b"d", b"").decode(), "s": fields.get(b"s", b"").decode(),
                        "a": fields.get(b"a", b"").decode(), "h": fields.get(b"h", b"").decode(),
                        "ok": ok, "error": error})
    loaded = sorted(m for m in sys.modules if m == "clevermail" or m.startswith("clevermail."))
    print(json.dumps({"signatures": results, "clevermail_modules": loaded}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
