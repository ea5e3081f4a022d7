"""Small builders shared by the tests: JWKS documents made inline, hostile inputs (secret
markers, signed key pairs, kubeconfigs, exploding YAML), and a CLI runner."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner, Result

from jwksdeploy.cli import cli

if TYPE_CHECKING:
    from .kube import Kube

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


# Builders for hostile input: secrets that are recognisable in any output, key pairs signed
# with `cryptography` directly, kubeconfigs, YAML that explodes when expanded.


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


def corrupt(kube: Kube, plural: str, name: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit an object in the emulator's store behind the API's back (a corrupt answer)."""
    emulator = kube.emulator
    assert emulator is not None
    namespace = None if plural == "nodes" else kube.namespace
    with emulator.lock:
        edit(emulator.store[(plural, namespace, name)].obj)
