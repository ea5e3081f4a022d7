"""One client connection of `serve` as an asyncio protocol: requests framed by http11, each
answered in one write, connections bounded in number, time and buffered bytes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import sys
import time
from dataclasses import dataclass
from typing import Protocol

from .accesslog import CLOCK, AccessLog
from .http11 import (
    CHUNKED,
    Refusal,
    Request,
    Response,
    chunked_end,
    never_valid,
    parse_head,
    reply_parts,
)

BATCH_BYTES = 16 * 1024  # replies written per turn, and a connection's write buffer mark
HEAD_CACHE_ENTRIES = 256  # distinct request heads remembered with what they mean
HEAD_CACHE_BYTES = 1024  # longer heads are parsed each time


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


class Answers(Protocol):
    """What the server answers (serve.Site)."""

    def decided_by_head(self, request: Request) -> bool: ...

    def respond(self, request: Request) -> Response: ...


@dataclass(frozen=True)
class Known:
    """What one request head means, learned once: a refusal, or the request, its body's
    framing, whether the connection closes after it, and (when the head alone decides the
    answer) the reply's bytes around the Date, kept open and closing, and its log tail."""

    line: str
    request: Request | None
    refusal: Refusal | None = None
    body_length: int = 0
    close: bool = False
    reply: tuple[bytes, bytes, bytes] | None = None
    reply_closing: tuple[bytes, bytes, bytes] = (b"", b"", b"")
    log_tail: str = ""


class State:
    """What the connections share."""

    def __init__(self, site: Answers, limits: Limits, log: AccessLog) -> None:
        self.site, self.limits, self.log = site, limits, log
        self.clock = CLOCK
        self.connections: set[Connection] = set()
        self.buffered = 0  # bytes in the connections' buffers
        self.stalled = 0  # connections paused because their client does not read
        self.stopping = False
        self.heads: dict[bytes, Known] = {}

    def known(self, head: bytes, max_body: int) -> Known:
        """What a head means, from the cache of heads seen (parsing is a pure function of the
        bytes, so a repeated head costs one lookup)."""
        found = self.heads.get(head)
        if found is None:
            found = self._learn(head, max_body)
            if len(head) <= HEAD_CACHE_BYTES:
                if len(self.heads) >= HEAD_CACHE_ENTRIES:
                    self.heads.clear()
                self.heads[head] = found
        return found

    def _learn(self, head: bytes, max_body: int) -> Known:
        line = head.partition(b"\r\n")[0].decode("latin-1")
        framed = parse_head(head, max_body)
        if isinstance(framed, Refusal):
            return Known(line, None, framed)
        request = framed.request
        tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
        close = "close" in tokens or (request.version == "HTTP/1.0" and "keep-alive" not in tokens)
        known = Known(line, request, body_length=framed.body_length, close=close)
        if not self.site.decided_by_head(request):
            return known
        response = self.site.respond(request)
        head_only = request.method == "HEAD"
        reply = reply_parts(response, request.version, close, head_only)
        closing = reply_parts(response, request.version, True, head_only)
        tail = self.log.tail(line, request, response.status, len(response.body))
        return dataclasses.replace(known, reply=reply, reply_closing=closing, log_tail=tail)


class Connection(asyncio.Protocol):
    """One client: read request heads, answer each in one write, keep alive or close."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.checked = 0  # how much of the buffer never_valid has seen (each byte once)
        self.peer = "-"
        self.client = "-"
        self.deadline = 0.0
        self.paused = False
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else "-"
        state = self.state
        self.client = state.log.client(self.peer)
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
        try:
            self._answer()
        except Exception as exc:  # a bug costs one connection, never a traceback on stderr
            self._crashed(exc)

    def _crashed(self, exc: Exception) -> None:
        note = f"serve: a connection was closed by an internal error ({type(exc).__name__})\n"
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(note)
        self.closing = True
        self._set_buffer(b"")
        if self.transport is not None:
            body = b"the server failed to answer this request\n"
            with contextlib.suppress(Exception):
                self._send([self._encode(Response(500, body), "HTTP/1.1", True, False)])
            self.transport.close()

    def _answer(self) -> None:
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
            self.checked = max(0, self.checked - pos)
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
        state = self.state
        limits = state.limits
        buffer = self.buffer
        start = pos
        while buffer.startswith(b"\r\n", pos):  # RFC 9112 §2.2: ignore empty lines first
            pos += 2
        end = buffer.find(b"\r\n\r\n", pos)
        if end < 0:
            if len(buffer) - pos > limits.max_request_bytes:
                self._refuse(replies, 431, "the request head is larger than the server takes")
            elif never_valid(buffer, max(pos, self.checked - 1)):
                line = buffer[pos:].partition(b"\r\n")[0].decode("latin-1")
                reason = "the request holds a bare CR, LF or NUL, which HTTP/1.1 refuses"
                self._refuse(replies, 400, reason, line)
            self.checked = len(buffer)
            return 0
        if end + 4 - pos > limits.max_request_bytes:
            self._refuse(replies, 431, "the request head is larger than the server takes")
            return 0
        known = state.known(buffer[pos:end], limits.max_request_bytes - (end + 4 - pos))
        request = known.request
        if request is None:
            assert known.refusal is not None
            self._refuse(replies, known.refusal.status, known.refusal.reason, known.line)
            return 0
        if known.body_length == CHUNKED:
            taken = chunked_end(buffer, end + 4, pos + limits.max_request_bytes)
            if isinstance(taken, Refusal):
                self._refuse(replies, taken.status, taken.reason, known.line, request)
                return 0
            if taken < 0:
                return 0
        else:
            taken = end + 4 + known.body_length
            if len(buffer) < taken:
                return 0
        close = known.close or state.stopping
        if known.reply is not None:
            before, after, body = known.reply_closing if close else known.reply
            replies.append(b"".join((before, state.clock.date_bytes(), after, body)))
            state.log.add(self.client, known.log_tail)
        else:
            response = state.site.respond(request)
            replies.append(self._encode(response, request.version, close, request.method == "HEAD"))
            status, size = response.status, len(response.body)
            state.log.request(self.peer, known.line, request, status, size)
        self.closing = close
        return taken - start

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
        before, after, body = reply_parts(response, version, close, head)
        return b"".join((before, self.state.clock.date_bytes(), after, body))

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
