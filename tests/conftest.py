"""Shared fixtures. The cluster fixtures (`kube`, `emulator_server`) live in tests/kube.py and
are registered here as a plugin."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite golden files (examples/rendered*.yaml, tests/golden/*) from current output",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's kubeconfig or namespace, or uses their proxy, by accident."""
    monkeypatch.delenv("JWKSDEPLOY_NAMESPACE", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    # Tests talk only to 127.0.0.1: never through a proxy the CI machine may configure.
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(variable, "127.0.0.1,localhost")


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in the test's own directory: default paths (jwks.json, the rotation mirror) and the
    template cache resolve under it, never in the checkout."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    """A valid public set (one EC key) at tmp_path/jwks.json."""
    from .helpers import valid_jwks

    path = tmp_path / "jwks.json"
    path.write_bytes(valid_jwks())
    return path


pytest_plugins = ["tests.kube"]
