"""`serve`'s HTTP/1.1 framing against h11 as the reference: whatever h11 refuses, serve refuses
(4xx, connection closed, nothing on stderr); whatever h11 takes, serve answers, except where
RFC 9112 lets a server refuse and serve does (listed in `serve_is_stricter`)."""

from __future__ import annotations

import contextlib
import io
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import h11
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from jwksdeploy.http11 import CHUNKED, Framed, Refusal, chunked_end, parse_head

from .test_serve import BODY, _env, closed, connect, read_response, server

LIMIT = 64 * 1024  # Limits().max_request_bytes
REFUSED = {400, 413, 431, 505}


def h11_verdict(data: bytes) -> bool | None:
    """True when h11 reads a whole request from data, False when it refuses, None when it
    waits for more."""
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    connection.receive_data(data)
    try:
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.EndOfMessage):
                return True
    except h11.RemoteProtocolError:
        return False


def serve_is_stricter(head: bytes, data: bytes) -> bool:
    """Requests h11 takes but serve refuses, each as RFC 9112/9110 allow a server to."""
    line, _, fields = head.partition(b"\r\n")
    parts = line.split(b" ")
    lines = fields.split(b"\r\n") if fields else []
    names = [entry.partition(b":")[0].lower() for entry in lines]
    lengths = [
        entry.partition(b":")[2].strip()
        for entry in lines
        if entry.lower().startswith(b"content-length:")
    ]
    return bool(
        re.search(rb"(?<!\r)\n", head)  # a bare LF: §2.2 lets a recipient refuse it
        or re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", head.replace(b"\r\n", b""))  # §5.5 CTLs
        or any(entry[:1] in (b" ", b"\t") for entry in lines)  # obs-fold, §5.2: 400
        or (len(parts) == 3 and parts[2] not in (b"HTTP/1.0", b"HTTP/1.1"))  # 505
        or (len(parts) == 3 and not parts[1].startswith((b"/", b"http://", b"https://")))
        or (
            b"transfer-encoding" in names
            and (b"content-length" in names or parts[2:] == [b"HTTP/1.0"])
        )
        or names.count(b"authorization") > 1  # which token would be checked?
        or any(value.isdigit() and int(value) > LIMIT for value in lengths)  # 413
        or len(data) > LIMIT  # 431
    )


