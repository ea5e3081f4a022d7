"""Hostile input (issue 9) in files and flags: JWKS and key files, values files, argv, flags
the cluster would refuse, the template cache and packaging.

Each case asserts a documented exit code, one `error: ` line at the end of stderr, no
traceback, no secret marker in any output and no file changed (see tests/hostile.py).
Network reads, kubeconfigs and tokens are in test_hostile_net.py; the issue's numbered
repros in test_hostile_repros.py.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import REPO, oct_key
from .hostile import (
    Outcome,
    Signer,
    assert_clean_stderr,
    assert_no_secret,
    assert_refused,
    billion_laughs,
    closed_port,
    dumps,
    flag,
    http_answer,
    invoke,
    jwks_server,
    key_pair_files,
    marker,
    private_rsa,
    snapshot,
    spawn,
    spawn_many,
    valid_ec,
    valid_jwks,
)

HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
REFUSED_JWKS = (3, 4)
VERIFY_TIMEOUT = flag("verify", "--request-timeout", "--timeout")
FETCH_TIMEOUT = flag(
    "gateway", "--fetch-timeout", "--timeout"
)  # malformed (InputError) or failed its checks (JwksRejected)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process commands resolve default paths under the test's directory, never the repo."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


# ---------------------------------------------------------------------------------------------
# JWKS and key files
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Doc:
    """A hostile JWKS document. `may_strip`: `jwks public` may succeed by dropping the private
    members; `may_drop`: render may succeed if what it publishes carries no secret."""

    id: str
    data: bytes
    may_strip: bool = False
    may_drop: bool = False


def _j(value: Any) -> str:
    return json.dumps(value)


def _keys(*raw: str) -> bytes:
    return ('{"keys":[' + ",".join(raw) + "]}").encode()


def _with(key: dict[str, Any], raw_members: str) -> str:
    """A key's JSON with raw (possibly non-JSON) member text appended."""
    return _j(key)[:-1] + "," + raw_members + "}"


EC = valid_ec()
EC_RAW = _j(EC)
PRIV = _j(private_rsa())
DIGITS_5000 = "7" * 5000
DEEP = 100_000


def _private(kty: Any, drop_kty: bool = False) -> str:
    key = private_rsa()
    if drop_kty:
        key.pop("kty")
    else:
        key["kty"] = kty
    return _j(key)


