"""Everything a render needs, validated once: names, ports, labels, resources.

Values arrive from three layers: a `--values` YAML file, then flags (which override it),
then defaults. `build_settings` merges them and checks every value against Kubernetes' rules,
so the templates only ever see values that are known to be well formed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .checks import (
    LABEL_VALUE,
    check_dns1123_label,
    check_dns1123_subdomain,
    check_image,
    check_label_value,
    check_object_name,
    check_port,
    check_qualified_key,
    check_quantity,
    check_request_within_limit,
    check_text,
    invalid,
    whole_number,
)
from .errors import InputError

T = TypeVar("T")

DEFAULT_NAME = "remote-jwks-go"
DEFAULT_CONFIGMAP = "jwks-config"
DEFAULT_IMAGE = "release-ci.daocloud.io/skoala/demo/remote-jwks-go:0.1.0"
# --server presets (render.SERVER_PRESETS says how each runs); jwksdeploy's has no public image.
SERVERS = ("remote-jwks-go", "jwksdeploy", "nginx")
SERVER_IMAGES = {
    "remote-jwks-go": DEFAULT_IMAGE,
    "nginx": "docker.io/nginxinc/nginx-unprivileged:1.27.4-alpine",
}
DEFAULT_PORT = 8080
DEFAULT_NODE_PORT_RANGE = (30000, 32767)
SERVICE_TYPES = ("NodePort", "ClusterIP", "LoadBalancer")
PULL_POLICIES = ("IfNotPresent", "Always", "Never")
DEFAULT_RESOURCES = {
    "cpu-request": "10m",
    "memory-request": "16Mi",
    "cpu-limit": "200m",
    "memory-limit": "64Mi",
}

_BOOLEANS = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}
_PORT_RANGE = re.compile(r"^([0-9]+)-([0-9]+)$")

MAX_ANNOTATIONS_BYTES = 256 * 1024

# Keys a values file may hold: the long flag names (underscores are accepted for dashes).
VALUE_KEYS = (
    "jwks",
    "namespace",
    "name",
    "image",
    "replicas",
    "port",
    "container-port",
    "node-port",
    "node-port-range",
    "service-type",
    "label",
    "annotation",
    "image-pull-policy",
    "image-pull-secret",
    "cpu-request",
    "memory-request",
    "cpu-limit",
    "memory-limit",
    "strict",
    "selector-compat",
    "server",
)
SELECTOR_COMPAT = ("recommended", "source")


@dataclass(frozen=True)
class Settings:
    """The validated inputs of one render, for one or more namespaces."""

    namespaces: tuple[str, ...]
    name: str = DEFAULT_NAME
    image: str = DEFAULT_IMAGE
    replicas: int = 1
    port: int = DEFAULT_PORT
    container_port: int = DEFAULT_PORT
    node_port: int | None = None
    node_port_range: tuple[int, int] = DEFAULT_NODE_PORT_RANGE
    service_type: str = "NodePort"
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: tuple[str, ...] = ()
    resources: tuple[tuple[str, str], ...] = field(
        default_factory=lambda: tuple(DEFAULT_RESOURCES.items())
    )
    strict: bool = False
    selector_compat: str = "recommended"  # "source": select pods by the source's `app` label
    server: str = "remote-jwks-go"  # which JWKS server runs in the pod (render.SERVER_PRESETS)

    @property
    def configmap_name(self) -> str:
        """The source's `jwks-config` for the default name; derived from --name otherwise."""
        return DEFAULT_CONFIGMAP if self.name == DEFAULT_NAME else f"{self.name}-jwks"

    @property
    def version_label(self) -> str:
        """The image tag as a label value (empty when the tag cannot be a label value)."""
        reference = self.image.split("@", 1)[0]
        last = reference.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else "latest"
        tag = tag[:63].strip("-_.")
        return tag if LABEL_VALUE.fullmatch(tag) else ""


def _text(what: str, value: object) -> str:
    """A text field: flags give str; a values file must give a scalar, not a list or mapping."""
    if isinstance(value, str):
        return check_text(what, value)
    raise invalid(what, value, "it must be text", "Give a single value.")


def _boolean(what: str, value: object) -> bool:
    """true/false from a flag (bool) or a values file (YAML 1.2's spellings only)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _BOOLEANS:
        return _BOOLEANS[value]
    raise invalid(what, value, "it must be true or false", "Write true or false.")


def parse_pairs(what: str, items: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """Turn `k=v` strings from flags into pairs; the value may be empty but '=' is required."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise invalid(what, item, "it must look like key=value", f"Write {what} key=value.")
        pairs.append((key, value))
    return pairs


def _as_pairs(what: str, value: object) -> list[tuple[str, str]]:
    """Pairs from a values file: a mapping, or a list of `k=v` strings like the flag."""
    if isinstance(value, Mapping):
        return [(str(k), _scalar_text(what, v)) for k, v in value.items()]
    if isinstance(value, list):
        return parse_pairs(what, [_scalar_text(what, v) for v in value])
    raise invalid(
        what, value, "it must be a mapping or a list of key=value", "Fix the values file."
    )


