"""What an API server's answer means (kube.errors, pure) and the errors that carry it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jwksdeploy.errors import (
    AccessDenied,
    ApplyConflict,
    ClusterRejected,
    ClusterUnreachable,
    Conflict,
    FieldConflict,
    Forbidden,
    IngressTimedOut,
    NamespaceMissing,
    NotFound,
    RequestTimedOut,
    RolloutFailed,
    RolloutTimedOut,
    StillThere,
    WaitTimeout,
    WatchExpired,
    WatchRefused,
)
from jwksdeploy.kube.errors import (
    api_error,
    conflicting_fields,
    conflicting_managers,
    describe_request,
)

SERVER = "https://127.0.0.1:6443"
CM = "/api/v1/namespaces/ns/configmaps/jwks-config"


def status(message: str = "", **details: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"kind": "Status", "status": "Failure", "message": message}
    if details:
        document["details"] = details
    return document


DESCRIBED = [
    ("GET", "/api/v1/nodes", ("list", "nodes", None)),
    ("GET", "/api/v1/namespaces/ns", ("get", "namespaces", None)),
    ("GET", "/api/v1/namespaces", ("list", "namespaces", None)),
    ("GET", "/api/v1/namespaces/ns/configmaps", ("list", "configmaps", "ns")),
    ("GET", CM, ("get", "configmaps", "ns")),
    ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d", ("patch", "deployments", "ns")),
    (
        "DELETE",
        "/apis/policy/v1/namespaces/ns/poddisruptionbudgets/p",
        ("delete", "poddisruptionbudgets", "ns"),
    ),
    ("POST", "/api/v1/namespaces", ("create", "namespaces", None)),
    ("PUT", "/api/v1/namespaces/ns/services/s", ("put", "services", "ns")),
]


@pytest.mark.parametrize(("method", "path", "expected"), DESCRIBED)
def test_describe_request_names_verb_resource_and_namespace_as_rbac_does(
    method: str, path: str, expected: tuple[str, str, str | None]
) -> None:
    assert describe_request(method, path) == expected


# (status, document, class, text)
TABLE: list[tuple[int, Any, type[Exception], str]] = [
    (
        401,
        status("Unauthorized"),
        ClusterUnreachable,
        f"the API server at {SERVER} refused our credentials (401 Unauthorized). Log in again "
        "or refresh the kubeconfig's token or certificate.",
    ),
    (
        403,
        status("configmaps is forbidden."),
        AccessDenied,
        "the API server denied patch on configmaps in namespace 'ns' (403 Forbidden): "
        "configmaps is forbidden. Ask an administrator for RBAC permission to patch "
        "configmaps, or use a context that has it.",
    ),
    (
        404,
        status('configmaps "jwks-config" not found'),
        NotFound,
        'configmaps "jwks-config" not found',
    ),
    (404, status(), NotFound, "ConfigMap 'jwks-config' not found"),
    (
        404,
        {"message": "page not found"},
        ClusterUnreachable,
        f"the server at {SERVER} is not a Kubernetes API: it answered PATCH {CM} with 404 and "
        "no Kubernetes object. Check the kubeconfig's server address (`kubectl cluster-info` "
        "prints the right one).",
    ),
    (
        409,
        status(
            'Apply failed with 1 conflict: conflict with "helm": .data.x\nmore',
            causes=[{"message": 'conflict with "helm" using v1', "field": ".data.x"}],
        ),
        FieldConflict,
        "applying ConfigMap 'jwks-config' conflicts with fields managed by helm (.data.x) "
        '(409): Apply failed with 1 conflict: conflict with "helm": .data.x Another tool set '
        "these fields; re-run with --force-conflicts to take them over, or remove them from "
        "the other tool.",
    ),
    (
        409,
        status("the object has been modified"),
        FieldConflict,
        "applying ConfigMap 'jwks-config' conflicts with fields managed by another client "
        "(409): the object has been modified Another tool set these fields; re-run with "
        "--force-conflicts to take them over, or remove them from the other tool.",
    ),
    (
        422,
        status("spec.x: Invalid value."),
        ClusterRejected,
        "the API server rejected ConfigMap 'jwks-config' (422): spec.x: Invalid value. Fix "
        "the value it names and run again.",
    ),
    (
        400,
        "not a dict",
        ClusterRejected,
        "the API server rejected ConfigMap 'jwks-config' (400):  Fix the value it names and "
        "run again.",
    ),
    (
        503,
        status("etcd down."),
        ClusterUnreachable,
        f"the API server at {SERVER} answered 503 for ConfigMap 'jwks-config': etcd down. It "
        "is overloaded or failing; try again shortly.",
    ),
    (
        429,
        status("slow down."),
        ClusterUnreachable,
        f"the API server at {SERVER} answered 429 for ConfigMap 'jwks-config': slow down. It "
        "is overloaded or failing; try again shortly.",
    ),
    (
        418,
        status("teapot"),
        ClusterRejected,
        "the API server answered 418 for ConfigMap 'jwks-config': teapot",
    ),
]


@pytest.mark.parametrize(("code", "document", "cls", "text"), TABLE)
def test_each_answer_maps_to_one_error_and_one_paragraph(
    code: int, document: Any, cls: type[Exception], text: str
) -> None:
    error = api_error(code, document, "PATCH", CM, server=SERVER, what="ConfigMap 'jwks-config'")
    assert type(error) is cls
    assert str(error) == text


def test_exit_codes_follow_the_error_tree() -> None:
    assert api_error(403, status(), "GET", CM, server=SERVER).exit_code == Forbidden.exit_code
    assert api_error(409, status(), "GET", CM, server=SERVER).exit_code == Conflict.exit_code
    assert api_error(404, status(), "GET", CM, server=SERVER).exit_code == 9


def test_errors_carry_their_data() -> None:
    denied = api_error(403, status("no."), "DELETE", CM, server=SERVER)
    assert isinstance(denied, AccessDenied)
    assert (denied.verb, denied.resource, denied.namespace, denied.detail) == (
        "delete",
        "configmaps",
        "ns",
        "no.",
    )
    conflict = api_error(
        409,
        status(
            "m",
            causes=[
                {"message": 'conflict with "helm" using v1', "field": ".data.b"},
                {"message": 'conflict with "argo" using v1', "field": ".data.a"},
            ],
        ),
        "PATCH",
        CM,
        server=SERVER,
    )
    assert isinstance(conflict, ApplyConflict)
    assert conflict.managers == ["argo", "helm"]
    assert conflict.fields == [".data.a", ".data.b"]
    assert conflict.target == CM  # no `what`: the path names it
    assert str(WatchRefused("Pod", 405)) == "watch of Pod refused (405)"
    assert str(WatchExpired("Pod")) == "watch of Pod expired"
    assert str(WatchExpired()) == "watch expired"


@pytest.mark.parametrize(
    "document",
    [
        status('Apply failed: conflict with "helm" using v1: .data.x'),  # free text only
        status("m", causes={"message": 'conflict with "helm"'}),
        status("m", causes=[1, None, 'conflict with "helm"']),
        {"kind": "Status", "details": 'conflict with "helm"'},
        None,
    ],
)
def test_managers_come_from_the_status_causes_never_from_its_message(document: Any) -> None:
    assert conflicting_managers(document) == []
    assert conflicting_fields(document) == []


def test_what_already_changed_is_data_on_the_error_not_a_rebuilt_one() -> None:
    """An error that says what already changed keeps its class and data (rebuilding it
    with type(exc)(text) dropped managers/fields and could not rebuild a RolloutFailed)."""
    conflict = FieldConflict("ConfigMap 'c'", ["helm"], [".data.x"], "conflict")
    before = str(conflict)
    same = conflict.after_writes((("ConfigMap", "c", "configured"),))
    assert same is conflict and str(same) == before
    assert (same.managers, same.fields) == (["helm"], [".data.x"])
    assert same.report().startswith(before + " Already applied: configmap/c configured. ")
    failed = RolloutFailed("d", "ns", "ImagePullBackOff", "pod p", [], 3.2)
    said = failed.after_writes((("Deployment", "d", "configured"),))
    assert isinstance(said, WaitTimeout)
    assert said.report().startswith(
        "the rollout of Deployment 'd' in 'ns' cannot succeed: pod p: ImagePullBackOff (after "
        "3s). Fix the cause (image, quota, ConfigMap, ...) and run apply again. Already "
        "applied: deployment/d configured."
    )
    assert (failed.namespace, failed.reason) == ("ns", "ImagePullBackOff")


def test_flags_named_in_messages_are_data() -> None:
    """A core error names the CLI's flag only as data it was given (click's param_hint)."""
    timed_out = RequestTimedOut(SERVER, "GET", CM, 2.5)
    assert str(timed_out) == (
        f"the API server at {SERVER} did not answer GET {CM} within 2.5s. Check the cluster's "
        "health or raise --request-timeout."
    )
    assert timed_out.exit_code == WaitTimeout.exit_code
    assert "--timeout-flag" in str(RequestTimedOut(SERVER, "GET", CM, 1, flag="--timeout-flag"))
    missing = NamespaceMissing("ns", 'namespaces "ns" not found')
    assert str(missing) == (
        "namespace 'ns' does not exist (namespaces \"ns\" not found). Create it, or pass "
        "--create-namespace to let jwksdeploy create it."
    )
    assert (missing.namespace, missing.exit_code) == ("ns", ClusterRejected.exit_code)
    conflict = FieldConflict("x", [], [], "s", flag="--take-over")
    assert "re-run with --take-over to take them over" in str(conflict)


def test_the_waiters_errors_carry_what_they_waited_for() -> None:
    failed = RolloutFailed("d", "ns", "ErrImageNeverPull", "pod d-1", ["pod d-1: Failed: x"], 12.6)
    assert str(failed) == (
        "the rollout of Deployment 'd' in 'ns' cannot succeed: pod d-1: ErrImageNeverPull "
        "(after 13s). Latest warnings: pod d-1: Failed: x. Fix the cause (image, quota, "
        "ConfigMap, ...) and run apply again."
    )
    timed_out = RolloutTimedOut("d", "ns", 1.0, "0/2 pods available", [])
    assert str(timed_out) == (
        "Deployment 'd' in 'ns' was not ready after 1s (0/2 pods available): no pod reported "
        "a reason. Fix the cause and run apply again, or raise --timeout."
    )
    assert "a; b. " in str(RolloutTimedOut("d", "ns", 1.0, "p", ["a", "b"]))
    ingress = IngressTimedOut("s", "ns", 90)
    assert str(ingress) == (
        "the LoadBalancer Service 's' in 'ns' got no ingress address within --timeout (90s). "
        "Check the cluster's load balancer controller, raise --timeout, or pass --address."
    )
    gone = StillThere([("Deployment", "d"), ("Service", "s")], "ns", 5)
    assert str(gone) == (
        "Deployment 'd', Service 's' in 'ns' still exist(s) 5s after deletion (a finalizer may "
        "hold it). Check `kubectl get deployment d -n ns -o yaml`."
    )
    assert str(StillThere([("Namespace", "n")], None, 5)).endswith(
        "`kubectl get namespace n -o yaml`."
    )
    for error in (failed, timed_out, ingress, gone):
        assert error.exit_code == WaitTimeout.exit_code


def test_connect_takes_the_timeout_as_given(tmp_path: Path) -> None:
    """Checking --request-timeout is the CLI's job: connect() builds a client, no request."""
    from jwksdeploy.kube.client import connect

    config = tmp_path / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    cluster = connect(str(config), None, 0.0)
    assert cluster.request_timeout == 0.0
    assert cluster.server == "http://127.0.0.1:9"
