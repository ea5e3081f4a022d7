"""Test tokens: build claims, sign with a private JWK, and verify the way Envoy's jwt_authn does.

Pure: the clock is a parameter and no file or socket is touched. Signatures are joserfc's,
imported lazily. Messages name keys by kid and claims by name; they never carry key material
or a token's signature.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any

from .errors import InputError, VerificationFailed
from .jwks import ALGS_BY_KTY, EC_ALG_BY_CURVE, decode_base64url, key_subject
from .keys import KTY_BY_ALG, has_private_half
from .strictjson import dumps
from .token_rules import Check, Context, check_members, numeric_date, short, when

ENVOY_CLOCK_SKEW = 60  # seconds; jwt_authn's default clock_skew_seconds
MAX_TOKEN_CHARS = 64 * 1024  # above Envoy's default 60 KiB request-header limit
# What joserfc and cryptography raise for a key they cannot use (an unknown curve is a
# KeyError, a point off the curve a ValueError); the key's bytes are never in the text.
KEY_ERRORS: tuple[type[Exception], ...] = (ValueError, TypeError, KeyError, NotImplementedError)


def parse_pairs_json(pairs: tuple[str, ...], flag: str) -> dict[str, Any]:
    """`k=v` pairs; a value that is JSON is taken as JSON (`n=3`, `ok=true`, `r=["a"]`), other
    text as a string. A value Python would read as JSON but RFC 8259 does not (NaN, Infinity,
    duplicate names, huge numbers) is refused: a token must carry JSON every verifier reads."""
    from .strictjson import StrictJsonError, parse

    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise InputError(f"{flag} {pair!r} is not NAME=VALUE. Write it like {flag} role=admin.")
        try:
            out[name] = parse(raw)
        except StrictJsonError as exc:
            if not exc.syntax:
                raise InputError(
                    f"{flag} {name}: the value is not strict JSON ({exc.reason}). Write a JSON "
                    "value, or a JSON string in double quotes."
                ) from None
            out[name] = raw
    return out


def build_claims(
    now: int,
    ttl: float,
    issuer: str | None = None,
    subject: str | None = None,
    audiences: tuple[str, ...] = (),
    not_before: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Registered claims (iss, sub, aud, iat, nbf, exp) then `extra`, which may override them."""
    claims: dict[str, Any] = {}
    if issuer is not None:
        claims["iss"] = issuer
    if subject is not None:
        claims["sub"] = subject
    if audiences:
        claims["aud"] = audiences[0] if len(audiences) == 1 else list(audiences)
    claims["iat"] = now
    if not_before is not None:
        claims["nbf"] = not_before
    claims["exp"] = now + int(ttl)
    claims.update(extra or {})
    _check_json_text(claims, "a claim")
    for name in ("exp", "nbf", "iat"):
        problem = numeric_date(name, claims[name]) if name in claims else 0
        if isinstance(problem, str):
            raise InputError(f"{problem} Pass a number, e.g. --claim {name}=1767225600.")
    return claims


def _check_json_text(value: Any, what: str) -> None:
    """Text from argv that is not UTF-8 cannot go into a token: no verifier would read it."""
    from .strictjson import StrictJsonError, check_values

    try:
        check_values(value)
    except StrictJsonError as exc:
        raise InputError(f"{what} is not valid JSON text: {exc.reason}. Fix the value.") from None


def pick_signing_key(document: dict[str, Any], kid: str | None, source: str) -> dict[str, Any]:
    """The key named by kid, else the newest (last) key, which `jwks rotate` appends."""
    keys = [key for key in document["keys"] if isinstance(key, dict)]
    if kid is not None:
        matches = [key for key in keys if key.get("kid") == kid]
        if not matches:
            known = ", ".join(json.dumps(k.get("kid")) for k in keys if "kid" in k) or "none"
            raise InputError(f"{source} has no key with kid {json.dumps(kid)} (kids: {known}).")
        key = matches[0]
    elif keys:
        key = keys[-1]
    else:
        raise InputError(f"{source} holds no key objects.")
    if not has_private_half(key):
        raise InputError(
            f"{key_subject(key, keys.index(key))} in {source} is a public key and cannot sign. "
            "Pass the private key set (the file `jwksdeploy jwks generate --private PATH` wrote)."
        )
    return key


def signing_alg(key: dict[str, Any], requested: str | None = None) -> str:
    """The key's alg, or the one its type implies; a requested alg must fit the key."""
    kty = str(key.get("kty"))
    default = key.get("alg") or {
        "oct": "HS256",
        "RSA": "RS256",
        "EC": EC_ALG_BY_CURVE.get(str(key.get("crv")), "ES256"),
        "OKP": "EdDSA",
    }.get(kty)
    alg = requested or default
    if not isinstance(alg, str) or alg not in ALGS_BY_KTY.get(kty, ()):
        raise InputError(
            f"alg {short(alg)} cannot be used with a {kty} key. Use one of "
            f"{', '.join(ALGS_BY_KTY.get(kty, ())) or 'nothing: the key type is unknown'}."
        )
    if key.get("alg") and alg != key["alg"]:
        raise InputError(
            f"the key is for {key['alg']}, not {alg}: Envoy only picks a key whose alg matches "
            "the token's. Drop the alg header, or generate a key for that algorithm."
        )
    return str(alg)


