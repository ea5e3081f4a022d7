"""Everything a render needs, validated once: names, ports, labels, resources.

Values arrive from three layers: a `--values` YAML file, then flags (which override it),
then defaults. `build_settings` merges them and checks every value against Kubernetes' rules,
so the templates only ever see values that are known to be well formed.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError

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

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_QUALIFIED_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
# The reference grammar of distribution/reference (what the kubelet parses): an optional
# registry host[:port], lowercase path components, an optional tag, an optional digest.
_IMAGE_HOST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_IMAGE_DOMAIN = rf"(?:{_IMAGE_HOST_PART}(?:\.{_IMAGE_HOST_PART})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?"
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?:(?P<domain>{_IMAGE_DOMAIN})/)?(?P<path>{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}))?",
    re.ASCII,
)
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGITS = re.compile(r"[0-9]{1,9}")
_BOOLEANS = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}
# Exact factors as (numerator, denominator), so quantities compare without rounding.
_QUANTITY_FACTORS: dict[str, tuple[int, int]] = {
    "": (1, 1),
    "m": (1, 1000),
    "k": (10**3, 1),
    "M": (10**6, 1),
    "G": (10**9, 1),
    "T": (10**12, 1),
    "P": (10**15, 1),
    "E": (10**18, 1),
    "Ki": (2**10, 1),
    "Mi": (2**20, 1),
    "Gi": (2**30, 1),
    "Ti": (2**40, 1),
    "Pi": (2**50, 1),
    "Ei": (2**60, 1),
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
        return tag if _LABEL_VALUE.fullmatch(tag) else ""


def _fail(what: str, value: object, rule: str, fix: str) -> InputError:
    return InputError(f"{what} {_show(value)} is invalid: {rule}. {fix}")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "...'"


def check_text(what: str, value: str) -> str:
    """Refuse text no Kubernetes object can carry: NUL, lone surrogates (bad UTF-8 in argv)."""
    if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
        raise _fail(what, value, "it holds a NUL or non-UTF-8 character", "Remove it.")
    return value


def check_dns1123_label(what: str, value: str) -> str:
    if len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
        raise _fail(
            what,
            value,
            "it must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
            "Choose a name like 'envoy-yang'.",
        )
    return value


def check_object_name(value: str, flag: str = "--name") -> str:
    # Services need a DNS-1035 label (must start with a letter); every object derives from it.
    if len(value) > 63 - len("-jwks") or not is_dns1035_label(value):
        raise _fail(
            flag,
            value,
            "it must be a DNS-1035 label of at most 58 characters: lowercase letters, digits "
            "and '-', starting with a letter and ending with a letter or digit",
            "Choose a name like 'remote-jwks-go' or 'jwks-staging'.",
        )
    return value


def check_qualified_key(what: str, key: str) -> str:
    """A label or annotation key: optional DNS-1123 subdomain prefix, '/', a 63-char name."""
    prefix, _, name = key.rpartition("/")
    ok = bool(name) and len(name) <= 63 and bool(_QUALIFIED_NAME.fullmatch(name))
    if prefix:
        ok = ok and len(prefix) <= 253 and bool(_DNS1123_SUBDOMAIN.fullmatch(prefix))
    if not ok:
        raise _fail(
            f"{what} key",
            key,
            "keys are an optional DNS subdomain prefix and '/', then at most 63 letters, "
            "digits, '-', '_' or '.', starting and ending with a letter or digit",
            "Use a key like 'team' or 'example.com/team'.",
        )
    return key


def check_label_value(value: str, what: str = "--label") -> str:
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise _fail(
            f"{what} value",
            value,
            "label values are empty or at most 63 letters, digits, '-', '_' or '.', starting "
            "and ending with a letter or digit",
            "Put free text in an --annotation instead.",
        )
    return value


def check_port(what: str, value: object) -> int:
    number = _integer(what, value)
    if not 1 <= number <= 65535:
        raise _fail(what, value, "a port is 1-65535", "Pick a port in that range.")
    return number


def check_image(image: str) -> str:
    """An image reference the kubelet can pull: `registry[:port]/path[:tag][@digest]`."""
    match = _IMAGE.fullmatch(image)
    ok = match is not None and len(image) <= 1024
    if match is not None:
        domain = match.group("domain")
        # Like the kubelet: a first component is a registry only with '.', ':' or localhost.
        if domain and not ("." in domain or ":" in domain or domain == "localhost"):
            ok = ok and domain == domain.lower()
        digest = match.group("digest")
        if digest:
            algorithm, _, hex_part = digest.partition(":")
            wanted = _DIGEST_LENGTHS.get(algorithm)
            ok = ok and (wanted is None or len(hex_part) == wanted)
    if not ok:
        raise _fail(
            "--image",
            image,
            "it is not an image reference: a lowercase repository path, optionally a "
            "registry host before it, a :tag and an @sha256:<64 hex digits> digest",
            "Use a form like registry.example.com/team/remote-jwks-go:0.1.0.",
        )
    return image


def quantity_value(value: str) -> tuple[int, int]:
    """The exact number a checked quantity stands for, as (numerator, denominator):
    `100m` -> (100, 1000), `1.5Ki` -> (15 * 1024, 10). Integer arithmetic, no float rounding."""
    match = re.fullmatch(r"([0-9]+)(?:\.([0-9]+))?([A-Za-z]*)", value)
    assert match is not None  # only called on values check_quantity accepted
    whole, fraction, suffix = match.group(1), match.group(2) or "", match.group(3)
    numerator, denominator = _QUANTITY_FACTORS[suffix]
    return int(whole + fraction) * numerator, 10 ** len(fraction) * denominator


def check_request_within_limit(resources: Mapping[str, str]) -> None:
    """The API server refuses a request above its limit; say so before anything is applied."""
    for resource in ("cpu", "memory"):
        request, limit = resources[f"{resource}-request"], resources[f"{resource}-limit"]
        (request_num, request_den), (limit_num, limit_den) = map(quantity_value, (request, limit))
        if request_num * limit_den > limit_num * request_den:
            raise InputError(
                f"--{resource}-request {request} is above --{resource}-limit {limit}; Kubernetes "
                "refuses a request larger than its limit. Lower the request or raise the limit."
            )


def check_quantity(what: str, value: str) -> str:
    if not _QUANTITY.fullmatch(value):
        raise _fail(
            what,
            value,
            "it is not a Kubernetes quantity",
            "Use a form like 100m or 0.5 for CPU and 64Mi or 1Gi for memory.",
        )
    return value


def _integer(what: str, value: object) -> int:
    """A whole number from a flag (int) or a values file (its text: ASCII digits only)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    raise _fail(what, value, "it must be a whole number (at most 9 digits)", "Give a number.")


