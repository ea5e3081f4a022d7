"""The one fixture cluster tests get their cluster from: the emulator on 127.0.0.1, or the
real cluster named by JWKSDEPLOY_TEST_KUBECONFIG (a fresh namespace per test, deleted after)."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from .emulator import ClusterEmulator, EmulatorServer
from .helpers import run

REAL_KUBECONFIG = os.environ.get("JWKSDEPLOY_TEST_KUBECONFIG")
PATHS = {
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps/{name}",
    "Service": "/api/v1/namespaces/{ns}/services/{name}",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/{name}",
    "Namespace": "/api/v1/namespaces/{name}",
}
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
VOLATILE = ("resourceVersion", "generation", "managedFields")
# What a real deployment controller writes on the object itself, at its own pace.
CONTROLLER_WRITES = ("deployment.kubernetes.io/revision",)
CONTROLLERS = ("kube-controller-manager",)


def what_we_write(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """What an apply of ours can change: spec, data, metadata (without the fields the server
    and its controllers move) and the managedFields of the object itself, not its status.
    Compare these, not resourceVersions: a real deployment controller moves those."""
    if obj is None:
        return None
    meta = {k: v for k, v in obj["metadata"].items() if k not in VOLATILE}
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in CONTROLLER_WRITES
    }
    meta.pop("annotations", None)
    if annotations:
        meta["annotations"] = annotations
    owned = [
        m
        for m in obj["metadata"].get("managedFields") or []
        if not m.get("subresource") and m.get("manager") not in CONTROLLERS
    ]
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta, "owned": owned}


@dataclass
class EndpointWatch:
    """What a Service served during a change: the steps seen and those with no ready pod."""

    steps: list[str] = field(default_factory=list)
    outages: list[str] = field(default_factory=list)


@dataclass
class Kube:
    """A cluster for one test: its kubeconfig, a namespace that exists, and (on the emulator)
    the emulator itself for request-contract checks and fault injection."""

    kubeconfig: str
    namespace: str
    emulator: ClusterEmulator | None
    _client: Any

    def jwksdeploy(self, *args: str, input: bytes | None = None) -> Result:
        return run(*args, "--kubeconfig", self.kubeconfig, input=input)

    def read(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """Read an object back with the official client, as any other tool would."""
        path = PATHS[kind].format(ns=namespace or self.namespace, name=name)
        response = self._client.call_api(
            "GET",
            self._client.configuration.host + path,
            header_params={"Accept": "application/json", **self._auth()},
        )
        data = response.read()
        if response.status == 404:
            return None
        assert response.status == 200, data
        result: dict[str, Any] = json.loads(data)
        return result

    def call(
        self, method: str, path: str, body: Any = None, query: str = "", content_type: str = ""
    ) -> tuple[int, Any]:
        headers = {"Accept": "application/json", **self._auth()}
        if content_type:
            headers["Content-Type"] = content_type
        url = self._client.configuration.host + path + (f"?{query}" if query else "")
        response = self._client.call_api(method, url, header_params=headers, body=body)
        data = response.read()
        return response.status, json.loads(data) if data else None

    def kubectl_apply(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """What `kubectl apply` (client-side) sends, over HTTP: the object with the
        last-applied-configuration annotation, POSTed when new, else PUT over the live one,
        as field manager kubectl-client-side-apply (operation Update)."""
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        if obj["kind"] != "Namespace":
            meta["namespace"] = namespace or self.namespace
        original = json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\n"
        meta.setdefault("annotations", {})[LAST_APPLIED] = original
        path = PATHS[obj["kind"]].format(ns=meta.get("namespace"), name=meta["name"])
        query = "fieldManager=kubectl-client-side-apply"
        for _ in range(5):  # a controller may write in between: read again, as kubectl does
            live = self.read(obj["kind"], meta["name"], meta.get("namespace"))
            if live is None:
                status, answer = self.call(
                    "POST", path.rsplit("/", 1)[0], obj, query, "application/json"
                )
            else:
                meta["resourceVersion"] = live["metadata"]["resourceVersion"]
                status, answer = self.call("PUT", path, obj, query, "application/json")
            if status != 409:
                break
        assert status in (200, 201), answer
        result: dict[str, Any] = answer
        return result

    def server_side_apply(
        self, obj: dict[str, Any], manager: str, namespace: str | None = None
    ) -> dict[str, Any]:
        """Another tool's server-side apply, over HTTP."""
        obj = copy.deepcopy(obj)
        obj["metadata"]["namespace"] = namespace or self.namespace
        path = PATHS[obj["kind"]].format(
            ns=obj["metadata"]["namespace"], name=obj["metadata"]["name"]
        )
        status, answer = self.call(
            "PATCH",
            path,
            obj,
            f"fieldManager={manager}",
            "application/apply-patch+yaml",
        )
        assert status in (200, 201), answer
        result: dict[str, Any] = answer
        return result

    def serving(self, service: str, namespace: str | None = None) -> list[str]:
        """The ready pods the Service's selector picks, read over HTTP."""
        svc = self.read("Service", service, namespace)
        selector = (svc or {}).get("spec", {}).get("selector") or {}
        if not selector:
            return []
        labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        status, answer = self.call(
            "GET",
            f"/api/v1/namespaces/{namespace or self.namespace}/pods",
            query=f"labelSelector={labels}",
        )
        assert status == 200, answer
        return [
            pod["metadata"]["name"]
            for pod in answer.get("items") or []
            if pod.get("metadata", {}).get("deletionTimestamp") is None
            and any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (pod.get("status") or {}).get("conditions") or []
            )
        ]

    def wait_serving(self, service: str, timeout: float = 180.0) -> list[str]:
        """Wait until the Service selects a ready pod (the source's own pods take seconds on
        a real node, a fraction of one on the emulator); the pods, or [] at the deadline."""
        deadline = time.monotonic() + timeout
        while not (pods := self.serving(service)) and time.monotonic() < deadline:
            time.sleep(0.1)
        return pods

    @contextlib.contextmanager
    def watch_endpoint(self, service: str) -> Iterator[EndpointWatch]:
        """Record, while the block runs, every step at which the Service selected no ready
        pod: each write's snapshot on the emulator, a 0.1 s poll on a real cluster."""
        seen = EndpointWatch()
        if self.emulator is not None:
            start = len(self.emulator.history)
            yield seen
            for snapshot in self.emulator.history[start:]:
                seen.steps.append(snapshot.step)
                if not snapshot.serving(self.namespace, service):
                    seen.outages.append(snapshot.step)
            return
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                step = f"poll {len(seen.steps)}"
                seen.steps.append(step)
                if not self.serving(service):
                    seen.outages.append(step)
                time.sleep(0.1)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            yield seen
        finally:
            stop.set()
            thread.join()

    def create_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        response = self._client.call_api(
            "POST",
            self._client.configuration.host + "/api/v1/namespaces",
            header_params={"Content-Type": "application/json", **self._auth()},
            body=body,
        )
        assert response.status in (201, 409), response.read()

    def delete_namespace(self, name: str) -> None:
        self._client.call_api(
            "DELETE",
            self._client.configuration.host + f"/api/v1/namespaces/{name}",
            header_params=self._auth(),
        )

    def _auth(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        self._client.update_params_for_auth(headers, [], ["BearerToken"], "", "GET", None)
        return headers


def _client(kubeconfig: str) -> Any:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(
        config_file=kubeconfig, client_configuration=configuration, persist_config=False
    )
    return client.ApiClient(configuration)


@pytest.fixture(scope="session")
def _emulator_server() -> Iterator[EmulatorServer | None]:
    if REAL_KUBECONFIG:
        yield None
        return
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def kube(
    _emulator_server: EmulatorServer | None, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Kube]:
    if REAL_KUBECONFIG:
        if request.node.get_closest_marker("emulator_only"):
            pytest.skip("inspects or steers the emulator; not on a real cluster")
        namespace = f"jwksdeploy-test-{uuid.uuid4().hex[:8]}"
        api = _client(REAL_KUBECONFIG)
        target = Kube(REAL_KUBECONFIG, namespace, None, api)
        target.create_namespace(namespace)
        try:
            yield target
        finally:
            target.delete_namespace(namespace)
        return
    assert _emulator_server is not None
    emulator = _emulator_server.emulator
    emulator.reset()
    kubeconfig = _emulator_server.write_kubeconfig(tmp_path / "kubeconfig")
    target = Kube(str(kubeconfig), "envoy-yang", emulator, _client(str(kubeconfig)))
    target.create_namespace("envoy-yang")
    emulator.seen.clear()
    yield target


@pytest.fixture
def emulator_server(_emulator_server: EmulatorServer | None) -> EmulatorServer:
    if _emulator_server is None:
        pytest.skip("needs the emulator")
    return _emulator_server
