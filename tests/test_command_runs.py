"""The cluster commands as Options -> run() -> Result, called directly against the emulator on
127.0.0.1 (the CLI tests in test_apply/test_adopt/test_diff cover what they print), and errors
that carry what a command had done instead of having their text rebuilt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jwksdeploy import apply, delete, diff, inspect
from jwksdeploy.apply_plan import AppliedObject, partial_failure
from jwksdeploy.errors import (
    ApplyConflict,
    Forbidden,
    JwksDeployError,
    NamespacesFailed,
    RolloutFailed,
)
from jwksdeploy.kube.client import Cluster, connect
from jwksdeploy.render import render_objects
from jwksdeploy.settings import Settings

from .helpers import EXAMPLES
from .kube import Kube

JWKS = (EXAMPLES / "jwks-rsa.json").read_bytes()
LANDED = [
    AppliedObject("ConfigMap", "jwks-config", "ns", "created"),
    AppliedObject("Service", "remote-jwks-go", "ns", "configured"),
]


def rendered(*namespaces: str) -> list[dict[str, Any]]:
    return render_objects(Settings(namespaces=namespaces), JWKS).objects


def cluster_of(kube: Kube) -> Cluster:
    return connect(kube.kubeconfig)


def test_a_rollout_failure_after_writes_keeps_its_class_and_data() -> None:
    """partial_failure rebuilt the error with type(exc)(message): RolloutFailed takes four more
    arguments, so a rollout failure after writes became a TypeError (exit 70)."""
    failure = RolloutFailed("d", "ns", "ErrImagePull", "pod/x", ["e1"], 3.0)
    error = partial_failure(failure, LANDED)
    assert error is failure
    assert (error.namespace, error.reason, error.subject, error.events) == (
        "ns",
        "ErrImagePull",
        "pod/x",
        ["e1"],
    )
    assert error.landed == (
        ("ConfigMap", "jwks-config", "created"),
        ("Service", "remote-jwks-go", "configured"),
    )
    said = (
        "the rollout of Deployment 'd' in 'ns' cannot succeed: pod/x: ErrImagePull (after 3s). "
        "Latest warnings: e1. Fix the cause (image, quota, ConfigMap, ...) and run apply again."
    )
    assert str(error) == said
    assert error.report() == (
        f"{said} Already applied: configmap/jwks-config created, "
        "service/remote-jwks-go configured. Running the command again converges once the API "
        "server answers."
    )


def test_a_conflict_marked_as_refused_keeps_its_managers_and_fields() -> None:
    conflict = ApplyConflict("conflict on .data.", managers=["helm"], fields=[".data"])
    marked = conflict.refused_before_writes(("made-for-the-dry-run",))
    assert marked is conflict and marked.managers == ["helm"] and marked.fields == [".data"]
    assert marked.report() == (
        "conflict on .data. Nothing was changed: a dry run found this before any write. "
        "Except: namespace 'made-for-the-dry-run', created for the dry run, could not be "
        "deleted again; delete it yourself (kubectl delete namespace NAME)."
    )


def test_several_failed_namespaces_say_what_landed_in_each() -> None:
    first = partial_failure(Forbidden("denied patch."), LANDED[:1])
    error = NamespacesFailed([("a", first), ("b", JwksDeployError("b broke."))], 3, "the others")
    assert error.exit_code == Forbidden.exit_code
    assert error.report() == (
        "2 of 3 namespaces failed (a, b); the others. [a] denied patch. Already applied: "
        "configmap/jwks-config created. Running the command again converges once that "
        "permission is granted. [b] b broke."
    )


@pytest.mark.emulator_only
def test_apply_run_refused_by_the_dry_run_marks_the_error(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.fail("PATCH", "deployments", 403, "exceeded quota: compute", dry_run=True)
    options = apply.ApplyOptions(rendered(kube.namespace), "remote-jwks-go", wait=False)
    with pytest.raises(Forbidden) as refused:
        apply.run(cluster_of(kube), options)
    assert refused.value.changed_nothing
    assert "Nothing was changed" not in str(refused.value)  # data, formatted at the edge
    assert refused.value.report().endswith(
        "Nothing was changed: a dry run found this before any write."
    )
    assert kube.read("ConfigMap", "jwks-config") is None


@pytest.mark.emulator_only
def test_apply_run_failing_part_way_carries_what_landed(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.fail("PATCH", "deployments", 403, "deployments.apps is forbidden", dry_run=False)
    options = apply.ApplyOptions(rendered(kube.namespace), "remote-jwks-go", wait=False)
    result = apply.run(cluster_of(kube), options)
    error = result.results[0].error
    assert isinstance(error, Forbidden)
    assert error.landed == (
        ("ConfigMap", "jwks-config", "created"),
        ("Service", "remote-jwks-go", "created"),
    )
    assert result.error() is error


@pytest.mark.cluster
def test_apply_run_builds_the_gateway_and_records_its_cache_window(kube: Kube) -> None:
    from jwksdeploy.cli.gateway import build_gateway
    from jwksdeploy.rotation_record import GATEWAYS_ANNOTATION

    built: list[tuple[str, str]] = []

    def build(name: str, url: str) -> Any:
        built.append((name, url))
        policy = _default_policy()
        return build_gateway("istio", name, url, policy)

    gateway = apply.GatewayRequest("istio", "remote-jwks-go", build, "jwks-config")
    options = apply.ApplyOptions(
        rendered(kube.namespace), "remote-jwks-go", wait=False, address="127.0.0.1"
    )
    result = apply.run(cluster_of(kube), _with(options, gateway=gateway))
    (item,) = result.results
    assert item.error is None and item.endpoint is not None
    assert built == [("remote-jwks-go", item.endpoint.url)]
    assert item.gateway is not None and item.gateway.url == item.endpoint.url
    assert item.cache_window is not None and item.cache_window.recorded
    assert item.cache_window.key == "istio/remote-jwks-go"
    live = kube.read("ConfigMap", "jwks-config")
    assert live is not None
    assert "istio/remote-jwks-go" in live["metadata"]["annotations"][GATEWAYS_ANNOTATION]


@pytest.mark.cluster
def test_diff_run_sees_creates_then_nothing_once_applied(kube: Kube) -> None:
    cluster = cluster_of(kube)
    objects = rendered(kube.namespace)
    before = diff.run(cluster, diff.DiffOptions(objects, "remote-jwks-go"))
    assert before.changed
    assert {d.action for d in before.diffs} == {diff.CREATE}
    apply.run(cluster, apply.ApplyOptions(objects, "remote-jwks-go", wait=False))
    after = diff.run(cluster, diff.DiffOptions(objects, "remote-jwks-go"))
    assert not after.changed
    assert after.summary() == "no changes: apply would leave every object as it is."


@pytest.mark.cluster
def test_url_status_and_delete_runs(kube: Kube) -> None:
    cluster = cluster_of(kube)
    namespaces = (kube.namespace,)
    missing = inspect.run_url(cluster, inspect.UrlOptions(namespaces, "remote-jwks-go"))
    assert missing.endpoints == [] and "there is no Service" in str(missing.error)
    apply.run(cluster, apply.ApplyOptions(rendered(kube.namespace), "remote-jwks-go", wait=False))
    found = inspect.run_url(cluster, inspect.UrlOptions(namespaces, "remote-jwks-go", "10.0.0.9"))
    assert found.error is None
    ((namespace, endpoint),) = found.endpoints
    assert namespace == kube.namespace and endpoint.address == "10.0.0.9"

    local = JWKS.decode()
    state = inspect.run_status(
        cluster, inspect.StatusOptions(namespaces, "remote-jwks-go", local, "jwks-rsa.json")
    )
    (item,) = state.namespaces
    assert item.matches_local_jwks is True
    assert "configmap/jwks-config" in item.objects

    dry = delete.run(cluster, delete.DeleteOptions(namespaces, "remote-jwks-go", "client"))
    assert dry.error is None
    assert ("ConfigMap", "jwks-config", "deleted (client dry run)") in dry.namespaces[0].outcomes
    assert kube.read("ConfigMap", "jwks-config") is not None
    gone = delete.run(cluster, delete.DeleteOptions(namespaces, "remote-jwks-go", wait=True))
    assert gone.error is None
    assert ("ConfigMap", "jwks-config", "deleted") in gone.namespaces[0].outcomes
    assert kube.read("ConfigMap", "jwks-config") is None


def _default_policy() -> dict[str, Any]:
    """The gateway flags' defaults, as `jwksdeploy gateway` parses them."""
    from jwksdeploy.cli.gateway import POLICY_PARAMS, gateway_command

    args = ["--provider", "istio", "--url", "http://127.0.0.1:30000/jwks", "--issuer", "me"]
    ctx = gateway_command.make_context("gateway", args)
    return {key: ctx.params[key] for key in POLICY_PARAMS}


