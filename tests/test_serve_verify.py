"""`serve` as a real process on 127.0.0.1, and `verify` against it and against servers that
misbehave in the ways a user's endpoint can: wrong service, redirect, refused, stalled, leaking."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from jwksdeploy import keys
from jwksdeploy.errors import InputError
from jwksdeploy.probe import server_urls

from .helpers import EXAMPLES, REPO, jwks_bytes, run, running, serving
from .kube import Kube

PUBLIC_EC = keys.public_set({"keys": [keys.generate(keys.key_spec(), kid="k1")]})


def _env() -> dict[str, str]:
    env = dict(os.environ, NO_PROXY="*", no_proxy="*")
    env.pop("HTTP_PROXY", None)
    env.pop("http_proxy", None)
    return env


@contextlib.contextmanager
def serve_process(
    *argv: str, cwd: Path | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start a server process and yield it with its base URL, read from its start-up line."""
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=cwd,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/jwks", line)
        assert match, line + process.stderr.read()
        yield process, f"http://127.0.0.1:{match.group(1)}"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def test_serve_process_endpoints_log_and_clean_shutdown(tmp_path: Path) -> None:
    public, private = tmp_path / "jwks.json", tmp_path / "private.json"
    run("jwks", "generate", "--kid", "k1", "--out", str(public), "--private-out", str(private))
    token = run("token", "--key", str(private)).stdout.strip()
    argv = [sys.executable, "-m", "jwksdeploy", "serve", "--jwks", str(public), "--port", "0"]
    with serve_process(*argv) as (process, base):
        assert get(base + "/") == (200, "text/plain; charset=utf-8", b"success")
        assert get(base + "/any/unknown/path")[2] == b"success"
        status, content_type, body = get(base + "/jwks")
        assert (status, content_type, body) == (200, "application/json", public.read_bytes())
        assert get(base + "/valid", {"Authorization": f"Bearer {token}"})[:1] == (200,)
        assert get(base + "/valid?access_token=" + token)[2] == b"valid: key k1\n"
        rejected = get(base + "/valid?access_token=" + token[:-4] + "AAAA")
        assert rejected[0] == 401 and b"signature does not verify" in rejected[2]
        assert get(base + "/valid")[0] == 401
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert process.stderr is not None
        log = process.stderr.read()
    lines = log.strip().splitlines()
    assert len([line for line in lines if '"GET ' in line]) == 7  # one line per request
    assert '"GET /valid HTTP/1.1" 401' in log
    assert token.split(".")[2] not in log and "access_token" not in log
    assert lines[-1] == "stopped"


def test_serve_refuses_private_keys_and_a_busy_port(tmp_path: Path) -> None:
    private = tmp_path / "private.json"
    run("jwks", "generate", "--out", str(tmp_path / "jwks.json"), "--private-out", str(private))
    refused = run("serve", "--jwks", str(private), "--port", "0")
    assert refused.exit_code == 4 and "private key material" in refused.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run("serve", "--jwks", str(tmp_path / "jwks.json"), "--port", str(port))
    assert taken.exit_code == 3 and f"cannot listen on 127.0.0.1:{port}" in taken.stderr


def test_the_image_shim_runs_the_deployments_command(tmp_path: Path) -> None:
    """examples/image/main takes the rendered Deployment's `main jwks -c FILE` unchanged."""
    (tmp_path / "jwks.json").write_bytes(jwks_bytes(*PUBLIC_EC["keys"]))
    shim = EXAMPLES / "image" / "main"
    assert os.access(shim, os.X_OK)
    env_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    argv = ["env", f"PATH={env_path}", "JWKS_ADDRESS=127.0.0.1", "JWKS_PORT=0"]
    with serve_process(*argv, str(shim), "jwks", "-c", str(tmp_path / "jwks.json")) as (
        process,
        base,
    ):
        assert get(base + "/")[2] == b"success"
        assert json.loads(get(base + "/jwks")[2]) == PUBLIC_EC
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    rendered = run("render", "--jwks", str(EXAMPLES / "jwks.json"), "-n", "x").stdout
    assert "- main" in rendered and "- -c" in rendered and "/app/jwks.json" in rendered
    dockerfile = (EXAMPLES / "image" / "Dockerfile").read_text()
    assert "COPY examples/image/main /usr/local/bin/main" in dockerfile
    assert (REPO / "pyproject.toml").exists()


