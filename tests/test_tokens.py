"""Tokens: minted by `jwksdeploy token`, checked by `jwksdeploy verify` against a live `serve`,
and cross-checked both ways with PyJWT, an independent JOSE implementation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest

from jwksdeploy import keys, tokens
from jwksdeploy.errors import InputError, VerificationFailed
from jwksdeploy.jwks import ALGS_BY_KTY

from .helpers import b64, run, secrets_of, serving

ALL_ALGS = [alg for algs in ALGS_BY_KTY.values() for alg in algs]


def key_files(tmp_path: Path, *args: str) -> tuple[Path, Path, dict[str, Any]]:
    public, private = tmp_path / "jwks.json", tmp_path / "private.json"
    result = run("jwks", "generate", "--out", str(public), "--private-out", str(private), *args)
    assert result.exit_code == 0, result.stderr
    return public, private, json.loads(private.read_text())


def mint(private: Path, *args: str) -> str:
    result = run("token", "--key", str(private), *args)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    token = result.stdout.strip()
    assert result.stdout == token + "\n"  # the token and nothing else
    return token


def cli_verify(url: str, *args: str) -> Any:
    return run("verify", "--url", url, *args)


@pytest.mark.parametrize("alg", ALL_ALGS)
def test_every_algorithm_round_trips_with_an_independent_library(tmp_path: Path, alg: str) -> None:
    public_path, private_path, private = key_files(tmp_path, "--alg", alg)
    [public_key] = json.loads(public_path.read_text())["keys"]
    token = mint(private_path, "--iss", "https://issuer.example", "--aud", "api", "--sub", "u1")

    # Ours -> PyJWT: the header names alg and kid, the claims decode, the signature verifies.
    header = pyjwt.get_unverified_header(token)
    assert (header["alg"], header["kid"], header["typ"]) == (alg, public_key["kid"], "JWT")
    claims = pyjwt.decode(
        token,
        pyjwt.PyJWK(public_key).key,
        algorithms=[alg],
        audience="api",
        issuer="https://issuer.example",
    )
    assert claims["sub"] == "u1" and claims["exp"] - claims["iat"] == 3600

    # PyJWT -> ours, through the CLI against a live `serve`.
    theirs = pyjwt.encode(
        {"iss": "them", "aud": ["x", "api"], "exp": int(time.time()) + 60},
        pyjwt.PyJWK(private["keys"][0]).key,
        algorithm=alg,
        headers={"kid": public_key["kid"]},
    )
    with serving(public_path.read_bytes()) as url:
        for candidate, issuer in ((token, "https://issuer.example"), (theirs, "them")):
            result = cli_verify(
                url,
                "--token",
                candidate,
                "--iss",
                issuer,
                "--aud",
                "api",
                "--jwks",
                str(public_path),
            )
            assert result.exit_code == 0, result.stderr
            assert f'token verified by key "{public_key["kid"]}" ({alg})' in result.stdout
            output = result.stdout + result.stderr
            assert candidate.split(".")[2] not in output  # never the signature
            for secret in secrets_of(private):
                assert secret not in output


@pytest.fixture(scope="module")
def es256(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    return key_files(tmp_path_factory.mktemp("es256"), "--alg", "ES256", "--kid", "current")


@pytest.fixture
def served(es256: tuple[Path, Path, dict[str, Any]]) -> Any:
    with serving(es256[0].read_bytes()) as url:
        yield url


def _tamper(token: str) -> str:
    head, payload, signature = token.split(".")
    flipped = "A" if signature[5] != "A" else "B"
    return ".".join((head, payload, signature[:5] + flipped + signature[6:]))


def _other_alg_same_kid(es256: tuple[Path, Path, dict[str, Any]]) -> str:
    other = keys.generate(keys.key_spec(alg="ES384"), kid="current")
    return pyjwt.encode(
        {"exp": int(time.time()) + 60}, pyjwt.PyJWK(other).key, "ES384", {"kid": "current"}
    )


@pytest.mark.parametrize(
    ("make", "verify_args", "reason"),
    [
        (lambda p, e: _tamper(mint(p)), (), 'signature does not verify with key "current"'),
        (lambda p, e: mint(p, "--header", "kid=retired"), (), 'kid "retired" and alg ES256'),
        (lambda p, e: _other_alg_same_kid(e), (), 'kid "current" and alg ES384'),
        (lambda p, e: mint(p, "--claim", "exp=1000000000"), (), "expired at 2001-09-09T01:46:40Z"),
        (lambda p, e: mint(p, "--nbf", "1h"), (), "not valid before"),
        (lambda p, e: mint(p, "--iss", "a"), ("--iss", "b"), 'issuer is "a", not "b"'),
        (lambda p, e: mint(p, "--aud", "a"), ("--aud", "b"), 'audience "a" is none of "b"'),
        (lambda p, e: mint(p), ("--aud", "b"), "audience null is none of"),
        (lambda p, e: "abc.def", (), "2 dot-separated part(s), not 3"),
        (lambda p, e: "a.b.c.d.e", (), "encrypted JWE"),
    ],
)
def test_each_failure_has_its_own_reason(
    es256: tuple[Path, Path, dict[str, Any]],
    served: str,
    make: Any,
    verify_args: tuple[str, ...],
    reason: str,
) -> None:
    token = make(es256[1], es256)
    result = cli_verify(served, "--token", token, *verify_args)
    assert result.exit_code == 11, result.stdout
    assert reason in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    if token.count(".") == 2 and len(token) > 20:
        assert token.split(".")[2] not in result.stderr


def test_leeway_is_envoys_sixty_seconds(es256: tuple[Path, Path, dict[str, Any]]) -> None:
    document = json.loads(es256[0].read_text())
    now = int(time.time())
    just_expired = mint(es256[1], "--claim", f"exp={now - 30}")
    assert tokens.verify(just_expired, document, now).kid == "current"
    with pytest.raises(VerificationFailed, match="expired"):
        tokens.verify(just_expired, document, now, leeway=0)
    with pytest.raises(VerificationFailed, match="expired"):
        tokens.verify(just_expired, document, now + 31)


def test_alg_none_and_key_confusion_are_refused() -> None:
    rsa = keys.generate(keys.key_spec(alg="RS256"), kid="r")
    document = keys.public_set({"keys": [rsa]})
    header = b64(json.dumps({"alg": "none", "kid": "r"}).encode())
    payload = b64(b'{"sub":"x"}')
    with pytest.raises(VerificationFailed, match='alg is "none"'):
        tokens.verify(f"{header}.{payload}.", document, time.time())
    # HS256 "signed" with the RSA public modulus as the secret: the classic confusion attack.
    secret = {"kty": "oct", "k": rsa["n"]}
    forged = tokens.sign(secret, {"sub": "x"}, {"alg": "HS256", "kid": "r"})
    with pytest.raises(VerificationFailed, match='kid "r" and alg HS256'):
        tokens.verify(forged, document, time.time())


def test_a_token_without_kid_tries_every_matching_key() -> None:
    first, second = (keys.generate(keys.key_spec(), kid=k) for k in "ab")
    document = keys.public_set({"keys": [first, second]})
    token = pyjwt.encode({"exp": int(time.time()) + 60}, pyjwt.PyJWK(second).key, "ES256")
    verified = tokens.verify(token, document, time.time())
    assert (verified.kid, verified.key_index) == ("b", 1)


def test_token_claims_headers_and_key_choice(tmp_path: Path) -> None:
    public, private_path, _ = key_files(tmp_path, "--kid", "old")
    run("jwks", "rotate", "--jwks", str(public), "--private", str(private_path), "--kid", "new")
    token = mint(
        str(private_path),  # type: ignore[arg-type]
        "--aud",
        "a",
        "--aud",
        "b",
        "--ttl",
        "5m",
        "--nbf",
        "now",
        "--claim",
        'roles=["admin"]',
        "--claim",
        "n=3",
        "--claim",
        "note=plain text",
        "--header",
        "x-test=1",
    )
    header = pyjwt.get_unverified_header(token)
    claims = pyjwt.decode(token, options={"verify_signature": False})
    # The active key by default: the new key is `next` until `rotate promote`.
    assert header["kid"] == "old" and header["x-test"] == 1
    assert claims["aud"] == ["a", "b"] and claims["exp"] - claims["iat"] == 300
    assert claims["nbf"] == claims["iat"]
    assert (claims["roles"], claims["n"], claims["note"]) == (["admin"], 3, "plain text")
    older = mint(str(private_path), "--kid", "old")  # type: ignore[arg-type]
    assert pyjwt.get_unverified_header(older)["kid"] == "old"


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("--kid", "nope"), 3, 'no key with kid "nope"'),
        (("--claim", "novalue"), 3, "is not NAME=VALUE"),
        (("--ttl", "soon"), 3, "is not a duration"),
        (("--nbf", "tomorrow"), 3, "is not a time"),
        (("--header", "alg=RS256"), 3, "cannot be used with a EC key"),
    ],
)
def test_token_input_errors(
    es256: tuple[Path, Path, dict[str, Any]], args: tuple[str, ...], code: int, fragment: str
) -> None:
    result = run("token", "--key", str(es256[1]), *args)
    assert result.exit_code == code and fragment in result.stderr and result.stdout == ""


def test_token_refuses_a_public_key(es256: tuple[Path, Path, dict[str, Any]]) -> None:
    result = run("token", "--key", str(es256[0]))
    assert result.exit_code == 3 and "public key and cannot sign" in result.stderr


def test_parse_time_forms() -> None:
    assert tokens.parse_time("now", 1000, "--nbf") == 1000
    assert tokens.parse_time("90s", 1000, "--nbf") == 1090
    assert tokens.parse_time("-1m", 1000, "--nbf") == 940
    assert tokens.parse_time("1767225600", 1000, "--nbf") == 1767225600
    with pytest.raises(InputError):
        tokens.parse_time("1h ago", 1000, "--nbf")


def test_verify_offline_against_a_file_says_what_it_did_not_check(
    es256: tuple[Path, Path, dict[str, Any]],
) -> None:
    public, private, _ = es256
    token = mint(private, "--issuer", "me", "--audience", "api")
    result = run("verify", "--jwks", str(public), "--token", token)
    assert result.exit_code == 0, result.stderr
    first, second = result.stdout.splitlines()[:2]
    assert first == f'ok: {public} holds 1 key(s): "current"'
    assert second == (
        'ok: token verified by key "current" (ES256): signature, exp, iat checked; issuer and '
        "audience not checked: pass --issuer/--audience"
    )
    full = run(
        "verify", "--jwks", str(public), "--token", token, "--issuer", "me", "--audience", "api"
    )
    assert full.exit_code == 0 and "not checked" not in full.stdout
    assert "signature, issuer, exp, iat, audience checked" in full.stdout
    forever = tokens.sign(es256[2]["keys"][0], {"sub": "x"}, {})
    lasting = run("verify", "--jwks", str(public), "--token", forever, "--issuer", "x")
    assert lasting.exit_code == 11  # no iss at all, but --issuer was given
    lasting = run("verify", "--jwks", str(public), "--token", forever)
    assert "; the token has no exp, so it never expires" in lasting.stdout


def test_verify_reports_passed_checks_and_the_failed_one_as_json(
    es256: tuple[Path, Path, dict[str, Any]], served: str
) -> None:
    public, private, _ = es256
    token = mint(private, "--issuer", "me", "--claim", "exp=1000000000")
    for where in (("--jwks", str(public)), ("--url", served)):
        result = run("verify", *where, "--token", token, "--issuer", "me", "-o", "json")
        assert result.exit_code == 11
        assert result.stderr.startswith("error: the token expired at 2001-09-09T01:46:40Z")
        report = json.loads(result.stdout)["token"]
        assert report["ok"] is False
        statuses = [(c["check"], c["status"]) for c in report["checks"]]
        assert statuses[-1] == ("exp", "failed")
        assert ("iss", "passed") in statuses and ("signature", "passed") not in statuses
        assert token.split(".")[2] not in result.stdout
    text = run("verify", "--jwks", str(public), "--token", token)
    assert text.exit_code == 11 and text.stdout == ""


def test_verify_offline_needs_a_key_file() -> None:
    result = run("verify", "--token", "a.b.c")
    assert result.exit_code == 3
    assert "--jwks FILE (offline" in result.stderr and "Traceback" not in result.stderr


def test_token_inspect_prints_unverified_contents_and_times(
    es256: tuple[Path, Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    public, private, _ = es256
    now = 1_767_225_600  # 2026-01-01T00:00:00Z
    monkeypatch.setenv("JWKSDEPLOY_NOW", str(now))
    token = mint(
        private,
        "--issuer",
        "me",
        "--claim",
        f"iat={now - 18 * 60}",
        "--claim",
        f"exp={now + 42 * 60}",
    )
    result = run("token", "inspect", token, "--jwks", str(public))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "header (unverified):" and "claims (unverified):" in lines
    assert "iat: 2025-12-31T23:42:00Z (issued 18m ago)" in lines
    assert "exp: 2026-01-01T00:42:00Z (expires in 42m)" in lines
    assert lines[-1] == f'key: "current" in {public} matches the token\'s kid and alg'
    assert "nothing above is verified" in result.stderr
    signature = token.split(".")[2]
    assert signature not in result.stdout + result.stderr

    monkeypatch.setenv("JWKSDEPLOY_NOW", str(now + 3 * 3600))
    decoded = run("token", "decode", "-", "-o", "json", input=token + "\n")
    assert decoded.exit_code == 0, decoded.stderr
    data = json.loads(decoded.stdout)
    assert data["verified"] is False and data["matchingKeys"] is None
    assert data["header"]["kid"] == "current" and data["claims"]["iss"] == "me"
    assert data["times"]["exp"] == {
        "seconds": now + 42 * 60,
        "utc": "2026-01-01T00:42:00Z",
        "relative": "expired 2h18m ago",
    }
    assert signature not in decoded.stdout


def test_token_inspect_names_no_key_and_refuses_what_is_not_a_token(
    es256: tuple[Path, Path, dict[str, Any]],
) -> None:
    public, private, _ = es256
    stranger = mint(private, "--header", "kid=elsewhere")
    result = run("token", "inspect", stranger, "--jwks", str(public))
    assert result.exit_code == 0
    assert (
        result.stdout.splitlines()[-1] == f"key: no key in {public} matches the token's kid and alg"
    )
    for bad in ("abc", "a.b.c", "e30.e30.e30.e30.e30"):
        refused = run("token", "inspect", bad)
        assert refused.exit_code == 3 and refused.stderr.startswith("error: cannot inspect")
        assert refused.stdout == "" and "Traceback" not in refused.stderr
    odd = tokens.sign(es256[2]["keys"][0], {"nbf": "soon"}, {})
    shown = run("token", "inspect", odd).stdout
    assert 'nbf: the token\'s nbf claim is "soon", not a number of seconds' in shown
    mixed = run("token", "--issuer", "x", "inspect", stranger)
    assert mixed.exit_code == 3 and "takes no signing options (got --issuer)" in mixed.stderr


# ---------------------------------------------------------------------------------------------
# Moved from the hostile suites (issue 9): claims, headers and keys `token` cannot use
# ---------------------------------------------------------------------------------------------
# Each is refused (exit 3 or 4) with one clean line, or kept as RFC 8259 JSON.

import base64  # noqa: E402

from .helpers import Signer, dumps, key_pair_files, marker, private_rsa  # noqa: E402
from .refusals import assert_clean_stderr, assert_refused, invoke, snapshot  # noqa: E402

DEEP = 100_000
EC_PUBLIC = Signer("served").public


@pytest.fixture
def private_key(tmp_path: Path) -> str:
    return str(key_pair_files(tmp_path)[1])


def _payload(token: str) -> Any:
    """The payload of a compact JWS, parsed as strict RFC 8259 JSON."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        assert len(names) == len(set(names)), f"duplicate member names in payload: {names}"
        return dict(pairs)

    def constant(name: str) -> Any:
        raise AssertionError(f"{name} in the token payload")

    part = token.strip().split(".")[1]
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    return json.loads(raw, object_pairs_hook=no_duplicates, parse_constant=constant)


