"""The shape of what the API server answers, checked once where it arrives.

Everything that reads an object (status, url, diff, rotation, adoption, the waiter) assumes
the types the Kubernetes API guarantees: `metadata` is an object, labels map strings to
strings, a Service's `ports` is a list of objects with integer ports, a Node's `addresses`
is a list of objects. A server (or a proxy in front of one) that answers well-formed JSON of
another shape is refused here, in one place, instead of crashing whichever reader meets it
first. Only the fields jwksdeploy reads are checked; anything else passes untouched.
"""

from __future__ import annotations

from typing import Any

# Path segments: a member name, or "*" for every element of a list / value of a map.
Path = tuple[str, ...]
STR, INT, BOOL, DICT, LIST = "string", "integer", "boolean", "object", "list"

_COMMON: dict[Path, str] = {
    ("apiVersion",): STR,
    ("kind",): STR,
    ("metadata",): DICT,
    ("metadata", "name"): STR,
    ("metadata", "namespace"): STR,
    ("metadata", "uid"): STR,
    ("metadata", "resourceVersion"): STR,
    ("metadata", "generation"): INT,
    ("metadata", "deletionTimestamp"): STR,
    ("metadata", "labels"): DICT,
    ("metadata", "labels", "*"): STR,
    ("metadata", "annotations"): DICT,
    ("metadata", "annotations", "*"): STR,
    ("metadata", "managedFields"): LIST,
    ("metadata", "managedFields", "*"): DICT,
    ("metadata", "managedFields", "*", "manager"): STR,
    ("metadata", "managedFields", "*", "operation"): STR,
    ("metadata", "managedFields", "*", "fieldsV1"): DICT,
    ("metadata", "ownerReferences"): LIST,
    ("metadata", "ownerReferences", "*"): DICT,
    ("metadata", "ownerReferences", "*", "kind"): STR,
    ("metadata", "ownerReferences", "*", "name"): STR,
    ("metadata", "ownerReferences", "*", "uid"): STR,
    ("spec",): DICT,
    ("status",): DICT,
}

_CONDITIONS: dict[Path, str] = {
    ("status", "conditions"): LIST,
    ("status", "conditions", "*"): DICT,
    ("status", "conditions", "*", "type"): STR,
    ("status", "conditions", "*", "status"): STR,
    ("status", "conditions", "*", "reason"): STR,
    ("status", "conditions", "*", "message"): STR,
}

_WORKLOAD: dict[Path, str] = {
    **_CONDITIONS,
    ("spec", "replicas"): INT,
    ("spec", "selector"): DICT,
    ("spec", "selector", "matchLabels"): DICT,
    ("spec", "selector", "matchLabels", "*"): STR,
    ("spec", "template"): DICT,
    ("spec", "template", "metadata"): DICT,
    ("spec", "template", "metadata", "labels"): DICT,
    ("spec", "template", "metadata", "labels", "*"): STR,
    ("spec", "template", "metadata", "annotations"): DICT,
    ("spec", "template", "metadata", "annotations", "*"): STR,
    ("spec", "template", "spec"): DICT,
    **{
        ("status", name): INT
        for name in (
            "replicas",
            "readyReplicas",
            "updatedReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "observedGeneration",
        )
    },
}

_CONTAINER_STATUSES: dict[Path, str] = {
    (*prefix, *rest): kind
    for prefix in (("status", "containerStatuses"), ("status", "initContainerStatuses"))
    for rest, kind in {
        (): LIST,
        ("*",): DICT,
        ("*", "name"): STR,
        ("*", "ready"): BOOL,
        ("*", "restartCount"): INT,
        ("*", "state"): DICT,
        ("*", "state", "*"): DICT,
        ("*", "state", "*", "reason"): STR,
        ("*", "state", "*", "message"): STR,
        ("*", "lastState"): DICT,
        ("*", "lastState", "*"): DICT,
    }.items()
}