def sign(key: dict[str, Any], claims: dict[str, Any], headers: dict[str, Any]) -> str:
    """A compact JWS. The header carries alg and kid so a gateway picks the right key."""
    jose = _jose()
    header: dict[str, Any] = {"typ": "JWT", "alg": signing_alg(key, headers.get("alg"))}
    if "kid" in key:
        header["kid"] = key["kid"]
    if headers:
        header.update({name: value for name, value in headers.items() if name != "alg"})
        _check_json_text(header, "a --header")
        for name in ("kid", "typ", "cty"):
            if name in header and not isinstance(header[name], str):
                raise InputError(
                    f"--header {name} must be a string (RFC 7515), not {short(header[name])}; "
                    "a gateway could never match it. Quote it as a JSON string."
                )
    try:
        imported, model = _prepared_key(key, header["alg"])
        signing_input: bytes = (
            jose.json_b64encode(header)
            + b"."
            + jose.urlsafe_b64encode(dumps(claims, separators=(",", ":")).encode())
        )
        signature: bytes = jose.urlsafe_b64encode(model.sign(signing_input, imported))
    except (jose.JoseError, *KEY_ERRORS) as exc:
        raise InputError(
            f"cannot sign with {key_subject(key, 0)}: {_jose_reason(exc)}. Check the key file "
            "(`jwksdeploy jwks check`)."
        ) from None
    return (signing_input + b"." + signature).decode("ascii")


@dataclass(frozen=True)
class Verified:
    """A token that passed: which key verified it, and what it says."""

    kid: str | None
    key_index: int
    alg: str
    header: dict[str, Any]
    claims: dict[str, Any]


@dataclass(frozen=True)
class TokenReport:
    """Every check run on a token, in order, up to and including the first that failed."""

    checks: tuple[Check, ...]
    verified: Verified | None

    @property
    def failed(self) -> Check | None:
        return next((c for c in self.checks if c.status == "failed"), None)

    def names(self, status: str) -> list[str]:
        return [c.name for c in self.checks if c.status == status]

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.verified is not None, "checks": [c.as_json() for c in self.checks]}

    def summary(self) -> str:
        """Which key verified the token, what was checked, and what was not (and the flag that
        checks it): a green line must not hide that the issuer was never compared."""
        if self.verified is None:
            failed = self.failed
            return f"token refused: {failed.detail if failed else 'not verified'}"
        which = (
            json.dumps(self.verified.kid) if self.verified.kid else f"#{self.verified.key_index}"
        )
        shown = {"iss": "issuer", "aud": "audience", "exp": "exp", "nbf": "nbf", "iat": "iat"}
        checked = ["signature", *(shown[n] for n in self.names("passed") if n in shown)]
        line = f"token verified by key {which} ({self.verified.alg}): {', '.join(checked)} checked"
        unchecked = [shown[n] for n in self.names("not checked") if n in ("iss", "aud")]
        if unchecked:
            flags = "/".join(f"--{name}" for name in unchecked)
            line += f"; {' and '.join(unchecked)} not checked: pass {flags}"
        if "exp" in self.names("not checked"):
            line += "; the token has no exp, so it never expires"
        return line


def verify(
    token: str,
    document: dict[str, Any],
    now: float,
    issuer: str | None = None,
    audiences: tuple[str, ...] = (),
    leeway: int = ENVOY_CLOCK_SKEW,
) -> Verified:
    """Check a token as jwt_authn does (see `check_token`); raise VerificationFailed with the
    reason of the first check that failed."""
    report = check_token(token, document, now, issuer, audiences, leeway)
    if report.verified is None:
        failed = report.failed
        raise VerificationFailed(failed.detail if failed else "the token was not verified.")
    return report.verified