REFUSED_CLAIMS = {
    "exp-nan": ["--claim", "exp=NaN"],
    "exp-infinity": ["--claim", "exp=Infinity"],
    "exp-1e999": ["--claim", "exp=1e999"],
    "exp-400-digits": ["--claim", "exp=" + "9" * 400],
    "exp-string": ["--claim", 'exp="tomorrow"'],
    "nbf-nan": ["--claim", "nbf=NaN"],
    "iat-minus-infinity": ["--claim", "iat=-Infinity"],
    "header-alg-list": ["--header", 'alg=["ES256"]'],
    "header-alg-none": ["--header", "alg=none"],
    "header-alg-other-kty": ["--header", "alg=HS256"],
    "header-kid-list": ["--header", 'kid=["a"]'],
    "header-nan": ["--header", "x=NaN"],
    "header-duplicate": ["--header", 'x={"a":1,"a":2}'],
}


# Claims that are refused, or kept as plain strings: the payload must stay RFC 8259 JSON.
STRING_OR_REFUSED = {
    "x-infinity": ["--claim", "x=Infinity"],
    "x-minus-infinity": ["--claim", "x=-Infinity"],
    "x-nan": ["--claim", "x=NaN"],
    "x-1e999": ["--claim", "x=1e999"],
    "x-5000-digits": ["--claim", "x=" + "7" * 5000],
    "x-duplicate-members": ["--claim", 'x={"a":1,"a":2}'],
    "x-deep": ["--claim", "x=" + "[" * DEEP + "]" * DEEP],
    "x-lone-surrogate": ["--claim", 'x="\\ud800"'],
}


