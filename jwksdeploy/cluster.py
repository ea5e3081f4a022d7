"""The apply engine, URL discovery and delete, over `kube.client.Cluster`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .adopt import NamespacePlan, migrated_managed_fields, plan_namespace
from .errors import (
    ApplyConflict,
    ClusterRejected,
    ClusterUnreachable,
    Conflict,
    Forbidden,
    JwksDeployError,
    WaitTimeout,
)
from .kube.client import Cluster
from .kube.resources import (
    DELETE_ORDER,
    OURS,
    VOLATILE_METADATA,
    instance_selector,
    ownership,
    resource_path,
)
from .settings import check_address, is_host

# --- apply and what it prints ---------------------------------------------------------------


@dataclass(frozen=True)
class AppliedObject:
    kind: str
    name: str
    namespace: str | None
    outcome: str  # created, configured, unchanged, deleted (--recreate's first step)


@dataclass(frozen=True)
class Endpoint:
    """Where the JWKS can be fetched, and how we found out."""

    url: str | None
    address: str | None
    node_port: int | None
    port: int | None
    source: str  # one human sentence: which node / which address kind / why unknown


@dataclass
class ApplyReport:
    namespace: str
    objects: list[AppliedObject]
    service: dict[str, Any] | None = None  # the server's answer for the Service
    endpoint: Endpoint | None = None
    dry_run: bool = False
    plan: NamespacePlan | None = None
    down_since: float | None = None  # monotonic time --recreate deleted the Deployment


def _comparable(obj: dict[str, Any]) -> Any:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in VOLATILE_METADATA}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def outcome_of(before: dict[str, Any] | None, after: dict[str, Any], dry_run: bool) -> str:
    """created / configured / unchanged, from the object before and the server's answer.

    A real apply compares what it can change, the content and the object's own
    managedFields (who owns which field); not the resourceVersion, which a controller
    writing status moves in between. A dry run stores nothing, so it compares the content.
    """
    if before is None:
        return "created"
    if dry_run:
        return "unchanged" if _comparable(before) == _comparable(after) else "configured"
    same = _comparable(before) == _comparable(after) and _owned(before) == _owned(after)
    return "unchanged" if same else "configured"


def _owned(obj: dict[str, Any]) -> list[Any]:
    """managedFields of the object itself (status subresource entries left out)."""
    entries = obj.get("metadata", {}).get("managedFields") or []
    return [e for e in entries if not (isinstance(e, dict) and e.get("subresource"))]


def _namespace_object(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}


def plan_apply(
    cluster: Cluster,
    objects: list[dict[str, Any]],
    *,
    instance: str,
    recreate: bool,
    force: bool,
) -> list[NamespacePlan]:
    """Read what is live (one GET per object) and decide, per namespace, what to send.

    A foreign object that another tool (not kubectl) manages is refused here, before any
    write, unless --force-conflicts."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_namespace.setdefault(obj["metadata"]["namespace"], []).append(obj)
    plans = []
    for namespace, group in by_namespace.items():
        live = {
            (o["kind"], o["metadata"]["name"]): cluster.get(
                o["kind"], namespace, o["metadata"]["name"]
            )
            for o in group
        }
        plan = plan_namespace(namespace, group, live, instance, recreate, cluster.field_manager)
        for item in plan.objects:
            if item.others and not force:
                raise ApplyConflict(
                    f"{item.kind} {item.name!r} in {namespace!r} exists and is managed by "
                    f"{', '.join(item.others)}, not by {cluster.field_manager} or kubectl. "
                    "Nothing was changed. Re-run with --force-conflicts to take its fields "
                    "over, or remove it from the other tool first.",
                    managers=item.others,
                )
        plans.append(plan)
    return plans


def preflight(
    cluster: Cluster, plans: list[NamespacePlan], *, create_namespace: bool, force: bool
) -> dict[tuple[str, str, str | None], dict[str, Any]]:
    """Server-side dry run of every object of every namespace, before the first real write,
    so a predictable refusal (immutable field, conflict, quota, admission, invalid value)
    changes nothing. Returns the dry-run answers by (kind, name, namespace)."""
    answers: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for plan in plans:
        if create_namespace and cluster.get("Namespace", None, plan.namespace) is None:
            ns = _namespace_object(plan.namespace)
            answers[("Namespace", plan.namespace, None)] = cluster.apply(
                ns, dry_run=True, force=force
            )
            continue  # objects cannot be dry-run in a namespace that does not exist yet
        for item in plan.objects:
            key = (item.kind, item.name, item.namespace)
            if item.recreate:
                cluster.delete(item.kind, item.namespace, item.name, dry_run=True)
                continue
            try:
                answers[key] = cluster.apply(item.obj, dry_run=True, force=force)
            except ApplyConflict as exc:
                # kubectl's fields move to us before the real apply: check the rest.
                if not exc.managers or not set(exc.managers) <= set(item.kubectl):
                    raise
                answers[key] = cluster.apply(item.obj, dry_run=True, force=True)
    return answers


