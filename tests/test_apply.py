"""`jwksdeploy apply` against a Kubernetes API over real HTTP (the emulator, or a real cluster
through JWKSDEPLOY_TEST_KUBECONFIG). Nothing of ours or of the client is patched."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import EXAMPLES, ec_key, jwks_bytes, rsa_public, run, running
from .kube import Kube, what_we_write

pytestmark = pytest.mark.cluster
JWKS = str(EXAMPLES / "jwks-rsa.json")


def apply(kube: Kube, *args: str, input: bytes | None = None):  # type: ignore[no-untyped-def]
    return kube.jwksdeploy(
        "apply", "--jwks", JWKS, "--namespace", kube.namespace, "--no-wait", *args, input=input
    )


OBJECTS = (
    ("ConfigMap", "jwks-config"),
    ("Service", "remote-jwks-go"),
    ("Deployment", "remote-jwks-go"),
)


def free_node_port(kube: Kube) -> int:
    """A nodePort no Service of the cluster holds (a real cluster has others)."""
    status, services = kube.call("GET", "/api/v1/services")
    assert status == 200, services
    taken = {p.get("nodePort") for s in services["items"] for p in s["spec"].get("ports") or []}
    return next(p for p in range(31456, 32768) if p not in taken)


def claim_configmap(kube: Kube, manager: str) -> None:
    """Another field manager writes jwks-config first (the setup for conflicts)."""
    assert kube.emulator is not None
    kube.emulator.apply_as(
        manager,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "jwks-config", "namespace": kube.namespace},
            "data": {"jwks.json": "{}"},
        },
    )


def test_apply_creates_objects_and_prints_the_url(kube: Kube) -> None:
    result = apply(kube)
    assert result.exit_code == 0, result.stderr
    configmap = kube.read("ConfigMap", "jwks-config")
    assert configmap is not None
    assert configmap["data"]["jwks.json"] == (EXAMPLES / "jwks-rsa.json").read_text()
    service = kube.read("Service", "remote-jwks-go")
    assert service is not None
    node_port = service["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    assert kube.read("Deployment", "remote-jwks-go") is not None
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("http://") and lines[0].endswith(f":{node_port}/jwks")
    for obj in (
        "configmap/jwks-config created",
        "service/remote-jwks-go created",
        "deployment/remote-jwks-go created",
    ):
        assert obj in result.stderr
    assert "JWKS URL via" in result.stderr


@pytest.mark.emulator_only
def test_apply_request_contract(kube: Kube) -> None:
    assert kube.emulator is not None
    result = apply(kube)
    assert result.exit_code == 0, result.stderr
    patches = kube.emulator.requests("PATCH")
    kinds = ["configmaps", "services", "deployments"]
    # A dry run of every object first (the pre-flight), then the real applies.
    assert [p.path.rsplit("/", 2)[-2] for p in patches] == kinds + kinds
    assert [p.query.get("dryRun") for p in patches] == ["All"] * 3 + [None] * 3
    for patch in patches:
        assert patch.content_type == "application/apply-patch+yaml"
        assert patch.query["fieldManager"] == "jwksdeploy"
        assert patch.query["fieldValidation"] == "Strict"
        assert "force" not in patch.query
    gets = kube.emulator.requests("GET")
    assert [g.path for g in gets][-1] == "/api/v1/nodes"
    # 3 reads, 3 dry runs, 3 applies, 1 prune list (PodDisruptionBudgets with our labels:
    # one replica renders none), 1 node list
    assert len(kube.emulator.requests()) == 11
    prune_list = next(g for g in gets if g.path.endswith("/poddisruptionbudgets"))
    assert prune_list.query == {
        "labelSelector": "app.kubernetes.io/managed-by=jwksdeploy,"
        "app.kubernetes.io/instance=remote-jwks-go"
    }
    assert not any(s.path in ("/api", "/apis") for s in kube.emulator.requests())


def test_reapply_is_unchanged_and_a_new_jwks_rolls_the_pods(kube: Kube, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert apply(kube).exit_code == 0
    before = kube.read("Deployment", "remote-jwks-go")
    node_port = kube.read("Service", "remote-jwks-go")["spec"]["ports"][0]["nodePort"]  # type: ignore[index]
    first = {kind: kube.read(kind, name) for kind, name in OBJECTS}
    for _ in range(2):  # the second apply of the same input, and the third
        again = apply(kube)
        assert again.exit_code == 0, again.stderr
        for line in (
            "configmap/jwks-config unchanged",
            "service/remote-jwks-go unchanged",
            "deployment/remote-jwks-go unchanged",
        ):
            assert line in again.stderr
        for kind, name in OBJECTS:
            now = kube.read(kind, name)
            assert now is not None
            assert what_we_write(now) == what_we_write(first[kind]), kind  # type: ignore[arg-type]
            if kind != "Deployment":  # its controller writes status, moving it
                assert (
                    now["metadata"]["resourceVersion"]
                    == (
                        first[kind]["metadata"]["resourceVersion"]  # type: ignore[index]
                    )
                ), kind
    assert again.stdout.strip().endswith(f":{node_port}/jwks")
    rotated = tmp_path / "rotated.json"
    rotated.write_bytes(jwks_bytes(rsa_public(), ec_key(kid="next")))
    changed = kube.jwksdeploy("apply", "--jwks", str(rotated), "-n", kube.namespace, "--no-wait")
    assert changed.exit_code == 0, changed.stderr
    assert "configmap/jwks-config configured" in changed.stderr
    assert "deployment/remote-jwks-go configured" in changed.stderr
    assert "service/remote-jwks-go unchanged" in changed.stderr
    after = kube.read("Deployment", "remote-jwks-go")
    assert before and after
    checksum = "checksum/jwks"
    assert (
        before["spec"]["template"]["metadata"]["annotations"][checksum]
        != after["spec"]["template"]["metadata"]["annotations"][checksum]
    )
    assert kube.read("ConfigMap", "jwks-config")["data"]["jwks.json"] == rotated.read_text()  # type: ignore[index]
    service = kube.read("Service", "remote-jwks-go")
    assert service is not None and service["spec"]["ports"][0]["nodePort"] == node_port


def test_an_explicit_node_port_is_kept_and_a_reapply_is_unchanged(kube: Kube) -> None:
    port = free_node_port(kube)
    first = apply(kube, "--node-port", str(port))
    assert first.exit_code == 0, first.stderr
    assert first.stdout.strip().endswith(f":{port}/jwks")
    again = apply(kube, "--node-port", str(port))
    assert again.exit_code == 0, again.stderr
    assert "service/remote-jwks-go unchanged" in again.stderr
    # The same input without --node-port: the port we own stays where the gateway points.
    without = apply(kube)
    assert without.exit_code == 0, without.stderr
    assert without.stdout.strip().endswith(f":{port}/jwks")
    service = kube.read("Service", "remote-jwks-go")
    assert service is not None and service["spec"]["ports"][0]["nodePort"] == port


def test_dry_run_stores_nothing(kube: Kube) -> None:
    result = apply(kube, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "configmap/jwks-config created (dry run)" in result.stderr
    assert kube.read("ConfigMap", "jwks-config") is None
    assert kube.read("Deployment", "remote-jwks-go") is None
    if kube.emulator is not None:  # a ClusterEmulator is falsy (kmock defines __len__)
        assert {p.query.get("dryRun") for p in kube.emulator.requests("PATCH")} == {"All"}


def test_missing_namespace_names_the_flag_and_create_namespace_fixes_it(kube: Kube) -> None:
    namespace = f"{kube.namespace}-new"
    result = kube.jwksdeploy("apply", "--jwks", JWKS, "-n", namespace, "--no-wait")
    assert result.exit_code == 9
    assert f"namespace '{namespace}' does not exist" in result.stderr
    assert "--create-namespace" in result.stderr
    assert "Traceback" not in result.stderr
    try:
        created = kube.jwksdeploy(
            "apply", "--jwks", JWKS, "-n", namespace, "--no-wait", "--create-namespace"
        )
        assert created.exit_code == 0, created.stderr
        assert f"namespace/{namespace} created" in created.stderr
        assert kube.read("ConfigMap", "jwks-config", namespace) is not None
    finally:
        kube.delete_namespace(namespace)


def test_a_refusal_with_create_namespace_leaves_no_namespace_and_no_objects(kube: Kube) -> None:
    """--create-namespace keeps the pre-flight's promise: the nodePort another Service holds
    is refused by the dry run, and the namespace created for it is deleted again."""
    port = free_node_port(kube)
    assert apply(kube, "--node-port", str(port)).exit_code == 0
    if kube.emulator is not None:
        kube.emulator.seen.clear()
    namespace = f"{kube.namespace}-new"
    try:
        result = kube.jwksdeploy(
            "apply", "--jwks", JWKS, "-n", namespace, "--no-wait", "--create-namespace",
            "--node-port", str(port),
        )  # fmt: skip
        assert result.exit_code == 9, result.stderr
        assert f"{port}: provided port is already allocated" in result.stderr
        assert "Nothing was changed" in result.stderr
        assert "Traceback" not in result.stderr
        assert f"namespace/{namespace} created" not in result.stderr
        assert kube.read("ConfigMap", "jwks-config", namespace) is None
        assert kube.read("Service", "remote-jwks-go", namespace) is None
        deadline = time.monotonic() + 120  # a real namespace terminates for a few seconds
        while kube.read("Namespace", namespace) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert kube.read("Namespace", namespace) is None
        if kube.emulator is not None:
            stored = [
                f"{s.method} {s.path}"
                for s in kube.emulator.requests()
                if s.method in ("PATCH", "POST", "PUT") and s.query.get("dryRun") != "All"
            ]
            assert stored == [f"PATCH /api/v1/namespaces/{namespace}"], stored
        fixed = kube.jwksdeploy(
            "apply", "--jwks", JWKS, "-n", namespace, "--no-wait", "--create-namespace"
        )
        assert fixed.exit_code == 0, fixed.stderr
        assert f"namespace/{namespace} created" in fixed.stderr
        assert "configmap/jwks-config created" in fixed.stderr
    finally:
        kube.delete_namespace(namespace)


def test_json_output_for_scripts(kube: Kube) -> None:
    result = apply(kube, "-o", "json", "--address", "127.0.0.1")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    node_port = report["nodePort"]
    assert report["url"] == f"http://127.0.0.1:{node_port}/jwks"
    assert report["address"] == "127.0.0.1"
    assert report["addressSource"] == "--address"
    assert report["namespace"] == kube.namespace
    assert [(o["kind"], o["outcome"]) for o in report["objects"]] == [
        ("ConfigMap", "created"),
        ("Service", "created"),
        ("Deployment", "created"),
    ]


@pytest.mark.emulator_only
def test_external_ip_of_a_ready_node_is_preferred(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.add_node("node-0", ready=False, ExternalIP="127.0.0.9")
    kube.emulator.add_node("node-2", InternalIP="127.0.0.2", ExternalIP="127.0.0.3")
    result = apply(kube)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("http://127.0.0.3:")
    assert "ExternalIP of node node-2" in result.stderr


@pytest.mark.emulator_only
def test_nodes_forbidden_prints_the_node_port_and_how_to_form_the_url(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.fail("GET", "nodes", 403, 'nodes is forbidden: User "dev" cannot list')
    result = apply(kube)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "nodes cannot be listed (RBAC)" in result.stderr
    assert "--address" in result.stderr


@pytest.mark.parametrize(
    ("service_type", "expected"),
    [
        ("ClusterIP", "http://remote-jwks-go.{ns}.svc.cluster.local:8080/jwks"),
    ],
)
def test_cluster_ip_prints_the_in_cluster_url(kube: Kube, service_type: str, expected: str) -> None:
    result = apply(kube, "--service-type", service_type)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == expected.format(ns=kube.namespace)


@pytest.mark.emulator_only
@pytest.mark.parametrize(
    ("status", "message", "code", "fragments"),
    [
        (
            403,
            'configmaps "jwks-config" is forbidden',
            7,
            ["denied patch on configmaps in namespace 'envoy-yang'", "RBAC"],
        ),
        (
            422,
            'ConfigMap "jwks-config" is invalid: data: Too long',
            9,
            ["rejected ConfigMap 'jwks-config'", "data: Too long"],
        ),
        (500, "etcdserver: request timed out", 6, ["answered 500", "try again"]),
    ],
)
def test_api_errors_become_one_paragraph_and_an_exit_code(
    kube: Kube, status: int, message: str, code: int, fragments: list[str]
) -> None:
    assert kube.emulator is not None
    kube.emulator.fail("PATCH", "configmaps", status, message)
    result = apply(kube)
    assert result.exit_code == code
    for fragment in fragments:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert "HTTP response headers" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


@pytest.mark.emulator_only
def test_failure_part_way_says_what_was_applied_and_rerun_converges(kube: Kube) -> None:
    assert kube.emulator is not None
    # The pre-flight dry run passes; the real write of the Deployment is refused.
    kube.emulator.fail("PATCH", "deployments", 403, "deployments.apps is forbidden", dry_run=False)
    result = apply(kube)
    assert result.exit_code == 7
    assert "denied patch on deployments" in result.stderr
    assert (
        "Already applied: configmap/jwks-config created, service/remote-jwks-go created. "
        "Running the command again converges once that permission is granted."
    ) in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert result.stderr.count("error") == 1
    rerun = apply(kube)
    assert rerun.exit_code == 0
    assert "deployment/remote-jwks-go created" in rerun.stderr
    assert "configmap/jwks-config unchanged" in rerun.stderr


@pytest.mark.emulator_only
def test_conflict_names_the_other_manager_and_force_takes_over(kube: Kube) -> None:
    assert kube.emulator is not None
    claim_configmap(kube, "kubectl-edit")
    result = apply(kube)
    assert result.exit_code == 8
    assert "managed by kubectl-edit" in result.stderr
    assert "--force-conflicts" in result.stderr
    forced = apply(kube, "--force-conflicts")
    assert forced.exit_code == 0, forced.stderr
    assert kube.emulator.requests("PATCH")[-3].query["force"] == "true"
    assert kube.read("ConfigMap", "jwks-config")["data"]["jwks.json"] != "{}"  # type: ignore[index]


def test_server_rejects_a_node_port_outside_its_range(kube: Kube) -> None:
    result = apply(kube, "--node-port", "8080", "--node-port-range", "1-9000")
    assert result.exit_code == 9
    assert "provided port is not in the valid range" in result.stderr
    assert kube.read("Service", "remote-jwks-go") is None


@pytest.mark.emulator_only
def test_unauthorized(kube: Kube, emulator_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    kubeconfig = emulator_server.write_kubeconfig(tmp_path / "bad", token="expired")

    result = run(
        "apply", "--jwks", JWKS, "-n", kube.namespace, "--no-wait", "--kubeconfig", str(kubeconfig)
    )
    assert result.exit_code == 6
    assert "refused our credentials (401" in result.stderr
    assert "expired" not in result.stderr


@pytest.mark.emulator_only
def test_a_stalled_api_server_times_out(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.fail("PATCH", "configmaps", 200, "", delay=3)
    result = apply(kube, "--request-timeout", "500ms")
    assert result.exit_code == 10
    assert "did not answer PATCH" in result.stderr


def test_unreachable_cluster(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )

    result = run("apply", "--jwks", JWKS, "-n", "x", "--no-wait", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 6
    assert f"cannot reach the API server at http://127.0.0.1:{port}" in result.stderr
    missing = run("apply", "--jwks", JWKS, "-n", "x", "--kubeconfig", str(tmp_path / "none"))
    assert missing.exit_code == 6
    assert f"kubeconfig '{tmp_path / 'none'}' (--kubeconfig) does not exist" in missing.stderr
    nothing = run("apply", "--jwks", JWKS, "-n", "x")  # $KUBECONFIG names a missing file
    assert nothing.exit_code == 6
    assert "no kubeconfig found" in nothing.stderr


def test_private_keys_never_reach_the_cluster(kube: Kube, tmp_path) -> None:  # type: ignore[no-untyped-def]
    leaked = tmp_path / "leaked.json"
    leaked.write_bytes(jwks_bytes({**ec_key(), "d": "cHJpdmF0ZQ"}))
    result = kube.jwksdeploy("apply", "--jwks", str(leaked), "-n", kube.namespace, "--no-wait")
    assert result.exit_code == 4
    if kube.emulator is not None:  # a ClusterEmulator is falsy (kmock defines __len__)
        assert kube.emulator.requests() == [], "not one request: the check comes first"
    assert kube.read("ConfigMap", "jwks-config") is None


@pytest.mark.needs_pods
def test_wait_returns_once_the_rollout_is_done(kube: Kube) -> None:
    result = kube.jwksdeploy(
        "apply", "--jwks", JWKS, "-n", kube.namespace, "--wait", "--timeout", "3m"
    )
    assert result.exit_code == 0, result.stderr
    assert "rollout: 1/1 pods available" in result.stderr
    assert result.stdout.startswith("http://")


@pytest.mark.emulator_only
def test_wait_times_out_with_the_reason(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.auto_ready = False
    kube.emulator.put(
        "pods",
        kube.namespace,
        {
            "metadata": {
                "name": "remote-jwks-go-abc",
                "labels": {
                    "app.kubernetes.io/name": "jwks-server",
                    "app.kubernetes.io/instance": "remote-jwks-go",
                },
            },
            "status": {
                "containerStatuses": [
                    {
                        "name": "remote-jwks-go",
                        "state": {
                            "waiting": {
                                "reason": "ImagePullBackOff",
                                "message": "Back-off pulling image",
                            }
                        },
                    }
                ]
            },
        },
    )
    kube.emulator.put(
        "events",
        kube.namespace,
        {
            "metadata": {"name": "e1"},
            "type": "Warning",
            "reason": "Failed",
            "message": "Failed to pull image",
            "involvedObject": {"kind": "Pod", "name": "remote-jwks-go-abc"},
            "lastTimestamp": "2026-11-28T10:00:00Z",
        },
    )
    result = kube.jwksdeploy(
        "apply", "--jwks", JWKS, "-n", kube.namespace, "--wait", "--timeout", "1s"
    )
    assert result.exit_code == 10
    assert "was not ready after 1s" in result.stderr
    assert "pod remote-jwks-go-abc: ImagePullBackOff (Back-off pulling image)" in result.stderr
    assert "event on remote-jwks-go-abc: Failed: Failed to pull image" in result.stderr


@pytest.mark.emulator_only
def test_wait_finishes_when_the_deployment_becomes_available(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.auto_ready = False
    import threading

    timer = threading.Timer(
        1.0, kube.emulator.set_deployment_ready, args=(kube.namespace, "remote-jwks-go")
    )
    timer.start()
    try:
        result = kube.jwksdeploy(
            "apply", "--jwks", JWKS, "-n", kube.namespace, "--wait", "--timeout", "20s"
        )
    finally:
        timer.cancel()
    assert result.exit_code == 0, result.stderr
    assert "rollout: 1/1 pods available after" in result.stderr


# --- url, status, delete ---------------------------------------------------------------


@pytest.mark.needs_pods
def test_url_status_and_delete(kube: Kube, tmp_path) -> None:  # type: ignore[no-untyped-def]
    applied = kube.jwksdeploy(
        "apply", "--jwks", JWKS, "-n", kube.namespace, "--replicas", "2", "--timeout", "3m"
    )
    assert applied.exit_code == 0, applied.stderr
    url = kube.jwksdeploy("url", "-n", kube.namespace)
    assert url.exit_code == 0, url.stderr
    assert url.stdout == applied.stdout
    status = kube.jwksdeploy("status", "-n", kube.namespace, "--jwks", JWKS, "-o", "json")
    assert status.exit_code == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["objects"] == [
        "configmap/jwks-config",
        "deployment/remote-jwks-go",
        "poddisruptionbudget/remote-jwks-go",
        "service/remote-jwks-go",
    ]
    assert report["matchesLocalJwks"] is True
    assert report["url"] == applied.stdout.strip()
    other = tmp_path / "other.json"
    other.write_bytes(jwks_bytes(ec_key(kid="x")))
    differs = kube.jwksdeploy("status", "-n", kube.namespace, "--jwks", str(other))
    assert "live ConfigMap DIFFERS from" in differs.stdout
    deleted = kube.jwksdeploy("delete", "-n", kube.namespace, "--wait", "--timeout", "1m")
    assert deleted.exit_code == 0, deleted.stderr
    assert f"{kube.namespace}: configmap/jwks-config deleted" in deleted.stdout
    assert kube.read("Deployment", "remote-jwks-go") is None
    assert kube.read("ConfigMap", "jwks-config") is None
    again = kube.jwksdeploy("delete", "-n", kube.namespace)
    assert again.exit_code == 0
    assert "configmap/jwks-config not found" in again.stdout
    gone = kube.jwksdeploy("url", "-n", kube.namespace)
    assert gone.exit_code == 9
    assert "jwksdeploy apply --namespace" in gone.stderr


@pytest.mark.emulator_only
def test_delete_leaves_objects_it_does_not_manage(kube: Kube) -> None:
    assert kube.emulator is not None
    claim_configmap(kube, "someone-else")
    result = kube.jwksdeploy("delete", "-n", kube.namespace)
    assert result.exit_code == 0
    assert "configmap/jwks-config not found" in result.stdout
    assert kube.read("ConfigMap", "jwks-config") is not None


# --- kubeconfigs and servers that are not what they seem (issue 9, items 7, 8 and 13) ----------


def _kubeconfig(server: str, cluster: dict | None = None, user: dict | None = None) -> dict:  # type: ignore[type-arg]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": "u", "user": user or {}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }


def _refused_cleanly(result, code: int = 6) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and "This is a bug" not in result.stderr
    assert result.stdout == ""


SECRET_TOKEN = "s3cr3t-t0ken-value"


@pytest.mark.parametrize(
    "case",
    [
        "dev-zero",
        "huge",
        "not-yaml",
        "list-top-level",
        "directory",
        "duplicate-key",
        "bad-ca-data",
        "bad-client-key-data",
        "ca-file-missing",
        "token-file-missing",
        "token-file-directory",
        "token-file-dev-zero",
        "no-such-context",
        "clusters-not-a-list",
    ],
)
def test_malformed_kubeconfigs_are_one_line_and_exit_6(case: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "kubeconfig"
    https = "https://127.0.0.1:1"
    documents = {
        "bad-ca-data": _kubeconfig(https, {"certificate-authority-data": "!!not base64!!"}),
        "bad-client-key-data": _kubeconfig(
            https, user={"client-certificate-data": "QUJD", "client-key-data": "%%%"}
        ),
        "ca-file-missing": _kubeconfig(https, {"certificate-authority": "nope/ca.crt"}),
        "token-file-missing": _kubeconfig(https, user={"tokenFile": str(tmp_path / "no-token")}),
        "token-file-directory": _kubeconfig(https, user={"tokenFile": str(tmp_path)}),
        "token-file-dev-zero": _kubeconfig(https, user={"tokenFile": "/dev/zero"}),
        "no-such-context": {**_kubeconfig(https), "current-context": "elsewhere"},
        "clusters-not-a-list": {**_kubeconfig(https), "clusters": {"c": "x"}},
    }
    kubeconfig = str(path)
    if case == "dev-zero":
        kubeconfig = "/dev/zero"
    elif case == "huge":
        path.write_text("# padding\n" * 500_000)
    elif case == "not-yaml":
        path.write_text("clusters: [{{{: :\n")
    elif case == "list-top-level":
        path.write_text("- a\n- b\n")
    elif case == "directory":
        kubeconfig = str(tmp_path)
    elif case == "duplicate-key":
        path.write_text(json.dumps(_kubeconfig(https))[:-1] + ', "current-context": "d"}')
    else:
        document = documents[case]
        document["users"][0]["user"].setdefault("token", SECRET_TOKEN)
        path.write_text(json.dumps(document))
    result = run("url", "-n", "x", "--kubeconfig", kubeconfig)
    _refused_cleanly(result)
    assert SECRET_TOKEN not in result.stderr
    assert "kubeconfig" in result.stderr or "Kubeconfig" in result.stderr


def test_a_relative_token_file_is_read_next_to_its_kubeconfig(
    kube: Kube,
    tmp_path,
    emulator_server,  # type: ignore[no-untyped-def]
) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    (config_dir / "token").write_text("emulator-token\n")
    path = config_dir / "kubeconfig"
    path.write_text(json.dumps(_kubeconfig(emulator_server.url, user={"tokenFile": "token"})))
    assert apply(kube).exit_code == 0

    result = run("url", "-n", kube.namespace, "--kubeconfig", str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("http://")


def test_kubeconfig_list_in_env_is_merged_first_definition_wins(
    kube: Kube,
    tmp_path,
    emulator_server,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    assert apply(kube).exit_code == 0
    first = tmp_path / "first"
    second = tmp_path / "second"
    good = _kubeconfig(emulator_server.url, user={"token": "emulator-token"})
    first.write_text(json.dumps({**good, "users": [], "clusters": []}))
    second.write_text(json.dumps({**good, "current-context": "ignored"}))
    monkeypatch.setenv(
        "KUBECONFIG", f"{first}{os.pathsep}{tmp_path / 'missing'}{os.pathsep}{second}"
    )

    result = run("url", "-n", kube.namespace)
    assert result.exit_code == 0, result.stderr


@contextlib.contextmanager
def _tls_server(handler: type) -> Iterator[int]:  # type: ignore[type-arg]
    """An https server on 127.0.0.1 with a throwaway self-signed certificate."""
    import datetime
    import http.server
    import ssl
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    with tempfile.TemporaryDirectory() as directory:
        pem = Path(directory) / "server.pem"
        pem.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pem)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)

        with running(server) as port:
            yield port


class _NoService(http.server.BaseHTTPRequestHandler):
    """An API server that has no Service: every GET is a Kubernetes 404 Status."""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Status",
                "status": "Failure",
                "code": 404,
                "reason": "NotFound",
                "message": 'services "remote-jwks-go" not found',
            }
        ).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _PlainWebServer(_NoService):
    """Not an API server at all: a web server's HTML 404."""

    def do_GET(self) -> None:
        body = b"<html><body>404 page not found</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_insecure_skip_tls_verify_is_said_once_in_our_words(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with _tls_server(_NoService) as port:
        path = tmp_path / "kubeconfig"
        path.write_text(
            json.dumps(
                _kubeconfig(
                    f"https://127.0.0.1:{port}",
                    {"insecure-skip-tls-verify": True},
                    {"token": SECRET_TOKEN},
                )
            )
        )
        process = subprocess.run(
            [sys.executable, "-m", "jwksdeploy", "status", "-n", "x", "--kubeconfig", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "NO_PROXY": "127.0.0.1"},
        )
    assert process.returncode == 9, process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 2, process.stderr
    assert lines[0].startswith(
        f"warning: the kubeconfig sets insecure-skip-tls-verify for https://127.0.0.1:{port}"
    )
    assert lines[1].startswith("error: nothing managed by jwksdeploy")
    assert "InsecureRequestWarning" not in process.stderr and ".py" not in process.stderr
    assert SECRET_TOKEN not in process.stderr


