"""HTTP/1.1 request framing for `serve`, as strict as RFC 9112's grammar (no sockets).

A request head is matched whole by one regular expression built from the RFC's ABNF, so a
bare CR, LF or NUL, a control character, obs-fold or a non-token name is refused before any
header is read; Content-Length takes ASCII digits only, and Transfer-Encoding only `chunked`,
never with Content-Length. Replies are encoded here too, split around the Date header so a
reply the request head alone decides can be kept as bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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

# RFC 9110 §5.6.2 token, §5.5 field-value (VCHAR / obs-text, inner SP/HTAB), RFC 9112 §3, §5.
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_FIELD_VCHAR = rb"[\x21-\x7e\x80-\xff]"
_FIELD_LINE = (
    _TOKEN + rb":[ \t]*(?:" + _FIELD_VCHAR + rb"+(?:[ \t]+" + _FIELD_VCHAR + rb"+)*)?[ \t]*"
)
_REQUEST_LINE = rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9]\.[0-9])"
_HEAD = re.compile(_REQUEST_LINE + rb"((?:\r\n" + _FIELD_LINE + rb")*)")
_REQUEST_LINE_ONLY = re.compile(_REQUEST_LINE)
_FIELD = re.compile(_FIELD_LINE)
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_EXT = (
    rb"(?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*"
)
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,15})" + _CHUNK_EXT + rb"[ \t]*\r\n")
# Bytes no request head may hold, caught before the head is whole (a bare LF or CR might
# otherwise end a head for a proxy in front but never for us, until the header timeout).
_NEVER = re.compile(rb"[\x00]|(?<!\r)\n|\r(?=[^\n])")
_DIGITS = re.compile(r"[0-9]+")
_SINGLE = ("host", "authorization", "transfer-encoding")
MAX_LENGTH_DIGITS = 15


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


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: the status and a one-line reason for the client."""

    status: int
    reason: str


@dataclass(frozen=True)
class Framed:
    """A parsed head and how its body is framed: a length, or CHUNKED."""

    request: Request
    body_length: int


CHUNKED = -1


def never_valid(data: bytes, start: int = 0) -> bool:
    """True when data (part of a head) holds, from start on, a byte sequence no request head
    may hold (the byte before start is seen too, for a bare LF)."""
    return _NEVER.search(data, start) is not None


def parse_head(head: bytes, max_body: int) -> Framed | Refusal:
    """A request head without its final CRLFCRLF, or why it is refused."""
    match = _HEAD.fullmatch(head)
    if match is None:
        if _REQUEST_LINE_ONLY.fullmatch(head.partition(b"\r\n")[0]) is None:
            return Refusal(400, "the request line is not METHOD TARGET HTTP/1.1")
        return Refusal(
            400,
            "a header line is not NAME: VALUE (no control characters, bare CR or LF, or "
            "folded lines)",
        )
    method, target, version = (part.decode("latin-1") for part in match.group(1, 2, 3))
    if version not in ("1.1", "1.0"):
        return Refusal(505, "only HTTP/1.0 and HTTP/1.1 are spoken here")
    if not target.startswith(("/", "http://", "https://")):
        return Refusal(400, "the request target is not a path")
    headers: dict[str, str] = {}
    lengths: set[str] = set()
    for line in match.group(4).decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        key = name.lower()
        value = value.strip(" \t")
        if key == "content-length":
            lengths.update(part.strip(" \t") for part in value.split(","))
            headers[key] = value
        elif key in headers:
            if key in _SINGLE:
                return Refusal(400, f"the {name} header is given twice")
            headers[key] = f"{headers[key]}, {value}"
        else:
            headers[key] = value
    if lengths:
        headers["content-length"] = length = lengths.pop()
        if lengths or not _DIGITS.fullmatch(length):
            return Refusal(400, "Content-Length is not a number")
    body_length = int(headers.get("content-length", "0")[:MAX_LENGTH_DIGITS])
    if "transfer-encoding" in headers:
        if "content-length" in headers:
            return Refusal(400, "a request has Transfer-Encoding or Content-Length, not both")
        if headers["transfer-encoding"].lower() != "chunked" or version == "1.0":
            return Refusal(400, "Transfer-Encoding other than HTTP/1.1 chunked is not accepted")
        body_length = CHUNKED
    elif len(headers.get("content-length", "")) > MAX_LENGTH_DIGITS or body_length > max_body:
        return Refusal(413, "the request is larger than the server takes")
    if version == "1.1" and "host" not in headers:
        return Refusal(400, "the Host header is missing (HTTP/1.1 requires it)")
    return Framed(Request(method, target, "HTTP/" + version, headers), body_length)


def chunked_end(buffer: bytes, pos: int, limit: int) -> int | Refusal:
    """Where a chunked body starting at pos ends (its trailer section included), -1 while it
    is not all there, or a Refusal; nothing of it may reach limit."""
    too_large = Refusal(413, "the request is larger than the server takes")
    while True:
        line_end = buffer.find(b"\r\n", pos, limit)
        if line_end < 0:
            return -1 if len(buffer) < limit else too_large
        match = _CHUNK_LINE.fullmatch(buffer, pos, line_end + 2)
        if match is None:
            return Refusal(400, "a chunk of the body is not framed as RFC 9112 says")
        size, pos = int(match.group(1), 16), line_end + 2
        if size == 0:
            break
        if pos + size + 2 > limit:
            return too_large
        if len(buffer) < pos + size + 2:
            return -1
        if buffer[pos + size : pos + size + 2] != b"\r\n":
            return Refusal(400, "a chunk of the body is not framed as RFC 9112 says")
        pos += size + 2
    while True:  # the trailer section: field lines, then an empty line
        line_end = buffer.find(b"\r\n", pos, limit)
        if line_end < 0:
            return -1 if len(buffer) < limit else too_large
        if line_end == pos:
            return pos + 2
        if _FIELD.fullmatch(buffer, pos, line_end) is None:
            return Refusal(400, "a trailer line is not NAME: VALUE")
        pos = line_end + 2


def reply_parts(
    response: Response, version: str, close: bool, head: bool
) -> tuple[bytes, bytes, bytes]:
    """A reply as the bytes before the Date value, after it, and the body."""
    status = response.status
    lines = ["Server: jwksdeploy"]
    if status != 304:
        lines.append(f"Content-Type: {response.content_type}")
        lines.append(f"Content-Length: {len(response.body)}")
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    if close:
        lines.append("Connection: close")
    elif version == "HTTP/1.0":
        lines.append("Connection: keep-alive")
    before = f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\nDate: "
    after = "\r\n" + "\r\n".join(lines) + "\r\n\r\n"
    body = b"" if head or status == 304 else response.body
    return before.encode("latin-1"), after.encode("latin-1"), body