@pytest.mark.usefixtures("in_tmp")
@pytest.mark.parametrize("case", list(REFUSED_CLAIMS))
def test_token_refuses_non_json_claims(case: str, private_key: str, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    out = invoke("token", "--key", private_key, *REFUSED_CLAIMS[case])
    assert_refused(out, 3, before=before, after=snapshot(tmp_path))


@pytest.mark.usefixtures("in_tmp")
@pytest.mark.parametrize("case", list(STRING_OR_REFUSED))
def test_token_claims_stay_json(case: str, private_key: str) -> None:
    out = invoke("token", "--key", private_key, *STRING_OR_REFUSED[case])
    if out.code == 0:
        assert_clean_stderr(out)
        payload = _payload(out.stdout)
        assert isinstance(payload.get("x"), str | list | dict), payload
    else:
        assert_refused(out, 3)


def _key(**members: Any) -> dict[str, Any]:
    return {"kid": "odd", **members}


UNUSABLE_KEYS = {
    "ec-unknown-curve": _key(
        kty="EC", crv="P-999", x=b64(b"\1" * 32), y=b64(b"\2" * 32), d=marker("d")
    ),
    "ec-curve-list": _key(
        kty="EC", crv=["P-256"], x=b64(b"\1" * 32), y=b64(b"\2" * 32), d=marker("d")
    ),
    "okp-unknown-curve": _key(kty="OKP", crv="X999", x=b64(b"\1" * 32), d=marker("d")),
    "unknown-kty": _key(kty="XYZ", d=marker("d"), k=marker("k")),
    "kty-list": _key(kty=["EC"], crv="P-256", d=marker("d")),
    "rsa-markers-not-a-key": private_rsa(kid="odd"),
    "ec-d-not-base64": _key(kty="EC", crv="P-256", x=b64(b"\1" * 32), y=b64(b"\2" * 32), d="!!"),
    "ec-d-number": _key(kty="EC", crv="P-256", x=b64(b"\1" * 32), y=b64(b"\2" * 32), d=12345),
    "oct-k-empty": _key(kty="oct", k="", alg="HS256"),
    "oct-k-list": _key(kty="oct", k=[marker("k")], alg="HS256"),
    "alg-list": _key(kty="oct", k=marker("k"), alg=["HS256"]),
    "public-only": EC_PUBLIC,
}


@pytest.mark.usefixtures("in_tmp")
@pytest.mark.parametrize("case", list(UNUSABLE_KEYS))
def test_token_with_unusable_key(case: str, tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_bytes(dumps({"keys": [UNUSABLE_KEYS[case]]}))
    path.chmod(0o600)
    before = snapshot(tmp_path)
    out = invoke("token", "--key", str(path))
    assert_refused(out, (3, 4), before=before, after=snapshot(tmp_path))
