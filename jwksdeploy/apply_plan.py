"""apply's engine: read what is live and plan each namespace, dry-run every object before the
first write, apply a plan (taking fields over from kubectl), prune what is no longer rendered.
`apply.run` drives it over namespaces; this module never prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .adopt import NamespacePlan, migrated_managed_fields, plan_namespace
from .errors import ApplyConflict, Conflict, ForeignObject, JwksDeployError
from .kube.resources import VOLATILE_METADATA, resource_path

if TYPE_CHECKING:
    from .kube.client import Cluster


@dataclass(frozen=True)
class AppliedObject:
    kind: str
    name: str
    namespace: str | None
    outcome: str  # created, configured, unchanged, deleted (--recreate's first step)


@dataclass
class ApplyReport:
    namespace: str
    objects: list[AppliedObject]
    service: dict[str, Any] | None = None  # the server's answer for the Service
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
                raise ForeignObject(
                    item.kind,
                    item.name,
                    namespace,
                    item.others,
                    cluster.field_manager,
                    item.ownership.why,
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
    checked again by `adopt.ownership` before each delete."""
    from .kube.resources import instance_selector
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
    """The same error, carrying what already changed (the CLI says whether running again
    converges)."""
    if not landed:
        return exc
    return exc.after_writes(tuple((o.kind, o.name, o.outcome) for o in landed))