def apply_plan(
    cluster: Cluster,
    plan: NamespacePlan,
    answers: dict[tuple[str, str, str | None], dict[str, Any]],
    *,
    create_namespace: bool,
    dry_run: bool,
    force: bool,
    on_applied: Callable[[AppliedObject], None],
    gone_timeout: float = 60.0,
) -> ApplyReport:
    """Apply one namespace's plan (after `preflight`), ConfigMap first so a new pod never
    starts without its JWKS; a dry run reports the pre-flight's answers instead."""
    report = ApplyReport(plan.namespace, [], plan=plan, dry_run=dry_run)

    def landed(obj: AppliedObject) -> None:
        report.objects.append(obj)
        on_applied(obj)

    if dry_run:
        if answers.get(("Namespace", plan.namespace, None)) is not None:
            landed(AppliedObject("Namespace", plan.namespace, None, "created"))
        for item in plan.objects:
            answer = answers.get((item.kind, item.name, item.namespace))
            outcome = (
                "recreated"
                if item.recreate
                else (outcome_of(item.live, answer, True) if answer is not None else "created")
            )
            landed(AppliedObject(item.kind, item.name, item.namespace, outcome))
            if item.kind == "Service":
                report.service = answer
        return report
    if ("Namespace", plan.namespace, None) in answers:
        landed(AppliedObject("Namespace", plan.namespace, None, "created"))  # by the pre-flight
    elif create_namespace:
        applied, _ = _apply_one(cluster, _namespace_object(plan.namespace), None, False, force)
        landed(applied)
    for item in plan.objects:
        live = item.live
        if item.recreate:
            cluster.delete(item.kind, item.namespace, item.name)
            report.down_since = time.monotonic()
            landed(AppliedObject(item.kind, item.name, item.namespace, "deleted"))
            _wait_gone(cluster, item.kind, item.namespace, item.name, gone_timeout)
            live = None
        elif item.kubectl and live is not None:
            _take_over_from_kubectl(cluster, item.obj, live)
        applied, answer = _apply_one(cluster, item.obj, live, False, force)
        landed(applied)
        if item.kind == "Service":
            report.service = answer
    return report


def prune(
    cluster: Cluster,
    namespace: str,
    rendered: list[dict[str, Any]],
    instance: str,
    *,
    dry_run: bool,
    on_applied: Callable[[AppliedObject], None],
) -> list[AppliedObject]:
    """Delete what an earlier apply of this instance made and this one no longer renders
    (the PodDisruptionBudget after scaling to one replica), found by our labels only and
    checked again by `kube.resources.ownership` before each delete."""
    from .prune import prunable_kinds, prune_candidates

    pruned = []
    for kind in prunable_kinds(rendered):
        live = cluster.list(kind, namespace, instance_selector(instance))
        for name in prune_candidates(live, rendered, instance):
            if cluster.delete(kind, namespace, name, dry_run=dry_run):
                pruned.append(AppliedObject(kind, name, namespace, "pruned"))
                on_applied(pruned[-1])
    return pruned


def _apply_one(
    cluster: Cluster,
    obj: dict[str, Any],
    before: dict[str, Any] | None,
    dry_run: bool,
    force: bool,
    *,
    read: bool = True,
) -> tuple[AppliedObject, dict[str, Any]]:
    meta = obj["metadata"]
    if before is None and read and obj["kind"] == "Namespace":
        before = cluster.get(obj["kind"], meta.get("namespace"), meta["name"])
    after = cluster.apply(obj, dry_run=dry_run, force=force)
    applied = AppliedObject(
        obj["kind"], meta["name"], meta.get("namespace"), outcome_of(before, after, dry_run)
    )
    return applied, after


TAKEOVER_ATTEMPTS = 5  # a rollout's status writes race the takeover: read again and retry


