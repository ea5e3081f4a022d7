"""The readers every input goes through: bounded reads, the safe YAML loader, settings that
refuse what a cluster would refuse. Each case runs through the CLI as well as the function."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jwksdeploy.checks import check_image
from jwksdeploy.durations import parse_duration
from jwksdeploy.errors import InputError, JwksRejected, VerificationFailed
from jwksdeploy.files import read_bounded
from jwksdeploy.jwks import enforce, lint_jwks, public_members
from jwksdeploy.safeyaml import load_yaml
from jwksdeploy.settings import build_settings
from jwksdeploy.tokens import verify

from .helpers import EXAMPLES, b64, ec_key, jwks_bytes, oct_key, run

JWKS = str(EXAMPLES / "jwks.json")

LAUGHS = "label:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"  {name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def render_values(tmp_path: Path, text: str, *flags: str) -> tuple[int, str, str]:
    values = tmp_path / "values.yaml"
    values.write_text(text)
    result = run("render", "--values", str(values), "--jwks", JWKS, *flags)
    return result.exit_code, result.stdout, result.stderr


def test_read_bounded_never_reads_past_the_limit() -> None:
    with pytest.raises(InputError, match="larger than 1 KiB"):
        read_bounded("/dev/zero", "JWKS file", 1024)


@pytest.mark.parametrize("flag", ["--jwks", "--values"])
def test_dev_zero_as_an_input_is_refused(flag: str) -> None:
    result = run("render", "-n", "a", "--jwks", JWKS, flag, "/dev/zero")
    assert result.exit_code == 3
    assert "larger than 1024 KiB" in result.stderr


def test_billion_laughs_values_file_is_refused(tmp_path: Path) -> None:
    code, stdout, stderr = render_values(tmp_path, LAUGHS)
    assert code == 3 and stdout == ""
    assert "billion laughs" in stderr


def test_duplicate_keys_in_a_values_file_are_refused(tmp_path: Path) -> None:
    code, _, stderr = render_values(tmp_path, "namespace: a\nname: one\nname: two\n")
    assert code == 3
    assert "the key 'name' appears twice" in stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: 010\n", "'010'"),  # YAML 1.1 reads octal 8
        ("namespace: 12:30\n", "'12:30'"),  # YAML 1.1 reads sexagesimal 750
        ("name: ~\n", "'~'"),  # YAML 1.1 reads null
    ],
)
def test_values_keep_the_text_that_was_written(tmp_path: Path, text: str, expected: str) -> None:
    code, _, stderr = render_values(tmp_path, text)
    assert code == 3
    assert expected in stderr  # refused as the literal text, never as 8, 750 or None


def test_yes_is_text_for_a_label_and_not_a_boolean_for_strict(tmp_path: Path) -> None:
    code, stdout, _ = render_values(tmp_path, "namespace: a\nlabel:\n  enabled: yes\n")
    assert code == 0
    assert "enabled: 'yes'" in stdout
    code, _, stderr = render_values(tmp_path, "namespace: a\nstrict: yes\n")
    assert code == 3 and "true or false" in stderr


def test_values_file_types_are_checked(tmp_path: Path) -> None:
    code, _, stderr = render_values(tmp_path, "namespace: a\nname: [a, b]\n")
    assert code == 3 and "--name" in stderr and "must be text" in stderr


def test_unicode_digits_are_not_a_number(tmp_path: Path) -> None:
    code, _, stderr = render_values(tmp_path, 'namespace: a\nreplicas: "²"\n')
    assert code == 3 and "whole number" in stderr


def test_python_tags_are_refused() -> None:
    with pytest.raises(InputError, match="could not determine a constructor"):
        load_yaml(b"a: !!python/object/apply:os.system [true]\n", "values file")


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(InputError, match="nests deeper"):
        load_yaml(b"[" * 100_000, "values file")
    with pytest.raises(InputError, match="nests deeper"):
        load_yaml(b"a:\n" + b"".join(b" " * i + b"b:\n" for i in range(1, 200)), "f")


def test_kubeconfig_mode_keeps_yaml_types() -> None:
    assert load_yaml(b"a: 1\nb: true\n", "kubeconfig", mode="kubeconfig") == {"a": 1, "b": True}


def test_request_above_limit_is_refused() -> None:
    result = run("render", "-n", "a", "--jwks", JWKS, "--cpu-request", "10m", "--cpu-limit", "1m")
    assert result.exit_code == 3
    assert "--cpu-request 10m is above --cpu-limit 1m" in result.stderr
    result = run("render", "-n", "a", "--jwks", JWKS, "--memory-request", "1Gi")
    assert result.exit_code == 3 and "--memory-limit 64Mi" in result.stderr
    equal = {"cpu-request": "0.2", "cpu-limit": "200m", "namespace": "a"}
    assert build_settings(equal, "a").resources[0] == ("cpu-request", "0.2")


@pytest.mark.parametrize(
    "image", ["UPPER/Img:1", "foo@sha256:abc", "repo/Name", "a//b", "x:tag with space", "-x"]
)
def test_image_references_that_are_not_references_are_refused(image: str) -> None:
    with pytest.raises(InputError, match="not an image reference"):
        check_image(image)
    assert run("render", "-n", "a", "--jwks", JWKS, "--image", image).exit_code == 3


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.25",
        "localhost:5000/team/jwks:dev",
        "release-ci.daocloud.io/skoala/demo/remote-jwks-go:0.1.0",
        "ghcr.io/org/jwks@sha256:" + "a" * 64,
        "ghcr.io/org/jwks:1.0@sha256:" + "b" * 64,
    ],
)
def test_real_image_references_pass(image: str) -> None:
    assert check_image(image) == image


def test_one_node_port_for_several_namespaces_is_refused() -> None:
    result = run("render", "-n", "a", "-n", "b", "--jwks", JWKS, "--node-port", "31456")
    assert result.exit_code == 3
    assert "cluster-wide" in result.stderr
    assert run("render", "--values", str(EXAMPLES / "values.yaml")).exit_code == 0


@pytest.mark.parametrize("text", ["1e400s", "99999999999999999999h", "10000000000000h", "٣s"])
def test_durations_are_bounded(text: str) -> None:
    with pytest.raises(InputError):
        parse_duration(text, "--timeout")


# --- strict JSON: what is checked is what is published ---------------------------------------

PRIVATE_RSA = '{"kty":"RSA","n":"AQAB","e":"AQAB","d":"UFJJVkFURS1NQVJLRVI"}'
VALID_EC = json.dumps(ec_key())


def test_duplicate_keys_member_never_publishes_the_first(tmp_path: Path) -> None:
    dup = tmp_path / "dup.json"
    dup.write_text(f'{{"keys":[{PRIVATE_RSA}],"keys":[{VALID_EC}]}}')
    result = run("render", "--jwks", str(dup), "-n", "a")
    assert result.exit_code == 3 and result.stdout == ""
    assert 'the member name "keys" appears twice' in result.stderr
    assert "UFJJVkFURS1NQVJLRVI" not in result.stderr
    check = run("jwks", "check", str(dup))
    assert check.exit_code == 3 and "appears twice" in check.stderr


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"keys":[{"kty":"EC","x":NaN}]}', "NaN is not a JSON number"),
        ('{"keys":[{"kty":"EC","x":-Infinity}]}', "-Infinity is not a JSON number"),
        ('{"keys":[{"kty":"EC","x":1e999}]}', "out of range"),
        ('{"keys":[{"kty":"EC","x":' + "9" * 5000 + "}]}", "more than 32 digits"),
        ('{"keys":[' + "[" * 100_000 + "]" * 100_000 + "]}", "nests deeper"),
        ('{"keys":[' + "[" * 40 + "]" * 40 + "]}", "nests deeper than 32"),
        ('{"keys":[{"kty":"EC","kid":"\\ud800"}]}', "lone surrogate"),
        ('{"keys":[{"kty":"EC","a":{"b":1,"b":2}}]}', 'member name "b" appears twice'),
    ],
)
def test_non_rfc8259_json_is_refused(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(text)
    for args in (["render", "-n", "a", "--jwks"], ["jwks", "check"], ["jwks", "public"]):
        result = run(*args, str(path))
        assert result.exit_code == 3, (args, result.stderr)
        assert reason in result.stderr
        assert result.stdout == ""


@pytest.mark.parametrize(
    "key",
    [
        {"kty": "rsa", "n": "AQAB", "e": "AQAB", "d": "U0VDUkVU"},
        {"n": "AQAB", "e": "AQAB", "d": "U0VDUkVU"},
        {"kty": ["RSA"], "n": "AQAB", "e": "AQAB", "d": "U0VDUkVU"},
        {"kty": "EC", "crv": "P-256", "x": "AQ", "y": "AQ", "k": "U0VDUkVU"},
        {"kty": "oct", "k": "AQ", "d": "U0VDUkVU", "alg": "HS256"},
    ],
)
def test_private_members_are_found_by_name_whatever_the_kty(
    tmp_path: Path, key: dict[str, Any]
) -> None:
    assert "U0VDUkVU" not in json.dumps(public_members(key))
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [key]}))
    public = run("jwks", "public", str(path), "--include-symmetric")
    assert "U0VDUkVU" not in public.stdout + public.stderr  # stripped or refused
    assert public.exit_code != 0 or "d" not in json.loads(public.stdout)["keys"][0]
    check = run("jwks", "check", str(path))
    assert check.exit_code == 4 and "private-key" in check.stdout
    assert "U0VDUkVU" not in check.stdout + check.stderr
    render = run("render", "-n", "a", "--jwks", str(path))
    assert render.exit_code == 4 and "U0VDUkVU" not in render.stdout + render.stderr


@pytest.mark.parametrize("member", ["kty", "alg", "kid", "crv", "use"])
@pytest.mark.parametrize("value", [[], ["HS256"], {"a": 1}, 7])
def test_members_of_the_wrong_type_are_findings_not_crashes(
    tmp_path: Path, member: str, value: Any
) -> None:
    key = {**oct_key(), member: value}
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [key]}))
    findings = lint_jwks({"keys": [key]})
    assert any(f.code in ("bad-member-type", "bad-kty") for f in findings)
    for args in (["jwks", "check"], ["jwks", "public"], ["render", "-n", "a", "--jwks"]):
        result = run(*args, str(path))
        assert result.exit_code in (3, 4), (args, result.stderr)
    signing = run("token", "--key", str(path))
    assert signing.exit_code == 3, signing.stderr


# --- tokens -----------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["exp=NaN", "x=Infinity", 'x={"a":1,"a":2}', "n=1" + "0" * 40])
def test_claims_that_are_not_rfc8259_json_are_refused(tmp_path: Path, claim: str) -> None:
    key = tmp_path / "private.json"
    key.write_text(jwks_bytes(oct_key()).decode())
    result = run("token", "--key", str(key), "--claim", claim)
    assert result.exit_code == 3 and result.stdout == ""
    assert "not strict JSON" in result.stderr


def test_exp_must_be_a_number(tmp_path: Path) -> None:
    key = tmp_path / "private.json"
    key.write_text(jwks_bytes(oct_key()).decode())
    result = run("token", "--key", str(key), "--claim", "exp=soon")
    assert result.exit_code == 3 and "NumericDate" in result.stderr


def test_a_key_on_an_unknown_curve_cannot_sign_and_says_so(tmp_path: Path) -> None:
    key = tmp_path / "private.json"
    key.write_text(json.dumps({"keys": [{**ec_key("P-256"), "crv": "P-999", "d": "AQ"}]}))
    result = run("token", "--key", str(key))
    assert result.exit_code == 3
    assert "cannot sign" in result.stderr


def _token(header: Any, payload: Any) -> str:
    encode = lambda value: b64(value if isinstance(value, bytes) else json.dumps(value).encode())  # noqa: E731
    return f"{encode(header)}.{encode(payload)}.c2ln"


@pytest.mark.parametrize(
    ("header", "payload", "reason"),
    [
        ({"alg": ["HS256"]}, {}, 'alg is ["HS256"]'),
        ({"alg": "HS256"}, {"exp": -1e20}, "outside 0 to 2^64"),
        ({"alg": "HS256"}, b'{"exp": -Infinity}', "-Infinity is not a JSON number"),
        ({"alg": "HS256"}, b'{"exp": ' + b"9" * 400 + b"}", "more than 32 digits"),
        ({"alg": "HS256"}, b"[" * 5000 + b"]" * 5000, "nests deeper"),
        ({"alg": "HS256", "alg2": 1}, b'{"a":1,"a":2}', "appears twice"),
    ],
)
def test_verify_refuses_crafted_tokens_with_a_reason(
    header: Any, payload: Any, reason: str
) -> None:
    document = {"keys": [oct_key()]}
    with pytest.raises(VerificationFailed, match=re.escape(reason)):
        verify(_token(header, payload), document, now=1_700_000_000)


def test_verify_refuses_an_empty_token_and_claims_without_one() -> None:
    url = "http://127.0.0.1:9/jwks"  # never reached: refused before any request
    for args in (["--token", ""], ["--token", " "], ["--iss", "x"], ["--aud", "a"]):
        result = run("verify", "--url", url, *args)
        assert result.exit_code == 3, (args, result.stderr)
    empty_stdin = run("verify", "--url", url, "--token", "-", input="")
    assert empty_stdin.exit_code == 3 and "read no token" in empty_stdin.stderr


# --- network reads: one total deadline, answers that are not HTTP ---------------------------

ANSWERS = {
    "garbage status line": b"GARBAGE\r\n\r\n",
    "1000 headers": b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 1000 + b"\r\n",
    "1 MB header line": b"HTTP/1.1 200 OK\r\nX-A: " + b"b" * 1_000_000 + b"\r\n\r\n",
    "broken chunking": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n",
}


@contextlib.contextmanager
def raw_server(answer: bytes, trickle: float = 0.0) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that reads a request and sends `answer`, optionally one byte
    per `trickle` seconds; yields its /jwks URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            try:
                if trickle:
                    for byte in answer:
                        if stop.wait(trickle):
                            return
                        conn.send(bytes([byte]))
                else:
                    conn.sendall(answer)
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/jwks"
    finally:
        stop.set()
        listener.close()


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_verify_reports_answers_that_are_not_http(name: str) -> None:
    with raw_server(ANSWERS[name]) as url:
        result = run("verify", "--url", url, "--timeout", "5s")
    assert result.exit_code == 11, result.stderr
    assert "did not answer with valid HTTP" in result.stderr


def test_verify_timeout_is_a_total_deadline_not_per_read() -> None:
    # One byte every 0.3 s keeps every read alive; only a total deadline stops it.
    slow = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100
    with raw_server(slow, trickle=0.3) as url:
        result = run("verify", "--url", url, "--timeout", "1s")
    assert result.exit_code == 10
    assert "did not answer within 1s" in result.stderr


# --- what reaches the terminal, and what render leaves on disk --------------------------------


def _subprocess(tmp_path: Path, *args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env["KUBECONFIG"] = str(tmp_path / "none")
    return subprocess.run(
        [sys.executable, "-m", "jwksdeploy", *args],
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )


def test_errors_are_one_escaped_line_even_for_non_utf8_argv(tmp_path: Path) -> None:
    result = _subprocess(tmp_path, "jwks", "check", b"\xff\x1b[31mred\nline.json")
    assert result.returncode == 3
    lines = result.stderr.decode("utf-8").splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "\\udcff\\x1b[31mred" in lines[0]  # shown escaped, not sent to the terminal
    assert "Traceback" not in lines[0]


def test_jwks_problems_are_one_line() -> None:
    with pytest.raises(JwksRejected) as caught:
        enforce(lint_jwks({"keys": [{"kty": "EC", "d": "AQ"}, {"kty": "DSA"}]}), strict=False)
    assert "\n" not in str(caught.value) and "3 problem(s)" in str(caught.value)


def test_render_loads_and_writes_no_template_cache(tmp_path: Path) -> None:
    planted = tmp_path / "cache" / "jwksdeploy" / "templates"
    planted.mkdir(parents=True)
    for name in ("__jinja2_x.cache", "evil.cache"):
        (planted / name).write_bytes(b"not a pickle jwksdeploy may load")
    before = sorted(p.name for p in planted.iterdir())
    result = _subprocess(tmp_path, "render", "-n", "a", "--jwks", JWKS)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in planted.iterdir()) == before
    assert not (tmp_path / ".cache").exists()


def test_a_fifo_nobody_writes_to_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "jwks.json"
    os.mkfifo(fifo)
    result = _subprocess(tmp_path, "jwks", "check", str(fifo))
    assert result.returncode == 3 and b"is empty" in result.stderr


def test_verify_refuses_a_broken_local_jwks_before_fetching() -> None:
    broken = json.dumps({"keys": [{"kty": ["EC"]}]})
    with contextlib.ExitStack() as stack:
        path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "local.json"
        path.write_text(broken)
        result = run("verify", "--url", "http://127.0.0.1:9/jwks", "--jwks", str(path))
    assert result.exit_code == 4 and "bad-member-type" in result.stderr


def test_text_that_is_not_utf8_never_reaches_a_token_or_key(tmp_path: Path) -> None:
    key = tmp_path / "private.json"
    key.write_text(jwks_bytes(oct_key()).decode())
    for args in (["--iss", "a\udcff"], ["--claim", "x=a\udcff"], ["--header", "h=\udcff"]):
        result = run("token", "--key", str(key), *args)
        assert result.exit_code == 3 and result.stdout == "", args
    generated = run("jwks", "generate", "--kid", "k\udcff", "--out", str(tmp_path / "p.json"))
    assert generated.exit_code == 3 and not (tmp_path / "p.json").exists()


def test_ca_file_is_read_with_a_limit() -> None:
    result = run("verify", "--url", "https://127.0.0.1:9/jwks", "--ca-file", "/dev/zero")
    assert result.exit_code == 3 and "larger than" in result.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["render", "-n", "a", "--jwks", "a\x00b"], 3),
        (["render", "-n", "a", "--jwks", JWKS, "--values", "a\x00b"], 3),
        (["render", "-n", "a", "--jwks", JWKS, "--output-dir", "out\x00dir"], 5),
        (["jwks", "generate", "--out", "pub\x00.json", "--private-out", "priv.json"], 5),
        (["url", "-n", "a", "--kubeconfig", "k\x00c"], 6),
    ],
)
def test_a_nul_byte_in_a_path_is_refused(args: list[str], code: int) -> None:
    result = run(*args)
    assert result.exit_code == code, result.stderr
    assert "NUL byte" in result.stderr or "does not exist" in result.stderr


def test_kubeconfig_scalars_are_text_and_booleans_are_booleans(tmp_path: Path) -> None:
    from jwksdeploy.errors import ClusterUnreachable
    from jwksdeploy.kubeconfig import read_document

    path = tmp_path / "kubeconfig"
    path.write_text(
        "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443', "
        "insecure-skip-tls-verify: false}\n"
        "contexts:\n- name: x\n  context: {cluster: c, namespace: 010}\n"
    )
    document = read_document(str(path))
    assert document is not None
    assert document["clusters"][0]["cluster"]["insecure-skip-tls-verify"] is False
    assert document["contexts"][0]["context"]["namespace"] == "010"
    path.write_text("clusters:\n- name: c\n  cluster: {insecure-skip-tls-verify: maybe}\n")
    with pytest.raises(ClusterUnreachable, match="not true or false"):
        read_document(str(path))


def test_stdin_feeds_one_input_only(tmp_path: Path) -> None:
    for args in (["-f", "-", "-f", "-"], ["-f", "-", "--jwks", "-"]):
        result = run("render", "-n", "a", *args, input="namespace: a\n")
        assert result.exit_code == 3 and "stdin" in result.stderr, args
        assert result.stdout == ""


def test_a_kid_with_control_characters_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    result = run("jwks", "generate", "--kid", "\x1b[2J", "--jwks", str(out))
    assert result.exit_code == 3 and "control characters" in result.stderr
    assert not out.exists() and "\x1b" not in result.stderr


# ---------------------------------------------------------------------------------------------
# Moved from the hostile suites (issue 9): settings the cluster would refuse, bounded reads
# ---------------------------------------------------------------------------------------------
# Every case runs through the CLI and ends in a clean refusal (tests/refusals.py).

import yaml  # noqa: E402

from .helpers import REPO, billion_laughs, dumps, key_pair_files, kubeconfig  # noqa: E402
from .refusals import assert_refused, invoke, snapshot, spawn, spawn_many  # noqa: E402
from .servers import closed_port, jwks_server  # noqa: E402

CLUSTER_WOULD_REFUSE = {
    "node-port-several-namespaces": ["-n", "a", "-n", "b", "--node-port", "31000"],
    "cpu-request-above-limit": ["-n", "a", "--cpu-request", "10m", "--cpu-limit", "1m"],
    "cpu-request-above-default-limit": ["-n", "a", "--cpu-request", "2"],
    "memory-request-above-limit": ["-n", "a", "--memory-request", "1Gi", "--memory-limit", "64Mi"],
    "image-uppercase": ["-n", "a", "--image", "UPPER/Img:1"],
    "image-short-digest": ["-n", "a", "--image", "foo@sha256:abc"],
    "image-empty-tag": ["-n", "a", "--image", "foo:"],
    "image-space": ["-n", "a", "--image", "foo bar:1"],
    "replicas-zero": ["-n", "a", "--replicas", "0"],
    "replicas-huge": ["-n", "a", "--replicas", "1" + "0" * 30],
    "port-out-of-range": ["-n", "a", "--port", "70000"],
    "node-port-outside-range": ["-n", "a", "--node-port", "80"],
    "node-port-range-reversed": ["-n", "a", "--node-port-range", "32767-30000"],
    "namespace-too-long": ["-n", "a" * 64],
}


@pytest.mark.usefixtures("in_tmp")
@pytest.mark.parametrize("case", list(CLUSTER_WOULD_REFUSE))
def test_render_refuses_what_the_cluster_rejects(
    case: str, tmp_path: Path, jwks_file: Path
) -> None:
    before = snapshot(tmp_path)
    out = invoke("render", "--jwks", str(jwks_file), *CLUSTER_WOULD_REFUSE[case])
    assert_refused(out, 3, before=before, after=snapshot(tmp_path))


@pytest.mark.usefixtures("in_tmp")
def test_render_refuses_the_issues_cluster_rejections_and_the_example_renders(
    tmp_path: Path, jwks_file: Path
) -> None:
    """The values the issue quotes are refused at render, as the API server would refuse them, and
    examples/values.yaml renders (issue 9, repro 12)."""
    jwks = ["render", "--jwks", str(jwks_file)]
    assert_refused(invoke(*jwks, "-n", "a", "--cpu-request", "10m", "--cpu-limit", "1m"), 3)
    assert_refused(invoke(*jwks, "-n", "a", "--image", "UPPER/Img:1"), 3)
    assert_refused(invoke(*jwks, "-n", "a", "--image", "foo@sha256:abc"), 3)
    assert_refused(invoke(*jwks, "-n", "a", "-n", "b", "--node-port", "31456"), 3)
    example = yaml.safe_load((REPO / "examples" / "values.yaml").read_text())
    namespaces = example.get("namespace")
    several = isinstance(namespaces, list) and len(namespaces) > 1
    assert not (several and example.get("node-port")), example
    out = invoke("render", "--values", str(REPO / "examples" / "values.yaml"))
    assert out.code == 0, out.describe()


@pytest.mark.usefixtures("in_tmp")
def test_exploding_and_endless_inputs_end_in_a_refusal(tmp_path: Path, jwks_file: Path) -> None:
    """Billion laughs in a values file and /dev/zero as a JWKS, values file or token file end in a
    clean refusal, never a hang or an unbounded read (issue 9, repro 7)."""
    values = tmp_path / "laughs.yaml"
    values.write_text(billion_laughs("label"))
    token_zero = tmp_path / "kubeconfig"
    token_zero.write_text(
        json.dumps(kubeconfig(f"http://127.0.0.1:{closed_port()}", tokenFile="/dev/zero"))
    )
    runs = [
        ["render", "--values", str(values), "--jwks", str(jwks_file), "-n", "a"],
        ["render", "--jwks", "/dev/zero", "-n", "a"],
        ["render", "--values", "/dev/zero", "--jwks", str(jwks_file), "-n", "a"],
        ["url", "-n", "a", "--kubeconfig", str(token_zero)],
    ]
    codes = [3, 3, 3, 6]
    for out, code in zip(spawn_many(runs, tmp_path, timeout=60), codes, strict=True):
        assert_refused(out, code)


@pytest.mark.usefixtures("in_tmp")
def test_each_crash_the_issue_lists_is_a_clean_refusal(tmp_path: Path, jwks_file: Path) -> None:
    """One representative of each crash the issue lists; every one exits with a documented
    code other than 1, and one `error: ` line (issue 9, repro 8)."""
    doc = tmp_path / "doc.json"
    (tmp_path / "keys").mkdir()
    _, private = key_pair_files(tmp_path / "keys")
    cases: list[tuple[bytes, list[str], tuple[int, ...]]] = [
        (b"[" * 100_000, ["render", "--jwks", str(doc), "-n", "a"], (3, 4)),
        (b'{"keys":[{"kty":"EC","e":' + b"9" * 5000 + b"}]}", ["jwks", "check", str(doc)], (3, 4)),
        (dumps({"keys": [{"kty": [], "k": "AAAA"}]}), ["jwks", "check", str(doc)], (3, 4)),
        (
            dumps({"keys": [{"kty": "oct", "k": "AAAA", "alg": ["HS256"]}]}),
            ["render", "--jwks", str(doc), "-n", "a"],
            (3, 4),
        ),
        (dumps({"keys": [{**ec_key(), "kid": ["a"]}]}), ["jwks", "public", str(doc)], (3, 4)),
        (
            b'{"kty":"EC","crv":"P-999","x":"AQ","y":"AQ","d":"AQ"}',
            ["token", "--key", str(doc)],
            (3, 4),
        ),
    ]
    for data, args, codes in cases:
        doc.write_bytes(data)
        assert_refused(invoke(*args), codes)
    values = tmp_path / "values.yaml"
    values.write_text('replicas: "²"\n')
    assert_refused(
        invoke("render", "--values", str(values), "--jwks", str(jwks_file), "-n", "a"), 3
    )
    assert_refused(invoke("token", "--key", str(private), "--ttl", "1e400s"), 3)
    assert_refused(invoke("verify", "--url", "http://127.0.0.1:1/j wks"), 3)
    assert_refused(invoke("verify", "--url", "http://[::1"), 3)
    assert_refused(spawn("render", "--jwks", str(jwks_file), "-n", b"\xff", cwd=tmp_path), 3)
    for answer in (
        b"HELLO\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 1000 + b"\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
    ):
        with jwks_server(answer) as port:
            assert_refused(invoke("verify", "--url", f"http://127.0.0.1:{port}/jwks"), 11)
    port = closed_port()
    server = f"http://127.0.0.1:{port}"
    bad_ca = kubeconfig(f"https://127.0.0.1:{port}")
    bad_ca["clusters"][0]["cluster"]["certificate-authority-data"] = "!!"
    kubeconfigs = {
        "not-yaml": b"{{{ : ]",
        "list": b"- a\n",
        "bad-ca": json.dumps(bad_ca).encode(),
        "missing-token-file": json.dumps(kubeconfig(server, tokenFile="/nope/token")).encode(),
    }
    for data in kubeconfigs.values():
        path = tmp_path / "kubeconfig"
        path.write_bytes(data)
        assert_refused(invoke("url", "-n", "a", "--kubeconfig", str(path)), 6)
    unreadable = tmp_path / "unreadable"
    unreadable.mkdir()
    assert_refused(invoke("url", "-n", "a", "--kubeconfig", str(unreadable)), 6)


@pytest.mark.usefixtures("in_tmp")
def test_a_megabyte_path_gives_a_short_error(tmp_path: Path) -> None:
    outcome = invoke("render", "--jwks", "x" * 1_000_000, "-n", "a")
    assert_refused(outcome, 3, mentions=["too long|does not exist"])
    assert len(outcome.stderr) < 10_000
