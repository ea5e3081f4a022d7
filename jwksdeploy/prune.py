"""What `apply` prunes, decided as data: objects of this instance that an earlier apply
made and this one no longer renders. No I/O here.

Found by our labels only (`app.kubernetes.io/managed-by: jwksdeploy` and the instance),
then checked with the same ownership test as adoption and delete, so an object without
both labels is never a candidate. kubectl's ApplySet labels (KEP-3659) were considered:
they need a parent object per namespace and RBAC on it, and still select by label; our two
labels already name the set, at no extra object or request.
"""

from __future__ import annotations

from typing import Any

from .kube.resources import DELETE_ORDER, OURS, ownership


def prunable_kinds(rendered: list[dict[str, Any]]) -> list[str]:
    """Kinds jwksdeploy can render that this render has none of, in deletion order (the
    names of rendered kinds derive from the instance, so their objects are the ones sent)."""
    present = {o["kind"] for o in rendered}
    return [kind for kind in DELETE_ORDER if kind not in present]


def prune_candidates(
    live: list[dict[str, Any]], rendered: list[dict[str, Any]], instance: str
) -> list[str]:
    """Names of the live objects (of one kind) that are ours and not rendered."""
    sent = {(o["kind"], o["metadata"]["name"]) for o in rendered}
    out = []
    for obj in live:
        meta = obj.get("metadata") or {}
        key = (obj.get("kind"), meta.get("name"))
        if ownership(obj, instance).state == OURS and key not in sent:
            out.append(str(meta.get("name")))
    return sorted(out)
