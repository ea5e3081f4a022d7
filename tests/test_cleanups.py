"""Cleanups after the flag vocabulary: flags that several commands share come from one
definition (--parallel, rotate's --dry-run, serve's --listen), serve refuses a zero timeout,
adoption honours apply --field-manager, and every command that reaches the cluster warns
about insecure-skip-tls-verify the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest

from jwksdeploy import adopt
from jwksdeploy.cli import cli
from jwksdeploy.cli.common import VocabOption, strict_numbers

from .helpers import EXAMPLES, jwks_bytes, oct_key, run
from .kube import Kube
from .test_adopt import NAME, kubectl_apply_source, managers, source_objects
from .test_apply import SECRET_TOKEN, _kubeconfig, _NoService, _tls_server

JWKS = str(EXAMPLES / "jwks-rsa.json")


def _option(path: str, flag: str) -> click.Option:
    command: click.Command = cli
    context = click.Context(cli)
    for part in path.split():
        assert isinstance(command, click.Group)
        found = command.get_command(context, part)
        assert found is not None, part
        strict_numbers(found)  # as resolving it for a run does, whatever ran before this test
        command = found
    [option] = [p for p in command.params if isinstance(p, click.Option) and flag in p.opts]
    return option


def test_parallel_is_one_concept_in_apply_and_delete() -> None:
    options = [_option(command, "--parallel") for command in ("apply", "delete")]
    for option in options:
        assert isinstance(option, VocabOption) and option.concept == "parallel"
    assert len({(o.help, o.default, repr(o.type)) for o in options}) == 1


def test_parallel_is_checked_the_same_in_apply_and_delete() -> None:
    for command in ("apply", "delete"):
        result = run(command, "-n", "a", "--parallel", "0")
        assert result.exit_code == 2, (command, result.output)
        assert "--parallel" in result.stderr and "1<=x<=64" in result.stderr


def _shape(option: click.Option) -> tuple[object, ...]:
    choices = getattr(option.type, "choices", None)
    return (choices, option.is_flag, option.flag_value, option.default, option.show_default)


def test_rotate_steps_take_the_one_dry_run_flag() -> None:
    """Every rotate step's --dry-run is kubectl's, as in apply: bare means server."""
    shared = _shape(_option("apply", "--dry-run"))
    assert shared == (("none", "client", "server"), False, "server", "none", True)
    for step in ("start", "promote", "finish", "run", "revoke"):
        assert _shape(_option(f"rotate {step}", "--dry-run")) == shared, step
        shown = " ".join(run("rotate", step, "--help").stdout.split())
        assert "--dry-run [none|client|server]" in shown, step
        assert "client: decide and print, change nothing" in shown, step
        assert "server (bare --dry-run): also send the objects with dryRun=All" in shown, step


def test_serve_listen_is_the_vocabulary_concept_with_address_hidden() -> None:
    listen = _option("serve", "--listen")
    assert isinstance(listen, VocabOption) and listen.concept == "listen"
    assert listen.opts == ["--listen", "--address"] and listen.hidden_aliases == ("--address",)
    for flag, concept in (("--jwks", "jwks"), ("--port", "port")):
        option = _option("serve", flag)
        assert isinstance(option, VocabOption) and option.concept == concept


@pytest.mark.parametrize("flag", ["--idle-timeout", "--header-timeout"])
@pytest.mark.parametrize("value", ["0", "0s", "0.0001", "0ms"])
def test_serve_refuses_a_connection_timeout_of_zero(tmp_path: Path, flag: str, value: str) -> None:
    """0 used to become 1 ms silently: every connection closed before its request."""
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(jwks_bytes(oct_key(kid="a")))
    result = run("serve", "--jwks", str(jwks), "--port", "0", flag, value)
    assert result.exit_code == 3, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {flag} ")
    assert "1ms" in result.stderr and "serving" not in result.stderr


# --- adoption uses the field manager in force (apply --field-manager) ---------------------------


def _managed(manager: str, fields: dict[str, Any], operation: str = "Apply") -> dict[str, Any]:
    return {"manager": manager, "operation": operation, "fieldsV1": fields}


def test_the_field_manager_in_force_is_ours_in_the_pure_decisions() -> None:
    team = _managed("team-a", {"f:data": {"f:jwks.json": {}}})
    kubectl = _managed("kubectl-client-side-apply", {"f:spec": {"f:x": {}}}, "Update")
    live = {"metadata": {"managedFields": [team, kubectl]}}
    assert adopt.other_managers(live) == ["team-a"]
    assert adopt.other_managers(live, "team-a") == []
    managed = adopt.migrated_managed_fields(live, "v1", "2026-01-01T00:00:00Z", "team-a")
    assert managed is not None and [m["manager"] for m in managed] == ["team-a"]
    assert managed[0]["fieldsV1"] == {"f:data": {"f:jwks.json": {}}, "f:spec": {"f:x": {}}}


@pytest.mark.cluster
def test_apply_under_a_field_manager_adopts_kubectls_objects_and_applies_again(
    kube: Kube,
) -> None:
    """kubectl's fields move to the field manager in force, not to `jwksdeploy`, so the
    next apply under the same manager does not conflict with a manager nobody uses."""
    kubectl_apply_source(kube)
    apply = ("apply", "--jwks", JWKS, "-n", kube.namespace, "--no-wait")
    first = kube.jwksdeploy(*apply, "--field-manager", "team-a")
    assert first.exit_code == 0, first.stderr
    assert "adopt configmap/jwks-config" in first.stderr
    for kind, name in (("ConfigMap", "jwks-config"), ("Deployment", NAME), ("Service", NAME)):
        live = kube.read(kind, name)
        assert live is not None and managers(live) == {"team-a"}, (kind, live["metadata"])
    again = kube.jwksdeploy(*apply, "--field-manager", "team-a")
    assert again.exit_code == 0, again.stderr
    assert "configmap/jwks-config unchanged" in again.stderr


@pytest.mark.cluster
def test_objects_a_field_manager_made_are_adopted_under_that_field_manager(kube: Kube) -> None:
    """A ConfigMap that `team-a` applied without our labels is another tool's for the
    default field manager, and our own for `--field-manager team-a`."""
    [configmap] = [o for o in source_objects() if o["kind"] == "ConfigMap"]
    kube.server_side_apply(configmap, "team-a")
    apply = ("apply", "--jwks", JWKS, "-n", kube.namespace, "--no-wait")
    refused = kube.jwksdeploy(*apply)
    assert refused.exit_code == 8, refused.stderr
    assert "managed by team-a, not by jwksdeploy or kubectl" in refused.stderr
    taken = kube.jwksdeploy(*apply, "--field-manager", "team-a")
    assert taken.exit_code == 0, taken.stderr
    live = kube.read("ConfigMap", "jwks-config")
    assert live is not None
    assert live["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "jwksdeploy"
    assert managers(live) == {"team-a"}
    twice = kube.jwksdeploy(*apply, "--field-manager", "team-a")
    assert twice.exit_code == 0 and "configmap/jwks-config unchanged" in twice.stderr


# --- every command that reaches the cluster warns about insecure-skip-tls-verify ---------------


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["url", "-n", "x"], 9),
        (["status", "-n", "x"], 9),
        (["verify", "-n", "x"], 9),
        (["gateway", "--provider", "istio", "-n", "x"], 9),
        (["delete", "-n", "x", "--dry-run=client"], 0),
    ],
    ids=["url", "status", "verify", "gateway", "delete"],
)
def test_every_cluster_command_says_once_that_tls_is_not_checked(
    tmp_path: Path, args: list[str], code: int
) -> None:
    """The API server has no such Service (404s): the warning comes first, then the verdict."""
    path = tmp_path / "kubeconfig"
    with _tls_server(_NoService) as port:
        server = f"https://127.0.0.1:{port}"
        path.write_text(
            json.dumps(
                _kubeconfig(server, {"insecure-skip-tls-verify": True}, {"token": SECRET_TOKEN})
            )
        )
        result = run(*args, "--kubeconfig", str(path))
    warning = f"warning: the kubeconfig sets insecure-skip-tls-verify for {server}: "
    lines = result.stderr.splitlines()
    assert result.exit_code == code, result.stderr
    assert lines[0].startswith(warning), result.stderr
    assert result.stderr.count("insecure-skip-tls-verify") == 1, result.stderr
    assert "InsecureRequestWarning" not in result.stderr and SECRET_TOKEN not in result.stderr
