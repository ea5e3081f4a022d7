"""Hostile input (issue 9) that arrives over the wire or names a cluster: kubeconfigs, HTTP
answers to `verify`, Kubernetes API stand-ins, and tokens and claims.

Every server here listens on 127.0.0.1 only. Each case asserts a documented exit code, one
`error: ` line at the end of stderr, no traceback and no secret in any output.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import b64
from .hostile import (
    Outcome,
    Signer,
    assert_clean_stderr,
    assert_no_secret,
    assert_refused,
    billion_laughs,
    closed_port,
    dumps,
    flag,
    http_answer,
    invoke,
    jwks_server,
    key_pair_files,
    kubeconfig,
    marker,
    private_rsa,
    process_env,
    raw_server,
    self_signed_tls,
    snapshot,
    spawn,
    spawn_many,
    valid_jwks,
)

HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KUBE_TOKEN = marker("kube-token")
CLIENT_KEY = marker("client-key")
DEEP = 100_000
VERIFY_TIMEOUT = flag("verify", "--request-timeout", "--timeout")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def each_failure(checks: dict[str, Callable[[], None]]) -> None:
    """Run every check and report all that fail together."""
    failures = []
    for name, check in checks.items():
        try:
            check()
        except AssertionError as exc:
            failures.append(f"[{name}] {exc}")
    assert not failures, f"{len(failures)} of {len(checks)} failed:\n\n" + "\n\n".join(failures)


# ---------------------------------------------------------------------------------------------
# Kubeconfigs
# ---------------------------------------------------------------------------------------------


def _yaml(document: Any) -> bytes:
    return json.dumps(document).encode()  # JSON is YAML, and keeps the structure exact


def _edited(server: str, edit: Callable[[dict[str, Any]], None]) -> bytes:
    document = kubeconfig(server, token=KUBE_TOKEN)
    edit(document)
    return _yaml(document)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit that sets a dotted path (list indexes as numbers), or deletes it for ...."""

    def edit(document: dict[str, Any]) -> None:
        target: Any = document
        parts = path.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is ...:
            del target[parts[-1]]
        else:
            target[parts[-1]] = value

    return edit


def hostile_kubeconfigs(tmp_path: Path, port: int) -> dict[str, bytes]:
    http = f"http://127.0.0.1:{port}"
    https = f"https://127.0.0.1:{port}"
    folder = tmp_path / "a-directory"
    folder.mkdir(exist_ok=True)
    tls_user = {"client-certificate-data": "%%%", "client-key-data": CLIENT_KEY}
    return {
        "not-yaml": b"{{{ : : ]]\n\t- [",
        "list-top-level": b"- clusters\n- users\n",
        "scalar-top-level": b"42\n",
        "string-top-level": b"just text\n",
        "empty": b"",
        "non-utf8": b"apiVersion: v1\nkind: \xff\xfe\n",
        "python-tag": b"clusters: !!python/object/apply:os.system ['true']\n",
        "deep-nesting": b"clusters: " + b"[" * 500 + b"]" * 500 + b"\n",
        "duplicate-key": _yaml(kubeconfig(http, token=KUBE_TOKEN))[:-1]
        + b', "current-context": "x"}',
        "no-contexts": _edited(http, lambda d: (d.pop("contexts"), d.pop("current-context"))),
        "current-context-missing": _edited(http, _set("current-context", "nope")),
        "current-context-list": _edited(http, _set("current-context", ["x"])),
        "context-missing-cluster": _edited(http, _set("contexts.0.context.cluster", "nope")),
        "context-null": _edited(http, _set("contexts.0.context", None)),
        "context-name-list": _edited(http, _set("contexts.0.name", ["x"])),
        "cluster-without-server": _edited(http, _set("clusters.0.cluster", {})),
        "server-not-a-url": _edited(http, _set("clusters.0.cluster.server", "not a url")),
        "server-bad-ipv6": _edited(http, _set("clusters.0.cluster.server", "http://[::1")),
        "server-bad-port": _edited(
            http, _set("clusters.0.cluster.server", "http://127.0.0.1:99999")
        ),
        "server-number": _edited(http, _set("clusters.0.cluster.server", 8080)),
        "clusters-mapping": _edited(http, _set("clusters", {"c": {"server": http}})),
        "users-strings": _edited(http, _set("users", ["u"])),
        "user-null": _edited(http, _set("users.0.user", None)),
        "contexts-null": _edited(http, _set("contexts", None)),
        "bad-ca-data": _edited(
            https, _set("clusters.0.cluster.certificate-authority-data", "!!!not base64!!!")
        ),
        "ca-data-not-pem": _edited(
            https, _set("clusters.0.cluster.certificate-authority-data", b64(b"hello"))
        ),
        "ca-file-missing": _edited(
            https, _set("clusters.0.cluster.certificate-authority", "/nope/ca.pem")
        ),
        "ca-file-directory": _edited(
            https, _set("clusters.0.cluster.certificate-authority", str(folder))
        ),
        "bad-client-cert-data": _edited(https, _set("users.0.user", tls_user)),
        "token-file-missing": _edited(http, _set("users.0.user", {"tokenFile": "/nope/token"})),
        "token-file-directory": _edited(http, _set("users.0.user", {"tokenFile": str(folder)})),
        "token-number": _edited(http, _set("users.0.user", {"token": 12345})),
        "exec-missing-command": _edited(
            http,
            _set(
                "users.0.user",
                {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": "/nope/credential-helper",
                        "interactiveMode": "Never",
                    }
                },
            ),
        ),
        "huge-file": b"# " + b"x" * (5 << 20) + b"\n" + _yaml(kubeconfig(http)),
    }


