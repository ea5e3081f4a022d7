"""Private members in any spelling, private keys nested anywhere, and secrets in `diff`
(issue 22, items 1-3), plus YAML-only line breaks in what we write (item 11).

The rule lives in jwksdeploy/members.py; every reader that publishes (render, serve, `jwks
public`, `jwks check`, verify) and the diff redactor use it. Each repro goes through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jwksdeploy import jwks, members
from jwksdeploy.diff import compare, redact, to_yaml
from jwksdeploy.errors import VerificationFailed
from jwksdeploy.probe import Response, check_jwks

from .helpers import EXAMPLES, b64, ec_key, oct_key, rsa_public, run
from .kube import Kube

SECRET = b64(b"private-value-that-must-never-print!")  # 48 characters, base64url
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def private_ec(name: str = "d", value: str = SECRET) -> dict[str, Any]:
    return {**ec_key(kid="signing-1", alg="ES256", use="sig"), name: value}


def write(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document, indent=2))
    return str(path)


def assert_secret_not_in(*texts: str, secret: str = SECRET) -> None:
    for text in texts:
        assert secret not in text
        assert "\x1b" not in text


# --- 1. private members in any spelling -----------------------------------------------------

SPELLINGS = [
    "D",  # Go's encoding/json matches member names case-insensitively
    "DP",
    "Dq",
    "QI",
    "OTH",
    "K",  # k outside an oct key
    "\u212a",  # KELVIN SIGN: Go folds it to k, NFKC makes it K
    "\uff44",  # FULLWIDTH d: NFKC makes it d
    "q\u0131",  # dotless i: Go's fold (upper of lower) makes it QI
    "Q\u0130",  # dotted capital I: its simple lowercase is i
    "d\u00ad",  # a soft hyphen, which NFKC_Casefold drops
    "\U0001d41d",  # MATHEMATICAL BOLD SMALL D
    "PRIV",
]


@pytest.mark.parametrize("name", SPELLINGS)
def test_check_finds_a_private_member_in_any_spelling(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / "jwks.json", {"keys": [private_ec(name)]})
    result = run("jwks", "check", path)
    assert result.exit_code == 4, result.output
    assert "[private-key]" in result.stdout and "0 error(s)" not in result.stdout
    assert members.shown(name) in result.stdout  # named, escaped, never its value
    assert_secret_not_in(result.stdout, result.stderr)
    as_json = run("jwks", "check", path, "-o", "json")
    assert next(f["code"] for f in json.loads(as_json.stdout)["findings"]) == "private-key"


@pytest.mark.parametrize("name", ["D", "\u212a", "QI"])
def test_render_and_serve_refuse_a_private_member_in_any_spelling(
    tmp_path: Path, name: str
) -> None:
    path = write(tmp_path / "jwks.json", {"keys": [private_ec(name)]})
    rendered = run("render", "--jwks", path)
    assert rendered.exit_code == 4 and rendered.stdout == ""
    assert "private key material" in rendered.stderr and "Traceback" not in rendered.stderr
    # serve lints before it binds: refused, nothing served.
    served = run("serve", "--jwks", path, "--listen", "127.0.0.1", "--port", "0")
    assert served.exit_code == 4 and "private key material" in served.stderr
    assert_secret_not_in(rendered.stdout, rendered.stderr, served.stdout, served.stderr)


@pytest.mark.parametrize("name", ["D", "\u212a", "QI", "\uff44"])
def test_jwks_public_strips_a_private_member_in_any_spelling(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / "private.json", {"keys": [private_ec(name)]})
    result = run("jwks", "public", path)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"keys": [ec_key(kid="signing-1", alg="ES256", use="sig")]}
    assert_secret_not_in(result.stdout, result.stderr)


def test_verify_refuses_a_served_set_with_a_private_member_in_any_spelling() -> None:
    body = json.dumps({"keys": [private_ec("D")]}).encode()
    answer = Response("http://127.0.0.1:1/jwks", 200, "application/json", body)
    with pytest.raises(VerificationFailed) as refused:
        check_jwks(answer)
    assert "private-key" in str(refused.value) and SECRET not in str(refused.value)


@pytest.mark.parametrize(
    ("key", "name", "registered"),
    [
        ({**oct_key(), "K": SECRET}, "K", "k"),  # Go reads it as the oct secret
        ({**oct_key(), "\u212a": SECRET}, "\u212a", "k"),
        ({**ec_key(), "KTY": "oct"}, "KTY", "kty"),  # changes a Go reader's idea of the type
        ({**ec_key(), "Kid": "a"}, "Kid", "kid"),
        ({**ec_key(), "x5t#s256": "a"}, "x5t#s256", "x5t#S256"),
        ({**ec_key(), "u\u017fe": "sig"}, "u\u017fe", "use"),  # long s folds to s
    ],
)
def test_another_spelling_of_a_registered_member_is_ambiguous(
    key: dict[str, Any], name: str, registered: str
) -> None:
    findings = jwks.lint_jwks({"keys": [key]})
    [ambiguous] = [f for f in findings if f.code == "ambiguous-member"]
    assert ambiguous.severity == "error"
    assert f"{members.shown(name)} (read as {registered})" in ambiguous.message
    assert SECRET not in str(ambiguous)


def test_jwks_public_refuses_an_oct_key_whose_secret_is_spelled_k_otherwise(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "private.json", {"keys": [{**oct_key(), "K": SECRET}]})
    result = run("jwks", "public", path, "--include-symmetric")
    assert result.exit_code == 3 and result.stdout == ""
    assert "ambiguous-member" in result.stderr
    assert_secret_not_in(result.stdout, result.stderr)


def test_kty_is_compared_after_json_decoding(tmp_path: Path) -> None:
    key = oct_key(kid="h")
    text = json.dumps({"keys": [key]}).replace('"oct"', '"\\u006fct"')
    path = tmp_path / "jwks.json"
    path.write_text(text)
    result = run("jwks", "check", str(path))
    assert "private-key" not in result.stdout and "symmetric-key" in result.stdout
    # ...and `OCT` is not oct: its k is private.
    upper = jwks.lint_jwks({"keys": [{**key, "kty": "OCT"}]})
    assert "private-key" in [f.code for f in upper]


# --- 2. private JWKs nested elsewhere -------------------------------------------------------

NESTINGS: list[tuple[str, Any]] = [
    ("jwk", lambda leaked: {"keys": [{**ec_key(), "jwk": leaked}]}),
    ("extension", lambda leaked: {"keys": [{**ec_key(), "x-backup": {"old": [leaked]}}]}),
    ("x5c", lambda leaked: {"keys": [{**ec_key(), "x5c": [leaked]}]}),
    ("beside keys", lambda leaked: {"keys": [ec_key()], "backup": leaked}),
    ("in a list beside keys", lambda leaked: {"keys": [ec_key()], "more": [[leaked]]}),
    ("KEYS", lambda leaked: {"keys": [ec_key()], "KEYS": [leaked]}),
    ("as JSON text", lambda leaked: {"keys": [{**ec_key(), "x-note": json.dumps(leaked)}]}),
    ("top-level d", lambda leaked: {"keys": [ec_key()], "d": SECRET}),
]


@pytest.mark.parametrize(("where", "build"), NESTINGS, ids=[n for n, _ in NESTINGS])
def test_a_nested_private_key_is_refused_by_check_render_and_serve(
    tmp_path: Path, where: str, build: Any
) -> None:
    path = write(tmp_path / "jwks.json", build(private_ec()))
    checked = run("jwks", "check", path)
    assert checked.exit_code == 4, checked.stdout
    assert "[nested-key]" in checked.stdout or "[ambiguous-member]" in checked.stdout
    rendered = run("render", "--jwks", path)
    assert rendered.exit_code == 4 and rendered.stdout == ""
    served = run("serve", "--jwks", path, "--listen", "127.0.0.1", "--port", "0")
    assert served.exit_code == 4
    assert_secret_not_in(checked.stdout, rendered.stderr, served.stderr)


@pytest.mark.parametrize(("where", "build"), NESTINGS, ids=[n for n, _ in NESTINGS])
def test_jwks_public_publishes_no_nested_private_key(
    tmp_path: Path, where: str, build: Any
) -> None:
    path = write(tmp_path / "private.json", build(private_ec()))
    result = run("jwks", "public", path)
    if where == "KEYS":
        assert result.exit_code == 3 and "ambiguous-member" in result.stderr
    else:
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout) == {"keys": [ec_key()]}
    assert_secret_not_in(result.stdout, result.stderr)


def test_a_pem_private_key_in_a_member_is_key_material(tmp_path: Path) -> None:
    pem = f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n"
    path = write(tmp_path / "jwks.json", {"keys": [{**ec_key(), "x-pem": pem}]})
    result = run("jwks", "check", path)
    assert result.exit_code == 4 and "/x-pem" in result.stdout
    assert_secret_not_in(result.stdout)


def test_extension_members_that_cannot_hold_a_key_stay(tmp_path: Path) -> None:
    key = {**rsa_public(), "x-team": "auth", "x-meta": {"owner": "a", "tags": ["b"]}}
    assert jwks.lint_jwks({"keys": [key]}) == jwks.lint_jwks({"keys": [rsa_public()]})
    path = write(tmp_path / "jwks.json", {"keys": [key]})
    assert json.loads(run("jwks", "public", path).stdout) == {"keys": [key]}


def test_member_names_are_escaped_in_findings(tmp_path: Path) -> None:
    document = {"keys": [{**ec_key(), "D\u200b": SECRET, "x\x1b[2J": {"kty": "EC"}}]}
    result = run("jwks", "check", write(tmp_path / "jwks.json", document))
    assert result.exit_code == 4
    assert '"D\\u200b"' in result.stdout and '"/x\\u001b[2J"' in result.stdout
    assert_secret_not_in(result.stdout, result.stderr)


# --- 3. diff shows no secret ----------------------------------------------------------------


def configmap(text: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "jwks-config", "namespace": "a"},
        "data": {"jwks.json": text},
    }


def diff_of(live_text: str, planned_text: str) -> str:
    return compare(
        "ConfigMap", "jwks-config", "a", configmap(live_text), configmap(planned_text)
    ).diff


def test_diff_redacts_an_oct_secret_whose_kty_is_escaped() -> None:
    text = json.dumps({"keys": [oct_key(k=SECRET)]}).replace('"oct"', '"\\u006fct"')
    shown = diff_of(text, json.dumps({"keys": [rsa_public()]}))
    assert_secret_not_in(shown)
    assert "<secret, sha256" in shown


def test_diff_redacts_a_live_private_set_on_both_sides() -> None:
    private = {"keys": [private_ec(), {**rsa_public(), "P": SECRET, "jwk": private_ec("\u212a")}]}
    text = json.dumps(private, indent=2)
    for live, planned in ((text, "{}\n"), ("{}\n", text)):
        shown = diff_of(live, planned)
        assert_secret_not_in(shown)
        assert shown.count("<secret, sha256") == 3


@pytest.mark.parametrize(
    "text",
    [
        '{"keys": [{"kty": "EC", "d": "' + SECRET + '"}',  # truncated JSON
        '{"keys": [], "d": "x", "d": "' + SECRET + '"}',  # duplicate members
        "keys:\n- kty: EC\n  d: " + SECRET + "\n",  # YAML, not JSON
    ],
)
def test_diff_shows_unreadable_text_only_as_a_digest(text: str) -> None:
    shown = diff_of(text, json.dumps({"keys": [rsa_public()]}))
    assert_secret_not_in(shown)
    assert "<secret, sha256" in shown


def test_diff_redacts_key_material_in_annotations_and_binary_data() -> None:
    obj = configmap("{}\n")
    obj["metadata"]["annotations"] = {"note": json.dumps(private_ec("D"))}
    obj["binaryData"] = {"key.der": SECRET}
    assert_secret_not_in(to_yaml(redact(obj)))


def test_diff_of_a_public_set_is_unchanged_text() -> None:
    text = (EXAMPLES / "jwks-rsa.json").read_text()
    assert redact(configmap(text)) == configmap(text)


@pytest.mark.cluster
def test_diff_against_a_live_private_configmap_shows_no_secret(kube: Kube) -> None:
    jwks_path = str(EXAMPLES / "jwks-rsa.json")
    applied = kube.jwksdeploy("apply", "--jwks", jwks_path, "-n", kube.namespace, "--no-wait")
    assert applied.exit_code == 0, applied.stderr
    live = kube.read("ConfigMap", "jwks-config")
    assert live is not None
    # `kubectl create configmap --from-file=jwks.json=jwks.private.json`, by hand.
    private = {"keys": [{**rsa_public(), "d": SECRET, "QI": SECRET[::-1]}]}
    text = json.dumps(private).replace('"RSA"', '"\\u0052SA"')
    hand_made = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "jwks-config", "labels": live["metadata"]["labels"]},
        "data": {"jwks.json": text},
    }
    kube.kubectl_apply(hand_made)
    result = kube.jwksdeploy("diff", "--jwks", jwks_path, "-n", kube.namespace)
    assert result.exit_code == 1, result.stderr
    assert "--- live/configmap/" in result.stdout and "<secret, sha256" in result.stdout
    assert_secret_not_in(result.stdout, result.stderr)
    assert_secret_not_in(result.stdout, result.stderr, secret=SECRET[::-1])
    as_json = kube.jwksdeploy("diff", "--jwks", jwks_path, "-n", kube.namespace, "-o", "json")
    assert_secret_not_in(as_json.stdout, as_json.stderr)


# --- properties -----------------------------------------------------------------------------

# What a lenient reader folds to each ASCII letter (besides the letter's own cases).
_FOLDS_TO = {
    "k": ["\u212a"],
    "s": ["\u017f"],
    "i": ["\u0131", "\u0130"],
}
_IGNORABLES = ["\u00ad", "\u200b", "\u2060", "\ufeff"]


@st.composite
def spelling(draw: st.DrawFn, name: str) -> str:
    """A variant of `name` some consumer reads as `name`: cases, folds, fullwidth, ignorables."""
    out = []
    for char in name:
        fullwidth = chr(ord(char) - 0x21 + 0xFF01) if "!" <= char <= "~" else char
        out.append(draw(st.sampled_from([char, char.upper(), fullwidth, *_FOLDS_TO.get(char, [])])))
        if draw(st.integers(0, 5)) == 0:
            out.append(draw(st.sampled_from(_IGNORABLES)))
    return "".join(out)


private_spellings = st.sampled_from(sorted(members.PRIVATE_NAMES)).flatmap(spelling)


@PROPERTY
@given(name=private_spellings)
def test_every_spelling_of_a_private_name_is_private(name: str) -> None:
    assert members.is_private_name(name)
    key = private_ec(name) if name != "d" else private_ec()
    findings = jwks.lint_jwks({"keys": [key]})
    assert any(f.code == "private-key" and f.severity == "error" for f in findings)
    assert all(SECRET not in str(f) for f in findings)
    assert SECRET not in json.dumps(jwks.public_members(key))
    shown = to_yaml(redact(configmap(json.dumps({"keys": [key]}))))
    assert SECRET not in shown


@PROPERTY
@given(name=st.sampled_from(sorted(members.PUBLIC_NAMES)).flatmap(spelling))
def test_every_other_spelling_of_a_public_name_is_ambiguous(name: str) -> None:
    registered = members.registered_as(name)
    assert registered in members.PUBLIC_NAMES
    key = {**ec_key(), name: "v"} if name not in ec_key() else ec_key()
    codes = [f.code for f in jwks.lint_jwks({"keys": [key]})]
    assert ("ambiguous-member" in codes) == (name != registered)


def _nest(draw: st.DrawFn, value: Any) -> Any:
    for _ in range(draw(st.integers(0, 4))):
        value = draw(
            st.sampled_from(
                [[value], {"x-wrap": value}, {"keys": [value]}, {"list": [1, value, "a"]}]
            )
        )
    return value


@st.composite
def nested_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A public set with a private JWK somewhere outside the keys array's top level."""
    name = draw(private_spellings)
    leaked = _nest(draw, private_ec(name))
    where = draw(st.sampled_from(["jwk", "x5c", "x-ext", "sibling", "json-text"]))
    if where == "sibling":
        return {"keys": [rsa_public()], draw(st.sampled_from(["backup", "x", "old"])): leaked}
    if where == "json-text":
        return {"keys": [{**rsa_public(), "x-note": json.dumps(leaked)}]}
    return {"keys": [{**rsa_public(), where: leaked}]}


