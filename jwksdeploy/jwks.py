"""Read and lint a JWKS: bytes in, a parsed document and findings out. No I/O, no crypto imports.

The rules follow what Envoy's jwt_authn accepts (the gateways we target all embed it) and
what must never be published: private key members.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from typing import Any, Literal

from .errors import InputError, JwksRejected
from .members import (
    REGISTERED_NAMES,
    is_ambiguous,
    is_private_member,
    key_material,
    looks_like_key,
    pointer_token,
    registered_as,
    shown,
)

Severity = Literal["error", "warning"]

REQUIRED_MEMBERS: dict[str, tuple[str, ...]] = {
    "oct": ("k",),
    "RSA": ("n", "e"),
    "EC": ("crv", "x", "y"),
    "OKP": ("crv", "x"),
}
PRIVATE_MEMBERS: dict[str, tuple[str, ...]] = {
    "oct": (),
    "RSA": ("d", "p", "q", "dp", "dq", "qi", "oth"),
    "EC": ("d",),
    "OKP": ("d",),
}
STRING_MEMBERS = ("kty", "alg", "kid", "crv", "use")
BASE64URL_MEMBERS = ("k", "n", "e", "x", "y", "d", "p", "q", "dp", "dq", "qi")

ENVOY_EC_CURVES = ("P-256", "P-384", "P-521")
ENVOY_OKP_CURVES = ("Ed25519",)
EC_COORDINATE_BYTES = {"P-256": 32, "P-384": 48, "P-521": 66}
HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
ALGS_BY_KTY: dict[str, tuple[str, ...]] = {
    "oct": ("HS256", "HS384", "HS512"),
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512"),
    "OKP": ("EdDSA",),
}
EC_ALG_BY_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
MIN_RSA_BITS = 2048

_URL_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


@dataclass(frozen=True)
class Finding:
    """One problem found in a JWKS; `subject` names the key (`key "kid"` or `key #2`)."""

    severity: Severity
    code: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.subject}: {self.message} [{self.code}]"


def parse_jwks(data: bytes, source: str = "the JWKS file") -> dict[str, Any]:
    """Strict JSON (see strictjson) into a JWKS object with a non-empty `keys` list, or
    raise InputError."""
    from .strictjson import StrictJsonError, parse_bytes

    if not data.strip():
        raise InputError(
            f"{source} is empty. Pass the JWKS file, or generate one with "
            "`jwksdeploy jwks generate`."
        )
    try:
        document = parse_bytes(data)
    except StrictJsonError as exc:
        raise InputError(
            f"{source} is not valid JSON: {exc.reason}. "
            'A JWKS is a JSON object like {"keys": [...]}; fix the file or generate one '
            "with `jwksdeploy jwks generate`."
        ) from None
    if not isinstance(document, dict) or "keys" not in document:
        raise InputError(
            f'{source} is JSON but not a JWKS: it must be an object with a "keys" array. '
            'A single JWK can be wrapped as {"keys": [<the key>]}.'
        )
    keys = document["keys"]
    if not isinstance(keys, list) or not keys:
        raise InputError(
            f'{source} has an empty or non-array "keys" member. Add at least one public key, '
            "for example with `jwksdeploy jwks generate`."
        )
    return document


def key_subject(key: Any, index: int) -> str:
    """How findings name a key: by kid when it has a usable one, else by position."""
    if isinstance(key, dict) and isinstance(key.get("kid"), str) and key["kid"]:
        return f"key {json.dumps(key['kid'])}"
    return f"key #{index}"


def decode_base64url(value: str) -> bytes:
    """Decode unpadded base64url (RFC 7515 §2); raise ValueError on anything else."""
    if "=" in value or "+" in value or "/" in value or len(value) % 4 == 1:
        raise ValueError("not base64url")
    data = value.encode("ascii").translate(_URL_TO_STANDARD) + b"=" * (-len(value) % 4)
    try:
        # strict_mode refuses whitespace and any character outside the alphabet.
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


def lint_jwks(document: dict[str, Any]) -> list[Finding]:
    """All findings for a parsed JWKS, errors first, in key order. Never echoes secret values."""
    findings = _set_findings(document)
    seen_kids: dict[str, int] = {}
    for index, key in enumerate(document["keys"]):
        subject = key_subject(key, index)
        if not isinstance(key, dict):
            findings.append(Finding("error", "not-an-object", subject, "is not a JSON object"))
            continue
        kid = key.get("kid")
        if isinstance(kid, str):
            if kid in seen_kids:
                findings.append(
                    Finding(
                        "error",
                        "duplicate-kid",
                        subject,
                        f"has the same kid as key #{seen_kids[kid]}; a gateway cannot tell "
                        "them apart. Give each key a unique kid.",
                    )
                )
            else:
                seen_kids[kid] = index
        findings.extend(_lint_key(key, subject))
    return sorted(findings, key=lambda f: f.severity != "error")


def private_names(key: dict[str, Any]) -> list[str]:
    """The members of a JWK that must never be published, in any spelling (see members)."""
    return [name for name in key if is_private_member(key, name)]


def _lint_key(key: dict[str, Any], subject: str) -> list[Finding]:
    findings: list[Finding] = []
    private = private_names(key)
    if private:
        findings.append(
            Finding(
                "error",
                "private-key",
                subject,
                f"contains private key material ({', '.join(map(shown, private))}). A JWKS "
                "endpoint is public: publishing these lets anyone sign tokens. Deploy only the "
                "public set: `jwksdeploy jwks public --private FILE --jwks public.json`.",
            )
        )
    ambiguous = [
        name
        for name in key
        if name not in private and registered_as(name) in REGISTERED_NAMES and is_ambiguous(name)
    ]
    if ambiguous:
        listed = ", ".join(f"{shown(n)} (read as {registered_as(n)})" for n in ambiguous)
        findings.append(
            Finding(
                "error",
                "ambiguous-member",
                subject,
                f"has {listed}: a case-insensitive reader (Go's encoding/json in the JWKS server "
                "and go-jose) takes each for the registered member, we do not. Spell the "
                "member exactly as registered, or remove it.",
            )
        )
    nested = [
        pointer
        for name, value in key.items()
        if name not in private
        for pointer in key_material(value, f"/{pointer_token(name)}")
    ]
    if nested:
        findings.append(_nested_finding(subject, nested))
    wrong_type = [m for m in STRING_MEMBERS if m in key and not isinstance(key[m], str)]
    if wrong_type:
        findings.append(
            Finding(
                "error",
                "bad-member-type",
                subject,
                f"has {', '.join(wrong_type)} that are not strings; JWK members "
                "kty, alg, kid, crv and use are strings (RFC 7517).",
            )
        )
        return findings
    kty = key.get("kty")
    if kty not in REQUIRED_MEMBERS:
        findings.append(
            Finding(
                "error",
                "bad-kty",
                subject,
                f"has kty {json.dumps(kty)}; it must be one of oct, RSA, EC, OKP.",
            )
        )
        return findings
    missing = [m for m in REQUIRED_MEMBERS[kty] if m not in key]
    if missing:
        findings.append(
            Finding(
                "error",
                "missing-member",
                subject,
                f"is a {kty} key without {', '.join(missing)}.",
            )
        )
    decoded: dict[str, bytes] = {}
    for member in BASE64URL_MEMBERS:
        if member not in key:
            continue
        value = key[member]
        try:
            if not isinstance(value, str):
                raise ValueError("not a string")
            decoded[member] = decode_base64url(value)
        except ValueError:
            findings.append(
                Finding(
                    "error",
                    "bad-base64url",
                    subject,
                    f'member "{member}" is not unpadded base64url text.',
                )
            )
    findings.extend(_gateway_findings(key, kty, subject, decoded))
    return findings


def _gateway_findings(
    key: dict[str, Any], kty: str, subject: str, decoded: dict[str, bytes]
) -> list[Finding]:
    """Warnings for keys Envoy's jwt_authn would reject or that weaken the setup."""
    out: list[Finding] = []
    alg = key.get("alg")
    crv = key.get("crv")

    def warn(code: str, message: str) -> None:
        out.append(Finding("warning", code, subject, message))

    if alg is not None and alg not in ALGS_BY_KTY[kty]:
        warn(
            "alg-mismatch",
            f"has alg {json.dumps(alg)}, which does not fit kty {kty} "
            f"(expected one of {', '.join(ALGS_BY_KTY[kty])}); the gateway will not match it.",
        )
    if kty == "oct":
        if alg is None:
            warn(
                "oct-without-alg",
                "is an oct key without alg; Envoy needs alg HS256, HS384 or HS512 on oct keys.",
            )
        secret = decoded.get("k")
        if secret is not None and alg in HMAC_MIN_BYTES and len(secret) < HMAC_MIN_BYTES[alg]:
            warn(
                "short-hmac-key",
                f"is a {len(secret) * 8}-bit secret for {alg}; use at least "
                f"{HMAC_MIN_BYTES[alg] * 8} bits (`jwksdeploy jwks generate --kty oct "
                f"--size {HMAC_MIN_BYTES[alg] * 8} --alg {alg}`).",
            )
        warn(
            "symmetric-key",
            "is a shared secret: anyone who can reach the JWKS endpoint (a NodePort is open on "
            "every node) can read it and sign tokens. RS256 or ES256 keys keep the signing key "
            "private (`jwksdeploy jwks generate --kty EC`).",
        )
    elif kty == "EC":
        if crv not in ENVOY_EC_CURVES:
            warn(
                "unsupported-curve",
                f"uses curve {json.dumps(crv)}; Envoy accepts only P-256, P-384 and P-521.",
            )
        else:
            size = EC_COORDINATE_BYTES[crv]
            for member in ("x", "y"):
                if member in decoded and len(decoded[member]) != size:
                    out.append(
                        Finding(
                            "error",
                            "bad-coordinate",
                            subject,
                            f'member "{member}" is {len(decoded[member])} bytes; {crv} needs '
                            f"{size}.",
                        )
                    )
            if alg is not None and alg in ALGS_BY_KTY["EC"] and alg != EC_ALG_BY_CURVE[crv]:
                warn(
                    "alg-mismatch",
                    f"has alg {alg} on curve {crv}; {crv} signs {EC_ALG_BY_CURVE[crv]}.",
                )
    elif kty == "OKP":
        if crv not in ENVOY_OKP_CURVES:
            warn(
                "unsupported-curve",
                f"uses curve {json.dumps(crv)}; Envoy accepts only Ed25519 for OKP keys.",
            )
    elif kty == "RSA":
        modulus = decoded.get("n")
        if modulus is not None:
            bits = int.from_bytes(modulus, "big").bit_length()
            if bits < MIN_RSA_BITS:
                warn(
                    "weak-rsa",
                    f"is a {bits}-bit RSA key; use at least {MIN_RSA_BITS} bits.",
                )
    use = key.get("use")
    if use is not None and use != "sig":
        warn("not-for-signatures", f'has use {json.dumps(use)}; JWT validation needs "sig".')
    return out


