"""Small builders shared by the tests: JWKS documents made inline, and a CLI runner."""

from __future__ import annotations

import base64
import json
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