NAMES = [
    b"Host",
    b"X-A",
    b"Content-Length",
    b"content-length",
    b"Transfer-Encoding",
    b"Connection",
    b"If-None-Match",
    b"Authorization",
    b"Bad Name",
    b"X\x00",
    b"",
    b"\xc4",
    b"X(",
    b" Host",
]
VALUES = [
    b"x",
    b"127.0.0.1:8080",
    b"0",
    b"5",
    b"\xb2",
    b"\xd9\xa3",
    b"0, 0",
    b"1, 2",
    b"-1",
    b"chunked",
    b"Chunked",
    b"gzip",
    b"chunked, gzip",
    b"a\nb",
    b"a\rb",
    b"a\x00b",
    b"a\x01b",
    b"a\x7fb",
    b" padded\t",
    b"\xe9t\xe9",
    b"a" * 5000,
    b"close",
    b"keep-alive",
    b"",
    b"a\r\n folded",
    b"a\r\n\tfolded",
    b"99999999999999999999999",
    b"9999999999",
    b'"etag"',
    b"Bearer x",
    b"a\x0bb",
    b"a\x0cb",
]
RAW_LINES = [b"no colon", b" obs-fold", b"\tobs-fold", b"X:a\nY: b", b"X : b", b":empty"]


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, bytes]:
    method = draw(st.sampled_from([b"GET", b"HEAD", b"POST", b"GE(T", b"", b"G\x00T"]))
    target = draw(
        st.sampled_from(
            [
                b"/jwks",
                b"/healthz",
                b"/",
                b"/x?y=1",
                b"http://h/jwks",
                b"*",
                b"jwks",
                b"/a\x7f",
                b"/\xe9",
            ]
        )
    )
    version = draw(
        st.sampled_from(
            [
                b"HTTP/1.1",
                b"HTTP/1.1",
                b"HTTP/1.0",
                b"HTTP/2.0",
                b"HTTP/1.10",
                b"http/1.1",
                b"HTTP/\xb9.1",
            ]
        )
    )
    separator = draw(st.sampled_from([b" ", b" ", b" ", b"  ", b"\t"]))
    host = draw(
        st.sampled_from([[b"Host: 127.0.0.1"], [b"Host: 127.0.0.1"], [], [b"Host: a", b"host: a"]])
    )
    fields = draw(
        st.lists(
            st.one_of(
                st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)).map(
                    lambda nv: nv[0] + b": " + nv[1]
                ),
                st.sampled_from(RAW_LINES),
                st.binary(max_size=12).map(lambda raw: b"X-Raw: " + raw),
            ),
            max_size=4,
        )
    )
    lines = draw(st.permutations(host + fields))
    head = separator.join((method, target, version)) + b"".join(b"\r\n" + entry for entry in lines)
    assume(b"\r\n\r\n" not in head and not head.endswith(b"\r\n"))
    body = b""
    lengths = [
        entry.partition(b":")[2].strip()
        for entry in lines
        if entry.lower().startswith(b"content-length:")
    ]
    if lengths and lengths[0].isdigit() and lengths[0].isascii() and int(lengths[0]) <= 64:
        body = b"x" * int(lengths[0])
    if any(entry.lower().startswith(b"transfer-encoding:") for entry in lines):
        body = draw(
            st.sampled_from(
                [b"0\r\n\r\n", b"3\r\nabc\r\n0\r\n\r\n", b"3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n"]
            )
        )
    return head, head + b"\r\n\r\n" + body


def status_and_closed(port: int, data: bytes) -> tuple[int, bool]:
    with connect(port) as sock:
        sock.sendall(data)
        status, headers, _ = read_response(sock, head=data.startswith(b"HEAD "))
        return status, headers.get("connection") == "close" and closed(sock)


def test_serve_refuses_what_h11_refuses_and_answers_what_it_takes() -> None:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), server() as port:

        @settings(
            max_examples=400,
            deadline=None,
            suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
        )
        @given(requests())
        def check(case: tuple[bytes, bytes]) -> None:
            head, data = case
            stricter = serve_is_stricter(head, data)
            reference = h11_verdict(data)
            assume(stricter or reference is not None)
            status, was_closed = status_and_closed(port, data)
            if stricter or reference is False:
                assert status in REFUSED and was_closed, (data[:200], status)
            else:
                assert status not in REFUSED | {500}, (data[:200], status)

        check()
    assert stderr.getvalue() == ""


@pytest.mark.parametrize(
    "field",
    [
        b"Content-Length: \xb2",  # a Latin-1 digit: str.isdigit() took it, int() crashed
        b"Content-Length: \xd9\xa3",
        b"X: a\nGET /smuggled HTTP/1.1",  # a bare LF: a proxy in front sees two requests
        b"X: a\rb",
        b"X: a\x00b",
        b"X: a\r\n folded",
        b"Content-Length: 1\r\nContent-Length: 2",
        b"Content-Length: 3\r\nTransfer-Encoding: chunked",
        b"Content-Length: 99999999999999999999999999999",
        b"Content-Length: " + b"9" * 5000,  # int() of it raises past 4300 digits
    ],
)
def test_each_repro_is_refused_with_400_or_413(field: bytes) -> None:
    data = b"GET /jwks HTTP/1.1\r\nHost: x\r\n" + field + b"\r\n\r\n"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), server() as port:
        status, was_closed = status_and_closed(port, data)
    assert status in (400, 413) and was_closed
    assert stderr.getvalue() == ""


