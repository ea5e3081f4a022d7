#!/usr/bin/env python3
"""Benchmark `jwksdeploy serve` as a whole process against baselines, rounds interleaved
(run: python bench/serve.py [--runs N] [--seconds S]; needs `wrk` on PATH for (a)).

(a) keep-alive, 16 connections, GET /jwks, measured by wrk: requests/s and p99 latency;
    issue 21's goal: at least 0.8x nginx with one worker.
(a2) a connection per request (wrk sends `Connection: close`), 16 at a time; goal 0.9x nginx.
(b) 1,000 simultaneous new connections, each one GET /jwks (a client in its own process):
    how many are answered, and how long the last one took; target: all, within 2 s.
(c) 2,000 idle kept-alive connections: the server's RSS (target: under 48 MiB, the rendered
    limit is 64Mi) and whether another client is still served.

Baselines: the previous `serve` design (http.server, a thread per connection; it is embedded
below), and nginx when installed (a compiled static server, the issue's reference point).
Every server serves examples/jwks-rsa.json on 127.0.0.1 with its access log discarded. With
two or more cores the server is pinned to core 0 and wrk to core 1 (taskset), so they do not
compete; each figure is also shown as a ratio to nginx's in the same round.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from common import REPO

JWKS = REPO / "examples" / "jwks-rsa.json"

# The design `serve` had before issue 14, reduced to /jwks: ThreadingHTTPServer, separate
# writes for headers and body, no TCP_NODELAY, socketserver's backlog of 5.
THREADED = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
body = open(sys.argv[1], "rb").read()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        sys.stderr.write("%s\n" % self.requestline)
ThreadingHTTPServer.daemon_threads = True
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
sys.stderr.write("http://127.0.0.1:%d/jwks\n" % s.server_address[1]); sys.stderr.flush()
s.serve_forever()
"""

NGINX_CONF = """daemon off; worker_processes 1; pid {dir}/nginx.pid; error_log stderr error;
{user}
events {{ worker_connections 8192; }}
http {{ access_log off; client_body_temp_path {dir}/cb; proxy_temp_path {dir}/p;
  fastcgi_temp_path {dir}/f; uwsgi_temp_path {dir}/u; scgi_temp_path {dir}/s;
  server {{ listen 127.0.0.1:{port} backlog=4096;
    location = /jwks {{ types {{ }} default_type application/json; alias {jwks}; }} }} }}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(500):
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        time.sleep(0.01)
    raise SystemExit("server did not start listening")


@contextlib.contextmanager
def server(kind: str, workdir: Path) -> Iterator[tuple[int, int]]:
    """Start one server (pinned to core 0 where wrk can have another); yield (port, pid)."""
    port = free_port()
    if kind == "nginx":
        conf = workdir / "nginx.conf"
        user = "user root;" if os.geteuid() == 0 else ""
        text = NGINX_CONF.format(dir=workdir, port=port, jwks=JWKS, user=user)
        conf.write_text(text)
        argv = [shutil.which("nginx") or "nginx", "-e", "stderr", "-c", str(conf)]
    elif kind == "threaded":
        argv = [sys.executable, "-c", THREADED, str(JWKS)]
    else:
        jwksdeploy = str(Path(sys.executable).parent / "jwksdeploy")
        argv = [jwksdeploy, "serve", "--jwks", str(JWKS), "--port", str(port)]
    process = subprocess.Popen(
        SERVER_CORE + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        if kind == "threaded":
            assert process.stderr is not None
            port = int(re.findall(rb":(\d+)/", process.stderr.readline())[0])
        # the log goes nowhere, but must be drained so the server never blocks on it
        drain = subprocess.Popen(["cat"], stdin=process.stderr, stdout=subprocess.DEVNULL)
        wait_listening(port, process)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        drain.wait()


def wrk(port: int, seconds: int, close: bool = False) -> tuple[float, float]:
    """(requests/s, p99 ms) for 16 connections, kept alive or one per request."""
    url = f"http://127.0.0.1:{port}/jwks"
    threads = "-t1" if CLIENT_CORE else "-t2"
    argv = [*CLIENT_CORE, "wrk", threads, "-c16", f"-d{seconds}s", "--latency", url]
    if close:
        argv[-1:-1] = ["-H", "Connection: close"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rate, p99


PINNED = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
SERVER_CORE = ["taskset", "-c", "0"] if PINNED else []
CLIENT_CORE = ["taskset", "-c", "1"] if PINNED else []


def burst_client(port: int, count: int, limit: float) -> dict[str, float]:
    """Open count connections at once, send one GET on each, wait for every full reply."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count * 2 + 64)), hard))
    selector = selectors.DefaultSelector()
    request = b"GET /jwks HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    start = time.perf_counter()
    pending: dict[socket.socket, bytearray] = {}
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE)
        pending[sock] = bytearray()
    answered, last = 0, 0.0
    deadline = start + limit
    while pending and time.perf_counter() < deadline:
        for key, events in selector.select(timeout=0.1):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if events & selectors.EVENT_WRITE:
                try:
                    sock.send(request)
                except OSError:
                    continue
                selector.modify(sock, selectors.EVENT_READ)
                continue
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            pending[sock] += chunk
            if not chunk:
                if pending[sock].startswith(b"HTTP/1.1 200"):
                    answered += 1
                    last = time.perf_counter() - start
                selector.unregister(sock)
                sock.close()
                del pending[sock]
    for sock in pending:
        sock.close()
    return {"answered": answered, "seconds": last}


