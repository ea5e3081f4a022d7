"""`verify --through URL`: does the gateway refuse what it must?

Mints a valid token and the bad ones a gateway has to refuse (none, a forged signature under
the same kid, expired, a wrong audience or issuer), sends each through the gateway and judges
its answer: refused means 401 or 403, passed means 2xx. Anything else (a 404 from a wrong
route, a 5xx) is an error, never a pass. Pure but for one HTTP call per case.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import VerificationFailed

REFUSED = (401, 403)
# Far enough past exp for any gateway's clock skew allowance (Envoy's default is 60s).
EXPIRED_AGO = 3600
VALID_FOR = 300
WRONG_AUDIENCE = "jwksdeploy-wrong-audience.invalid"
WRONG_ISSUER = "https://jwksdeploy-wrong-issuer.invalid"


@dataclass(frozen=True)
class Case:
    """One request to send: its token (None: no Authorization header) and what must happen."""

    name: str
    token: str | None
    must_pass: bool

    @property
    def expected(self) -> str:
        return "passed (2xx)" if self.must_pass else "refused (401/403)"


@dataclass(frozen=True)
class Outcome:
    case: str
    expected: str
    got: str  # "401", or why there was no answer
    verdict: str  # "ok", "FAIL" (wrong verdict), "ERROR" (no verdict: 404, 5xx, no answer)

    def as_json(self) -> dict[str, str]:
        return {
            "case": self.case,
            "expected": self.expected,
            "got": self.got,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class ThroughOptions:
    url: str
    private: dict[str, Any]  # the private key set the gateway's JWKS publishes
    source: str  # where it came from, for messages
    issuer: str | None = None
    audiences: tuple[str, ...] = ()
    timeout: float = 5.0
    trust: ssl.SSLContext | None = None
    now: float = 0.0


@dataclass(frozen=True)
class ThroughResult:
    url: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failing(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.verdict != "ok"]


def cases(options: ThroughOptions) -> list[Case]:
    """The valid token and every bad one the options call for, signed with the set's key."""
    from .tokens import build_claims, pick_signing_key, sign

    key = pick_signing_key(options.private, None, options.source)
    now = int(options.now)

    def token(
        signer: dict[str, Any],
        issuer: str | None = options.issuer,
        audiences: tuple[str, ...] = options.audiences,
        issued: int = now,
    ) -> str:
        claims = build_claims(issued, VALID_FOR, issuer, "jwksdeploy-verify-through", audiences)
        return sign(signer, claims, {})

    found = [
        Case("no token", None, must_pass=False),
        Case("valid token", token(key), must_pass=True),
        Case("signed by a key not in the set (same kid)", token(_forger(key)), must_pass=False),
        Case("expired", token(key, issued=now - EXPIRED_AGO - VALID_FOR), must_pass=False),
    ]
    if options.audiences:
        found.append(Case("wrong audience", token(key, audiences=(WRONG_AUDIENCE,)), False))
    if options.issuer is not None:
        found.append(Case("wrong issuer", token(key, issuer=WRONG_ISSUER), False))
    return found


def _forger(key: dict[str, Any]) -> dict[str, Any]:
    """A new key of the same type and alg under the same kid: only the signature tells."""
    from .keys import generate, key_spec
    from .tokens import signing_alg

    spec = key_spec(str(key["kty"]), None, key.get("crv"), signing_alg(key))
    forged = generate(spec, str(key["kid"]) if "kid" in key else None)
    if "kid" not in key:
        forged.pop("kid", None)
    return forged


def judge(case: Case, status: int | None, problem: str = "") -> Outcome:
    """The verdict on one answer: refused is 401/403, passed is 2xx, anything else an error."""
    if status is None:
        return Outcome(case.name, case.expected, problem or "no answer", "ERROR")
    got = str(status)
    passed, refused = 200 <= status < 300, status in REFUSED
    if not passed and not refused:
        return Outcome(case.name, case.expected, got, "ERROR")
    return Outcome(case.name, case.expected, got, "ok" if passed == case.must_pass else "FAIL")


Send = Callable[[str, str | None, float, ssl.SSLContext | None], int]


def run(options: ThroughOptions, send: Send | None = None) -> ThroughResult:
    """Send every case through the gateway and judge each answer."""
    from .checks import check_http_url

    check_http_url(options.url)
    sender = send or send_request
    outcomes = []
    for case in cases(options):
        try:
            status: int | None = sender(options.url, case.token, options.timeout, options.trust)
            outcomes.append(judge(case, status))
        except VerificationFailed as exc:
            outcomes.append(judge(case, None, str(exc)))
    return ThroughResult(options.url, outcomes)


def failure_message(result: ThroughResult) -> str:
    """One paragraph naming every failing case and what to look at."""
    parts = [f"{o.case} (expected {o.expected}, got {o.got})" for o in result.failing]
    return (
        f"the gateway at {result.url} does not enforce the JWT policy as it must: "
        f"{'; '.join(parts)}. A 2xx for a bad token means the route is not protected (check "
        "the policy's target, issuer and audiences); a 404 or 5xx means the URL does not reach "
        "a protected route (check the host, path and the gateway's logs)."
    )


def send_request(url: str, token: str | None, timeout: float, trust: ssl.SSLContext | None) -> int:
    """GET url with the token as a bearer credential; the status code. Never follows
    redirects: a 3xx is judged as what it is."""
    parsed = urllib.parse.urlsplit(url)
    target = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    connection: http.client.HTTPConnection
    if parsed.scheme == "https":
        connection = http.client.HTTPSConnection(
            str(parsed.hostname), parsed.port, timeout=timeout, context=trust
        )
    else:
        connection = http.client.HTTPConnection(str(parsed.hostname), parsed.port, timeout=timeout)
    headers = {"User-Agent": "jwksdeploy-verify-through"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request("GET", target, headers=headers)
        answer = connection.getresponse()
        answer.read(1 << 16)
        return int(answer.status)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        text = getattr(exc, "strerror", None) or type(exc).__name__
        raise VerificationFailed(f"no answer from {url}: {text}") from None
    finally:
        connection.close()
