"""Taking over the source document's hand-applied YAML (issue 15): on the emulator, or a real
cluster through JWKSDEPLOY_TEST_KUBECONFIG. The source's YAML is sent the way `kubectl apply`
(client-side) sends it, over HTTP; nothing of ours or of the client is patched."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from jwksdeploy import adopt
from jwksdeploy.errors import ClusterRejected
from jwksdeploy.kube.errors import conflicting_fields, conflicting_managers
from jwksdeploy.kube.resources import ABSENT, FOREIGN, OURS, ownership
from jwksdeploy.render import jwks_checksum

from .helpers import EXAMPLES, run
from .kube import LAST_APPLIED, Kube, what_we_write

JWKS = str(EXAMPLES / "jwks-rsa.json")
NAME = "remote-jwks-go"
OUR_SELECTOR = {"app.kubernetes.io/instance": NAME, "app.kubernetes.io/name": "jwks-server"}

# The YAML of the source document (step 5 of "Create the JWKS application"), verbatim.
SOURCE_YAML = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    app: remote-jwks-go
  name: remote-jwks-go
  namespace: envoy-yang
spec:
  selector:
    matchLabels:
      app: remote-jwks-go
  template:
    metadata:
      labels:
        app: remote-jwks-go
    spec:
      containers:
        - args:
            - jwks
            - -c
            - /app/jwks.json
          command:
            - main
          image: release-ci.daocloud.io/skoala/demo/remote-jwks-go:0.1.0
          imagePullPolicy: IfNotPresent
          name: remote-jwks-go
          ports:
            - containerPort: 8080
              name: http
              protocol: TCP
          volumeMounts:
            - name: config
              mountPath: /app/jwks.json
              subPath: jwks.json
      volumes:
        - name: config
          configMap:
            name: jwks-config
      restartPolicy: Always
      securityContext:
        runAsNonRoot: true
        runAsUser: 65534
        runAsGroup: 65534

---
apiVersion: v1
kind: Service
metadata:
  name: remote-jwks-go
  namespace: envoy-yang
  labels:
    app: remote-jwks-go
spec:
  type: NodePort
  ports:
    - port: 8080
      targetPort: http
      protocol: TCP
      name: http
  selector:
    app: remote-jwks-go

---
apiVersion: v1
kind: ConfigMap
metadata:
  name: jwks-config
  namespace: envoy-yang
  labels:
    app: remote-jwks-go
data:
  jwks.json: |+
    {
      "keys": [
        {
        "kty": "oct",
        "use": "sig",
        "k": "veb4HPc6oaEAsCikZ7rzTKmu9LkOU4LpDUKBxFjnBcc",
        "alg": "HS256"
    }
      ]
    }
"""


def source_objects() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(SOURCE_YAML) if d]


def kubectl_apply_source(kube: Kube, namespace: str | None = None) -> None:
    """`kubectl apply -f all-in-one.yaml -n NS`, as kubectl sends it."""
    for obj in source_objects():
        kube.kubectl_apply(obj, namespace)
    if kube.emulator is not None:
        kube.emulator.seen.clear()  # what jwksdeploy sends next is what tests look at


def managers(obj: dict[str, Any]) -> set[str]:
    return {
        m["manager"] for m in obj["metadata"].get("managedFields") or [] if not m.get("subresource")
    }


def states(kube: Kube, namespace: str | None = None) -> dict[str, Any]:
    """What jwksdeploy could have changed of each object (None: absent)."""
    return {
        kind: what_we_write(kube.read(kind, name, namespace))
        for kind, name in (("ConfigMap", "jwks-config"), ("Service", NAME), ("Deployment", NAME))
    }


def writes(kube: Kube) -> list[str]:
    """Requests the emulator stored something for (dry runs and reads left out)."""
    assert kube.emulator is not None
    return [
        f"{s.method} {s.path}"
        for s in kube.emulator.requests()
        if s.method != "GET" and s.query.get("dryRun") != "All"
    ]


