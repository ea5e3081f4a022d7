"""The GitOps examples run for real: the Argo CD plugin's command line, the Flux output and
the CI jobs' staleness checks, each validated like other rendered manifests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .helpers import EXAMPLES, REPO, run

ARGOCD = EXAMPLES / "argocd"
FLUX = EXAMPLES / "flux"
BIN = str(Path(sys.executable).parent)


def _load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def _validate(objects: list[dict[str, Any]]) -> None:
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, "1.32", strict=True)


def _copy_examples(tmp_path: Path, *parts: str) -> Path:
    """The examples a job needs, at the same relative places, under tmp_path."""
    root = tmp_path / "repo"
    (root / "examples").mkdir(parents=True)
    shutil.copy(EXAMPLES / "jwks-rsa.json", root / "examples" / "jwks-rsa.json")
    for part in parts:
        shutil.copytree(EXAMPLES / part, root / "examples" / part)
    return root


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARGOCD_", "PARAM_"))}
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def _steps(workflow: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load(workflow.read_text())
    steps: list[dict[str, Any]] = document["jobs"]["render"]["steps"]
    return steps


def _step(workflow: Path, starts: str) -> str:
    found = [s["run"] for s in _steps(workflow) if str(s.get("run", "")).startswith(starts)]
    assert len(found) == 1, found
    return str(found[0])


# --- Argo CD ------------------------------------------------------------------------------


def _plugin() -> dict[str, Any]:
    plugin: dict[str, Any] = yaml.safe_load((ARGOCD / "plugin.yaml").read_text())
    return plugin


def _generate(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The plugin's generate command, run as Argo CD's cmp-server runs it."""
    spec = _plugin()["spec"]["generate"]
    return subprocess.run(
        [*spec["command"], *spec["args"]],
        cwd=cwd,
        env=_environment(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_argocd_plugin_renders_what_render_renders(tmp_path: Path) -> None:
    app = _copy_examples(tmp_path, "argocd") / "examples" / "argocd" / "app"
    done = _generate(app, ARGOCD_APP_NAMESPACE="envoy-yang", PARAM_REPLICAS="2")
    assert done.returncode == 0, done.stderr
    objects = _load_all(done.stdout)
    _validate(objects)
    assert {o["metadata"]["namespace"] for o in objects} == {"envoy-yang"}
    assert "PodDisruptionBudget" in {o["kind"] for o in objects}
    values = str(ARGOCD / "app" / "jwksdeploy-values.yaml")
    direct = run("render", "-f", values, "--strict", "-n", "envoy-yang", "--set", "replicas=2")
    assert direct.exit_code == 0, direct.stderr
    assert done.stdout == direct.stdout
    assert done.stderr == ""  # the example renders without a warning


def test_the_argocd_plugin_takes_its_parameters_and_needs_a_namespace(tmp_path: Path) -> None:
    app = _copy_examples(tmp_path, "argocd") / "examples" / "argocd" / "app"
    named = _generate(app, ARGOCD_APP_NAMESPACE="a", PARAM_NAME="keys", PARAM_IMAGE="x/y:1")
    assert named.returncode == 0, named.stderr
    deployment = next(o for o in _load_all(named.stdout) if o["kind"] == "Deployment")
    assert deployment["metadata"]["name"] == "keys"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "x/y:1"
    bad = _generate(app, ARGOCD_APP_NAMESPACE="a", PARAM_REPLICAS="many")
    assert bad.returncode == 3 and "--set replicas=many" in bad.stderr and bad.stdout == ""
    assert _generate(app).returncode != 0  # no destination namespace: no silent default


def test_the_applicationset_uses_the_plugin_once_per_cluster() -> None:
    plugin = _plugin()
    appset = yaml.safe_load((ARGOCD / "applicationset.yaml").read_text())
    assert appset["kind"] == "ApplicationSet"
    [generator] = appset["spec"]["generators"]
    assert "clusters" in generator
    source = appset["spec"]["template"]["spec"]["source"]
    assert source["plugin"]["name"] == f"{plugin['metadata']['name']}-{plugin['spec']['version']}"
    assert (REPO / source["path"] / plugin["spec"]["discover"]["fileName"]).is_file()
    declared = {p["name"] for p in plugin["spec"]["parameters"]["static"]}
    assert {p["name"] for p in source["plugin"]["parameters"]} <= declared
    destination = appset["spec"]["template"]["spec"]["destination"]
    assert destination["server"] == "{{ .server }}" and destination["namespace"]


# --- Flux ---------------------------------------------------------------------------------


def test_the_committed_flux_output_is_what_the_ci_job_renders(tmp_path: Path) -> None:
    root = _copy_examples(tmp_path, "flux")
    shutil.rmtree(root / "examples" / "flux" / "deploy")
    (root / "examples" / "flux" / "deploy").mkdir()
    shutil.copy(FLUX / "deploy" / "kustomization.yaml", root / "examples/flux/deploy")
    command = _step(FLUX / "regenerate.yaml", "jwksdeploy render")
    done = subprocess.run(
        command, shell=True, cwd=root, env=_environment(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    fresh = root / "examples" / "flux" / "deploy"
    committed = {p.relative_to(FLUX / "deploy"): p.read_bytes() for p in _files(FLUX / "deploy")}
    assert {p.relative_to(fresh): p.read_bytes() for p in _files(fresh)} == committed


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    """The objects Flux's kustomize-controller builds: kubectl's bundled kustomize when
    installed, else the same resources lists followed by hand."""
    kubectl = shutil.which("kubectl")
    if kubectl:
        built = subprocess.run(
            [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
        )
        assert built.returncode == 0, built.stderr
        return _load_all(built.stdout)
    objects: list[dict[str, Any]] = []
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        path = directory / resource
        if path.is_dir():
            objects.extend(_kustomize(path))
        else:
            objects.extend(_load_all(path.read_text()))
    return objects


def test_the_flux_kustomization_builds_every_rendered_object() -> None:
    built = _kustomize(FLUX / "deploy")
    _validate(built)
    rendered = run("render", "-f", str(FLUX / "values.yaml"), "-o", "json")
    assert rendered.exit_code == 0, rendered.stderr
    assert rendered.stderr == ""

    def key(obj: dict[str, Any]) -> str:
        return json.dumps(obj, sort_keys=True)

    assert sorted(map(key, built)) == sorted(map(key, json.loads(rendered.stdout)["items"]))
    flux = _load_all((FLUX / "flux-kustomization.yaml").read_text())
    [kustomization] = [d for d in flux if d["kind"] == "Kustomization"]
    assert (REPO / kustomization["spec"]["path"]).resolve() == (FLUX / "deploy").resolve()
    assert kustomization["spec"]["prune"] is True


# --- the CI jobs' staleness check ---------------------------------------------------------


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@127.0.0.1", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.parametrize(
    ("workflow", "output"),
    [
        (FLUX / "regenerate.yaml", "examples/flux/deploy"),
        (EXAMPLES / "ci/github-actions.yaml", "deploy/jwks"),
    ],
)
def test_the_staleness_check_catches_new_untracked_files(
    tmp_path: Path, workflow: Path, output: str
) -> None:
    check = _step(workflow, "changes=$(git status --porcelain")
    repo = tmp_path / "repo"
    (repo / output).mkdir(parents=True)
    (repo / output / "a.yaml").write_text("a: 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "output")

    def stale() -> bool:
        done = subprocess.run(["sh", "-c", check], cwd=repo, capture_output=True, text=True)
        return done.returncode != 0

    assert not stale()
    (repo / output / "new-namespace").mkdir()
    (repo / output / "new-namespace" / "b.yaml").write_text("b: 1\n")
    assert stale()  # `git diff --exit-code` would have passed here
    (repo / output / "new-namespace" / "b.yaml").unlink()
    (repo / output / "a.yaml").write_text("a: 2\n")
    assert stale()
