#!/usr/bin/env python3
"""Benchmark key generation and token signing/verification (run: python bench/keys.py).

(a) Time per key generation for each kty: `jwksdeploy.keys.generate` (which also exports the
    JWK and computes its RFC 7638 thumbprint) vs generating the same key with `cryptography`.
(b) Tokens signed and verified per second for HS256, RS256, ES256 and EdDSA:
    `tokens.sign` / `tokens.verify` (jwt_authn's checks included) vs the same JWT done by hand
    with `cryptography` (JSON, base64url, sign/verify, exp check). Target: under 1.5x.
(c) Whole processes, issue 21's figures: `jwksdeploy token` (ES256) vs PyJWT doing the same,
    `jwks generate --kty oct` vs the same in plain Python (os.urandom, base64, hashlib), and
    `jwks generate` (ES256) vs `cryptography`. The machine may be shared and noisy: the
    ratios from one run hold up far better than the milliseconds.
Cases are interleaved round by round; ratios compare medians from the same invocation.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import REPO, interleave, report, timed

sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from jwksdeploy import keys, tokens


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def unb64(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


def per_call(function: Callable[[], object], seconds: float) -> float:
    """Median seconds per call over batches filling about `seconds`."""
    function()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.05:
        function()
        calls += 1
    batch = max(1, calls)
    samples = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        start = time.perf_counter()
        for _ in range(batch):
            function()
        samples.append((time.perf_counter() - start) / batch)
    return statistics.median(samples)


GENERATORS: dict[str, Callable[[], object]] = {
    "oct 256": lambda: os.urandom(32),
    "RSA 2048": lambda: rsa.generate_private_key(65537, 2048),
    "EC P-256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "OKP Ed25519": lambda: ed25519.Ed25519PrivateKey.generate(),
}
SPECS = {
    "oct 256": keys.key_spec("oct", 256),
    "RSA 2048": keys.key_spec("RSA", 2048),
    "EC P-256": keys.key_spec("EC"),
    "OKP Ed25519": keys.key_spec("OKP"),
}


class DirectJwt:
    """One algorithm's JWT sign/verify written straight against cryptography: the floor."""

    def __init__(self, alg: str, jwk: dict[str, Any]) -> None:
        self.alg = alg
        if alg == "HS256":
            secret = unb64(jwk["k"].encode())
            self._sign = lambda m: _hmac(secret, m)
            self._verify = lambda m, s: _hmac(secret, m) == s
        elif alg == "RS256":
            private = rsa.generate_private_key(65537, 2048)
            public = private.public_key()
            self._sign = lambda m: private.sign(m, padding.PKCS1v15(), hashes.SHA256())
            self._verify = lambda m, s: public.verify(s, m, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
            point = key.public_key()

            def sign(message: bytes) -> bytes:
                r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
                return r.to_bytes(32, "big") + s.to_bytes(32, "big")

            def verify(message: bytes, signature: bytes) -> None:
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                point.verify(der, message, ec.ECDSA(hashes.SHA256()))

            self._sign, self._verify = sign, verify
        else:
            edkey = ed25519.Ed25519PrivateKey.generate()
            self._sign = edkey.sign
            self._verify = lambda m, s: edkey.public_key().verify(s, m)

    def sign(self, claims: dict[str, Any]) -> bytes:
        header = b64(json.dumps({"typ": "JWT", "alg": self.alg, "kid": "k"}).encode())
        payload = b64(json.dumps(claims, separators=(",", ":")).encode())
        message = header + b"." + payload
        return message + b"." + b64(self._sign(message))

    def verify(self, token: bytes) -> dict[str, Any]:
        message, _, signature = token.rpartition(b".")
        header_part, _, payload_part = message.partition(b".")
        json.loads(unb64(header_part))
        claims: dict[str, Any] = json.loads(unb64(payload_part))
        self._verify(message, unb64(signature))
        if claims["exp"] < time.time():
            raise ValueError("expired")
        return claims


def _hmac(secret: bytes, message: bytes) -> bytes:
    mac = hmac.HMAC(secret, hashes.SHA256())
    mac.update(message)
    return mac.finalize()


def in_process(seconds: float) -> None:
    print("\n(a) key generation, per key (ours includes JWK export and the thumbprint)")
    print(f"  {'kty':<14} {'ours':>10} {'cryptography':>14} {'ratio':>7}")
    for name, spec in SPECS.items():
        ours = per_call(lambda spec=spec: keys.generate(spec), seconds)
        floor = per_call(GENERATORS[name], seconds)
        print(f"  {name:<14} {ours * 1e3:>8.3f}ms {floor * 1e3:>12.3f}ms {ours / floor:>6.2f}x")

    print("\n(b) tokens per second (target: ours / direct under 1.5x in time per token)")
    print(f"  {'alg':<7} {'op':<7} {'ours/s':>9} {'direct/s':>10} {'ratio':>7}")
    claims = {"iss": "bench", "aud": "api", "exp": int(time.time()) + 3600}
    worst = 0.0
    for alg in ("HS256", "RS256", "ES256", "EdDSA"):
        for op, ours, floor in _token_rates(alg, claims, seconds):
            worst = max(worst, ours / floor)
            print(f"  {alg:<7} {op:<7} {1 / ours:>9.0f} {1 / floor:>10.0f} {ours / floor:>6.2f}x")
    print(f"  worst ratio: {worst:.2f}x (target < 1.5x)")


def _token_rates(
    alg: str, claims: dict[str, Any], seconds: float
) -> list[tuple[str, float, float]]:
    """(op, our seconds per token, direct seconds per token) for sign and verify."""
    key = keys.generate(keys.key_spec(alg=alg), kid="k")
    document = keys.public_set({"keys": [key]}, include_symmetric=True)
    direct = DirectJwt(alg, key)
    token = tokens.sign(key, claims, {})
    direct_token = direct.sign(claims)
    return [
        (
            "sign",
            per_call(lambda: tokens.sign(key, claims, {}), seconds),
            per_call(lambda: direct.sign(claims), seconds),
        ),
        (
            "verify",
            per_call(
                lambda: tokens.verify(token, document, time.time(), "bench", ("api",)), seconds
            ),
            per_call(lambda: direct.verify(direct_token), seconds),
        ),
    ]


PYJWT_TOKEN = """
import json, time
import jwt
from jwt.algorithms import ECAlgorithm
key = json.load(open({keys!r}))["keys"][0]
now = int(time.time())
private = ECAlgorithm.from_jwk(json.dumps(key))
claims = {{"iat": now, "exp": now + 3600}}
print(jwt.encode(claims, private, "ES256", headers={{"kid": key["kid"]}}))
"""
PLAIN_OCT = """
import base64, hashlib, json, os, sys
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
k = b(os.urandom(32))
canonical = json.dumps({"k": k, "kty": "oct"}, separators=(",", ":"))
kid = b(hashlib.sha256(canonical.encode()).digest())
text = json.dumps({"keys": [{"kty": "oct", "use": "sig", "alg": "HS256", "kid": kid, "k": k}]})
for path in sys.argv[1:]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
"""
DIRECT_GENERATE = """
import json
from cryptography.hazmat.primitives.asymmetric import ec
n = ec.generate_private_key(ec.SECP256R1()).private_numbers()
print(json.dumps({'x': n.public_numbers.x, 'y': n.public_numbers.y, 'd': n.private_value}))
"""
PYJWT = "anchor: PyJWT ES256 token"
PLAIN = "anchor: plain Python oct secret"


def whole_process(runs: int) -> None:
    """Issue 21's figures: `token` (ES256) / PyJWT doing the same (goal <= 1.05x) and
    `jwks generate --kty oct` / the same in plain Python (goal <= 1.5x), pinned to one core
    with taskset where it exists, interleaved round by round."""
    import shutil

    python = sys.executable
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    cli = str(Path(python).parent / "jwksdeploy")
    work = Path(tempfile.mkdtemp(prefix="bench-keys-"))
    key = keys.generate(keys.key_spec(), kid="k")
    private = work / "private.json"
    private.write_text(json.dumps({"keys": [key]}))
    counter = iter(range(10**6))

    # As a user's install runs: with the .pyc files Python writes (an editable checkout run
    # with PYTHONDONTWRITEBYTECODE would compile every module of ours on every run).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def run(command: list[str]) -> tuple[float, float]:
        return timed([*pin, *command], env=env)

    def outputs() -> tuple[str, str]:
        n = next(counter)
        return str(work / f"p{n}.json"), str(work / f"s{n}.json")

    def generate(*kind: str) -> tuple[float, float]:
        public, secret = outputs()
        return run([cli, "jwks", "generate", *kind, "--out", public, "--private-out", secret])

    cases = {
        PYJWT: lambda: run([python, "-c", PYJWT_TOKEN.format(keys=str(private))]),
        "jwksdeploy token (ES256)": lambda: run([cli, "token", "--key", str(private)]),
        PLAIN: lambda: run([python, "-c", PLAIN_OCT, *outputs()]),
        "jwksdeploy jwks generate --kty oct": lambda: generate("--kty", "oct"),
        "direct: cryptography P-256 key": lambda: run([python, "-c", DIRECT_GENERATE]),
        "jwksdeploy jwks generate (ES256)": lambda: generate(),
    }
    results = interleave(runs, cases)
    pinned = "pinned to core 0" if pin else "not pinned (no taskset)"
    title = f"(c) whole processes, {runs} interleaved runs, {pinned}"
    ratios = report(results, PYJWT, title, rss=False)
    oct_ratio = ratios["jwksdeploy jwks generate --kty oct"] / ratios[PLAIN]
    ec_ratio = ratios["jwksdeploy jwks generate (ES256)"] / ratios["direct: cryptography P-256 key"]
    print("\nissue 21's figures (ratios from this run; goal in brackets):")
    print(f"  token (ES256) / PyJWT: {ratios['jwksdeploy token (ES256)']:.2f}x [<= 1.05x]")
    print(f"  jwks generate --kty oct / plain Python: {oct_ratio:.2f}x [<= 1.5x]")
    print(f"  jwks generate (ES256) / cryptography: {ec_ratio:.2f}x")
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="per in-process case")
    parser.add_argument("--runs", type=int, default=10, help="whole-process rounds")
    parser.add_argument("--whole-only", action="store_true", help="skip (a) and (b)")
    args = parser.parse_args()
    if not args.whole_only:
        in_process(args.seconds)
    whole_process(args.runs)


if __name__ == "__main__":
    main()