# --- through the CLI, on a cluster --------------------------------------------------------------


@pytest.mark.cluster
@pytest.mark.needs_pods
def test_adopting_the_source_yaml_keeps_the_endpoint_up(kube: Kube) -> None:
    kubectl_apply_source(kube)
    before_service = kube.read("Service", NAME)
    assert before_service is not None
    node_port = before_service["spec"]["ports"][0]["nodePort"]
    assert kube.wait_serving(NAME), "the source's pods serve before the change"
    with kube.watch_endpoint(NAME) as watch:
        result = kube.jwksdeploy(
            "apply", "--jwks", JWKS, "-n", kube.namespace, "--wait", "--timeout", "3m"
        )
    assert result.exit_code == 0, result.stderr
    assert (
        f"{kube.namespace}: adopt configmap/jwks-config, service/{NAME}, deployment/{NAME} "
        "from kubectl-client-side-apply; keeping the Deployment's selector app=remote-jwks-go "
        "(immutable), so old and new pods both serve"
    ) in result.stderr
    assert watch.steps, "the change was observed"
    assert watch.outages == [], f"the Service selected no ready pod at: {watch.outages}"

    deployment = kube.read("Deployment", NAME)
    service = kube.read("Service", NAME)
    configmap = kube.read("ConfigMap", "jwks-config")
    assert deployment and service and configmap
    jwks_text = (EXAMPLES / "jwks-rsa.json").read_text()
    assert configmap["data"]["jwks.json"] == jwks_text
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": NAME}}
    template = deployment["spec"]["template"]["metadata"]
    assert template["labels"]["app"] == NAME
    assert template["labels"].items() >= OUR_SELECTOR.items()
    assert template["annotations"]["checksum/jwks"] == jwks_checksum(jwks_text)
    assert service["spec"]["selector"] == {"app": NAME}
    assert service["spec"]["ports"][0]["nodePort"] == node_port, "the URL did not move"
    assert result.stdout.strip().endswith(f":{node_port}/jwks")
    for obj in (deployment, service, configmap):
        assert LAST_APPLIED not in (obj["metadata"].get("annotations") or {})
        assert "kubectl-client-side-apply" not in managers(obj)
        assert "jwksdeploy" in managers(obj)
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "jwksdeploy"
    if kube.emulator is not None:
        pods = kube.emulator.pods_of(kube.namespace, NAME)
        assert pods and all(
            p["metadata"]["labels"].items() >= OUR_SELECTOR.items() for p in pods
        ), "every running pod is of the new template"

    again = kube.jwksdeploy("apply", "--jwks", JWKS, "-n", kube.namespace, "--no-wait")
    assert again.exit_code == 0, again.stderr
    assert "adopt" not in again.stderr
    for line in ("configmap/jwks-config", f"service/{NAME}", f"deployment/{NAME}"):
        assert f"{line} unchanged" in again.stderr
    status = kube.jwksdeploy("status", "-n", kube.namespace, "--jwks", JWKS, "-o", "json")
    assert status.exit_code == 0, status.stderr
    assert json.loads(status.stdout)["matchesLocalJwks"] is True