def enforce(findings: list[Finding], strict: bool) -> list[Finding]:
    """Raise JwksRejected on errors (and on warnings when strict); return the warnings."""
    errors = [f for f in findings if f.severity == "error"]
    warnings = [f for f in findings if f.severity == "warning"]
    blocking = errors + (warnings if strict else [])
    if blocking:
        listed = "; ".join(str(f) for f in blocking)
        why = "warnings are errors under --strict; " if strict and not errors else ""
        raise JwksRejected(
            f"the JWKS has {len(blocking)} problem(s): {listed}. "
            f"Fix the key set and run again ({why}`jwksdeploy jwks check FILE` lists them all)."
        )
    return warnings


def public_members(key: dict[str, Any]) -> dict[str, Any]:
    """A copy of a JWK without its private members (any spelling, whatever the kty; oct keys
    keep `k`: they have no public half) and without members that hold key material."""
    return {
        name: value
        for name, value in key.items()
        if not is_private_member(key, name) and next(key_material(value), None) is None
    }


def _set_findings(document: dict[str, Any]) -> list[Finding]:
    """What beside `keys` a reader could take for keys: another spelling of `keys` (Go's
    reader would read that one), key members, or objects holding key material."""
    subject = "the key set"
    findings: list[Finding] = []
    ambiguous = [name for name in document if name != "keys" and registered_as(name) == "keys"]
    if ambiguous:
        findings.append(
            Finding(
                "error",
                "ambiguous-member",
                subject,
                f'has {", ".join(map(shown, ambiguous))} beside "keys": a case-insensitive '
                "reader (Go's encoding/json in the JWKS server) may read that list instead. "
                'Keep one member spelled exactly "keys".',
            )
        )
    siblings = {name: value for name, value in document.items() if name != "keys"}
    nested = ["/"] if looks_like_key(siblings) else []
    nested += [
        pointer
        for name, value in siblings.items()
        if name not in ambiguous
        for pointer in key_material(value, f"/{pointer_token(name)}")
    ]
    if nested:
        findings.append(_nested_finding(subject, nested))
    return findings


def _nested_finding(subject: str, pointers: list[str]) -> Finding:
    listed = ", ".join(shown(pointer) for pointer in sorted(pointers))
    return Finding(
        "error",
        "nested-key",
        subject,
        f"holds key material outside the keys array at {listed} (an object with a kty or "
        "private members, or a PEM private key). A JWKS publishes only public JWKs in "
        '"keys"; remove it (`jwksdeploy jwks public` strips it from a key).',
    )
