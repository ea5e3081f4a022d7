"""`render --server`: each preset's manifests (golden files, Kubernetes 1.32 schema, the
restricted Pod Security profile), and each preset's command line run for real where it can be."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .helpers import EXAMPLES, run

GOLDEN = Path(__file__).parent / "golden"
OUR_IMAGE = "registry.example/jwksdeploy-serve:0.1.0"
PRESET_ARGS = {
    "jwksdeploy": ["--server", "jwksdeploy", "--image", OUR_IMAGE],
    "nginx": ["--server", "nginx"],
}
BASE = ["render", "--jwks", str(EXAMPLES / "jwks-rsa.json"), "-n", "envoy-yang"]


def render(*args: str) -> list[dict[str, Any]]:
    result = run(*BASE, *args)
    assert result.exit_code == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (obj,) = [o for o in objects if o["kind"] == kind]
    return obj


@pytest.mark.parametrize("server", sorted(PRESET_ARGS))
def test_golden_file_per_preset(server: str, update_golden: bool) -> None:
    golden = GOLDEN / f"render-server-{server}.yaml"
    result = run(*BASE, *PRESET_ARGS[server])
    assert result.exit_code == 0, result.stderr
    if update_golden:
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text(), (
        f"{golden.name} drifted; review and regenerate with "
        "`python -m pytest tests/test_render_servers.py --update-golden`"
    )


def test_the_default_preset_is_the_source_output_unchanged() -> None:
    args = ["render", "--jwks", str(EXAMPLES / "jwks.json"), "-n", "envoy-yang"]
    explicit = run(*args, "--server", "remote-jwks-go")
    assert explicit.stdout == (EXAMPLES / "rendered-source.yaml").read_text()


@pytest.mark.parametrize("replicas", ["1", "2"])
@pytest.mark.parametrize("server", sorted(PRESET_ARGS))
def test_presets_validate_and_meet_the_restricted_profile(server: str, replicas: str) -> None:
    objects = render(*PRESET_ARGS[server], "--replicas", replicas)
    for obj in objects:
        kubernetes_validate.validate(obj, "1.32", strict=True)
    pod = of_kind(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
    # restricted allows only these volume types; every mount has its volume
    assert all(set(v) - {"name"} <= {"configMap", "emptyDir"} for v in pod["volumes"])
    names = {v["name"] for v in pod["volumes"]}
    assert {m["name"] for m in container["volumeMounts"]} == names
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_nginx_preset_mounts_its_config_and_writable_dirs() -> None:
    objects = render("--server", "nginx", "--container-port", "9090")
    data = of_kind(objects, "ConfigMap")["data"]
    assert data["jwks.json"] == (EXAMPLES / "jwks-rsa.json").read_text()
    assert "listen 9090;" in data["nginx.conf"] and "daemon off;" in data["nginx.conf"]
    deployment = of_kind(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("docker.io/nginxinc/nginx-unprivileged:1.")
    assert container["command"] == ["nginx"]
    assert container["args"][-2:] == ["-c", "/etc/jwks/nginx.conf"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "subPath" not in mounts["/etc/jwks"] and mounts["/etc/jwks"]["readOnly"]
    assert {"/tmp", "/var/cache/nginx"} <= set(mounts)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    changed = of_kind(render("--server", "nginx"), "Deployment")["spec"]["template"]["metadata"]
    assert annotations["checksum/jwks"] == changed["annotations"]["checksum/jwks"]
    assert annotations["checksum/server-config"] != changed["annotations"]["checksum/server-config"]


def test_preset_choices_and_refusals(tmp_path: Path) -> None:
    missing = run(*BASE, "--server", "jwksdeploy")
    assert missing.exit_code == 3 and "--server jwksdeploy needs --image" in missing.stderr
    assert missing.stdout == ""
    unknown = run(*BASE, "--server", "caddy")
    assert unknown.exit_code == 2 and "caddy" in unknown.stderr
    values = tmp_path / "values.yaml"
    values.write_text("server: nginx\n")
    from_file = render("--values", str(values))
    (container,) = of_kind(from_file, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "nginx"
    values.write_text("server: [nginx]\n")
    listed = run(*BASE, "--values", str(values))
    assert listed.exit_code == 3 and "--server" in listed.stderr
    values.write_text("server: apache\n")
    wrong = run(*BASE, "--values", str(values))
    assert wrong.exit_code == 3 and "remote-jwks-go, jwksdeploy, nginx" in wrong.stderr


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def _get(url: str) -> tuple[int, str, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), answer.read()


def test_jwksdeploy_preset_command_line_runs_serve(tmp_path: Path) -> None:
    """The Deployment's command and args, with the mount path and address made local."""
    objects = render(*PRESET_ARGS["jwksdeploy"])
    (container,) = of_kind(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(of_kind(objects, "ConfigMap")["data"]["jwks.json"])
    local = {"/app/jwks.json": str(jwks), "0.0.0.0": "127.0.0.1", "8080": "0"}
    argv = [local.get(a, a) for a in container["args"]]
    assert container["command"] == ["jwksdeploy"]
    process = subprocess.Popen(
        [sys.executable, "-m", "jwksdeploy", *argv], stderr=subprocess.PIPE, text=True, env=_env()
    )
    try:
        assert process.stderr is not None
        match = re.search(r"http://127\.0\.0\.1:(\d+)/jwks", process.stderr.readline())
        assert match
        base = f"http://127.0.0.1:{match.group(1)}"
        probe = container["readinessProbe"]["httpGet"]["path"]
        assert _get(base + probe)[0] == 200
        assert _get(base + "/jwks") == (200, "application/json", jwks.read_bytes())
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_preset_config_serves_the_jwks(tmp_path: Path) -> None:
    """The rendered nginx.conf run by a local nginx, its paths moved under tmp_path."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    objects = render("--server", "nginx", "--container-port", str(port))
    data = of_kind(objects, "ConfigMap")["data"]
    config, writable = tmp_path / "etc-jwks", tmp_path / "tmp"
    config.mkdir()
    writable.mkdir()
    (config / "jwks.json").write_text(data["jwks.json"])
    conf = data["nginx.conf"].replace(" /tmp/", f" {writable}/").replace("/etc/jwks", str(config))
    conf = conf.replace(f"listen {port};", f"listen 127.0.0.1:{port};")
    if os.geteuid() == 0:  # the pod runs nginx unprivileged; as root it would switch to nobody
        conf = "user root;\n" + conf
    (config / "nginx.conf").write_text(conf)
    (container,) = of_kind(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    args = [a.replace("/etc/jwks", str(config)) for a in container["args"]]
    process = subprocess.Popen(
        [shutil.which("nginx") or "nginx", *args, "-p", str(writable)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(0.05)  # nginx is still starting
        assert _get(base + "/jwks") == (200, "application/json", data["jwks.json"].encode())
        assert _get(base + "/healthz")[2] == b"ok"
        assert _get(base + "/anything")[2] == b"success"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