@pytest.mark.cluster
def test_adoption_dry_run_says_what_would_happen_and_changes_nothing(kube: Kube) -> None:
    kubectl_apply_source(kube)
    before = states(kube)
    result = kube.jwksdeploy("apply", "--jwks", JWKS, "-n", kube.namespace, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert f"{kube.namespace}: would adopt configmap/jwks-config" in result.stderr
    assert "configmap/jwks-config configured (dry run)" in result.stderr
    assert states(kube) == before
    if kube.emulator is not None:
        assert writes(kube) == []


@pytest.mark.cluster
def test_another_tool_is_refused_before_any_change_naming_it(kube: Kube) -> None:
    for obj in source_objects():
        kube.server_side_apply(obj, "helm")
    before = states(kube)
    if kube.emulator is not None:
        kube.emulator.seen.clear()
    result = kube.jwksdeploy("apply", "--jwks", JWKS, "-n", kube.namespace, "--no-wait")
    assert result.exit_code == 8
    assert "managed by helm, not by jwksdeploy or kubectl" in result.stderr
    # the refusal says which label made it someone else's
    assert "is not ours (it has no app.kubernetes.io/managed-by label)" in result.stderr
    assert "Nothing was changed" in result.stderr
    assert "--force-conflicts" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert states(kube) == before
    if kube.emulator is not None:
        assert writes(kube) == []
    forced = kube.jwksdeploy(
        "apply", "--jwks", JWKS, "-n", kube.namespace, "--no-wait", "--force-conflicts"
    )
    assert forced.exit_code == 0, forced.stderr
    assert "adopt configmap/jwks-config, service/remote-jwks-go, deployment/remote-jwks-go " in (
        forced.stderr
    )
    assert "from helm" in forced.stderr
    deployment = kube.read("Deployment", NAME)
    assert deployment is not None
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": NAME}}


@pytest.fixture
def three_namespaces(kube: Kube) -> Iterator[list[str]]:
    extra = [f"{kube.namespace}-{uuid.uuid4().hex[:4]}" for _ in range(2)]
    for namespace in extra:
        kube.create_namespace(namespace)
    try:
        yield [*extra, kube.namespace]
    finally:
        for namespace in extra:
            kube.delete_namespace(namespace)


@pytest.mark.cluster
def test_a_refusal_in_the_third_namespace_changes_nothing_in_the_first_two(
    kube: Kube, three_namespaces: list[str]
) -> None:
    first, second, third = three_namespaces
    service = next(o for o in source_objects() if o["kind"] == "Service")
    kube.server_side_apply(service, "argocd-controller", third)
    flags = [arg for ns in three_namespaces for arg in ("-n", ns)]
    result = kube.jwksdeploy("apply", "--jwks", JWKS, *flags, "--no-wait")
    assert result.exit_code == 8
    assert f"Service 'remote-jwks-go' in '{third}'" in result.stderr
    assert "argocd-controller" in result.stderr
    for namespace in (first, second):
        assert states(kube, namespace) == {"ConfigMap": None, "Service": None, "Deployment": None}


@pytest.mark.cluster
def test_a_refusal_elsewhere_deletes_the_namespace_create_namespace_made(kube: Kube) -> None:
    """--create-namespace with two namespaces: the pre-flight of one refuses, so the other,
    which this run created to dry-run in, is deleted again."""
    service = next(o for o in source_objects() if o["kind"] == "Service")
    kube.server_side_apply(service, "argocd-controller")
    fresh = f"{kube.namespace}-{uuid.uuid4().hex[:4]}"
    try:
        result = kube.jwksdeploy(
            "apply", "--jwks", JWKS, "-n", fresh, "-n", kube.namespace, "--no-wait",
            "--create-namespace",
        )  # fmt: skip
        assert result.exit_code == 8, result.stderr
        assert "argocd-controller" in result.stderr
        assert "Traceback" not in result.stderr
        deadline = time.monotonic() + 120  # a real namespace terminates for a few seconds
        while kube.read("Namespace", fresh) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert kube.read("Namespace", fresh) is None
        assert states(kube, fresh) == {"ConfigMap": None, "Service": None, "Deployment": None}
    finally:
        kube.delete_namespace(fresh)


@pytest.mark.cluster
@pytest.mark.emulator_only
def test_a_dry_run_refusal_in_the_third_namespace_changes_nothing(
    kube: Kube, three_namespaces: list[str]
) -> None:
    assert kube.emulator is not None
    first, second, third = three_namespaces
    kube.emulator.fail(
        "PATCH",
        "deployments",
        403,
        'deployments.apps "remote-jwks-go" is forbidden: exceeded quota: compute',
        dry_run=True,
        namespace=third,
    )
    kube.emulator.seen.clear()
    flags = [arg for ns in three_namespaces for arg in ("-n", ns)]
    result = kube.jwksdeploy("apply", "--jwks", JWKS, *flags, "--no-wait")
    assert result.exit_code == 7
    assert f"in namespace '{third}'" in result.stderr
    assert "exceeded quota" in result.stderr
    assert "Nothing was changed: a dry run found this before any write." in result.stderr
    assert writes(kube) == []
    for namespace in (first, second, third):
        assert states(kube, namespace) == {"ConfigMap": None, "Service": None, "Deployment": None}


@pytest.mark.cluster
@pytest.mark.emulator_only
def test_a_recreate_the_dry_run_refuses_changes_nothing(kube: Kube) -> None:
    """--recreate's deletion is dry-run too: a refusal there leaves everything serving."""
    assert kube.emulator is not None
    kubectl_apply_source(kube)
    before = states(kube)
    kube.emulator.fail("DELETE", "deployments", 403, "deployments.apps is forbidden", dry_run=True)
    kube.emulator.seen.clear()
    result = kube.jwksdeploy("apply", "--jwks", JWKS, "-n", kube.namespace, "--recreate")
    assert result.exit_code == 7
    assert "denied delete on deployments" in result.stderr
    assert "Nothing was changed" in result.stderr
    assert writes(kube) == []
    assert states(kube) == before


@pytest.mark.cluster
def test_the_deployment_selector_is_immutable_as_on_a_real_api_server(kube: Kube) -> None:
    """Why adoption keeps the live selector: changing it is refused (422)."""
    kubectl_apply_source(kube)
    deployment = next(o for o in source_objects() if o["kind"] == "Deployment")
    deployment["metadata"]["namespace"] = kube.namespace
    deployment["spec"]["selector"] = {"matchLabels": OUR_SELECTOR}
    deployment["spec"]["template"]["metadata"]["labels"] = OUR_SELECTOR
    status, answer = kube.call(
        "PATCH",
        f"/apis/apps/v1/namespaces/{kube.namespace}/deployments/{NAME}",
        deployment,
        "fieldManager=someone&force=true",
        "application/apply-patch+yaml",
    )
    assert status == 422, answer
    assert "field is immutable" in answer["message"]


@pytest.mark.cluster
@pytest.mark.needs_pods
def test_recreate_switches_the_selector_and_reports_the_downtime(kube: Kube) -> None:
    kubectl_apply_source(kube)
    with kube.watch_endpoint(NAME) as watch:
        result = kube.jwksdeploy(
            "apply", "--jwks", JWKS, "-n", kube.namespace, "--recreate", "--wait", "--timeout", "3m"
        )
    assert result.exit_code == 0, result.stderr
    warning = result.stderr.index("the JWKS endpoint will be down from the deletion")
    assert warning < result.stderr.index(f"deployment/{NAME} deleted")
    assert "selector from app=remote-jwks-go" in result.stderr
    assert f"{kube.namespace}: the endpoint was down for about" in result.stderr
    deployment = kube.read("Deployment", NAME)
    service = kube.read("Service", NAME)
    assert deployment and service
    assert deployment["spec"]["selector"] == {"matchLabels": OUR_SELECTOR}
    assert service["spec"]["selector"] == OUR_SELECTOR
    assert kube.serving(NAME), "the new pods serve"
    if kube.emulator is not None:
        assert any("DELETE deployments" in step for step in watch.outages)


# --- the pure decisions -----------------------------------------------------------------------


def _entry(manager: str, fields: dict[str, Any], operation: str = "Update", **extra: Any) -> Any:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        **extra,
    }