@pytest.mark.parametrize(
    ("given", "root", "jwks"),
    [
        ("http://h:1/jwks", "http://h:1/", "http://h:1/jwks"),
        ("http://h:1", "http://h:1/", "http://h:1/jwks"),
        ("https://gw.example/auth/", "https://gw.example/auth/", "https://gw.example/auth/jwks"),
        (
            "https://gw.example/auth/jwks?v=1",
            "https://gw.example/auth/",
            "https://gw.example/auth/jwks?v=1",
        ),
    ],
)
def test_server_urls(given: str, root: str, jwks: str) -> None:
    urls = server_urls(given)
    assert (urls.root, urls.jwks) == (root, jwks)


@pytest.mark.parametrize(
    "bad", ["ftp://h/jwks", "file:///etc/passwd", "h:8080/jwks", "http:///jwks"]
)
def test_only_http_urls(bad: str) -> None:
    with pytest.raises(InputError, match="not an http"):
        server_urls(bad)
    result = run("verify", "--url", bad)
    assert result.exit_code == 3


def test_url_or_namespace_exactly_one() -> None:
    assert run("verify").exit_code == 3
    both = run("verify", "--url", "http://127.0.0.1:1/jwks", "--namespace", "x")
    assert both.exit_code == 3 and "exactly one of --url" in both.stderr


