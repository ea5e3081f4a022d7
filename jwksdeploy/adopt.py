"""Taking over objects someone else made, decided as data: no I/O here. Live objects come
checked by kube.views (managedFields entries, ports and selectors have their API types).

Given the live objects (as the API server returned them) and the rendered ones, decide per
object whether it is ours, absent, or someone else's; which field managers made it; which
selector the Deployment, Service and PodDisruptionBudget must use so that no running pod
drops out of the Service; and the managedFields that move kubectl's ownership to us, the way
kubectl's own client-side to server-side apply migration does.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import ClusterRejected
from .kube.resources import FIELD_MANAGER, FOREIGN, RECREATE_ORDER, Ownership, ownership

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# `kubectl apply` (client-side) records its fields as kubectl-client-side-apply (Update);
# `kubectl apply --server-side` as kubectl (Apply). Both are the user's own hand, so their
# fields move to us without --force-conflicts. Any other manager is another tool.
KUBECTL_MANAGERS = frozenset({"kubectl-client-side-apply", "kubectl"})


def _entries(live: dict[str, Any] | None) -> list[dict[str, Any]]:
    """managedFields entries of the object itself (status subresource entries left out)."""
    entries: list[dict[str, Any]] = ((live or {}).get("metadata") or {}).get("managedFields") or []
    return [e for e in entries if not e.get("subresource")]


def _owns_more_than_annotations(entry: dict[str, Any]) -> bool:
    fields = entry.get("fieldsV1") or {}
    others = {k for k in fields if k not in ("f:metadata", "f:status", ".")}
    metadata = fields.get("f:metadata") or {}
    meta_others = {k for k in metadata if k not in ("f:annotations", ".")}
    return bool(others or meta_others)


def kubectl_managers(live: dict[str, Any] | None) -> list[str]:
    """The kubectl managers that hold fields of the object."""
    return sorted(
        {str(e.get("manager")) for e in _entries(live) if e.get("manager") in KUBECTL_MANAGERS}
    )


def other_managers(live: dict[str, Any] | None, field_manager: str = FIELD_MANAGER) -> list[str]:
    """Managers other than us (`field_manager`) and kubectl that own real fields (labels,
    spec, data...).

    Controllers that only annotate the object, like the deployment controller's
    `deployment.kubernetes.io/revision`, are not counted: they do not compete with us.
    """
    return sorted(
        {
            str(e.get("manager"))
            for e in _entries(live)
            if e.get("manager") not in KUBECTL_MANAGERS
            and e.get("manager") != field_manager
            and _owns_more_than_annotations(e)
        }
    )


def union_fields(a: Any, b: Any) -> dict[str, Any]:
    """The union of two FieldsV1 sets (nested maps whose leaves are empty maps)."""
    out: dict[str, Any] = copy.deepcopy(a) if isinstance(a, dict) else {}
    for key, value in (b if isinstance(b, dict) else {}).items():
        out[key] = union_fields(out.get(key), value) if key in out else copy.deepcopy(value)
    return out


def migrated_managed_fields(
    live: dict[str, Any], api_version: str, now: str, field_manager: str = FIELD_MANAGER
) -> list[dict[str, Any]] | None:
    """managedFields with every kubectl entry folded into the Apply entry of `field_manager`
    (ours); None when kubectl
    holds nothing. Once the fields are ours, our next apply drops what we do not render,
    the last-applied annotation included, so a stale copy of the old YAML never lingers."""
    entries: list[dict[str, Any]] = (live.get("metadata") or {}).get("managedFields") or []
    moving = [
        e for e in entries if not e.get("subresource") and e.get("manager") in KUBECTL_MANAGERS
    ]
    if not moving:
        return None
    ours = [
        e
        for e in entries
        if e.get("manager") == field_manager
        and e.get("operation") == "Apply"
        and not e.get("subresource")
    ]
    fields: dict[str, Any] = {}
    for entry in [*ours, *moving]:
        fields = union_fields(fields, entry.get("fieldsV1") or {})
    kept = [e for e in entries if e not in moving and e not in ours]
    merged = {
        "manager": field_manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    return [*kept, merged]


# --- selectors ------------------------------------------------------------------------------


def selector_text(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def live_selector(deployment: dict[str, Any] | None) -> dict[str, Any] | None:
    selector: dict[str, Any] | None = ((deployment or {}).get("spec") or {}).get("selector")
    return selector


def rendered_selector(objects: list[dict[str, Any]]) -> dict[str, Any] | None:
    for obj in objects:
        if obj["kind"] == "Deployment":
            selector: dict[str, Any] = obj["spec"]["selector"]
            return selector
    return None


def needs_selector_change(live: dict[str, Any] | None, objects: list[dict[str, Any]]) -> bool:
    """Whether the live Deployment selects pods differently from what we render."""
    kept = live_selector(live)
    return kept is not None and kept != rendered_selector(objects)


def keep_selector(objects: list[dict[str, Any]], selector: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects of one namespace, changed to select pods with the live Deployment's
    selector (immutable), so old and new pods both serve during the rollout. The pod
    template carries the selector's labels as well as ours."""
    expressions = selector.get("matchExpressions")
    match_labels = selector.get("matchLabels") or {}
    if expressions or not isinstance(match_labels, dict) or not match_labels:
        raise ClusterRejected(
            f"the live Deployment selects its pods with {selector}, which a Service cannot "
            "express as a label map. Pass --recreate to replace the Deployment (the endpoint "
            "is down until the new pod is ready), or delete it yourself."
        )
    labels = {str(k): str(v) for k, v in match_labels.items()}
    out = copy.deepcopy(objects)
    for obj in out:
        spec = obj.get("spec") or {}
        if obj["kind"] == "Deployment":
            spec["selector"] = {"matchLabels": dict(labels)}
            template_meta = spec["template"]["metadata"]
            template_meta["labels"] = {**template_meta.get("labels", {}), **labels}
            for constraint in spec["template"]["spec"].get("topologySpreadConstraints") or []:
                constraint["labelSelector"] = {"matchLabels": dict(labels)}
        elif obj["kind"] == "Service" and "selector" in spec:
            spec["selector"] = dict(labels)
        elif obj["kind"] == "PodDisruptionBudget":
            spec["selector"] = {"matchLabels": dict(labels)}
    return out