def test_a_bare_lf_is_refused_before_the_head_ends() -> None:
    """Not after the header timeout: the bare LF itself is the fault."""
    with server() as port, connect(port) as sock:
        sock.sendall(b"GET /jwks HTTP/1.1\nHost: x\n\n")
        status, headers, body = read_response(sock)
        assert (status, headers["connection"]) == (400, "close") and b"bare CR, LF" in body


def test_http11_without_host_is_refused_and_http10_without_it_is_answered() -> None:
    with server() as port:
        assert status_and_closed(port, b"GET /jwks HTTP/1.1\r\n\r\n") == (400, True)
        with connect(port) as sock:
            sock.sendall(b"GET /jwks HTTP/1.0\r\n\r\n")
            assert read_response(sock)[2] == BODY


def test_chunked_bodies_are_read_and_the_connection_stays() -> None:
    chunked = b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    with server() as port, connect(port) as sock:
        sock.sendall(chunked + b'3;ext="v"\r\nabc\r\n0\r\nTrailer: t\r\n\r\n')
        assert read_response(sock)[2] == b"ok"
        sock.sendall(chunked + b"3\r\nab")  # half a body: wait for the rest
        sock.sendall(b"c\r\n0\r\n\r\nGET /jwks HTTP/1.1\r\nHost: x\r\n\r\n")
        pending = bytearray()
        assert read_response(sock, pending)[2] == b"ok"
        assert read_response(sock, pending)[2] == BODY


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"0\r\n\r\n", 5),
        (b"3\r\nabc\r\n0\r\n\r\n", 13),
        (b"3\r\nab", -1),
        (b"zz\r\n", 400),
        (b"3\r\nabcd\r\n0\r\n\r\n", 400),  # the data is longer than its size
        (b"3;=x\r\nabc\r\n0\r\n\r\n", 400),
        (b"0\r\nbad trailer\r\n\r\n", 400),
        (b"fffffff\r\n", 413),
        (b"1234567890abcdef0\r\n", 400),  # more hex digits than any size we take
    ],
)
def test_chunked_framing(body: bytes, expected: int) -> None:
    found = chunked_end(body, 0, 1024)
    assert (found.status if isinstance(found, Refusal) else found) == expected