def check_token(
    token: str,
    document: dict[str, Any],
    now: float,
    issuer: str | None = None,
    audiences: tuple[str, ...] = (),
    leeway: int = ENVOY_CLOCK_SKEW,
) -> TokenReport:
    """Shape (three canonical base64url parts of strict JSON), the header and claim table of
    token_rules, then a key whose kid and alg match, then the signature."""
    checks: list[Check] = []

    def stop(name: str, detail: str) -> TokenReport:
        return TokenReport((*checks, Check(name, "failed", detail)), None)

    if len(token) > MAX_TOKEN_CHARS:
        return stop(
            "format",
            f"the token is {len(token)} characters, more than the {MAX_TOKEN_CHARS} a gateway "
            "takes in a header. Pass the compact token only.",
        )
    parts = token.strip().split(".")
    try:
        header, claims = _decode_parts(parts)
    except VerificationFailed as exc:
        return stop("format", str(exc))
    checks.append(Check("format", "passed", "three base64url parts; header and claims JSON"))
    checks.extend(check_members(header, claims, Context(now, leeway, issuer, audiences)))
    if checks[-1].status == "failed":
        return TokenReport(tuple(checks), None)
    alg = str(header["alg"])
    kid = header.get("kid")
    candidates = matching_keys(document, header)
    if not candidates:
        wanted = f"kid {short(kid)} and alg {alg}" if kid is not None else f"alg {alg}"
        return stop(
            "key",
            f"no key in the JWKS matches the token's {wanted} (Envoy: \"Jwks doesn't have key "
            'to match kid or alg from Jwt"). Sign with a key from this set, or publish the '
            "signing key's public half.",
        )
    names = ", ".join(key_subject(key, index) for index, key in candidates)
    checks.append(Check("key", "passed", f"{len(candidates)} candidate(s): {names}"))
    try:
        signature = _canonical_base64url(parts[2], "signature")
    except VerificationFailed as exc:
        return stop("signature", str(exc))
    for index, key in candidates:
        if _signature_ok(parts, signature, key, alg):
            checks.append(Check("signature", "passed", f"verified by {key_subject(key, index)}"))
            return TokenReport(tuple(checks), Verified(key.get("kid"), index, alg, header, claims))
    return stop(
        "signature",
        f'the signature does not verify with {names} (Envoy: "Jwt verification fails"). The '
        "token was altered, or signed by a different key with the same kid.",
    )


def _canonical_base64url(part: str, name: str) -> bytes:
    """RFC 7515 §2 base64url without padding, in its one canonical spelling: a last character
    whose unused bits are set decodes to the same bytes, so a token could be re-spelled
    without its signature changing (a malleable token)."""
    try:
        data = decode_base64url(part)
    except ValueError:
        data = None
    if data is None or base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != part:
        raise VerificationFailed(
            f"the token's {name} is not canonical base64url (RFC 7515 §2: the URL-safe "
            "alphabet, no padding, no unused bits set in the last character). Pass the token "
            "exactly as it was minted."
        )
    return data


