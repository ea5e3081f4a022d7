"""Istio: a RequestAuthentication, and with --require-token a DENY AuthorizationPolicy."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .options import (
    GatewayConfig,
    GatewayOptions,
    object_metadata,
    proto_json_duration,
    token_header_field,
)


def build_istio(options: GatewayOptions) -> GatewayConfig:
    if options.issuer is None:
        raise InputError(
            "Istio's RequestAuthentication requires an issuer for each JWT rule. Pass --issuer "
            "with the iss your tokens carry."
        )
    rule: dict[str, Any] = {"issuer": options.issuer}
    if options.audiences:
        rule["audiences"] = list(options.audiences)
    rule["jwksUri"] = options.url
    if options.token_header is not None:
        rule["fromHeaders"] = [token_header_field(options.token_header, "prefix")]
    if options.forward is not None:
        rule["forwardOriginalToken"] = options.forward
    if options.timeout is not None:
        rule["timeout"] = proto_json_duration(options.timeout)
    spec: dict[str, Any] = {}
    if options.selector:
        spec["selector"] = {"matchLabels": dict(options.selector)}
    spec["jwtRules"] = [rule]
    policy = {
        "apiVersion": "security.istio.io/v1",
        "kind": "RequestAuthentication",
        "metadata": object_metadata(options),
        "spec": spec,
    }
    warnings: list[str] = []
    if options.cache_duration is not None:
        warnings.append(
            "--cache-duration is ignored for istio: RequestAuthentication has no cache field; "
            "istiod fetches the JWKS itself and refreshes it on its own schedule "
            "(PILOT_JWT_PUB_KEY_REFRESH_INTERVAL, 20m by default)."
        )
    if not options.selector and options.require_token:
        warnings.append(
            "no --selector: both policies apply to every workload in their namespace (or the "
            "whole mesh in the root namespace). The AuthorizationPolicy is a DENY: every request "
            "without a valid token to any of those workloads is refused, and since a token is an "
            'HTTP attribute, istiod warns it "will deny all traffic to TCP ports under its '
            'scope" (databases, message queues, any plain TCP port). Pass --selector '
            "app=<gateway> to scope them."
        )
    elif not options.selector:
        warnings.append(
            "no --selector: the RequestAuthentication applies to every workload in its namespace "
            "(or the whole mesh in the root namespace). Pass --selector app=<gateway> to scope it."
        )
    objects: list[dict[str, Any]] = [policy]
    comments = [
        "Istio: rejects requests with an invalid token; requests without one pass"
        + (" (the next policy denies them)." if options.require_token else " (--require-token).")
    ]
    if options.require_token:
        deny: dict[str, Any] = {}
        if options.selector:
            deny["selector"] = {"matchLabels": dict(options.selector)}
        deny["action"] = "DENY"
        deny["rules"] = [{"from": [{"source": {"notRequestPrincipals": ["*"]}}]}]
        metadata = object_metadata(options)
        metadata["name"] = f"{options.name}-require-jwt"
        objects.append(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": metadata,
                "spec": deny,
            }
        )
        comments.append(
            "Istio: denies requests without a valid token (a DENY policy, so your ALLOW "
            "policies keep working)."
        )
    return GatewayConfig(options.url, objects, warnings, comments)
