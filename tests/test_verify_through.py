"""`verify --through URL`: the gateway must refuse every bad token and pass the valid one.
Judged against `serve`'s /valid (a real enforcer) and stand-ins that let everything through,
answer 404 or 5xx, all on 127.0.0.1."""

from __future__ import annotations

import contextlib
import http.server
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from jwksdeploy.enforce import Case, judge

from .helpers import run, running, serving


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    public, private = tmp_path / "jwks.json", tmp_path / "jwks.private.json"
    made = run("jwks", "generate", "--jwks", str(public), "--private", str(private))
    assert made.exit_code == 0, made.stderr
    return public, private


@contextlib.contextmanager
def stand_in(status: int) -> Iterator[str]:
    """A "gateway" that answers every request with `status`, token or not."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with running(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as port:
        yield f"http://127.0.0.1:{port}/api"


def test_serves_valid_is_an_enforcer(keys: tuple[Path, Path]) -> None:
    public, private = keys
    with serving(public.read_bytes()) as url:
        valid = url.replace("/jwks", "/valid")
        result = run("verify", "--through", valid, "--private", str(private))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ok: no token: expected refused (401/403), got 401",
        "ok: valid token: expected passed (2xx), got 200",
        "ok: signed by a key not in the set (same kid): expected refused (401/403), got 401",
        "ok: expired: expected refused (401/403), got 401",
    ]


def test_a_gateway_that_lets_everything_through_fails(keys: tuple[Path, Path]) -> None:
    _, private = keys
    with stand_in(200) as url:
        result = run(
            "verify",
            "--through",
            url,
            "--private",
            str(private),
            "--issuer",
            "https://i",
            "--audience",
            "api",
        )
    assert result.exit_code == 11
    assert "FAIL: no token: expected refused (401/403), got 200" in result.stdout
    assert "ok: valid token" in result.stdout
    for case in (
        "no token",
        "signed by a key not in the set",
        "expired",
        "wrong audience",
        "wrong issuer",
    ):
        assert f"{case}" in result.stderr, case
    assert "Traceback" not in result.stderr


def test_an_unchecked_claim_is_named(keys: tuple[Path, Path]) -> None:
    """serve's /valid checks signature and time only: a wrong audience gets through."""
    public, private = keys
    with serving(public.read_bytes()) as url:
        valid = url.replace("/jwks", "/valid")
        result = run(
            "verify",
            "--through",
            valid,
            "--private",
            str(private),
            "--audience",
            "api",
            "-o",
            "json",
        )
    assert result.exit_code == 11
    verdicts = {c["case"]: c["verdict"] for c in json.loads(result.stdout)["cases"]}
    assert verdicts.pop("wrong audience") == "FAIL"
    assert set(verdicts.values()) == {"ok"}
    assert "wrong audience (expected refused (401/403), got 200)" in result.stderr


@pytest.mark.parametrize("status", [404, 500, 502, 302])
def test_a_gateway_answering_neither_pass_nor_refuse_is_an_error(
    keys: tuple[Path, Path], status: int
) -> None:
    _, private = keys
    with stand_in(status) as url:
        result = run("verify", "--through", url, "--private", str(private))
    assert result.exit_code == 11
    assert result.stdout.count("ERROR:") == 4 and f"got {status}" in result.stdout
    assert "ok:" not in result.stdout


def test_nothing_listening_is_an_error_not_a_pass(keys: tuple[Path, Path]) -> None:
    import socket

    _, private = keys
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result = run("verify", "--through", f"http://127.0.0.1:{port}/", "--private", str(private))
    assert result.exit_code == 11 and result.stdout.count("ERROR:") == 4


def test_a_refused_valid_token_fails(keys: tuple[Path, Path]) -> None:
    _, private = keys
    with stand_in(401) as url:
        result = run("verify", "--through", url, "--private", str(private))
    assert result.exit_code == 11
    assert "FAIL: valid token: expected passed (2xx), got 401" in result.stdout


def test_through_needs_a_private_set_and_takes_no_other_check(
    keys: tuple[Path, Path], tmp_path: Path
) -> None:
    missing = run("verify", "--through", "http://127.0.0.1:9/", "--private", str(tmp_path / "x"))
    assert missing.exit_code == 3 and "jwksdeploy jwks generate" in missing.stderr
    public, private = keys
    mixed = run(
        "verify", "--through", "http://127.0.0.1:9/", "--private", str(private), "--token", "a.b.c"
    )
    assert mixed.exit_code == 3 and "--token" in mixed.stderr
    pub_only = run("verify", "--through", "http://127.0.0.1:9/", "--private", str(public))
    assert pub_only.exit_code == 3 and "cannot sign" in pub_only.stderr


@pytest.mark.parametrize(
    ("must_pass", "status", "verdict"),
    [
        (True, 200, "ok"),
        (True, 204, "ok"),
        (True, 401, "FAIL"),
        (True, 403, "FAIL"),
        (False, 401, "ok"),
        (False, 403, "ok"),
        (False, 200, "FAIL"),
        (True, 404, "ERROR"),
        (False, 404, "ERROR"),
        (False, 500, "ERROR"),
        (False, 503, "ERROR"),
        (True, 301, "ERROR"),
        (False, 400, "ERROR"),
        (True, None, "ERROR"),
    ],
)
def test_judge(must_pass: bool, status: int | None, verdict: str) -> None:
    assert judge(Case("c", None, must_pass), status).verdict == verdict
