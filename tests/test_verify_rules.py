"""The header/claim table of `verify` and `/valid`, case by case against Envoy's jwt_verify_lib
(its rules transcribed below from source/common/jwt/jwt.cc and struct_utils.cc) and PyJWT,
plus a property: whenever we say ok, PyJWT and the Envoy model accept too."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import jwt as pyjwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import get_default_algorithms

from jwksdeploy import keys, tokens
from jwksdeploy.token_rules import ENVOY_ALGS, RULES

from .helpers import b64, oct_key, serving

SECRET = bytes(range(32))
HS_KEY = oct_key(kid="h")
HS_SET = {"keys": [HS_KEY]}
NOW = time.time()


def raw_token(header: dict[str, Any], claims: dict[str, Any], key: Any = SECRET) -> str:
    """A token with exactly this header and these claims, signed by PyJWT's algorithm."""
    alg = header.get("alg", "HS256")
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    algorithm = get_default_algorithms()[alg if isinstance(alg, str) else "HS256"]
    signature = algorithm.sign(signing_input.encode(), algorithm.prepare_key(key))
    return f"{signing_input}.{b64(signature)}"


def envoy_accepts(
    header: dict[str, Any],
    claims: dict[str, Any],
    now: float,
    issuer: str | None = None,
    audience: str | None = None,
) -> bool:
    """jwt_verify_lib's parseFromString + verifyTimeConstraint (skew 60), then jwt_authn's
    issuer and audience checks when a provider configures them."""

    def uint64(value: Any) -> bool:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and 0 <= float(value) < 2.0**64
        )

    if header.get("alg") not in ENVOY_ALGS:
        return False
    if "kid" in header and not isinstance(header["kid"], str):
        return False
    for name in ("iss", "sub", "jti"):
        if name in claims and not isinstance(claims[name], str):
            return False
    for name in ("iat", "nbf", "exp"):
        if name in claims and not uint64(claims[name]):
            return False
    aud = claims.get("aud", [])
    if not isinstance(aud, str) and not (
        isinstance(aud, list) and all(isinstance(a, str) for a in aud)
    ):
        return False
    if issuer is not None and claims.get("iss") != issuer:
        return False
    if audience is not None and audience not in ([aud] if isinstance(aud, str) else aud):
        return False
    exp, nbf = int(claims.get("exp", 0)), int(claims.get("nbf", 0))
    return not (int(now) + 60 < nbf or (exp and int(now) > exp + 60))


def pyjwt_accepts(token: str, issuer: str | None = None, audience: str | None = None) -> bool:
    try:
        pyjwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            issuer=issuer,
            audience=audience,
            leeway=60,
            options={"verify_aud": audience is not None},
        )
    except Exception:  # every PyJWT refusal, and its TypeErrors on odd values
        return False
    return True


def ours(token: str, issuer: str | None = None, audience: str | None = None) -> bool:
    audiences = (audience,) if audience else ()
    return tokens.check_token(token, HS_SET, time.time(), issuer, audiences).verified is not None


HEADER = {"alg": "HS256", "kid": "h"}
FUTURE = int(NOW) + 3600


@pytest.mark.parametrize(
    ("header", "claims", "envoy", "pyjwt_ok", "reason"),
    [
        # Envoy refuses, PyJWT accepts or crashes: Envoy wins.
        ({}, {"exp": None}, False, False, "exp claim is null, not a number"),
        ({}, {"exp": "2000000000"}, False, True, 'exp claim is "2000000000"'),
        ({}, {"iat": "x"}, False, False, 'iat claim is "x"'),
        ({}, {"iat": [1]}, False, False, "iat claim is [1]"),
        ({}, {"nbf": {}}, False, False, "nbf claim is {}"),
        ({}, {"iat": True}, False, True, "iat claim is true"),
        ({}, {"exp": -5}, False, False, "outside 0 to 2^64"),
        ({}, {"nbf": -1}, False, True, "outside 0 to 2^64"),
        ({}, {"exp": 2**64}, False, True, "outside 0 to 2^64"),
        ({}, {"exp": 1.9e19}, False, True, "outside 0 to 2^64"),
        ({}, {"sub": 5}, False, False, "sub claim is 5, not a string"),
        ({}, {"jti": None}, False, False, "jti claim is null"),
        ({}, {"aud": 5}, False, True, "not a string or a list of strings"),
        ({}, {"aud": ["a", 1]}, False, True, "not a string or a list of strings"),
        ({"kid": 7}, {}, False, False, "kid header is 7"),
        # Envoy accepts, the RFCs or PyJWT refuse: the stricter rule wins.
        ({"crit": ["x"], "x": 1}, {}, True, False, "critical extensions"),
        ({"crit": ["b64"], "b64": False}, {}, True, False, "critical extensions"),
        ({"b64": False}, {}, True, False, "sets b64 to false"),
        ({}, {"iat": FUTURE}, True, False, "in the future"),
        ({}, {"exp": 0}, True, False, "expired at 1970-01-01T00:00:00Z"),
    ],
)
def test_each_rule_against_envoy_and_pyjwt(
    header: dict[str, Any], claims: dict[str, Any], envoy: bool, pyjwt_ok: bool, reason: str
) -> None:
    token = raw_token({**HEADER, **header}, claims)
    assert envoy_accepts({**HEADER, **header}, claims, NOW) is envoy
    assert pyjwt_accepts(token) is pyjwt_ok
    report = tokens.check_token(token, HS_SET, time.time())
    assert report.verified is None
    assert report.failed is not None and reason in report.failed.detail
    assert token.split(".")[2] not in report.failed.detail