CSA = _entry(
    "kubectl-client-side-apply",
    {
        "f:metadata": {"f:annotations": {".": {}, f"f:{LAST_APPLIED}": {}}},
        "f:spec": {"f:selector": {}},
    },
)
REVISION = _entry(
    "kube-controller-manager",
    {"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}},
)
STATUS = _entry("kube-controller-manager", {"f:status": {"f:replicas": {}}}, subresource="status")


def test_controllers_that_only_annotate_are_not_other_tools() -> None:
    live = {"metadata": {"managedFields": [CSA, REVISION, STATUS]}}
    assert adopt.kubectl_managers(live) == ["kubectl-client-side-apply"]
    assert adopt.other_managers(live) == []
    helm = _entry("helm", {"f:spec": {"f:replicas": {}}}, "Apply")
    assert adopt.other_managers({"metadata": {"managedFields": [CSA, helm]}}) == ["helm"]


def test_kubectl_fields_fold_into_our_apply_entry() -> None:
    ours = _entry("jwksdeploy", {"f:spec": {"f:replicas": {}}}, "Apply")
    server_side = _entry("kubectl", {"f:data": {"f:x": {}}}, "Apply")
    live = {"metadata": {"managedFields": [CSA, ours, server_side, REVISION, STATUS]}}
    managed = adopt.migrated_managed_fields(live, "apps/v1", "2026-01-01T00:00:00Z")
    assert managed is not None
    assert [m["manager"] for m in managed] == [
        "kube-controller-manager",
        "kube-controller-manager",
        "jwksdeploy",
    ]
    assert managed[-1]["operation"] == "Apply"
    assert managed[-1]["fieldsV1"] == {
        "f:metadata": {"f:annotations": {".": {}, f"f:{LAST_APPLIED}": {}}},
        "f:spec": {"f:selector": {}, "f:replicas": {}},
        "f:data": {"f:x": {}},
    }
    assert adopt.migrated_managed_fields({"metadata": {"managedFields": [ours]}}, "v1", "") is None


def test_conflicting_managers_come_from_the_status_causes() -> None:
    status = {
        "kind": "Status",
        "message": "Apply failed with 2 conflicts: ...",
        "details": {
            "causes": [
                {"message": 'conflict with "helm" using apps/v1', "field": ".spec.replicas"},
                {"message": 'conflict with "kubectl" using apps/v1', "field": ".spec.selector"},
            ]
        },
    }
    assert conflicting_managers(status) == ["helm", "kubectl"]
    assert conflicting_fields(status) == [".spec.replicas", ".spec.selector"]
    # the message is shown, not parsed: without causes the Status names no manager
    assert conflicting_managers({"message": 'conflict with "x" using v1: .data'}) == []


def _rendered(replicas: int = 2) -> list[dict[str, Any]]:
    from jwksdeploy.render import render_objects
    from jwksdeploy.settings import Settings

    jwks = (EXAMPLES / "jwks-rsa.json").read_bytes()
    return render_objects(Settings(namespaces=("ns",), replicas=replicas), jwks).objects


def test_the_live_selector_is_kept_everywhere_pods_are_selected() -> None:
    objects = _rendered()
    live_deployment = {"spec": {"selector": {"matchLabels": {"app": "legacy"}}}}
    plan = adopt.plan_namespace(
        "ns", objects, {("Deployment", NAME): live_deployment}, NAME, recreate=False
    )
    assert plan.kept_selector == {"app": "legacy"}
    sent = {p.kind: p.obj for p in plan.objects}
    deployment = sent["Deployment"]
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "legacy"}}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app"] == "legacy" and labels.items() >= OUR_SELECTOR.items()
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
    assert spread["labelSelector"] == {"matchLabels": {"app": "legacy"}}
    assert sent["Service"]["spec"]["selector"] == {"app": "legacy"}
    assert sent["PodDisruptionBudget"]["spec"]["selector"] == {"matchLabels": {"app": "legacy"}}
    assert objects[2]["spec"]["selector"] == {"matchLabels": OUR_SELECTOR}, "input untouched"


