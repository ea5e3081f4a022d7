"""What `apply` would change, decided as data: live objects against the API server's dry run
of the apply, normalised and shown as a unified YAML diff. No I/O here.

Both sides come from the same API server, so the defaults it fills in appear on both and
cancel out; what is left is what apply would change. Fields the server writes on every
change (managedFields, resourceVersion, generation, timestamps, uid) and `status` are
dropped first. An `oct` key's secret never reaches the output: it is replaced by a short
digest, so a changed secret still shows as a change.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml

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
VOLATILE_ANNOTATIONS = (
    "deployment.kubernetes.io/revision",
    "kubectl.kubernetes.io/last-applied-configuration",
)

CREATE, CHANGE, UNCHANGED, PRUNE, RECREATE = "create", "change", "unchanged", "prune", "recreate"


@dataclass(frozen=True)
class ObjectDiff:
    """One object's verdict and its unified diff (empty when unchanged)."""

    kind: str
    name: str
    namespace: str | None
    action: str  # create, change, unchanged, prune, recreate
    diff: str

    @property
    def changes(self) -> bool:
        return self.action != UNCHANGED

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.name}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "action": self.action,
            "diff": self.diff,
        }


def normalize(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy without what the server rewrites on its own (status, managedFields...)."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for key in VOLATILE_METADATA:
            meta.pop(key, None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            for key in VOLATILE_ANNOTATIONS:
                annotations.pop(key, None)
            if not annotations:
                meta.pop("annotations")
    return out


def redact(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """A ConfigMap's JWKS with every oct key's `k` replaced by a digest of it."""
    if obj is None or obj.get("kind") != "ConfigMap" or not isinstance(obj.get("data"), dict):
        return obj
    out = copy.deepcopy(obj)
    for name, text in out["data"].items():
        if not isinstance(text, str) or '"oct"' not in text:
            continue
        try:
            document = json.loads(text)
        except ValueError:
            # Not a JWKS we can read: show only a digest, in case it holds a secret.
            out["data"][name] = _digest(text)
            continue
        keys = document.get("keys") if isinstance(document, dict) else None
        for key in keys if isinstance(keys, list) else []:
            if isinstance(key, dict) and key.get("kty") == "oct" and "k" in key:
                key["k"] = _digest(str(key["k"]))
        out["data"][name] = json.dumps(document, indent=2) + "\n"
    return out


def _digest(secret: str) -> str:
    return f"<secret, sha256 {hashlib.sha256(secret.encode()).hexdigest()[:12]}>"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the JWKS in the ConfigMap) as YAML blocks, so a diff is per line."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(ch in value for ch in "\r\t") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(obj: dict[str, Any] | None) -> str:
    if obj is None:
        return ""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=100)


def compare(
    kind: str,
    name: str,
    namespace: str | None,
    live: dict[str, Any] | None,
    planned: dict[str, Any] | None,
    *,
    recreate: bool = False,
) -> ObjectDiff:
    """The verdict for one object: `planned` None means apply would prune it."""
    before, after = normalize(live), normalize(planned)
    if before is None:
        action = CREATE
    elif after is None:
        action = PRUNE
    elif recreate:
        action = RECREATE
    else:
        action = CHANGE if before != after else UNCHANGED
    if action == UNCHANGED:
        return ObjectDiff(kind, name, namespace, action, "")
    where = f"{namespace}/" if namespace else ""
    label = f"{kind.lower()}/{where}{name}"
    old_text, new_text = to_yaml(redact(before)), to_yaml(redact(after))
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=f"live/{label}" if before is not None else "/dev/null",
        tofile=f"planned/{label}" if after is not None else "/dev/null",
        n=3,
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    if not text:
        text = f"# {label}: only a secret's value changes (not shown)\n"
    return ObjectDiff(kind, name, namespace, action, text)


def summary(diffs: list[ObjectDiff]) -> str:
    """One sentence for stderr: what would change, or that nothing would."""
    changed = [d for d in diffs if d.changes]
    if not changed:
        return "no changes: apply would leave every object as it is."
    parts = [f"{d.namespace}: {d.ref} ({d.action})" for d in changed]
    return f"apply would change {len(changed)} object(s): {', '.join(parts)}."
