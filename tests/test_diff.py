"""`jwksdeploy diff` (and the verdict exits of `status`, `delete --dry-run`, `-o name`) against
the API emulator on 127.0.0.1, plus the pure normalisation in jwksdeploy/diff.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from jwksdeploy.diff import CHANGE, CREATE, PRUNE, UNCHANGED, compare, normalize

from .helpers import EXAMPLES, SOURCE_HS256_K, ec_key, jwks_bytes
from .kube import Kube, what_we_write

JWKS = str(EXAMPLES / "jwks-rsa.json")


def _apply(kube: Kube, *args: str, wait: bool = False) -> None:
    no_wait = () if wait else ("--no-wait",)
    result = kube.jwksdeploy("apply", "--jwks", JWKS, "-n", kube.namespace, *no_wait, *args)
    assert result.exit_code == 0, result.stderr


def _diff(kube: Kube, *args: str, jwks: str = JWKS) -> Any:
    return kube.jwksdeploy("diff", "--jwks", jwks, "-n", kube.namespace, *args)


def _stored(kube: Kube) -> dict[str, Any]:
    """What a write of ours could change (status and resourceVersion move on their own)."""
    return {
        kind: what_we_write(kube.read(kind, name))
        for kind, name in (
            ("ConfigMap", "jwks-config"),
            ("Service", "remote-jwks-go"),
            ("Deployment", "remote-jwks-go"),
        )
    }


# --- pure ---------------------------------------------------------------------------------


def _configmap(text: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "jwks-config", "namespace": "a", **meta},
        "data": {"jwks.json": text},
    }


def test_server_written_fields_are_not_differences() -> None:
    live = _configmap(
        "{}\n",
        resourceVersion="7",
        uid="u1",
        generation=3,
        creationTimestamp="2026-01-01T00:00:00Z",
        managedFields=[{"manager": "kubectl"}],
        annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"},
    )
    planned = _configmap("{}\n", resourceVersion="8", uid="u1")
    planned["status"] = {"anything": 1}
    assert normalize(live) == normalize(planned)
    assert compare("ConfigMap", "jwks-config", "a", live, planned).action == UNCHANGED


def test_a_change_is_a_unified_yaml_diff_line_by_line() -> None:
    live = _configmap('{\n  "keys": [\n    {"kid": "a"}\n  ]\n}\n')
    planned = _configmap('{\n  "keys": [\n    {"kid": "b"}\n  ]\n}\n')
    verdict = compare("ConfigMap", "jwks-config", "a", live, planned)
    assert verdict.action == CHANGE
    lines = verdict.diff.splitlines()
    assert lines[0] == "--- live/configmap/a/jwks-config"
    assert lines[1] == "+++ planned/configmap/a/jwks-config"
    assert '-        {"kid": "a"}' in lines and '+        {"kid": "b"}' in lines
    assert "   jwks.json: |" in lines  # a block scalar: one diff line per JSON line


def test_create_and_prune_are_named_as_such() -> None:
    obj = _configmap("{}\n")
    created = compare("ConfigMap", "jwks-config", "a", None, obj)
    pruned = compare("ConfigMap", "jwks-config", "a", obj, None)
    assert created.action == CREATE and created.diff.startswith("--- /dev/null\n")
    assert pruned.action == PRUNE and "+++ /dev/null" in pruned.diff


def test_an_oct_secret_never_appears_in_a_diff() -> None:
    def document(secret: str) -> str:
        return json.dumps({"keys": [{"kty": "oct", "alg": "HS256", "k": secret}]})

    verdict = compare(
        "ConfigMap",
        "jwks-config",
        "a",
        _configmap(document("old-secret")),
        _configmap(document(SOURCE_HS256_K)),
    )
    assert verdict.action == CHANGE
    assert SOURCE_HS256_K not in verdict.diff and "old-secret" not in verdict.diff
    assert "<secret, sha256" in verdict.diff


# --- against the emulator -----------------------------------------------------------------


@pytest.mark.cluster
def test_diff_before_the_first_apply_lists_creates_and_stores_nothing(kube: Kube) -> None:
    result = _diff(kube, "-o", "json")
    assert result.exit_code == 1, result.stderr
    verdicts = json.loads(result.stdout)
    assert {(v["kind"], v["action"]) for v in verdicts} == {
        ("ConfigMap", CREATE),
        ("Service", CREATE),
        ("Deployment", CREATE),
    }
    assert "apply would change 3 object(s)" in result.stderr
    assert all(obj is None for obj in _stored(kube).values())


@pytest.mark.cluster
def test_diff_after_apply_is_empty_and_exit_0(kube: Kube) -> None:
    _apply(kube)
    result = _diff(kube)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "no changes" in result.stderr


@pytest.mark.cluster
def test_a_new_jwks_shows_the_configmap_and_the_pod_checksum(kube: Kube, tmp_path: Path) -> None:
    _apply(kube)
    before = _stored(kube)
    other = tmp_path / "other.json"
    other.write_bytes(jwks_bytes(ec_key(kid="new-kid", alg="ES256", use="sig")))
    result = _diff(kube, jwks=str(other))
    assert result.exit_code == 1, result.stderr
    assert "--- live/configmap/" in result.stdout and "+++ planned/configmap/" in result.stdout
    assert '"kid": "new-kid"' in result.stdout
    assert "checksum/jwks" in result.stdout  # the pod template rolls
    assert "service/" not in result.stdout  # unchanged objects are not shown
    for line in result.stdout.splitlines():
        assert not line.lstrip("+- ").startswith(("resourceVersion", "managedFields"))
    assert _stored(kube) == before  # a dry run, nothing stored


@pytest.mark.cluster
def test_what_apply_would_prune_is_listed(kube: Kube) -> None:
    _apply(kube, "--replicas", "2")
    result = _diff(kube, "--replicas", "1", "-o", "json")
    assert result.exit_code == 1, result.stderr
    actions = {(v["kind"], v["action"]) for v in json.loads(result.stdout)}
    assert ("PodDisruptionBudget", PRUNE) in actions
    assert ("Deployment", CHANGE) in actions
    assert kube.read("PodDisruptionBudget", "remote-jwks-go") is not None


@pytest.mark.cluster
def test_a_missing_namespace_is_a_create_not_an_error(kube: Kube) -> None:
    result = kube.jwksdeploy("diff", "--jwks", JWKS, "-n", f"{kube.namespace}-new", "-o", "json")
    assert result.exit_code == 1, result.stderr
    actions = {(v["kind"], v["action"]) for v in json.loads(result.stdout)}
    assert ("Namespace", CREATE) in actions and ("ConfigMap", CREATE) in actions


@pytest.mark.cluster
@pytest.mark.needs_pods
def test_status_exits_1_when_the_live_jwks_differs(kube: Kube, tmp_path: Path) -> None:
    _apply(kube, wait=True)  # status exits 0 only once the rollout is complete
    same = kube.jwksdeploy("status", "-n", kube.namespace, "--jwks", JWKS)
    assert same.exit_code == 0, same.stderr
    other = tmp_path / "other.json"
    other.write_bytes(jwks_bytes(ec_key(kid="x")))
    differs = kube.jwksdeploy("status", "-n", kube.namespace, "--jwks", str(other))
    assert differs.exit_code == 1
    assert "DIFFERS" in differs.stdout
    assert "live JWKS differs" in differs.stderr and "error:" not in differs.stderr
    url = kube.jwksdeploy("url", "-n", kube.namespace, "-o", "name")
    assert url.exit_code == 0 and url.stdout == "service/remote-jwks-go\n"
    as_yaml = kube.jwksdeploy("url", "-n", kube.namespace, "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout)["namespace"] == kube.namespace
    names = kube.jwksdeploy("status", "-n", kube.namespace, "-o", "name")
    assert names.stdout.splitlines() == [
        "configmap/jwks-config",
        "deployment/remote-jwks-go",
        "service/remote-jwks-go",
    ]


@pytest.mark.cluster
def test_delete_dry_run_keeps_everything(kube: Kube) -> None:
    _apply(kube)
    for mode in ("--dry-run", "--dry-run=client", "--dry-run=server"):
        result = kube.jwksdeploy("delete", "-n", kube.namespace, mode, "-o", "name")
        assert result.exit_code == 0, result.stderr
        assert "configmap/jwks-config" in result.stdout.splitlines()
    assert all(obj is not None for obj in _stored(kube).values())


@pytest.mark.cluster
def test_apply_client_dry_run_needs_no_cluster(tmp_path: Path) -> None:
    from .helpers import run

    result = run(
        "apply",
        "--jwks",
        JWKS,
        "-n",
        "a",
        "--dry-run=client",
        "-o",
        "name",
        "--kubeconfig",
        str(tmp_path / "missing"),
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "configmap/jwks-config",
        "service/remote-jwks-go",
        "deployment/remote-jwks-go",
    ]


@pytest.mark.cluster
def test_apply_field_manager_and_output_name(kube: Kube) -> None:
    result = kube.jwksdeploy(
        "apply",
        "--jwks",
        JWKS,
        "-n",
        kube.namespace,
        "--no-wait",
        "--field-manager",
        "ci-bot",
        "-o",
        "name",
    )
    assert result.exit_code == 0, result.stderr
    assert "configmap/jwks-config" in result.stdout.splitlines()
    configmap = kube.read("ConfigMap", "jwks-config")
    assert configmap is not None
    managers = {entry["manager"] for entry in configmap["metadata"]["managedFields"]}
    assert "ci-bot" in managers


@pytest.mark.cluster
def test_diff_needs_no_access_to_namespaces(kube: Kube) -> None:
    """A user whose RBAC stops at their namespace can diff: the Namespace is read only when a
    dry run says it is missing."""
    if kube.emulator is None:
        pytest.skip("needs the emulator's fault injection")
    kube.emulator.fail("GET", "namespaces", 403, 'namespaces is forbidden: User "dev"', times=9)
    result = _diff(kube)
    assert result.exit_code == 1, result.stderr
    assert "configmap/jwks-config (create)" in result.stderr


@pytest.mark.cluster
def test_a_refused_dry_run_in_an_existing_namespace_stays_an_error(kube: Kube) -> None:
    if kube.emulator is None:
        pytest.skip("needs the emulator's fault injection")
    _apply(kube)
    kube.emulator.fail(
        "PATCH", "deployments", 422, "spec.replicas: Invalid value", dry_run=True, times=3
    )
    result = _diff(kube)
    assert result.exit_code == 9, result.stderr
    assert result.stderr.startswith("error: ") and "Invalid value" in result.stderr
    assert result.stdout == ""
