"""A local JWKS server with the source image's endpoints, for testing without a cluster and as
a container entrypoint.

Like remote-jwks-go it serves the bytes it read at start-up: `/jwks` returns them, `/valid`
checks a bearer token against them, and every other path answers `success`.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from .errors import InputError, VerificationFailed


class JwksServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], jwks_bytes: bytes, document: dict[str, Any], log: TextIO
    ) -> None:
        self.jwks_bytes = jwks_bytes
        self.document = document
        self.log = log
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: JwksServer
    server_version = "jwksdeploy-serve"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/jwks":
            self._reply(200, self.server.jwks_bytes, "application/json")
        elif path == "/valid":
            self._valid(query)
        else:
            self._reply(200, b"success", "text/plain; charset=utf-8")

    do_HEAD = do_GET

    def _valid(self, query: str) -> None:
        from .tokens import verify

        header = self.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        token = credentials.strip() if scheme.lower() == "bearer" else ""
        token = token or (urllib.parse.parse_qs(query).get("access_token") or [""])[0]
        if not token:
            self._reply(401, b"missing token: send Authorization: Bearer <token>\n", "text/plain")
            return
        try:
            verified = verify(token, self.server.document, time.time())
        except VerificationFailed as exc:
            self._reply(401, f"invalid: {exc}\n".encode(), "text/plain; charset=utf-8")
            return
        self._reply(
            200, f"valid: key {verified.kid or verified.key_index}\n".encode(), "text/plain"
        )

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """One line per request on stderr; the query string is dropped (it may hold a token)."""
        request = self.requestline.split(" ")
        if len(request) >= 2:
            request[1] = request[1].partition("?")[0]
        status = args[1] if len(args) > 1 else "-"
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.server.log.write(f'{when} {self.client_address[0]} "{" ".join(request)}" {status}\n')
        self.server.log.flush()

    def log_error(self, format: str, *args: Any) -> None:
        pass  # the access line already records the status


def bind(
    address: str, port: int, jwks_bytes: bytes, document: dict[str, Any], log: TextIO
) -> JwksServer:
    """Open the listening socket (port 0 picks a free one) or raise InputError."""
    try:
        return JwksServer((address, port), jwks_bytes, document, log)
    except OSError as exc:
        raise InputError(
            f"cannot listen on {address}:{port}: {exc.strerror}. Pick another --port or "
            "--address (port 0 picks a free port)."
        ) from None


def run_until_signalled(server: JwksServer) -> None:
    """Serve until SIGTERM or SIGINT, then finish in-flight requests and close the socket."""
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.stderr.flush()