def test_recreate_plans_the_deployment_before_the_service() -> None:
    objects = _rendered()
    live = {("Deployment", NAME): {"spec": {"selector": {"matchLabels": {"app": NAME}}}}}
    plan = adopt.plan_namespace("ns", copy.deepcopy(objects), live, NAME, recreate=True)
    assert [p.kind for p in plan.objects] == [
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ]
    assert [p.recreate for p in plan.objects] == [False, True, False, False]
    assert plan.kept_selector is None
    assert plan.objects[1].obj["spec"]["selector"] == {"matchLabels": OUR_SELECTOR}


def test_a_selector_a_service_cannot_express_is_refused_with_the_way_out() -> None:
    live = {
        ("Deployment", NAME): {
            "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}}
        }
    }
    with pytest.raises(ClusterRejected, match="--recreate"):
        adopt.plan_namespace("ns", _rendered(1), live, NAME, recreate=False)


def test_a_taken_over_service_keeps_its_node_port() -> None:
    service = _rendered(1)[1]
    port = service["spec"]["ports"][0]["port"]
    owned = {
        "manager": "kubectl-client-side-apply",
        "operation": "Update",
        "fieldsV1": {
            "f:spec": {"f:ports": {f'k:{{"port":{port},"protocol":"TCP"}}': {"f:nodePort": {}}}}
        },
    }
    live = {
        "metadata": {"managedFields": [owned]},
        "spec": {"ports": [{"name": "http", "port": port, "nodePort": 31456}]},
    }
    assert adopt.keep_node_port(service, live)["spec"]["ports"][0]["nodePort"] == 31456
    assert "nodePort" not in service["spec"]["ports"][0]
    # A nodePort the server allocated is owned by nobody: sending it would take it over.
    allocated = {**live, "metadata": {"managedFields": []}}
    assert "nodePort" not in adopt.keep_node_port(service, allocated)["spec"]["ports"][0]
    assert ownership(None, NAME).state == ABSENT
    assert ownership({"metadata": {"labels": {"app": NAME}}}, NAME).state == FOREIGN
    ours = {"app.kubernetes.io/managed-by": "jwksdeploy", "app.kubernetes.io/instance": NAME}
    assert ownership({"metadata": {"labels": ours}}, NAME).state == OURS