def kube_commands(jwks: str) -> dict[str, list[str]]:
    return {
        "url": ["url", "-n", "x", "--request-timeout", "5s"],
        "url-default-namespace": ["url", "--request-timeout", "5s"],
        "status": ["status", "-n", "x", "--request-timeout", "5s"],
        "delete": ["delete", "-n", "x", "--request-timeout", "5s"],
        "apply": ["apply", "--jwks", jwks, "-n", "x", "--no-wait", "--request-timeout", "5s"],
        "verify": ["verify", "-n", "x"],
        "gateway": ["gateway", "-n", "x", "--provider", "envoy"],
    }


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_bytes(valid_jwks())
    return path


HOSTILE_KUBECONFIG_IDS = list(hostile_kubeconfigs(Path("/tmp"), 1))


@pytest.mark.parametrize("case", HOSTILE_KUBECONFIG_IDS)
def test_hostile_kubeconfig(case: str, tmp_path: Path, jwks_file: Path) -> None:
    """Every command that reads a kubeconfig: exit 6 with one clean line, nothing leaked."""
    path = tmp_path / "kubeconfig"
    path.write_bytes(hostile_kubeconfigs(tmp_path, closed_port())[case])
    before = snapshot(tmp_path)

    def check(args: list[str]) -> Callable[[], None]:
        def run_one() -> None:
            out = invoke(*args, "--kubeconfig", str(path))
            assert_refused(
                out, 6, secrets=[KUBE_TOKEN, CLIENT_KEY], before=before, after=snapshot(tmp_path)
            )

        return run_one

    each_failure({name: check(args) for name, args in kube_commands(str(jwks_file)).items()})


