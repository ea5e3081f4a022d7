"""What `apply` would change, decided as data: live objects against the API server's dry run
of the apply, normalised and shown as a unified YAML diff. No I/O here.

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
from dataclasses import dataclass
from typing import Any

import yaml

from .kube.resources import VOLATILE_METADATA
from .members import PEM_PRIVATE_MARKER, is_private_name, parse_embedded_json
from .safeyaml import string_style

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
