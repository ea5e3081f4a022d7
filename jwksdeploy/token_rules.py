"""What a token's header and claims must satisfy, as one table: name -> rule -> reason.

Envoy's jwt_verify_lib (`source/common/jwt/jwt.cc`, `struct_utils.cc`) is the gateway; RFC
7515/7519/7797 and PyJWT are the other references. Where PyJWT or an RFC is stricter than
Envoy we follow the stricter rule, so `verify` and `/valid` never pass a token a gateway or a
common library refuses:
- `iat` in the future: Envoy ignores it, PyJWT refuses it; refused.
- `exp: 0`: Envoy reads it as "no exp"; PyJWT and RFC 7519 read it as long expired; refused.
- `crit`: Envoy ignores it; RFC 7515 §4.1.11 requires refusing extensions one does not
  implement, and we implement none; refused.
- `b64` other than true: Envoy ignores it and reads the payload as base64url; RFC 7797 and
  PyJWT read it unencoded, so the token means two things; refused.
- A fractional NumericDate is truncated to whole seconds, as both Envoy and PyJWT do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .keys import KTY_BY_ALG

# jwt.cc isImplemented(): the same 13 algorithms our key types cover (a test holds them equal).
ENVOY_ALGS = tuple(KTY_BY_ALG)
UINT64_LIMIT = 2.0**64  # jwt_verify_lib's GetUInt64 refuses a double at or above this

Status = Literal["passed", "failed", "not checked"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # the member is absent (unlike JSON null, which is a wrong type)


@dataclass(frozen=True)
class Context:
    """What the checks compare against: the clock, the leeway and the caller's expectations."""

    now: float
    leeway: int
    issuer: str | None
    audiences: tuple[str, ...]


@dataclass(frozen=True)
class Check:
    """One check's outcome, as data: `verify -o json` prints these."""

    name: str
    status: Status
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "detail": self.detail}


Outcome = tuple[Status, str]


@dataclass(frozen=True)
class Rule:
    part: Literal["header", "claims"]
    name: str
    rule: str
    reason: str
    check: Callable[[Any, Context], Outcome]


def short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 60 else text[:57] + "..."


def when(epoch: float) -> str:
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return f"{epoch:g} (seconds since 1970, outside the calendar)"


def _string(name: str, where: str) -> Callable[[Any, Context], Outcome]:
    def check(value: Any, ctx: Context) -> Outcome:
        if value is MISSING:
            return "not checked", "absent"
        if not isinstance(value, str):
            return "failed", (
                f"the token's {name} {'header' if where == 'header' else 'claim'} is "
                f'{short(value)}, not a string (Envoy: "Jwt {where} [{name}] is not a string").'
            )
        return "passed", "a string"

    return check


def _alg(value: Any, ctx: Context) -> Outcome:
    if not isinstance(value, str) or value not in ENVOY_ALGS:
        shown = "absent" if value is MISSING else short(value)
        return "failed", (
            f"the token's alg is {shown}; Envoy accepts only {', '.join(ENVOY_ALGS)} "
            '(Envoy: "Jwt header [alg] is not supported").'
        )
    return "passed", value


def _crit(value: Any, ctx: Context) -> Outcome:
    if value is MISSING:
        return "passed", "absent"
    return "failed", (
        f"the token's header lists critical extensions {short(value)} (crit); RFC 7515 "
        "§4.1.11 requires refusing a token whose crit names an extension the verifier does "
        "not implement, and no gateway implements one. Mint the token without crit."
    )


def _b64(value: Any, ctx: Context) -> Outcome:
    if value is MISSING or value is True:
        return "passed", "absent" if value is MISSING else "true"
    return "failed", (
        f"the token's header sets b64 to {short(value)} (RFC 7797, an unencoded payload): "
        "Envoy reads the payload as base64url anyway, other verifiers do not, so the token "
        "means two things. Mint it without b64."
    )


