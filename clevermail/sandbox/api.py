"""The sandbox's JSON API over HTTP/1.1 (stdlib http.server, one thread per request),
on loopback only:

    GET    /api/mailboxes                      {"mailboxes": [{"address", "messages"}]}
    GET    /api/messages?address=A[&folder=F]  {"messages": [summary, ...]} oldest first
    GET    /api/messages/ID                    summary + raw, headers, parts
    GET    /api/wait?address=A[&subject=S][&header=Name:value ...][&folder=F][&timeout=T]
                                               the first message matching in any folder
                                               of A (or in F) (long poll), 408 when
                                               none came within T seconds (10)
    DELETE /api/messages                       {"deleted": n}: every message expunged

Loopback only, twice: the listener refuses a non-loopback address, and a request
whose client address is not loopback or whose Host is not a loopback name is refused
(403): a web page in the developer's browser must not read or delete mail through a
DNS name that points at 127.0.0.1 (DNS rebinding).
Errors are JSON too: {"error": "..."} with 400, 403, 404, 405 or 408.
"""

import ipaddress
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from .mailboxes import NotFound, details

log = logging.getLogger("clevermail.sandbox")

LOOPBACK_NAMES = {"localhost", "localhost.", "127.0.0.1", "::1"}
DEFAULT_WAIT = 10.0


class NotLoopback(ValueError):
    """The API was asked to listen on an address that is not loopback."""


def is_loopback(host):
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0]).is_loopback
    except ValueError:
        return host.lower() in ("localhost", "localhost.")


def host_is_loopback(header):
    """True for a Host header naming a loopback host ('localhost:8025', '[::1]:80')."""
    if not header:
        return True             # HTTP/1.0 clients send none; the peer check still holds
    host = header.strip()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rpartition(":")[0]
    return host.lower() in LOOPBACK_NAMES or is_loopback(host)


class HTTPError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    server_version = "CleverMailSandbox"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):        # to the clevermail log, not stderr
        log.debug("api %s: " + fmt, self.client_address[0], *args)

    def do_GET(self):
        self._run("GET")

    def do_DELETE(self):
        self._run("DELETE")

    def do_POST(self):
        self._run("POST")

    def do_PUT(self):
        self._run("PUT")

    def _run(self, method):
        try:
            if not is_loopback(self.client_address[0]) or not host_is_loopback(self.headers.get("Host")):
                raise HTTPError(403, "the sandbox API answers loopback clients only")
            url = urlsplit(self.path)
            query = parse_qs(url.query, keep_blank_values=True)
            status, body = self.server.api.route(method, url.path, query)
        except HTTPError as exc:
            status, body = exc.status, {"error": str(exc)}
        except Exception:                           # a bug: say so, keep serving
            log.exception("sandbox API: %s %s", method, self.path)
            status, body = 500, {"error": "internal error"}
        data = json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class SandboxAPI:
    def __init__(self, mailboxes, host="127.0.0.1", port=0):
        if not is_loopback(host):
            raise NotLoopback(f"the sandbox API listens on loopback only, not {host}")
        self.mailboxes = mailboxes
        server_class = type("_Server", (ThreadingHTTPServer,), {
            "daemon_threads": True,
            "address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
        self.httpd = server_class((host.strip("[]"), port), _Handler)
        self.httpd.api = self
        self._thread = None

    @property
    def port(self):
        return self.httpd.server_address[1]

    @property
    def url(self):
        host = self.httpd.server_address[0]
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="clevermail-sandbox-api", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self.httpd.server_close()

    # -- the routes ----------------------------------------------------------------
    def route(self, method, path, query):
        """(status, JSON value) of one request; HTTPError for a refusal."""
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:1] != ["api"] or len(parts) < 2:
            raise HTTPError(404, f"no such resource {path}")
        resource, rest = parts[1], parts[2:]
        allowed = {("mailboxes", 0): "GET", ("messages", 0): "GET DELETE",
                   ("messages", 1): "GET", ("wait", 0): "GET"}.get((resource, len(rest)))
        if allowed is None:
            raise HTTPError(404, f"no such resource {path}")
        if method not in allowed.split():
            raise HTTPError(405, f"{method} is not allowed on {path} ({allowed})")
        box = self.mailboxes
        try:
            if resource == "mailboxes":
                return 200, {"mailboxes": box.counts()}
            if resource == "wait":
                return self._wait(query)
            if method == "DELETE":
                return 200, {"deleted": box.clear()}
            if rest:
                return 200, box.message(rest[0])
            return 200, {"messages": box.messages(_one(query, "address", required=True),
                                                   _one(query, "folder") or "INBOX")}
        except NotFound as exc:
            raise HTTPError(404, str(exc)) from None

    def _wait(self, query):
        address = _one(query, "address", required=True)
        timeout = _one(query, "timeout")
        try:
            timeout = DEFAULT_WAIT if timeout is None else float(timeout)
        except ValueError:
            raise HTTPError(400, f"timeout must be a number of seconds, not {timeout!r}") from None
        found = self.mailboxes.wait(address, subject=_one(query, "subject"),
                                    headers=query.get("header", []), timeout=timeout,
                                    folder=_one(query, "folder"))
        if found is None:
            raise HTTPError(408, f"no matching message for {address} within {timeout:g} s")
        folder, uid, raw = found
        return 200, details(raw, address.strip().lower(), folder, uid)


def _one(query, name, required=False):
    values = query.get(name)
    if not values or values[0] == "":
        if required:
            raise HTTPError(400, f"the {name} parameter is required")
        return None
    return values[0]
