"""Facts about the objects jwksdeploy manages, as data: their kinds in one order, their API
paths, our labels and whether a live object is ours. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# kind -> (API path prefix, plural); namespaced unless the prefix has no {namespace}.
RESOURCES: dict[str, tuple[str, str]] = {
    "Namespace": ("/api/v1", "namespaces"),
    "ConfigMap": ("/api/v1/namespaces/{namespace}", "configmaps"),
    "Service": ("/api/v1/namespaces/{namespace}", "services"),
    "Deployment": ("/apis/apps/v1/namespaces/{namespace}", "deployments"),
    "PodDisruptionBudget": ("/apis/policy/v1/namespaces/{namespace}", "poddisruptionbudgets"),
    "Node": ("/api/v1", "nodes"),
    "Pod": ("/api/v1/namespaces/{namespace}", "pods"),
    "ReplicaSet": ("/apis/apps/v1/namespaces/{namespace}", "replicasets"),
    "Event": ("/api/v1/namespaces/{namespace}", "events"),
}

# The kinds we render, in apply order: the ConfigMap first so a new pod never starts without
# its JWKS. Delete and prune go the other way.
KIND_ORDER = ("ConfigMap", "Service", "Deployment", "PodDisruptionBudget")
DELETE_ORDER = tuple(reversed(KIND_ORDER))
# Under --recreate the Service follows the new pods: it is switched only once the new
# Deployment exists, so the Deployment moves before it.
RECREATE_ORDER = ("ConfigMap", "Deployment", "Service", "PodDisruptionBudget")

# The default field manager (apply --field-manager); the one in force is passed in, so
# objects applied under another name are still told apart from another tool's.
FIELD_MANAGER = "jwksdeploy"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "jwksdeploy"  # our label, whatever the field manager
INSTANCE = "app.kubernetes.io/instance"

# Metadata the API server writes on every change; left out when two versions of one object
# are compared (apply's outcome, diff).
VOLATILE_METADATA = (
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)

OURS = "ours"
ABSENT = "absent"
FOREIGN = "foreign"


def resource_path(kind: str, namespace: str | None = None, name: str | None = None) -> str:
    prefix, plural = RESOURCES[kind]
    path = f"{prefix.format(namespace=namespace)}/{plural}"
    return f"{path}/{name}" if name else path


def instance_selector(instance: str) -> str:
    """The label selector of one instance's objects."""
    return f"{MANAGED_BY}={MANAGED_BY_VALUE},{INSTANCE}={instance}"


def labels_of(obj: dict[str, Any] | None) -> dict[str, str]:
    """The object's labels (a live one comes checked by kube.views: a map of strings)."""
    labels: dict[str, str] = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return labels


@dataclass(frozen=True)
class Ownership:
    """Whose a live object is, and the label (or its absence) that decided it."""

    state: str  # OURS, ABSENT or FOREIGN
    why: str


def ownership(live: dict[str, Any] | None, instance: str) -> Ownership:
    """ours (our managed-by label and instance), absent, or foreign, with why: the one test
    behind adoption, prune and delete."""
    if live is None:
        return Ownership(ABSENT, "it does not exist")
    labels = labels_of(live)
    managed_by = labels.get(MANAGED_BY)
    if managed_by != MANAGED_BY_VALUE:
        why = (
            f"it has no {MANAGED_BY} label"
            if managed_by is None
            else f"its {MANAGED_BY} label is {managed_by!r}, not {MANAGED_BY_VALUE!r}"
        )
        return Ownership(FOREIGN, why)
    found = labels.get(INSTANCE)
    if found != instance:
        why = (
            f"it has no {INSTANCE} label"
            if found is None
            else f"its {INSTANCE} label is {found!r}, not {instance!r}"
        )
        return Ownership(FOREIGN, why)
    return Ownership(OURS, f"its {MANAGED_BY} and {INSTANCE} labels are ours")
