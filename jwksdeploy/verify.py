"""`verify` as Options -> run() -> Result: a live JWKS server's `/` and `/jwks`, optionally
compared with a local file, and optionally a token checked against the served keys as Envoy
would; offline, a token against a local file. No flag parsing and no printing here, and no
HTTP either: probe.py is the one place verify talks to a server.

A check of the server or the file that fails raises at once (nothing after it means
anything); the token's checks are data, passed and failed, in the Result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from .errors import InputError, VerificationFailed
from .token_rules import Check
from .tokens import ENVOY_CLOCK_SKEW, TokenReport, check_token


@dataclass(frozen=True)
class VerifyOptions:
    """What to check; the CLI binds its flags to these fields."""

    url: str | None = None  # the JWKS URL (http(s)); or
    namespace: str | None = None  # the deployment whose URL `locate` looks up
    local_path: str | None = None  # a JWKS the server must serve (offline: the keys)
    token: str | None = None
    issuer: str | None = None  # the token must carry this iss
    audiences: tuple[str, ...] = ()  # the token must carry one of these
    leeway: int = ENVOY_CLOCK_SKEW  # seconds of clock skew on exp/nbf/iat
    request_timeout: float = 5.0  # seconds per request, in total
    ca_file: str | None = None  # the only CA trusted for an https URL

    @property
    def offline(self) -> bool:
        """A token and no server: the token is checked against local_path alone."""
        return self.url is None and self.namespace is None and self.token is not None


@dataclass(frozen=True)
class VerifyResult:
    checks: tuple[Check, ...]  # of the server and the file, in order; every one passed
    notes: tuple[str, ...]  # lint warnings and remarks on the answers, for stderr
    kids: list[Any]  # of the keys checked against
    url: str | None  # the JWKS URL probed; None offline
    local_path: str | None
    token: TokenReport | None  # None: no token given

    @property
    def failure(self) -> VerificationFailed | None:
        """The token's refusal, or None when it verified (or none was given)."""
        if self.token is None or self.token.verified is not None:
            return None
        failed = self.token.failed
        return VerificationFailed(failed.detail if failed else "the token was not verified.")

    def lines(self) -> list[str]:
        """What held, one line each: every check, then which key verified the token."""
        lines = [check.detail for check in self.checks]
        if self.token is not None and self.token.verified is not None:
            lines.append(self.token.summary())
        return lines

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any]
        if self.url is None:
            document = {"file": self.local_path, "kids": self.kids}
        else:
            # a file that was given matched: a mismatch raises before there is a Result
            matches = True if self.local_path is not None else None
            document = {"url": self.url, "kids": self.kids, "matchesLocal": matches}
        if self.token is not None:
            verified = self.token.verified
            document["token"] = self.token.as_json()
            if verified is not None:
                document["token"] = {
                    "kid": verified.kid,
                    "alg": verified.alg,
                    "header": verified.header,
                    "claims": verified.claims,
                    **self.token.as_json(),
                }
        return document


def token_from_stdin(stream: IO[bytes]) -> str:
    """`--token -`: the token piped in, which must not be empty."""
    from .token_commands import read_token_line

    token = read_token_line(stream).strip()
    if not token:
        raise InputError(
            "--token - read no token from stdin. Pipe one in, e.g. "
            "`jwksdeploy token | jwksdeploy verify --url URL --token -`."
        )
    return token


def run(
    options: VerifyOptions, locate: Callable[[], str], now: float | None = None
) -> VerifyResult:
    """Check what options name. `locate` gives the URL to probe (options.url, or the one the
    cluster says for options.namespace) and is called only when verify goes online; `now`
    (default: the clock when the token is checked) is what exp/nbf/iat are compared with."""
    from .files import read_input
    from .jwks import enforce, lint_jwks, parse_jwks

    _check_combination(options)
    path = options.local_path
    local = parse_jwks(read_input(path, "JWKS file"), f"JWKS file {path!r}") if path else None
    if local is not None:
        enforce(lint_jwks(local), strict=False)  # a broken local file is not worth comparing
    url: str | None = None
    notes: list[str] = []
    if options.offline and local is not None:
        served = local
        kids = _kids(served)
        checks = [Check("file", "passed", f"{path} holds {len(kids)} key(s): {_listed(kids)}")]
    else:
        url, served, notes, checks = _probe(options, locate(), local)
        kids = _kids(served)
    report = None
    if options.token is not None:
        moment = time.time() if now is None else now
        report = check_token(
            options.token, served, moment, options.issuer, options.audiences, options.leeway
        )
    return VerifyResult(tuple(checks), tuple(notes), kids, url, path, report)


def _check_combination(options: VerifyOptions) -> None:
    """The flags that only mean something together, before anything is read."""
    if options.token is not None and not options.token.strip():
        raise InputError(
            "--token is empty (an unset $TOKEN?). Pass the JWT to verify, or leave --token out "
            "to check only the endpoint."
        )
    if options.token is None and (options.issuer is not None or options.audiences):
        raise InputError(
            "--issuer and --audience check a token's claims, but no --token was given. Pass "
            "--token, or drop them."
        )
    if options.offline and options.local_path is None:
        raise InputError(
            "--token needs keys to verify against: --jwks FILE (offline, e.g. `jwksdeploy "
            'verify --jwks jwks.json --token "$TOKEN"`), or --url/--namespace for a live server.'
        )


def _probe(
    options: VerifyOptions, given: str, local: dict[str, Any] | None
) -> tuple[str, dict[str, Any], list[str], list[Check]]:
    """(JWKS URL, served set, notes, checks) of the server at `given`."""
    from .probe import check_jwks, check_root, compare_sets, fetch, server_urls, tls_context

    seconds, ca_file = options.request_timeout, options.ca_file
    urls = server_urls(given)
    trust = tls_context(ca_file) if urls.root.startswith("https:") or ca_file else None
    checks = [Check("root", "passed", check_root(fetch(urls.root, seconds, trust)))]
    served, notes = check_jwks(fetch(urls.jwks, seconds, trust))
    kids = _kids(served)
    served_line = f"{urls.jwks} serves {len(kids)} key(s): {_listed(kids)}"
    checks.append(Check("jwks", "passed", served_line))
    if local is not None:
        checks.append(
            Check("local", "passed", compare_sets(served, local, str(options.local_path)))
        )
    return urls.jwks, served, notes, checks


def _kids(document: dict[str, Any]) -> list[Any]:
    return [key.get("kid") for key in document["keys"] if isinstance(key, dict)]


def _listed(kids: list[Any]) -> str:
    return ", ".join(map(json.dumps, kids))