def _text(what: str, value: object) -> str:
    """A text field: flags give str; a values file must give a scalar, not a list or mapping."""
    if isinstance(value, str):
        return check_text(what, value)
    raise _fail(what, value, "it must be text", "Give a single value.")


def _boolean(what: str, value: object) -> bool:
    """true/false from a flag (bool) or a values file (YAML 1.2's spellings only)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _BOOLEANS:
        return _BOOLEANS[value]
    raise _fail(what, value, "it must be true or false", "Write true or false.")


def parse_pairs(what: str, items: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """Turn `k=v` strings from flags into pairs; the value may be empty but '=' is required."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _fail(what, item, "it must look like key=value", f"Write {what} key=value.")
        pairs.append((key, value))
    return pairs


def _as_pairs(what: str, value: object) -> list[tuple[str, str]]:
    """Pairs from a values file: a mapping, or a list of `k=v` strings like the flag."""
    if isinstance(value, Mapping):
        return [(str(k), _scalar_text(what, v)) for k, v in value.items()]
    if isinstance(value, list):
        return parse_pairs(what, [_scalar_text(what, v) for v in value])
    raise _fail(what, value, "it must be a mapping or a list of key=value", "Fix the values file.")


def _scalar_text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise _fail(what, value, "it must be a string", "Write a single value.")
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
    """Validate merged values into Settings; raises InputError naming the value and the fix."""
    raw_namespaces = values.get("namespace")
    namespaces = _as_list(
        "--namespace", default_namespace if raw_namespaces in (None, []) else raw_namespaces
    )
    seen: list[str] = []
    for namespace in namespaces:
        check_dns1123_label("--namespace", check_text("--namespace", namespace))
        if namespace not in seen:
            seen.append(namespace)
    name = check_object_name(_text("--name", values.get("name", DEFAULT_NAME)))
    server = _text("--server", values.get("server", SERVERS[0]))
    if server not in SERVERS:
        raise _fail("--server", server, f"it must be one of {', '.join(SERVERS)}", "")
    if server not in SERVER_IMAGES and values.get("image") is None:
        raise InputError(
            f"--server {server} needs --image: build examples/image/Dockerfile, push it to "
            "your registry and pass its reference."
        )
    image = check_image(_text("--image", values.get("image", SERVER_IMAGES.get(server))))
    replicas = _integer("--replicas", values.get("replicas", 1))
    if not 1 <= replicas <= 100:
        raise _fail("--replicas", replicas, "it must be 1-100", "Pick a count in that range.")
    port = check_port("--port", values.get("port", DEFAULT_PORT))
    container_port = check_port("--container-port", values.get("container-port", DEFAULT_PORT))

    service_type = _text("--service-type", values.get("service-type", "NodePort"))
    if service_type not in SERVICE_TYPES:
        raise _fail(
            "--service-type", service_type, f"it must be one of {', '.join(SERVICE_TYPES)}", ""
        )
    node_port_range = _node_port_range(values.get("node-port-range"))
    node_port = None
    if values.get("node-port") is not None:
        node_port = _integer("--node-port", values["node-port"])
        if service_type == "ClusterIP":
            raise InputError(
                "--node-port was given with --service-type ClusterIP, which has no node port. "
                "Drop --node-port or use --service-type NodePort."
            )
        if len(seen) > 1:
            raise InputError(
                f"--node-port {node_port} was given for {len(seen)} namespaces, but a node port "
                "is cluster-wide: only one Service can hold it. Drop --node-port (the cluster "
                "picks a free port per namespace), or render one namespace per fixed port."
            )
        low, high = node_port_range
        if not low <= node_port <= high:
            raise InputError(
                f"--node-port {node_port} is outside the node port range {low}-{high}. Pick a "
                "port in the range, or pass --node-port-range if your API server's "
                "--service-node-port-range differs."
            )

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
    annotations = tuple(
        (
            check_qualified_key("--annotation", check_text("--annotation", k)),
            check_text("--annotation value", v),
        )
        for k, v in sorted(_as_pairs("--annotation", values.get("annotation", {})))
    )
    if sum(len(k) + len(v.encode()) for k, v in annotations) > MAX_ANNOTATIONS_BYTES:
        raise InputError("--annotation values exceed Kubernetes' 256 KiB total. Shorten them.")

    pull_policy = _text("--image-pull-policy", values.get("image-pull-policy", "IfNotPresent"))
    if pull_policy not in PULL_POLICIES:
        raise _fail(
            "--image-pull-policy", pull_policy, f"it must be one of {', '.join(PULL_POLICIES)}", ""
        )
    pull_secrets = tuple(
        check_dns1123_subdomain("--image-pull-secret", s)
        for s in _as_list("--image-pull-secret", values.get("image-pull-secret") or [])
    )
    resources = tuple(
        (key, check_quantity(f"--{key}", _text(f"--{key}", values.get(key, default))))
        for key, default in DEFAULT_RESOURCES.items()
    )
    check_request_within_limit(dict(resources))
    strict = _boolean("strict", values.get("strict", False))
    selector_compat = str(values.get("selector-compat") or "recommended")
    if selector_compat not in SELECTOR_COMPAT:
        raise _fail(
            "--selector-compat",
            selector_compat,
            f"it must be one of {', '.join(SELECTOR_COMPAT)}",
            "Use source to keep the source document's app=<name> selector.",
        )
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


