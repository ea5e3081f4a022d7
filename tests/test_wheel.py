"""The built wheel carries the templates and its dependencies: install it in a fresh venv,
render and make keys from elsewhere."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from .helpers import EXAMPLES, REPO


@pytest.mark.slow
def test_wheel_installs_and_renders_outside_the_checkout(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
        check=True,
    )
    (wheel,) = dist.glob("jwksdeploy-*.whl")
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "jwks.json").write_bytes((EXAMPLES / "jwks.json").read_bytes())
    result = subprocess.run(
        [str(environment / "bin" / "jwksdeploy"), "render", "--namespace", "envoy-yang"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (EXAMPLES / "rendered-source.yaml").read_text()
    probe = subprocess.run(
        [str(python), "-c", "import jwksdeploy.render as r; print(r.template_dir())"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "site-packages/jwksdeploy/templates" in probe.stdout
    # The templates come compiled, and the installed Jinja2 loads them without compiling.
    loader = subprocess.run(
        [
            str(python),
            "-c",
            "import jwksdeploy.render as r; e = r._environment(); "
            "print(type(e.loader).__name__, r.compiled_dir())",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loader.stdout.startswith("ModuleLoader "), loader.stdout
    assert "site-packages/jwksdeploy/compiled_templates" in loader.stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout)]
    assert kinds == ["ConfigMap", "Service", "Deployment"]
    # The key commands' dependency (joserfc) comes with the wheel: generate, sign, check.
    cli = str(environment / "bin" / "jwksdeploy")
    for args in (["jwks", "generate", "--out", "keys.json"], ["jwks", "check", "keys.json"]):
        step = subprocess.run([cli, *args], cwd=elsewhere, capture_output=True, text=True)
        assert step.returncode == 0, step.stderr
    token = subprocess.run([cli, "token"], cwd=elsewhere, capture_output=True, text=True)
    assert token.returncode == 0 and token.stdout.count(".") == 2, token.stderr


# ---------------------------------------------------------------------------------------------
# Moved from the hostile suites (issue 9, item 11): the client is a regular dependency
# ---------------------------------------------------------------------------------------------
# `pip install jwksdeploy` gives a working `apply`.

import tomllib  # noqa: E402


@pytest.mark.usefixtures("in_tmp")
def test_kubernetes_is_a_regular_dependency() -> None:
    """`pip install jwksdeploy` must give a working `apply` (issue 9, item 11)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = [
        dep.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip()
        for dep in project["dependencies"]
    ]
    assert "kubernetes" in names, project["dependencies"]


@pytest.mark.usefixtures("in_tmp")
def test_kubernetes_is_installed_with_the_tool() -> None:
    """The pyproject lists the client as a plain dependency (issue 9, repro 11)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(dep.replace(" ", "").startswith("kubernetes") for dep in project["dependencies"])