def test_hostile_kubeconfig_from_the_environment(
    tmp_path: Path, jwks_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$KUBECONFIG (a list, merged) is read the same way as --kubeconfig."""
    cases = hostile_kubeconfigs(tmp_path, closed_port())
    checks = {}
    for case in ("not-yaml", "list-top-level", "deep-nesting", "bad-ca-data", "users-strings"):
        path = tmp_path / f"kubeconfig-{case}"
        path.write_bytes(cases[case])

        def run_one(path: Path = path) -> None:
            monkeypatch.setenv("KUBECONFIG", f"{path}:{tmp_path / 'other'}")
            assert_refused(invoke("url", "-n", "x"), 6, secrets=[KUBE_TOKEN])
            assert_refused(invoke("url"), 6, secrets=[KUBE_TOKEN])

        checks[case] = run_one
    each_failure(checks)


def test_missing_kubeconfig_says_it_does_not_exist(tmp_path: Path, jwks_file: Path) -> None:
    for name, args in kube_commands(str(jwks_file)).items():
        out = invoke(*args, "--kubeconfig", "/nope/config")
        assert_refused(out, 6, mentions=["does not exist|no such file|not found"])
        assert "/nope/config" in out.stderr, f"{name}: {out.describe()}"


def test_kubeconfig_that_is_a_directory(tmp_path: Path, jwks_file: Path) -> None:
    for args in kube_commands(str(jwks_file)).values():
        assert_refused(invoke(*args, "--kubeconfig", str(tmp_path)), 6, mentions=["directory"])


def _endless_kubeconfigs(tmp_path: Path, port: int) -> dict[str, tuple[str, list[str]]]:
    """(kubeconfig path, extra args) for kubeconfigs that never end or never finish expanding."""
    http = f"http://127.0.0.1:{port}"
    token_zero = tmp_path / "kubeconfig-token-zero"
    token_zero.write_bytes(_yaml(kubeconfig(http, tokenFile="/dev/zero")))
    ca_zero = tmp_path / "kubeconfig-ca-zero"
    https = kubeconfig(f"https://127.0.0.1:{port}")
    https["clusters"][0]["cluster"]["certificate-authority"] = "/dev/zero"
    ca_zero.write_bytes(_yaml(https))
    laughs = tmp_path / "kubeconfig-laughs"
    laughs.write_text(
        billion_laughs("preferences")
        + "apiVersion: v1\nkind: Config\n"
        + f"clusters: [{{name: c, cluster: {{server: '{http}'}}}}]\n"
        + "users: [{name: u, user: {token: t}}]\n"
        + "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    return {
        "path-dev-zero": ("/dev/zero", []),
        "token-file-dev-zero": (str(token_zero), []),
        "ca-file-dev-zero": (str(ca_zero), []),
        "billion-laughs": (str(laughs), []),
    }


@pytest.mark.parametrize(
    "case", ["path-dev-zero", "token-file-dev-zero", "ca-file-dev-zero", "billion-laughs"]
)
def test_endless_kubeconfig_is_refused(case: str, tmp_path: Path, jwks_file: Path) -> None:
    path, extra = _endless_kubeconfigs(tmp_path, closed_port())[case]
    commands = kube_commands(str(jwks_file))
    runs = [[*commands[name], "--kubeconfig", path, *extra] for name in ("url", "apply", "gateway")]
    for out in spawn_many(runs, tmp_path, timeout=60):
        assert_refused(out, 6)


# ---------------------------------------------------------------------------------------------
# Kubernetes API stand-ins
# ---------------------------------------------------------------------------------------------


def _write_kubeconfig(tmp_path: Path, server: str, **user: Any) -> str:
    path = tmp_path / "kubeconfig"
    path.write_bytes(_yaml(kubeconfig(server, **(user or {"token": KUBE_TOKEN}))))
    return str(path)


def _never_answers(conn: socket.socket, head: bytes) -> None:
    """Accept, read the request, then say nothing until the client gives up."""
    conn.settimeout(60)
    while conn.recv(4096):
        pass


def _not_found(conn: socket.socket, head: bytes) -> None:
    conn.sendall(http_answer("404 Not Found", b"404 page not found\n", "Content-Type: text/plain"))


def test_plain_http_server_is_not_a_kubernetes_api(tmp_path: Path, jwks_file: Path) -> None:
    """404 to everything means "not a Kubernetes API", never "namespace does not exist"."""
    with raw_server(_not_found) as port:
        k = ["--kubeconfig", _write_kubeconfig(tmp_path, f"http://127.0.0.1:{port}")]
        checks = {}
        for name, args in kube_commands(str(jwks_file)).items():

            def run_one(args: list[str] = args) -> None:
                out = invoke(*args, *k)
                assert_refused(out, 6, secrets=[KUBE_TOKEN], mentions=["kubernetes"])
                assert "does not exist" not in out.stderr, out.describe()

            checks[name] = run_one
        each_failure(checks)


def test_insecure_skip_tls_verify_prints_no_library_warnings(tmp_path: Path) -> None:
    """urllib3's InsecureRequestWarning (with file paths) never reaches the user."""
    with raw_server(_not_found, tls=self_signed_tls()) as port:
        path = tmp_path / "kubeconfig"
        document = kubeconfig(f"https://127.0.0.1:{port}", token=KUBE_TOKEN)
        document["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = True
        path.write_bytes(_yaml(document))
        out = spawn("url", "-n", "x", "--kubeconfig", str(path), cwd=tmp_path, timeout=30)
    assert out.code != 0
    assert_refused(out, 6, secrets=[KUBE_TOKEN])
    assert "InsecureRequestWarning" not in out.stderr, out.describe()
    assert "site-packages" not in out.stderr, out.describe()
    assert ".py:" not in out.stderr, out.describe()


def test_tls_api_server_with_untrusted_certificate(tmp_path: Path) -> None:
    with raw_server(_not_found, tls=self_signed_tls()) as port:
        path = _write_kubeconfig(tmp_path, f"https://127.0.0.1:{port}")
        out = spawn("url", "-n", "x", "--kubeconfig", path, cwd=tmp_path, timeout=30)
    assert_refused(out, 6, secrets=[KUBE_TOKEN])
    assert "site-packages" not in out.stderr, out.describe()


# ---------------------------------------------------------------------------------------------
# Network reads: verify --url against hostile HTTP servers
# ---------------------------------------------------------------------------------------------

MIB = 1 << 20


def _chunked(body: bytes, size: int = 65536) -> bytes:
    out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def _served(document: bytes) -> bytes:
    return http_answer("200 OK", document, "Content-Type: application/json")


EC_PUBLIC = Signer("served").public
DUP_KEYS = b'{"keys":[' + dumps(private_rsa()) + b'],"keys":[' + dumps(EC_PUBLIC) + b"]}"
HOSTILE_ANSWERS: dict[str, bytes] = {
    "garbage-status-line": b"HELLO WORLD\r\n\r\n",
    "no-status-line": valid_jwks(),
    "status-code-2000": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "status-line-binary": b"HTTP/1.1 200 \xff\xfe\x00\r\nContent-Length: 0\r\n\r\n",
    "thousand-headers": b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 1000 + b"\r\n",
    "megabyte-header-line": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * MIB + b"\r\n\r\n",
    "broken-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n",
    "chunk-truncated": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nabc",
    "chunk-size-huge": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"f" * 40
    + b"\r\nabc",
    "content-length-lies": b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{}",
    "content-length-negative": b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n{}",
    "content-length-garbage": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n{}",
    "close-without-answer": b"",
    "body-over-1mib": _served(b'{"keys":[],"pad":"' + b"a" * (2 * MIB) + b'"}'),
    "body-over-1mib-chunked": _chunked(b'{"keys":[],"pad":"' + b"a" * (2 * MIB) + b'"}'),
    "body-over-1mib-no-length": b"HTTP/1.0 200 OK\r\n\r\n" + b" " * (2 * MIB) + valid_jwks(),
    "redirect": b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/jwks\r\n"
    b"Content-Length: 0\r\n\r\n",
    "gzip-garbage": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\n"
    b"\x1f\x8b\xff\xff",
    "served-duplicate-keys": _served(DUP_KEYS),
    "served-nan": _served(b'{"keys":[' + dumps(EC_PUBLIC)[:-1] + b',"exp":NaN}]}'),
    "served-1e999": _served(b'{"keys":[' + dumps(EC_PUBLIC)[:-1] + b',"exp":1e999}]}'),
    "served-5000-digits": _served(
        b'{"keys":[' + dumps(EC_PUBLIC)[:-1] + b',"exp":' + b"7" * 5000 + b"}]}"
    ),
    "served-private-members": _served(dumps({"keys": [private_rsa()]})),
    "served-private-odd-kty": _served(dumps({"keys": [private_rsa(kty="rsa")]})),
    "served-oct-with-d": _served(
        dumps({"keys": [{"kty": "oct", "k": marker("k"), "d": marker("d")}]})
    ),
    "served-deep": _served(
        b'{"keys":[' + dumps(EC_PUBLIC) + b'],"x":' + b"[" * DEEP + b"]" * DEEP + b"}"
    ),
    "served-kty-list": _served(dumps({"keys": [{**EC_PUBLIC, "kty": []}]})),
    "served-kid-object": _served(dumps({"keys": [{**EC_PUBLIC, "kid": {"a": 1}}]})),
    "served-bom": _served(b"\xef\xbb\xbf" + dumps({"keys": [EC_PUBLIC]})),
    "served-not-utf8": _served(b'{"keys":[' + dumps(EC_PUBLIC)[:-1] + b',"n":"\xff"}]}'),
    "served-html": http_answer("200 OK", b"<html>hi</html>", "Content-Type: text/html"),
}


@pytest.mark.parametrize("case", list(HOSTILE_ANSWERS))
def test_verify_against_hostile_jwks_answer(case: str, tmp_path: Path) -> None:
    with jwks_server(HOSTILE_ANSWERS[case]) as port:
        before = snapshot(tmp_path)
        out = invoke("verify", "--url", f"http://127.0.0.1:{port}/jwks", VERIFY_TIMEOUT, "10s")
    assert_refused(out, 11, before=before, after=snapshot(tmp_path))


ROOT_CASES = [
    "garbage-status-line",
    "thousand-headers",
    "megabyte-header-line",
    "broken-chunk-size",
    "body-over-1mib-no-length",
]


@pytest.mark.parametrize("case", ROOT_CASES)
def test_verify_against_hostile_root_answer(case: str, tmp_path: Path) -> None:
    """The same answers on `/`, which verify reads first."""

    def handler(conn: socket.socket, head: bytes) -> None:
        conn.sendall(HOSTILE_ANSWERS[case])

    with raw_server(handler) as port:
        out = invoke("verify", "--url", f"http://127.0.0.1:{port}/jwks", VERIFY_TIMEOUT, "10s")
    assert_refused(out, 11)


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


def test_repro_7_verify_timeout_is_a_total_deadline(stalled: dict[str, Outcome]) -> None:
    """Issue 9, item 7: `verify --url` against a server sending one byte a second."""
    assert_refused(stalled["verify-slow-body"], 10)


def test_repro_13_silent_server_is_a_timeout(stalled: dict[str, Outcome]) -> None:
    """Issue 9, item 13: a server that accepts but never answers is exit 10, "timed out"."""
    assert_refused(stalled["url"], 10, mentions=["time"])


# ---------------------------------------------------------------------------------------------
# Tokens and claims
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer("k1")


@pytest.fixture(scope="module")
def jwks_url(signer: Signer) -> Iterator[str]:
    with jwks_server(_served(dumps({"keys": [signer.public]}))) as port:
        yield f"http://127.0.0.1:{port}/jwks"


def _future() -> int:
    return int(time.time()) + 3600


def _verify(url: str, token: str, *extra: str) -> Outcome:
    return invoke("verify", "--url", url, "--token", token, *extra)


def _signature(token: str) -> list[str]:
    parts = token.split(".")
    return [parts[2]] if len(parts) == 3 and len(parts[2]) >= 16 else []


def test_a_good_token_verifies(signer: Signer, jwks_url: str) -> None:
    """The control: the server and signer used below do verify a well-formed token, so the
    refusals below are about the hostile part only."""
    token = signer.sign(signer.header(), dumps({"iss": "me", "exp": _future()}))
    out = _verify(jwks_url, token, "--iss", "me")
    assert out.code == 0, out.describe()
    assert_clean_stderr(out)
    assert_no_secret(out, _signature(token))


def hostile_tokens(signer: Signer) -> dict[str, str]:
    """Tokens correctly signed by `signer` whose header or payload is hostile, and tokens
    that are not well-formed JWS at all."""
    future = _future()
    good_payload = dumps({"exp": future})
    sign = signer.sign
    h = signer.header()
    raw_header = b'{"alg":"ES256","kid":"k1"'
    signing_input = f"{b64(h)}.{b64(good_payload)}"
    hs256 = base64.urlsafe_b64encode(
        hmac.new(dumps(signer.public), signing_input.encode(), hashlib.sha256).digest()
    )
    return {
        # headers
        "alg-list": sign(dumps({"alg": ["ES256"], "kid": "k1"}), good_payload),
        "alg-object": sign(dumps({"alg": {"ES256": 1}, "kid": "k1"}), good_payload),
        "alg-none": f"{b64(dumps({'alg': 'none', 'kid': 'k1'}))}.{b64(good_payload)}.",
        "alg-hs256-with-public-key": f"{b64(dumps({'alg': 'HS256', 'kid': 'k1'}))}."
        f"{b64(good_payload)}.{hs256.rstrip(b'=').decode()}",
        "kid-list": sign(dumps({"alg": "ES256", "kid": ["k1"]}), good_payload),
        "kid-object": sign(dumps({"alg": "ES256", "kid": {"k1": 1}}), good_payload),
        "header-duplicate-alg": sign(b'{"alg":"none","alg":"ES256","kid":"k1"}', good_payload),
        "header-nan": sign(raw_header + b',"x":NaN}', good_payload),
        "header-deep": sign(raw_header + b',"x":' + b"[" * DEEP + b"]" * DEEP + b"}", good_payload),
        "header-5000-digits": sign(raw_header + b',"x":' + b"9" * 5000 + b"}", good_payload),
        "header-not-object": sign(b'["ES256"]', good_payload),
        "header-bom": sign(b"\xef\xbb\xbf" + h, good_payload),
        "header-not-utf8": sign(raw_header + b',"x":"\xff"}', good_payload),
        # payloads
        "exp-minus-1e20": sign(h, b'{"exp":-1e20}'),
        "exp-nan": sign(h, b'{"exp":NaN}'),
        "exp-infinity": sign(h, b'{"exp":Infinity}'),
        "exp-1e999": sign(h, b'{"exp":1e999}'),
        "exp-400-digits": sign(h, b'{"exp":' + b"9" * 400 + b"}"),
        "exp-5000-digits": sign(h, b'{"exp":' + b"9" * 5000 + b"}"),
        "exp-string": sign(h, dumps({"exp": str(future)})),
        "exp-list": sign(h, dumps({"exp": [future]})),
        "exp-true": sign(h, b'{"exp":true}'),
        "nbf-nan": sign(h, f'{{"exp":{future},"nbf":NaN}}'.encode()),
        "nbf-400-digits": sign(h, f'{{"exp":{future},"nbf":{"9" * 400}}}'.encode()),
        "iat-nan": sign(h, f'{{"exp":{future},"iat":NaN}}'.encode()),
        "exp-duplicate": sign(h, f'{{"exp":1,"exp":{future}}}'.encode()),
        "iss-duplicate": sign(h, f'{{"iss":"evil","iss":"me","exp":{future}}}'.encode()),
        "payload-deep": sign(
            h, f'{{"exp":{future},"x":'.encode() + b"[" * DEEP + b"]" * DEEP + b"}"
        ),
        "payload-list": sign(h, b"[]"),
        "payload-string": sign(h, b'"exp"'),
        "payload-empty": sign(h, b""),
        "payload-not-utf8": sign(h, f'{{"exp":{future},"x":"'.encode() + b'\xff"}'),
        "payload-bom": sign(h, b"\xef\xbb\xbf" + good_payload),
        "iss-list": sign(h, dumps({"iss": ["me"], "exp": future})),
        "aud-object": sign(h, dumps({"aud": {"api": 1}, "exp": future})),
        # framing
        "signature-marker": f"{b64(h)}.{b64(good_payload)}.{marker('signature')}",
        "signature-huge": f"{b64(h)}.{b64(good_payload)}.{'A' * (2 * MIB)}",
        "non-base64url": "a+b/c.d+e/f.g+h/i",
        "two-parts": f"{b64(h)}.{b64(good_payload)}",
        "four-parts": sign(h, good_payload) + ".abc",
        "five-parts-jwe": "a.b.c.d.e",
        "empty-parts": "..",
        "dots-only": "....",
        "non-ascii": "é.é.é",
        "whitespace-inside": sign(h, good_payload).replace(".", ". ", 1),
        "nul": sign(h, good_payload)[:10] + "\x00" + sign(h, good_payload)[10:],
        "megabyte-token": "a" * (2 * MIB) + ".b.c",
    }


HOSTILE_TOKEN_IDS = list(hostile_tokens(Signer("ids")))


@pytest.mark.parametrize("case", HOSTILE_TOKEN_IDS)
def test_verify_hostile_token(case: str, signer: Signer, jwks_url: str) -> None:
    token = hostile_tokens(signer)[case]
    extra = ["--iss", "me"] if case.startswith("iss") else []
    extra += ["--aud", "api"] if case.startswith("aud") else []
    out = _verify(jwks_url, token, *extra)
    assert_refused(out, (3, 11), secrets=_signature(token))


def test_verify_hostile_token_on_stdin(signer: Signer, jwks_url: str) -> None:
    tokens = hostile_tokens(signer)
    checks = {}
    for case in ("exp-nan", "header-deep", "exp-duplicate", "signature-marker", "megabyte-token"):

        def run_one(token: str = tokens[case]) -> None:
            out = invoke("verify", "--url", jwks_url, "--token", "-", input=token + "\n")
            assert_refused(out, (3, 11), secrets=_signature(token))

        checks[case] = run_one
    each_failure(checks)


@pytest.mark.parametrize(
    ("token", "stdin"),
    [("", None), (" ", None), ("-", ""), ("-", "\n"), ("-", "   \n\n")],
    ids=["empty", "blank", "stdin-empty", "stdin-newline", "stdin-blank"],
)
def test_verify_empty_token_fails(token: str, stdin: str | None, jwks_url: str) -> None:
    """An empty $TOKEN in CI must not pass."""
    out = invoke("verify", "--url", jwks_url, "--token", token, input=stdin)
    assert_refused(out, (3, 11), mentions=["token"])


@pytest.mark.parametrize(
    "extra", [["--iss", "me"], ["--aud", "api"], ["--iss", "me", "--aud", "a", "--aud", "b"]]
)
def test_verify_claims_without_token_are_refused(extra: list[str], jwks_url: str) -> None:
    out = invoke("verify", "--url", jwks_url, *extra)
    assert_refused(out, 3, mentions=["--token"])


@HYPOTHESIS
@given(
    claims=st.dictionaries(
        st.sampled_from(["exp", "nbf", "iat", "iss", "aud", "sub", "x"]),
        st.recursive(
            st.none()
            | st.booleans()
            | st.floats(allow_nan=True, allow_infinity=True)
            | st.integers(-(10**30), 10**30)
            | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=3), inner, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=5,
    )
)
def test_property_verify_any_claims(claims: dict[str, Any], signer: Signer, jwks_url: str) -> None:
    """Any claims (NaN and Infinity included), correctly signed: verified, or a clean refusal;
    never a crash, never the signature in the output."""
    token = signer.sign(signer.header(), json.dumps(claims).encode())
    out = _verify(jwks_url, token, "--iss", "me")
    assert_no_secret(out, _signature(token))
    if out.code == 0:
        assert_clean_stderr(out)
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        assert claims.get("iss") == "me", out.describe()
        assert type(exp) in (int, float) and time.time() - 60 < exp < 1e16, out.describe()
        assert type(nbf) in (int, float) and nbf <= time.time() + 60, out.describe()
    else:
        assert_refused(out, (3, 11))


# token: claims and headers from the command line, and key files it cannot sign with.


@pytest.fixture
def private_key(tmp_path: Path) -> str:
    return str(key_pair_files(tmp_path)[1])


def _payload(token: str) -> Any:
    """The payload of a compact JWS, parsed as strict RFC 8259 JSON."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        assert len(names) == len(set(names)), f"duplicate member names in payload: {names}"
        return dict(pairs)

    def constant(name: str) -> Any:
        raise AssertionError(f"{name} in the token payload")

    part = token.strip().split(".")[1]
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    return json.loads(raw, object_pairs_hook=no_duplicates, parse_constant=constant)


REFUSED_CLAIMS = {
    "exp-nan": ["--claim", "exp=NaN"],
    "exp-infinity": ["--claim", "exp=Infinity"],
    "exp-1e999": ["--claim", "exp=1e999"],
    "exp-400-digits": ["--claim", "exp=" + "9" * 400],
    "exp-string": ["--claim", 'exp="tomorrow"'],
    "nbf-nan": ["--claim", "nbf=NaN"],
    "iat-minus-infinity": ["--claim", "iat=-Infinity"],
    "header-alg-list": ["--header", 'alg=["ES256"]'],
    "header-alg-none": ["--header", "alg=none"],
    "header-alg-other-kty": ["--header", "alg=HS256"],
    "header-kid-list": ["--header", 'kid=["a"]'],
    "header-nan": ["--header", "x=NaN"],
    "header-duplicate": ["--header", 'x={"a":1,"a":2}'],
}
# Claims that are refused, or kept as plain strings: the payload must stay RFC 8259 JSON.
STRING_OR_REFUSED = {
    "x-infinity": ["--claim", "x=Infinity"],
    "x-minus-infinity": ["--claim", "x=-Infinity"],
    "x-nan": ["--claim", "x=NaN"],
    "x-1e999": ["--claim", "x=1e999"],
    "x-5000-digits": ["--claim", "x=" + "7" * 5000],
    "x-duplicate-members": ["--claim", 'x={"a":1,"a":2}'],
    "x-deep": ["--claim", "x=" + "[" * DEEP + "]" * DEEP],
    "x-lone-surrogate": ["--claim", 'x="\\ud800"'],
}


@pytest.mark.parametrize("case", list(REFUSED_CLAIMS))
def test_token_refuses_non_json_claims(case: str, private_key: str, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    out = invoke("token", "--key", private_key, *REFUSED_CLAIMS[case])
    assert_refused(out, 3, before=before, after=snapshot(tmp_path))


@pytest.mark.parametrize("case", list(STRING_OR_REFUSED))
def test_token_claims_stay_json(case: str, private_key: str) -> None:
    out = invoke("token", "--key", private_key, *STRING_OR_REFUSED[case])
    if out.code == 0:
        assert_clean_stderr(out)
        payload = _payload(out.stdout)
        assert isinstance(payload.get("x"), str | list | dict), payload
    else:
        assert_refused(out, 3)


def _key(**members: Any) -> dict[str, Any]:
    return {"kid": "odd", **members}


UNUSABLE_KEYS = {
    "ec-unknown-curve": _key(
        kty="EC", crv="P-999", x=b64(b"\1" * 32), y=b64(b"\2" * 32), d=marker("d")
    ),
    "ec-curve-list": _key(
        kty="EC", crv=["P-256"], x=b64(b"\1" * 32), y=b64(b"\2" * 32), d=marker("d")
    ),
    "okp-unknown-curve": _key(kty="OKP", crv="X999", x=b64(b"\1" * 32), d=marker("d")),
    "unknown-kty": _key(kty="XYZ", d=marker("d"), k=marker("k")),
    "kty-list": _key(kty=["EC"], crv="P-256", d=marker("d")),
    "rsa-markers-not-a-key": private_rsa(kid="odd"),
    "ec-d-not-base64": _key(kty="EC", crv="P-256", x=b64(b"\1" * 32), y=b64(b"\2" * 32), d="!!"),
    "ec-d-number": _key(kty="EC", crv="P-256", x=b64(b"\1" * 32), y=b64(b"\2" * 32), d=12345),
    "oct-k-empty": _key(kty="oct", k="", alg="HS256"),
    "oct-k-list": _key(kty="oct", k=[marker("k")], alg="HS256"),
    "alg-list": _key(kty="oct", k=marker("k"), alg=["HS256"]),
    "public-only": EC_PUBLIC,
}


@pytest.mark.parametrize("case", list(UNUSABLE_KEYS))
def test_token_with_unusable_key(case: str, tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_bytes(dumps({"keys": [UNUSABLE_KEYS[case]]}))
    path.chmod(0o600)
    before = snapshot(tmp_path)
    out = invoke("token", "--key", str(path))
    assert_refused(out, (3, 4), before=before, after=snapshot(tmp_path))


# render (and apply) without -n take the namespace from the kubeconfig's current context.

KUBECONFIG_NAMESPACE_TEXTS = [
    "010",
    "0x1f",
    "1_0",
    "12:30",
    "yes",
    "off",
    "1e3",
]  # `~` is no namespace


def _context_namespace_kubeconfig(text: str) -> str:
    """A kubeconfig in plain YAML (not JSON) whose context namespace is written unquoted."""
    return (
        "apiVersion: v1\nkind: Config\n"
        "clusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:1'}\n"
        "users:\n- name: u\n  user: {token: t}\n"
        f"contexts:\n- name: x\n  context: {{cluster: c, user: u, namespace: {text}}}\n"
        "current-context: x\n"
    )


def test_kubeconfig_namespace_keeps_its_text(
    tmp_path: Path, jwks_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kubectl reads a context's namespace as the text written (sigs.k8s.io/yaml keeps string
    fields literal): `namespace: 010` is namespace "010", never 8 and never silently
    "default". render must use that text or refuse."""
    path = tmp_path / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(path))
    checks = {}
    for text in KUBECONFIG_NAMESPACE_TEXTS:

        def run_one(text: str = text) -> None:
            path.write_text(_context_namespace_kubeconfig(text))
            out = invoke("render", "--jwks", str(jwks_file), "-o", "json")
            if out.code == 0:
                assert_clean_stderr(out)
                namespaces = {
                    item["metadata"]["namespace"] for item in json.loads(out.stdout)["items"]
                }
                assert namespaces == {text}, (
                    f"namespace {text!r} became {namespaces}\n{out.describe()}"
                )
            else:
                assert_refused(out, (3, 6))

        checks[text] = run_one
    each_failure(checks)


def test_kubeconfig_namespace_of_the_wrong_type_is_refused(
    tmp_path: Path, jwks_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kubectl refuses a context whose namespace is a list or a mapping; render must not
    quietly fall back to "default"."""
    path = tmp_path / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(path))
    for text in ("[a]", "{a: b}"):
        path.write_text(_context_namespace_kubeconfig(text))
        assert_refused(invoke("render", "--jwks", str(jwks_file)), (3, 6))


def test_render_with_an_endless_kubeconfig_ends(tmp_path: Path, jwks_file: Path) -> None:
    """render reads the kubeconfig only for a default namespace: an endless or exploding one
    must neither hang it nor crash it (it may fall back to "default" or refuse)."""
    laughs = tmp_path / "laughs"
    laughs.write_text(billion_laughs("preferences") + "current-context: x\n")
    runs = [["render", "--jwks", str(jwks_file)]]
    for kubeconfig_path in ("/dev/zero", str(laughs), str(tmp_path)):
        env = process_env(tmp_path, KUBECONFIG=kubeconfig_path)
        out = spawn(*runs[0], cwd=tmp_path, env=env, timeout=30)
        if out.code == 0:
            assert_clean_stderr(out)
            assert "namespace: default" in out.stdout, out.describe()
        else:
            assert_refused(out, (3, 6))
