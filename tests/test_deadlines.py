"""--timeout and --request-timeout are total deadlines: a server that sends one byte a second
never trips a per-read timeout, and one that accepts and never answers must not be retried
into several timeouts. Every stalled run is a process and they all run at once (one module
fixture), so the suite waits for one deadline, not one per case. Servers listen on 127.0.0.1
only. Provenance: issue 9, items 7 and 13."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from .helpers import kubeconfig, marker, valid_jwks
from .refusals import Outcome, assert_refused, flag, spawn_many
from .servers import jwks_server, raw_server

pytestmark = pytest.mark.usefixtures("in_tmp")


KUBE_TOKEN = marker("kube-token")
VERIFY_TIMEOUT = flag("verify", "--request-timeout", "--timeout")


def _yaml(document: Any) -> bytes:
    return json.dumps(document).encode()  # JSON is YAML, and keeps the structure exact


def _never_answers(conn: socket.socket, head: bytes) -> None:
    """Accept, read the request, then say nothing until the client gives up."""
    conn.settimeout(60)
    while conn.recv(4096):
        pass


def _drip(head_first: bytes) -> Callable[[socket.socket], None]:
    """Send `head_first` at once, then one byte per second, forever (until the client leaves)."""

    def answer(conn: socket.socket) -> None:
        conn.sendall(head_first)
        for _ in range(120):
            conn.sendall(b" ")
            time.sleep(1)

    return answer


# Servers that stall, each exercised by processes bounded by the process timeout. They all
# run at once (one module fixture), so the suite waits for one timeout, not one per case.
STALLS = {
    "verify-slow-status-line": _drip(b"HTTP/1.1 200"),
    "verify-slow-headers": _drip(b"HTTP/1.1 200 OK\r\n"),
    "verify-slow-body": _drip(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"),
}
KUBE_STALLS = ("url", "status", "delete", "apply")


# The mechanism, not the clock: a drip lasts 120 s, a silent server forever, so only a total
# deadline (2 s here) ends a run inside this bound; start-up on a loaded machine fits easily.
STALL_BOUND = 60.0


@pytest.fixture(scope="module")
def stalled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Outcome of every stalled run, by name (see STALLS and KUBE_STALLS)."""
    tmp_path = tmp_path_factory.mktemp("stalls")
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(valid_jwks())
    with contextlib.ExitStack() as stack:
        runs: dict[str, list[str]] = {}
        for name, answer in STALLS.items():
            port = stack.enter_context(jwks_server(answer))
            url = f"http://127.0.0.1:{port}/jwks"
            runs[name] = ["verify", "--url", url, VERIFY_TIMEOUT, "2s"]
        port = stack.enter_context(raw_server(_never_answers))
        path = tmp_path / "kubeconfig"
        path.write_bytes(_yaml(kubeconfig(f"http://127.0.0.1:{port}", token=KUBE_TOKEN)))
        k = ["--kubeconfig", str(path), "--request-timeout", "2s"]
        runs["url"] = ["url", "-n", "x", *k]
        runs["status"] = ["status", "-n", "x", *k]
        runs["delete"] = ["delete", "-n", "x", *k]
        runs["apply"] = ["apply", "--jwks", str(jwks), "-n", "x", "--no-wait", *k]
        outcomes = spawn_many(list(runs.values()), tmp_path, timeout=STALL_BOUND)
    return dict(zip(runs, outcomes, strict=True))


@pytest.mark.parametrize("name", list(STALLS))
def test_slow_servers_hit_the_total_deadline(name: str, stalled: dict[str, Outcome]) -> None:
    """One byte a second never trips a per-read timeout: --timeout must be a total deadline
    (exit 10 within a small multiple of it; the process timeout is the bound)."""
    assert_refused(stalled[name], 10)


@pytest.mark.parametrize("name", KUBE_STALLS)
def test_api_server_that_never_answers_times_out(name: str, stalled: dict[str, Outcome]) -> None:
    """A server that accepts and never answers: exit 10 ("timed out") after about one
    --request-timeout, not 6 after several (the process timeout is the bound)."""
    assert_refused(stalled[name], 10, secrets=[KUBE_TOKEN], mentions=["time"])


def test_verify_against_a_body_sent_a_byte_a_second_is_a_timeout(
    stalled: dict[str, Outcome],
) -> None:
    """`verify --url` against a server sending one byte a second ends at --timeout, exit 10
    (issue 9, repro 7)."""
    assert_refused(stalled["verify-slow-body"], 10)


def test_url_against_a_silent_api_server_is_a_timeout(stalled: dict[str, Outcome]) -> None:
    """A server that accepts but never answers is exit 10, "timed out" (issue 9, repro 13)."""
    assert_refused(stalled["url"], 10, mentions=["time"])