class _Scripted(BaseHTTPRequestHandler):
    """Answers from a table: path -> (status, headers, body)."""

    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}

    def do_GET(self) -> None:
        status, headers, body = self.routes.get(self.path, (404, {}, b"not found"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def scripted(routes: dict[str, tuple[int, dict[str, str], bytes]]) -> Iterator[str]:
    handler = type("Handler", (_Scripted,), {"routes": routes})
    with running(HTTPServer(("127.0.0.1", 0), handler)) as port:
        yield f"http://127.0.0.1:{port}"


GOOD_ROOT = (200, {}, b"success")


@pytest.mark.parametrize(
    ("routes", "fragment"),
    [
        ({"/": (200, {}, b"<html>nginx</html>")}, "not 200 'success'"),
        ({"/": (302, {"Location": "/login"}, b"")}, "HTTP 302"),
        ({"/": GOOD_ROOT}, "/jwks answered HTTP 404"),
        ({"/": GOOD_ROOT, "/jwks": (200, {}, b"{not json")}, "is not valid JSON"),
        (
            {
                "/": GOOD_ROOT,
                "/jwks": (
                    200,
                    {},
                    jwks_bytes({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "SECRETd"}),
                ),
            },
            "contains private key material (d)",
        ),
    ],
)
def test_verify_names_what_is_wrong_with_the_server(
    routes: dict[str, tuple[int, dict[str, str], bytes]], fragment: str
) -> None:
    with scripted(routes) as base:
        result = run("verify", "--url", base + "/jwks")
    assert result.exit_code == 11, result.stdout
    assert fragment in result.stderr
    assert "SECRETd" not in result.stderr


def test_verify_notes_a_missing_content_type_like_the_go_server() -> None:
    body = jwks_bytes(*PUBLIC_EC["keys"])
    with scripted({"/": GOOD_ROOT, "/jwks": (200, {}, body)}) as base:
        result = run("verify", "--url", base + "/jwks", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert "not application/json" in result.stderr
    assert json.loads(result.stdout) == {
        "url": base + "/jwks",
        "kids": ["k1"],
        "matchesLocal": None,
    }


def test_verify_compares_with_the_local_file(tmp_path: Path) -> None:
    other = keys.public_set({"keys": [keys.generate(keys.key_spec(), kid="k2")]})
    (tmp_path / "same.json").write_text(
        json.dumps({"keys": [dict(reversed(PUBLIC_EC["keys"][0].items()))]})
    )
    (tmp_path / "other.json").write_text(json.dumps(other))
    with serving(jwks_bytes(*PUBLIC_EC["keys"])) as url:
        same = run("verify", "--url", url, "--jwks", str(tmp_path / "same.json"))
        differs = run("verify", "--url", url, "--jwks", str(tmp_path / "other.json"))
    assert same.exit_code == 0 and "equals" in same.stdout  # member order does not matter
    assert differs.exit_code == 11
    assert 'not served: key "k2"' in differs.stderr
    assert "served but not in" in differs.stderr and 'key "k1"' in differs.stderr


def test_verify_connection_refused_and_timeout() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    refused = run("verify", "--url", f"http://127.0.0.1:{port}/jwks")
    assert refused.exit_code == 11 and "cannot reach" in refused.stderr
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        stalled = run("verify", "--url", f"http://127.0.0.1:{port}/jwks", "--timeout", "300ms")
    assert stalled.exit_code == 10 and "did not answer within 0.3s" in stalled.stderr


@pytest.mark.emulator_only
def test_verify_namespace_finds_the_url_through_the_cluster(kube: Kube, tmp_path: Path) -> None:
    """The emulator's node is 127.0.0.1 and `serve` stands in for the pod behind the NodePort."""
    assert kube.emulator is not None
    public, private = tmp_path / "jwks.json", tmp_path / "private.json"
    run("jwks", "generate", "--kid", "k1", "--out", str(public), "--private-out", str(private))
    token = run("token", "--key", str(private)).stdout.strip()
    kube.emulator.add_node("node-1", InternalIP="127.0.0.1")
    port = _free_node_port()
    with serving(public.read_bytes(), port=port):
        applied = kube.jwksdeploy(
            "apply", "-n", kube.namespace, "--jwks", str(public), "--node-port", str(port)
        )
        assert applied.stdout.strip() == f"http://127.0.0.1:{port}/jwks", applied.stderr
        result = kube.jwksdeploy(
            "verify", "-n", kube.namespace, "--jwks", str(public), "--token", token
        )
    assert result.exit_code == 0, result.stderr
    assert f"http://127.0.0.1:{port}/jwks serves 1 key(s)" in result.stdout
    assert 'token verified by key "k1"' in result.stdout
    missing = kube.jwksdeploy("verify", "-n", kube.namespace, "--name", "other")
    assert missing.exit_code == 9 and "no Service 'other'" in missing.stderr


def _free_node_port() -> int:
    for candidate in range(30000 + os.getpid() % 2000, 32767):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    raise AssertionError("no free port in the NodePort range")


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, its own CA, written as PEM (cert, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jwks test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_verify_over_https_trusts_the_system_store_or_ca_file(tmp_path: Path) -> None:
    import ssl

    from jwksdeploy.jwks import parse_jwks
    from jwksdeploy.serve import bind

    cert, key = _self_signed(tmp_path)
    body = jwks_bytes(*PUBLIC_EC["keys"])
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server = bind("127.0.0.1", 0, body, parse_jwks(body), io.StringIO(), tls=tls)
    with running(server) as port:
        url = f"https://127.0.0.1:{port}/jwks"
        untrusted = run("verify", "--url", url)
        trusted = run("verify", "--url", url, "--ca-file", str(cert))
        missing = run("verify", "--url", url, "--ca-file", str(tmp_path / "none.pem"))
    assert untrusted.exit_code == 11 and "not trusted" in untrusted.stderr
    assert "--ca-file" in untrusted.stderr
    assert trusted.exit_code == 0, trusted.stderr
    assert f"{url} serves 1 key(s)" in trusted.stdout
    assert missing.exit_code == 3 and "--ca-file" in missing.stderr