def numeric_date(name: str, value: Any) -> int | str:
    """jwt_verify_lib's GetUInt64: a JSON number in [0, 2**64), truncated to whole seconds;
    anything else (null, a string, a bool, a list) is the reason it is refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return (
            f"the token's {name} claim is {short(value)}, not a number of seconds since 1970 "
            f'(NumericDate, RFC 7519 §2; Envoy: "Jwt payload [{name}] is not an integer").'
        )
    try:
        number = float(value)
    except OverflowError:
        number = UINT64_LIMIT
    if not 0 <= number < UINT64_LIMIT:
        return (
            f"the token's {name} claim is {short(value)}, outside 0 to 2^64 seconds since 1970 "
            f'(Envoy: "Jwt payload [{name}] is out of range").'
        )
    return int(value)


def _exp(value: Any, ctx: Context) -> Outcome:
    if value is MISSING:
        return "not checked", "absent: the token never expires"
    seconds = numeric_date("exp", value)
    if isinstance(seconds, str):
        return "failed", seconds
    if ctx.now >= seconds + ctx.leeway:  # PyJWT's boundary, a second stricter than Envoy's
        return "failed", (
            f"the token expired at {when(seconds)} ({int(ctx.now - seconds)}s ago, beyond the "
            f'{ctx.leeway}s leeway) (Envoy: "Jwt is expired"). Mint a new one.'
        )
    return "passed", f"expires {when(seconds)}"


def _nbf(value: Any, ctx: Context) -> Outcome:
    if value is MISSING:
        return "not checked", "absent"
    seconds = numeric_date("nbf", value)
    if isinstance(seconds, str):
        return "failed", seconds
    if seconds > ctx.now + ctx.leeway:
        return "failed", (
            f"the token is not valid before {when(seconds)} ({int(seconds - ctx.now)}s from "
            f'now, beyond the {ctx.leeway}s leeway) (Envoy: "Jwt not yet valid").'
        )
    return "passed", f"valid since {when(seconds)}"


def _iat(value: Any, ctx: Context) -> Outcome:
    if value is MISSING:
        return "not checked", "absent"
    seconds = numeric_date("iat", value)
    if isinstance(seconds, str):
        return "failed", seconds
    if seconds > ctx.now + ctx.leeway:
        return "failed", (
            f"the token was issued at {when(seconds)}, {int(seconds - ctx.now)}s in the future "
            f"(beyond the {ctx.leeway}s leeway). Envoy does not look at iat, but PyJWT and most "
            "libraries refuse it; fix the issuer's clock."
        )
    return "passed", f"issued {when(seconds)}"


def _iss(value: Any, ctx: Context) -> Outcome:
    if value is not MISSING and not isinstance(value, str):
        return "failed", (
            f"the token's issuer is {short(value)}, not a string (Envoy: \"Jwt payload [iss] "
            'is not a string").'
        )
    if ctx.issuer is None:
        return "not checked", "no --issuer given"
    if value != ctx.issuer:
        shown = "absent" if value is MISSING else short(value)
        return "failed", (
            f"the token's issuer is {shown}, not {json.dumps(ctx.issuer)} (Envoy: \"Jwt "
            'issuer is not configured"). Mint it with --issuer '
            f"{json.dumps(ctx.issuer)}, or fix --issuer."
        )
    return "passed", json.dumps(value)


def _aud(value: Any, ctx: Context) -> Outcome:
    listed = [value] if isinstance(value, str) else value
    if value is not MISSING and (
        not isinstance(listed, list) or not all(isinstance(a, str) for a in listed)
    ):
        return "failed", (
            f"the token's audience {short(value)} is not a string or a list of strings "
            '(Envoy: "Jwt payload [aud] is not a string or string list").'
        )
    if not ctx.audiences:
        return "not checked", "no --audience given"
    if value is MISSING or not set(ctx.audiences) & set(listed):
        shown = "null" if value is MISSING else short(value)
        return "failed", (
            f"the token's audience {shown} is none of "
            f'{", ".join(json.dumps(a) for a in ctx.audiences)} (Envoy: "Audiences in Jwt are '
            'not allowed"). Mint it with a matching --audience.'
        )
    return "passed", short(value)


RULES: tuple[Rule, ...] = (
    Rule("header", "alg", "one of Envoy's algorithms", "jwt.cc: JwtHeaderBadAlg", _alg),
    Rule("header", "kid", "a string", "jwt.cc: JwtHeaderBadKid", _string("kid", "header")),
    Rule("header", "crit", "absent", "RFC 7515 §4.1.11; Envoy ignores it", _crit),
    Rule("header", "b64", "absent or true", "RFC 7797 §3; PyJWT", _b64),
    Rule("claims", "iss", "a string; equal to --issuer", "jwt.cc; jwt_authn issuer", _iss),
    Rule("claims", "sub", "a string", "jwt.cc: SubNotString", _string("sub", "payload")),
    Rule("claims", "jti", "a string", "jwt.cc: JtiNotString", _string("jti", "payload")),
    Rule("claims", "exp", "NumericDate in [0, 2^64); now < exp + leeway", "jwt.cc; PyJWT", _exp),
    Rule("claims", "nbf", "NumericDate in [0, 2^64); nbf <= now + leeway", "jwt.cc; PyJWT", _nbf),
    Rule("claims", "iat", "NumericDate in [0, 2^64); iat <= now + leeway", "jwt.cc; PyJWT", _iat),
    Rule("claims", "aud", "string or strings; one of --audience", "jwt.cc; check_audience", _aud),
)  # fmt: skip


def check_members(header: dict[str, Any], claims: dict[str, Any], ctx: Context) -> list[Check]:
    """Every rule in table order, stopping after the first failure."""
    checks: list[Check] = []
    for rule in RULES:
        part = header if rule.part == "header" else claims
        status, detail = rule.check(part.get(rule.name, MISSING), ctx)
        checks.append(Check(rule.name, status, detail))
        if status == "failed":
            break
    return checks
