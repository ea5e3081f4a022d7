"""The gateway side: the JWT provider that points a gateway at the deployed JWKS URL.

Pure: options in, objects and warnings out. The source document's seven fields (JWKS name,
server address, token pass-through, issuer, audiences, cache duration, fetch timeout) map onto
each target's own API; a field a target cannot express is a warning, never silently dropped.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .settings import (
    check_dns1123_label,
    check_dns1123_subdomain,
    check_http_url,
    check_label_value,
    check_object_name,
    check_port,
    check_qualified_key,
    check_text,
    is_dns1035_label,
)

PROVIDERS = ("contour", "envoy", "istio", "envoy-gateway")
TARGET_FLAGS = {
    "contour": ("--fqdn", "--tls-secret", "--policy-namespace", "--dns-lookup-family", "--backend"),
    "envoy": ("--cluster", "--dns-lookup-family"),
    "istio": ("--selector", "--policy-namespace", "--require-token"),
    "envoy-gateway": ("--target-route", "--policy-namespace"),
}
ENVOY_DNS_FAMILY = {"auto": "AUTO", "v4": "V4_ONLY", "v6": "V6_ONLY", "all": "ALL"}
ENVOY_DEFAULT_TIMEOUT = 1.0  # http_uri.timeout is required by Envoy
ENVOY_GATEWAY_MAX_AUDIENCES = 8
JWT_AUTHN_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"


@dataclass(frozen=True)
class GatewayOptions:
    """Everything `jwksdeploy gateway` needs, validated by `gateway_options`."""

    provider: str
    name: str
    url: str
    issuer: str | None = None
    audiences: tuple[str, ...] = ()
    forward: bool | None = None  # None: not given (the target's default: no pass-through)
    cache_duration: float | None = None  # seconds
    timeout: float | None = None  # seconds
    fqdn: str | None = None
    tls_secret: str | None = None
    target_route: str | None = None
    selector: tuple[tuple[str, str], ...] = ()
    cluster: str | None = None
    namespace: str | None = None  # of the generated policy object
    dns_lookup_family: str | None = None  # auto, v4, v6, all
    require_token: bool = False  # istio: also deny requests that carry no token
    backend: tuple[str, int] | None = None  # contour: a catch-all route to this Service port


@dataclass
class GatewayConfig:
    url: str
    objects: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)  # one per object, for the YAML output


def gateway_options(
    provider: str,
    name: str,
    url: str,
    issuer: str | None = None,
    audiences: tuple[str, ...] = (),
    forward: bool | None = None,
    cache_duration: float | None = None,
    timeout: float | None = None,
    fqdn: str | None = None,
    tls_secret: str | None = None,
    target_route: str | None = None,
    selector: tuple[tuple[str, str], ...] = (),
    cluster: str | None = None,
    namespace: str | None = None,
    dns_lookup_family: str | None = None,
    require_token: bool = False,
    backend: str | None = None,
) -> GatewayOptions:
    """Validate once: names, the URL, durations, selector labels."""
    if provider not in PROVIDERS:
        raise InputError(f"--provider {provider!r} is not one of {', '.join(PROVIDERS)}.")
    if dns_lookup_family is not None and dns_lookup_family not in ENVOY_DNS_FAMILY:
        raise InputError(
            f"--dns-lookup-family {dns_lookup_family!r} is not one of "
            f"{', '.join(ENVOY_DNS_FAMILY)}."
        )
    check_http_url(url)
    for what, value in (("--issuer", issuer), ("--fqdn", fqdn), ("--cluster", cluster)):
        if value is not None:
            check_text(what, value)
            if not value.strip():
                raise InputError(f"{what} is empty. Give a value or leave the flag out.")
    for audience in audiences:
        check_text("--audience", audience)
        if not audience:
            raise InputError("--audience is empty. Give a value or leave the flag out.")
    for what, seconds in (("--cache-duration", cache_duration), ("--timeout", timeout)):
        if seconds is not None and seconds <= 0:
            raise InputError(f"{what} must be longer than 0. Use a form like 5m or 1s.")
    for what, value in (("--tls-secret", tls_secret), ("--target-route", target_route)):
        if value is not None:
            check_dns1123_subdomain(
                what, value, "Pass the name of the object as it is in the cluster."
            )
    if namespace is not None:
        check_dns1123_label("--policy-namespace", namespace)
    for key, value in selector:
        check_qualified_key("--selector", key)
        check_label_value(value, "--selector")
    return GatewayOptions(
        provider,
        check_object_name(name),
        url,
        issuer,
        tuple(dict.fromkeys(audiences)),
        forward,
        cache_duration,
        timeout,
        fqdn,
        tls_secret,
        target_route,
        tuple(selector),
        cluster,
        namespace,
        dns_lookup_family,
        require_token,
        parse_backend(backend) if backend is not None else None,
    )


def parse_backend(text: str) -> tuple[str, int]:
    """`SERVICE:PORT`, the Service a Contour route sends verified requests to."""
    name, sep, port = text.rpartition(":")
    if not sep or not is_dns1035_label(name) or not port.isdigit():
        raise InputError(
            f"--backend {text!r} is not SERVICE:PORT. Name a Service in the HTTPProxy's "
            "namespace and its port, like --backend api:8080."
        )
    return name, check_port("--backend port", int(port))


def go_duration(seconds: float) -> str:
    """A Go / Gateway API duration: `5m`, `1m30s`, `1s500ms` (at most h, m, s, ms parts)."""
    millis = round(seconds * 1000)
    whole, ms = divmod(millis, 1000)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s"), (ms, "ms")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def proto_json_duration(seconds: float) -> str:
    """A protobuf Duration in its JSON form, as Istio's CRDs take it: `300s`, `1.5s`."""
    nanos = round(seconds * 1_000_000_000)
    whole, rest = divmod(nanos, 1_000_000_000)
    return f"{whole}.{rest:09d}".rstrip("0").rstrip(".") + "s"