def _with(options: apply.ApplyOptions, **changes: Any) -> apply.ApplyOptions:
    import dataclasses

    return dataclasses.replace(options, **changes)


_OUTCOMES = st.sampled_from(["created", "configured", "unchanged", "deleted", "pruned"])
_LANDED = st.lists(
    st.tuples(st.sampled_from(["ConfigMap", "Service", "Deployment"]), st.just("x"), _OUTCOMES),
    max_size=5,
)
_ERRORS = st.sampled_from(
    [
        lambda: Forbidden("no."),
        lambda: ApplyConflict("taken.", managers=["helm"], fields=[".spec"]),
        lambda: RolloutFailed("d", "ns", "CrashLoopBackOff", "pod/p", [], 1.0),
        lambda: JwksDeployError("odd."),
    ]
)


@given(make=_ERRORS, landed=_LANDED)
def test_what_landed_is_data_and_the_text_only_grows_at_the_edge(
    make: Callable[[], JwksDeployError], landed: list[tuple[str, str, str]]
) -> None:
    error = make()
    text, code, kind = str(error), error.exit_code, type(error)
    objects = [AppliedObject(k, n, "ns", o) for k, n, o in landed]
    carried = partial_failure(error, objects)
    assert carried is error and type(carried) is kind and carried.exit_code == code
    assert str(carried) == text
    assert carried.landed == tuple(landed)
    message = carried.report()
    assert message.startswith(text)
    assert ("Already applied: " in message) == bool(landed)
    for kind_name, name, outcome in landed:
        assert f"{kind_name.lower()}/{name} {outcome}" in message


APPLY = ["apply", "-n", "a", "--jwks", str(EXAMPLES / "jwks.json")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*APPLY, "--timeout", "5x"], "error: --timeout '5x' is not a duration."),
        ([*APPLY, "--set", "timeout=5x"], "error: --timeout '5x' is not a duration."),
        (["delete", "-n", "a", "--timeout", "5x"], "error: --timeout '5x' is not a duration."),
        ([*APPLY, "--address", "a/b"], "error: --address 'a/b' is not an IP address"),
        ([*APPLY, "--set", "address=a/b"], "error: --address 'a/b' is not an IP address"),
    ],
)
def test_duration_and_host_flags_are_refused_as_input_errors(args: list[str], message: str) -> None:
    """The flag types refuse a bad value before any cluster is reached: exit 3 with the
    duration/host check's own sentence, not click's usage error (exit 2)."""
    from .helpers import run

    result = run(*args)
    assert result.exit_code == 3
    assert result.stderr.startswith(message) and result.stdout == ""
