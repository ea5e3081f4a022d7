"""The key and token commands' run()s: what they write, what their Result says (never a
secret), and that the CLI prints exactly that Result."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from jwksdeploy.errors import InputError, JwksRejected
from jwksdeploy.keys import key_spec, public_set
from jwksdeploy.keyset_commands import (
    CheckOptions,
    GenerateOptions,
    PublicOptions,
    run_check,
    run_generate,
    run_public,
)
from jwksdeploy.token_commands import InspectOptions, SignOptions, run_inspect, run_sign
from jwksdeploy.tokens import check_token
from jwksdeploy.writes import OutputFile

from .helpers import ec_key, jwks_bytes, oct_key, run, secrets_of

NOW = 1_767_225_600


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def write(path: Path, *keys: dict[str, Any]) -> str:
    path.write_bytes(jwks_bytes(*keys))
    return str(path)


def test_generate_writes_the_private_set_and_the_public_set_derived_from_it(
    tmp_path: Path,
) -> None:
    private, public = tmp_path / "p.json", tmp_path / "jwks.json"
    options = GenerateOptions(key_spec("EC"), str(private), str(public), kid="k1")
    result = run_generate(options)
    written = json.loads(private.read_text())
    assert mode(private) == 0o600
    assert json.loads(public.read_text()) == public_set(written)
    assert result.key == {"kty": "EC", "alg": "ES256", "kid": "k1", "crv": "P-256"}
    assert result.public_text is None and not result.symmetric


def test_generate_result_never_holds_the_secret_and_stdout_gets_the_public_set(
    tmp_path: Path,
) -> None:
    private = tmp_path / "p.json"
    result = run_generate(GenerateOptions(key_spec("oct"), str(private), "-", kid="o"))
    (secret,) = secrets_of(json.loads(private.read_text()))
    assert secret not in repr(result.key) and result.symmetric
    assert result.public_text is not None
    assert json.loads(result.public_text) == json.loads(private.read_text())  # oct: no halves
    assert not (tmp_path / "-").exists()


def test_generate_writes_the_rotation_record_it_is_given(tmp_path: Path) -> None:
    private, record = tmp_path / "p.json", tmp_path / "p.rotation.json"
    asked: list[tuple[str, str]] = []

    def rotation_record(path: str, kid: str) -> OutputFile:
        asked.append((path, kid))
        return OutputFile(str(record), "{}\n", False)

    options = GenerateOptions(key_spec("oct"), str(private), str(tmp_path / "j.json"), kid="r")
    run_generate(options, rotation_record)
    assert asked == [(str(private), "r")]
    assert record.read_text() == "{}\n"


def test_generate_refuses_one_file_for_both_sets_before_writing(tmp_path: Path) -> None:
    both = str(tmp_path / "both.json")
    with pytest.raises(InputError, match="are both"):
        run_generate(GenerateOptions(key_spec("oct"), both, both))
    assert os.listdir(tmp_path) == []


def test_cli_generate_prints_what_run_generate_reports(tmp_path: Path) -> None:
    private = tmp_path / "p.json"
    result = run(
        "jwks", "generate", "--kty", "oct", "--kid", "c", "--jwks", "-", "--private", str(private)
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == public_set(json.loads(private.read_text()), True)
    assert result.stderr.startswith(f'generated kid "c", HS256, oct: private set {private} ')
    notice = result.stderr.splitlines()[1]
    assert notice.startswith("warning: oct keys are shared secrets: the JWKS on stdout holds")
    assert "mode 0600" not in notice  # what is printed has no file mode


def test_public_strips_and_counts_and_keeps_a_shared_secret_private(tmp_path: Path) -> None:
    source = write(tmp_path / "p.json", ec_key(d="SECRETd", kid="e"), oct_key(kid="o"))
    out = tmp_path / "jwks.json"
    result = run_public(PublicOptions(source, str(out), include_symmetric=True))
    assert (result.keys, result.public_path, result.public_text) == (2, str(out), None)
    assert "SECRETd" not in out.read_text()
    assert mode(out) == 0o600  # it holds the oct secret
    printed = run_public(PublicOptions(source, "-", include_symmetric=True)).public_text
    assert printed == out.read_text()


def test_public_refuses_to_overwrite_its_own_source(tmp_path: Path) -> None:
    source = write(tmp_path / "p.json", ec_key(d="SECRETd"))
    before = Path(source).read_bytes()
    with pytest.raises(InputError, match="are the same file"):
        run_public(PublicOptions(source, source))
    assert Path(source).read_bytes() == before


def test_public_refuses_an_oct_key_unless_told(tmp_path: Path) -> None:
    source = write(tmp_path / "p.json", oct_key(kid="o"))
    with pytest.raises(JwksRejected, match="--include-symmetric"):
        run_public(PublicOptions(source, str(tmp_path / "out.json")))
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize(
    ("keys", "strict", "rejected"),
    [
        ([ec_key(kid="e")], False, None),
        ([ec_key(kid="e", use="enc")], False, None),
        ([ec_key(kid="e", use="enc")], True, "1 warning(s) under --strict"),
        ([{"kty": "EC"}], False, "1 error(s)"),
    ],
)
def test_check_rejects_on_errors_and_on_warnings_only_under_strict(
    tmp_path: Path, keys: list[dict[str, Any]], strict: bool, rejected: str | None
) -> None:
    path = write(tmp_path / "jwks.json", *keys)
    result = run_check(CheckOptions(path, strict))
    rejection = result.rejection()
    assert (rejection is None) == (rejected is None)
    if rejected is not None:
        assert isinstance(rejection, JwksRejected) and rejected in str(rejection)
    assert result.errors + result.warnings == len(result.findings)
    cli = run("jwks", "check", path, "-o", "json", *(["--strict"] if strict else []))
    assert json.loads(cli.stdout) == result.as_json()
    assert cli.exit_code == (4 if rejected else 0)


def test_sign_makes_a_token_that_verifies_with_the_key_chosen(tmp_path: Path) -> None:
    keys = write(tmp_path / "p.json", oct_key(kid="old"), oct_key(size=48, kid="new"))
    asked: list[tuple[list[Any], str | None]] = []

    def choose_kid(document: dict[str, Any], kid: str | None) -> tuple[str | None, str | None]:
        asked.append(([k["kid"] for k in document["keys"]], kid))
        return "old", "signing with old"

    options = SignOptions(keys, kid="new", issuer="me", audiences=("a",), claims=("n=3",))
    result = run_sign(options, NOW, choose_kid)
    assert asked == [(["old", "new"], "new")]
    assert result.kid == "old" and result.warning == "signing with old"
    public = json.loads(Path(keys).read_text())
    report = check_token(result.token, public, NOW, "me", ("a",))
    assert report.verified is not None and report.verified.kid == "old"
    assert report.verified.claims == {
        "iss": "me",
        "aud": "a",
        "iat": NOW,
        "exp": NOW + 3600,
        "n": 3,
    }


def test_sign_without_a_choice_uses_the_kid_asked_for_else_the_newest(tmp_path: Path) -> None:
    keys = write(tmp_path / "p.json", oct_key(kid="old"), oct_key(kid="new"))
    assert run_sign(SignOptions(keys), NOW).kid == "new"
    assert run_sign(SignOptions(keys, kid="old"), NOW).kid == "old"


def test_inspect_says_what_the_token_holds_and_never_its_signature(tmp_path: Path) -> None:
    keys = write(tmp_path / "p.json", oct_key(kid="o"))
    token = run_sign(SignOptions(keys, issuer="me"), NOW).token
    result = run_inspect(InspectOptions(token, keys), NOW + 60)
    document = result.as_json()
    assert document["verified"] is False
    assert document["claims"]["iss"] == "me"
    assert document["times"]["exp"]["relative"] == "expires in 59m"
    assert result.matches == [{"index": 0, "kid": "o"}]
    assert token.rsplit(".", 1)[1] not in json.dumps(document)
    cli = run("token", "inspect", token, "--jwks", keys, "-o", "json")
    assert cli.exit_code == 0, cli.stderr
    assert json.loads(cli.stdout)["matchingKeys"] == result.matches


@pytest.mark.parametrize(
    ("token", "message"),
    [(" \n", "TOKEN is empty"), ("a.b", "cannot inspect the token: the token has 2")],
)
def test_inspect_refuses_what_is_not_a_token(token: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        run_inspect(InspectOptions(token), NOW)
