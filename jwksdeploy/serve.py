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
import json
import resource
import signal
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, TextIO

from .errors import InputError, VerificationFailed

REASONS = {
    200: "OK",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}
TEXT = "text/plain; charset=utf-8"
BATCH_BYTES = 16 * 1024  # replies written per turn, and a connection's write buffer mark
ALLOW = "GET, HEAD"
_TOKEN_CHARS = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


@dataclass(frozen=True)
class Limits:
    """How much the server takes before it says no (all times in seconds)."""

    max_connections: int = 4096
    idle_timeout: float = 60.0  # a kept-alive connection with no request in progress
    header_timeout: float = 10.0  # from a request's first byte to its last
    max_request_bytes: int = 64 * 1024  # head and body; a token fits (tokens.MAX_TOKEN_CHARS)
    max_age: int = 60  # Cache-Control for /jwks: short, so a rotated key set spreads quickly
    shutdown_grace: float = 10.0  # how long requests in flight may take to finish
    backlog: int = 4096  # the kernel caps it at net.core.somaxconn
    # What all connections together may hold, so memory stays bounded whatever clients do:
    # bytes of requests not yet whole, and clients that do not read their replies.
    max_buffered_bytes: int = 8 * 1024 * 1024
    max_stalled: int = 256


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        """The target's path; the query is dropped (it may hold a token)."""
        target = self.target
        if target.startswith(("http://", "https://")):
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
        return target.partition("?")[0]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = TEXT
    headers: tuple[tuple[str, str], ...] = ()


def etag_of(body: bytes) -> str:
    """A strong validator: the body's SHA-256, base64url, quoted."""
    digest = hashlib.sha256(body).digest()
    return '"' + base64.urlsafe_b64encode(digest).rstrip(b"=").decode() + '"'


def escape(text: str) -> str:
    """Printable ASCII as is; control characters, quotes, backslashes and the rest as \\xNN,
    so a request line cannot move the terminal's cursor or forge a log line."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    out = []
    for char in text:
        code = ord(char)
        if 0x20 <= code < 0x7F and char not in '"\\':
            out.append(char)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


class Site:
    """What the server answers: pure request -> response, no sockets."""

    def __init__(self, jwks_bytes: bytes, document: dict[str, Any], limits: Limits) -> None:
        self.jwks_bytes = jwks_bytes
        self.document = document
        self.etag = etag_of(jwks_bytes)
        self.cache = (
            ("ETag", self.etag),
            ("Cache-Control", f"public, max-age={limits.max_age}"),
        )

    def respond(self, request: Request) -> Response:
        path = request.path
        if request.method not in ("GET", "HEAD"):
            return Response(
                405, b"method not allowed: use GET or HEAD\n", headers=(("Allow", ALLOW),)
            )
        if path == "/jwks":
            if _matches(request.headers.get("if-none-match", ""), self.etag):
                return Response(304, headers=self.cache)
            return Response(200, self.jwks_bytes, "application/json", self.cache)
        if path == "/valid":
            return self.valid(request)
        if path == "/healthz":
            return Response(200, b"ok")
        return Response(200, b"success")

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


class _Clock:
    """The Date header and the log's timestamp, formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._date = self._stamp = ""

    def _tick(self) -> None:
        now = int(time.time())
        if now != self._second:
            self._second, self._date = now, formatdate(now, usegmt=True)
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))

    def date(self) -> str:
        self._tick()
        return self._date

    def stamp(self) -> str:
        self._tick()
        return self._stamp


CLOCK = _Clock()


class _Log:
    """Access lines gathered during one loop iteration and written together."""

    def __init__(self, stream: TextIO | None, form: str) -> None:
        self.stream = stream if form != "off" else None
        self.json = form == "json"
        self.lines: list[str] = []

    def request(
        self, peer: str, request_line: str, request: Request | None, status: int, size: int
    ) -> None:
        if self.stream is None:
            return
        when = CLOCK.stamp()
        if request is not None:
            method, path, version = request.method, request.path, request.version
            shown = f"{method} {path} {version}"
        else:
            method = path = version = ""
            before, query, after = request_line[:256].partition("?")
            shown = before + (" " + after.partition(" ")[2] if query else after)
        if self.json:
            record: dict[str, str | int] = {"time": when, "client": peer, "method": method}
            record.update({"path": path, "protocol": version, "status": status, "bytes": size})
            if request is None:
                record["request"] = shown
            line = json.dumps(record, ensure_ascii=True)
        else:
            line = f'{when} {escape(peer)} "{escape(shown)}" {status} {size}'
        if not self.lines:
            asyncio.get_running_loop().call_soon(self.flush)
        self.lines.append(line)

    def flush(self) -> None:
        if self.stream is not None and self.lines:
            lines, self.lines = self.lines, []
            with contextlib.suppress(OSError, ValueError):
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()


class _State:
    """What the connections share."""

    def __init__(self, site: Site, limits: Limits, log: _Log) -> None:
        self.site, self.limits, self.log = site, limits, log
        self.clock = CLOCK
        self.connections: set[_Connection] = set()
        self.buffered = 0  # bytes in the connections' buffers
        self.stalled = 0  # connections paused because their client does not read
        self.stopping = False


