"""Envoy: the jwt_authn HTTP filter and the STRICT_DNS cluster it fetches the JWKS through."""

from __future__ import annotations

from typing import Any

from ..checks import check_http_url
from .options import (
    DEFAULT_TRUSTED_CA,
    ENVOY_DEFAULT_TIMEOUT_NS,
    ENVOY_DNS_FAMILY,
    GatewayConfig,
    GatewayOptions,
    ip_address_text,
    proto_json_duration,
    refuse_tls_flags_on_http,
    token_header_field,
    url_host,
)

JWT_AUTHN_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
TLS_CONTEXT_TYPE = (
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
)


def build_envoy(options: GatewayOptions) -> GatewayConfig:
    https, host = url_host(options)
    if not https:
        refuse_tls_flags_on_http(
            options, {"--trusted-ca": options.trusted_ca, "--subject-name": options.subject_name}
        )
    parsed = check_http_url(options.url)
    cluster_name = options.cluster or f"{options.name}-jwks"
    timeout = proto_json_duration(options.timeout or ENVOY_DEFAULT_TIMEOUT_NS)
    remote: dict[str, Any] = {
        "http_uri": {"uri": options.url, "cluster": cluster_name, "timeout": timeout}
    }
    if options.cache_duration is not None:
        remote["cache_duration"] = proto_json_duration(options.cache_duration)
    # Fetch at listener start (not on the first request) and retry a failed fetch.
    remote["async_fetch"] = {}
    remote["retry_policy"] = {"num_retries": 3}
    provider: dict[str, Any] = {}
    if options.issuer is not None:
        provider["issuer"] = options.issuer
    if options.audiences:
        provider["audiences"] = list(options.audiences)
    if options.forward is not None:
        provider["forward"] = options.forward
    if options.token_header is not None:
        provider["from_headers"] = [token_header_field(options.token_header, "value_prefix")]
    provider["remote_jwks"] = remote
    jwt_filter = {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": JWT_AUTHN_TYPE,
            "providers": {options.name: provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": options.name}}],
        },
    }
    port = parsed.port or (443 if https else 80)
    cluster: dict[str, Any] = {
        "name": cluster_name,
        "type": "STRICT_DNS",
        "connect_timeout": timeout,
        "load_assignment": {
            "cluster_name": cluster_name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {"socket_address": {"address": host, "port_value": port}}
                            }
                        }
                    ]
                }
            ],
        },
    }
    if options.dns_lookup_family:
        cluster["dns_lookup_family"] = ENVOY_DNS_FAMILY[options.dns_lookup_family]
    comments = [
        "Envoy: add to the HTTP connection manager's http_filters, before the router filter.",
        "Envoy: add to static_resources.clusters; http_uri.cluster names it.",
    ]
    if https:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": upstream_tls(options, host),
        }
        comments[1] = (
            "Envoy: add to static_resources.clusters; http_uri.cluster names it. It accepts only "
            "a certificate for the name below signed by a CA in trusted_ca (--trusted-ca)."
        )
    return GatewayConfig(options.url, [jwt_filter, cluster], [], comments)


def upstream_tls(options: GatewayOptions, host: str) -> dict[str, Any]:
    """TLS to the JWKS server that verifies who serves the keys: the CA and the name."""
    name = options.subject_name or host
    address = ip_address_text(name)
    tls: dict[str, Any] = {"@type": TLS_CONTEXT_TYPE}
    if ip_address_text(host) is None:
        tls["sni"] = host  # SNI carries host names only (RFC 6066), never an address
    tls["common_tls_context"] = {
        "validation_context": {
            "trusted_ca": {"filename": options.trusted_ca or DEFAULT_TRUSTED_CA},
            "match_typed_subject_alt_names": [
                {
                    "san_type": "DNS" if address is None else "IP_ADDRESS",
                    "matcher": {"exact": name if address is None else address},
                }
            ],
        }
    }
    return tls
