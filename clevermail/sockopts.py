"""The options of a session's TCP connection and of the listener it comes from: the
kernel's read and write timeouts (SO_RCVTIMEO/SO_SNDTIMEO) on a blocking socket, and
TCP_NODELAY.  netbase.MailServer sets them on its listener (Linux copies them to every
accepted socket); line_session.LineSession sets them on its connection when the listener's
do not fit (a reload changed the idle timeout, a PROXY header was read with its own).
"""

import socket
import struct


def set_blocking_timeout(sock, seconds):
    """Make `sock` a blocking socket whose reads and writes time out in the kernel
    (SO_RCVTIMEO/SO_SNDTIMEO).  Python's settimeout() instead polls before every recv
    and send: twice the syscalls and GIL hand-offs on the hot path of every session.
    A timed-out call raises BlockingIOError, which LineReader turns into a timeout."""
    if sock.gettimeout() is not None:
        sock.settimeout(None)
    set_kernel_timeouts(sock, seconds)


def set_kernel_timeouts(sock, seconds):
    """SO_RCVTIMEO and SO_SNDTIMEO of `sock`, its blocking mode left as it is (a
    listener's: see MailServer.prime_listener)."""
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


def set_nodelay(sock):
    """Replies often go out as two writes (untagged data, then the status line): with
    Nagle on, the second waits for the client's delayed ACK (~40 ms)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass  # not TCP (socketpair in tests)
