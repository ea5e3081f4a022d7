"""A cluster command loads only the official client's transport: its Configuration, REST
client (urllib3) and, for an exec credential plugin, its ExecProvider; never the package's
__init__ (the kubeconfig loader with OAuth and requests, the dynamic client, streams), the
generated APIs and models or pydantic. `python -X importtime` lists what a real process
loads (issue 19, import cost of a cluster command)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import EXAMPLES
from .kube import Kube

# What the transport needs: kubernetes.client's __init__ (lazy since 37), Configuration,
# rest, and what rest imports itself (exceptions, kubernetes.utils for its retry options).
TRANSPORT = {
    "kubernetes.client",
    "kubernetes.client.configuration",
    "kubernetes.client.rest",
    "kubernetes.client.exceptions",
    "kubernetes.utils",
    "kubernetes.utils.create_from_yaml",
    "kubernetes.utils.duration",
    "kubernetes.utils.keepalive",
    "kubernetes.utils.metrics",
    "kubernetes.utils.quantity",
    "kubernetes.utils.retry",
    "kubernetes.utils._retry_base",
}
NEVER = ("pydantic", "requests", "requests_oauthlib", "oauthlib", "kubernetes_validate")


def loaded_by(*args: str, cwd: Path) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The modules a `python -m jwksdeploy ARGS` process loads, and the process."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jwksdeploy", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )
    lines = result.stderr.splitlines()
    modules = {line.rpartition("|")[2].strip() for line in lines if line.startswith("import time:")}
    result.stderr = "".join(f"{line}\n" for line in lines if not line.startswith("import time:"))
    return modules, result


def _kubernetes(modules: set[str]) -> set[str]:
    return {m for m in modules if m == "kubernetes" or m.startswith("kubernetes.")}


def _third_party_never_loaded(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in NEVER)


@pytest.mark.cluster
@pytest.mark.emulator_only
def test_a_cluster_command_loads_only_the_clients_transport(kube: Kube, tmp_path: Path) -> None:
    """`apply` reads and writes through Configuration + rest: nothing else of the client."""
    jwks = str(EXAMPLES / "jwks.json")
    args = ("apply", "--jwks", jwks, "-n", kube.namespace, "--no-wait")
    modules, result = loaded_by(*args, "--kubeconfig", kube.kubeconfig, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "deployment/remote-jwks-go created" in result.stderr, result.stderr
    assert result.stdout.endswith("/jwks\n"), result.stdout
    assert kube.emulator is not None and kube.emulator.requests(), "no request reached it"
    assert _kubernetes(modules) == TRANSPORT, sorted(_kubernetes(modules) ^ TRANSPORT)
    assert _third_party_never_loaded(modules) == []


def _token_plugin(tmp_path: Path, token: str) -> dict[str, object]:
    script = tmp_path / "credential-plugin"
    script.write_text(
        f"#!{sys.executable}\nimport json\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', "
        f"'kind': 'ExecCredential', 'status': {{'token': {token!r}}}}}))\n"
    )
    script.chmod(0o755)
    return {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": str(script),
        "interactiveMode": "Never",
    }


@pytest.mark.cluster
@pytest.mark.emulator_only
def test_an_exec_plugin_adds_only_the_clients_exec_provider(kube: Kube, tmp_path: Path) -> None:
    """The plugin's token authenticates (the emulator refuses a missing or wrong one), and
    the client's ExecProvider is the one extra module: not its kubeconfig loader."""
    assert kube.emulator is not None and kube.emulator.token
    document = json.loads(Path(kube.kubeconfig).read_text())
    document["users"][0]["user"] = {"exec": _token_plugin(tmp_path, kube.emulator.token)}
    path = tmp_path / "kubeconfig-exec"
    path.write_text(json.dumps(document))
    modules, result = loaded_by(
        "url", "-n", kube.namespace, "--kubeconfig", str(path), cwd=tmp_path
    )
    assert "401" not in result.stderr and "Unauthorized" not in result.stderr, result.stderr
    authorized = [s for s in kube.emulator.requests() if s.path.startswith("/api/v1/")]
    assert authorized, "the command sent no request"
    extra = {"kubernetes.config.exec_provider", "kubernetes.config.config_exception"}
    assert _kubernetes(modules) == TRANSPORT | extra, sorted(_kubernetes(modules))
    assert _third_party_never_loaded(modules) == []


def test_the_deferred_package_is_whole_for_whoever_asks_it_for_more(tmp_path: Path) -> None:
    """After a connect, code in the same process that imports `kubernetes` the usual way still
    finds all of it (its __init__ runs on the first name the deferred module lacks)."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    code = (
        "import sys\n"
        "from jwksdeploy.kube.client import connect\n"
        f"cluster = connect({str(kubeconfig)!r})\n"
        "assert 'kubernetes.config.kube_config' not in sys.modules\n"
        "import kubernetes\n"
        "from kubernetes import config, watch\n"
        "print(kubernetes.__version__, callable(config.load_kube_config), watch.Watch.__name__)\n"
        "print(kubernetes.client.ApiClient.__name__, cluster.configuration.host)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("37.") and first.endswith(" True Watch"), first
    assert second == "ApiClient http://127.0.0.1:9"


@pytest.mark.cluster
@pytest.mark.emulator_only
def test_an_auth_provider_user_still_goes_through_the_official_loader(
    kube: Kube, tmp_path: Path
) -> None:
    """gcp and oidc need the client's OAuth code: such a user is loaded by the official
    loader, whose oidc id-token is what reaches the server."""
    import base64

    assert kube.emulator is not None
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 4102444800}).encode()).decode()
    id_token = f"eyJhbGciOiJub25lIn0.{payload.rstrip('=')}.c2ln"
    document = json.loads(Path(kube.kubeconfig).read_text())
    provider = {"name": "oidc", "config": {"id-token": id_token, "idp-issuer-url": "x"}}
    document["users"][0]["user"] = {"auth-provider": provider}
    path = tmp_path / "kubeconfig-oidc"
    path.write_text(json.dumps(document))
    previous, kube.emulator.token = kube.emulator.token, id_token
    try:
        modules, result = loaded_by(
            "url", "-n", kube.namespace, "--kubeconfig", str(path), cwd=tmp_path
        )
    finally:
        kube.emulator.token = previous
    assert "Unauthorized" not in result.stderr, result.stderr
    assert "kubernetes.config.kube_config" in modules
