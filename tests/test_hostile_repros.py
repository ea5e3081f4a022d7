"""One test per numbered repro of issue 9 (items 3 and 5, output directories and key-file
pairs, are in tests/test_writes.py; the two repros that wait on a clock, 7 and 13, share
the stalled servers of test_hostile_net.py). The broad hostile-input classes are in test_hostile.py
and test_hostile_net.py; these pin the exact commands the issue quotes."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import REPO, ec_key
from .hostile import (
    Signer,
    assert_clean_stderr,
    assert_refused,
    billion_laughs,
    closed_port,
    dumps,
    http_answer,
    invoke,
    jwks_server,
    key_pair_files,
    kubeconfig,
    process_env,
    raw_server,
    self_signed_tls,
    snapshot,
    spawn,
    spawn_many,
    valid_jwks,
)
from .test_hostile import serve_outcome

VALID_EC = json.dumps(ec_key(kid="ec-1"))
# The repro 1, byte for byte but for the EC key it elides.
DUPLICATE_KEYS = (
    '{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","d":"PRIVATE"}],"keys":[' + VALID_EC + "]}"
).encode()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_bytes(valid_jwks())
    return path


def test_repro_1_duplicate_keys_never_publish_a_private_key(tmp_path: Path) -> None:
    path = tmp_path / "dup.json"
    path.write_bytes(DUPLICATE_KEYS)
    rendered = invoke("render", "--jwks", str(path), "-n", "a")
    assert "PRIVATE" not in rendered.stdout + rendered.stderr, rendered.describe()
    if rendered.code != 0:
        assert_refused(rendered, (3, 4))
    check = invoke("jwks", "check", str(path))
    assert_refused(check, (3, 4))  # `jwks check` finds it
    served = serve_outcome(str(path), tmp_path)
    assert_refused(served, (3, 4))  # serve refuses at start-up instead of handing it out
    assert "PRIVATE" not in served.stdout + served.stderr


def test_repro_2_public_never_prints_private_members_under_an_odd_kty(tmp_path: Path) -> None:
    for kty in ("rsa", None, ["RSA"]):
        key: dict[str, Any] = {"n": "AQAB", "e": "AQAB", "d": "SECRET"}
        if kty is not None:
            key["kty"] = kty
        path = tmp_path / "odd.json"
        path.write_bytes(dumps({"keys": [key]}))
        out = invoke("jwks", "public", str(path))
        assert "SECRET" not in out.stdout + out.stderr, out.describe()
        if out.code != 0:
            assert_refused(out, (3, 4))


def test_repro_4_non_json_numbers_are_refused(tmp_path: Path) -> None:
    _, private = key_pair_files(tmp_path)
    assert_refused(invoke("token", "--key", str(private), "--claim", "exp=NaN"), 3)
    for number in ("NaN", "Infinity", "-Infinity", "1e999"):
        path = tmp_path / "jwks.json"
        path.write_bytes(dumps({"keys": [ec_key(kid="a")]})[:-2] + f',"n2":{number}}}]}}'.encode())
        assert_refused(invoke("render", "--jwks", str(path), "-n", "a", "-o", "json"), (3, 4))
        assert_refused(invoke("jwks", "check", str(path), "-o", "json"), (3, 4))


def test_repro_4_a_nan_token_does_not_verify_forever(tmp_path: Path) -> None:
    """A hand-made token with exp NaN (a NaN compares false with everything) never verifies,
    and -o json never prints NaN."""
    signer = Signer("k1")
    token = signer.sign(signer.header(), b'{"exp":NaN}')
    with jwks_server(http_answer("200 OK", dumps({"keys": [signer.public]}))) as port:
        url = f"http://127.0.0.1:{port}/jwks"
        out = invoke("verify", "--url", url, "--token", token, "-o", "json")
    assert_refused(out, (3, 11))

    def no_constants(name: str) -> None:
        raise AssertionError(f"-o json printed {name}")

    # stdout carries the failed checks as data (their text may name NaN), never a NaN value.
    json.loads(out.stdout, parse_constant=no_constants)


def test_repro_6_an_empty_token_does_not_pass(tmp_path: Path) -> None:
    signer = Signer("k1")
    with jwks_server(http_answer("200 OK", dumps({"keys": [signer.public]}))) as port:
        url = f"http://127.0.0.1:{port}/jwks"
        assert_refused(invoke("verify", "--url", url, "--token", ""), (3, 11))
        assert_refused(invoke("verify", "--url", url, "--token", "-", input=""), (3, 11))
        assert_refused(invoke("verify", "--url", url, "--iss", "https://issuer.example"), 3)
        assert_refused(invoke("verify", "--url", url, "--aud", "api"), 3)


def test_repro_7_no_hang_and_no_unbounded_read(tmp_path: Path, jwks_file: Path) -> None:
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


def test_repro_8_crashes_become_clean_refusals(tmp_path: Path, jwks_file: Path) -> None:
    """One representative of each crash the issue lists; every one exits with a documented
    code other than 1, and one `error: ` line."""
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


def test_repro_8_concurrent_render_into_one_directory(tmp_path: Path, jwks_file: Path) -> None:
    """Several renders into one --output-dir at once: each succeeds or refuses cleanly, and
    the directory ends as one complete tree with no staging directories left behind."""
    out_dir = tmp_path / "out"
    runs = [
        [
            "render",
            "--jwks",
            str(jwks_file),
            "-n",
            "a",
            "-n",
            "b",
            "--replicas",
            str(n),
            "--output-dir",
            str(out_dir),
        ]
        for n in (1, 2, 3, 4)
    ]
    outcomes = spawn_many(runs, tmp_path, timeout=60)
    for out in outcomes:
        if out.code != 0:
            assert_refused(out, (5,))
        else:
            assert_clean_stderr(out)
    assert any(out.code == 0 for out in outcomes), [o.describe() for o in outcomes]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "jwks.json",
        "out",
    ], sorted(os.listdir(tmp_path))
    replicas = set()
    for namespace in ("a", "b"):
        folder = out_dir / namespace
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        for name in kustomization["resources"]:
            document = yaml.safe_load((folder / name).read_text())
            if document["kind"] == "Deployment":
                replicas.add(document["spec"]["replicas"])
    assert len(replicas) == 1, f"the tree mixes runs: replicas {replicas}"


def _jinja_cache_payload(marker_path: Path) -> bytes:
    from jinja2.bccache import bc_magic

    class Plant:
        def __reduce__(self) -> tuple[Any, ...]:
            return (exec, (f"open({str(marker_path)!r}, 'w').write('pwned')",))

    return bc_magic + pickle.dumps(Plant(), 2)


def test_repro_9_a_planted_template_cache_never_runs(tmp_path: Path, jwks_file: Path) -> None:
    """Plant, in a shared XDG_CACHE_HOME, the exact files jinja's FileSystemBytecodeCache
    would load for our templates (the old cache location), owned by someone else."""
    cache = tmp_path / "shared-cache"
    folder = cache / "jwksdeploy" / "templates"
    folder.mkdir(parents=True)
    pwned = tmp_path / "pwned"
    import jwksdeploy.render as render_module

    template_dirs = {str(REPO / "templates")}
    with_dir = getattr(render_module, "template_dir", None)
    if callable(with_dir):
        template_dirs.add(str(with_dir()))
    for directory in template_dirs:
        for template in Path(directory).glob("*.j2"):
            filename = os.path.normpath(os.path.join(directory, template.name))
            key = hashlib.sha1(f"{template.name}|{filename}".encode()).hexdigest()
            (folder / f"__jinja2_{key}.cache").write_bytes(_jinja_cache_payload(pwned))
    for path in (cache, cache / "jwksdeploy", folder, *folder.iterdir()):
        path.chmod(0o777)
        if os.geteuid() == 0:
            os.chown(path, 65534, 65534)
    env = process_env(tmp_path, XDG_CACHE_HOME=str(cache))
    before = snapshot(cache)
    out = spawn("render", "--jwks", str(jwks_file), "-n", "a", cwd=tmp_path, env=env)
    assert out.code == 0, out.describe()
    assert not pwned.exists(), "render loaded a planted bytecode cache and ran its code"
    assert snapshot(cache) == before, "render wrote into a cache directory others can write"


def test_repro_10_values_keep_what_was_written(tmp_path: Path, jwks_file: Path) -> None:
    def render(text: str, *extra: str) -> Any:
        values = tmp_path / "values.yaml"
        values.write_text(text)
        return invoke(
            "render", "--values", str(values), "--jwks", str(jwks_file), "-o", "json", *extra
        )

    out = render("namespace: 12:30\n")
    assert_refused(out, 3)  # 12:30 is no namespace name, and never 750
    assert "750" not in out.stderr
    out = render("name: 010\n", "-n", "a")
    if out.code == 0:
        names = {item["metadata"]["name"] for item in json.loads(out.stdout)["items"]}
        assert "010" in names and "8" not in names, names
    else:
        assert_refused(out, 3)
    assert_refused(render("name: ~\n", "-n", "a"), 3)
    assert_refused(render("name: first\nname: second\n", "-n", "a"), 3)


def test_repro_11_kubernetes_is_installed_with_the_tool() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(dep.replace(" ", "").startswith("kubernetes") for dep in project["dependencies"])


def test_repro_11_render_still_does_not_import_the_client(tmp_path: Path, jwks_file: Path) -> None:
    """The client stays a lazy import: render never loads it."""
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['jwksdeploy', 'render', '--jwks', {str(jwks_file)!r}, '-n', 'a']\n"
        "try:\n    runpy.run_module('jwksdeploy', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('KUBERNETES-LOADED' if 'kubernetes' in sys.modules else 'KUBERNETES-NOT-LOADED')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=process_env(tmp_path),
        capture_output=True,
        timeout=60,
    )
    assert b"KUBERNETES-NOT-LOADED" in done.stdout, done.stdout[-500:] + done.stderr[-500:]


def test_repro_12_render_refuses_what_the_cluster_rejects(tmp_path: Path, jwks_file: Path) -> None:
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


def test_repro_13_missing_kubeconfig_says_so(tmp_path: Path) -> None:
    out = invoke("url", "-n", "a", "--kubeconfig", "/nope/config")
    assert_refused(out, 6, mentions=["does not exist"])
    assert "/nope/config" in out.stderr


def test_repro_13_insecure_skip_tls_verify_is_quiet(tmp_path: Path) -> None:
    def not_found(conn: socket.socket, head: bytes) -> None:
        conn.sendall(http_answer("404 Not Found", b"404 page not found\n"))

    with raw_server(not_found, tls=self_signed_tls()) as port:
        document = kubeconfig(f"https://127.0.0.1:{port}")
        document["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = True
        path = tmp_path / "kubeconfig"
        path.write_text(json.dumps(document))
        out = spawn("url", "-n", "a", "--kubeconfig", str(path), cwd=tmp_path, timeout=30)
    assert_refused(out, 6)
    assert "InsecureRequestWarning" not in out.stderr and "site-packages" not in out.stderr


def test_repro_13_a_404_server_is_not_a_kubernetes_api(tmp_path: Path, jwks_file: Path) -> None:
    def not_found(conn: socket.socket, head: bytes) -> None:
        conn.sendall(http_answer("404 Not Found", b"404 page not found\n"))

    with raw_server(not_found) as port:
        path = tmp_path / "kubeconfig"
        path.write_text(json.dumps(kubeconfig(f"http://127.0.0.1:{port}")))
        for args in (
            ["url", "-n", "envoy-yang"],
            ["apply", "--jwks", str(jwks_file), "-n", "envoy-yang", "--no-wait"],
        ):
            out = invoke(*args, "--kubeconfig", str(path))
            assert_refused(out, 6, mentions=["kubernetes api"])
            assert "does not exist" not in out.stderr, out.describe()