SHAPES: dict[str, dict[Path, str]] = {
    "ConfigMap": {("data",): DICT, ("data", "*"): STR, ("binaryData",): DICT},
    "Secret": {("data",): DICT, ("data", "*"): STR},
    "Service": {
        ("spec", "type"): STR,
        ("spec", "selector"): DICT,
        ("spec", "selector", "*"): STR,
        ("spec", "ports"): LIST,
        ("spec", "ports", "*"): DICT,
        ("spec", "ports", "*", "name"): STR,
        ("spec", "ports", "*", "port"): INT,
        ("spec", "ports", "*", "nodePort"): INT,
        ("status", "loadBalancer"): DICT,
        ("status", "loadBalancer", "ingress"): LIST,
        ("status", "loadBalancer", "ingress", "*"): DICT,
        ("status", "loadBalancer", "ingress", "*", "ip"): STR,
        ("status", "loadBalancer", "ingress", "*", "hostname"): STR,
    },
    "Deployment": _WORKLOAD,
    "ReplicaSet": _WORKLOAD,
    "Pod": {**_CONDITIONS, **_CONTAINER_STATUSES, ("status", "phase"): STR},
    "Node": {
        **_CONDITIONS,
        ("status", "addresses"): LIST,
        ("status", "addresses", "*"): DICT,
        ("status", "addresses", "*", "type"): STR,
        ("status", "addresses", "*", "address"): STR,
    },
    "Event": {
        ("type",): STR,
        ("reason",): STR,
        ("message",): STR,
        ("count",): INT,
        ("involvedObject",): DICT,
    },
}

_TYPES: dict[str, tuple[type, ...]] = {
    STR: (str,),
    INT: (int,),
    BOOL: (bool,),
    DICT: (dict,),
    LIST: (list,),
}
# Larger integers are no Kubernetes field (int64); one may reach range() or a port check.
_MAX_INT = 2**63 - 1


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def check_object(obj: Any, kind: str) -> None:
    """Raise ValueError naming the first field of `obj` (a `kind`) whose type is not the one
    the Kubernetes API guarantees. A field may be absent, but null is no value the API server
    writes for any of them (Go omits an empty field), so null is refused like any wrong type:
    every reader may then trust `spec`, `status` and each list element to be what they say."""
    if not isinstance(obj, dict):
        raise ValueError(f"a {kind} that is {_type_name(obj)}, not an object")
    given = obj.get("kind")
    if isinstance(given, str) and given and given != kind:
        # e.g. a Status object with 200 OK: never the object asked for
        raise ValueError(f"a {given[:60]!r} object where a {kind} was asked for")
    table = {**_COMMON, **SHAPES.get(kind, {})}
    for path, expected in table.items():
        for where, value in _values_at(obj, path):
            if isinstance(value, bool) and expected == INT:
                ok = False
            else:
                ok = isinstance(value, _TYPES[expected])
            if ok and expected == INT and not -_MAX_INT <= value <= _MAX_INT:
                ok = False
            if not ok:
                raise ValueError(
                    f"a {kind} whose {where} is {_type_name(value)}, not {_article(expected)}"
                )


def check_list(document: Any, kind: str) -> list[dict[str, Any]]:
    """The items of a list answer, each checked as a `kind`; ValueError if any is not."""
    if not isinstance(document, dict):
        raise ValueError(f"a {kind} list that is {_type_name(document)}, not an object")
    items = document.get("items")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ValueError(f"a {kind} list whose items are {_type_name(items)}, not a list")
    given = document.get("kind")
    if isinstance(given, str) and given not in ("", f"{kind}List", "List"):
        raise ValueError(f"a {given[:60]!r} object where a {kind} list was asked for")
    metadata = document.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValueError(f"a {kind} list whose metadata is {_type_name(metadata)}")
    if isinstance(metadata, dict) and not isinstance(metadata.get("resourceVersion", ""), str):
        raise ValueError(f"a {kind} list whose metadata.resourceVersion is not a string")
    for item in items:
        check_object(item, kind)
    return items


def _article(expected: str) -> str:
    return f"an {expected}" if expected[0] in "aeiou" else f"a {expected}"


def _values_at(obj: Any, path: Path, shown: str = "") -> list[tuple[str, Any]]:
    """(dotted location, value) of every value at `path`; missing members yield nothing, and
    a parent of the wrong type is reported by its own table entry, so it is skipped here."""
    if not path:
        return [(shown, obj)]
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(obj, list):
            pairs: list[tuple[str, Any]] = [(f"{shown}[{i}]", v) for i, v in enumerate(obj)]
        elif isinstance(obj, dict):
            pairs = [(f"{shown}[{k!r}]", v) for k, v in obj.items()]
        else:
            return []
    elif isinstance(obj, dict) and head in obj:
        pairs = [(f"{shown}.{head}" if shown else head, obj[head])]
    else:
        return []
    found: list[tuple[str, Any]] = []
    for where, value in pairs:
        found.extend(_values_at(value, rest, where))
    return found