@PROPERTY
@given(document=nested_documents())
def test_a_private_key_at_any_depth_is_never_published(document: dict[str, Any]) -> None:
    findings = jwks.lint_jwks(document)
    assert any(f.code == "nested-key" for f in findings), findings
    assert all(SECRET not in str(f) for f in findings)
    from jwksdeploy.keys import public_set

    assert SECRET not in json.dumps(public_set(document))
    assert SECRET not in to_yaml(redact(configmap(json.dumps(document))))


def _escape_some(draw: st.DrawFn, text: str) -> str:
    return "".join(f"\\u{ord(char):04x}" if draw(st.booleans()) else char for char in text)


@PROPERTY
@given(data=st.data())
def test_escaped_member_names_and_kty_change_nothing(data: st.DataObject) -> None:
    """JSON escapes in names and in kty are decoded before any rule looks at them."""
    key = {**oct_key(k=SECRET), "d": SECRET}
    text = json.dumps({"keys": [key]})
    for word in ("oct", "kty", "d", "k"):
        text = text.replace(f'"{word}"', f'"{_escape_some(data.draw, word)}"')
    shown = to_yaml(redact(configmap(text)))
    assert SECRET not in shown
    document = jwks.parse_jwks(text.encode())
    assert next(f.code for f in jwks.lint_jwks(document)) == "private-key"


