"""The JWKS server: `jwksdeploy serve`, locally and as the entrypoint of `examples/image/`.

Like remote-jwks-go it serves the bytes it read at start-up: `/jwks` returns them, `/valid`
checks a bearer token against them, `/healthz` answers probes, and every other path answers
`success`. One asyncio event loop speaks just enough HTTP/1.1 for that, with a protocol object
per connection (a few KiB each, so thousands of idle connections fit in the Deployment's 64Mi):
each response goes out in one write on a TCP_NODELAY socket, connections are bounded in number
and time, requests in size, and shutdown finishes the requests in flight.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import resource
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from typing import Any, NoReturn, TextIO

from .accesslog import AccessLog, escape
from .connection import Connection, Limits, State
from .errors import InputError, VerificationFailed
from .http11 import Request, Response

__all__ = ["Limits", "Request", "Site", "bind", "escape", "etag_of", "run_until_signalled"]
ALLOW = "GET, HEAD"


def etag_of(body: bytes) -> str:
    """A strong validator: the body's SHA-256, base64url, quoted."""
    digest = hashlib.sha256(body).digest()
    return '"' + base64.urlsafe_b64encode(digest).rstrip(b"=").decode() + '"'


class Site:
    """What the server answers: pure request -> response, no sockets. Every answer but
    /valid's is built here once, when the key set is loaded, so the head alone decides it."""

    def __init__(self, jwks_bytes: bytes, document: dict[str, Any], limits: Limits) -> None:
        self.jwks_bytes = jwks_bytes
        self.document = document
        self.etag = etag_of(jwks_bytes)
        self.cache = (
            ("ETag", self.etag),
            ("Cache-Control", f"public, max-age={limits.max_age}"),
        )
        self.jwks = Response(200, jwks_bytes, "application/json", self.cache)
        self.not_modified = Response(304, headers=self.cache)
        self.not_allowed = Response(
            405, b"method not allowed: use GET or HEAD\n", headers=(("Allow", ALLOW),)
        )
        self.healthy = Response(200, b"ok")
        self.success = Response(200, b"success")

    def decided_by_head(self, request: Request) -> bool:
        """True when the answer depends on nothing but the request head (not on the clock)."""
        return request.path != "/valid" or request.method not in ("GET", "HEAD")

    def respond(self, request: Request) -> Response:
        path = request.path
        if request.method not in ("GET", "HEAD"):
            return self.not_allowed
        if path == "/jwks":
            if _matches(request.headers.get("if-none-match", ""), self.etag):
                return self.not_modified
            return self.jwks
        if path == "/valid":
            return self.valid(request)
        if path == "/healthz":
            return self.healthy
        return self.success

    def valid(self, request: Request) -> Response:
        """200 when the bearer token verifies against the served keys, else 401 and why."""
        from .tokens import verify

        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        token = credentials.strip() if scheme.lower() == "bearer" else ""
        if not token:
            query = request.target.partition("?")[2]
            with contextlib.suppress(ValueError):
                found = urllib.parse.parse_qs(query, max_num_fields=64).get("access_token")
                token = found[0] if found else ""
        challenge = (("WWW-Authenticate", 'Bearer error="invalid_token"'),)
        if not token:
            body = b"missing token: send Authorization: Bearer <token>\n"
            return Response(401, body, headers=(("WWW-Authenticate", "Bearer"),))
        try:
            verified = verify(token, self.document, time.time())
        except VerificationFailed as exc:
            return Response(401, f"invalid: {exc}\n".encode(), headers=challenge)
        except Exception as exc:  # a bug in verify must not drop the connection
            body = f"the token could not be checked ({type(exc).__name__})\n".encode()
            return Response(500, body)
        return Response(200, f"valid: key {verified.kid or verified.key_index}\n".encode())