@pytest.mark.parametrize(
    ("labels", "state", "why"),
    [
        (None, ABSENT, "it does not exist"),
        ({"app": NAME}, FOREIGN, "it has no app.kubernetes.io/managed-by label"),
        (
            {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": NAME},
            FOREIGN,
            "its app.kubernetes.io/managed-by label is 'Helm', not 'jwksdeploy'",
        ),
        (
            {"app.kubernetes.io/managed-by": "jwksdeploy"},
            FOREIGN,
            "it has no app.kubernetes.io/instance label",
        ),
        (
            {"app.kubernetes.io/managed-by": "jwksdeploy", "app.kubernetes.io/instance": "other"},
            FOREIGN,
            f"its app.kubernetes.io/instance label is 'other', not {NAME!r}",
        ),
        (
            {"app.kubernetes.io/managed-by": "jwksdeploy", "app.kubernetes.io/instance": NAME},
            OURS,
            "its app.kubernetes.io/managed-by and app.kubernetes.io/instance labels are ours",
        ),
    ],
)
def test_ownership_says_which_label_decided(
    labels: dict[str, str] | None, state: str, why: str
) -> None:
    live = None if labels is None else {"metadata": {"labels": labels}}
    decided = ownership(live, NAME)
    assert (decided.state, decided.why) == (state, why)


def test_recreate_flag_is_documented_in_help() -> None:
    result = run("apply", "--help")
    assert result.exit_code == 0
    assert "--recreate" in result.stdout


# --- render --selector-compat source ----------------------------------------------------------


def test_render_with_the_source_selector(tmp_path: Any) -> None:
    result = run("render", "--jwks", JWKS, "-n", "envoy-yang", "--selector-compat", "source")
    assert result.exit_code == 0, result.stderr
    objects = {o["kind"]: o for o in yaml.safe_load_all(result.stdout) if o}
    deployment = objects["Deployment"]
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": NAME}}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app"] == NAME and labels.items() >= OUR_SELECTOR.items()
    assert objects["Service"]["spec"]["selector"] == {"app": NAME}
    values = tmp_path / "values.yaml"
    values.write_text("selector-compat: source\n")
    same = run("render", "--jwks", JWKS, "-n", "envoy-yang", "--values", str(values))
    assert same.stdout == result.stdout
    default = run("render", "--jwks", JWKS, "-n", "envoy-yang")
    service = next(o for o in yaml.safe_load_all(default.stdout) if o and o["kind"] == "Service")
    assert service["spec"]["selector"] == OUR_SELECTOR
    (tmp_path / "bad.yaml").write_text("selector-compat: legacy\n")
    bad = run("render", "--jwks", JWKS, "-n", "x", "--values", str(tmp_path / "bad.yaml"))
    assert bad.exit_code == 3
    assert "--selector-compat 'legacy' is invalid" in bad.stderr


