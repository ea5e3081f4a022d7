"""Builders and checks for the hostile-input suite (tests/test_hostile*.py).

Every hostile case ends in `assert_refused`: the documented exit code, stderr ending in one
`error: ` line, no traceback, no "This is a bug", no secret marker anywhere in the output, and
(given a snapshot) no file changed. Secrets are built from recognisable markers, so a leak of
any private member, `k` or token signature is caught by a plain substring test.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from jwksdeploy.cli import cli

from .helpers import b64, ec_key, rsa_public

MARKER_TEXT = "SECRET-MARKER"
# Any printed secret of ours starts with this (base64url of b"SECRET-MARKER-...").
MARKER_B64_PREFIX = b64(b"SECRET-MARKER-")[:16]
SECRET_NEEDLES = (MARKER_TEXT, MARKER_B64_PREFIX)


def marker(name: str, size: int = 48) -> str:
    """A valid base64url secret whose text is recognisable in any output."""
    raw = f"SECRET-MARKER-{name}-".encode()
    return b64((raw + b"#" * size)[: max(size, len(raw))])


def private_rsa(**extra: Any) -> dict[str, Any]:
    """A public RSA key plus every RSA private member, each a secret marker."""
    key = dict(rsa_public())
    key.pop("kid", None)
    key.update({m: marker(m) for m in ("d", "p", "q", "dp", "dq", "qi")})
    key["oth"] = [{"r": marker("oth-r"), "d": marker("oth-d"), "t": marker("oth-t")}]
    key.update(extra)
    return key


def valid_ec(kid: str = "ec-1") -> dict[str, Any]:
    return ec_key(kid=kid, alg="ES256", use="sig")


def dumps(document: Any) -> bytes:
    return json.dumps(document).encode()


def valid_jwks() -> bytes:
    return dumps({"keys": [valid_ec()]})


@dataclass
class Outcome:
    """What a command did, in-process or as a process."""

    code: int
    stdout: str
    stderr: str
    argv: Sequence[Any] = ()

    def describe(self) -> str:
        return (
            f"argv={list(self.argv)!r}\nexit={self.code}\n--- stdout ---\n{self.stdout[-3000:]}"
            f"\n--- stderr ---\n{self.stderr[-3000:]}"
        )


def invoke(
    *args: str, input: bytes | str | None = None, env: dict[str, str] | None = None
) -> Outcome:
    """The CLI in-process (fast); an exception that escapes it shows up as a traceback, and a
    Python warning the user would see (library warnings with file paths) shows up on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        result = CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=True)
    stderr = result.stderr
    for warning in caught:
        if not issubclass(warning.category, DeprecationWarning | PendingDeprecationWarning):
            stderr += warnings.formatwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        info = result.exc_info
        assert info is not None
        stderr += "".join(traceback.format_exception(*info))
    return Outcome(result.exit_code, result.stdout, stderr, args)


def flag(command: str, *candidates: str) -> str:
    """The first of `candidates` that `jwksdeploy COMMAND` accepts (flags get renamed; the
    hostile cases stay about the value, not the name)."""
    import click

    with click.Context(cli) as ctx:
        found = cli.get_command(ctx, command)
    assert found is not None, command
    names = {name for param in found.params for name in (*param.opts, *param.secondary_opts)}
    for candidate in candidates:
        if candidate in names:
            return candidate
    raise AssertionError(f"jwksdeploy {command} has none of {candidates}")


def process_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment that reads nothing of the developer's and never uses a proxy."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        and not key.startswith(("JWKSDEPLOY_", "KUBECONFIG"))
    }
    env.update(
        HOME=str(tmp_path / "home"),
        KUBECONFIG=str(tmp_path / "no-kubeconfig"),
        XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),
        NO_PROXY="127.0.0.1",
        no_proxy="127.0.0.1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


