"""The one fixture cluster tests get their cluster from: the emulator on 127.0.0.1, or the
real cluster named by JWKSDEPLOY_TEST_KUBECONFIG (a fresh namespace per test, deleted after)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
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