def keep_node_port(service: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    """The Service with the live nodePort of each same-named port that has none and whose
    nodePort a field manager owns, so taking over a Service never moves the URL a gateway
    already points at.

    A nodePort the server allocated is owned by nobody and stays where it is without us;
    applying it anyway would take ownership of it, a change on every re-apply's first."""
    if live is None or service["spec"].get("type") == "ClusterIP":
        return service
    allocated = {
        p.get("name"): p.get("nodePort")
        for p in (live.get("spec") or {}).get("ports") or []
        if p.get("nodePort") and _node_port_owned(live, p)
    }
    out = copy.deepcopy(service)
    for port in out["spec"].get("ports") or []:
        if "nodePort" not in port and allocated.get(port.get("name")):
            port["nodePort"] = allocated[port.get("name")]
    return out


def _node_port_owned(live: dict[str, Any], port: dict[str, Any]) -> bool:
    """Whether any field manager owns this live port's nodePort (ports are keyed by port
    and protocol in managedFields: k:{"port":8080,"protocol":"TCP"})."""
    wanted = {"port": port.get("port"), "protocol": port.get("protocol") or "TCP"}
    for entry in _entries(live):
        fields = entry.get("fieldsV1")
        spec = fields.get("f:spec") if isinstance(fields, dict) else None
        ports = spec.get("f:ports") if isinstance(spec, dict) else None
        for key, item in (ports or {}).items() if isinstance(ports, dict) else ():
            if not key.startswith("k:") or not isinstance(item, dict):
                continue
            try:
                terms = json.loads(key[2:])
            except ValueError:
                continue
            if terms == wanted and "f:nodePort" in item:
                return True
    return False


# --- the plan -------------------------------------------------------------------------------


@dataclass
class ObjectPlan:
    """What apply will do with one rendered object."""

    obj: dict[str, Any]  # what we send
    live: dict[str, Any] | None
    ownership: Ownership
    kubectl: list[str] = field(default_factory=list)  # kubectl managers whose fields move to us
    others: list[str] = field(default_factory=list)  # other tools' managers on a foreign object
    recreate: bool = False  # delete and create again (the Deployment under --recreate)

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        namespace = self.obj["metadata"].get("namespace")
        return str(namespace) if namespace else None


@dataclass
class NamespacePlan:
    namespace: str
    objects: list[ObjectPlan]
    kept_selector: dict[str, str] | None = None  # the live selector we keep (adoption)
    old_selector: dict[str, Any] | None = None  # the selector --recreate replaces

    @property
    def adopted(self) -> list[ObjectPlan]:
        return [p for p in self.objects if p.ownership.state == FOREIGN]

    @property
    def recreating(self) -> bool:
        return any(p.recreate for p in self.objects)


def plan_namespace(
    namespace: str,
    objects: list[dict[str, Any]],
    live: dict[tuple[str, str], dict[str, Any] | None],
    instance: str,
    recreate: bool,
    field_manager: str = FIELD_MANAGER,
) -> NamespacePlan:
    """Decide, for one namespace, what to send for each rendered object; `field_manager`
    is the one apply uses, whose fields are ours."""
    deployment = next((o for o in objects if o["kind"] == "Deployment"), None)
    live_deployment = live.get(("Deployment", instance)) if deployment else None
    plan = NamespacePlan(namespace, [])
    sent = objects
    if deployment is not None and needs_selector_change(live_deployment, objects):
        selector = live_selector(live_deployment)
        assert selector is not None
        if recreate:
            plan.old_selector = selector
        else:
            sent = keep_selector(objects, selector)
            plan.kept_selector = {str(k): str(v) for k, v in selector["matchLabels"].items()}
    for obj in sent:
        key = (obj["kind"], obj["metadata"]["name"])
        current = live.get(key)
        state = ownership(current, instance)
        if obj["kind"] == "Service":
            obj = keep_node_port(obj, current)
        plan.objects.append(
            ObjectPlan(
                obj=obj,
                live=current,
                ownership=state,
                kubectl=kubectl_managers(current),
                others=other_managers(current, field_manager) if state.state == FOREIGN else [],
                recreate=obj["kind"] == "Deployment" and plan.old_selector is not None,
            )
        )
    if plan.recreating:
        # The Service follows the new pods: switch it only once the new Deployment exists.
        order = {kind: index for index, kind in enumerate(RECREATE_ORDER)}
        plan.objects.sort(key=lambda p: order.get(p.kind, len(order)))
    return plan
