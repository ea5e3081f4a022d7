"""`token` and `token inspect` as Options -> run() -> Result: sign a test JWT with a key file,
or say what a token holds, unverified. No flag parsing and no printing here.

A Result never holds key material; an inspection never holds the token's signature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from .errors import InputError, VerificationFailed

if TYPE_CHECKING:
    from .tokens import Inspection


def read_token_line(stream: IO[bytes]) -> str:
    """One line of a token from a pipe (`-`), read with the size limit a token has."""
    from .tokens import MAX_TOKEN_CHARS

    return stream.readline(MAX_TOKEN_CHARS + 1).decode("utf-8", "replace")


@dataclass(frozen=True)
class SignOptions:
    """What `token` signs and with which key."""

    key_path: str
    kid: str | None = None  # None: the newest key (or the rotation state's active one)
    issuer: str | None = None
    subject: str | None = None
    audiences: tuple[str, ...] = ()
    ttl: float = 3600.0  # seconds: exp = now + ttl
    not_before: str | None = None  # now, seconds since 1970, or an offset such as 5m
    claims: tuple[str, ...] = ()  # NAME=VALUE, the value taken as JSON when it parses
    headers: tuple[str, ...] = ()  # NAME=VALUE, likewise


@dataclass(frozen=True)
class SignResult:
    token: str
    kid: str | None  # of the key that signed
    warning: str | None = None  # the rotation state's, e.g. signing with a `next` key


# Which kid signs, given the key set and the kid asked for, and a warning or None: the
# rotation state's decision (its active key by default). The rotation code owns it.
KidChoice = Callable[[dict[str, Any], "str | None"], "tuple[str | None, str | None]"]


def run_sign(
    options: SignOptions, now: int, choose_kid: KidChoice = lambda document, kid: (kid, None)
) -> SignResult:
    """Build the claims and headers, read the key file, pick the key, sign."""
    from .files import read_input
    from .keys import parse_key_file
    from .tokens import build_claims, parse_pairs_json, parse_time, pick_signing_key, sign

    not_before = (
        parse_time(options.not_before, now, "--nbf") if options.not_before is not None else None
    )
    claims = build_claims(
        now,
        options.ttl,
        options.issuer,
        options.subject,
        options.audiences,
        not_before,
        parse_pairs_json(options.claims, "--claim"),
    )
    headers = parse_pairs_json(options.headers, "--header")
    source = f"key file {options.key_path!r}"
    document = parse_key_file(read_input(options.key_path, "key file"), source)
    kid, warning = choose_kid(document, options.kid)
    key = pick_signing_key(document, kid, source)
    return SignResult(sign(key, claims, headers), key.get("kid"), warning)


@dataclass(frozen=True)
class InspectOptions:
    token: str
    jwks_path: str | None = None  # name the keys in this set that match the token


@dataclass(frozen=True)
class InspectResult:
    inspection: Inspection
    jwks_path: str | None

    @property
    def matches(self) -> list[dict[str, Any]] | None:
        """{index, kid} of each key in the JWKS that matches; None when none was given."""
        found = self.inspection.matches
        return None if found is None else [{"index": i, "kid": kid} for i, kid in found]

    def as_json(self) -> dict[str, Any]:
        seen = self.inspection
        return {
            "verified": False,
            "header": seen.header,
            "claims": seen.claims,
            "times": seen.times,
            "matchingKeys": self.matches,
        }


def run_inspect(options: InspectOptions, now: float) -> InspectResult:
    """Decode the token with verify's strict reader; nothing about it is verified."""
    from .files import read_input
    from .jwks import parse_jwks
    from .tokens import inspect_token

    if not options.token.strip():
        raise InputError("TOKEN is empty (an unset $TOKEN?). Pass the JWT to inspect.")
    path = options.jwks_path
    document = parse_jwks(read_input(path, "JWKS file"), f"JWKS file {path!r}") if path else None
    try:
        seen = inspect_token(options.token, now, document)
    except VerificationFailed as exc:
        raise InputError(f"cannot inspect the token: {exc}") from None
    return InspectResult(seen, path)