class _Connection(asyncio.Protocol):
    """One client: read request heads, answer each in one write, keep alive or close."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.peer = "-"
        self.deadline = 0.0
        self.paused = False
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else "-"
        state = self.state
        if len(state.connections) >= state.limits.max_connections:
            body = b"too many connections: try again shortly\n"
            self._send([self._encode(Response(503, body), "HTTP/1.1", close=True, head=False)])
            state.log.request(self.peer, "", None, 503, len(body))
            self.closing = True
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # asyncio already sets it; the header and body of a reply must never wait for an ACK
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state.connections.add(self)
        transport.set_write_buffer_limits(high=BATCH_BYTES)
        self.deadline = time.monotonic() + state.limits.idle_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self._set_buffer(b"")
        if self.paused:
            self.paused = False
            self.state.stalled -= 1

    def pause_writing(self) -> None:
        # A client that does not read its replies is not read from (so gets no more of them)
        # until it does; the idle deadline still applies, and only so many may stall at once.
        self.paused = True
        self.state.stalled += 1
        if self.transport is not None:
            self.transport.pause_reading()
            if self.state.stalled > self.state.limits.max_stalled:
                self.transport.abort()
        self.deadline = time.monotonic() + self.state.limits.idle_timeout

    def resume_writing(self) -> None:
        self.paused = False
        self.state.stalled -= 1
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()
            if self.buffer:
                self._work()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if not self.buffer:
            self.deadline = time.monotonic() + self.state.limits.header_timeout
        self._set_buffer(self.buffer + data)
        if self.state.buffered > self.state.limits.max_buffered_bytes:
            replies: list[bytes] = []
            self._refuse(replies, 503, "the server is busy: try again shortly")
            self._send(replies)
            self._finish()
            return
        self._work()

    def _set_buffer(self, buffer: bytes) -> None:
        self.state.buffered += len(buffer) - len(self.buffer)
        self.buffer = buffer

    def _work(self) -> None:
        """Answer the whole requests in the buffer, in batches of about BATCH_BYTES of replies
        so that pipelining cannot pile up replies a client does not read."""
        if self.paused or self.closing:
            return  # resume_writing carries on
        replies: list[bytes] = []
        size, pos = 0, 0
        while pos < len(self.buffer) and not self.closing and size < BATCH_BYTES:
            taken = self._one_request(replies, pos)
            if not taken:
                break
            pos += taken
            size += len(replies[-1])
        if pos:
            self._set_buffer(self.buffer[pos:])
        self._send(replies)
        self._finish()
        if self.buffer and not self.closing and size >= BATCH_BYTES and not self.paused:
            asyncio.get_running_loop().call_soon(self._work)

    def _finish(self) -> None:
        if self.closing:
            assert self.transport is not None
            self.transport.close()
        elif not self.buffer:
            self.deadline = time.monotonic() + self.state.limits.idle_timeout

    def _one_request(self, replies: list[bytes], pos: int) -> int:
        """Answer the request at pos in the buffer; return the bytes it took, 0 when it is
        not all there yet (or was refused)."""
        limits = self.state.limits
        buffer = self.buffer
        start = pos
        while buffer.startswith(b"\r\n", pos):  # RFC 9112 §2.2: ignore empty lines first
            pos += 2
        end = buffer.find(b"\r\n\r\n", pos)
        too_big = (
            len(buffer) - pos > limits.max_request_bytes
            if end < 0
            else end + 4 - pos > limits.max_request_bytes
        )
        if too_big:
            self._refuse(replies, 431, "the request head is larger than the server takes")
        if end < 0 or too_big:
            return 0
        head = buffer[pos:end].decode("latin-1")
        request_line = head.partition("\r\n")[0]
        request, problem = _parse(head)
        if request is None:
            self._refuse(replies, problem[0], problem[1], request_line)
            return 0
        length_text = request.headers.get("content-length", "0")
        if "transfer-encoding" in request.headers:
            self._refuse(
                replies, 400, "Transfer-Encoding bodies are not accepted", request_line, request
            )
            return 0
        if not length_text.isdigit() or len(length_text) > 12:
            self._refuse(replies, 400, "Content-Length is not a number", request_line, request)
            return 0
        total = end + 4 + int(length_text)
        if total - pos > limits.max_request_bytes:
            self._refuse(
                replies, 413, "the request is larger than the server takes", request_line, request
            )
            return 0
        if len(buffer) < total:
            return 0
        tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
        close = (
            "close" in tokens
            or (request.version == "HTTP/1.0" and "keep-alive" not in tokens)
            or self.state.stopping
        )
        response = self.state.site.respond(request)
        replies.append(self._encode(response, request.version, close, request.method == "HEAD"))
        self.state.log.request(
            self.peer, request_line, request, response.status, len(response.body)
        )
        self.closing = close
        return total - start

    def _refuse(
        self,
        replies: list[bytes],
        status: int,
        reason: str,
        line: str = "",
        request: Request | None = None,
    ) -> None:
        body = f"{reason}\n".encode()
        replies.append(self._encode(Response(status, body), "HTTP/1.1", close=True, head=False))
        self.state.log.request(self.peer, line, request, status, len(body))
        self.closing = True
        self._set_buffer(b"")

    def _encode(self, response: Response, version: str, close: bool, head: bool) -> bytes:
        status = response.status
        lines = [
            f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}",
            f"Date: {self.state.clock.date()}",
            "Server: jwksdeploy",
        ]
        if status != 304:
            lines.append(f"Content-Type: {response.content_type}")
            lines.append(f"Content-Length: {len(response.body)}")
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if close:
            lines.append("Connection: close")
        elif version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        text = "\r\n".join(lines) + "\r\n\r\n"
        body = b"" if head or status == 304 else response.body
        return text.encode("latin-1") + body

    def _send(self, replies: list[bytes]) -> None:
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies) if len(replies) > 1 else replies[0])

    def expire(self, now: float) -> None:
        """Past the deadline: a half-sent request gets 408, an idle or stuck one is dropped."""
        assert self.transport is not None
        self.closing = True
        if self.buffer and not self.paused:
            body = b"the request did not arrive in time\n"
            self._send([self._encode(Response(408, body), "HTTP/1.1", close=True, head=False)])
            line = self.buffer.partition(b"\r\n")[0].decode("latin-1")
            self.state.log.request(self.peer, line, None, 408, len(body))
            self.transport.close()
        elif self.paused:
            self.transport.abort()
        else:
            self.transport.close()


def _parse(head: str) -> tuple[Request | None, tuple[int, str]]:
    """A request head (without its final CRLFCRLF), or the status and reason to refuse it."""
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not set(parts[0].encode()) <= _TOKEN_CHARS:
        return None, (400, "the request line is not METHOD TARGET HTTP/1.1")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        if version.startswith("HTTP/"):
            return None, (505, "only HTTP/1.0 and HTTP/1.1 are spoken here")
        return None, (400, "the request line is not METHOD TARGET HTTP/1.1")
    if not target.startswith(("/", "http://", "https://")) or any(
        c < "!" or c > "~" for c in target
    ):
        return None, (400, "the request target is not a path")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or not set(name.encode("latin-1")) <= _TOKEN_CHARS:
            return None, (400, "a header line is not NAME: VALUE")
        key = name.lower()
        value = value.strip(" \t")
        repeated = key in headers and key in ("content-length", "host", "authorization")
        if repeated and (headers[key] != value or key != "content-length"):
            return None, (400, f"the {name} header is given twice")
        headers[key] = (
            f"{headers[key]}, {value}" if key in headers and key != "content-length" else value
        )
    return Request(method, target, version, headers), (0, "")


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
        self.log = _Log(log, log_format)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self._done = threading.Event()
        self._done.set()

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

    async def _serve(self, signals: bool) -> None:
        loop = asyncio.get_running_loop()
        state = _State(self.site, self.limits, self.log)
        stop = asyncio.Event()
        with self._lock:
            self._loop, self._stop = loop, stop
            if self._stop_requested:
                stop.set()
        if signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
        server = await loop.create_server(
            lambda: _Connection(state), sock=self.socket, backlog=self.limits.backlog, ssl=self.tls
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

    async def _sweep(self, state: _State) -> None:
        """Enforce the deadlines; one timer for all connections costs less than one each."""
        limits = self.limits
        # A floor, so a 1 ms timeout does not turn the sweep into a busy loop.
        interval = max(0.01, min(1.0, limits.idle_timeout / 4, limits.header_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for connection in [c for c in state.connections if c.deadline < now]:
                connection.expire(now)

    async def _drain(self, state: _State) -> None:
        """Close idle connections; let the others finish their request, then close them."""
        state.stopping = True
        deadline = time.monotonic() + self.limits.shutdown_grace
        while state.connections and time.monotonic() < deadline:
            for connection in list(state.connections):
                if not connection.buffer and not connection.paused and connection.transport:
                    connection.closing = True
                    connection.transport.close()  # flushes what was written, then closes
            await asyncio.sleep(0.02)


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
) -> JwksServer:
    """Open the listening socket (port 0 picks a free one) or raise InputError."""
    limits = limits or Limits()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        # Checked before a socket exists: the socket module fails on these after creating one
        # (and leaks it) with ValueError (NUL) or TypeError (no IDNA form, e.g. argv bytes).
        if "\x00" in address:
            raise ValueError("the address holds a NUL byte")
        address.encode("idna")
        sock = socket.create_server((address, port), family=family, backlog=limits.backlog)
    except (OSError, OverflowError, UnicodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(
            f"cannot listen on {address}:{port}: {reason}. Pick another --port or --listen "
            "address (port 0 picks a free port)."
        ) from None
    raise_file_limit(limits.max_connections)
    return JwksServer(sock, Site(jwks_bytes, document, limits), limits, log, log_format, tls)


def run_until_signalled(server: JwksServer) -> None:
    """Serve in this (main) thread until SIGTERM or SIGINT, then finish in-flight requests."""
    try:
        server.serve_forever(signals=True)
    finally:
        server.server_close()