def spawn_many(runs: Sequence[Sequence[str | bytes]], cwd: Path, timeout: float) -> list[Outcome]:
    """Several `python -m jwksdeploy` processes at once (tests that wait on a clock share
    the wait). A process still running after `timeout` seconds is killed and reported as a
    hang (exit -1)."""
    import time

    env = process_env(cwd)
    started = [
        (
            args,
            subprocess.Popen(
                [sys.executable, "-m", "jwksdeploy", *args],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ),
        )
        for args in runs
    ]
    deadline = time.monotonic() + timeout
    outcomes = []
    for args, process in started:
        try:
            out, err = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
            code = process.returncode
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            code = -1
            err += f"\n[test: still running after {timeout:g}s: a hang]".encode()
        outcomes.append(
            Outcome(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), args)
        )
    return outcomes


def self_signed_tls() -> ssl.SSLContext:
    """A server-side TLS context with a throwaway certificate for 127.0.0.1."""
    import datetime
    import ipaddress
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:
        cert_path, key_path = Path(folder, "cert.pem"), Path(folder, "key.pem")
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context.load_cert_chain(cert_path, key_path)
    return context


def spawn(
    *args: str | bytes,
    cwd: Path,
    timeout: float = 60,
    input: bytes = b"",
    env: dict[str, str] | None = None,
) -> Outcome:
    """`python -m jwksdeploy ARGS` as a process; the timeout is a safety net against hangs."""
    argv: list[str | bytes] = [sys.executable, "-m", "jwksdeploy", *args]
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=env if env is not None else process_env(cwd),
            input=input,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"jwksdeploy {args!r} did not finish within {timeout:g}s (a hang); stderr so far: "
            f"{(exc.stderr or b'')[-2000:]!r}"
        ) from None
    return Outcome(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
        args,
    )


def assert_no_secret(outcome: Outcome, extra: Sequence[str] = ()) -> None:
    for needle in (*SECRET_NEEDLES, *extra):
        assert needle not in outcome.stdout, f"secret {needle!r} on stdout\n{outcome.describe()}"
        assert needle not in outcome.stderr, f"secret {needle!r} on stderr\n{outcome.describe()}"


def assert_clean_stderr(outcome: Outcome) -> None:
    """No traceback and no last-resort "bug" message, whatever the exit code."""
    for text in (outcome.stdout, outcome.stderr):
        assert "Traceback" not in text, outcome.describe()
    assert "This is a bug" not in outcome.stderr, outcome.describe()


def assert_refused(
    outcome: Outcome,
    codes: int | Sequence[int],
    *,
    secrets: Sequence[str] = (),
    before: Snapshot | None = None,
    after: Snapshot | None = None,
    mentions: Sequence[str] = (),
) -> None:
    """A clean refusal: a documented exit code and exactly one one-line `error: ` at the end."""
    allowed = (codes,) if isinstance(codes, int) else tuple(codes)
    assert outcome.code in allowed, f"expected exit {allowed}\n{outcome.describe()}"
    assert_clean_stderr(outcome)
    lines = outcome.stderr.rstrip("\n").split("\n")
    assert lines[-1].startswith("error: "), (
        f"last stderr line is not `error: `\n{outcome.describe()}"
    )
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, f"{len(errors)} `error: ` lines\n{outcome.describe()}"
    for words in mentions:
        # one needle, or alternatives separated by "|"
        assert any(w.lower() in lines[-1].lower() for w in words.split("|")), (
            f"error does not mention {words!r}\n{outcome.describe()}"
        )
    assert_no_secret(outcome, secrets)
    if before is not None:
        assert after is not None
        assert after == before, (
            f"files changed on refusal: {diff(before, after)}\n{outcome.describe()}"
        )


Snapshot = dict[str, tuple[str, int]]


def snapshot(root: Path, skip: Sequence[Path] = ()) -> Snapshot:
    """path -> (sha256 or "<dir>", mode) for everything under root (symlinks not followed)."""
    state: Snapshot = {}
    skipped = {str(p) for p in skip}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in skipped]
        for name in dirs:
            path = os.path.join(folder, name)
            state[os.path.relpath(path, root)] = ("<dir>", os.lstat(path).st_mode)
        for name in files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            else:
                digest = f"<{stat.S_IFMT(info.st_mode):o}>"
            state[os.path.relpath(path, root)] = (digest, info.st_mode)
    return state


