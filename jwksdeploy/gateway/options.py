"""The options every gateway target shares: validated once, plus the helpers the targets use.

Pure: flags in, a frozen GatewayOptions out; a value a target's API server or loader would
refuse is refused here or in that target's module, quoting its rule.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..checks import (
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
from ..durations import exact_seconds, read_seconds
from ..errors import InputError
from ..kube.resources import MANAGED_BY, MANAGED_BY_VALUE

PROVIDERS = ("contour", "envoy", "istio", "envoy-gateway")
TARGET_FLAGS = {
    "contour": (
        "--fqdn",
        "--tls-secret",
        "--policy-namespace",
        "--dns-lookup-family",
        "--backend",
        "--ca-secret",
        "--subject-name",
        "--insecure-skip-jwks-verify",
    ),
    "envoy": (
        "--cluster",
        "--dns-lookup-family",
        "--trusted-ca",
        "--subject-name",
        "--token-header",
    ),
    "istio": ("--selector", "--policy-namespace", "--require-token", "--token-header"),
    "envoy-gateway": ("--target-route", "--policy-namespace", "--token-header"),
}
# Why a target ignores a flag meant for another one, where "it has no such setting" says too little.
IGNORED_BECAUSE = {
    "--require-token": "it already rejects requests without a token",
    "--token-header": "Contour reads the token only from Authorization: Bearer",
    "--trusted-ca": {
        "contour": "Contour takes the CA from a Secret; use --ca-secret",
        "istio": "istiod fetches the JWKS itself and trusts its system roots plus "
        "/cacerts/extra.pem",
        "envoy-gateway": "Envoy Gateway verifies the JWKS server with Envoy's system trust "
        "bundle; a private CA needs remoteJWKS.backendRefs and a BackendTLSPolicy",
    },
    "--ca-secret": {
        "envoy": "Envoy reads the CA from a file; use --trusted-ca",
        "istio": "istiod fetches the JWKS itself and trusts its system roots plus "
        "/cacerts/extra.pem",
        "envoy-gateway": "Envoy Gateway verifies the JWKS server with Envoy's system trust "
        "bundle; a private CA needs remoteJWKS.backendRefs and a BackendTLSPolicy",
    },
    "--subject-name": {
        "istio": "istiod checks the JWKS server's certificate against the URL's host",
        # v1.9's jwt.go sets the trust bundle and SNI on the JWKS cluster, no SAN matcher.
        "envoy-gateway": "Envoy Gateway checks no name on the JWKS server's certificate for "
        "remoteJWKS.uri (only that the system trust bundle signed it); to pin the name, point "
        "remoteJWKS.backendRefs at the server and attach a BackendTLSPolicy with "
        "validation.hostname",
    },
    "--insecure-skip-jwks-verify": {
        "envoy": "the Envoy cluster jwksdeploy emits always verifies the JWKS server's "
        "certificate (--trusted-ca, --subject-name)",
        "istio": "istiod verifies the JWKS server's certificate itself (only "
        "JWKS_RESOLVER_INSECURE_SKIP_VERIFY on istiod turns that off)",
        "envoy-gateway": "Envoy Gateway always verifies the JWKS server's certificate against "
        "Envoy's system trust bundle",
    },
}
ENVOY_DNS_FAMILY = {"auto": "AUTO", "v4": "V4_ONLY", "v6": "V6_ONLY", "all": "ALL"}
CONTOUR_DNS_FAMILIES = ("auto", "v4", "v6")  # the HTTPProxy CRD's enum
ENVOY_DEFAULT_TIMEOUT_NS = 1_000_000_000  # http_uri.timeout is required by Envoy
# How long each target caches the key set when --cache-duration is not given (seconds), and
# where that number comes from: what `rotate` must wait for before a new key signs.
DEFAULT_CACHE_SECONDS: dict[str, tuple[float, str]] = {
    # RemoteJwks.cache_duration: "If not specified, default cache duration is 10 minutes"
    # (jwt_authn/v3/config.proto; PubkeyCacheExpirationSec = 600 in jwks_cache.cc).
    "envoy": (600.0, "Envoy's default remote_jwks.cache_duration"),
    # Contour leaves cache_duration unset when cacheDuration is empty, so Envoy's 10m applies
    # (its CRD text says 5m, but Envoy's code says 600 s).
    "contour": (600.0, "Envoy's default remote_jwks.cache_duration, which Contour leaves unset"),
    # SecurityPolicy remoteJWKS.cacheDuration: +kubebuilder:default="300s".
    "envoy-gateway": (300.0, "Envoy Gateway's default remoteJWKS.cacheDuration"),
    # RequestAuthentication has no cache field; istiod refetches on its own schedule.
    "istio": (1200.0, "istiod's default PILOT_JWT_PUB_KEY_REFRESH_INTERVAL"),
}
DEFAULT_TRUSTED_CA = "/etc/ssl/certs/ca-certificates.crt"  # the system bundle in Envoy's images
ENVOY_GATEWAY_MAX_AUDIENCES = 8
ENVOY_GATEWAY_MAX_LENGTH = 253  # SecurityPolicy CRD: remoteJWKS.uri and issuer
ENVOY_GATEWAY_MAX_HOURS = 99_999  # Gateway API Duration: at most 5 digits per unit
CONTOUR_MAX_SECRET_REFERENCE = 317  # "namespace/name": 63 + 1 + 253
CONTOUR_MAX_SUBJECT_NAME = 250
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
# The duration flags each target emits (others are ignored with a warning), and the rule that
# makes each one need whole milliseconds of at least 1 ms.
DURATION_FIELDS = {
    "contour": ("--cache-duration", "--timeout"),
    "envoy": ("--cache-duration", "--timeout"),
    "istio": ("--timeout",),
    "envoy-gateway": ("--cache-duration", "--timeout"),
}
MILLISECOND_RULE = {
    "contour": "Contour passes it to Envoy, whose jwt_authn counts the JWKS fetch timeout and "
    "cache duration in whole milliseconds and requires remote_jwks.cache_duration >= 1ms",
    "envoy": "Envoy's jwt_authn counts the JWKS fetch timeout and cache duration in whole "
    "milliseconds and its validation requires remote_jwks.cache_duration >= 1ms",
    "istio": "istiod's validating webhook accepts only durations of at least 1ms in whole "
    "milliseconds",
    "envoy-gateway": "Envoy Gateway's durations (Gateway API Duration, "
    "^([0-9]{1,5}(h|m|s|ms)){1,4}$) have no unit finer than ms",
}
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token


@dataclass(frozen=True)
class GatewayOptions:
    """Everything `jwksdeploy gateway` needs, validated by `gateway_options`."""

    provider: str
    name: str
    url: str
    issuer: str | None = None
    audiences: tuple[str, ...] = ()
    forward: bool | None = None  # None: not given (the target's default: no pass-through)
    cache_duration: int | None = None  # nanoseconds
    timeout: int | None = None  # nanoseconds
    fqdn: str | None = None
    tls_secret: str | None = None
    target_routes: tuple[str, ...] = ()  # envoy-gateway: the HTTPRoutes the policy protects
    selector: tuple[tuple[str, str], ...] = ()
    cluster: str | None = None
    namespace: str | None = None  # of the generated policy object
    dns_lookup_family: str | None = None  # auto, v4, v6, all
    require_token: bool = False  # istio: also deny requests that carry no token
    backend: tuple[str, int] | None = None  # contour: a catch-all route to this Service port
    token_header: tuple[str, str | None] | None = None  # header name, value prefix
    trusted_ca: str | None = None  # envoy: CA bundle path inside the Envoy container
    ca_secret: str | None = None  # contour: Secret with the CA, "name" or "namespace/name"
    subject_name: str | None = None  # contour, envoy: the name the certificate must carry
    insecure_skip_jwks_verify: bool = False  # contour: accept an unverified https JWKS server


@dataclass
class GatewayConfig:
    url: str
    objects: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)  # one per object, for the YAML output
    # How long the gateway may cache the key set under this configuration, and why.
    cache_window: float = 0.0
    cache_window_why: str = ""
    cache_window_text: str = ""  # exact, as --cache-window reads it back (`1m30s500ms`)


def gateway_options(
    provider: str,
    name: str,
    url: str,
    issuer: str | None = None,
    audiences: tuple[str, ...] = (),
    forward: bool | None = None,
    cache_duration: str | None = None,
    timeout: str | None = None,
    fqdn: str | None = None,
    tls_secret: str | None = None,
    target_routes: tuple[str, ...] = (),
    selector: tuple[tuple[str, str], ...] = (),
    cluster: str | None = None,
    namespace: str | None = None,
    dns_lookup_family: str | None = None,
    require_token: bool = False,
    backend: str | None = None,
    token_header: str | None = None,
    trusted_ca: str | None = None,
    ca_secret: str | None = None,
    subject_name: str | None = None,
    insecure_skip_jwks_verify: bool = False,
    timeout_flag: str = "--timeout",  # `apply` calls it --fetch-timeout
    name_flag: str = "--name",  # where `name` came from: --name or --provider-name
) -> GatewayOptions:
    """Validate once: names, the URL, durations (against the target's rules), selector labels."""
    if provider not in PROVIDERS:
        raise InputError(f"--provider {provider!r} is not one of {', '.join(PROVIDERS)}.")
    if dns_lookup_family is not None and dns_lookup_family not in ENVOY_DNS_FAMILY:
        raise InputError(
            f"--dns-lookup-family {dns_lookup_family!r} is not one of "
            f"{', '.join(ENVOY_DNS_FAMILY)}."
        )
    check_http_url(url)
    for what, value in (
        ("--issuer", issuer),
        ("--fqdn", fqdn),
        ("--cluster", cluster),
        ("--trusted-ca", trusted_ca),
        ("--subject-name", subject_name),
    ):
        if value is not None:
            check_text(what, value)
            if not value.strip():
                raise InputError(f"{what} is empty. Give a value or leave the flag out.")
    for audience in audiences:
        check_text("--audience", audience)
        if not audience:
            raise InputError("--audience is empty. Give a value or leave the flag out.")
    for route in target_routes:
        check_dns1123_subdomain(
            "--target-route", route, "Pass the name of the HTTPRoute as it is in the cluster."
        )
    if tls_secret is not None:
        check_secret_reference(
            "--tls-secret", tls_secret, "the virtual host's certificate", "api-tls"
        )
    if namespace is not None:
        check_dns1123_label("--policy-namespace", namespace)
    for key, value in selector:
        check_qualified_key("--selector", key)
        check_label_value(value, "--selector")
    if ca_secret is not None:
        check_secret_reference("--ca-secret", ca_secret, "the CA as ca.crt", "jwks-ca")
    if subject_name is not None and (
        len(subject_name) > CONTOUR_MAX_SUBJECT_NAME or not subject_name.isprintable()
    ):
        raise InputError(
            f"--subject-name {subject_name[:80]!r} is not a certificate name: at most "
            f"{CONTOUR_MAX_SUBJECT_NAME} printable characters, like jwks.example.com."
        )
    return GatewayOptions(
        provider,
        check_object_name(name, name_flag),
        url,
        issuer,
        tuple(dict.fromkeys(audiences)),
        forward,
        duration_for(provider, "--cache-duration", cache_duration),
        duration_for(provider, "--timeout", timeout, timeout_flag),
        fqdn,
        tls_secret,
        tuple(dict.fromkeys(target_routes)),
        tuple(selector),
        cluster,
        namespace,
        dns_lookup_family,
        require_token,
        parse_backend(backend) if backend is not None else None,
        parse_token_header(token_header) if token_header is not None else None,
        trusted_ca,
        ca_secret,
        subject_name,
        insecure_skip_jwks_verify,
    )


def duration_for(
    provider: str, setting: str, text: str | None, flag: str | None = None
) -> int | None:
    """A duration flag in nanoseconds, refused when the target cannot represent it.

    `setting` is --cache-duration or --timeout; `flag` how the command spells it.
    """
    if text is None:
        return None
    target_field = setting in DURATION_FIELDS[provider]
    flag = flag or setting
    nanos = read_seconds(text, flag) * NS_PER_S
    if target_field:
        if nanos < NS_PER_MS or nanos % NS_PER_MS:
            what = "is shorter than 1ms" if nanos < NS_PER_MS else "is not whole milliseconds"
            raise InputError(
                f"{flag} {text!r} {what}, which {provider} cannot take: "
                f"{MILLISECOND_RULE[provider]}. Use whole milliseconds, like 1500ms."
            )
        if provider == "envoy-gateway" and nanos // (3600 * NS_PER_S) > ENVOY_GATEWAY_MAX_HOURS:
            raise InputError(
                f"{flag} {text!r} is too long for envoy-gateway: Envoy Gateway's durations "
                "(Gateway API Duration, ^([0-9]{1,5}(h|m|s|ms)){1,4}$) allow at most 5 digits "
                f"per unit, so at most {ENVOY_GATEWAY_MAX_HOURS}h. Use a shorter duration."
            )
    if nanos <= 0:
        raise InputError(f"{flag} must be longer than 0. Use a form like 5m or 1s.")
    exact_seconds(text, flag)  # the bound every duration flag shares
    return int(nanos)


def check_secret_reference(flag: str, text: str, holding: str, example: str) -> str:
    """A Secret as Contour names one (tls.secretName, validation.caSecret): its name,
    optionally prefixed with its namespace (which then needs a TLSCertificateDelegation)."""
    namespace, _, name = text.rpartition("/")
    if len(text) > CONTOUR_MAX_SECRET_REFERENCE or "/" in namespace:
        raise InputError(
            f"{flag} {text[:80]!r} is not SECRET or NAMESPACE/SECRET. Name the Secret "
            f"holding {holding}, like {flag} {example}."
        )
    if namespace:
        check_dns1123_label(f"{flag} namespace", namespace)
    check_dns1123_subdomain(flag, name, f"Name the Secret holding {holding}.")
    return text


def parse_token_header(text: str) -> tuple[str, str | None]:
    """`NAME` or `NAME:PREFIX`: the header the token is read from, and what precedes it."""
    name, sep, prefix = text.partition(":")
    if not _HEADER_NAME.fullmatch(name) or (
        sep and (not prefix or not all(" " <= ch <= "~" for ch in prefix))
    ):
        raise InputError(
            f"--token-header {text[:80]!r} is not NAME or NAME:PREFIX. NAME is an HTTP header "
            "name and PREFIX the printable text before the token, like --token-header "
            "X-Jwt-Assertion or --token-header 'Authorization:Token '."
        )
    return name, (prefix if sep else None)


def parse_backend(text: str) -> tuple[str, int]:
    """`SERVICE:PORT`, the Service a Contour route sends verified requests to."""
    name, sep, port = text.rpartition(":")
    if not sep or not is_dns1035_label(name) or not port.isdigit():
        raise InputError(
            f"--backend {text!r} is not SERVICE:PORT. Name a Service in the HTTPProxy's "
            "namespace and its port, like --backend api:8080."
        )
    return name, check_port("--backend port", int(port))


def cache_window(options: GatewayOptions) -> tuple[Fraction, str]:
    """How long the emitted configuration lets the gateway cache the key set (seconds,
    exactly), and why: --cache-duration where the target takes it, else the target's default."""
    default, why = DEFAULT_CACHE_SECONDS[options.provider]
    if (
        options.cache_duration is None
        or "--cache-duration" not in DURATION_FIELDS[options.provider]
    ):
        return Fraction(default), why
    return Fraction(options.cache_duration, NS_PER_S), "--cache-duration"


def go_duration(nanos: int) -> str:
    """A Go / Gateway API duration: `5m`, `1m30s`, `1s500ms` (us and ns only when present)."""
    parts = []
    for unit, size in (
        ("h", 3600 * NS_PER_S),
        ("m", 60 * NS_PER_S),
        ("s", NS_PER_S),
        ("ms", NS_PER_MS),
        ("us", 1000),
        ("ns", 1),
    ):
        count, nanos = divmod(nanos, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def proto_json_duration(nanos: int) -> str:
    """A protobuf Duration in its proto3 JSON form, as Envoy and Istio read it: `300s`, `1.5s`."""
    whole, rest = divmod(nanos, NS_PER_S)
    return f"{whole}.{rest:09d}".rstrip("0").rstrip(".") + "s"


def object_metadata(options: GatewayOptions) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": options.name}
    if options.namespace:
        metadata["namespace"] = options.namespace
    metadata["labels"] = {MANAGED_BY: MANAGED_BY_VALUE}
    return metadata


def url_host(options: GatewayOptions) -> tuple[bool, str]:
    """Whether the URL is https, and its host (an IPv6 address without brackets)."""
    parsed = check_http_url(options.url)
    return parsed.scheme == "https", str(parsed.hostname)


def refuse_tls_flags_on_http(options: GatewayOptions, flags: dict[str, str | None]) -> None:
    given = [flag for flag, value in flags.items() if value is not None]
    if given:
        raise InputError(
            f"{' and '.join(given)} verify the JWKS server's certificate, but {options.url} is "
            "plain HTTP, so there is no certificate to verify. Use the https URL or drop "
            f"{' and '.join(given)}."
        )


def ip_address_text(host: str) -> str | None:
    """The canonical text of an IP address (as certificates' SANs compare), or None."""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return None


def token_header_field(token_header: tuple[str, str | None], prefix_key: str) -> dict[str, str]:
    name, prefix = token_header
    return {"name": name} if prefix is None else {"name": name, prefix_key: prefix}


def unused_flag_warnings(options: GatewayOptions) -> list[str]:
    """A warning for each target-specific flag that was given but means nothing here."""
    given = {
        "--fqdn": options.fqdn,
        "--tls-secret": options.tls_secret,
        "--target-route": options.target_routes or None,
        "--selector": options.selector or None,
        "--cluster": options.cluster,
        "--policy-namespace": options.namespace,
        "--dns-lookup-family": options.dns_lookup_family,
        "--backend": options.backend,
        "--require-token": True if options.require_token else None,
        "--token-header": options.token_header,
        "--trusted-ca": options.trusted_ca,
        "--ca-secret": options.ca_secret,
        "--subject-name": options.subject_name,
        "--insecure-skip-jwks-verify": True if options.insecure_skip_jwks_verify else None,
    }
    warnings = []
    for flag, value in given.items():
        if value is None or flag in TARGET_FLAGS[options.provider]:
            continue
        why = IGNORED_BECAUSE.get(flag, "it has no such setting")
        if isinstance(why, dict):
            why = why.get(options.provider, "it has no such setting")
        warnings.append(f"{flag} is ignored for {options.provider}: {why}.")
    return warnings