def check_dns1123_subdomain(what: str, value: str, fix: str = "Use the Secret's name.") -> str:
    """A Kubernetes object name (Secrets, HTTPRoutes...): a DNS-1123 subdomain."""
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(value):
        raise _fail(what, value, "it must be a DNS-1123 subdomain", fix)
    return value


def is_dns1035_label(value: str) -> bool:
    """A Service name: lowercase letters, digits and '-', starting with a letter, <= 63."""
    return len(value) <= 63 and bool(_DNS1035_LABEL.fullmatch(value))


_HOSTNAME = re.compile(
    r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?"
)


def is_host(text: str) -> bool:
    """An IP address or a DNS name: what may stand between http:// and :port in a URL we
    print (a node address or --address could hold spaces, a path or terminal escapes)."""
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return len(text) <= 253 and bool(_HOSTNAME.fullmatch(text))
    return True


def check_address(address: str | None) -> str | None:
    """--address as given, or InputError when it is not a host (see is_host)."""
    if address is not None and not is_host(address):
        raise InputError(
            f"--address {address!r} is not an IP address or a DNS name. Pass a node's address "
            "the gateway can reach, e.g. --address 10.0.0.12."
        )
    return address


def check_http_url(url: str) -> urllib.parse.SplitResult:
    """An absolute http(s) URL with a host and a valid port: what gateways and verify fetch."""
    try:
        if any(ch.isspace() or not ch.isprintable() or not ch.isascii() for ch in url):
            raise ValueError("whitespace, control or non-ASCII characters")
        parsed = urllib.parse.urlsplit(url)
        port_ok = parsed.port is None or parsed.port > 0
    except ValueError:
        parsed, port_ok = urllib.parse.urlsplit(""), False
    if parsed.scheme not in ("http", "https") or not parsed.hostname or not port_ok:
        raise InputError(
            f"--url {url!r} is not an http(s) URL with a host. Pass the URL `jwksdeploy apply` "
            "printed (like http://192.0.2.10:31456/jwks), or --namespace to look it up."
        )
    return parsed


def _node_port_range(value: object) -> tuple[int, int]:
    if value is None:
        return DEFAULT_NODE_PORT_RANGE
    match = _PORT_RANGE.fullmatch(_text("--node-port-range", value).strip())
    if not match:
        raise _fail("--node-port-range", value, "it must look like 30000-32767", "")
    low, high = int(match.group(1)), int(match.group(2))
    if not 1 <= low <= high <= 65535:
        raise _fail("--node-port-range", value, "it must be an ascending range of ports", "")
    return low, high


def parse_duration(text: str, what: str) -> float:
    """durations.parse_duration, imported when a duration is read: `render` reads none, and
    the exact reader's fractions/decimal are not worth loading for it."""
    from .durations import parse_duration as exact

    return exact(text, what)
