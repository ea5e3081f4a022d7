"""What `apply` would change, decided as data: live objects against the API server's dry run
of the apply, normalised and shown as a unified YAML diff; `run` (DiffOptions -> DiffResult)
reads and dry-runs through the cluster, everything else here is pure.

Both sides come from the same API server, so the defaults it fills in appear on both and
cancel out; what is left is what apply would change. Fields the server writes on every
change (managedFields, resourceVersion, generation, timestamps, uid) and `status` are
dropped first. No secret reaches the output: a private member (an `oct` key's `k`, a `d`
in any spelling, at any depth) is replaced by a short digest, so a changed secret still
shows as a change, and text that cannot be read is shown only as a digest.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from .kube.resources import VOLATILE_METADATA
from .members import PEM_PRIVATE_MARKER, is_private_name, parse_embedded_json
from .safeyaml import string_style

if TYPE_CHECKING:
    from .adopt import NamespacePlan
    from .kube.client import Cluster
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
    """A copy that cannot show a secret: in a ConfigMap's data every private member (any
    spelling, any depth, by the rule in members.py) becomes a digest of its value, and text
    that is not JSON becomes a digest whole; anywhere else a string holding key material does."""
    if obj is None:
        return obj
    out: dict[str, Any] = _scrub(copy.deepcopy(obj))
    if out.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if isinstance(out.get(field), dict):
                out[field] = {name: _digest_value(value) for name, value in out[field].items()}
    if out.get("kind") == "ConfigMap":
        if isinstance(obj.get("data"), dict):
            config_files = _server_config_files()
            out["data"] = {
                name: _scrub(text) if name in config_files else _redact_data(text)
                for name, text in obj["data"].items()
            }
        if isinstance(out.get("binaryData"), dict):
            out["binaryData"] = {n: _digest_value(v) for n, v in out["binaryData"].items()}
    return out


def _redact_data(text: Any) -> Any:
    """One ConfigMap data value: JSON shown with its private members digested, else a digest."""
    if not isinstance(text, str):
        return _digest_value(text)
    from .strictjson import StrictJsonError, parse

    try:
        document = parse(text)
    except StrictJsonError:
        return _digest(text)  # not a document we can read: it may hold a secret
    redacted = _redact_document(document)
    return text if redacted == document else json.dumps(redacted, indent=2) + "\n"


def _redact_document(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            name: _digest_value(item) if is_private_name(name) else _redact_document(item)
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [_redact_document(item) for item in value]
    return _scrub(value)


def _scrub(value: Any) -> Any:
    """Strings anywhere in an object (annotations, args...) that hold key material."""
    if isinstance(value, dict):
        return {name: _scrub(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, str):
        if PEM_PRIVATE_MARKER in value:
            return _digest(value)
        if parse_embedded_json(value) is not None:
            return _redact_data(value)
    return value


def _server_config_files() -> frozenset[str]:
    """ConfigMap keys that hold a server's configuration we render (nginx.conf), not JSON."""
    from .render import SERVER_PRESETS

    return frozenset(
        preset.config_template.removesuffix(".j2")
        for preset in SERVER_PRESETS.values()
        if preset.config_template is not None
    )


def _digest_value(value: Any) -> str:
    return _digest(value if isinstance(value, str) else json.dumps(value, sort_keys=True))


def _digest(secret: str) -> str:
    return f"<secret, sha256 {hashlib.sha256(secret.encode()).hexdigest()[:12]}>"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the JWKS in the ConfigMap) as YAML blocks, so a diff is per line."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = string_style(value, block="\n" in value and not any(ch in value for ch in "\r\t"))
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


@dataclass(frozen=True)
class DiffOptions:
    objects: list[dict[str, Any]]  # rendered, every namespace
    instance: str
    recreate: bool = False
    force: bool = False
    field_manager: str | None = None  # None: the cluster's (jwksdeploy)


@dataclass
class DiffResult:
    diffs: list[ObjectDiff]
    api_warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(d.changes for d in self.diffs)

    def summary(self) -> str:
        return summary(self.diffs)


def run(cluster: Cluster, options: DiffOptions) -> DiffResult:
    """Plan as apply does, dry-run each namespace, and compare with what is live; then what
    apply would prune. Cluster reads and dry runs only: nothing is stored."""
    from .apply_plan import plan_apply
    from .kube.resources import instance_selector
    from .prune import prunable_kinds, prune_candidates

    if options.field_manager is not None:
        cluster.field_manager = options.field_manager
    objects, instance, recreate = options.objects, options.instance, options.recreate
    plans = plan_apply(cluster, objects, instance=instance, recreate=recreate, force=options.force)
    diffs = []
    for plan in plans:
        answers = _dry_run_plan(cluster, plan, options.force)
        namespace_key = ("Namespace", plan.namespace, None)
        if namespace_key in answers:
            diffs.append(compare("Namespace", plan.namespace, None, None, answers[namespace_key]))
        for item in plan.objects:
            planned = answers.get((item.kind, item.name, item.namespace), item.obj)
            diffs.append(
                compare(
                    item.kind, item.name, item.namespace, item.live, planned, recreate=item.recreate
                )
            )
        if namespace_key in answers:
            continue  # nothing lives in a namespace that does not exist yet
        group = [o for o in objects if o["metadata"]["namespace"] == plan.namespace]
        for kind in prunable_kinds(group):
            live = {
                str(o.get("metadata", {}).get("name")): o
                for o in cluster.list(kind, plan.namespace, instance_selector(instance))
            }
            for name in prune_candidates(list(live.values()), group, instance):
                diffs.append(
                    compare(kind, name, plan.namespace, {"kind": kind, **live[name]}, None)
                )
    return DiffResult(diffs, list(cluster.warnings))


def _dry_run_plan(
    cluster: Cluster, plan: NamespacePlan, force: bool
) -> dict[tuple[str, str, str | None], dict[str, Any]]:
    """apply's pre-flight for one namespace. A missing namespace is part of the diff, not an
    error (everything in it is a create); the Namespace is read only when the dry run says so,
    so a user whose RBAC stops at the namespace can still diff."""
    from .apply_plan import preflight
    from .errors import ClusterRejected

    try:
        return preflight(cluster, [plan], create_namespace=False, force=force)
    except ClusterRejected:
        if cluster.get("Namespace", None, plan.namespace) is not None:
            raise
        return preflight(cluster, [plan], create_namespace=True, force=force)