# --- 11. YAML-only line breaks --------------------------------------------------------------

yaml_text = st.text(
    alphabet=st.sampled_from([*list("ab :#-'\"\\\n\r\t"), "\x85", "\u2028", "\u2029", "\ufeff"]),
    max_size=12,
)


def _pure_render_dumper() -> type[yaml.SafeDumper]:
    """render's representer on PyYAML's pure emitter (used where libyaml is missing)."""
    from jwksdeploy.render import _represent_str

    class PureDumper(yaml.SafeDumper):
        pass

    PureDumper.add_representer(str, _represent_str)
    return PureDumper


@PROPERTY
@given(value=yaml_text)
def test_every_yaml_we_write_reads_back_the_same_text(value: str) -> None:
    from jwksdeploy.render import dump_yaml
    from jwksdeploy.safeyaml import SafeDumper

    written = [
        dump_yaml({"v": value}),
        to_yaml({"v": value}),
        yaml.dump({"v": value}, Dumper=SafeDumper, sort_keys=False, allow_unicode=True),
        yaml.dump({"v": value}, Dumper=_pure_render_dumper(), allow_unicode=True, width=2**31 - 1),
    ]
    for text in written:
        for loader in (yaml.SafeLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            assert yaml.load(text, Loader=loader) == {"v": value}, text


def test_an_annotation_with_nel_reads_back_from_render_and_diff(tmp_path: Path) -> None:
    value = "a\nkind: Secret\x85\n\x85"
    rendered = run(
        "render", "--jwks", str(EXAMPLES / "jwks-rsa.json"), "--annotation", f"x={value}"
    )
    assert rendered.exit_code == 0, rendered.stderr
    configmap_doc = next(yaml.safe_load_all(rendered.stdout))
    assert configmap_doc["metadata"]["annotations"]["x"] == value
    assert yaml.safe_load(to_yaml(configmap_doc))["metadata"]["annotations"]["x"] == value


def test_print_data_writes_yaml_that_reads_back(capsys: pytest.CaptureFixture[str]) -> None:
    from jwksdeploy.cli.cluster_output import print_data

    print_data({"node": "a\x85b", "plain": "x"}, "yaml")
    text = capsys.readouterr().out
    assert yaml.safe_load(text) == {"node": "a\x85b", "plain": "x"}
    assert text.endswith("plain: x\n")  # unchanged for everything else
