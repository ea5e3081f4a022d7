"""Contour: a root HTTPProxy whose default JWT provider covers the virtual host."""

from __future__ import annotations

import re
from typing import Any

from ..errors import InputError
from .options import (
    CONTOUR_DNS_FAMILIES,
    GatewayConfig,
    GatewayOptions,
    go_duration,
    ip_address_text,
    object_metadata,
    refuse_tls_flags_on_http,
    url_host,
)

_CONTOUR_FQDN = re.compile(
    r"(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)


def build_contour(options: GatewayOptions) -> GatewayConfig:
    if not options.fqdn:
        raise InputError(
            "Contour's HTTPProxy needs a virtual host: the API server refuses a root HTTPProxy "
            "without spec.virtualhost.fqdn (Required value). Pass --fqdn with the domain "
            "clients call, like --fqdn api.example.com."
        )
    if not _CONTOUR_FQDN.fullmatch(options.fqdn):
        raise InputError(
            f"--fqdn {options.fqdn!r} is not a name Contour accepts: its HTTPProxy CRD wants "
            "lowercase DNS labels joined by dots, optionally starting with '*.'. Use a form "
            "like api.example.com."
        )
    if options.dns_lookup_family is not None and (
        options.dns_lookup_family not in CONTOUR_DNS_FAMILIES
    ):
        raise InputError(
            f"--dns-lookup-family {options.dns_lookup_family} is not accepted by Contour: its "
            "HTTPProxy CRD allows remoteJWKS.dnsLookupFamily "
            f"{', '.join(CONTOUR_DNS_FAMILIES)} only, and the API server refuses anything else. "
            "Use one of those."
        )
    warnings: list[str] = []
    remote: dict[str, Any] = {"uri": options.url}
    validation = _validation(options, warnings)
    if validation is not None:
        remote["validation"] = validation
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
    virtualhost: dict[str, Any] = {"fqdn": options.fqdn}
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
        "metadata": object_metadata(options),
        "spec": spec,
    }
    if not options.tls_secret:
        warnings.append(
            "the HTTPProxy has no --tls-secret: Contour verifies JWTs only on a TLS virtual host "
            "(an https domain) and marks this one invalid until it has one."
        )
    comment = (
        "Contour: a root HTTPProxy whose default JWT provider applies to every route"
        + ("" if options.backend else "; add your routes or includes")
        + ". Opt a route out with jwtVerificationPolicy: {disabled: true}."
    )
    return GatewayConfig(options.url, [proxy], warnings, [comment])


def _validation(options: GatewayOptions, warnings: list[str]) -> dict[str, str] | None:
    """remoteJWKS.validation: the CA and the DNS name the JWKS server's certificate must have.

    Contour verifies nothing without it ("By default, the JWKS server's TLS certificate will
    not be validated"), so an https URL without --ca-secret needs the explicit opt-out.
    """
    https, host = url_host(options)
    if not https:
        refuse_tls_flags_on_http(
            options, {"--ca-secret": options.ca_secret, "--subject-name": options.subject_name}
        )
        if options.insecure_skip_jwks_verify:
            warnings.append(
                f"--insecure-skip-jwks-verify changes nothing: {options.url} is plain HTTP, so "
                "there is no certificate to verify or skip."
            )
        return None
    if options.subject_name is not None and options.ca_secret is None:
        raise InputError(
            "--subject-name needs --ca-secret for contour: remoteJWKS.validation requires both "
            "caSecret and subjectName. Pass --ca-secret with the Secret that holds the CA "
            "(key ca.crt); subjectName defaults to the URL's host."
        )
    if options.ca_secret is None:
        if not options.insecure_skip_jwks_verify:
            raise InputError(
                f"Contour does not verify the certificate of {host} without "
                "remoteJWKS.validation (\"the JWKS server's TLS certificate will not be "
                'validated"), so anyone on the path could swap the keys and forge tokens. Pass '
                "--ca-secret with the Secret holding the CA that signed it (key ca.crt), or "
                "--insecure-skip-jwks-verify to accept an unverified JWKS server."
            )
        warnings.append(
            f"--insecure-skip-jwks-verify: Contour will not verify the certificate of {host}, "
            "so anyone on the path can swap the keys and forge tokens. Pass --ca-secret with a "
            "Secret holding the CA that signed it (key ca.crt) to verify it."
        )
        return None
    if options.insecure_skip_jwks_verify:
        raise InputError(
            "--insecure-skip-jwks-verify and --ca-secret contradict each other: --ca-secret "
            "verifies the JWKS server's certificate. Drop one."
        )
    # Contour matches subjectName as a DNS-type SAN (internal/envoy/v3/auth.go): an address
    # never equals a certificate's IP SAN that way, so every fetch would fail.
    name = options.subject_name or host
    if ip_address_text(name) is not None:
        where = (
            "--subject-name"
            if options.subject_name
            else f"the default subjectName, the URL's host {host},"
        )
        raise InputError(
            f"Contour checks remoteJWKS.validation.subjectName as a DNS name (a DNS-type "
            f"subjectAltName matcher), and {where} is an IP address, which no certificate "
            "matches that way, so every JWKS fetch would fail. Pass --subject-name with a DNS "
            "name the JWKS server's certificate carries, or use a URL with that name."
        )
    return {"caSecret": options.ca_secret, "subjectName": name}