def proto_duration(seconds: float) -> dict[str, int]:
    """A protobuf Duration as Envoy's YAML takes it: `{seconds: 300}`, nanos when needed."""
    nanos = round(seconds * 1_000_000_000)
    whole, rest = divmod(nanos, 1_000_000_000)
    return {"seconds": whole, "nanos": rest} if rest else {"seconds": whole}


def build(options: GatewayOptions) -> GatewayConfig:
    """The objects for the chosen gateway, plus warnings for what it cannot express."""
    config = {
        "contour": _contour,
        "envoy": _envoy,
        "istio": _istio,
        "envoy-gateway": _envoy_gateway,
    }[options.provider](options)
    config.warnings.extend(_unused(options))
    if urllib.parse.urlsplit(options.url).scheme == "http":
        config.warnings.append(
            f"{options.url} is plain HTTP: anyone on the path between the gateway and the JWKS "
            "server can swap the keys and forge tokens. Serve the JWKS over HTTPS, or keep that "
            "path inside a trusted network."
        )
    return config


def _metadata(options: GatewayOptions) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": options.name}
    if options.namespace:
        metadata["namespace"] = options.namespace
    metadata["labels"] = {"app.kubernetes.io/managed-by": "jwksdeploy"}
    return metadata


def _contour(options: GatewayOptions) -> GatewayConfig:
    remote: dict[str, Any] = {"uri": options.url}
    if options.timeout is not None:
        remote["timeout"] = go_duration(options.timeout)
    if options.cache_duration is not None:
        remote["cacheDuration"] = go_duration(options.cache_duration)
    if options.dns_lookup_family is not None:
        remote["dnsLookupFamily"] = options.dns_lookup_family
    provider: dict[str, Any] = {"name": options.name, "default": True}
    if options.issuer is not None:
        provider["issuer"] = options.issuer
    if options.audiences:
        provider["audiences"] = list(options.audiences)
    provider["remoteJWKS"] = remote
    if options.forward is not None:
        provider["forwardJWT"] = options.forward
    virtualhost: dict[str, Any] = {}
    if options.fqdn:
        virtualhost["fqdn"] = options.fqdn
    if options.tls_secret:
        virtualhost["tls"] = {"secretName": options.tls_secret}
    virtualhost["jwtProviders"] = [provider]
    spec: dict[str, Any] = {"virtualhost": virtualhost}
    if options.backend is not None:
        service, port = options.backend
        spec["routes"] = [
            {"conditions": [{"prefix": "/"}], "services": [{"name": service, "port": port}]}
        ]
    proxy = {
        "apiVersion": "projectcontour.io/v1",
        "kind": "HTTPProxy",
        "metadata": _metadata(options),
        "spec": spec,
    }
    warnings: list[str] = []
    if not options.fqdn or not options.tls_secret:
        missing = " and ".join(
            flag
            for flag, value in (("--fqdn", options.fqdn), ("--tls-secret", options.tls_secret))
            if not value
        )
        warnings.append(
            f"the HTTPProxy has no {missing}: Contour verifies JWTs only on a TLS virtual host "
            "(an https domain) and marks this one invalid until both are set."
        )
    comment = (
        "Contour: a root HTTPProxy whose default JWT provider applies to every route"
        + ("" if options.backend else "; add your routes or includes")
        + ". Opt a route out with jwtVerificationPolicy: {disabled: true}."
    )
    return GatewayConfig(options.url, [proxy], warnings, [comment])


def _envoy(options: GatewayOptions) -> GatewayConfig:
    parsed = check_http_url(options.url)
    cluster_name = options.cluster or f"{options.name}-jwks"
    http_uri = {
        "uri": options.url,
        "cluster": cluster_name,
        "timeout": proto_duration(options.timeout or ENVOY_DEFAULT_TIMEOUT),
    }
    remote: dict[str, Any] = {"http_uri": http_uri}
    if options.cache_duration is not None:
        remote["cache_duration"] = proto_duration(options.cache_duration)
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
    provider["remote_jwks"] = remote
    jwt_filter = {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": JWT_AUTHN_TYPE,
            "providers": {options.name: provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": options.name}}],
        },
    }
    https = parsed.scheme == "https"
    port = parsed.port or (443 if https else 80)
    host = str(parsed.hostname)
    cluster: dict[str, Any] = {
        "name": cluster_name,
        "type": "STRICT_DNS",
        "connect_timeout": proto_duration(options.timeout or ENVOY_DEFAULT_TIMEOUT),
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
    if https:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                "UpstreamTlsContext",
                "sni": host,
            },
        }
    comments = [
        "Envoy: add to the HTTP connection manager's http_filters, before the router filter.",
        "Envoy: add to static_resources.clusters; http_uri.cluster names it.",
    ]
    return GatewayConfig(options.url, [jwt_filter, cluster], [], comments)


