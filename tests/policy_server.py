"""An HTTPS server on 127.0.0.1 that serves MTA-STS policy files (RFC 8461 3.3), for the
relay's and the doctor's tests."""

import threading


class PolicyServer:
    """An HTTPS server on 127.0.0.1 for MTA-STS policy files (RFC 8461 3.3).

    ssl_context: the server's context (a trustme certificate for mta-sts.<domain>).
    responses: path -> (status, content type, body bytes, extra headers dict); a
    missing path is 404. `requests` lists the paths asked for."""

    def __init__(self, ssl_context, responses: dict | None = None):
        import http.server
        self.responses = dict(responses or {})
        self.requests: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.requests.append(self.path)
                status, ctype, body, headers = owner.responses.get(
                    self.path, (404, "text/plain", b"not found", {}))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, addr = self.socket.accept()
                return ssl_context.wrap_socket(sock, server_side=True), addr

            def handle_error(self, request, client_address):
                pass            # a client that gave up the handshake: not our test's business

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def policy(self, text: str, status: int = 200, ctype: str = "text/plain", headers=None) -> None:
        self.responses["/.well-known/mta-sts.txt"] = (status, ctype, text.encode(), headers or {})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
