"""`--values FILE` (render and apply) is read as strict YAML 1.2 text: duplicate keys, tags,
non-ASCII digits, YAML 1.1 surprises (`010`, `12:30`, `yes`, `~`), deep nesting, billion
laughs and huge files are refused before anything is written or applied, and a string field
keeps exactly the text the user wrote. Provenance: issue 9 (repro 10 is here too)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from .helpers import REPO, billion_laughs, valid_jwks
from .refusals import (
    HYPOTHESIS,
    Outcome,
    Snapshot,
    assert_clean_stderr,
    assert_refused,
    each_failure,
    invoke,
    snapshot,
    spawn_many,
)

pytestmark = pytest.mark.usefixtures("in_tmp")


DIGITS_5000 = "7" * 5000


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
def test_a_hostile_values_file_is_refused(name: str, tmp_path: Path, jwks_file: Path) -> None:
    write_values(HOSTILE_VALUES[name], tmp_path)
    before = snapshot(tmp_path)
    extra = [] if "namespace" in name else ["-n", "a"]
    out = render_values(HOSTILE_VALUES[name], tmp_path, *extra)
    assert_refused(out, 3, before=before, after=snapshot(tmp_path))


IN_A_PROCESS = ["deep-flow", "duplicate-key", "namespace-sexagesimal"]
LAUGHS = {key: billion_laughs(key) for key in ("label", "annotation", "image-pull-secret")}


@dataclass
class Refusal:
    """One process's outcome, and its folder before and after it ran."""

    outcome: Outcome
    before: Snapshot
    after: Snapshot


@pytest.fixture(scope="module")
def values_in_processes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Refusal]:
    """`render --values` on each of IN_A_PROCESS and LAUGHS as processes started together (the
    suite waits for the slowest, not their sum); each in its own folder. The process timeout
    is the bound on "quickly": expanding the laughs takes minutes and gigabytes."""
    folders, runs = {}, []
    for name, data in [*((n, HOSTILE_VALUES[n]) for n in IN_A_PROCESS), *LAUGHS.items()]:
        folder = tmp_path_factory.mktemp(name)
        (folder / "jwks.json").write_bytes(valid_jwks())
        values = folder / "values.yaml"
        values.write_bytes(data.encode() if isinstance(data, str) else data)
        namespace = ["-n", "a"] if name in LAUGHS else []
        runs.append(
            ["render", "--values", str(values), "--jwks", str(folder / "jwks.json"), *namespace]
        )
        folders[name] = folder
    before = {name: snapshot(folder) for name, folder in folders.items()}
    outcomes = spawn_many(runs, tmp_path_factory.mktemp("processes"), timeout=60)
    return {
        name: Refusal(outcome, before[name], snapshot(folder))
        for (name, folder), outcome in zip(folders.items(), outcomes, strict=True)
    }


@pytest.mark.parametrize("name", IN_A_PROCESS)
def test_a_hostile_values_file_is_refused_in_a_process(
    name: str, values_in_processes: dict[str, Refusal]
) -> None:
    """The same refusals from a real process (recursion limits and stack differ in-process)."""
    assert_refused(values_in_processes[name].outcome, 3)


@pytest.mark.parametrize("name", list(LAUGHS))
def test_values_billion_laughs_is_refused_quickly(
    name: str, values_in_processes: dict[str, Refusal]
) -> None:
    refusal = values_in_processes[name]
    assert_refused(refusal.outcome, 3, before=refusal.before, after=refusal.after)


@pytest.mark.cluster
@pytest.mark.parametrize("name", ["duplicate-key", "namespace-sexagesimal", "replicas-superscript"])
def test_apply_refuses_a_hostile_values_file_before_the_cluster(
    name: str, tmp_path: Path, jwks_file: Path, kube: Any
) -> None:
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


def test_example_values_file_renders_for_the_cluster(tmp_path: Path) -> None:
    """examples/values.yaml must not ask for one NodePort in several namespaces."""
    values = yaml.safe_load((REPO / "examples" / "values.yaml").read_text())
    namespaces = values.get("namespace") or []
    if isinstance(namespaces, str):
        namespaces = [namespaces]
    assert not (values.get("node-port") and len(namespaces) > 1), values
    out = invoke("render", "--values", str(REPO / "examples" / "values.yaml"))
    assert out.code == 0, out.describe()


def test_values_keep_the_text_written_or_are_refused(tmp_path: Path, jwks_file: Path) -> None:
    """`namespace: 12:30` is refused and never 750, `name: 010` stays "010", `name: ~` and a
    duplicate key are refused (issue 9, repro 10)."""

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