def _take_over_from_kubectl(cluster: Cluster, obj: dict[str, Any], live: dict[str, Any]) -> None:
    """Move the fields kubectl owns to our field manager (kubectl's own client-side to
    server-side migration), guarded by the resourceVersion read: the managedFields sent
    are computed from it. When a controller writes in between (a Deployment's status, all
    through a rollout), the server answers 409 without conflict causes; read it again and
    retry, as kubectl does."""
    meta = obj["metadata"]
    what = f"{obj['kind']} {meta['name']!r}"
    current: dict[str, Any] | None = live
    for attempt in range(TAKEOVER_ATTEMPTS):
        if current is None:
            return  # gone meanwhile: the apply that follows creates it
        managed = migrated_managed_fields(current, obj["apiVersion"], _now(), cluster.field_manager)
        if managed is None:
            return
        rv = current.get("metadata", {}).get("resourceVersion")
        try:
            cluster.request(
                "PATCH",
                resource_path(obj["kind"], meta.get("namespace"), meta["name"]),
                query={"fieldManager": cluster.field_manager},
                body={"metadata": {"managedFields": managed, "resourceVersion": rv}},
                content_type="application/merge-patch+json",
                what=what,
            )
            return
        except ApplyConflict as exc:
            if not _is_stale_version(exc):
                raise
            if attempt == TAKEOVER_ATTEMPTS - 1:
                raise Conflict(
                    f"{what} changed on the API server each time we read it, {attempt + 1} "
                    "times while taking it over from kubectl (409: the object has been "
                    "modified). Something keeps writing it; run the command again once it "
                    "settles."
                ) from None
        current = cluster.get(obj["kind"], meta.get("namespace"), meta["name"])


def _is_stale_version(exc: ApplyConflict) -> bool:
    """An optimistic-concurrency 409 (the object changed since we read it), not a field
    manager conflict: the Status names no conflicting field or manager in its causes."""
    return not exc.fields and not exc.managers


def _wait_gone(
    cluster: Cluster, kind: str, namespace: str | None, name: str, timeout: float
) -> None:
    from .kube.wait import wait_until_gone

    wait_until_gone(cluster, namespace, [(kind, name)], timeout)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def partial_failure(exc: JwksDeployError, landed: list[AppliedObject]) -> JwksDeployError:
    """The same error, saying what already changed and whether running again converges."""
    if not landed:
        return exc
    done = ", ".join(f"{o.kind.lower()}/{o.name} {o.outcome}" for o in landed)
    down = [o for o in landed if o.outcome == "deleted"]
    recreated = {(o.kind, o.name) for o in landed if o.outcome != "deleted"}
    gone = [o for o in down if (o.kind, o.name) not in recreated]
    if gone:
        tail = (
            f"The endpoint is down: {gone[0].kind.lower()}/{gone[0].name} was deleted and not "
            "created again; run the command again (without --recreate) to create it."
        )
    elif isinstance(exc, (ClusterUnreachable, WaitTimeout)):
        tail = "Running the command again converges once the API server answers."
    elif isinstance(exc, Forbidden):
        tail = "Running the command again converges once that permission is granted."
    else:
        tail = (
            "Fix the cause above, then run the command again; the objects already applied "
            "keep serving as before."
        )
    return exc.add_context(f"Already applied: {done}. {tail}")


# --- the URL ----------------------------------------------------------------------------------


