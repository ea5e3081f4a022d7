"""Every command that reads a JWKS or key file (render, jwks check|public|rotate|generate
--add-to, token --key, verify --jwks, serve, status --jwks) refuses a hostile document cleanly:
duplicate members, non-JSON numbers, deep nesting, wrong types, private members under an odd
kty, bad encodings, endless and special files. A refusal is the documented exit code, one
`error: ` line, no traceback, no secret in any output and no file changed (tests/refusals.py).
Provenance: issue 9, the hostile-input campaign (its repros 1, 2 and 4 are here too)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .helpers import (
    Signer,
    dumps,
    ec_key,
    key_pair_files,
    marker,
    oct_key,
    private_rsa,
    valid_ec,
    valid_jwks,
)
from .refusals import (
    HYPOTHESIS,
    Outcome,
    Snapshot,
    assert_clean_stderr,
    assert_no_secret,
    assert_refused,
    each_failure,
    invoke,
    serve_outcome,
    serve_outcomes,
    snapshot,
    spawn,
    spawn_many,
)
from .servers import http_answer, jwks_server

pytestmark = pytest.mark.usefixtures("in_tmp")


REFUSED_JWKS = (3, 4)  # malformed (InputError) or failed its checks (JwksRejected)


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


def test_the_hostile_documents_are_what_their_ids_say() -> None:
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


@pytest.mark.parametrize("doc", HOSTILE_DOCS, ids=DOC_IDS)
def test_every_jwks_reader_refuses_a_hostile_document(doc: Doc, tmp_path: Path, ctx: Ctx) -> None:
    """Every command that reads a JWKS or key file refuses the document cleanly, or (`jwks public`,
    `token`, render) succeeds without any secret in its output."""
    path = tmp_path / "hostile.json"
    path.write_bytes(doc.data)

    def check(command: str) -> Callable[[], None]:
        def run_one() -> None:
            before = snapshot(tmp_path)
            out = invoke(*JWKS_READERS[command](str(path), ctx))
            _check_jwks_outcome(command, doc, out, before, snapshot(tmp_path))

        return run_one

    each_failure({command: check(command) for command in JWKS_READERS})


def test_jwks_on_stdin_goes_through_the_same_strict_reader(tmp_path: Path) -> None:
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


@dataclass
class ServeRefusals:
    """What `serve` did with each of SERVE_DOCS and /dev/zero, and the folder they were in
    before and after every run."""

    outcomes: dict[str, Outcome]
    before: Snapshot
    after: Snapshot


@pytest.fixture(scope="module")
def serve_refusals(tmp_path_factory: pytest.TempPathFactory) -> ServeRefusals:
    """Every serve start-up of this module, as processes started together: the suite waits for
    the slowest one instead of their sum (one start-up is about a second on a loaded machine)."""
    folder = tmp_path_factory.mktemp("serve")
    paths = {}
    for doc in SERVE_DOCS:
        path = folder / f"{doc.id}.json"
        path.write_bytes(doc.data)
        paths[doc.id] = str(path)
    paths["/dev/zero"] = "/dev/zero"
    before = snapshot(folder)
    # The bound only catches a start-up that serves or hangs: generous for 16 processes.
    outcomes = serve_outcomes(list(paths.values()), folder, timeout=120)
    return ServeRefusals(dict(zip(paths, outcomes, strict=True)), before, snapshot(folder))


@pytest.mark.parametrize("doc", SERVE_DOCS, ids=[d.id for d in SERVE_DOCS])
def test_serve_refuses_a_hostile_document_at_start_up(
    doc: Doc, serve_refusals: ServeRefusals
) -> None:
    """`serve` refuses a hostile document before it listens, instead of handing it out."""
    out = serve_refusals.outcomes[doc.id]
    assert_refused(out, REFUSED_JWKS, before=serve_refusals.before, after=serve_refusals.after)


def test_serve_endless_file_is_refused(serve_refusals: ServeRefusals) -> None:
    assert_refused(serve_refusals.outcomes["/dev/zero"], 3)


STATUS_DOCS = [d for d in HOSTILE_DOCS if d.id in {"nan-member", "deep-unclosed", "kid-list"}]


@pytest.mark.cluster
@pytest.mark.parametrize("doc", STATUS_DOCS, ids=[d.id for d in STATUS_DOCS])
def test_status_refuses_or_reports_a_hostile_local_jwks(
    doc: Doc, tmp_path: Path, kube: Any
) -> None:
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
# The repros 1, 2 and 4 as it quotes them
# ---------------------------------------------------------------------------------------------


VALID_EC = json.dumps(ec_key(kid="ec-1"))
# The repro 1, byte for byte but for the EC key it elides.
DUPLICATE_KEYS = (
    '{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","d":"PRIVATE"}],"keys":[' + VALID_EC + "]}"
).encode()


def test_a_duplicate_keys_member_never_publishes_a_private_key(tmp_path: Path) -> None:
    """`{"keys":[private],"keys":[public]}`: render, `jwks check` and serve never publish the
    private key that a last-wins parser would hide (issue 9, repro 1)."""
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


def test_jwks_public_never_prints_private_members_under_an_odd_kty(tmp_path: Path) -> None:
    """`jwks public` drops or refuses `d` under a kty of "rsa", none or ["RSA"]
    (issue 9, repro 2)."""
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


def test_numbers_rfc_8259_does_not_have_are_refused(tmp_path: Path) -> None:
    """NaN, Infinity and 1e999 are refused in a claim and in a key set, -o json included
    (issue 9, repro 4)."""
    _, private = key_pair_files(tmp_path)
    assert_refused(invoke("token", "--key", str(private), "--claim", "exp=NaN"), 3)
    for number in ("NaN", "Infinity", "-Infinity", "1e999"):
        path = tmp_path / "jwks.json"
        path.write_bytes(dumps({"keys": [ec_key(kid="a")]})[:-2] + f',"n2":{number}}}]}}'.encode())
        assert_refused(invoke("render", "--jwks", str(path), "-n", "a", "-o", "json"), (3, 4))
        assert_refused(invoke("jwks", "check", str(path), "-o", "json"), (3, 4))
