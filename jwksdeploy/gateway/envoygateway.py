"""Envoy Gateway: a SecurityPolicy with one JWT provider, targeting HTTPRoutes."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .options import (
    ENVOY_GATEWAY_MAX_AUDIENCES,
    ENVOY_GATEWAY_MAX_LENGTH,
    GatewayConfig,
    GatewayOptions,
    go_duration,
    object_metadata,
    token_header_field,
)


def build_envoy_gateway(options: GatewayOptions) -> GatewayConfig:
    if not options.target_routes:
        raise InputError(
            "an Envoy Gateway SecurityPolicy must target something. Pass --target-route with "
            "the name of the HTTPRoute whose requests need a JWT."
        )
    if len(options.audiences) > ENVOY_GATEWAY_MAX_AUDIENCES:
        raise InputError(
            f"Envoy Gateway accepts at most {ENVOY_GATEWAY_MAX_AUDIENCES} audiences per provider; "
            f"{len(options.audiences)} were given. Drop some --audience flags."
        )
    for what, value in (("--url", options.url), ("--issuer", options.issuer)):
        if value is not None and len(value) > ENVOY_GATEWAY_MAX_LENGTH:
            raise InputError(
                f"{what} is {len(value)} characters long; Envoy Gateway's SecurityPolicy CRD "
                f"allows at most {ENVOY_GATEWAY_MAX_LENGTH} for remoteJWKS.uri and issuer. "
                "Use a shorter one."
            )
    remote: dict[str, Any] = {"uri": options.url}
    if options.cache_duration is not None:
        remote["cacheDuration"] = go_duration(options.cache_duration)
    if options.timeout is not None:
        remote["backendSettings"] = {
            "timeout": {"http": {"requestTimeout": go_duration(options.timeout)}}
        }
    provider: dict[str, Any] = {"name": options.name}
    if options.issuer is not None:
        provider["issuer"] = options.issuer
    if options.audiences:
        provider["audiences"] = list(options.audiences)
    provider["remoteJWKS"] = remote
    if options.token_header is not None:
        provider["extractFrom"] = {
            "headers": [token_header_field(options.token_header, "valuePrefix")]
        }
    policy = {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "SecurityPolicy",
        "metadata": object_metadata(options),
        "spec": {
            "targetRefs": [
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route}
                for route in options.target_routes
            ],
            "jwt": {"providers": [provider]},
        },
    }
    warnings: list[str] = []
    if options.forward is False:
        warnings.append(
            "--no-forward is ignored for envoy-gateway: a SecurityPolicy JWT provider always "
            "forwards the token to the backend."
        )
    plural = "s" if len(options.target_routes) > 1 else ""
    comment = (
        f"Envoy Gateway: requires a valid JWT on every request of the targeted HTTPRoute{plural}."
    )
    return GatewayConfig(options.url, [policy], warnings, [comment])