def diff(before: Snapshot, after: Snapshot) -> dict[str, str]:
    changes = {p: "removed" for p in before if p not in after}
    changes.update({p: "added" for p in after if p not in before})
    changes.update({p: "changed" for p in before if p in after and before[p] != after[p]})
    return changes


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


Handler = Callable[[socket.socket, bytes], None]


@contextlib.contextmanager
def raw_server(handler: Handler, tls: ssl.SSLContext | None = None) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that reads each request head and lets `handler` answer with
    whatever bytes it likes (a hostile HTTP server), over TLS if given. Yields the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def serve_one(conn: socket.socket) -> None:
        if tls is not None:
            try:
                conn.settimeout(10)
                conn = tls.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                conn.close()
                return
        with conn:
            conn.settimeout(30)
            head = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                with contextlib.suppress(OSError):
                    handler(conn, head)

    def accept_loop() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if stop.is_set():
                conn.close()
                return
            worker = threading.Thread(target=serve_one, args=(conn,), daemon=True)
            worker.start()
            workers.append(worker)

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        with contextlib.suppress(OSError), socket.create_connection(listener.getsockname(), 5):
            pass  # wakes the blocking accept() so the loop sees `stop`
        thread.join()
        listener.close()


def request_path(head: bytes) -> str:
    parts = head.split(b"\r\n", 1)[0].split(b" ")
    return parts[1].decode("latin-1") if len(parts) > 1 else ""


def http_answer(status: str, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def jwks_server(jwks_answer: bytes | Callable[[socket.socket], None]) -> Any:
    """A server whose `/` answers `success` like the image and whose `/jwks` is hostile
    (`jwks_answer` is the raw HTTP response, or a function writing it)."""

    def handler(conn: socket.socket, head: bytes) -> None:
        path = request_path(head)
        if not path.endswith("jwks") and "jwks?" not in path:
            conn.sendall(http_answer("200 OK", b"success", "Content-Type: text/plain"))
        elif callable(jwks_answer):
            jwks_answer(conn)
        else:
            conn.sendall(jwks_answer)

    return raw_server(handler)


def kubeconfig(server: str, **user: Any) -> dict[str, Any]:
    """A kubeconfig document for one cluster at `server` (always 127.0.0.1 in tests)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": user or {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }


def billion_laughs(key: str = "label", depth: int = 9, width: int = 9) -> str:
    """Nested anchors and aliases under an allowed key: width**depth strings when expanded."""
    lines = [f"{key}:", f"  a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, depth + 1):
        aliases = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"  a{level}: &a{level} [{aliases}]")
    return "\n".join(lines) + "\n"


class Signer:
    """A P-256 key made with `cryptography` directly, to sign tokens whose header and payload
    are raw bytes (duplicates, NaN, deep nesting) with a signature that really verifies."""

    def __init__(self, kid: str = "k1") -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self.kid = kid
        self._key = ec.generate_private_key(ec.SECP256R1())
        numbers = self._key.private_numbers()
        self.public = {
            "kty": "EC",
            "crv": "P-256",
            "kid": kid,
            "alg": "ES256",
            "use": "sig",
            "x": b64(numbers.public_numbers.x.to_bytes(32, "big")),
            "y": b64(numbers.public_numbers.y.to_bytes(32, "big")),
        }
        self.private = {**self.public, "d": b64(numbers.private_value.to_bytes(32, "big"))}

    def header(self, **extra: Any) -> bytes:
        return dumps({"alg": "ES256", "kid": self.kid, **extra})

    def sign(self, header: bytes, payload: bytes) -> str:
        """A compact JWS over raw header and payload bytes."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        signing_input = f"{b64(header)}.{b64(payload)}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def key_pair_files(folder: Path, signer: Signer | None = None) -> tuple[Path, Path]:
    """A public and a private set in step (one EC key), as `jwks generate` would leave them."""
    signer = signer or Signer("pair-1")
    public, private = folder / "jwks.json", folder / "jwks.private.json"
    public.write_bytes(dumps({"keys": [signer.public]}))
    private.write_bytes(dumps({"keys": [signer.private]}))
    private.chmod(0o600)
    return public, private