HOSTILE_DOCS = [
    # Duplicate member names, at every depth.
    Doc("dup-keys-private-first", f'{{"keys":[{PRIV}],"keys":[{EC_RAW}]}}'.encode(), may_drop=True),
    Doc("dup-keys-private-last", f'{{"keys":[{EC_RAW}],"keys":[{PRIV}]}}'.encode()),
    Doc(
        "dup-kty-hides-oct-k",
        _keys(
            '{"kty":"oct","k":"' + marker("k") + '","kty":"EC","crv":"P-256",'
            f'"x":{_j(EC["x"])},"y":{_j(EC["y"])},"kid":"dup-kty"}}'
        ),
    ),
    Doc("dup-d-member", _keys(_with(EC, f'"d":"{marker("d1")}","d":"{marker("d2")}"'))),
    Doc("dup-kid-member", _keys(_with({**EC, "kid": "a"}, '"kid":"b"'))),
    Doc("dup-nested-object", _keys(_with(EC, '"ext":{"a":1,"a":2}'))),
    Doc("dup-top-level-other", (f'{{"keys":[{EC_RAW}],"note":1,"note":2}}').encode()),
    Doc(
        "dup-in-oth",
        _keys(_with(json.loads(PRIV), f'"oth":[{{"r":"{marker("r1")}","r":"{marker("r2")}"}}]')),
    ),
    # Numbers JSON (RFC 8259) does not have, or that no parser downstream accepts.
    Doc("nan-member", _keys(_with(EC, '"exp":NaN'))),
    Doc("infinity-member", _keys(_with(EC, '"exp":Infinity'))),
    Doc("minus-infinity-member", _keys(_with(EC, '"exp":-Infinity'))),
    Doc("1e999-member", _keys(_with(EC, '"exp":1e999'))),
    Doc("5000-digit-member", _keys(_with(EC, f'"exp":{DIGITS_5000}'))),
    Doc("nan-as-key", b'{"keys":[NaN]}'),
    Doc("5000-digit-e", _keys(_with({k: v for k, v in EC.items()}, f'"e":{DIGITS_5000}'))),
    # Deep nesting.
    Doc("deep-array-member", _keys(_with(EC, '"x5c":' + "[" * DEEP + "]" * DEEP))),
    Doc("deep-unclosed", b"[" * DEEP),
    Doc("deep-object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    # Unhashable or wrongly typed members that code may use as dict keys or set members.
    Doc("kty-list", _keys(_j({**EC, "kty": []}))),
    Doc("kty-object", _keys(_j({**EC, "kty": {}}))),
    Doc("alg-list", _keys(_j({**EC, "alg": ["HS256"]}))),
    Doc("alg-object", _keys(_j({**EC, "alg": {"a": 1}}))),
    Doc("kid-list", _keys(_j({**EC, "kid": ["a"]}), _j({**EC, "kid": ["a"]}))),
    Doc("kid-object", _keys(_j({**EC, "kid": {"a": 1}}))),
    Doc("crv-list", _keys(_j({**EC, "crv": ["P-256"]}))),
    Doc("crv-object", _keys(_j({**EC, "crv": {}}))),
    Doc("use-list", _keys(_j({**EC, "use": ["sig"]}))),
    Doc("use-object", _keys(_j({**EC, "use": {}}))),
    Doc("x-number", _keys(_j({**EC, "x": 12}))),
    # Private members under a kty that is not exactly RSA/EC/OKP.
    Doc("private-kty-lowercase", _keys(_private("rsa")), may_strip=True),
    Doc("private-kty-missing", _keys(_private(None, drop_kty=True)), may_strip=True),
    Doc("private-kty-list", _keys(_private(["RSA"])), may_strip=True),
    Doc("private-kty-null", _keys(_private(None)), may_strip=True),
    Doc("private-kty-number", _keys(_private(7)), may_strip=True),
    Doc("private-kty-spaced", _keys(_private(" RSA")), may_strip=True),
    Doc("private-kty-oct-with-d", _keys(_j(oct_key(d=marker("oct-d")))), may_strip=True),
    Doc("private-ec-d", _keys(_j({**EC, "d": marker("ec-d")})), may_strip=True),
    Doc("private-rsa", _keys(PRIV), may_strip=True),
    # Encodings and framing.
    Doc("bom", b"\xef\xbb\xbf" + valid_jwks()),
    Doc("invalid-utf8", _keys(_with(EC, '"note":"@@"')).replace(b"@@", b"\xff")),
    Doc("utf16", valid_jwks().decode().encode("utf-16")),
    Doc(
        "lone-surrogate-kid",
        _keys(_with({k: v for k, v in EC.items() if k != "kid"}, r'"kid":"\ud800"')),
    ),
    Doc("trailing-garbage", valid_jwks() + b"garbage"),
    Doc("two-documents", valid_jwks() + valid_jwks()),
    Doc("empty", b""),
    Doc("whitespace", b" \n\t "),
    Doc("not-an-object", b"[]"),
    Doc("keys-object", b'{"keys":{}}'),
    Doc("keys-null", b'{"keys":null}'),
    Doc("key-number", b'{"keys":[1]}'),
    Doc("key-list", b'{"keys":[[]]}'),
    Doc("huge-file", b'{"keys":[' + EC_RAW.encode() + b'],"pad":"' + b"a" * (3 << 20) + b'"}'),
]
DOC_IDS = [doc.id for doc in HOSTILE_DOCS]


def test_hostile_docs_are_what_they_say() -> None:
    """The builders above produce what each id promises (a broken builder tests nothing)."""
    by_id = {doc.id: doc.data for doc in HOSTILE_DOCS}
    assert by_id["dup-keys-private-first"].count(b'"keys"') == 2
    assert json.loads(by_id["dup-keys-private-first"])["keys"][0]["kty"] == "EC"  # last wins
    assert json.loads(by_id["dup-kty-hides-oct-k"])["keys"][0]["kty"] == "EC"
    assert len(by_id["deep-unclosed"]) == DEEP
    with pytest.raises(ValueError):
        by_id["invalid-utf8"].decode()
    assert json.loads(by_id["private-kty-lowercase"])["keys"][0]["d"].startswith("U0VD")
    assert len(by_id["huge-file"]) > 2 << 20


@dataclass
class Ctx:
    """What a JWKS-reading command needs besides the hostile file: a valid key pair in step,
    and a live JWKS server on 127.0.0.1 serving the pair's public set."""

    public: str
    private: str
    url: str


@pytest.fixture(scope="module")
def good_server() -> Iterator[tuple[Signer, str]]:
    signer = Signer("pair-1")
    body = dumps({"keys": [signer.public]})
    answer = http_answer("200 OK", body, "Content-Type: application/json")
    with jwks_server(answer) as port:
        yield signer, f"http://127.0.0.1:{port}/jwks"


@pytest.fixture
def ctx(tmp_path: Path, good_server: tuple[Signer, str]) -> Ctx:
    signer, url = good_server
    public, private = key_pair_files(tmp_path, signer)
    return Ctx(str(public), str(private), url)


JwksArgs = Callable[[str, Ctx], list[str]]
JWKS_READERS: dict[str, JwksArgs] = {
    "render": lambda f, c: ["render", "--jwks", f, "-n", "a"],
    "render-json": lambda f, c: ["render", "--jwks", f, "-n", "a", "-o", "json"],
    "jwks-check": lambda f, c: ["jwks", "check", f],
    "jwks-check-json": lambda f, c: ["jwks", "check", f, "-o", "json"],
    "jwks-public": lambda f, c: ["jwks", "public", f],
    "rotate-jwks": lambda f, c: ["jwks", "rotate", "--jwks", f, "--private", c.private],
    "rotate-private": lambda f, c: ["jwks", "rotate", "--jwks", c.public, "--private", f],
    "generate-add-to": lambda f, c: ["jwks", "generate", "--add-to", f, "--private-out", c.private],
    "generate-add-to-private": lambda f, c: [
        "jwks",
        "generate",
        "--add-to",
        c.public,
        "--private-out",
        f,
    ],
    "token-key": lambda f, c: ["token", "--key", f],
    "verify-jwks": lambda f, c: ["verify", "--url", c.url, "--jwks", f],
}


def _check_jwks_outcome(command: str, doc: Doc, out: Outcome, before: Any, after: Any) -> None:
    if out.code == 0 and command in ("jwks-public", "token-key") and doc.may_strip:
        assert_clean_stderr(out)
        assert_no_secret(out)
        if command == "jwks-public":
            _strict_json(out.stdout)
        return
    if out.code == 0 and command.startswith("render") and doc.may_drop:
        assert_clean_stderr(out)
        assert_no_secret(out)
        return
    # verify compares its --jwks with the served set: "differs" (11) is a clean refusal too.
    codes = (*REFUSED_JWKS, 11) if command == "verify-jwks" else REFUSED_JWKS
    assert_refused(out, codes, before=before, after=after)


def _strict_json(text: str) -> Any:
    """Parse as RFC 8259 JSON: no NaN/Infinity, no duplicate member names."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        assert len(names) == len(set(names)), f"duplicate member names in output: {names}"
        return dict(pairs)

    def constant(name: str) -> Any:
        raise AssertionError(f"{name} in output that must be JSON")

    return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=constant)


def each_failure(checks: dict[str, Callable[[], None]]) -> None:
    """Run every check and report all that fail together (one test covers many commands)."""
    failures = []
    for name, check in checks.items():
        try:
            check()
        except AssertionError as exc:
            failures.append(f"[{name}] {exc}")
    assert not failures, f"{len(failures)} of {len(checks)} failed:\n\n" + "\n\n".join(failures)


@pytest.mark.parametrize("doc", HOSTILE_DOCS, ids=DOC_IDS)
def test_hostile_jwks_file(doc: Doc, tmp_path: Path, ctx: Ctx) -> None:
    """Every command that reads a JWKS or key file, on one hostile document."""
    path = tmp_path / "hostile.json"
    path.write_bytes(doc.data)

    def check(command: str) -> Callable[[], None]:
        def run_one() -> None:
            before = snapshot(tmp_path)
            out = invoke(*JWKS_READERS[command](str(path), ctx))
            _check_jwks_outcome(command, doc, out, before, snapshot(tmp_path))

        return run_one

    each_failure({command: check(command) for command in JWKS_READERS})


def test_hostile_jwks_on_stdin(tmp_path: Path) -> None:
    """`--jwks -` reads stdin through the same bounded, strict reader."""
    for doc in HOSTILE_DOCS:
        out = invoke("render", "--jwks", "-", "-n", "a", input=doc.data)
        _check_jwks_outcome("render", doc, out, None, None)


SERVE_DOCS = [
    doc
    for doc in HOSTILE_DOCS
    if doc.id
    in {
        "dup-keys-private-first",
        "dup-kty-hides-oct-k",
        "nan-member",
        "1e999-member",
        "5000-digit-member",
        "deep-array-member",
        "kty-list",
        "alg-list",
        "kid-list",
        "private-kty-lowercase",
        "private-kty-missing",
        "private-kty-oct-with-d",
        "lone-surrogate-kid",
        "bom",
        "huge-file",
    }
]


def serve_outcome(path: str, cwd: Path, timeout: float = 30) -> Outcome:
    """`jwksdeploy serve --jwks PATH --port 0` as a process: it must refuse at start-up. If it
    starts serving instead, it is stopped and the outcome says so (exit code -1)."""
    import subprocess
    import threading

    from .hostile import process_env

    argv = [sys.executable, "-m", "jwksdeploy", "serve", "--jwks", path, "--port", "0"]
    process = subprocess.Popen(
        argv, cwd=cwd, env=process_env(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    lines: list[bytes] = []
    serving = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if line.startswith(b"serving "):
                serving.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if serving.is_set() or reader.is_alive():
        process.kill()
        process.wait(10)
        state = "started serving" if serving.is_set() else f"hung for {timeout:g}s"
        text = b"".join(lines).decode("utf-8", "replace")
        return Outcome(-1, "", f"{text}\n[test: serve {state} instead of refusing]", argv)
    process.wait(10)
    assert process.stdout is not None
    stdout = process.stdout.read().decode("utf-8", "replace")
    stderr = b"".join(lines).decode("utf-8", "replace")
    return Outcome(process.returncode, stdout, stderr, argv)


@pytest.mark.parametrize("doc", SERVE_DOCS, ids=[d.id for d in SERVE_DOCS])
def test_hostile_jwks_serve_refuses_at_start_up(doc: Doc, tmp_path: Path) -> None:
    path = tmp_path / "hostile.json"
    path.write_bytes(doc.data)
    before = snapshot(tmp_path)
    out = serve_outcome(str(path), tmp_path)
    assert_refused(out, REFUSED_JWKS, before=before, after=snapshot(tmp_path))


STATUS_DOCS = [d for d in HOSTILE_DOCS if d.id in {"nan-member", "deep-unclosed", "kid-list"}]


@pytest.mark.cluster
@pytest.mark.parametrize("doc", STATUS_DOCS, ids=[d.id for d in STATUS_DOCS])
def test_hostile_jwks_status(doc: Doc, tmp_path: Path, kube: Any) -> None:
    """`status --jwks` compares a local file with what is deployed: a hostile one is refused,
    or (it is only compared) reported as different; never a crash."""
    good = tmp_path / "jwks.json"
    good.write_bytes(valid_jwks())
    k = ["--kubeconfig", kube.kubeconfig]
    applied = invoke("apply", "--jwks", str(good), "-n", kube.namespace, "--no-wait", *k)
    assert applied.code == 0, applied.describe()
    path = tmp_path / "hostile.json"
    path.write_bytes(doc.data)
    out = invoke("status", "-n", kube.namespace, "--jwks", str(path), *k)
    if out.code in (0, 1):  # 1: "differs", kubectl diff's convention (errors.Differences)
        assert_clean_stderr(out)
        assert "DIFFERS" in out.stdout, out.describe()
    else:
        assert_refused(out, REFUSED_JWKS)


# Paths that are not regular files: they must be refused without reading them to the end.
SPECIAL_PATHS = ["/dev/zero", "/dev/urandom"]
PATH_READERS: dict[str, Callable[[str, Ctx], list[str]]] = {
    "render": JWKS_READERS["render"],
    "jwks-check": JWKS_READERS["jwks-check"],
    "jwks-public": JWKS_READERS["jwks-public"],
    "rotate-jwks": JWKS_READERS["rotate-jwks"],
    "rotate-private": JWKS_READERS["rotate-private"],
    "generate-add-to": JWKS_READERS["generate-add-to"],
    "token-key": JWKS_READERS["token-key"],
    "verify-jwks": JWKS_READERS["verify-jwks"],
    "render-values": lambda f, c: ["render", "--values", f, "--jwks", c.public, "-n", "a"],
}


@pytest.mark.parametrize("special", SPECIAL_PATHS)
def test_endless_file_is_refused(special: str, tmp_path: Path, ctx: Ctx) -> None:
    """/dev/zero never ends: read it and the process dies of MemoryError (or hangs). Every
    reader runs as its own process, all at once; the process timeout is the safety net."""
    before = snapshot(tmp_path)
    runs = [make(special, ctx) for make in PATH_READERS.values()]
    outcomes = spawn_many(runs, tmp_path, timeout=60)
    after = snapshot(tmp_path)
    each_failure(
        {
            name: lambda out=out: assert_refused(out, 3, before=before, after=after)
            for name, out in zip(PATH_READERS, outcomes, strict=True)
        }
    )


def test_serve_endless_file_is_refused(tmp_path: Path) -> None:
    assert_refused(serve_outcome("/dev/zero", tmp_path, timeout=60), 3)


@pytest.mark.parametrize("command", list(PATH_READERS))
def test_directory_and_missing_paths(command: str, tmp_path: Path, ctx: Ctx) -> None:
    folder = tmp_path / "a-directory"
    folder.mkdir()
    for path, says in (
        (str(folder), "directory"),
        (str(tmp_path / "nope.json"), "does not exist|missing"),
    ):
        before = snapshot(tmp_path)
        out = invoke(*PATH_READERS[command](path, ctx))
        assert_refused(out, 3, before=before, after=snapshot(tmp_path), mentions=[says])


# Property: whatever a key set looks like, no private member ever reaches any output, and the
# commands either succeed or refuse cleanly (never exit 1).

_PRIVATE_NAMES = ["d", "p", "q", "dp", "dq", "qi", "oth"]
_KTYS = st.one_of(
    st.sampled_from(["RSA", "EC", "OKP", "rsa", "ec", "Rsa", " EC", "RSA\u0000", "", "oct "]),
    st.none(),
    st.integers(-2, 2),
    st.lists(st.sampled_from(["RSA", "EC"]), max_size=2),
    st.dictionaries(st.sampled_from(["kty"]), st.just("RSA"), max_size=1),
)


@st.composite
def _key_texts(draw: st.DrawFn) -> str:
    """One key as raw JSON text: a kty (odd ones too), maybe private members (each a secret
    marker), maybe a second copy of some member name."""
    members: list[tuple[str, Any]] = []
    if draw(st.booleans()):
        members.append(("kty", draw(_KTYS)))
    base = draw(st.sampled_from([EC, json.loads(PRIV), {"crv": "Ed25519", "x": EC["x"]}]))
    members += [(k, v) for k, v in base.items() if k not in ("kty", *_PRIVATE_NAMES)]
    for name in draw(st.lists(st.sampled_from(_PRIVATE_NAMES), max_size=3)):
        value: Any = marker(name)
        if name == "oth":
            value = [{"r": marker("r"), "d": marker("oth-d"), "t": marker("t")}]
        members.append((name, value))
    if draw(st.booleans()) and members:
        # A duplicate member: the same name again, with a value of another kind.
        name = draw(st.sampled_from([name for name, _ in members]))
        members.append((name, draw(st.sampled_from(["EC", "RSA", [], {}, None, 1]))))
    members = draw(st.permutations(members))
    return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in members) + "}"


@st.composite
def _documents(draw: st.DrawFn) -> bytes:
    keys = draw(st.lists(_key_texts(), min_size=1, max_size=3))
    body = '{"keys":[' + ",".join(keys) + "]"
    if draw(st.booleans()):
        others = draw(st.lists(_key_texts(), min_size=1, max_size=2))
        body += ',"keys":[' + ",".join(others) + "]"
    return (body + "}").encode()


@HYPOTHESIS
@given(document=_documents())
def test_property_no_private_member_is_ever_published(document: bytes, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_bytes(document)
    for args in (
        ["render", "--jwks", str(path), "-n", "a"],
        ["jwks", "check", str(path)],
        ["jwks", "public", str(path)],
    ):
        out = invoke(*args)
        assert_no_secret(out)
        if out.code == 0:
            assert_clean_stderr(out)
            if args[1] == "public":
                _strict_json(out.stdout)
        else:
            assert_refused(out, REFUSED_JWKS)


# ---------------------------------------------------------------------------------------------
# Values files
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_bytes(valid_jwks())
    return path


def write_values(values: bytes | str, tmp_path: Path) -> Path:
    path = tmp_path / "values.yaml"
    path.write_bytes(values.encode() if isinstance(values, str) else values)
    return path


def render_values(values: bytes | str, tmp_path: Path, *extra: str) -> Outcome:
    path = write_values(values, tmp_path)
    text = values if isinstance(values, str) else ""
    jwks = [] if text.startswith("jwks:") else ["--jwks", str(tmp_path / "jwks.json")]
    return invoke("render", "--values", str(path), *jwks, *extra)


def _deep_block(depth: int) -> str:
    return (
        "label:\n"
        + "".join("  " * (i + 1) + "a:\n" for i in range(depth))
        + "  " * (depth + 1)
        + "b: c\n"
    )


HOSTILE_VALUES: dict[str, bytes | str] = {
    "duplicate-key": "name: first\nname: second\n",
    "duplicate-nested-key": "label:\n  team: a\n  team: b\n",
    "duplicate-merge-key": "base: &b {name: x}\n<<: *b\n",
    "list-top-level": "- name: x\n",
    "scalar-top-level": "42\n",
    "string-top-level": "hello\n",
    "python-object-tag": "name: !!python/object/apply:os.system ['true']\n",
    "python-name-tag": "name: !!python/name:os.system\n",
    "unknown-tag": "name: !custom x\n",
    "binary-tag": "name: !!binary aGVsbG8=\n",
    "set-tag": "label: !!set {a, b}\n",
    "replicas-superscript": 'replicas: "²"\n',
    "replicas-arabic-indic": 'replicas: "٣"\n',
    "replicas-fullwidth": 'replicas: "３"\n',
    "replicas-5000-digits": "replicas: " + DIGITS_5000 + "\n",
    "replicas-inf": "replicas: .inf\n",
    "replicas-nan": "replicas: .nan\n",
    "replicas-float": "replicas: 2.5\n",
    "replicas-bool": "replicas: true\n",
    "replicas-list": "replicas: [1]\n",
    "node-port-huge": "node-port: 1" + "0" * 30 + "\n",
    "port-sexagesimal": "port: 1:20\n",
    "namespace-sexagesimal": "namespace: 12:30\n",
    "name-null": "name: ~\n",
    "name-underscore-int": "name: 1_000\n",
    "label-sexagesimal": "label: {v: 12:30}\n",
    "label-nested": "label: {a: {b: c}}\n",
    "label-list": "label: [a, b]\n",
    "label-null-key": "label: {~: a}\n",
    "jwks-list": "jwks: [a]\n",
    "unknown-key": "nmae: x\n",
    "non-utf8": b"name: \xff\xfe\n",
    "deep-flow": "label: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep-unclosed": "label: " + "{a: " * 20_000 + "\n",
    "deep-block": _deep_block(600),
    "huge-file": "# " + "x" * (3 << 20) + "\nname: x\n",
}


@pytest.mark.parametrize("name", list(HOSTILE_VALUES))
def test_hostile_values_file(name: str, tmp_path: Path, jwks_file: Path) -> None:
    write_values(HOSTILE_VALUES[name], tmp_path)
    before = snapshot(tmp_path)
    extra = [] if "namespace" in name else ["-n", "a"]
    out = render_values(HOSTILE_VALUES[name], tmp_path, *extra)
    assert_refused(out, 3, before=before, after=snapshot(tmp_path))


@pytest.mark.parametrize("name", ["deep-flow", "duplicate-key", "namespace-sexagesimal"])
def test_hostile_values_file_in_a_process(name: str, tmp_path: Path, jwks_file: Path) -> None:
    """The same refusals from a real process (recursion limits and stack differ in-process)."""
    path = tmp_path / "values.yaml"
    data = HOSTILE_VALUES[name]
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    out = spawn("render", "--values", str(path), "--jwks", str(jwks_file), cwd=tmp_path)
    assert_refused(out, 3)


@pytest.mark.parametrize(
    "values",
    [billion_laughs("label"), billion_laughs("annotation"), billion_laughs("image-pull-secret")],
    ids=["label", "annotation", "image-pull-secret"],
)
def test_values_billion_laughs_is_refused_quickly(
    values: str, tmp_path: Path, jwks_file: Path
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(values)
    before = snapshot(tmp_path)
    out = spawn(
        "render",
        "--values",
        str(path),
        "--jwks",
        str(jwks_file),
        "-n",
        "a",
        cwd=tmp_path,
        timeout=30,
    )
    assert_refused(out, 3, before=before, after=snapshot(tmp_path))


@pytest.mark.cluster
@pytest.mark.parametrize("name", ["duplicate-key", "namespace-sexagesimal", "replicas-superscript"])
def test_hostile_values_file_apply(name: str, tmp_path: Path, jwks_file: Path, kube: Any) -> None:
    """apply reads the same values file: refused before anything reaches the cluster."""
    path = tmp_path / "values.yaml"
    path.write_text(str(HOSTILE_VALUES[name]))
    args = ["apply", "--values", str(path), "--jwks", str(jwks_file), "--no-wait"]
    if "namespace" not in name:
        args += ["-n", kube.namespace]
    out = invoke(*args, "--kubeconfig", kube.kubeconfig)
    assert_refused(out, 3)
    if kube.emulator is not None:
        assert not [r for r in kube.emulator.requests() if r.method in ("PATCH", "POST", "PUT")]


def _rendered(out: Outcome) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


# (values text, how to read the field back from the rendered objects, the literal text)
FieldOf = Callable[[list[dict[str, Any]]], Any]


def _deployment(items: list[dict[str, Any]]) -> dict[str, Any]:
    return next(i for i in items if i["kind"] == "Deployment")


LITERAL_FIELDS: dict[str, tuple[str, FieldOf]] = {
    "name": ("name: {}\n", lambda items: _deployment(items)["metadata"]["name"]),
    "namespace": ("namespace: {}\n", lambda items: _deployment(items)["metadata"]["namespace"]),
    "label": (
        "label: {{v: {}}}\n",
        lambda items: _deployment(items)["metadata"]["labels"].get("v"),
    ),
    "annotation": (
        "annotation: {{a: {}}}\n",
        lambda items: _deployment(items)["metadata"]["annotations"].get("a"),
    ),
    "image-pull-secret": (
        "image-pull-secret: [{}]\n",
        lambda items: _deployment(items)["spec"]["template"]["spec"]["imagePullSecrets"][0]["name"],
    ),
}
YAML11_SURPRISES = [
    "010",
    "0o10",
    "0x1a",
    "0b101",
    "1_000",
    "12:30",
    "1:20:30",
    "~",
    "null",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "true",
    "False",
    "1.5e3",
    "1e3",
    ".5",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "+12",
    "-0",
    ".inf",
    ".nan",
    "=",
    "<<",
]


def _literal_or_refused(field: str, text: str, out: Outcome) -> None:
    if out.code == 0:
        assert_clean_stderr(out)
        value = LITERAL_FIELDS[field][1](_rendered(out))
        assert value == text, f"{field}: {text!r} became {value!r}\n{out.describe()}"
    else:
        assert_refused(out, 3)


@pytest.mark.parametrize("field", list(LITERAL_FIELDS))
def test_values_string_fields_keep_their_text_or_refuse(
    field: str, tmp_path: Path, jwks_file: Path
) -> None:
    """YAML 1.1 reads `010` as 8, `12:30` as 750, `~` as None, `yes` as true: a string field
    must be refused or keep exactly what the user wrote."""
    extra = [] if field == "namespace" else ["-n", "a"]

    def check(text: str) -> Callable[[], None]:
        def run_one() -> None:
            values = LITERAL_FIELDS[field][0].format(text)
            out = render_values(values, tmp_path, "-o", "json", *extra)
            _literal_or_refused(field, text, out)

        return run_one

    each_failure({text: check(text) for text in YAML11_SURPRISES})


@HYPOTHESIS
@given(
    field=st.sampled_from(list(LITERAL_FIELDS)),
    text=st.text(alphabet="0123456789abeflnosuxyt.:_+-~", min_size=1, max_size=12),
)
def test_property_values_scalars_literal_or_refused(field: str, text: str, tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_bytes(valid_jwks())
    extra = [] if field == "namespace" else ["-n", "a"]
    out = render_values(LITERAL_FIELDS[field][0].format(text), tmp_path, "-o", "json", *extra)
    _literal_or_refused(field, text, out)


# ---------------------------------------------------------------------------------------------
# Argv: bytes that are not UTF-8, URLs, durations, and flags the cluster would refuse
# ---------------------------------------------------------------------------------------------


def _argv_cases(jwks: str, port: int) -> dict[str, list[str | bytes]]:
    url = f"http://127.0.0.1:{port}/jwks"
    return {
        "render-namespace": ["render", "--jwks", jwks, "--namespace", b"ns\xff"],
        "render-name": ["render", "--jwks", jwks, "-n", "a", "--name", b"n\xff"],
        "render-label": ["render", "--jwks", jwks, "-n", "a", "--label", b"team=\xff"],
        "render-label-key": ["render", "--jwks", jwks, "-n", "a", "--label", b"\xff=x"],
        "render-annotation": ["render", "--jwks", jwks, "-n", "a", "--annotation", b"a=\xff"],
        "render-image": ["render", "--jwks", jwks, "-n", "a", "--image", b"img\xff:1"],
        "render-jwks-path": ["render", "--jwks", b"missing-\xff.json", "-n", "a"],
        "check-path": ["jwks", "check", b"missing-\xff.json"],
        "token-key-path": ["token", "--key", b"missing-\xff.json"],
        "verify-url": ["verify", "--url", url.encode() + b"\xff"],
        "gateway-url": ["gateway", "--provider", "envoy", "--url", url.encode() + b"\xff"],
        "gateway-issuer": ["gateway", "--provider", "envoy", "--url", url, "--issuer", b"\xff"],
        "url-namespace": ["url", "-n", b"ns\xff"],
    }


def test_non_utf8_argv(tmp_path: Path, jwks_file: Path) -> None:
    """Bytes that are not UTF-8 in argv (processes, all at once): refused, never a crash
    while decoding or printing them."""
    cases = _argv_cases(str(jwks_file), closed_port())
    before = snapshot(tmp_path)
    outcomes = spawn_many(list(cases.values()), tmp_path, timeout=60)
    after = snapshot(tmp_path)

    def check(case: str, out: Outcome) -> Callable[[], None]:
        codes = (3, 11) if case == "verify-url" else 3
        return lambda: assert_refused(out, codes, before=before, after=after)

    each_failure({case: check(case, out) for case, out in zip(cases, outcomes, strict=True)})


def test_non_utf8_jwks_path_that_exists_is_read(tmp_path: Path) -> None:
    """A file name that is not UTF-8 is still a file name on Linux: it works, or is refused
    cleanly, but never crashes while printing it."""
    (tmp_path / os.fsdecode(b"keys-\xff.json")).write_bytes(valid_jwks())
    out = spawn("render", "--jwks", b"keys-\xff.json", "-n", "a", cwd=tmp_path)
    if out.code != 0:
        assert_refused(out, 3)
    else:
        assert_clean_stderr(out)
        assert "kind: ConfigMap" in out.stdout


BAD_URLS = [
    "http://127.0.0.1:{port}/j wks",
    "http://[::1",
    "http://127.0.0.1:99999/",
    "http://127.0.0.1:-1/",
    "http://127.0.0.1:port/",
    "http:///jwks",
    "http://",
    "ftp://127.0.0.1:{port}/jwks",
    "file:///etc/passwd",
    "127.0.0.1:{port}/jwks",
    "http://127.0.0.1:{port}/jwks\n",
    "http://127.0.0.1:{port}/\x00",
    "",
]


@pytest.mark.parametrize("template", BAD_URLS)
def test_bad_urls_are_refused(template: str, tmp_path: Path) -> None:
    url = template.format(port=closed_port())
    for args in (
        ["verify", "--url", url],
        ["gateway", "--provider", "envoy", "--url", url],
        ["gateway", "--provider", "contour", "--url", url],
    ):
        out = invoke(*args)
        assert_refused(out, 3, mentions=["url"] if args[0] == "verify" else ())


@HYPOTHESIS
@given(tail=st.text(max_size=30))
def test_property_gateway_url_never_crashes(tail: str, tmp_path: Path) -> None:
    """Whatever follows a local URL, gateway prints valid YAML (exit 0) or refuses (exit 3)."""
    if "\x00" in tail:
        tail = tail.replace("\x00", "")
    out = invoke("gateway", "--provider", "envoy", "--url", f"http://127.0.0.1:1{tail}")
    if out.code == 0:
        assert_clean_stderr(out)
        list(yaml.safe_load_all(out.stdout))
    else:
        assert_refused(out, 3)


OVERFLOWING_DURATIONS = [
    "1e400s",
    "99999999999999999999h",
    "9" * 400 + "s",
    "9" * 5000,
    "10000000000000h",
    "nan",
    "inf",
    "-1s",
    "1.5.5s",
    "5 m s",
    "٣s",
    "",
]


def _duration_cases(tmp_path: Path, value: str) -> dict[str, list[str]]:
    public, private = key_pair_files(tmp_path)
    url = f"http://127.0.0.1:{closed_port()}/jwks"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(_kubeconfig_at(url)))
    k = ["--kubeconfig", str(kubeconfig)]
    return {
        "verify-timeout": ["verify", "--url", url, VERIFY_TIMEOUT, value],
        "verify-leeway": ["verify", "--url", url, "--leeway", value],
        "token-ttl": ["token", "--key", str(private), "--ttl", value],
        "token-nbf": ["token", "--key", str(private), "--nbf", value],
        "gateway-timeout": ["gateway", "--provider", "envoy", "--url", url, FETCH_TIMEOUT, value],
        "gateway-cache": [
            "gateway",
            "--provider",
            "contour",
            "--url",
            url,
            "--cache-duration",
            value,
        ],
        "apply-timeout": ["apply", "--jwks", str(public), "-n", "a", "--timeout", value, *k],
        "apply-request-timeout": [
            "apply",
            "--jwks",
            str(public),
            "-n",
            "a",
            "--request-timeout",
            value,
            *k,
        ],
        "url-request-timeout": ["url", "-n", "a", "--request-timeout", value, *k],
        "delete-timeout": ["delete", "-n", "a", "--timeout", value, *k],
        "status-request-timeout": ["status", "-n", "a", "--request-timeout", value, *k],
    }


def _kubeconfig_at(url: str) -> dict[str, Any]:
    from .hostile import kubeconfig

    server = url.rsplit("/", 1)[0]
    return kubeconfig(server)


@pytest.mark.parametrize("value", OVERFLOWING_DURATIONS)
def test_overflowing_durations_are_refused(value: str, tmp_path: Path) -> None:
    for name, args in _duration_cases(tmp_path, value).items():
        if name == "token-nbf" and value == "-1s":
            continue  # an offset into the past is a valid --nbf
        before = snapshot(tmp_path)
        out = invoke(*args)
        assert out.code != 0, f"{name}: {out.describe()}"
        assert_refused(out, 3, before=before, after=snapshot(tmp_path))


@HYPOTHESIS
@given(value=st.text(alphabet="0123456789.e+-smhnaif ", max_size=25))
def test_property_durations_never_crash(value: str, tmp_path: Path) -> None:
    """Any --ttl / gateway --timeout text gives a token / YAML (exit 0) or a clean exit 3."""
    _, private = key_pair_files(tmp_path)
    for args in (
        ["token", "--key", str(private), "--ttl", value],
        [
            "gateway",
            "--provider",
            "envoy",
            "--url",
            "http://127.0.0.1:1/jwks",
            FETCH_TIMEOUT,
            value,
        ],
    ):
        out = invoke(*args)
        if out.code == 0:
            assert_clean_stderr(out)
        else:
            assert_refused(out, 3)


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


@pytest.mark.parametrize("case", list(CLUSTER_WOULD_REFUSE))
def test_render_refuses_what_the_cluster_rejects(
    case: str, tmp_path: Path, jwks_file: Path
) -> None:
    before = snapshot(tmp_path)
    out = invoke("render", "--jwks", str(jwks_file), *CLUSTER_WOULD_REFUSE[case])
    assert_refused(out, 3, before=before, after=snapshot(tmp_path))


def test_example_values_file_renders_for_the_cluster(tmp_path: Path) -> None:
    """examples/values.yaml must not ask for one NodePort in several namespaces."""
    values = yaml.safe_load((REPO / "examples" / "values.yaml").read_text())
    namespaces = values.get("namespace") or []
    if isinstance(namespaces, str):
        namespaces = [namespaces]
    assert not (values.get("node-port") and len(namespaces) > 1), values
    out = invoke("render", "--values", str(REPO / "examples" / "values.yaml"))
    assert out.code == 0, out.describe()


# ---------------------------------------------------------------------------------------------
# The template cache and packaging
# ---------------------------------------------------------------------------------------------


class _Plant:
    """Unpickled from a planted cache file: writes a marker file (proof that code ran)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        code = f"open({self.path!r}, 'w').write('pwned')"
        return (exec, (code,))


def _bytecode_payload(marker_path: Path) -> bytes:
    """What jinja2.FileSystemBytecodeCache reads: its magic header, then a pickle it loads."""
    from jinja2.bccache import bc_magic

    return bc_magic + pickle.dumps(_Plant(str(marker_path)), 2)


def test_render_never_loads_a_planted_template_cache(tmp_path: Path, jwks_file: Path) -> None:
    """A cache in a shared XDG_CACHE_HOME, written by someone else, must never run code."""
    cache = tmp_path / "shared-cache"
    pwned = tmp_path / "pwned"
    env = {**_env_for(tmp_path), "XDG_CACHE_HOME": str(cache)}
    first = spawn("render", "--jwks", str(jwks_file), "-n", "a", cwd=tmp_path, env=env)
    assert first.code == 0, first.describe()
    written = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    # Plant a payload where the cache would be read from: every file the first run wrote,
    # and the jinja default names in every directory under the cache.
    folders = {p.parent for p in written} | {
        cache / "jwksdeploy" / "templates",
        cache / "jwksdeploy",
    }
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)
    for path in written:
        path.write_bytes(_bytecode_payload(pwned))
    if os.geteuid() == 0:
        for path in [*written, *folders]:
            os.chown(path, 65534, 65534)  # planted by another user
    second = spawn("render", "--jwks", str(jwks_file), "-n", "a", cwd=tmp_path, env=env)
    assert not pwned.exists(), "a planted template cache ran code"
    assert second.code == 0, second.describe()
    assert second.stdout == first.stdout


def test_render_leaves_no_cache_others_can_write(tmp_path: Path, jwks_file: Path) -> None:
    """If render keeps a cache at all, only the user can write it (no group/world bits)."""
    cache = tmp_path / "cache"
    env = {**_env_for(tmp_path), "XDG_CACHE_HOME": str(cache)}
    out = spawn("render", "--jwks", str(jwks_file), "-n", "a", cwd=tmp_path, env=env)
    assert out.code == 0, out.describe()
    for path in [cache / "jwksdeploy", *(cache / "jwksdeploy").rglob("*")]:
        if path.exists():
            assert path.stat().st_mode & 0o022 == 0, f"{path} is writable by others"


def _env_for(tmp_path: Path) -> dict[str, str]:
    from .hostile import process_env

    return process_env(tmp_path)


def test_kubernetes_is_a_regular_dependency() -> None:
    """`pip install jwksdeploy` must give a working `apply` (issue 9, item 11)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = [
        dep.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip()
        for dep in project["dependencies"]
    ]
    assert "kubernetes" in names, project["dependencies"]