@pytest.mark.parametrize(
    "claims",
    [{}, {"exp": FUTURE, "iat": int(NOW)}, {"exp": FUTURE + 0.9}, {"nbf": 0}, {"iat": 1.5}],
)
def test_what_all_three_accept(claims: dict[str, Any]) -> None:
    token = raw_token({**HEADER, "b64": True}, claims)
    assert envoy_accepts(HEADER, claims, NOW) and pyjwt_accepts(token) and ours(token)


def test_the_table_covers_envoys_parsed_members_and_algorithms() -> None:
    assert {r.name for r in RULES} >= {"alg", "kid", "iss", "sub", "iat", "nbf", "exp", "jti"}
    assert {"aud", "crit", "b64"} <= {r.name for r in RULES}
    assert set(ENVOY_ALGS) == {
        *("ES256", "ES384", "ES512", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512"),
        *("PS256", "PS384", "PS512", "EdDSA"),
    }
    assert all(r.rule and r.reason for r in RULES)


def _respell_last(part: str) -> str:
    """The same bytes in a non-canonical spelling: set the last character's unused bits."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 0b1111, 3: 0b11}[len(part) % 4]
    return part[:-1] + alphabet[alphabet.index(part[-1]) | unused]


def test_every_part_respelled_in_turn() -> None:
    """Find header/payload/signature lengths with unused bits, so each case really runs."""
    found = set()
    for pad in range(3):
        token = raw_token({**HEADER, "p": "x" * pad}, {"q": "y" * pad})
        parts = token.split(".")
        for which in range(3):
            if len(parts[which]) % 4 and which not in found:
                changed = list(parts)
                changed[which] = _respell_last(parts[which])
                if changed[which] != parts[which]:
                    assert not ours(".".join(changed)), which
                    found.add(which)
    assert found == {0, 1, 2}


def _valid_status(url: str, token: str) -> tuple[int, str]:
    request = urllib.request.Request(
        url.removesuffix("/jwks") + "/valid", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_serves_valid_endpoint_uses_the_same_table() -> None:
    ec = keys.generate(keys.key_spec(alg="ES256"), kid="e")
    private = pyjwt.PyJWK(ec).key
    public = json.dumps(keys.public_set({"keys": [ec]})).encode()
    header = {"alg": "ES256", "kid": "e"}
    with serving(public) as url:
        assert _valid_status(url, raw_token(header, {"exp": FUTURE}, private))[0] == 200
        for extra_header, claims, reason in [
            ({}, {"exp": None}, "exp claim is null"),
            ({}, {"iat": "x"}, 'iat claim is "x"'),
            ({"crit": ["x"]}, {}, "critical extensions"),
            ({"b64": False}, {}, "b64"),
            ({}, {"iat": FUTURE}, "in the future"),
        ]:
            status, body = _valid_status(
                url, raw_token({**header, **extra_header}, claims, private)
            )
            assert status == 401 and reason in body, body


NUMBERS = st.one_of(
    st.sampled_from([-(10**6), -3600, -1, 3600, 10**6]).map(lambda d: int(NOW) + d),
    st.sampled_from([None, "x", "1700000000", [], {}, True, False, -5, 0, 1.5, 2**64, 1e19]),
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
)
STRINGS = st.one_of(
    st.sampled_from(["a", "iss", ""]),
    st.none(),
    st.integers(),
    st.lists(st.text(max_size=2), max_size=2),
)
CLAIMS = st.fixed_dictionaries(
    {},
    optional={
        "exp": NUMBERS,
        "nbf": NUMBERS,
        "iat": NUMBERS,
        "iss": STRINGS,
        "sub": STRINGS,
        "jti": STRINGS,
        "aud": st.one_of(STRINGS, st.lists(st.sampled_from(["a", "b", 1]), max_size=3)),
    },
)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "kid": st.one_of(st.just("h"), st.integers(), st.none()),
        "crit": st.one_of(st.lists(st.sampled_from(["b64", "x", 1]), max_size=2), st.just("b64")),
        "b64": st.sampled_from([True, False, None, "false"]),
        "typ": st.sampled_from(["JWT", "at+jwt"]),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=HEADERS,
    claims=CLAIMS,
    issuer=st.sampled_from([None, "a", "iss"]),
    audience=st.sampled_from([None, "a", "b"]),
)
def test_our_ok_implies_pyjwt_and_envoy_accept(
    header: dict[str, Any], claims: dict[str, Any], issuer: str | None, audience: str | None
) -> None:
    full = {"alg": "HS256", **header}
    token = raw_token(full, claims)
    if ours(token, issuer, audience):
        assert envoy_accepts(full, claims, time.time(), issuer, audience), (full, claims)
        assert pyjwt_accepts(token, issuer, audience), (full, claims)