def _decode_parts(parts: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    if len(parts) == 5:
        raise VerificationFailed(
            "the token is an encrypted JWE; gateways verify signed JWS tokens (three parts)."
        )
    if len(parts) != 3:
        raise VerificationFailed(
            f'the token has {len(parts)} dot-separated part(s), not 3 (Envoy: "Jwt is not in '
            'the form of Header.Payload.Signature"). Pass the compact token only, without '
            "'Bearer '."
        )
    from .strictjson import StrictJsonError, parse_bytes

    decoded: list[dict[str, Any]] = []
    for name, part in zip(("header", "payload"), parts[:2], strict=True):
        value, reason = None, "not a JSON object"
        try:
            raw = decode_base64url(part)
        except ValueError:
            raw, reason = None, "not base64url"
        if raw is not None:
            _canonical_base64url(part, name)
            try:
                value = parse_bytes(raw)
            except StrictJsonError as exc:
                reason = exc.reason
        if not isinstance(value, dict):
            raise VerificationFailed(
                f"the token's {name} is not base64url-encoded strict JSON object text "
                f'({reason}) (Envoy: "Jwt {name} is an invalid JSON").'
            )
        decoded.append(value)
    return decoded[0], decoded[1]


def matching_keys(document: dict[str, Any], header: dict[str, Any]) -> list[tuple[int, Any]]:
    """(index, key) of every key Envoy would try for a token with this header."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in KTY_BY_ALG:
        return []
    return [
        (index, key)
        for index, key in enumerate(document["keys"])
        if isinstance(key, dict) and _key_matches(key, alg, header.get("kid"))
    ]


@dataclass(frozen=True)
class Inspection:
    """What a token says, unverified: `token inspect` prints it (never the signature)."""

    header: dict[str, Any]
    claims: dict[str, Any]
    times: dict[str, dict[str, Any]]  # exp/nbf/iat -> seconds, UTC, relative to now (or why not)
    matches: list[tuple[int, Any]] | None  # (index, kid) in the given JWKS; None: none given


def inspect_token(token: str, now: float, document: dict[str, Any] | None) -> Inspection:
    """Decode a token (the same strict reader as verify) without checking anything else."""
    header, claims = _decode_parts(token.strip().split("."))
    times: dict[str, dict[str, Any]] = {}
    for name in ("iat", "nbf", "exp"):
        if name not in claims:
            continue
        seconds = numeric_date(name, claims[name])
        if isinstance(seconds, str):
            times[name] = {"refused": seconds}
        else:
            relative = _relative(name, seconds - now)
            times[name] = {"seconds": seconds, "utc": when(seconds), "relative": relative}
    matches = None
    if document is not None:
        matches = [(index, key.get("kid")) for index, key in matching_keys(document, header)]
    return Inspection(header, claims, times, matches)


def _relative(name: str, ahead: float) -> str:
    from .rotation import duration_text

    days, rest = divmod(round(abs(ahead)), 86400)
    span = f"{days}d{rest // 3600}h" if days >= 2 else duration_text(abs(ahead))
    future = ahead > 0
    return {
        "exp": f"expires in {span}" if future else f"expired {span} ago",
        "nbf": f"valid in {span}" if future else f"valid since {span} ago",
        "iat": f"issued {span} in the future" if future else f"issued {span} ago",
    }[name]


def _key_matches(key: dict[str, Any], alg: str, kid: Any) -> bool:
    """jwt_verify_lib's selection: a key's alg (when set) must equal the token's, and when both
    carry a kid they must be equal; the key type must fit the algorithm."""
    if key.get("alg") is not None and key.get("alg") != alg:
        return False
    if kid is not None and key.get("kid") is not None and key.get("kid") != kid:
        return False
    return key.get("kty") == KTY_BY_ALG[alg]


def _signature_ok(parts: list[str], signature: bytes, key: dict[str, Any], alg: str) -> bool:
    """joserfc's algorithm checks the signature; the token's parts were already parsed."""
    try:
        imported, model = _prepared_key(key, alg)
        return bool(model.verify(f"{parts[0]}.{parts[1]}".encode("ascii"), signature, imported))
    except (_jose().JoseError, *KEY_ERRORS):
        return False  # a key joserfc cannot import verifies nothing, as in Envoy


@functools.cache
def _jose() -> Any:
    """joserfc's helpers, imported on first use and then held: a function-level import costs
    about as much as an HMAC, and sign/verify run per request in `serve`."""
    from types import SimpleNamespace

    from joserfc.errors import JoseError
    from joserfc.util import json_b64encode, urlsafe_b64encode

    return SimpleNamespace(
        JoseError=JoseError, json_b64encode=json_b64encode, urlsafe_b64encode=urlsafe_b64encode
    )


_RECENT: dict[tuple[int, str], tuple[dict[str, Any], dict[str, Any], tuple[Any, Any]]] = {}


def _prepared_key(key: dict[str, Any], alg: str) -> tuple[Any, Any]:
    """`_prepared` for a key dict, looked up by identity first: serializing the key to find it
    in the cache would cost as much as an HMAC. The stored copy guards against mutation."""
    slot = (id(key), alg)
    hit = _RECENT.get(slot)
    if hit is not None and hit[0] is key and hit[1] == key:
        return hit[2]
    prepared = _prepared(json.dumps(key, sort_keys=True), alg)
    if len(_RECENT) >= 64:
        _RECENT.clear()
    _RECENT[slot] = (key, copy.deepcopy(key), prepared)
    return prepared


@functools.lru_cache(maxsize=64)
def _prepared(key_json: str, alg: str) -> tuple[Any, Any]:
    """(joserfc key, joserfc algorithm) after joserfc's own key/alg/use compatibility check.

    Cached: validating an RSA private key costs ~40 ms, and `serve` checks every /valid
    request against the same few keys.
    """
    from joserfc import jwk
    from joserfc.jws import JWSRegistry

    with warnings.catch_warnings():
        # joserfc warns that short HMAC secrets are weak (the linter reports that) and that
        # RFC 9864 deprecates the name EdDSA (the only one Envoy knows).
        warnings.simplefilter("ignore")
        imported = jwk.import_key(json.loads(key_json))
        model = JWSRegistry(algorithms=[alg]).get_alg(alg)
    model.check_key(imported)
    return imported, model


def _jose_reason(exc: Exception) -> str:
    """joserfc's error text, which names the problem but never the key bytes."""
    text = getattr(exc, "description", None) or str(exc) or type(exc).__name__
    return str(text).rstrip(".")


def parse_time(text: str, now: int, flag: str) -> int:
    """`now`, seconds since 1970 (`1767225600`), or an offset from now (`5m`, `-30s`)."""
    from .durations import parse_duration

    text = text.strip()
    if text == "now":
        return now
    if re.fullmatch(r"[0-9]{9,11}", text):
        return int(text)
    sign = -1 if text.startswith("-") else 1
    try:
        return now + sign * int(parse_duration(text.lstrip("+-"), flag))
    except InputError:
        raise InputError(
            f"{flag} {text!r} is not a time. Use now, seconds since 1970 (1767225600), or an "
            "offset from now such as 5m or -30s."
        ) from None
