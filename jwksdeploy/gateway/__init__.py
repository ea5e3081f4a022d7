"""The gateway side: the JWT provider that points a gateway at the deployed JWKS URL.

Pure: options in, objects and warnings out. The source document's seven fields (JWKS name,
server address, token pass-through, issuer, audiences, cache duration, fetch timeout) map onto
each target's own API; a field a target cannot express is a warning, never silently dropped,
and a value a target's API server or loader would refuse is refused here, quoting its rule.
`options` validates the flags; one module per target builds its objects.
"""

from __future__ import annotations

import json
import urllib.parse

from ..durations import flag_text
from .contour import build_contour
from .envoy import JWT_AUTHN_TYPE, TLS_CONTEXT_TYPE, build_envoy
from .envoygateway import build_envoy_gateway
from .istio import build_istio
from .options import (
    DEFAULT_CACHE_SECONDS,
    DEFAULT_TRUSTED_CA,
    PROVIDERS,
    GatewayConfig,
    GatewayOptions,
    cache_window,
    duration_for,
    gateway_options,
    go_duration,
    proto_json_duration,
    unused_flag_warnings,
)

__all__ = [
    "DEFAULT_CACHE_SECONDS",
    "DEFAULT_TRUSTED_CA",
    "JWT_AUTHN_TYPE",
    "PROVIDERS",
    "TLS_CONTEXT_TYPE",
    "GatewayConfig",
    "GatewayOptions",
    "build",
    "cache_window",
    "duration_for",
    "gateway_options",
    "go_duration",
    "output_files",
    "proto_json_duration",
    "to_json",
    "to_yaml",
]


def build(options: GatewayOptions) -> GatewayConfig:
    """The objects for the chosen gateway, plus warnings for what it cannot express."""
    config = {
        "contour": build_contour,
        "envoy": build_envoy,
        "istio": build_istio,
        "envoy-gateway": build_envoy_gateway,
    }[options.provider](options)
    config.warnings.extend(unused_flag_warnings(options))
    window, config.cache_window_why = cache_window(options)
    config.cache_window, config.cache_window_text = float(window), flag_text(window)
    if urllib.parse.urlsplit(options.url).scheme == "http":
        config.warnings.append(
            f"{options.url} is plain HTTP: anyone on the path between the gateway and the JWKS "
            "server can swap the keys and forge tokens. Serve the JWKS over HTTPS, or keep that "
            "path inside a trusted network."
        )
    return config


def to_yaml(config: GatewayConfig) -> str:
    """A YAML stream, each document introduced by a comment saying where it goes."""
    from ..render import dump_yaml

    return "".join(
        f"---\n# {comment}\n{dump_yaml(obj)}"
        for comment, obj in zip(config.comments, config.objects, strict=True)
    )


def to_json(config: GatewayConfig, provider: str) -> str:
    """-o json: a `v1` List for the Kubernetes targets, which `kubectl apply -f` takes (a bare
    array it refuses), as `render -o json` prints; Envoy's two snippets, which are not
    Kubernetes objects, stay an array."""
    from ..render import to_json_list

    if provider == "envoy":
        return json.dumps(config.objects, indent=2) + "\n"
    return to_json_list(config.objects)


def output_files(config: GatewayConfig, provider: str) -> dict[str, str]:
    """Relative path -> content for --output-dir: one file per object."""
    from ..render import dump_yaml

    files: dict[str, str] = {}
    for index, (comment, obj) in enumerate(zip(config.comments, config.objects, strict=True)):
        kind = str(obj.get("kind") or ("http-filter" if index == 0 else "cluster")).lower()
        name = obj.get("metadata", {}).get("name") or obj.get("name")
        files[f"{provider}/{kind}-{name}.yaml"] = f"# {comment}\n{dump_yaml(obj)}"
    return files
