"""The JWKS checks: parse errors, private material, duplicates and Envoy compatibility."""

from __future__ import annotations

import json

import pytest

from jwksdeploy import jwks
from jwksdeploy.errors import InputError, JwksRejected

from .helpers import ec_key, jwks_bytes, oct_key, rsa_public


def codes(*keys: dict[str, object]) -> list[tuple[str, str]]:
    document = jwks.parse_jwks(jwks_bytes(*keys))
    return [(f.severity, f.code) for f in jwks.lint_jwks(document)]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\xef\xbb\xbf{}", "byte-order mark"),
        (b"\xff\xfe", "not UTF-8"),
        (b"{", "not valid JSON: Expecting property name enclosed in double quotes at line 1"),
        (b"[]", 'must be an object with a "keys" array'),
        (b'{"keys": []}', "empty or non-array"),
        (b'{"keys": {}}', "empty or non-array"),
    ],
)
def test_unparseable_jwks_is_an_input_error(data: bytes, fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        jwks.parse_jwks(data)
    assert fragment in str(caught.value)


def test_public_rsa_key_is_clean() -> None:
    assert codes(rsa_public()) == []


def test_source_hs256_key_only_gets_the_symmetric_warning() -> None:
    assert codes(oct_key()) == [("warning", "symmetric-key")]


@pytest.mark.parametrize(
    ("key", "members"),
    [
        ({**rsa_public(), "d": "AQAB", "p": "AQAB", "qi": "AQAB"}, "d, p, qi"),
        ({**ec_key(), "d": "AQAB"}, "d"),
        ({"kty": "OKP", "crv": "Ed25519", "x": "AQAB", "d": "AQAB"}, "d"),
    ],
)
def test_private_material_is_an_error_naming_key_and_members(
    key: dict[str, object], members: str
) -> None:
    document = jwks.parse_jwks(jwks_bytes({**key, "kid": "signing-1"}))
    findings = jwks.lint_jwks(document)
    private = [f for f in findings if f.code == "private-key"]
    assert len(private) == 1
    assert private[0].severity == "error"
    assert private[0].subject == 'key "signing-1"'
    assert f"({members})" in private[0].message
    assert "jwksdeploy jwks public" in private[0].message


def test_duplicate_kid_is_an_error() -> None:
    found = codes(ec_key(kid="a"), ec_key(kid="a"))
    assert ("error", "duplicate-kid") in found


@pytest.mark.parametrize(
    ("key", "code"),
    [
        (oct_key(alg=None), "oct-without-alg"),
        (oct_key(alg="RS256"), "alg-mismatch"),
        (oct_key(size=16), "short-hmac-key"),
        (oct_key(size=32, alg="HS512"), "short-hmac-key"),
        (ec_key("secp256k1"), "unsupported-curve"),
        (ec_key("P-384", alg="ES256"), "alg-mismatch"),
        ({"kty": "OKP", "crv": "X25519", "x": "AQAB"}, "unsupported-curve"),
        ({"kty": "RSA", "n": "AQAB", "e": "AQAB"}, "weak-rsa"),
        ({**rsa_public(), "use": "enc"}, "not-for-signatures"),
    ],
)
def test_gateway_compatibility_problems_are_warnings(key: dict[str, object], code: str) -> None:
    assert ("warning", code) in codes(key)
    assert all(severity == "warning" for severity, _ in codes(key))


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ({"kty": "DSA"}, "bad-kty"),
        ({"kty": "EC", "crv": "P-256", "x": "AQAB"}, "missing-member"),
        ({"kty": "oct", "k": "not base64!", "alg": "HS256"}, "bad-base64url"),
        ({"kty": "oct", "k": "AQAB=", "alg": "HS256"}, "bad-base64url"),
        (ec_key(x="AQAB"), "bad-coordinate"),
        ({"kty": "RSA", "n": 5, "e": "AQAB"}, "bad-base64url"),
    ],
)
def test_structural_problems_are_errors(key: dict[str, object], code: str) -> None:
    assert ("error", code) in codes(key)


def test_findings_never_echo_secret_values() -> None:
    secret = oct_key(size=8)
    private_ec = {**ec_key(), "d": "c2VjcmV0LWQtdmFsdWUtZG8tbm90LXByaW50"}
    document = jwks.parse_jwks(jwks_bytes(secret, private_ec))
    text = "\n".join(str(f) for f in jwks.lint_jwks(document))
    assert secret["k"] not in text
    assert private_ec["d"] not in text


def test_enforce_raises_on_errors_and_on_warnings_only_when_strict() -> None:
    warn_only = jwks.lint_jwks(jwks.parse_jwks(jwks_bytes(oct_key())))
    assert [f.code for f in jwks.enforce(warn_only, strict=False)] == ["symmetric-key"]
    with pytest.raises(JwksRejected, match="--strict"):
        jwks.enforce(warn_only, strict=True)


def test_public_members_strips_private_members_only() -> None:
    private = {**rsa_public(), "d": "x", "p": "x", "q": "x", "dp": "x", "dq": "x", "qi": "x"}
    assert jwks.public_members(private) == rsa_public()
    assert jwks.public_members(oct_key()) == oct_key()


def test_errors_sort_before_warnings() -> None:
    document = jwks.parse_jwks(json.dumps({"keys": [oct_key(), {"kty": "nope"}]}).encode())
    severities = [f.severity for f in jwks.lint_jwks(document)]
    assert severities == sorted(severities, key=lambda s: s != "error")
    assert severities[0] == "error"
