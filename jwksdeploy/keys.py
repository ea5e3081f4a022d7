"""Key generation, public projection and the key-pair check: JWK dicts in, JWK dicts out.

No file I/O, but for stat'ing two files to say which changed last when they are out of step.

The cryptography is joserfc's (RFC 7517/7518/7638), imported only when an RSA, EC or OKP key
is generated, so `render`, `--help` and oct secrets never pay for it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import InputError, JwksRejected
from .jwks import (
    ALGS_BY_KTY,
    EC_ALG_BY_CURVE,
    ENVOY_EC_CURVES,
    ENVOY_OKP_CURVES,
    HMAC_MIN_BYTES,
    PRIVATE_MEMBERS,
    decode_base64url,
    key_subject,
    public_members,
)

KTY_BY_ALG = {alg: kty for kty, algs in ALGS_BY_KTY.items() for alg in algs}
RSA_SIZES = (2048, 3072, 4096)
MAX_OCT_BITS = 4096
MEMBER_ORDER = ("kty", "use", "alg", "kid", "crv", "n", "e", "x", "y", "k")


@dataclass(frozen=True)
class KeySpec:
    """What to generate, complete and consistent (see `key_spec`)."""

    kty: str
    alg: str
    size: int | None = None  # bits, for oct and RSA
    crv: str | None = None  # for EC and OKP


def key_spec(
    kty: str | None = None, size: int | None = None, crv: str | None = None, alg: str | None = None
) -> KeySpec:
    """Fill the gaps from what was given; nothing given means ES256 (P-256)."""
    if alg is not None and alg not in KTY_BY_ALG:
        raise InputError(
            f"--alg {alg} is not a JWS algorithm the gateways accept. Use one of "
            f"{', '.join(KTY_BY_ALG)}."
        )
    implied = KTY_BY_ALG[alg] if alg else None
    if kty is not None and implied is not None and kty != implied:
        raise InputError(
            f"--alg {alg} needs a {implied} key, not --kty {kty}. Drop --kty (it follows "
            f"from --alg) or pick an algorithm from {', '.join(ALGS_BY_KTY[kty])}."
        )
    kty = kty or implied or ("EC" if crv in ENVOY_EC_CURVES or crv is None else "OKP")
    if kty in ("oct", "RSA") and crv is not None:
        raise InputError(f"--crv applies to EC and OKP keys, not {kty}. Drop --crv or use --size.")
    if kty in ("EC", "OKP") and size is not None:
        raise InputError(f"--size applies to oct and RSA keys; a {kty} key's size is its --crv.")
    if kty == "oct":
        return _oct_spec(size, alg)
    if kty == "RSA":
        size = size or RSA_SIZES[0]
        if size not in RSA_SIZES:
            raise InputError(
                f"--size {size} is not an RSA size we generate. Use 2048, 3072 or 4096."
            )
        return KeySpec("RSA", alg or "RS256", size=size)
    if kty == "EC":
        by_alg = {a: c for c, a in EC_ALG_BY_CURVE.items()}
        crv = crv or (by_alg[alg] if alg else "P-256")
        if crv not in ENVOY_EC_CURVES:
            raise InputError(
                f"--crv {crv} is not an EC curve Envoy accepts. Use P-256, P-384 or P-521."
            )
        if alg is not None and EC_ALG_BY_CURVE[crv] != alg:
            raise InputError(
                f"--alg {alg} does not sign with curve {crv}; {crv} signs "
                f"{EC_ALG_BY_CURVE[crv]}. Drop one of --alg and --crv."
            )
        return KeySpec("EC", EC_ALG_BY_CURVE[crv], crv=crv)
    crv = crv or "Ed25519"
    if crv not in ENVOY_OKP_CURVES:
        raise InputError(f"--crv {crv} is not an OKP curve Envoy accepts. Use Ed25519.")
    return KeySpec("OKP", "EdDSA", crv=crv)


def _oct_spec(size: int | None, alg: str | None) -> KeySpec:
    alg = alg or "HS256"
    floor = HMAC_MIN_BYTES[alg] * 8
    size = size or floor
    if size % 8 or size < floor or size > MAX_OCT_BITS:
        raise InputError(
            f"--size {size} does not fit {alg}: an HMAC secret must be a whole number of bytes, "
            f"at least {floor} bits (the hash size) and at most {MAX_OCT_BITS}. Use --size {floor}."
        )
    return KeySpec("oct", alg, size=size)


def spec_like(key: dict[str, Any]) -> KeySpec:
    """The spec that generates a key of the same kind (what `jwks rotate` adds by default)."""
    kty = key.get("kty")
    alg = key.get("alg") if isinstance(key.get("alg"), str) and key["alg"] in KTY_BY_ALG else None
    if kty == "oct":
        return key_spec("oct", len(decode_base64url(str(key.get("k", "")))) * 8 or None, None, alg)
    if kty == "RSA":
        bits = int.from_bytes(decode_base64url(str(key.get("n", ""))), "big").bit_length()
        size = min((s for s in RSA_SIZES if s >= bits), default=RSA_SIZES[-1])
        return key_spec("RSA", size, None, alg)
    if kty in ("EC", "OKP"):
        return key_spec(str(kty), None, key.get("crv"), alg)
    return key_spec()


def generate(spec: KeySpec, kid: str | None = None, use: str = "sig") -> dict[str, Any]:
    """A new private JWK with kty, use, alg and kid; kid defaults to the RFC 7638 thumbprint."""
    if kid is not None:
        from .checks import check_text

        if any(not ch.isprintable() for ch in kid):
            raise InputError(
                f"--kid {kid!r} holds control characters; a kid is printed in logs and "
                "messages. Use letters, digits and punctuation."
            )
        if not check_text("--kid", kid).strip():
            raise InputError("--kid is empty. Give a key ID, or leave --kid out for a thumbprint.")
    if spec.kty == "oct":
        members = _oct_members(spec, use)
        members["kid"] = kid if kid is not None else oct_thumbprint(members["k"])
        return ordered(members)
    from joserfc import jwk

    size_or_crv: Any = spec.crv if spec.kty in ("EC", "OKP") else spec.size
    key = jwk.generate_key(spec.kty, size_or_crv, {"use": use, "alg": spec.alg})  # type: ignore[call-overload]
    members = dict(key.as_dict(private=True))
    members["kid"] = kid if kid is not None else key.thumbprint()
    return ordered(members)


def _oct_members(spec: KeySpec, use: str) -> dict[str, Any]:
    """A random HMAC secret as a JWK: os.urandom is what joserfc and `secrets` use too, and
    it spares `jwks generate --kty oct` importing joserfc and cryptography."""
    import os

    secret = os.urandom((spec.size or 0) // 8)
    return {"kty": "oct", "use": use, "alg": spec.alg, "k": _base64url(secret)}


def oct_thumbprint(k: str) -> str:
    """RFC 7638: SHA-256 over the required members (k, kty) as compact JSON, sorted keys."""
    import hashlib

    canonical = json.dumps({"k": k, "kty": "oct"}, separators=(",", ":"), sort_keys=True)
    return _base64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def _base64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def ordered(key: dict[str, Any]) -> dict[str, Any]:
    """Members in a fixed, readable order (kty, use, alg, kid, public, private): stable diffs."""
    rank = {name: index for index, name in enumerate(MEMBER_ORDER)}
    private = set(PRIVATE_MEMBERS.get(str(key.get("kty")), ()))
    return dict(
        sorted(
            key.items(),
            key=lambda item: (item[0] in private, rank.get(item[0], len(rank)), item[0]),
        )
    )


def public_set(document: dict[str, Any], include_symmetric: bool = False) -> dict[str, Any]:
    """The JWKS to publish: every private member stripped; oct keys only when allowed."""
    keys: list[dict[str, Any]] = []
    for index, key in enumerate(document["keys"]):
        if not isinstance(key, dict):
            raise InputError(f"{key_subject(key, index)} is not a JSON object. Fix the key set.")
        if key.get("kty") not in ("oct", "RSA", "EC", "OKP"):
            # Which members are private depends on the kty: refuse rather than guess.
            raise InputError(
                f"{key_subject(key, index)} has no kty of oct, RSA, EC or OKP, so its private "
                "members cannot be told apart. Fix the key set."
            )
        if key.get("kty") == "oct" and not include_symmetric:
            raise JwksRejected(
                f"{key_subject(key, index)} is an oct (shared-secret) key: it has no public half, "
                "so publishing it publishes the secret. Pass --include-symmetric if the gateway "
                "must fetch it anyway, or switch to an EC/RSA key (`jwksdeploy jwks generate`)."
            )
        keys.append(public_members(key))
    return {"keys": keys}


def has_private_half(key: dict[str, Any]) -> bool:
    """True when the key can sign: `d` for RSA/EC/OKP, `k` for oct."""
    return "k" in key if key.get("kty") == "oct" else "d" in key


def refuse_out_of_step(
    private: dict[str, Any], public: dict[str, Any], private_path: str, public_path: str
) -> None:
    """InputError unless every key of the private set can sign and the public set is its
    projection (the same keys in the same order), naming the newer file and the repair, so
    a rotation can never publish a key whose private half was lost, or sign with an
    unpublished one."""
    keys = [key for key in private["keys"] if isinstance(key, dict)]
    for index, key in enumerate(keys):
        if not has_private_half(key):
            raise InputError(
                f"the private set's {key_subject(key, index)} has no private half. Pass the "
                "private key set (the file `jwksdeploy jwks generate --private PATH` wrote)."
            )
    if [public_members(key) for key in keys] == public["keys"]:
        return
    raise InputError(
        f"the public and private key sets are out of step: they must hold the same keys in the "
        f"same order (public {public_path}: {_kids(public['keys'])}; private {private_path}: "
        f"{_kids(keys)}). {out_of_step_detail([private_path, public_path])} If the private set "
        "is the one you want, regenerate the public set from it with `jwksdeploy jwks public "
        f"--private {private_path} --jwks {public_path} --force` (add --include-symmetric for "
        "oct keys); otherwise restore the private set from your backup."
    )


def out_of_step_detail(paths: Sequence[str]) -> str:
    """Which of two files changed last, for an out-of-step refusal."""
    stamps: list[tuple[float, str]] = []
    for path in paths:
        with contextlib.suppress(OSError):
            stamps.append((os.stat(path).st_mtime, path))
    if len(stamps) != 2:
        return ""
    (older_time, older), (newer_time, newer) = sorted(stamps)
    if newer_time == older_time:
        return f"{older} and {newer} were modified at the same time ({_when(newer_time)})."
    return f"{newer} is the newer file (modified {_when(newer_time)}; {older} {_when(older_time)})."


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _kids(keys: list[Any]) -> str:
    return ", ".join(key_subject(key, index) for index, key in enumerate(keys)) or "none"


def to_json(document: dict[str, Any]) -> str:
    """The on-disk form: two-space indented JSON with a final newline."""
    return json.dumps(document, indent=2) + "\n"


def parse_key_file(data: bytes, source: str) -> dict[str, Any]:
    """A JWK set, or a single JWK (wrapped into a set), read strictly and checked like a
    published set except that private members are expected; else InputError."""
    from .jwks import lint_jwks, parse_jwks
    from .strictjson import StrictJsonError, parse_bytes

    try:
        single = parse_bytes(data)
    except StrictJsonError:
        single = None  # parse_jwks reports it
    if isinstance(single, dict) and "kty" in single and "keys" not in single:
        document = {"keys": [single]}
    else:
        document = parse_jwks(data, source)
    # Private material is what a key file holds; `jwks public` strips it, nested or not.
    expected = ("private-key", "nested-key")
    errors = [f for f in lint_jwks(document) if f.severity == "error" and f.code not in expected]
    if errors:
        listed = "; ".join(f"{f.subject}: {f.message} [{f.code}]" for f in errors)
        raise InputError(f"{source} holds keys that cannot be used: {listed}")
    return document
