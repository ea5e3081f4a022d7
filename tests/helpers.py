"""Small builders shared by the tests: JWKS documents made inline, and a CLI runner."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from jwksdeploy.cli import cli

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SOURCE_HS256_K = "veb4HPc6oaEAsCikZ7rzTKmu9LkOU4LpDUKBxFjnBcc"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def oct_key(size: int = 32, alg: str | None = "HS256", **extra: Any) -> dict[str, Any]:
    key: dict[str, Any] = {"kty": "oct", "use": "sig", "k": b64(bytes(range(size)))}
    if alg:
        key["alg"] = alg
    key.update(extra)
    return key


def ec_key(crv: str = "P-256", **extra: Any) -> dict[str, Any]:
    size = {"P-256": 32, "P-384": 48, "P-521": 66, "secp256k1": 32}[crv]
    key = {"kty": "EC", "crv": crv, "x": b64(b"\x01" * size), "y": b64(b"\x02" * size)}
    key.update(extra)
    return key


def rsa_public() -> dict[str, Any]:
    document = json.loads((EXAMPLES / "jwks-rsa.json").read_text())
    key: dict[str, Any] = document["keys"][0]
    return key


def jwks_bytes(*keys: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(keys)}, indent=2).encode()


def run(*args: str, input: bytes | str | None = None) -> Result:
    """Invoke the CLI in-process; stdout and stderr stay separate."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@contextlib.contextmanager
def running(server: Any) -> Iterator[int]:
    """Serve a socketserver-style server from a thread; yield its port; shut it down after."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def serving(jwks: bytes, port: int = 0) -> Iterator[str]:
    """`jwksdeploy serve`'s server on 127.0.0.1 in a thread; yields its /jwks URL."""
    from jwksdeploy.jwks import parse_jwks
    from jwksdeploy.serve import bind

    with running(bind("127.0.0.1", port, jwks, parse_jwks(jwks), io.StringIO())) as bound:
        yield f"http://127.0.0.1:{bound}/jwks"


def secrets_of(document: dict[str, Any]) -> list[str]:
    """Every secret value in a private key set (k, d, and the RSA CRT members)."""
    members = ("k", "d", "p", "q", "dp", "dq", "qi")
    return [key[m] for key in document["keys"] for m in members if m in key]
