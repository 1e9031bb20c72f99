"""A real DNS server on loopback for the tests: UDP and TCP on one ephemeral port,
answering from a zone the test gives as zone-file text.

    with DNSServer('''
        example.test.            300 IN MX   10 mail.example.test.
        mail.example.test.       300 IN A    127.0.0.1
        example.test.            300 IN TXT  "v=spf1 ip4:127.0.0.1 -all"
    ''', authenticated={"_25._tcp.mail.example.test."}) as dns:
        resolver = make_resolver([("127.0.0.1", dns.port)])

Names absent from the zone get NXDOMAIN, present names without the asked type NOERROR
with no answer (NODATA).  A name in `authenticated` is answered with the AD bit set, as
a validating resolver does for a DNSSEC-secure answer; `servfail` names get SERVFAIL.
Replies larger than the client's UDP size come back truncated (TC), so a resolver
retries over TCP as it would on the internet.  `queries` records (name, type) asked.
`set_zone(text)` replaces the zone while running.  Everything is dnspython; nothing
leaves loopback.
"""

import socket
import struct
import threading

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone


class DNSServer:
    def __init__(self, zone_text="", *, authenticated=(), servfail=(), host="127.0.0.1"):
        self.host = host
        self.authenticated = {dns.name.from_text(n) for n in authenticated}
        self.servfail = {dns.name.from_text(n) for n in servfail}
        self.queries = []
        self._lock = threading.Lock()
        self.set_zone(zone_text)
        self._stop = threading.Event()
        self._threads = []

    def set_zone(self, zone_text):
        """Replace the answers: zone-file lines with absolute names."""
        zone = dns.zone.from_text(zone_text or "@ 300 IN TXT \"empty\"", origin=dns.name.root,
                                  relativize=False, check_origin=False)
        with self._lock:
            self._zone = zone

    # -- lifecycle -------------------------------------------------------------------
    def start(self):
        # one port number for UDP and TCP: a free UDP port may be taken for TCP by
        # someone else, so try again with another
        for _ in range(50):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind((self.host, 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.tcp.bind((self.host, self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        else:
            raise OSError("no port free for both UDP and TCP")
        self.tcp.listen(16)
        self.udp.settimeout(0.1)
        self.tcp.settimeout(0.1)
        for target in (self._serve_udp, self._serve_tcp):
            t = threading.Thread(target=target, name="test-dns", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(5)
        self.udp.close()
        self.tcp.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def nameserver(self):
        """(host, port): what config's [relay] nameservers and make_resolver take."""
        return (self.host, self.port)

    # -- answering ---------------------------------------------------------------------
    def answer(self, wire):
        """The response to one query in wire form (None for garbage)."""
        try:
            query = dns.message.from_wire(wire)
        except Exception:       # noqa: BLE001 - hostile or broken packet: no answer, as a server
            return None
        response = dns.message.make_response(query)
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        q = query.question[0]
        with self._lock:
            self.queries.append((q.name.to_text(), dns.rdatatype.to_text(q.rdtype)))
            zone = self._zone
        if q.name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        node = zone.get_node(q.name)
        if node is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        rdataset = node.get_rdataset(dns.rdataclass.IN, q.rdtype)
        if rdataset is None and q.rdtype != dns.rdatatype.CNAME:
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is not None:
                response.answer.append(_rrset(q.name, cname))
                target = cname[0].target
                rdataset = None
                target_node = zone.get_node(target)
                if target_node is not None:
                    rdataset = target_node.get_rdataset(dns.rdataclass.IN, q.rdtype)
                if rdataset is not None:
                    response.answer.append(_rrset(target, rdataset))
                rdataset = None
        if rdataset is not None:
            response.answer.append(_rrset(q.name, rdataset))
        if q.name in self.authenticated:
            response.flags |= dns.flags.AD
        return response

    def _serve_udp(self):
        while not self._stop.is_set():
            try:
                wire, peer = self.udp.recvfrom(65535)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            response = self.answer(wire)
            if response is None:
                continue
            try:
                payload = _udp_size(wire)
                out = response.to_wire(max_size=payload)
            except dns.exception.TooBig:
                response.answer.clear()
                response.flags |= dns.flags.TC
                out = response.to_wire()
            self.udp.sendto(out, peer)

    def _serve_tcp(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    head = _recv_exact(conn, 2)
                    wire = _recv_exact(conn, struct.unpack("!H", head)[0])
                except (OSError, ValueError):
                    continue
                response = self.answer(wire)
                if response is not None:
                    out = response.to_wire()
                    conn.sendall(struct.pack("!H", len(out)) + out)


def _rrset(name, rdataset):
    rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype)
    rrset.update(rdataset)
    return rrset


def _udp_size(wire):
    try:
        query = dns.message.from_wire(wire)
    except Exception:           # noqa: BLE001
        return 512
    return max(512, query.payload) if query.edns >= 0 else 512


def _recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ValueError("short read")
        data += chunk
    return data