def rss_mib(pid: int) -> float:
    """The process's resident memory, with its children's (nginx's workers)."""
    text = Path(f"/proc/{pid}/status").read_text()
    own = int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(rss_mib(int(child)) for child in children)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of the process and its children (nginx's worker)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(cpu_seconds(int(child)) for child in children)


def wrk_costed(
    port: int, pid: int, seconds: int, close: bool = False
) -> tuple[float, float, float]:
    """wrk's (requests/s, p99 ms) and the server's CPU microseconds per request: a figure the
    other load on a shared machine disturbs less than the rate."""
    before = cpu_seconds(pid)
    rate, p99 = wrk(port, seconds, close)
    return rate, p99, (cpu_seconds(pid) - before) * 1e6 / max(1.0, rate * seconds)


def idle(port: int, pid: int, count: int) -> dict[str, float]:
    """count kept-alive connections, each after one request; then RSS and one more client."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 256)), hard))
    before = rss_mib(pid)
    held = []
    request = b"GET /jwks HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(request)
            data = b""
            while not data.endswith(b"}") and not data.endswith(b"}\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            held.append(sock)
        time.sleep(0.5)
        during = rss_mib(pid)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as other:
            other.sendall(request)
            served = float(other.recv(65536).startswith(b"HTTP/1.1 200"))
    except OSError:
        during, served = rss_mib(pid), 0.0
    finally:
        for sock in held:
            sock.close()
    return {"rss_before": before, "rss_idle": during, "other_served": served, "held": len(held)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--burst-client", nargs=3, metavar=("PORT", "N", "LIMIT"))
    parser.add_argument("--no-threaded", action="store_true", help="skip the old design")
    options = parser.parse_args()
    if options.burst_client:  # the client of (b), in its own process
        port, count, limit = options.burst_client
        print(json.dumps(burst_client(int(port), int(count), float(limit))))
        return
    kinds = ["jwksdeploy serve"] + ([] if options.no_threaded else ["threaded"])
    kinds += ["nginx"] if shutil.which("nginx") else []
    have_wrk = shutil.which("wrk") is not None
    workdir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    rates: dict[str, list[tuple[float, float, float]]] = {k: [] for k in kinds}
    closing: dict[str, list[tuple[float, float, float]]] = {k: [] for k in kinds}
    bursts: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    idles: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for _ in range(options.runs):
        for kind in kinds:
            if have_wrk:
                with server(kind, workdir) as (port, pid):
                    rates[kind].append(wrk_costed(port, pid, options.seconds))
                with server(kind, workdir) as (port, pid):
                    closing[kind].append(wrk_costed(port, pid, options.seconds, close=True))
            with server(kind, workdir) as (port, _pid):
                argv = [sys.executable, __file__, "--burst-client", str(port), "1000", "40"]
                out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
                bursts[kind].append(json.loads(out))
            with server(kind, workdir) as (port, pid):
                idles[kind].append(idle(port, pid, 2000))
    pinning = "server on core 0, wrk on core 1" if PINNED else "not pinned (one core)"
    print(f"\nserve benchmark: {options.runs} interleaved rounds, medians; {pinning}")
    base = "nginx" if "nginx" in kinds else kinds[-1]
    if have_wrk:
        for title, figures in (
            ("(a) wrk, 16 keep-alive connections", rates),
            ("(a2) wrk, a connection per request, 16 at a time", closing),
        ):
            print(f"\n{title}, {options.seconds}s, GET /jwks (ratio to {base})")
            base_rate = statistics.median(r for r, _, _ in figures[base])
            base_cost = statistics.median(c for _, _, c in figures[base])
            for kind in kinds:
                rate = statistics.median(r for r, _, _ in figures[kind])
                p99 = statistics.median(p for _, p, _ in figures[kind])
                cost = statistics.median(c for _, _, c in figures[kind])
                print(
                    f"  {kind:<18} {rate:>8.0f} req/s {rate / base_rate:>5.2f}x  p99 {p99:6.2f} ms"
                    f"  CPU {cost:6.1f} us/request ({base_cost / cost:.2f}x {base}'s throughput "
                    "per CPU)"
                )
    else:
        print("\n(a) skipped: wrk is not installed (apt-get install wrk)")
    print("\n(b) 1,000 simultaneous new connections, one GET each")
    for kind in kinds:
        answered = statistics.median(b["answered"] for b in bursts[kind])
        seconds = statistics.median(b["seconds"] for b in bursts[kind])
        print(f"  {kind:<18} {answered:>5.0f} answered, the last after {seconds:.2f} s")
    print("\n(c) 2,000 idle kept-alive connections")
    for kind in kinds:
        if not idles[kind]:
            continue
        before = statistics.median(i["rss_before"] for i in idles[kind])
        during = max(i["rss_idle"] for i in idles[kind])
        held = min(i["held"] for i in idles[kind])
        served = all(i["other_served"] for i in idles[kind])
        ratio = during / max(i["rss_idle"] for i in idles[base])
        print(
            f"  {kind:<18} RSS {before:.1f} MiB at rest, {during:.1f} MiB with {held:.0f} "
            f"idle ({ratio:.2f}x {base}); another client {'served' if served else 'NOT served'}"
        )


if __name__ == "__main__":
    main()