def node_address(nodes: list[dict[str, Any]]) -> tuple[str, str, str] | None:
    """(address, kind, node name): a Ready node's ExternalIP, else its InternalIP; nodes in
    name order so the answer is stable."""

    def ready(node: dict[str, Any]) -> bool:
        conditions = node.get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    ordered = sorted(nodes, key=lambda n: (not ready(n), n.get("metadata", {}).get("name", "")))
    for kind in ("ExternalIP", "InternalIP"):
        for node in ordered:
            for address in node.get("status", {}).get("addresses") or []:
                if address.get("type") == kind and address.get("address"):
                    return address["address"], kind, node["metadata"]["name"]
    return None


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def endpoint_for(cluster: Cluster, service: dict[str, Any], address: str | None = None) -> Endpoint:
    """The JWKS URL of a Service: NodePort on a node (or --address), a LoadBalancer's ingress,
    or the in-cluster name for ClusterIP."""
    spec = service.get("spec", {})
    meta = service.get("metadata", {})
    port_spec: dict[str, Any] = next(iter(spec.get("ports") or []), {})
    port = port_spec.get("port")
    node_port = port_spec.get("nodePort")
    kind = spec.get("type", "ClusterIP")
    if kind == "ClusterIP":
        host = f"{meta.get('name')}.{meta.get('namespace')}.svc.cluster.local"
        return Endpoint(
            f"http://{host}:{port}/jwks", host, None, port, "in-cluster DNS name (ClusterIP)"
        )
    check_address(address)
    if kind == "LoadBalancer" and not address:
        status = service.get("status", {}).get("loadBalancer", {})
        ingress: dict[str, Any] = next(iter(status.get("ingress") or []), {})
        lb = ingress.get("ip") or ingress.get("hostname")
        if lb and not is_host(lb):
            where = resource_path("Service", str(meta.get("namespace")), str(meta.get("name")))
            raise cluster.malformed_answer("GET", where, f"a load balancer address {lb!r}")
        if lb:
            return Endpoint(
                f"http://{_host(lb)}:{port}/jwks", lb, node_port, port, "load balancer ingress"
            )
    if node_port is None:
        return Endpoint(None, None, None, port, "the Service has no nodePort yet")
    if address:
        return Endpoint(
            f"http://{_host(address)}:{node_port}/jwks", address, node_port, port, "--address"
        )
    try:
        nodes = cluster.nodes()
    except Forbidden:
        return Endpoint(
            None,
            None,
            node_port,
            port,
            f"nodes cannot be listed (RBAC); the URL is http://<any node or gateway "
            f"address>:{node_port}/jwks, or pass --address",
        )
    found = node_address(nodes)
    if found is None:
        return Endpoint(None, None, node_port, port, "no node reports an address; pass --address")
    host, address_kind, node = found
    if not is_host(host):
        raise cluster.malformed_answer("GET", "/api/v1/nodes", f"a node address {host!r}")
    waiting = " (load balancer pending; NodePort used)" if kind == "LoadBalancer" else ""
    return Endpoint(
        f"http://{_host(host)}:{node_port}/jwks",
        host,
        node_port,
        port,
        f"{address_kind} of node {node}{waiting}",
    )


def deployed_endpoint(
    cluster: Cluster, namespace: str, service_name: str, address: str | None = None
) -> Endpoint:
    """The endpoint of a Service `apply` created, or ClusterRejected naming the fix."""
    service = cluster.get("Service", namespace, service_name)
    if service is None:
        raise ClusterRejected(
            f"there is no Service {service_name!r} in namespace {namespace!r}. Deploy it with "
            f"`jwksdeploy apply --namespace {namespace}`, or pass the --name you used."
        )
    return endpoint_for(cluster, service, address)


def deployed_url(cluster: Cluster, namespace: str, name: str, address: str | None) -> str:
    """The URL `apply` printed for the instance `name` in `namespace`, read from the cluster."""
    endpoint = deployed_endpoint(cluster, namespace, name, address)
    if endpoint.url is None:
        raise ClusterRejected(
            f"the JWKS URL in namespace {namespace!r} is not known: {endpoint.source}. Pass "
            "--address or --url."
        )
    return str(endpoint.url)


# --- lifecycle ---------------------------------------------------------------------------------

MANAGED_KINDS = DELETE_ORDER


def managed_objects(
    cluster: Cluster, namespace: str, names: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """The live objects of one instance that are ours (managed-by and instance labels), by
    kind: the same ownership test apply uses to decide what it adopts."""
    found = {}
    for kind in MANAGED_KINDS:
        obj = cluster.get(kind, namespace, names[kind])
        if obj is not None and ownership(obj, names["Deployment"]) == OURS:
            found[kind] = obj
    return found


def delete_objects(
    cluster: Cluster,
    namespace: str,
    names: dict[str, str],
    wait: bool,
    timeout: float,
    *,
    dry_run: bool = False,
) -> list[tuple[str, str, str]]:
    """Delete what jwksdeploy manages (by name and managed-by label); (kind, name, outcome)."""
    results = []
    live = managed_objects(cluster, namespace, names)
    for kind in MANAGED_KINDS:
        if kind not in live:
            results.append((kind, names[kind], "not found"))
            continue
        gone = cluster.delete(kind, namespace, names[kind], dry_run=dry_run)
        outcome = ("deleted (dry run)" if dry_run else "deleted") if gone else "not found"
        results.append((kind, names[kind], outcome))
    if wait and live:
        from .kube.wait import wait_until_gone

        wait_until_gone(cluster, namespace, [(kind, names[kind]) for kind in live], timeout)
    return results