def test_parse_head_frames_lengths_and_chunked() -> None:
    framed = parse_head(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5", 100)
    assert isinstance(framed, Framed) and framed.body_length == 5
    framed = parse_head(b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked", 100)
    assert isinstance(framed, Framed) and framed.body_length == CHUNKED
    assert parse_head(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 101", 100) == Refusal(
        413, "the request is larger than the server takes"
    )


def test_no_traceback_from_a_real_serve_process(tmp_path: Path) -> None:
    """The repro through `jwksdeploy serve` itself: 400, and stderr holds only the start line,
    the access log and `stopped`."""
    (tmp_path / "jwks.json").write_bytes(BODY)
    argv = [sys.executable, "-m", "jwksdeploy", "serve", "--jwks", str(tmp_path / "jwks.json")]
    process = subprocess.Popen(
        [*argv, "--port", "0"], stderr=subprocess.PIPE, text=True, env=_env()
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/jwks", line)
        assert match, line
        port = int(match.group(1))
        for field in (b"Content-Length: \xb2", b"X: a\nb: c", b"X: \x00"):
            data = b"GET /jwks HTTP/1.1\r\nHost: x\r\n" + field + b"\r\n\r\n"
            assert status_and_closed(port, data) == (400, True)
        with connect(port) as sock:
            sock.sendall(b"GET /jwks HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[2] == BODY
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        rest = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
    assert "Traceback" not in rest and "Error" not in rest, rest
    lines = rest.splitlines()
    assert lines[-1] == "stopped" and len(lines) == 5, rest
    assert all(re.fullmatch(r"\S+Z 127\.0\.0\.1 \".*\" (400|200) \d+", x) for x in lines[:4])


def test_serve_answers_while_a_socket_is_reset() -> None:
    """A client that resets mid-request costs its connection only."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), server() as port:
        sock = connect(port)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.sendall(b"GET /jwks HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        sock.close()
        with connect(port) as other:
            other.sendall(b"GET /jwks HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(other)[2] == BODY
    assert stderr.getvalue() == ""


# Replies as the server before the strict framing and the kept replies wrote them (Date, ETag
# and body masked): the fast path must not change a byte.
OLD_REPLIES = {
    b"GET /jwks HTTP/1.1\r\nHost: x\r\n\r\n": b"HTTP/1.1 200 OK\r\nDate: D\r\nServer: jwksdeploy"
    b"\r\nContent-Type: application/json\r\nContent-Length: N\r\nETag: E\r\n"
    b"Cache-Control: public, max-age=60\r\n\r\nB",
    b"HEAD /jwks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n": b"HTTP/1.1 200 OK\r\nDate: D"
    b"\r\nServer: jwksdeploy\r\nContent-Type: application/json\r\nContent-Length: N\r\nETag: E"
    b"\r\nCache-Control: public, max-age=60\r\nConnection: close\r\n\r\n",
    b"GET /jwks HTTP/1.1\r\nHost: x\r\nIf-None-Match: E\r\n\r\n": b"HTTP/1.1 304 Not Modified\r\n"
    b"Date: D\r\nServer: jwksdeploy\r\nETag: E\r\nCache-Control: public, max-age=60\r\n\r\n",
    b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n": b"HTTP/1.1 200 OK\r\nDate: D\r\n"
    b"Server: jwksdeploy\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n"
    b"Connection: keep-alive\r\n\r\nok",
    b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n": b"HTTP/1.1 405 Method Not "
    b"Allowed\r\nDate: D\r\nServer: jwksdeploy\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 36\r\nAllow: GET, HEAD\r\n\r\nmethod not allowed: use GET or HEAD\n",
    b"GET /valid HTTP/1.1\r\nHost: x\r\n\r\n": b"HTTP/1.1 401 Unauthorized\r\nDate: D\r\nServer: "
    b"jwksdeploy\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 50\r\n"
    b"WWW-Authenticate: Bearer\r\n\r\nmissing token: send Authorization: Bearer <token>\n",
}


def test_replies_are_byte_identical_first_time_and_from_the_kept_bytes() -> None:
    from jwksdeploy.serve import etag_of

    etag = etag_of(BODY).encode()
    log = io.StringIO()
    with server(log=log) as port:
        for _ in range(2):  # the second time, the head is known and its reply kept
            for request, expected in OLD_REPLIES.items():
                with connect(port) as sock:
                    sock.sendall(request.replace(b"If-None-Match: E", b"If-None-Match: " + etag))
                    data, masked = b"", b""
                    while len(masked) < len(expected):
                        chunk = sock.recv(65536)
                        assert chunk, data
                        data += chunk
                        masked = re.sub(rb"Date: [^\r]+", b"Date: D", data).replace(etag, b"E")
                        masked = masked.replace(
                            b"Content-Length: %d" % len(BODY), b"Content-Length: N"
                        )
                        masked = masked.replace(BODY, b"B")
                assert masked == expected
    lines = [line.partition(" ")[2] for line in log.getvalue().splitlines()]
    assert lines[:6] == lines[6:] and lines[2] == '127.0.0.1 "GET /jwks HTTP/1.1" 304 0'


def test_bytes_arriving_one_by_one_are_checked_once_and_across_packets() -> None:
    """The bare-byte check sees each byte once as it arrives: a CRLF split over two packets is
    fine, a bare LF arriving later is refused before the head ends."""
    with server() as port, connect(port) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in b"GET /jwks HTTP/1.1\r\nHost: x\r\n\r\n":
            sock.sendall(bytes([byte]))
        assert read_response(sock)[2] == BODY
        for piece in (b"GET /jwks HTTP/1.1\r", b"\nHost: x\r\nX: a", b"\n", b"b"):
            sock.sendall(piece)
        status, headers, _ = read_response(sock)
        assert (status, headers["connection"]) == (400, "close") and closed(sock)
