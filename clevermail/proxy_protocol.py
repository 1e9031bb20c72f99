"""The PROXY protocol, versions 1 and 2 (HAProxy's proxy-protocol.txt): the real client
address a load balancer in front of the server sends before the client's own bytes.

A listener named in `[server] proxy_protocol` takes connections only from the proxies
of `[server] proxy_networks`, and every such connection must begin with a PROXY
header; the session then knows the client by the address in it (logs, limits per
client, trusted_networks, SPF, DNSBL and throttles all key on it).  A connection from
anywhere else, a missing or malformed header, or one not complete within
HEADER_TIMEOUT is refused (closed without a reply, logged): the header comes before
any protocol, so there is no reply code to give, and a garbled header must never be
read as the client's first command.  The header comes before TLS on an implicit-TLS
listener, as HAProxy sends it.

parse_v1 and parse_v2 are pure; read_header reads exactly the header's bytes off the
socket (nothing of what follows), so the session's own reader starts at the client's
first byte.  A v1 "UNKNOWN" or a v2 LOCAL command (the proxy's own health check)
keeps the connection's own address.
"""

import ipaddress
import socket
import struct

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
V1_MAX = 107                # the longest v1 line, CRLF included (the specification's figure)
V2_MAX_BODY = 1024          # addresses (36 bytes at most) and TLVs we skip
HEADER_TIMEOUT = 5.0        # seconds a proxy may take to send the whole header


class ProxyError(Exception):
    """A connection that does not begin with a valid PROXY header (the reason, one line)."""


def parse_v1(line):
    """(client address, client port) of a v1 line (bytes, CRLF included), or None for
    "PROXY UNKNOWN"; ProxyError when it is not a valid line."""
    if not line.startswith(V1_PREFIX) or not line.endswith(b"\r\n") or len(line) > V1_MAX:
        raise ProxyError("not a PROXY v1 line")
    try:
        parts = line[:-2].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ProxyError("PROXY v1 line is not ASCII") from None
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return None
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyError("PROXY v1 line is not 'PROXY TCP4|TCP6 src dst sport dport'")
    _, family, src, dst, sport, dport = parts
    version = 4 if family == "TCP4" else 6
    for text in (src, dst):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise ProxyError(f"PROXY v1 address {text[:45]!r} is not an IP address") from None
        if address.version != version:
            raise ProxyError(f"PROXY v1 address {text} is not {family}")
    for text in (sport, dport):
        if not text.isdigit() or not text.isascii() or len(text) > 5 or int(text) > 65535 \
                or (len(text) > 1 and text[0] == "0"):
            raise ProxyError(f"PROXY v1 port {text[:8]!r} is not a port number")
    return src, int(sport)


def parse_v2(head, body):
    """(client address, client port) of a v2 header (its 16 fixed bytes and the `body`
    of the length they give), or None for a LOCAL command or an address family that is
    not IP; ProxyError when it is not a valid header."""
    if len(head) != 16 or not head.startswith(V2_SIGNATURE):
        raise ProxyError("not a PROXY v2 header")
    version, command = head[12] >> 4, head[12] & 0x0F
    family, transport = head[13] >> 4, head[13] & 0x0F
    (length,) = struct.unpack("!H", head[14:16])
    if version != 2:
        raise ProxyError(f"PROXY v2 header of version {version}")
    if len(body) != length:
        raise ProxyError("PROXY v2 header shorter than its length")
    if command == 0:                    # LOCAL: the proxy speaking for itself
        return None
    if command != 1:
        raise ProxyError(f"PROXY v2 command {command} is neither LOCAL nor PROXY")
    if family == 1 and transport == 1:          # TCP over IPv4
        if length < 12:
            raise ProxyError("PROXY v2 IPv4 addresses cut short")
        src = socket.inet_ntop(socket.AF_INET, body[0:4])
        (sport,) = struct.unpack("!H", body[8:10])
        return src, sport
    if family == 2 and transport == 1:          # TCP over IPv6
        if length < 36:
            raise ProxyError("PROXY v2 IPv6 addresses cut short")
        src = socket.inet_ntop(socket.AF_INET6, body[0:16])
        (sport,) = struct.unpack("!H", body[32:34])
        return src, sport
    if family == 0:                     # UNSPEC: the specification says use the real one
        return None
    raise ProxyError(f"PROXY v2 family {family}/{transport} is not TCP over IPv4 or IPv6")


def _recv_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ProxyError("connection closed inside the PROXY header")
        data += chunk
    return data


def read_header(sock):
    """Read the PROXY header off `sock` (a blocking socket with a timeout set by the
    caller); (address, port) of the client, or None to keep the socket's own peer.
    Raises ProxyError, or OSError (a timeout included) from the socket."""
    first = _recv_exactly(sock, len(V1_PREFIX))
    if first == V1_PREFIX:
        line = first
        while not line.endswith(b"\r\n"):       # a byte at a time: nothing past the line
            if len(line) >= V1_MAX:
                raise ProxyError("PROXY v1 line longer than 107 bytes")
            line += _recv_exactly(sock, 1)
        return parse_v1(line)
    if first != V2_SIGNATURE[:len(first)]:
        raise ProxyError("the connection does not begin with a PROXY header")
    head = first + _recv_exactly(sock, 16 - len(first))
    (length,) = struct.unpack("!H", head[14:16])
    if not head.startswith(V2_SIGNATURE):
        raise ProxyError("the connection does not begin with a PROXY header")
    if length > V2_MAX_BODY:
        raise ProxyError(f"PROXY v2 header of {length} bytes")
    return parse_v2(head, _recv_exactly(sock, length))
