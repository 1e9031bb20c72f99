"""The control socket: how `clevermail status` asks the running server about itself.

An AF_UNIX stream socket at <data_dir>/clevermail.sock, mode 0600 (only the server's
own user may ask), started and stopped by MailService.  The protocol is one JSON
object a line each way: the client sends {"request": "status"} and reads one
answer, then the connection ends.  An unknown request or a malformed line gets
{"error": "..."}; a client that sends nothing is dropped after CLIENT_TIMEOUT, and
nothing it sends can stop the server.

status_of(service) is the answer: version, pid, start time and uptime, listeners,
the metrics URL, open sessions per protocol, the relay queue summary and the last
WARNING/ERROR log records (logs.RecentErrors); with [server] workers > 1, each
worker process too (workers.py), its sessions asked on its own socket and counted in.
"""

import dataclasses
import json
import logging
import os
import socket
import socketserver
import tempfile
import threading
import time

from . import __version__
from .metrics import open_sessions

log = logging.getLogger("clevermail.control")

SOCKET_NAME = "clevermail.sock"
REQUEST_LIMIT = 4096            # bytes of one request line
CLIENT_TIMEOUT = 5.0            # seconds a client may take to send its request


def socket_path(data_dir):
    return os.path.join(data_dir, SOCKET_NAME)


# -- the server side ---------------------------------------------------------------------
class _Handler(socketserver.StreamRequestHandler):
    timeout = CLIENT_TIMEOUT

    def handle(self):
        try:
            line = self.rfile.readline(REQUEST_LIMIT + 1)
        except OSError:
            return
        try:
            answer = self.server.answer(line)
        except Exception as exc:        # a bug must not end the control thread
            log.exception("control request failed")
            answer = {"error": f"internal error: {exc.__class__.__name__}"}
        try:
            self.wfile.write(json.dumps(answer).encode("utf-8") + b"\n")
        except OSError:
            pass


class ControlServer(socketserver.UnixStreamServer):
    """Serves requests on `path`; `requests` maps a request name to a function
    returning its JSON-able answer."""

    def __init__(self, path, requests):
        self.path = path
        self.requests = requests
        self._thread = None
        super().__init__(path, _Handler, bind_and_activate=False)

    def server_bind(self):
        # Never reachable with looser permissions: bound under a private (0700)
        # directory, made 0600, then renamed into place.  A stale socket left by a
        # crash is replaced; a live one (another instance on this data dir) is kept.
        if _answers(self.path):
            raise OSError(f"another server answers on {self.path}")
        # (The temporary name is no longer than the final one: AF_UNIX paths are
        # limited to 107 bytes.)
        private = tempfile.mkdtemp(prefix=".ctl", dir=os.path.dirname(self.path))
        tmp = os.path.join(private, "s")
        try:
            self.socket.bind(tmp)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            os.rmdir(private)
        self.server_address = self.path

    def answer(self, line):
        if len(line) > REQUEST_LIMIT:
            return {"error": "request too long"}
        try:
            request = json.loads(line)
            name = request["request"]
        except (ValueError, TypeError, KeyError):
            return {"error": 'malformed request: one JSON object a line, {"request": NAME}'}
        function = self.requests.get(name) if isinstance(name, str) else None
        if function is None:
            return {"error": f"unknown request {str(name)[:40]!r}; known: {', '.join(sorted(self.requests))}"}
        return function()

    def start(self):
        self.server_bind()
        self.server_activate()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="clevermail-control", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=5.0):
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout)
            self._thread = None
            try:                    # only ours: a later instance may have bound it since
                if os.stat(self.path).st_ino == self._inode:
                    os.unlink(self.path)
            except OSError:
                pass
        self.server_close()

    def server_activate(self):
        super().server_activate()
        self._inode = os.stat(self.path).st_ino


def _answers(path):
    """True when a server accepts connections on the socket at `path`."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


# -- the answer ----------------------------------------------------------------------------
def status_of(service):
    """What `clevermail status` shows, from a started MailService."""
    now = time.time()
    observers = getattr(service, "observers", None)
    endpoint = observers.endpoint if observers is not None else None
    try:
        summary = service.queue.summary()
        queue = {**dataclasses.asdict(summary), "line": summary.line()}
    except OSError as exc:
        queue = {"error": str(exc)}
    errors = observers.recent_errors.recent() if observers is not None and observers.recent_errors else []
    return {
        "running": True, "version": __version__, "pid": os.getpid(),
        "started": service.started_at, "uptime": max(0.0, now - service.started_at),
        "config": service.settings.source, "data_dir": service.settings.server.data_dir,
        "listeners": [{"kind": kind, "address": srv.server_address[0], "port": srv.port}
                      for kind, srv in service.servers],
        "metrics": endpoint.url if endpoint is not None else None,
        "sessions": open_sessions(service.servers),
        "queue": queue,
        "errors": errors,
        **_workers(service),
    }


def _workers(service):
    """With [server] workers > 1: each worker's pid, state and sessions (asked on its
    own control socket), and "sessions" summed over every process."""
    pool = getattr(service, "pool", None)
    if pool is None:
        return {}
    from .workers import control_path
    base = socket_path(service.settings.server.data_dir)
    total = open_sessions(service.servers)
    out = []
    for worker in pool.status():
        if worker["alive"]:
            try:
                answer = request(control_path(base, worker["index"]), timeout=2.0)
                worker["sessions"] = answer["sessions"]
                for protocol, count in answer["sessions"].items():
                    total[protocol] = total.get(protocol, 0) + count
            except (NotRunning, OSError, ValueError, KeyError, TypeError):
                worker["sessions"] = None       # starting, or stopping
        out.append(worker)
    return {"workers": out, "sessions": total}


# -- the client side -------------------------------------------------------------------------
class NotRunning(Exception):
    """Nothing answers on the control socket."""


def request(path, name="status", timeout=10.0):
    """Send one request to the server at `path`; its JSON answer.  NotRunning when no
    server listens there; OSError or ValueError when the answer does not come."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise NotRunning(f"no server answers on {path} ({exc.strerror})") from None
        sock.sendall(json.dumps({"request": name}).encode("utf-8") + b"\n")
        with sock.makefile("rb") as reader:
            line = reader.readline(1 << 22)
    finally:
        sock.close()
    if not line:
        raise ValueError(f"the server at {path} closed the connection without an answer")
    return json.loads(line)