def _scalar_text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise invalid(what, value, "it must be a string", "Write a single value.")
    return value


def _as_list(what: str, value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [_text(what, item) for item in items]


def normalize_values(raw: object, source: str) -> dict[str, Any]:
    """Check a values-file mapping against VALUE_KEYS; underscores count as dashes."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InputError(
            f"{source} must be a YAML mapping of flag names to values "
            "(for example `namespace: envoy-yang`)."
        )
    if "keys" in raw and "keys" not in VALUE_KEYS:
        raise InputError(
            f"{source} is a JWKS (it has `keys`), not a values file: -f/--values takes Helm-style "
            "values; pass the key set with --jwks instead (e.g. `jwksdeploy render --jwks "
            "jwks.json -n NS`)."
        )
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("_", "-")
        if name not in VALUE_KEYS:
            import difflib

            close = difflib.get_close_matches(name, list(VALUE_KEYS), n=1)
            raise InputError(
                f"{source} has an unknown key {key!r}. Allowed keys are the long flag names: "
                f"{', '.join(VALUE_KEYS)}." + (f" Did you mean {close[0]!r}?" if close else "")
            )
        values[name] = value
    return values


def merge_layers(file_values: Mapping[str, Any], flags: Mapping[str, Any]) -> dict[str, Any]:
    """Flags override the values file; labels and annotations merge key by key (flags win)."""
    merged = dict(file_values)
    for key in ("label", "annotation"):
        combined = dict(_as_pairs(f"--{key}", merged.get(key, {})))
        combined.update(parse_pairs(f"--{key}", list(flags.get(key) or ())))
        merged[key] = combined
    for key, value in flags.items():
        if key in ("label", "annotation"):
            continue
        if value is None or value == ():
            continue
        merged[key] = list(value) if isinstance(value, tuple) else value
    return merged


def build_settings(values: Mapping[str, Any], default_namespace: str) -> Settings:
    """Validate merged values into Settings. Every value is checked, and InputError names each
    bad one with its fix (one bad value: that value's own message)."""
    problems: list[InputError] = []

    def check(rule: Callable[[], T], fallback: T) -> T:
        try:
            return rule()
        except InputError as exc:
            problems.append(exc)
            return fallback

    seen: list[str] = check(lambda: _namespaces(values, default_namespace), [])
    name = check(lambda: check_object_name(_text("--name", values.get("name", DEFAULT_NAME))), "")
    server = check(lambda: _server(values), SERVERS[0])
    image = check(lambda: _image(values, server), DEFAULT_IMAGE)
    replicas = check(lambda: _replicas(values), 1)
    port = check(lambda: check_port("--port", values.get("port", DEFAULT_PORT)), DEFAULT_PORT)
    container_port = check(
        lambda: check_port("--container-port", values.get("container-port", DEFAULT_PORT)),
        DEFAULT_PORT,
    )
    service_type = check(lambda: _choice(values, "service-type", SERVICE_TYPES), None)
    node_port_range = check(lambda: _node_port_range(values.get("node-port-range")), None)
    node_port = check(lambda: _node_port(values, service_type, seen, node_port_range), None)
    labels: tuple[tuple[str, str], ...] = check(lambda: _labels(values), ())
    annotations: tuple[tuple[str, str], ...] = check(lambda: _annotations(values), ())
    pull_policy = check(lambda: _choice(values, "image-pull-policy", PULL_POLICIES), None)
    pull_secrets: tuple[str, ...] = check(
        lambda: tuple(
            check_dns1123_subdomain("--image-pull-secret", s)
            for s in _as_list("--image-pull-secret", values.get("image-pull-secret") or [])
        ),
        (),
    )
    resources = check(lambda: _resources(values), None)
    strict = check(lambda: _boolean("strict", values.get("strict", False)), False)
    selector_compat = check(lambda: _selector_compat(values), "recommended")
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InvalidValues(problems)
    assert service_type is not None and pull_policy is not None and resources is not None
    assert node_port_range is not None
    return Settings(
        namespaces=tuple(seen),
        name=name,
        image=image,
        replicas=replicas,
        port=port,
        container_port=container_port,
        node_port=node_port,
        node_port_range=node_port_range,
        service_type=service_type,
        labels=labels,
        annotations=annotations,
        image_pull_policy=pull_policy,
        image_pull_secrets=pull_secrets,
        resources=resources,
        strict=strict,
        selector_compat=selector_compat,
        server=server,
    )


class InvalidValues(InputError):
    """Several values are bad at once: each one's message, in flag order."""

    def __init__(self, problems: list[InputError]) -> None:
        self.problems = tuple(problems)
        each = " ".join(f"({n}) {p.report()}" for n, p in enumerate(problems, 1))
        super().__init__(f"{len(problems)} values are invalid: {each}")


def _namespaces(values: Mapping[str, Any], default_namespace: str) -> list[str]:
    raw_namespaces = values.get("namespace")
    namespaces = _as_list(
        "--namespace", default_namespace if raw_namespaces in (None, []) else raw_namespaces
    )
    seen: list[str] = []
    for namespace in namespaces:
        check_dns1123_label("--namespace", check_text("--namespace", namespace))
        if namespace not in seen:
            seen.append(namespace)
    return seen


def _server(values: Mapping[str, Any]) -> str:
    server = _text("--server", values.get("server", SERVERS[0]))
    if server not in SERVERS:
        raise invalid("--server", server, f"it must be one of {', '.join(SERVERS)}", "")
    return server


def _image(values: Mapping[str, Any], server: str) -> str:
    if server not in SERVER_IMAGES and values.get("image") is None:
        raise InputError(
            f"--server {server} needs --image: build examples/image/Dockerfile, push it to "
            "your registry and pass its reference."
        )
    return check_image(_text("--image", values.get("image", SERVER_IMAGES.get(server))))


def _replicas(values: Mapping[str, Any]) -> int:
    replicas = whole_number("--replicas", values.get("replicas", 1))
    if not 1 <= replicas <= 100:
        raise invalid("--replicas", replicas, "it must be 1-100", "Pick a count in that range.")
    return replicas


_DEFAULT_CHOICE = {"service-type": "NodePort", "image-pull-policy": "IfNotPresent"}


def _choice(values: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = _text(f"--{key}", values.get(key, _DEFAULT_CHOICE[key]))
    if value not in choices:
        raise invalid(f"--{key}", value, f"it must be one of {', '.join(choices)}", "")
    return value


def _node_port(
    values: Mapping[str, Any],
    service_type: str | None,
    namespaces: list[str],
    node_port_range: tuple[int, int] | None,
) -> int | None:
    """--node-port; its checks against the Service type and the range need those valid."""
    if values.get("node-port") is None:
        return None
    node_port = whole_number("--node-port", values["node-port"])
    if service_type == "ClusterIP":
        raise InputError(
            "--node-port was given with --service-type ClusterIP, which has no node port. "
            "Drop --node-port or use --service-type NodePort."
        )
    if len(namespaces) > 1:
        raise InputError(
            f"--node-port {node_port} was given for {len(namespaces)} namespaces, but a node "
            "port is cluster-wide: only one Service can hold it. Drop --node-port (the cluster "
            "picks a free port per namespace), or render one namespace per fixed port."
        )
    if node_port_range is not None:
        low, high = node_port_range
        if not low <= node_port <= high:
            raise InputError(
                f"--node-port {node_port} is outside the node port range {low}-{high}. Pick a "
                "port in the range, or pass --node-port-range if your API server's "
                "--service-node-port-range differs."
            )
    return node_port


def _labels(values: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    labels = tuple(
        (check_qualified_key("--label", check_text("--label", k)), check_label_value(v))
        for k, v in sorted(_as_pairs("--label", values.get("label", {})))
    )
    reserved = [k for k, _ in labels if k.startswith("app.kubernetes.io/") or k == "app"]
    if reserved:
        raise InputError(
            f"--label {reserved[0]} is set by jwksdeploy itself (it selects the pods). "
            "Use another key."
        )
    return labels


def _annotations(values: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    annotations = tuple(
        (
            check_qualified_key("--annotation", check_text("--annotation", k)),
            check_text("--annotation value", v),
        )
        for k, v in sorted(_as_pairs("--annotation", values.get("annotation", {})))
    )
    if sum(len(k) + len(v.encode()) for k, v in annotations) > MAX_ANNOTATIONS_BYTES:
        raise InputError("--annotation values exceed Kubernetes' 256 KiB total. Shorten them.")
    return annotations


def _resources(values: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    resources = tuple(
        (key, check_quantity(f"--{key}", _text(f"--{key}", values.get(key, default))))
        for key, default in DEFAULT_RESOURCES.items()
    )
    check_request_within_limit(dict(resources))
    return resources


def _selector_compat(values: Mapping[str, Any]) -> str:
    selector_compat = str(values.get("selector-compat") or "recommended")
    if selector_compat not in SELECTOR_COMPAT:
        raise invalid(
            "--selector-compat",
            selector_compat,
            f"it must be one of {', '.join(SELECTOR_COMPAT)}",
            "Use source to keep the source document's app=<name> selector.",
        )
    return selector_compat


def _node_port_range(value: object) -> tuple[int, int]:
    if value is None:
        return DEFAULT_NODE_PORT_RANGE
    match = _PORT_RANGE.fullmatch(_text("--node-port-range", value).strip())
    if not match:
        raise invalid("--node-port-range", value, "it must look like 30000-32767", "")
    low, high = int(match.group(1)), int(match.group(2))
    if not 1 <= low <= high <= 65535:
        raise invalid("--node-port-range", value, "it must be an ascending range of ports", "")
    return low, high
