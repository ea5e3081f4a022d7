"""The emulator is a hard judge: what a real API server does that the product must cope
with (issue 19), checked over HTTP. Those that steer or count on the emulator's own timing
are emulator_only; the rest hold on a real server too."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from .kube import PATHS, Kube

pytestmark = pytest.mark.cluster

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "judge"},
    "spec": {"type": "NodePort", "selector": {"app": "judge"}, "ports": [{"port": 8080}]},
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "judge"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "judge"}},
        "template": {
            "metadata": {"labels": {"app": "judge"}},
            "spec": {"containers": [{"name": "judge", "image": "registry.k8s.io/pause:3.10"}]},
        },
    },
}


def _apply(kube: Kube, obj: dict[str, Any], manager: str = "judge") -> tuple[int, Any]:
    obj = copy.deepcopy(obj)
    obj["metadata"]["namespace"] = kube.namespace
    path = PATHS[obj["kind"]].format(ns=kube.namespace, name=obj["metadata"]["name"])
    return kube.call("PATCH", path, obj, f"fieldManager={manager}", "application/apply-patch+yaml")


@pytest.mark.emulator_only
def test_a_write_with_the_resource_version_read_loses_to_the_controller(kube: Kube) -> None:
    status, created = _apply(kube, DEPLOYMENT)
    assert status == 201, created
    read = kube.read("Deployment", "judge")
    assert read is not None
    stale = {**copy.deepcopy(DEPLOYMENT), "metadata": {**read["metadata"]}}
    stale["metadata"].pop("managedFields")
    status, answer = _apply(kube, stale)
    assert status == 409, answer
    assert answer["reason"] == "Conflict"
    assert "causes" not in answer["details"]  # not a field manager conflict
    assert answer["message"] == (
        'Operation cannot be fulfilled on deployments.apps "judge": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    now = kube.read("Deployment", "judge")
    assert now is not None
    assert now["metadata"]["resourceVersion"] != read["metadata"]["resourceVersion"]
    assert now["status"]["conditions"][0]["type"] == "Progressing"


def test_an_allocated_node_port_is_nobodys_until_applied(kube: Kube) -> None:
    status, first = _apply(kube, SERVICE)
    assert status == 201, first
    node_port = first["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    assert first["spec"]["clusterIP"]

    def owns_node_port(obj: dict[str, Any]) -> bool:
        return any("f:nodePort" in str(m["fieldsV1"]) for m in obj["metadata"]["managedFields"])

    assert not owns_node_port(first)
    status, same = _apply(kube, SERVICE)  # changes nothing: nothing moves
    assert status == 200, same
    assert same["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert same["metadata"]["managedFields"] == first["metadata"]["managedFields"]
    owned = copy.deepcopy(SERVICE)
    owned["spec"]["ports"][0]["nodePort"] = node_port
    status, taken = _apply(kube, owned)  # same value, a new owner: a change
    assert status == 200, taken
    assert taken["spec"]["ports"][0]["nodePort"] == node_port
    assert owns_node_port(taken)
    assert taken["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]


def test_a_node_port_already_taken_is_a_422_naming_it(kube: Kube) -> None:
    status, first = _apply(kube, SERVICE)
    assert status == 201, first
    node_port = first["spec"]["ports"][0]["nodePort"]
    other = copy.deepcopy(SERVICE)
    other["metadata"]["name"] = "judge-2"
    other["spec"]["ports"][0]["nodePort"] = node_port
    status, answer = _apply(kube, other)
    assert status == 422, answer
    assert answer["message"] == (
        f'Service "judge-2" is invalid: spec.ports[0].nodePort: Invalid value: {node_port}: '
        "provided port is already allocated"
    )


@pytest.mark.emulator_only
def test_pods_turn_ready_after_a_delay_not_at_creation(kube: Kube) -> None:
    assert kube.emulator is not None
    status, created = _apply(kube, DEPLOYMENT)
    assert status == 201, created
    assert created["status"].get("availableReplicas", 0) == 0
    pods = kube.emulator.pods_of(kube.namespace, "judge")
    assert pods and all(p["status"]["conditions"][0]["status"] == "False" for p in pods)
    deadline = time.monotonic() + 30
    while (kube.read("Deployment", "judge") or {}).get("status", {}).get(
        "availableReplicas"
    ) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    pods = kube.emulator.pods_of(kube.namespace, "judge")
    assert pods and all(p["status"]["conditions"][0]["status"] == "True" for p in pods)