def _istio(options: GatewayOptions) -> GatewayConfig:
    if options.issuer is None:
        raise InputError(
            "Istio's RequestAuthentication requires an issuer for each JWT rule. Pass --issuer "
            "with the iss your tokens carry."
        )
    rule: dict[str, Any] = {"issuer": options.issuer}
    if options.audiences:
        rule["audiences"] = list(options.audiences)
    rule["jwksUri"] = options.url
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
        "metadata": _metadata(options),
        "spec": spec,
    }
    warnings: list[str] = []
    if options.cache_duration is not None:
        warnings.append(
            "--cache-duration is ignored for istio: RequestAuthentication has no cache field; "
            "istiod fetches the JWKS itself and refreshes it on its own schedule "
            "(PILOT_JWT_PUB_KEY_REFRESH_INTERVAL, 20m by default)."
        )
    if not options.selector:
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
        metadata = _metadata(options)
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


def _envoy_gateway(options: GatewayOptions) -> GatewayConfig:
    if not options.target_route:
        raise InputError(
            "an Envoy Gateway SecurityPolicy must target something. Pass --target-route with "
            "the name of the HTTPRoute whose requests need a JWT."
        )
    if len(options.audiences) > ENVOY_GATEWAY_MAX_AUDIENCES:
        raise InputError(
            f"Envoy Gateway accepts at most {ENVOY_GATEWAY_MAX_AUDIENCES} audiences per provider; "
            f"{len(options.audiences)} were given. Drop some --audience flags."
        )
    remote: dict[str, Any] = {"uri": options.url}
    if options.cache_duration is not None:
        remote["cacheDuration"] = go_duration(options.cache_duration)
    provider: dict[str, Any] = {"name": options.name}
    if options.issuer is not None:
        provider["issuer"] = options.issuer
    if options.audiences:
        provider["audiences"] = list(options.audiences)
    provider["remoteJWKS"] = remote
    policy = {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "SecurityPolicy",
        "metadata": _metadata(options),
        "spec": {
            "targetRefs": [
                {
                    "group": "gateway.networking.k8s.io",
                    "kind": "HTTPRoute",
                    "name": options.target_route,
                }
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
    if options.timeout is not None:
        warnings.append(
            "--timeout is ignored for envoy-gateway: remoteJWKS has no timeout field; set one "
            "with a BackendTrafficPolicy on the JWKS backend if you need it."
        )
    comment = "Envoy Gateway: requires a valid JWT on every request of the targeted HTTPRoute."
    return GatewayConfig(options.url, [policy], warnings, [comment])


def _unused(options: GatewayOptions) -> list[str]:
    """A warning for each target-specific flag that was given but means nothing here."""
    given = {
        "--fqdn": options.fqdn,
        "--tls-secret": options.tls_secret,
        "--target-route": options.target_route,
        "--selector": options.selector or None,
        "--cluster": options.cluster,
        "--policy-namespace": options.namespace,
        "--dns-lookup-family": options.dns_lookup_family,
        "--backend": options.backend,
        "--require-token": True if options.require_token else None,
    }
    why = {"--require-token": "it already rejects requests without a token"}
    return [
        f"{flag} is ignored for {options.provider}: {why.get(flag, 'it has no such setting')}."
        for flag, value in given.items()
        if value is not None and flag not in TARGET_FLAGS[options.provider]
    ]


def to_yaml(config: GatewayConfig) -> str:
    """A YAML stream, each document introduced by a comment saying where it goes."""
    from .render import dump_yaml

    return "".join(
        f"---\n# {comment}\n{dump_yaml(obj)}"
        for comment, obj in zip(config.comments, config.objects, strict=True)
    )


def output_files(config: GatewayConfig, provider: str) -> dict[str, str]:
    """Relative path -> content for --output-dir: one file per object."""
    from .render import dump_yaml

    files: dict[str, str] = {}
    for index, (comment, obj) in enumerate(zip(config.comments, config.objects, strict=True)):
        kind = str(obj.get("kind") or ("http-filter" if index == 0 else "cluster")).lower()
        name = obj.get("metadata", {}).get("name") or obj.get("name")
        files[f"{provider}/{kind}-{name}.yaml"] = f"# {comment}\n{dump_yaml(obj)}"
    return files


def duration_seconds(text: str | None, flag: str) -> float | None:
    """Parse a duration flag, or None when it was not given."""
    from .settings import parse_duration

    return None if text is None else parse_duration(text, flag)