def _matches(if_none_match: str, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


class JwksServer:
    """A bound listening socket and the loop that serves it.

    serve_forever/shutdown/server_close mirror socketserver's, so tests drive it from a
    thread; run_until_signalled serves in the main thread until SIGTERM or SIGINT.
    """

    def __init__(
        self,
        sock: socket.socket,
        site: Site,
        limits: Limits,
        log: TextIO | None,
        log_format: str = "text",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.socket = sock
        self.server_address: tuple[str, int] = sock.getsockname()[:2]
        self.site, self.limits, self.tls = site, limits, tls
        self.log = AccessLog(log, log_format)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self._done = threading.Event()
        self._done.set()
        self.workers: list[int] = []  # the other processes of --workers, when this one forked

    def serve_forever(self, poll_interval: float = 0.5, signals: bool = False) -> None:
        """Serve until shutdown() (or a signal, with signals=True); poll_interval is unused."""
        self._done.clear()
        try:
            asyncio.run(self._serve(signals))
        finally:
            self._done.set()

    def shutdown(self) -> None:
        """Stop serve_forever from another thread and wait until it has returned."""
        with self._lock:
            self._stop_requested = True
            if self._loop is not None and self._stop is not None:
                self._loop.call_soon_threadsafe(self._stop.set)
        self._done.wait()

    def server_close(self) -> None:
        self.socket.close()

    def _signalled(self, stop: asyncio.Event) -> None:
        stop.set()
        for pid in self.workers:  # they finish their requests in flight at the same time
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)

    async def _serve(self, signals: bool) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_report_briefly)
        state = State(self.site, self.limits, self.log)
        stop = asyncio.Event()
        with self._lock:
            self._loop, self._stop = loop, stop
            if self._stop_requested:
                stop.set()
        if signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._signalled, stop)
        server = await loop.create_server(
            lambda: Connection(state), sock=self.socket, backlog=self.limits.backlog, ssl=self.tls
        )
        sweeper = loop.create_task(self._sweep(state))
        try:
            await stop.wait()
            server.close()  # no new connections; the listening socket is closed
            await self._drain(state)
        finally:
            sweeper.cancel()
            for connection in list(state.connections):
                if connection.transport is not None:
                    connection.transport.abort()
            self.log.flush()
            if signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            with self._lock:
                self._loop = self._stop = None

    async def _sweep(self, state: State) -> None:
        """Enforce the deadlines; one timer for all connections costs less than one each."""
        limits = self.limits
        # A floor, so a 1 ms timeout does not turn the sweep into a busy loop.
        interval = max(0.01, min(1.0, limits.idle_timeout / 4, limits.header_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for connection in [c for c in state.connections if c.deadline < now]:
                connection.expire(now)

    async def _drain(self, state: State) -> None:
        """Close idle connections; let the others finish their request, then close them."""
        state.stopping = True
        deadline = time.monotonic() + self.limits.shutdown_grace
        while state.connections and time.monotonic() < deadline:
            for connection in list(state.connections):
                if not connection.buffer and not connection.paused and connection.transport:
                    connection.closing = True
                    connection.transport.close()  # flushes what was written, then closes
            await asyncio.sleep(0.02)


def _report_briefly(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio's default handler prints a traceback for errors it catches (a TLS handshake
    gone wrong, a transport callback); one line is enough and leaks no request bytes."""
    exc = context.get("exception")
    what = type(exc).__name__ if exc is not None else "no exception"
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"serve: {context.get('message', 'error')} ({what})\n")


def raise_file_limit(connections: int) -> None:
    """Let the process hold as many sockets as connections are allowed (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def bind(
    address: str,
    port: int,
    jwks_bytes: bytes,
    document: dict[str, Any],
    log: TextIO | None,
    limits: Limits | None = None,
    log_format: str = "text",
    tls: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> JwksServer:
    """Open the listening socket (port 0 picks a free one) or raise InputError; reuse_port
    lets worker processes bind the same port (SO_REUSEPORT)."""
    limits = limits or Limits()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        # Checked before a socket exists: the socket module fails on these after creating one
        # (and leaks it) with ValueError (NUL) or TypeError (no IDNA form, e.g. argv bytes).
        if "\x00" in address:
            raise ValueError("the address holds a NUL byte")
        address.encode("idna")
        sock = socket.create_server(
            (address, port), family=family, backlog=limits.backlog, reuse_port=reuse_port
        )
    except (OSError, OverflowError, UnicodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(
            f"cannot listen on {address}:{port}: {reason}. Pick another --port or --listen "
            "address (port 0 picks a free port)."
        ) from None
    raise_file_limit(limits.max_connections)
    return JwksServer(sock, Site(jwks_bytes, document, limits), limits, log, log_format, tls)


def run_until_signalled(server: JwksServer, workers: int = 1) -> None:
    """Serve in this (main) thread until SIGTERM or SIGINT, then finish in-flight requests.

    With workers > 1 (a socket bound with reuse_port), workers - 1 forked processes each bind
    their own socket to the same port and the kernel spreads connections over all of them;
    a signal here is passed on, and this returns once every worker has finished."""
    try:
        for _ in range(workers - 1):
            pid = os.fork()
            if pid == 0:
                _serve_as_worker(server)
            server.workers.append(pid)
        server.serve_forever(signals=True)
    finally:
        server.server_close()
        for pid in server.workers:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)


def _serve_as_worker(parent: JwksServer) -> NoReturn:
    """A forked worker: its own socket on the parent's port, the same site and limits."""
    code = 0
    try:
        family = parent.socket.family
        parent.socket.close()  # a socket nobody accepts on would still get connections
        sock = socket.create_server(
            parent.server_address,
            family=family,
            backlog=parent.limits.backlog,
            reuse_port=True,
        )
        worker = JwksServer(sock, parent.site, parent.limits, None, tls=parent.tls)
        worker.log = parent.log
        worker.serve_forever(signals=True)
    except BaseException as exc:  # a worker's failure ends it alone, in one line
        code = 70
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"serve: worker {os.getpid()} stopped ({type(exc).__name__})\n")
    finally:
        sys.stderr.flush()
        os._exit(code)
