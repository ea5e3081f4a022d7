"""The access log of `serve`: one escaped line per request, gathered during a turn of the
event loop and written at once, and the clock that stamps it and the Date header."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from email.utils import formatdate
from typing import TextIO

from .http11 import Request


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


class Clock:
    """The Date header and the log's timestamp, formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._date = self._stamp = ""
        self._date_bytes = b""

    def _tick(self) -> None:
        now = int(time.time())
        if now != self._second:
            self._second, self._date = now, formatdate(now, usegmt=True)
            self._date_bytes = self._date.encode("latin-1")
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))

    def date(self) -> str:
        self._tick()
        return self._date

    def date_bytes(self) -> bytes:
        self._tick()
        return self._date_bytes

    def stamp(self) -> str:
        self._tick()
        return self._stamp


CLOCK = Clock()


class AccessLog:
    """Access lines gathered during one loop iteration and written together. A line is the
    time, the client, and a tail that the request head and status decide (so it is kept)."""

    def __init__(self, stream: TextIO | None, form: str) -> None:
        self.stream = stream if form != "off" else None
        self.json = form == "json"
        self.lines: list[str] = []

    def client(self, peer: str) -> str:
        return json.dumps(peer, ensure_ascii=True) if self.json else escape(peer)

    def tail(self, request_line: str, request: Request | None, status: int, size: int) -> str:
        if request is not None:
            method, path, version = request.method, request.path, request.version
            shown = f"{method} {path} {version}"
        else:
            method = path = version = ""
            before, query, after = request_line[:256].partition("?")
            shown = before + (" " + after.partition(" ")[2] if query else after)
        if not self.json:
            return f' "{escape(shown)}" {status} {size}'
        record: dict[str, str | int] = {"method": method, "path": path, "protocol": version}
        record.update({"status": status, "bytes": size})
        if request is None:
            record["request"] = shown
        return json.dumps(record, ensure_ascii=True)[1:]

    def add(self, client: str, tail: str) -> None:
        if self.stream is None:
            return
        if self.json:
            line = f'{{"time": "{CLOCK.stamp()}", "client": {client}, {tail}'
        else:
            line = f"{CLOCK.stamp()} {client}{tail}"
        if not self.lines:
            asyncio.get_running_loop().call_soon(self.flush)
        self.lines.append(line)

    def request(
        self, peer: str, request_line: str, request: Request | None, status: int, size: int
    ) -> None:
        if self.stream is not None:
            self.add(self.client(peer), self.tail(request_line, request, status, size))

    def flush(self) -> None:
        if self.stream is not None and self.lines:
            lines, self.lines = self.lines, []
            with contextlib.suppress(OSError, ValueError):
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