def test_a_plain_web_server_is_not_a_kubernetes_api(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import http.server

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PlainWebServer)
    with running(server) as port:
        path = tmp_path / "kubeconfig"
        path.write_text(json.dumps(_kubeconfig(f"http://127.0.0.1:{port}")))
        result = run("apply", "--jwks", JWKS, "-n", "envoy-yang", "--kubeconfig", str(path))
        url = run("url", "-n", "envoy-yang", "--kubeconfig", str(path))
    for outcome in (result, url):
        _refused_cleanly(outcome)
        assert f"the server at http://127.0.0.1:{port} is not a Kubernetes API" in outcome.stderr
        assert "does not exist" not in outcome.stderr


def test_a_server_that_never_answers_times_out_once_with_exit_10(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket
    import threading

    accepted: list[socket.socket] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            accepted.append(connection)  # held open, never answered

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        port = listener.getsockname()[1]
        path = tmp_path / "kubeconfig"
        path.write_text(json.dumps(_kubeconfig(f"http://127.0.0.1:{port}")))
        result = run("url", "-n", "x", "--kubeconfig", str(path), "--request-timeout", "300ms")
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()
    _refused_cleanly(result, 10)
    assert "did not answer GET" in result.stderr
    assert len(accepted) == 1, "one request, no retry after the timeout"


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--provider", "contour", "--tls-secret", "t"], "--fqdn"),
        (["--provider", "envoy-gateway"], "--target-route"),
        (["--provider", "istio"], "requires an issuer"),
        (["--provider", "envoy", "--cache-duration", "0.5ms"], "--cache-duration '0.5ms'"),
        (["--provider", "contour", "--fqdn", "a.b", "--dns-lookup-family", "all"], "Contour"),
    ],
)
def test_apply_refuses_bad_gateway_flags_before_it_applies_anything(
    kube: Kube, flags: list[str], fragment: str
) -> None:
    for namespaces in ([kube.namespace], [kube.namespace, "other-ns"]):
        extra = [arg for ns in namespaces[1:] for arg in ("-n", ns)]
        result = apply(kube, *extra, "--address", "127.0.0.1", *flags)
        assert result.exit_code == 3, result.stderr
        assert fragment in result.stderr and result.stdout == ""
        assert "Traceback" not in result.stderr
        assert kube.read("ConfigMap", "jwks-config") is None, "nothing was applied"
        assert kube.read("Deployment", "remote-jwks-go") is None
    client = apply(kube, "--dry-run=client", *flags)
    assert client.exit_code == 3 and fragment in client.stderr, "a client dry run checks too"
    if kube.emulator is not None:
        assert kube.emulator.requests("PATCH") == [], "not even a dry run was sent"
    # The same flags made whole apply, and print the configuration with the real URL.
    fixed = {
        "contour": ["--fqdn", "a.b", "--tls-secret", "t"],
        "envoy-gateway": ["--target-route", "r"],
        "istio": ["--issuer", "i"],
        "envoy": [],
    }[flags[1]]
    result = apply(kube, "--address", "127.0.0.1", "--provider", flags[1], *fixed)
    assert result.exit_code == 0, result.stderr
    service = kube.read("Service", "remote-jwks-go")
    assert service is not None
    assert f"http://127.0.0.1:{service['spec']['ports'][0]['nodePort']}/jwks" in result.stdout