@pytest.mark.cluster
def test_apply_with_the_source_selector_adopts_without_keeping_anything(kube: Kube) -> None:
    kubectl_apply_source(kube)
    result = kube.jwksdeploy(
        "apply", "--jwks", JWKS, "-n", kube.namespace, "--no-wait", "--selector-compat", "source"
    )
    assert result.exit_code == 0, result.stderr
    assert "adopt configmap/jwks-config" in result.stderr
    assert "keeping" not in result.stderr
    deployment = kube.read("Deployment", NAME)
    assert deployment is not None
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": NAME}}


@pytest.mark.cluster
def test_a_taken_over_explicit_node_port_stays_and_the_next_apply_is_unchanged(
    kube: Kube,
) -> None:
    """The source's YAML with its own nodePort: kubectl owns it, the takeover moves it to
    us, and neither that apply nor the next moves the URL; the next changes nothing."""
    status, services = kube.call("GET", "/api/v1/services")
    assert status == 200, services
    taken = {p.get("nodePort") for s in services["items"] for p in s["spec"].get("ports") or []}
    port = next(p for p in range(31789, 32768) if p not in taken)
    for obj in source_objects():
        if obj["kind"] == "Service":
            obj["spec"]["ports"][0]["nodePort"] = port
        kube.kubectl_apply(obj)
    result = kube.jwksdeploy("apply", "--jwks", JWKS, "-n", kube.namespace, "--no-wait")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith(f":{port}/jwks")
    service = kube.read("Service", NAME)
    assert service is not None and service["spec"]["ports"][0]["nodePort"] == port
    again = kube.jwksdeploy("apply", "--jwks", JWKS, "-n", kube.namespace, "--no-wait")
    assert again.exit_code == 0, again.stderr
    assert f"service/{NAME} unchanged" in again.stderr
    after = kube.read("Service", NAME)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == service["metadata"]["resourceVersion"]
    assert after["spec"]["ports"][0]["nodePort"] == port


@pytest.mark.cluster
@pytest.mark.emulator_only
def test_a_takeover_that_keeps_losing_the_race_stops_with_the_reason(kube: Kube) -> None:
    """The takeover retries a stale-resourceVersion 409, but not for ever."""
    assert kube.emulator is not None
    kubectl_apply_source(kube)
    modified = (
        'Operation cannot be fulfilled on deployments.apps "remote-jwks-go": the object has '
        "been modified; please apply your changes to the latest version and try again"
    )
    kube.emulator.fail("PATCH", "deployments", 409, modified, times=50, dry_run=False)
    result = kube.jwksdeploy("apply", "--jwks", JWKS, "-n", kube.namespace, "--no-wait")
    assert result.exit_code == 8, result.stderr
    assert "changed on the API server each time we read it, 5 times" in result.stderr
    assert "--force-conflicts" not in result.stderr  # no other tool's fields to take
    assert "Traceback" not in result.stderr
    takeovers = [
        s
        for s in kube.emulator.requests("PATCH")
        if s.content_type == "application/merge-patch+json" and "/deployments/" in s.path
    ]
    assert len(takeovers) == 5
