"""Key generation, rotation and the public projection, through the CLI and the pure functions."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from jwksdeploy import keys
from jwksdeploy.errors import InputError, JwksRejected
from jwksdeploy.jwks import ALGS_BY_KTY, lint_jwks

from .helpers import run, secrets_of

ALL_ALGS = [alg for algs in ALGS_BY_KTY.values() for alg in algs]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def generate_into(tmp_path: Path, *args: str, private: str = "private.json") -> Any:
    """`jwks generate` writing tmp_path/jwks.json and tmp_path/<private>; the raw result."""
    return run(
        "jwks",
        "generate",
        "--out",
        str(tmp_path / "jwks.json"),
        "--private-out",
        str(tmp_path / private),
        *args,
    )


def generate(tmp_path: Path, *args: str) -> tuple[dict[str, Any], dict[str, Any]]:
    result = generate_into(tmp_path, *args)
    assert result.exit_code == 0, result.stderr
    private = load(tmp_path / "private.json")
    for secret in secrets_of(private):
        assert secret not in result.stdout + result.stderr
    return private, load(tmp_path / "jwks.json")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, keys.KeySpec("EC", "ES256", crv="P-256")),
        ({"alg": "HS384"}, keys.KeySpec("oct", "HS384", size=384)),
        ({"kty": "oct", "size": 256, "alg": "HS256"}, keys.KeySpec("oct", "HS256", size=256)),
        ({"kty": "oct", "size": 512}, keys.KeySpec("oct", "HS256", size=512)),
        ({"alg": "PS384"}, keys.KeySpec("RSA", "PS384", size=2048)),
        ({"kty": "RSA", "size": 4096}, keys.KeySpec("RSA", "RS256", size=4096)),
        ({"alg": "ES512"}, keys.KeySpec("EC", "ES512", crv="P-521")),
        ({"crv": "P-384"}, keys.KeySpec("EC", "ES384", crv="P-384")),
        ({"crv": "Ed25519"}, keys.KeySpec("OKP", "EdDSA", crv="Ed25519")),
        ({"kty": "OKP"}, keys.KeySpec("OKP", "EdDSA", crv="Ed25519")),
    ],
)
def test_key_spec_fills_the_gaps(given: dict[str, Any], expected: keys.KeySpec) -> None:
    assert keys.key_spec(**given) == expected


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ({"kty": "RSA", "alg": "ES256"}, "--alg ES256 needs a EC key, not --kty RSA"),
        ({"kty": "oct", "size": 128}, "at least 256 bits"),
        ({"alg": "HS512", "size": 256}, "at least 512 bits"),
        ({"kty": "oct", "size": 260}, "whole number of bytes"),
        ({"kty": "RSA", "size": 1024}, "Use 2048, 3072 or 4096"),
        ({"kty": "EC", "size": 256}, "a EC key's size is its --crv"),
        ({"kty": "RSA", "crv": "P-256"}, "--crv applies to EC and OKP keys"),
        ({"alg": "ES256", "crv": "P-384"}, "P-384 signs ES384"),
        ({"kty": "OKP", "crv": "P-256"}, "Use Ed25519"),
        ({"alg": "none"}, "not a JWS algorithm"),
    ],
)
def test_key_spec_refuses_combinations_that_cannot_work(
    given: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(InputError) as caught:
        keys.key_spec(**given)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("alg", ALL_ALGS)
def test_generate_every_algorithm(tmp_path: Path, alg: str) -> None:
    private, public = generate(tmp_path, "--alg", alg)
    [key] = private["keys"]
    [published] = public["keys"]
    assert key["alg"] == alg and key["use"] == "sig"
    assert keys.has_private_half(key)
    assert key["kid"] == _thumbprint(published)  # RFC 7638
    errors = [f for f in lint_jwks(public) if f.severity == "error"]
    assert errors == []
    assert mode(tmp_path / "private.json") == 0o600
    if key["kty"] == "oct":
        # A shared secret has no public half: the "public" file holds it too, and says so.
        assert published["k"] == key["k"]
        assert mode(tmp_path / "jwks.json") == 0o600
    else:
        assert "d" not in published
        assert mode(tmp_path / "jwks.json") == 0o644


def _thumbprint(key: dict[str, Any]) -> str:
    """RFC 7638 by hand, so the test does not trust the code it checks."""
    import base64
    import hashlib

    required = {"oct": ("k", "kty"), "RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}
    members = required.get(key["kty"], ("crv", "kty", "x"))
    canonical = json.dumps({m: key[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_the_sources_recipe_and_the_default(tmp_path: Path) -> None:
    private, _ = generate(tmp_path, "--kty", "oct", "--size", "256", "--alg", "HS256")
    [key] = private["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("oct", "HS256", "sig")
    assert len(key["k"]) == 43  # 32 bytes, unpadded base64url, like the source's key

    result = run("jwks", "generate", "--out", "-", "--private-out", str(tmp_path / "ec.json"))
    assert result.exit_code == 0, result.stderr
    [public] = json.loads(result.stdout)["keys"]
    assert (public["kty"], public["crv"], public["alg"]) == ("EC", "P-256", "ES256")
    assert "d" not in public


def test_oct_generation_warns_that_both_files_hold_the_secret(tmp_path: Path) -> None:
    result = generate_into(tmp_path, "--alg", "HS256")
    assert "shared secrets" in result.stderr and "mode 0600" in result.stderr


def test_an_explicit_kid(tmp_path: Path) -> None:
    private, public = generate(tmp_path, "--kid", "2026-11")
    assert private["keys"][0]["kid"] == public["keys"][0]["kid"] == "2026-11"


def test_generate_never_clobbers_and_writes_nothing_on_refusal(tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_text("keep me")
    result = generate_into(tmp_path)
    assert result.exit_code == 5
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "jwks.json").read_text() == "keep me"
    assert not (tmp_path / "private.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["jwks.json"]  # no temp files left

    forced = generate_into(tmp_path, "--force")
    assert forced.exit_code == 0, forced.stderr
    assert load(tmp_path / "jwks.json")["keys"][0]["kty"] == "EC"


def test_generate_into_a_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    result = generate_into(tmp_path, private="nope/private.json")
    assert result.exit_code == 5
    assert "nope/private.json" in result.stderr and "Nothing was written" in result.stderr
    assert not (tmp_path / "jwks.json").exists()


def test_the_same_file_for_both_sets_is_refused(tmp_path: Path) -> None:
    same = str(tmp_path / "k.json")
    result = run("jwks", "generate", "--out", same, "--private-out", same)
    assert result.exit_code == 3 and "its own file" in result.stderr


def test_rotation_appends_keeps_the_sets_in_step_and_drops_the_oldest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    public_path, private_path = tmp_path / "jwks.json", tmp_path / "private.json"
    generate(tmp_path, "--alg", "ES384")
    kids = [load(private_path)["keys"][0]["kid"]]
    files = ("--jwks", str(public_path), "--private", str(private_path))
    # `jwks rotate` is `rotate start --local`: each new key must be promoted (after the
    # cache window) before the next rotation, and --keep drops only expired retired keys.
    for hour in range(3):
        monkeypatch.setenv("JWKSDEPLOY_NOW", str(1_800_000_000 + 7200 * hour))
        result = run("jwks", "rotate", *files)
        assert result.exit_code == 0, result.stderr
        kids.append(load(private_path)["keys"][-1]["kid"])
        monkeypatch.setenv("JWKSDEPLOY_NOW", str(1_800_000_000 + 7200 * hour + 1200))
        promoted = run("rotate", "promote", "--local", *files)
        assert promoted.exit_code == 0, promoted.stderr
    private, public = load(private_path), load(public_path)
    # --keep defaults to 2: the newest key plus the one before it.
    assert [k["kid"] for k in private["keys"]] == kids[-2:]
    assert [k["kid"] for k in public["keys"]] == kids[-2:]
    assert all(k["alg"] == "ES384" for k in private["keys"])  # same kind as the newest
    assert all("d" in k for k in private["keys"]) and all("d" not in k for k in public["keys"])
    assert mode(private_path) == 0o600
    assert "dropped the oldest" in result.stderr

    longer = run(
        "jwks",
        "generate",
        "--add-to",
        str(public_path),
        "--private-out",
        str(private_path),
        "--alg",
        "EdDSA",
    )
    assert longer.exit_code == 0, longer.stderr
    assert [k["alg"] for k in load(public_path)["keys"]] == ["ES384", "ES384", "EdDSA"]
    again = run("jwks", "rotate", *files)
    assert again.exit_code == 12 and "already in progress" in again.stderr


def test_rotation_refuses_sets_out_of_step(tmp_path: Path) -> None:
    generate(tmp_path)
    (tmp_path / "other").mkdir()
    generate(tmp_path / "other")
    result = run(
        "jwks",
        "rotate",
        "--jwks",
        str(tmp_path / "other" / "jwks.json"),
        "--private",
        str(tmp_path / "private.json"),
    )
    assert result.exit_code == 3
    assert "out of step" in result.stderr
    before = load(tmp_path / "private.json")
    assert len(before["keys"]) == 1  # nothing written


def test_rotation_needs_the_private_set(tmp_path: Path) -> None:
    generate(tmp_path)
    result = run(
        "jwks",
        "rotate",
        "--jwks",
        str(tmp_path / "jwks.json"),
        "--private",
        str(tmp_path / "missing.json"),
    )
    assert result.exit_code == 3 and "private key set" in result.stderr


def test_public_strips_private_members_and_refuses_secrets(tmp_path: Path) -> None:
    private, _ = generate(tmp_path, "--alg", "RS256")
    result = run("jwks", "public", str(tmp_path / "private.json"))
    assert result.exit_code == 0, result.stderr
    [key] = json.loads(result.stdout)["keys"]
    assert set(key) == {"kty", "use", "alg", "kid", "n", "e"}
    for secret in secrets_of(private):
        assert secret not in result.stdout

    (tmp_path / "hs").mkdir()
    generate(tmp_path / "hs", "--alg", "HS256")
    refused = run("jwks", "public", str(tmp_path / "hs" / "private.json"))
    assert refused.exit_code == 4 and "--include-symmetric" in refused.stderr
    assert refused.stdout == ""
    allowed = run(
        "jwks",
        "public",
        str(tmp_path / "hs" / "private.json"),
        "--include-symmetric",
        "--out",
        str(tmp_path / "sym.json"),
    )
    assert allowed.exit_code == 0 and mode(tmp_path / "sym.json") == 0o600


def test_public_accepts_a_single_jwk(tmp_path: Path) -> None:
    key = keys.generate(keys.key_spec(crv="Ed25519"))
    (tmp_path / "one.json").write_text(json.dumps(key))
    result = run("jwks", "public", str(tmp_path / "one.json"))
    assert json.loads(result.stdout)["keys"][0]["x"] == key["x"]
    assert key["d"] not in result.stdout


def test_check_lists_findings_and_sets_the_exit_code(tmp_path: Path) -> None:
    generate(tmp_path)
    clean = run("jwks", "check", str(tmp_path / "jwks.json"))
    assert clean.exit_code == 0
    assert "1 key(s), 0 error(s), 0 warning(s)" in clean.stdout

    leaked = run("jwks", "check", str(tmp_path / "private.json"))
    assert leaked.exit_code == 4
    assert "[private-key]" in leaked.stdout
    assert load(tmp_path / "private.json")["keys"][0]["d"] not in leaked.stdout + leaked.stderr

    (tmp_path / "hs.json").write_text(
        json.dumps({"keys": [{"kty": "oct", "alg": "HS256", "k": "c2VjcmV0c2VjcmV0c2VjcmV0"}]})
    )
    lenient = run("jwks", "check", str(tmp_path / "hs.json"), "-o", "json")
    assert lenient.exit_code == 0
    codes = {f["code"] for f in json.loads(lenient.stdout)["findings"]}
    assert codes == {"short-hmac-key", "symmetric-key"}
    assert "c2VjcmV0c2VjcmV0c2VjcmV0" not in lenient.stdout
    strict = run("jwks", "check", str(tmp_path / "hs.json"), "--strict")
    assert strict.exit_code == 4 and "under --strict" in strict.stderr


def test_the_generated_set_renders_and_the_private_set_does_not(tmp_path: Path) -> None:
    generate(tmp_path)
    ok = run("render", "--jwks", str(tmp_path / "jwks.json"), "--namespace", "envoy-yang")
    assert ok.exit_code == 0 and "kind: ConfigMap" in ok.stdout
    leaked = run("render", "--jwks", str(tmp_path / "private.json"), "--namespace", "envoy-yang")
    assert leaked.exit_code == 4 and leaked.stdout == ""


def test_public_set_is_pure_and_refuses_oct_by_default() -> None:
    with pytest.raises(JwksRejected):
        keys.public_set({"keys": [keys.generate(keys.key_spec(alg="HS256"))]})


@pytest.mark.parametrize("size", [256, 384, 520, 4096])
def test_oct_keys_without_joserfc_match_what_joserfc_makes_of_them(size: int) -> None:
    """The secret is drawn without joserfc, but kid and members stay what joserfc gives."""
    from joserfc import jwk

    key = keys.generate(keys.key_spec("oct", size))
    members = {name: value for name, value in key.items() if name != "kid"}
    theirs = jwk.import_key(members)
    assert key["kid"] == theirs.thumbprint()
    assert keys.ordered({**theirs.as_dict(private=True), "kid": key["kid"]}) == key
    assert list(key) == ["kty", "use", "alg", "kid", "k"]
    assert len(keys.decode_base64url(key["k"])) == size // 8
