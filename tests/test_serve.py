"""`serve` over real sockets on 127.0.0.1: HTTP as gateways and caches use it, limits that hold
against slow, idle and hostile clients, crafted tokens on /valid, and a graceful shutdown."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jwksdeploy import keys
from jwksdeploy.jwks import parse_jwks
from jwksdeploy.serve import Limits, Request, Site, bind, escape, etag_of

from .helpers import jwks_bytes, run, running

PUBLIC_EC = keys.public_set({"keys": [keys.generate(keys.key_spec(), kid="k1")]})
BODY = jwks_bytes(*PUBLIC_EC["keys"])


@contextlib.contextmanager
def server(
    limits: Limits | None = None, log: io.StringIO | None = None, **kw: str
) -> Iterator[int]:
    """The serve server in a thread on 127.0.0.1; yields its port."""
    bound = bind("127.0.0.1", 0, BODY, parse_jwks(BODY), log or io.StringIO(), limits, **kw)
    with running(bound) as port:
        yield port


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_response(
    sock: socket.socket, pending: bytearray | None = None, head: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """One response: status, lower-cased headers, body (none after HEAD or in a 304)."""
    data = pending if pending is not None else bytearray()
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {bytes(data)!r}"
        data += chunk
    text, _, rest = bytes(data).partition(b"\r\n\r\n")
    lines = text.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = 0 if status == 304 or head else int(headers.get("content-length", "0"))
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    data[:] = body[length:]
    return status, headers, bytes(body[:length])


def ask(sock: socket.socket, request: str) -> tuple[int, dict[str, str], bytes]:
    sock.sendall(request.encode("latin-1"))
    return read_response(sock)


def get(path: str, *headers: str, method: str = "GET") -> str:
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n"


def closed(sock: socket.socket) -> bool:
    """True when the server closed the connection (EOF or reset), reading what was left."""
    try:
        while chunk := sock.recv(65536):
            del chunk
    except ConnectionResetError:
        pass
    return True


def test_each_reply_is_one_write_on_a_kept_alive_connection() -> None:
    """Header and body in one segment: no Nagle/delayed-ACK stall between them (the old server
    wrote them separately and waited 40 ms per request). One recv gets the whole reply."""
    with server() as port, connect(port) as sock:
        for _ in range(50):
            sock.sendall(get("/jwks").encode())
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            assert data.endswith(BODY), "headers and body came in separate segments"
        # pipelined requests are answered in order, in one write
        sock.sendall((get("/") + get("/healthz") + get("/jwks", method="HEAD")).encode())
        pending = bytearray()
        assert read_response(sock, pending)[2] == b"success"
        assert read_response(sock, pending)[2] == b"ok"
        status, headers, _ = read_response(sock, pending, head=True)
        assert not pending, "HEAD has no body"
        assert status == 200 and headers["content-length"] == str(len(BODY))


def test_jwks_headers_head_etag_304_and_405() -> None:
    etag = etag_of(BODY)
    with server(Limits(max_age=45)) as port, connect(port) as sock:
        status, headers, body = ask(sock, get("/jwks"))
        assert (status, body) == (200, BODY)
        assert headers["content-type"] == "application/json"
        assert headers["content-length"] == str(len(BODY))
        assert headers["etag"] == etag and etag.startswith('"')
        assert headers["cache-control"] == "public, max-age=45"
        assert "date" in headers
        sock.sendall(get("/jwks", method="HEAD").encode())
        pending = bytearray()
        while b"\r\n\r\n" not in pending:
            pending += sock.recv(65536)
        assert pending.endswith(b"\r\n\r\n"), "HEAD has no body"
        assert b"Content-Length: %d" % len(BODY) in pending
        for match in (etag, f'"other", W/{etag}', "*"):
            status, headers, body = ask(sock, get("/jwks", f"If-None-Match: {match}"))
            assert (status, body, headers["etag"]) == (304, b"", etag)
        assert ask(sock, get("/jwks", 'If-None-Match: "other"'))[0] == 200
        post = "POST /jwks HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        status, headers, _ = ask(sock, post)
        assert (status, headers["allow"]) == (405, "GET, HEAD")
        assert ask(sock, get("/jwks"))[2] == BODY, "the connection survives a 405 with a body"
        assert ask(sock, get("/any/path?x=1"))[2] == b"success"
        assert ask(sock, "GET http://127.0.0.1/jwks HTTP/1.1\r\nHost: x\r\n\r\n")[2] == BODY


def test_http10_closes_unless_kept_alive_and_connection_close_is_honoured() -> None:
    with server() as port:
        with connect(port) as sock:
            status, headers, _ = ask(sock, "GET /jwks HTTP/1.0\r\n\r\n")
            assert status == 200 and headers["connection"] == "close" and closed(sock)
        with connect(port) as sock:
            keep = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
            assert ask(sock, keep)[1]["connection"] == "keep-alive"
            assert ask(sock, get("/", "Connection: close"))[1]["connection"] == "close"
            assert closed(sock)


@pytest.mark.parametrize(
    ("request_text", "status"),
    [
        ("GARBAGE\r\n\r\n", 400),
        ("GET /jwks HTTP/2.0\r\n\r\n", 505),
        ("GET jwks HTTP/1.1\r\n\r\n", 400),
        ("GET /jwks HTTP/1.1\r\nno colon\r\n\r\n", 400),
        ("GET /jwks HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("GET /jwks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", 400),
        ("GET /jwks HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        ("GET /jwks HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
        ("GET /jwks HTTP/1.1\r\nX: " + "a" * 70_000 + "\r\n\r\n", 431),
        ("GET /" + "a" * 70_000, 431),  # no end of head in sight
    ],
)
def test_bad_requests_get_a_status_and_a_closed_connection(request_text: str, status: int) -> None:
    with server() as port, connect(port) as sock:
        sock.sendall(request_text.encode())
        got, headers, body = read_response(sock)
        assert (got, headers["connection"]) == (status, "close")
        assert body.endswith(b"\n") and len(body) > 10
        assert closed(sock)


def test_idle_connections_are_closed_and_half_sent_requests_get_408() -> None:
    log = io.StringIO()
    with server(Limits(idle_timeout=0.2, header_timeout=0.3), log) as port:
        with connect(port) as idle:
            assert ask(idle, get("/"))[0] == 200
            assert idle.recv(10) == b"", "an idle kept-alive connection is closed"
        with connect(port) as slow:
            slow.sendall(b"GET /jwks HTTP/1.1\r\nHost: x\r\n")  # and never the end
            status, headers, _ = read_response(slow)
            assert (status, headers["connection"]) == (408, "close") and closed(slow)
    assert " 408 " in log.getvalue()


def test_slow_and_stuck_clients_do_not_hold_up_others() -> None:
    with server() as port:
        slow = connect(port)
        slow.sendall(b"GET /jwks HTTP/1.1\r\nHo")
        stuck = connect(port)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        with contextlib.suppress(OSError):  # a client that sends and never reads
            stuck.settimeout(0.5)
            for _ in range(5000):
                stuck.sendall(get("/jwks").encode())
        with connect(port) as other:
            for _ in range(3):
                assert ask(other, get("/jwks"))[2] == BODY
        slow.sendall(b"st: x\r\n\r\n")
        assert read_response(slow)[2] == BODY, "the slow client is answered when it is done"
        slow.close()
        stuck.close()


def test_thousands_of_pipelined_requests_are_answered_in_order_in_batches() -> None:
    paths = [f"/p{i}" if i % 2 else "/healthz" for i in range(3000)]
    with server() as port, connect(port) as sock:
        sock.sendall("".join(get(path) for path in paths).encode())
        pending = bytearray()
        bodies = [read_response(sock, pending)[2] for _ in paths]
        assert bodies == [b"success" if i % 2 else b"ok" for i in range(3000)]
        assert ask(sock, get("/jwks"))[2] == BODY


def test_half_sent_requests_share_one_memory_budget() -> None:
    half = b"GET /jwks HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 1000
    limits = Limits(max_buffered_bytes=1500)
    with server(limits) as port, connect(port) as first, connect(port) as second:
        first.sendall(half)
        assert ask(first, "\r\n\r\n")[0] == 200, "within the budget"
        first.sendall(half)
        # answered after the half request was sent, so the server has read that by now
        assert ask(second, get("/"))[0] == 200
        second.sendall(half)
        status, headers, _ = read_response(second)
        assert (status, headers["connection"]) == (503, "close")
        assert ask(first, "\r\n\r\n")[0] == 200, "the first is still served"


def test_connections_beyond_the_limit_get_503() -> None:
    with server(Limits(max_connections=2)) as port:
        first, second = connect(port), connect(port)
        assert ask(first, get("/"))[0] == 200 and ask(second, get("/"))[0] == 200
        with connect(port) as third:
            status, headers, body = read_response(third)
            assert (status, headers["connection"]) == (503, "close")
            assert b"too many connections" in body
        first.close()
        assert ask(second, get("/"))[0] == 200
        second.close()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(header: str, payload: str = '{"sub":"x"}') -> str:
    return f"{_b64(header.encode())}.{_b64(payload.encode())}.{_b64(b'sig')}"


CRAFTED = {
    "alg is a list": _token('{"alg":["ES256"],"kid":"k1"}'),
    "alg is an object": _token('{"alg":{"a":1}}'),
    "exp -1e20": _token('{"alg":"ES256"}', '{"exp":-1e20}'),
    "exp 1e400": _token('{"alg":"ES256"}', '{"exp":1e400}'),
    "exp -Infinity": _token('{"alg":"ES256"}', '{"exp":-Infinity}'),
    "exp NaN": _token('{"alg":"ES256"}', '{"exp":NaN}'),
    "exp 400 digits": _token('{"alg":"ES256"}', '{"exp":' + "9" * 400 + "}"),
    "exp a string": _token('{"alg":"ES256"}', '{"exp":"tomorrow"}'),
    "nbf true": _token('{"alg":"ES256"}', '{"nbf":true}'),
    "deeply nested header": _token("[" * 15_000 + "]" * 15_000),
    "deeply nested claim": _token('{"alg":"ES256"}', '{"a":' + "[" * 15_000 + "]" * 15_000 + "}"),
    "duplicate names": _token('{"alg":"ES256","alg":"none"}'),
    "header not JSON": f"{_b64(b'nope')}.{_b64(b'{}')}.sig",
    "not base64": "***.***.***",
    "two parts": "a.b",
    "JWE": "a.b.c.d.e",
    "non-ASCII": "\u00e9t\u00e9.b.c",
    "alg none": _token('{"alg":"none"}'),
    "signature garbage": _token('{"alg":"ES256","kid":"k1"}'),
}


def test_crafted_tokens_get_401_with_a_reason_and_the_connection_stays() -> None:
    log = io.StringIO()
    with server(log=log) as port, connect(port) as sock:
        for name, token in CRAFTED.items():
            status, headers, body = ask(sock, get("/valid", f"Authorization: Bearer {token}"))
            assert status == 401, (name, body)
            assert body.startswith(b"invalid: ") and len(body) > 30, (name, body)
            assert headers["www-authenticate"].startswith("Bearer"), name
        status, _, body = ask(sock, get("/valid?access_token=" + CRAFTED["alg is a list"]))
        assert status == 401 and b"alg" in body
        assert ask(sock, get("/valid"))[2].startswith(b"missing token")
        assert ask(sock, get("/jwks"))[2] == BODY
    assert "Traceback" not in log.getvalue()


def test_valid_accepts_a_real_token(tmp_path: Path) -> None:
    public, private = tmp_path / "jwks.json", tmp_path / "private.json"
    run("jwks", "generate", "--kid", "k1", "--out", str(public), "--private-out", str(private))
    token = run("token", "--key", str(private)).stdout.strip()
    site = Site(public.read_bytes(), parse_jwks(public.read_bytes()), Limits())
    answer = site.respond(
        Request("GET", "/valid", "HTTP/1.1", {"authorization": f"Bearer {token}"})
    )
    assert (answer.status, answer.body) == (200, b"valid: key k1\n")
    altered = site.respond(Request("GET", f"/valid?access_token={token[:-4]}AAAA", "HTTP/1.1", {}))
    assert altered.status == 401 and b"signature does not verify" in altered.body
    assert token.split(".")[2].encode() not in altered.body


def test_access_log_is_one_escaped_line_per_request_and_can_be_json() -> None:
    text, as_json = io.StringIO(), io.StringIO()
    hostile = "GET /\x1b[31mred\x07?access_token=secret HTTP/1.1\r\n\r\n"
    with server(log=text) as port, connect(port) as sock:
        assert ask(sock, hostile)[0] == 400  # a control character is not a valid target
        with connect(port) as again:
            ask(again, get("/jwks?access_token=secret"))
    with server(log=as_json, log_format="json") as port, connect(port) as sock:
        ask(sock, get("/jwks?access_token=secret"))
    lines = text.getvalue().splitlines()
    assert len(lines) == 2
    assert "\x1b" not in text.getvalue() and "\x07" not in text.getvalue()
    assert "\\x1b[31mred\\x07" in lines[0] and lines[0].endswith(" 400 " + lines[0].split()[-1])
    assert re.search(r'^\S+ 127\.0\.0\.1 "GET /jwks HTTP/1\.1" 200 \d+$', lines[1])
    assert "secret" not in text.getvalue() and "secret" not in as_json.getvalue()
    record = json.loads(as_json.getvalue())
    assert record["path"] == "/jwks" and record["status"] == 200 and record["method"] == "GET"
    assert escape('a"b\\c\ud7ff') == "a\\x22b\\x5cc\\ud7ff"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def test_sigterm_finishes_the_request_in_flight_then_exits(tmp_path: Path) -> None:
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
        with connect(port) as busy, connect(port) as idle:
            busy.sendall(b"GET /jwks HTTP/1.1\r\nHost: x\r\n")  # half a request
            # sent after it, so once answered the server has read the half request too
            assert ask(idle, get("/"))[0] == 200
            process.send_signal(signal.SIGTERM)
            assert idle.recv(10) == b"", "idle connections are closed at once"
            busy.sendall(b"\r\n")
            status, headers, body = read_response(busy)
            assert (status, body, headers["connection"]) == (200, BODY, "close")
            assert closed(busy)
        assert process.wait(10) == 0
        assert process.stderr.read().splitlines()[-1] == "stopped"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def test_listen_flag_and_the_old_address_spelling(tmp_path: Path) -> None:
    helped = run("serve", "--help").stdout
    assert "--listen" in helped and "--address" not in helped
    assert "--max-age" in helped and "--access-log" in helped
    private = tmp_path / "private.json"
    run("jwks", "generate", "--out", str(tmp_path / "jwks.json"), "--private-out", str(private))
    for flag in ("--listen", "--address"):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = str(busy.getsockname()[1])
            taken = run(
                "serve", "--jwks", str(tmp_path / "jwks.json"), flag, "127.0.0.1", "--port", port
            )
        assert taken.exit_code == 3 and f"cannot listen on 127.0.0.1:{port}" in taken.stderr
    bad = run("serve", "--jwks", str(tmp_path / "jwks.json"), "--idle-timeout", "soon")
    assert bad.exit_code == 3 and "--idle-timeout" in bad.stderr


def test_cli_flags_reach_the_server(tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_bytes(BODY)
    argv = [sys.executable, "-m", "jwksdeploy", "serve", "--jwks", str(tmp_path / "jwks.json")]
    flags = ["--port", "0", "--max-age", "5m", "--access-log", "json", "--max-connections", "1"]
    process = subprocess.Popen([*argv, *flags], stderr=subprocess.PIPE, text=True, env=_env())
    try:
        assert process.stderr is not None
        match = re.search(r"http://127\.0\.0\.1:(\d+)/jwks", process.stderr.readline())
        assert match
        port = int(match.group(1))
        with connect(port) as sock:
            status, headers, body = ask(sock, get("/jwks"))
            assert (status, body, headers["cache-control"]) == (200, BODY, "public, max-age=300")
            with connect(port) as second:
                assert read_response(second)[0] == 503
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
        lines = process.stderr.read().splitlines()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert [r["status"] for r in records] == [200, 503]
    assert lines[-1] == "stopped"


def test_workers_share_the_port_and_stop_together(tmp_path: Path) -> None:
    """--workers 3: two forked processes bind the same port (SO_REUSEPORT); every client is
    served, and SIGTERM to the first stops them all, each exiting cleanly."""
    (tmp_path / "jwks.json").write_bytes(BODY)
    argv = [sys.executable, "-m", "jwksdeploy", "serve", "--jwks", str(tmp_path / "jwks.json")]
    process = subprocess.Popen(
        [*argv, "--port", "0", "--workers", "3"], stderr=subprocess.PIPE, text=True, env=_env()
    )
    try:
        assert process.stderr is not None
        match = re.search(r"http://127\.0\.0\.1:(\d+)/jwks", process.stderr.readline())
        assert match
        port = int(match.group(1))
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        workers: list[int] = []
        for _ in range(500):  # they are forked just after the `serving` line
            workers = [int(pid) for pid in children.read_text().split()]
            if len(workers) == 2:
                break
            time.sleep(0.01)
        assert len(workers) == 2
        for _ in range(40):
            with connect(port) as sock:
                assert ask(sock, get("/jwks", "Connection: close"))[2] == BODY
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        rest = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "a worker outlived serve"
    lines = rest.splitlines()
    assert lines[-1] == "stopped" and len(lines) == 41 and "Traceback" not in rest


# ---------------------------------------------------------------------------------------------
# Moved from the hostile suites (issue 9): a --listen no socket can take
# ---------------------------------------------------------------------------------------------
# Refused before any socket exists.

from .helpers import key_pair_files  # noqa: E402
from .refusals import assert_refused, invoke  # noqa: E402


@pytest.mark.usefixtures("in_tmp")
@pytest.mark.parametrize(
    "address", ["\udcff", "a\x00b", "\u00e4" * 70], ids=["argv-bytes", "nul", "idna-too-long"]
)
def test_serve_refuses_a_listen_address_no_socket_takes(address: str, tmp_path: Path) -> None:
    """A --listen the socket module cannot encode is exit 3 before any socket exists: it was a
    TypeError (exit 70), and a NUL left a socket open (ResourceWarning) (issue 9, second
    campaign)."""
    key_pair_files(tmp_path)
    outcome = invoke("serve", "--port", "0", "--listen", address)
    assert_refused(outcome, 3, mentions=["cannot listen"])
    assert "ResourceWarning" not in outcome.stderr
