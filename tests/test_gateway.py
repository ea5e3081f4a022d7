"""`jwksdeploy gateway` and `apply --gateway`: golden outputs per target, each field checked
against the target's API (Envoy's through its own generated protos and validation rules), the
refusals and warnings for what a target cannot take, and URL lookup through the cluster."""

from __future__ import annotations

import json
import re
import textwrap
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jwksdeploy import gateway
from jwksdeploy.errors import InputError

from .helpers import EXAMPLES, REPO, run
from .kube import Kube

GOLDEN = REPO / "tests" / "golden"
URL = "https://jwks.example.com/jwks"
PLAIN = "http://127.0.0.1:31456/jwks"
FULL = (
    "--url",
    URL,
    "--issuer",
    "https://issuer.example",
    "--audience",
    "api",
    "--audience",
    "web",
    "--forward",
    "--cache-duration",
    "5m",
    "--fetch-timeout",
    "1500ms",
)
NEEDS = {
    "contour": (
        "--fqdn",
        "api.example.com",
        "--tls-secret",
        "api-tls",
        "--dns-lookup-family",
        "v4",
        "--backend",
        "api:8080",
        "--ca-secret",
        "jwks-ca",
    ),
    "envoy": (
        "--cluster",
        "jwks_cluster",
        "--dns-lookup-family",
        "v4",
        "--token-header",
        "X-Jwt-Assertion",
    ),
    "istio": (
        "--selector",
        "istio=ingressgateway",
        "--policy-namespace",
        "istio-system",
        "--require-token",
        "--token-header",
        "X-Jwt-Assertion",
    ),
    "envoy-gateway": (
        "--target-route",
        "api",
        "--policy-namespace",
        "apps",
        "--token-header",
        "X-Jwt-Assertion",
    ),
}
MINIMAL = {
    "contour": ("--fqdn", "api.example.com", "--tls-secret", "api-tls"),
    "envoy": (),
    "istio": ("--issuer", "i", "--selector", "app=gw"),
    "envoy-gateway": ("--target-route", "api"),
}


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def gateway_run(provider: str, *extra: str) -> Any:
    return run("gateway", "--provider", provider, *FULL, *NEEDS[provider], *extra)


def minimal_run(provider: str, *extra: str) -> Any:
    """The provider with only what it needs, so each test adds just what it looks at."""
    return run("gateway", "--provider", provider, *MINIMAL[provider], *extra)


def warnings_of(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


@pytest.mark.parametrize("provider", gateway.PROVIDERS)
def test_golden_output(provider: str, update_golden: bool) -> None:
    result = gateway_run(provider)
    assert result.exit_code == 0, result.stderr
    golden = GOLDEN / f"gateway-{provider}.yaml"
    if update_golden:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text()
    assert gateway_run(provider).stdout == result.stdout  # deterministic


def test_contour_fields() -> None:
    [proxy] = documents(gateway_run("contour").stdout)
    assert (proxy["apiVersion"], proxy["kind"]) == ("projectcontour.io/v1", "HTTPProxy")
    virtualhost = proxy["spec"]["virtualhost"]
    assert virtualhost["fqdn"] == "api.example.com"
    assert virtualhost["tls"] == {"secretName": "api-tls"}
    assert proxy["spec"]["routes"] == [
        {"conditions": [{"prefix": "/"}], "services": [{"name": "api", "port": 8080}]}
    ]
    [provider] = virtualhost["jwtProviders"]
    assert provider == {
        "name": "remote-jwks-go",
        "default": True,
        "issuer": "https://issuer.example",
        "audiences": ["api", "web"],
        "remoteJWKS": {
            "uri": URL,
            "validation": {"caSecret": "jwks-ca", "subjectName": "jwks.example.com"},
            "timeout": "1s500ms",
            "cacheDuration": "5m",
            "dnsLookupFamily": "v4",
        },
        "forwardJWT": True,
    }


def test_contour_validation_takes_a_namespaced_secret_and_a_subject_name() -> None:
    result = minimal_run(
        "contour",
        "--url",
        URL,
        "--ca-secret",
        "pki/jwks-ca",
        "--subject-name",
        "jwks.internal.example",
    )
    assert result.exit_code == 0, result.stderr
    remote = documents(result.stdout)[0]["spec"]["virtualhost"]["jwtProviders"][0]["remoteJWKS"]
    assert remote["validation"] == {
        "caSecret": "pki/jwks-ca",
        "subjectName": "jwks.internal.example",
    }
    assert warnings_of(result) == []


def test_contour_https_without_validation_is_refused_unless_explicitly_insecure() -> None:
    """Contour verifies nothing without remoteJWKS.validation: the safe default is a refusal
    naming both ways out (issue 20, 12)."""
    refused = minimal_run("contour", "--url", URL)
    assert refused.exit_code == 3 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "does not verify the certificate of jwks.example.com" in refused.stderr
    assert "--ca-secret" in refused.stderr and "--insecure-skip-jwks-verify" in refused.stderr
    insecure = minimal_run("contour", "--url", URL, "--insecure-skip-jwks-verify")
    assert insecure.exit_code == 0, insecure.stderr
    remote = documents(insecure.stdout)[0]["spec"]["virtualhost"]["jwtProviders"][0]["remoteJWKS"]
    assert "validation" not in remote
    [warning] = warnings_of(insecure)
    assert "Contour will not verify the certificate of jwks.example.com" in warning
    both = minimal_run(
        "contour", "--url", URL, "--insecure-skip-jwks-verify", "--ca-secret", "jwks-ca"
    )
    assert both.exit_code == 3 and "contradict each other" in both.stderr
    plain = minimal_run("contour", "--url", PLAIN, "--insecure-skip-jwks-verify")
    assert plain.exit_code == 0 and "changes nothing" in plain.stderr
    for provider in ("envoy", "istio", "envoy-gateway"):
        other = minimal_run(provider, "--url", URL, "--insecure-skip-jwks-verify")
        assert other.exit_code == 0, other.stderr
        assert f"--insecure-skip-jwks-verify is ignored for {provider}: " in other.stderr
        assert "verifies" in other.stderr


@pytest.mark.parametrize(
    ("url", "extra", "fragment"),
    [
        ("https://10.0.0.12:8443/jwks", (), "the URL's host 10.0.0.12, is an IP"),
        ("https://[2001:db8::1]/jwks", (), "the URL's host 2001:db8::1, is an IP"),
        (URL, ("--subject-name", "10.0.0.12"), "--subject-name is an IP address"),
    ],
)
def test_contour_refuses_an_ip_subject_name_it_would_match_as_a_dns_name(
    url: str, extra: tuple[str, ...], fragment: str
) -> None:
    """Contour turns subjectName into a DNS-type SAN matcher, which an IP SAN never matches
    (issue 20, 14); Envoy's own cluster matches an IP_ADDRESS SAN, so it keeps the address."""
    result = minimal_run("contour", "--url", url, "--ca-secret", "jwks-ca", *extra)
    assert result.exit_code == 3, result.stdout
    assert fragment in result.stderr and "DNS-type subjectAltName matcher" in result.stderr
    assert result.stdout == "" and result.stderr.count("\n") == 1
    named = minimal_run(
        "contour", "--url", url, "--ca-secret", "jwks-ca", "--subject-name", "jwks.internal"
    )
    assert named.exit_code == 0, named.stderr
    remote = documents(named.stdout)[0]["spec"]["virtualhost"]["jwtProviders"][0]["remoteJWKS"]
    assert remote["validation"] == {"caSecret": "jwks-ca", "subjectName": "jwks.internal"}


def test_envoy_fields() -> None:
    jwt_filter, cluster = documents(gateway_run("envoy").stdout)
    assert jwt_filter["name"] == "envoy.filters.http.jwt_authn"
    config = jwt_filter["typed_config"]
    assert config["@type"].endswith("jwt_authn.v3.JwtAuthentication")
    provider = config["providers"]["remote-jwks-go"]
    assert provider["issuer"] == "https://issuer.example"
    assert provider["audiences"] == ["api", "web"]
    assert provider["forward"] is True
    assert provider["from_headers"] == [{"name": "X-Jwt-Assertion"}]
    remote = provider["remote_jwks"]
    # proto3 JSON durations: strings, which xDS control planes and protojson also read
    assert remote["http_uri"] == {"uri": URL, "cluster": "jwks_cluster", "timeout": "1.5s"}
    assert remote["cache_duration"] == "300s"
    assert "async_fetch" in remote and remote["retry_policy"]["num_retries"] == 3
    assert config["rules"] == [
        {"match": {"prefix": "/"}, "requires": {"provider_name": "remote-jwks-go"}}
    ]
    assert cluster["name"] == "jwks_cluster" and cluster["type"] == "STRICT_DNS"
    assert cluster["connect_timeout"] == "1.5s"
    assert cluster["dns_lookup_family"] == "V4_ONLY"
    [endpoint] = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert endpoint["endpoint"]["address"]["socket_address"] == {
        "address": "jwks.example.com",
        "port_value": 443,
    }


def test_envoy_https_verifies_the_ca_and_the_name_of_the_jwks_server() -> None:
    _, cluster = documents(gateway_run("envoy").stdout)
    tls = cluster["transport_socket"]["typed_config"]
    assert tls["@type"].endswith("tls.v3.UpstreamTlsContext")
    assert tls["sni"] == "jwks.example.com"
    assert tls["common_tls_context"]["validation_context"] == {
        "trusted_ca": {"filename": "/etc/ssl/certs/ca-certificates.crt"},
        "match_typed_subject_alt_names": [
            {"san_type": "DNS", "matcher": {"exact": "jwks.example.com"}}
        ],
    }


def test_envoy_trusted_ca_and_subject_name_and_ip_hosts() -> None:
    result = minimal_run(
        "envoy",
        "--url",
        "https://127.0.0.1:8443/jwks",
        "--trusted-ca",
        "/etc/envoy/jwks-ca.pem",
    )
    assert result.exit_code == 0, result.stderr
    _, cluster = documents(result.stdout)
    tls = cluster["transport_socket"]["typed_config"]
    assert "sni" not in tls  # SNI never carries an IP address
    assert tls["common_tls_context"]["validation_context"] == {
        "trusted_ca": {"filename": "/etc/envoy/jwks-ca.pem"},
        "match_typed_subject_alt_names": [
            {"san_type": "IP_ADDRESS", "matcher": {"exact": "127.0.0.1"}}
        ],
    }
    named = minimal_run("envoy", "--url", URL, "--subject-name", "jwks.internal.example")
    tls = documents(named.stdout)[1]["transport_socket"]["typed_config"]
    assert tls["sni"] == "jwks.example.com"  # whom we connect to ...
    assert tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "jwks.internal.example"}}  # ... must be this
    ]


def test_envoy_plain_http_cluster_has_no_tls_and_a_default_timeout() -> None:
    result = minimal_run("envoy", "--url", PLAIN)
    jwt_filter, cluster = documents(result.stdout)
    remote = jwt_filter["typed_config"]["providers"]["remote-jwks-go"]["remote_jwks"]
    assert remote["http_uri"]["timeout"] == "1s"  # Envoy requires one
    assert remote["http_uri"]["cluster"] == cluster["name"] == "remote-jwks-go-jwks"
    assert "transport_socket" not in cluster
    assert "cache_duration" not in remote and "forward" not in remote


def test_istio_fields() -> None:
    policy, deny = documents(gateway_run("istio").stdout)
    assert (policy["apiVersion"], policy["kind"]) == (
        "security.istio.io/v1",
        "RequestAuthentication",
    )
    assert policy["metadata"]["namespace"] == "istio-system"
    assert policy["spec"]["selector"] == {"matchLabels": {"istio": "ingressgateway"}}
    assert policy["spec"]["jwtRules"] == [
        {
            "issuer": "https://issuer.example",
            "audiences": ["api", "web"],
            "jwksUri": URL,
            "fromHeaders": [{"name": "X-Jwt-Assertion"}],
            "forwardOriginalToken": True,
            "timeout": "1.5s",
        }
    ]
    # --require-token: requests without a valid token are denied, without an ALLOW that would
    # override the user's own authorization policies.
    assert (deny["kind"], deny["metadata"]["name"]) == (
        "AuthorizationPolicy",
        "remote-jwks-go-require-jwt",
    )
    assert deny["metadata"]["namespace"] == "istio-system"
    assert deny["spec"] == {
        "selector": {"matchLabels": {"istio": "ingressgateway"}},
        "action": "DENY",
        "rules": [{"from": [{"source": {"notRequestPrincipals": ["*"]}}]}],
    }


def test_envoy_gateway_fields() -> None:
    [policy] = documents(gateway_run("envoy-gateway").stdout)
    assert (policy["apiVersion"], policy["kind"]) == (
        "gateway.envoyproxy.io/v1alpha1",
        "SecurityPolicy",
    )
    assert policy["spec"]["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "api"}
    ]
    assert policy["spec"]["jwt"]["providers"] == [
        {
            "name": "remote-jwks-go",
            "issuer": "https://issuer.example",
            "audiences": ["api", "web"],
            "remoteJWKS": {
                "uri": URL,
                "cacheDuration": "5m",
                # Envoy Gateway 1.7+ maps this to the JWKS fetch timeout
                "backendSettings": {"timeout": {"http": {"requestTimeout": "1s500ms"}}},
            },
            "extractFrom": {"headers": [{"name": "X-Jwt-Assertion"}]},
        }
    ]


@pytest.mark.parametrize(
    ("provider", "path", "expected"),
    [
        ("envoy", ("from_headers",), [{"name": "X-Token", "value_prefix": "Token "}]),
        ("istio", ("fromHeaders",), [{"name": "X-Token", "prefix": "Token "}]),
        (
            "envoy-gateway",
            ("extractFrom",),
            {"headers": [{"name": "X-Token", "valuePrefix": "Token "}]},
        ),
    ],
)
def test_token_header_with_a_prefix_maps_per_target(
    provider: str, path: tuple[str, ...], expected: Any
) -> None:
    result = minimal_run(provider, "--url", URL, "--token-header", "X-Token:Token ")
    assert result.exit_code == 0, result.stderr
    [obj, *_] = documents(result.stdout)
    where = {
        "envoy": lambda o: o["typed_config"]["providers"]["remote-jwks-go"],
        "istio": lambda o: o["spec"]["jwtRules"][0],
        "envoy-gateway": lambda o: o["spec"]["jwt"]["providers"][0],
    }[provider](obj)
    assert where[path[0]] == expected


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("contour", ["--token-header is ignored for contour: Contour reads the token only"]),
        ("envoy", []),
        ("istio", ["--cache-duration is ignored for istio"]),
        ("envoy-gateway", []),
    ],
)
def test_each_unsupported_field_is_a_warning(provider: str, expected: list[str]) -> None:
    result = gateway_run(provider, "--token-header", "X-Jwt-Assertion")
    assert result.exit_code == 0, result.stderr
    warnings = warnings_of(result)
    assert len(warnings) == len(expected), warnings
    for warning, fragment in zip(warnings, expected, strict=True):
        assert fragment in warning


def test_flags_for_another_target_are_warned_about() -> None:
    result = run(
        "gateway",
        "--provider",
        "envoy-gateway",
        "--url",
        URL,
        "--target-route",
        "api",
        "--no-forward",
        "--fqdn",
        "a.example.com",
        "--selector",
        "app=x",
        "--dns-lookup-family",
        "v6",
        "--trusted-ca",
        "/ca.pem",
        "--ca-secret",
        "ca",
        "--subject-name",
        "jwks.example.com",
    )
    assert result.exit_code == 0
    assert "--dns-lookup-family is ignored for envoy-gateway" in result.stderr
    assert "--no-forward is ignored for envoy-gateway" in result.stderr
    assert "--fqdn is ignored for envoy-gateway" in result.stderr
    assert "--selector is ignored for envoy-gateway" in result.stderr
    assert "--trusted-ca is ignored for envoy-gateway: Envoy Gateway verifies" in result.stderr
    assert "--ca-secret is ignored for envoy-gateway: Envoy Gateway verifies" in result.stderr
    assert "--subject-name is ignored for envoy-gateway" in result.stderr
    istio = minimal_run("istio", "--url", URL, "--trusted-ca", "/ca.pem")
    assert "--trusted-ca is ignored for istio: istiod fetches the JWKS itself" in istio.stderr
    envoy = minimal_run("envoy", "--url", URL, "--ca-secret", "ca")
    assert "--ca-secret is ignored for envoy: Envoy reads the CA from a file" in envoy.stderr
    contour = minimal_run("contour", "--url", URL, "--ca-secret", "ca", "--trusted-ca", "/ca.pem")
    assert "--trusted-ca is ignored for contour: Contour takes the CA from a Secret" in (
        contour.stderr
    )


def test_missing_pieces_warn_or_fail_per_target() -> None:
    no_tls = run("gateway", "--provider", "contour", "--url", PLAIN, "--fqdn", "a.example.com")
    assert no_tls.exit_code == 0
    assert "no --tls-secret" in no_tls.stderr
    istio = run("gateway", "--provider", "istio", "--url", URL, "--issuer", "i")
    assert "no --selector" in istio.stderr
    no_issuer = run("gateway", "--provider", "istio", "--url", URL)
    assert no_issuer.exit_code == 3 and "requires an issuer" in no_issuer.stderr
    no_route = run("gateway", "--provider", "envoy-gateway", "--url", URL)
    assert no_route.exit_code == 3 and "--target-route" in no_route.stderr
    many = [arg for n in range(9) for arg in ("--audience", f"a{n}")]
    too_many = run(
        "gateway", "--provider", "envoy-gateway", "--url", URL, "--target-route", "r", *many
    )
    assert too_many.exit_code == 3 and "at most 8 audiences" in too_many.stderr


def test_require_token_is_istios_others_already_require_one() -> None:
    without = run("gateway", "--provider", "istio", "--url", URL, "--issuer", "i")
    assert [d["kind"] for d in documents(without.stdout)] == ["RequestAuthentication"]
    assert "(--require-token)" in without.stdout
    contour = minimal_run("contour", "--url", URL, "--ca-secret", "ca", "--require-token")
    assert "--require-token is ignored for contour: it already rejects" in contour.stderr
    assert "routes" not in documents(contour.stdout)[0]["spec"]


def test_plain_http_earns_a_warning_https_does_not() -> None:
    plain = run("gateway", "--provider", "envoy", "--url", PLAIN)
    assert "plain HTTP" in plain.stderr
    secure = run("gateway", "--provider", "envoy", "--url", URL)
    assert "plain HTTP" not in secure.stderr


# Every refusal names the target's own rule, so the user learns why, not just that.
REFUSALS = [
    # Contour: the API server refuses a root HTTPProxy without a virtual host (issue 10, 1).
    (("--provider", "contour", "--url", URL), "spec.virtualhost.fqdn (Required value)"),
    (("--provider", "contour", "--url", URL, "--fqdn", "API.example.com"), "HTTPProxy CRD"),
    # Contour's CRD enum has no "all" (issue 10, 2); Envoy's cluster takes it.
    (
        (
            "--provider",
            "contour",
            "--url",
            URL,
            "--fqdn",
            "a.example",
            "--dns-lookup-family",
            "all",
        ),
        "allows remoteJWKS.dnsLookupFamily auto, v4, v6 only",
    ),
    # Contour: remoteJWKS.validation needs both fields, and only over https.
    (
        ("--provider", "contour", "--url", URL, "--fqdn", "a.example", "--subject-name", "x"),
        "remoteJWKS.validation requires both caSecret and subjectName",
    ),
    (
        ("--provider", "contour", "--url", PLAIN, "--fqdn", "a.example", "--ca-secret", "ca"),
        "is plain HTTP, so there is no certificate to verify",
    ),
    (
        ("--provider", "envoy", "--url", PLAIN, "--trusted-ca", "/ca.pem"),
        "is plain HTTP, so there is no certificate to verify",
    ),
    # Durations each target cannot represent (issue 10, 5).
    (
        ("--provider", "envoy", "--url", URL, "--cache-duration", "0.5ms"),
        "requires remote_jwks.cache_duration >= 1ms",
    ),
    (
        ("--provider", "envoy", "--url", URL, "--fetch-timeout", "0s"),
        "is shorter than 1ms, which envoy cannot take",
    ),
    (
        ("--provider", "envoy", "--url", URL, "--fetch-timeout", "1000.5ms"),
        "is not whole milliseconds, which envoy cannot take",
    ),
    (
        ("--provider", "contour", "--url", URL, "--fqdn", "a.example", "--cache-duration", "0"),
        "Contour passes it to Envoy",
    ),
    (
        ("--provider", "istio", "--url", URL, "--issuer", "i", "--fetch-timeout", "1000.5ms"),
        "istiod's validating webhook accepts only durations of at least 1ms in whole",
    ),
    (
        ("--provider", "istio", "--url", URL, "--issuer", "i", "--fetch-timeout", "0.1ms"),
        "is shorter than 1ms, which istio cannot take",
    ),
    (
        (
            "--provider",
            "envoy-gateway",
            "--url",
            URL,
            "--target-route",
            "r",
            "--fetch-timeout",
            "1.0001s",
        ),
        "Gateway API Duration",
    ),
    (
        (
            "--provider",
            "envoy-gateway",
            "--url",
            URL,
            "--target-route",
            "r",
            "--cache-duration",
            "100000h",
        ),
        "allow at most 5 digits per unit, so at most 99999h",
    ),
    # Envoy Gateway's CRD length limits.
    (
        ("--provider", "envoy-gateway", "--url", URL + "/" + "a" * 250, "--target-route", "r"),
        "allows at most 253 for remoteJWKS.uri and issuer",
    ),
    # Malformed values of the new flags.
    (
        ("--provider", "envoy", "--url", URL, "--token-header", "X Jwt"),
        "is not NAME or NAME:PREFIX",
    ),
    (
        ("--provider", "envoy", "--url", URL, "--token-header", "X-Jwt:"),
        "is not NAME or NAME:PREFIX",
    ),
    (
        ("--provider", "envoy", "--url", URL, "--ca-secret", "a/b/c"),
        "is not SECRET or NAMESPACE/SECRET",
    ),
    (("--provider", "envoy", "--url", URL, "--ca-secret", "Bad"), "DNS-1123 subdomain"),
    (("--provider", "envoy", "--url", URL, "--trusted-ca", " "), "--trusted-ca is empty"),
]


@pytest.mark.parametrize(("args", "fragment"), REFUSALS)
def test_each_refusal_is_exit_3_with_the_targets_rule(args: tuple[str, ...], fragment: str) -> None:
    result = run("gateway", *args)
    assert result.exit_code == 3, (result.stdout, result.stderr)
    assert fragment in result.stderr
    assert result.stdout == "" and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")


def test_the_rules_refuse_only_what_that_target_refuses() -> None:
    envoy = minimal_run(
        "envoy", "--url", URL, "--cache-duration", "1ms", "--fetch-timeout", "1001ms"
    )
    remote = documents(envoy.stdout)[0]["typed_config"]["providers"]["remote-jwks-go"]
    assert remote["remote_jwks"]["cache_duration"] == "0.001s"
    assert remote["remote_jwks"]["http_uri"]["timeout"] == "1.001s"
    envoy_all = minimal_run("envoy", "--url", URL, "--dns-lookup-family", "all")
    assert documents(envoy_all.stdout)[1]["dns_lookup_family"] == "ALL"
    ignored = minimal_run("istio", "--url", URL, "--cache-duration", "0.5ms")
    assert ignored.exit_code == 0  # istio ignores --cache-duration (with a warning)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--url", "ftp://h/jwks"), "not an http(s) URL"),
        (("--url", "/jwks"), "not an http(s) URL"),
        (("--url", "http://h:99999/jwks"), "not an http(s) URL"),
        (("--url", URL, "--cache-duration", "soon"), "is not a duration"),
        (("--url", URL, "--fetch-timeout", "3651d"), "is not a duration"),
        (("--url", URL, "--fetch-timeout", "87601h"), "longer than ten years"),
        (("--url", URL, "--selector", "app"), "key=value"),
        (("--url", URL, "--selector", "app=not valid"), "--selector value"),
        (("--url", URL, "--provider-name", "Bad_Name"), "DNS-1035"),
        (("--url", URL, "--policy-namespace", "NS"), "DNS-1123"),
        (("--url", URL, "--backend", "api"), "not SERVICE:PORT"),
        (("--url", URL, "--backend", "Api:80"), "not SERVICE:PORT"),
        (("--url", URL, "--backend", "api:0"), "a port is 1-65535"),
        ((), "exactly one of --url"),
        (("--url", URL, "--namespace", "x"), "exactly one of --url"),
    ],
)
def test_bad_input_is_one_paragraph_and_exit_3(args: tuple[str, ...], fragment: str) -> None:
    result = run("gateway", "--provider", "envoy", *args)
    assert result.exit_code == 3, result.stdout
    assert fragment in result.stderr
    assert result.stdout == "" and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "go", "proto_json"),
    [
        ("300s", "5m", "300s"),
        ("90", "1m30s", "90s"),
        ("1.5s", "1s500ms", "1.5s"),
        ("250ms", "250ms", "0.25s"),
        ("2h", "2h", "7200s"),
        ("1000.5ms", "1s500us", "1.0005s"),
        ("0.000000001s", "1ns", "0.000000001s"),
    ],
)
def test_duration_formats(text: str, go: str, proto_json: str) -> None:
    # Exact: read without floats, so 1000.5ms is 1000500000 ns, not a rounding of it.
    nanos = gateway.duration_for("envoy", "--retry", text)
    assert nanos is not None
    assert gateway.go_duration(nanos) == go
    assert gateway.proto_json_duration(nanos) == proto_json


def test_json_and_output_dir(tmp_path: Path) -> None:
    as_json = run("gateway", "--provider", "envoy", "--url", URL, "-o", "json")
    assert [d["name"] for d in json.loads(as_json.stdout)] == [
        "envoy.filters.http.jwt_authn",
        "remote-jwks-go-jwks",
    ]
    written = minimal_run("contour", "--url", PLAIN, "--output-dir", str(tmp_path / "gw"))
    assert written.exit_code == 0, written.stderr
    [path] = list((tmp_path / "gw").rglob("*.yaml"))
    assert path.relative_to(tmp_path / "gw").as_posix() == "contour/httpproxy-remote-jwks-go.yaml"
    assert documents(path.read_text())[0]["kind"] == "HTTPProxy"


def test_the_cli_offers_exactly_the_targets_the_core_builds() -> None:
    from jwksdeploy.cli.gateway import DEFAULT_TRUSTED_CA, PROVIDERS

    assert PROVIDERS == gateway.PROVIDERS
    assert DEFAULT_TRUSTED_CA == gateway.DEFAULT_TRUSTED_CA


def test_options_are_pure_and_validated_once() -> None:
    with pytest.raises(InputError):
        gateway.gateway_options("nginx", "n", URL)
    options = gateway.gateway_options("envoy", "n", URL, audiences=("a", "a", "b"))
    assert options.audiences == ("a", "b")
    assert gateway.build(options).objects == gateway.build(options).objects


# --- Envoy's own types ---------------------------------------------------------------------
# xds-protos is Envoy's data-plane-api compiled for Python, validation rules included. Each
# Envoy output is parsed with proto3 JSON (strict: an unknown field or a wrong type fails) into
# its real message type, then checked against the protoc-gen-validate rules Envoy's loader
# enforces. That is Envoy's own check, minus its YAML leniency.

ENVOY_VARIANTS = {
    "full": ("--url", URL, *FULL[2:], *NEEDS["envoy"]),
    "plain": ("--url", PLAIN),
    "ip-host": ("--url", "https://127.0.0.1:8443/jwks", "--trusted-ca", "/etc/envoy/ca.pem"),
    "ipv6-host": ("--url", "https://[::1]:8443/jwks", "--dns-lookup-family", "all"),
    "named": ("--url", URL, "--subject-name", "jwks.internal.example", "--token-header", "A:B "),
    "shortest": ("--url", URL, "--cache-duration", "1ms", "--fetch-timeout", "1ms"),
}


def _envoy_types() -> Any:
    """The generated modules; importing them registers the types that `@type` names."""
    from envoy.config.cluster.v3 import cluster_pb2
    from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2
    from envoy.extensions.filters.network.http_connection_manager.v3 import (
        http_connection_manager_pb2,
    )
    from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

    return cluster_pb2, config_pb2, http_connection_manager_pb2, tls_pb2


def parse_envoy(jwt_filter: dict[str, Any], cluster: dict[str, Any]) -> tuple[Any, Any]:
    """The two documents as Envoy's messages: HttpFilter (Any unpacked) and Cluster."""
    from google.protobuf import json_format

    cluster_pb2, _, hcm_pb2, _ = _envoy_types()
    http_filter = json_format.ParseDict(
        jwt_filter, hcm_pb2.HttpFilter(), ignore_unknown_fields=False
    )
    parsed_cluster = json_format.ParseDict(
        cluster, cluster_pb2.Cluster(), ignore_unknown_fields=False
    )
    return http_filter, parsed_cluster


def pgv_violations(message: Any, path: str = "") -> list[str]:
    """What protoc-gen-validate (Envoy's config validation) refuses in `message`, recursively:
    required messages and oneofs, duration and number bounds, string lengths and header
    characters, defined enums, item counts, and deprecated fields in use."""
    from google.protobuf import any_pb2, descriptor_pool, message_factory
    from validate import validate_pb2

    problems: list[str] = []
    if isinstance(message, any_pb2.Any):
        name = message.type_url.rpartition("/")[2]
        inner = message_factory.GetMessageClass(
            descriptor_pool.Default().FindMessageTypeByName(name)
        )()
        assert message.Unpack(inner), name
        return pgv_violations(inner, path)
    for group in message.DESCRIPTOR.oneofs:
        required = group.GetOptions().Extensions[validate_pb2.required]
        if required and message.WhichOneof(group.name) is None:
            problems.append(f"{path}{group.name}: one of its fields is required")
    for fd in message.DESCRIPTOR.fields:
        oneof = fd.containing_oneof
        if oneof is not None and message.WhichOneof(oneof.name) != fd.name:
            continue  # rules on a oneof's members apply to the one that is set
        where = f"{path}{fd.name}"
        options = fd.GetOptions()
        repeated = fd.is_repeated
        value = getattr(message, fd.name)
        if fd.message_type is not None and not repeated:
            present = message.HasField(fd.name)
        else:
            present = bool(len(value)) if repeated else value != fd.default_value
        if present and options.deprecated:
            problems.append(f"{where}: deprecated")
        rules = options.Extensions[validate_pb2.rules]
        if repeated and fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            if fd.message_type.fields_by_name["value"].message_type is not None:
                for key, item in value.items():
                    problems += pgv_violations(item, f"{where}[{key}].")
            continue
        if repeated:
            if rules.HasField("repeated"):
                if len(value) < rules.repeated.min_items:
                    problems.append(f"{where}: fewer than {rules.repeated.min_items} items")
                items = rules.repeated.items
                for index, item in enumerate(value):
                    problems += _scalar_rule_violations(items, item, f"{where}[{index}]")
            if fd.message_type is not None:
                for index, item in enumerate(value):
                    problems += pgv_violations(item, f"{where}[{index}].")
            continue
        if rules.HasField("message") and rules.message.required and not present:
            problems.append(f"{where}: required")
        if rules.HasField("duration"):
            problems += _duration_violations(rules.duration, value if present else None, where)
        elif fd.message_type is None:
            problems += _scalar_rule_violations(rules, value, where, fd)
        if fd.message_type is not None and present:
            problems += pgv_violations(value, f"{where}.")
    return problems


def _duration_violations(rule: Any, value: Any, where: str) -> list[str]:
    if value is None:
        return [f"{where}: required"] if rule.required else []
    nanos = value.seconds * 1_000_000_000 + value.nanos
    bounds = [
        ("lt", lambda n, b: n < b),
        ("lte", lambda n, b: n <= b),
        ("gt", lambda n, b: n > b),
        ("gte", lambda n, b: n >= b),
    ]
    return [
        f"{where}: {nanos}ns breaks {name} {bound}ns"
        for name, holds in bounds
        if rule.HasField(name)
        for bound in [getattr(rule, name).seconds * 1_000_000_000 + getattr(rule, name).nanos]
        if not holds(nanos, bound)
    ]


def _scalar_rule_violations(rules: Any, value: Any, where: str, fd: Any = None) -> list[str]:
    kind = rules.WhichOneof("type")
    if kind is None:
        return []
    rule = getattr(rules, kind)
    problems = []
    if kind == "string":
        if rule.ignore_empty and not value:
            return []
        if len(value) < rule.min_len or (rule.HasField("max_len") and len(value) > rule.max_len):
            problems.append(f"{where}: length {len(value)} outside its limits")
        if rule.HasField("max_bytes") and len(value.encode()) > rule.max_bytes:
            problems.append(f"{where}: longer than {rule.max_bytes} bytes")
        if rule.HasField("well_known_regex") and any(ch in value for ch in "\x00\r\n"):
            problems.append(f"{where}: a header may not hold NUL, CR or LF")
    elif kind == "enum":
        names = {v.number for v in fd.enum_type.values} if fd is not None else set()
        if rule.defined_only and fd is not None and value not in names:
            problems.append(f"{where}: undefined enum value {value}")
        if value in rule.not_in:
            problems.append(f"{where}: {value} is not allowed")
    elif kind in ("uint32", "uint64", "int32", "int64", "double"):
        for name, holds in (
            ("lt", value.__lt__),
            ("lte", value.__le__),
            ("gt", value.__gt__),
            ("gte", value.__ge__),
        ):
            if rule.HasField(name) and not holds(getattr(rule, name)):
                problems.append(f"{where}: {value} breaks {name} {getattr(rule, name)}")
    return problems


@pytest.mark.parametrize("variant", ENVOY_VARIANTS)
def test_every_envoy_output_is_what_envoys_own_types_accept(variant: str) -> None:
    result = run("gateway", "--provider", "envoy", *ENVOY_VARIANTS[variant])
    assert result.exit_code == 0, result.stderr
    jwt_filter, cluster = documents(result.stdout)
    http_filter, parsed_cluster = parse_envoy(jwt_filter, cluster)
    _, config_pb2, _, tls_pb2 = _envoy_types()
    authn = config_pb2.JwtAuthentication()
    assert http_filter.typed_config.Unpack(authn)
    assert pgv_violations(http_filter) == []
    assert pgv_violations(parsed_cluster) == []
    remote = authn.providers["remote-jwks-go"].remote_jwks
    assert (
        remote.http_uri.uri
        == jwt_filter["typed_config"]["providers"]["remote-jwks-go"]["remote_jwks"]["http_uri"][
            "uri"
        ]
    )
    assert remote.http_uri.cluster == parsed_cluster.name
    if ENVOY_VARIANTS[variant][1].startswith("https:"):
        context = tls_pb2.UpstreamTlsContext()
        assert parsed_cluster.transport_socket.typed_config.Unpack(context)
        validation = context.common_tls_context.validation_context
        assert validation.trusted_ca.filename.startswith("/etc/")
        [san] = validation.match_typed_subject_alt_names
        assert san.matcher.exact
    else:
        assert not parsed_cluster.HasField("transport_socket")


def test_the_envoy_values_are_the_ones_asked_for() -> None:
    from envoy.extensions.transport_sockets.tls.v3 import common_pb2

    jwt_filter, cluster = documents(gateway_run("envoy").stdout)
    http_filter, parsed_cluster = parse_envoy(jwt_filter, cluster)
    _, config_pb2, _, tls_pb2 = _envoy_types()
    authn = config_pb2.JwtAuthentication()
    http_filter.typed_config.Unpack(authn)
    provider = authn.providers["remote-jwks-go"]
    assert provider.remote_jwks.http_uri.timeout.ToMilliseconds() == 1500
    assert provider.remote_jwks.cache_duration.ToSeconds() == 300
    assert [h.name for h in provider.from_headers] == ["X-Jwt-Assertion"]
    assert parsed_cluster.connect_timeout.ToMilliseconds() == 1500
    context = tls_pb2.UpstreamTlsContext()
    parsed_cluster.transport_socket.typed_config.Unpack(context)
    [san] = context.common_tls_context.validation_context.match_typed_subject_alt_names
    assert san.san_type == common_pb2.SubjectAltNameMatcher.DNS
    assert san.matcher.exact == "jwks.example.com"


def test_the_envoy_checks_catch_what_envoy_refuses() -> None:
    """The checks above can fail: the old object-form durations, an unknown field, a
    sub-millisecond cache, a missing timeout and a deprecated field each do."""
    from google.protobuf import json_format

    jwt_filter, cluster = documents(gateway_run("envoy").stdout)
    remote = jwt_filter["typed_config"]["providers"]["remote-jwks-go"]["remote_jwks"]

    def broken(change: Any) -> dict[str, Any]:
        copy = json.loads(json.dumps(jwt_filter))
        change(copy["typed_config"]["providers"]["remote-jwks-go"]["remote_jwks"])
        return copy

    with pytest.raises(json_format.ParseError):  # proto3 JSON: a Duration is a string
        parse_envoy(broken(lambda r: r.update(cache_duration={"seconds": 300})), cluster)
    with pytest.raises(json_format.ParseError):
        parse_envoy(broken(lambda r: r.update(cache_seconds=300)), cluster)
    too_short, _ = parse_envoy(broken(lambda r: r.update(cache_duration="0.0005s")), cluster)
    assert any("cache_duration" in p for p in pgv_violations(too_short))
    no_timeout, _ = parse_envoy(broken(lambda r: r["http_uri"].pop("timeout")), cluster)
    assert any("http_uri.timeout: required" in p for p in pgv_violations(no_timeout))
    _, old_san = parse_envoy(
        jwt_filter,
        {
            **cluster,
            "transport_socket": {
                "name": "envoy.transport_sockets.tls",
                "typed_config": {
                    "@type": gateway.TLS_CONTEXT_TYPE,
                    "common_tls_context": {
                        "validation_context": {"match_subject_alt_names": [{"exact": "x"}]}
                    },
                },
            },
        },
    )
    assert any("deprecated" in p for p in pgv_violations(old_san))
    assert remote["cache_duration"] == "300s"


@pytest.mark.cluster
def test_namespace_resolves_the_url_apply_printed(kube: Kube) -> None:
    applied = kube.jwksdeploy(
        "apply",
        "-n",
        kube.namespace,
        "--jwks",
        str(EXAMPLES / "jwks.json"),
        "--address",
        "127.0.0.1",
    )
    assert applied.exit_code == 0, applied.stderr
    url = applied.stdout.strip()
    result = kube.jwksdeploy(
        "gateway",
        "--provider",
        "istio",
        "-n",
        kube.namespace,
        "--address",
        "127.0.0.1",
        "--issuer",
        "i",
    )
    assert result.exit_code == 0, result.stderr
    [policy] = documents(result.stdout)
    assert policy["spec"]["jwtRules"][0]["jwksUri"] == url
    missing = kube.jwksdeploy(
        "gateway", "--provider", "istio", "-n", kube.namespace, "--deployment", "other"
    )
    assert missing.exit_code == 9 and "no Service 'other'" in missing.stderr


@pytest.mark.cluster
def test_apply_gateway_prints_the_snippet_with_the_real_url(kube: Kube) -> None:
    args = ("apply", "-n", kube.namespace, "--jwks", str(EXAMPLES / "jwks.json"))
    result = kube.jwksdeploy(
        *args,
        "--address",
        "127.0.0.1",
        "--gateway",
        "contour",
        "--fqdn",
        "a.example.com",
        "--tls-secret",
        "a-tls",
        "--fetch-timeout",
        "2s",
        "--issuer",
        "i",
    )
    assert result.exit_code == 0, result.stderr
    [proxy] = documents(result.stdout)  # stdout is only the snippet: pipe it to kubectl
    service = kube.read("Service", "remote-jwks-go")
    assert service is not None
    node_port = service["spec"]["ports"][0]["nodePort"]
    remote = proxy["spec"]["virtualhost"]["jwtProviders"][0]["remoteJWKS"]
    assert remote == {"uri": f"http://127.0.0.1:{node_port}/jwks", "timeout": "2s"}
    assert f"JWKS URL http://127.0.0.1:{node_port}/jwks" in result.stderr
    assert "plain HTTP" in result.stderr

    as_json = kube.jwksdeploy(
        *args,
        "--address",
        "127.0.0.1",
        "--gateway",
        "envoy",
        "-o",
        "json",
        "--token-header",
        "X-Jwt-Assertion",
        "--fetch-timeout",
        "1500ms",
    )
    report = json.loads(as_json.stdout)
    provider = report["gateway"][0]["typed_config"]["providers"]["remote-jwks-go"]
    assert provider["remote_jwks"]["http_uri"]["uri"] == report["url"]
    assert provider["remote_jwks"]["http_uri"]["timeout"] == "1.5s"
    assert provider["from_headers"] == [{"name": "X-Jwt-Assertion"}]  # apply takes the new flags
    too_fine = kube.jwksdeploy(*args, "--gateway", "envoy", "--fetch-timeout", "0.5ms")
    assert too_fine.exit_code == 3
    assert "--fetch-timeout '0.5ms' is shorter than 1ms" in too_fine.stderr  # apply's own flag


# --- the cache window each configuration lets the gateway keep (what `rotate` waits for) -------


@pytest.mark.parametrize(
    ("provider", "flags", "seconds", "why"),
    [
        ("envoy", {}, 600, "Envoy's default remote_jwks.cache_duration"),
        ("contour", {"fqdn": "a.b", "ca_secret": "ca"}, 600, "which Contour leaves unset"),
        ("envoy-gateway", {"target_routes": ("r",)}, 300, "Envoy Gateway's default"),
        ("istio", {"issuer": "i"}, 1200, "PILOT_JWT_PUB_KEY_REFRESH_INTERVAL"),
        ("envoy", {"cache_duration": "1500ms"}, 1.5, "--cache-duration"),
        (
            "envoy-gateway",
            {"target_routes": ("r",), "cache_duration": "2h"},
            7200,
            "--cache-duration",
        ),
        # istiod has no cache field: --cache-duration is ignored (with a warning), so is here.
        ("istio", {"issuer": "i", "cache_duration": "1m"}, 1200, "PILOT_JWT"),
    ],
)
def test_each_target_s_cache_window_is_the_flag_else_its_real_default(
    provider: str, flags: dict[str, str], seconds: float, why: str
) -> None:
    options = gateway.gateway_options(provider, "jwks", "https://jwks.example.com/jwks", **flags)
    config = gateway.build(options)
    assert config.cache_window == seconds and why in config.cache_window_why
    assert gateway.cache_window(options) == (config.cache_window, config.cache_window_why)


def test_without_a_cluster_nothing_is_recorded_and_one_line_says_what_rotate_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ("gateway", "--url", "http://127.0.0.1:31456/jwks", "--provider", "envoy-gateway")
    short = run(*args, "--target-route", "r")
    assert short.exit_code == 0, short.stderr
    [note] = [line for line in short.stderr.splitlines() if "not recorded" in line]
    assert note.startswith("note: ") and "--cache-window 5m" in note
    long = run(*args, "--target-route", "r", "--cache-duration", "1h")
    [warning] = [line for line in long.stderr.splitlines() if "nothing was recorded" in line]
    assert warning.startswith("warning: ") and "`--cache-window 1h`" in warning
    quiet = run(*args, "--target-route", "r", "--no-record")
    assert "recorded" not in quiet.stderr
    assert list(tmp_path.iterdir()) == [], "no local file is written"


# --- issue 20: gateway outputs without surprises --------------------------------------------

# The CRDs' own duration rules, quoted: Contour's HTTPProxy remoteJWKS.timeout/cacheDuration
# (apis/projectcontour/v1/httpproxy.go) and Gateway API's Duration (Envoy Gateway).
CONTOUR_DURATION = re.compile(
    r"^(((\d*(\.\d*)?h)|(\d*(\.\d*)?m)|(\d*(\.\d*)?s)|(\d*(\.\d*)?ms)|(\d*(\.\d*)?us)"
    r"|(\d*(\.\d*)?µs)|(\d*(\.\d*)?ns))+)$"
)
GATEWAY_API_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
PROTO_JSON_DURATION = re.compile(r"^[0-9]+(\.[0-9]{1,9})?s$")


def test_target_route_is_repeatable_into_target_refs() -> None:
    """A second --target-route used to replace the first, leaving that route unprotected."""
    result = minimal_run("envoy-gateway", "--url", URL, "--target-route", "web", "-o", "json")
    assert result.exit_code == 0, result.stderr
    [policy] = json.loads(result.stdout)["items"]
    assert [ref["name"] for ref in policy["spec"]["targetRefs"]] == ["api", "web"]
    assert all(
        (ref["group"], ref["kind"]) == ("gateway.networking.k8s.io", "HTTPRoute")
        for ref in policy["spec"]["targetRefs"]
    )
    again = minimal_run("envoy-gateway", "--url", URL, "--target-route", "api")
    [policy] = documents(again.stdout)
    assert [ref["name"] for ref in policy["spec"]["targetRefs"]] == ["api"]  # once, in order
    bad = minimal_run("envoy-gateway", "--url", URL, "--target-route", "Web")
    assert bad.exit_code == 3 and "--target-route" in bad.stderr and bad.stdout == ""
    options = gateway.gateway_options("envoy-gateway", "n", URL, target_routes=("a", "b", "a"))
    assert options.target_routes == ("a", "b")


@pytest.mark.parametrize("provider", ["contour", "istio", "envoy-gateway"])
def test_json_is_a_list_kubectl_applies_and_holds_the_yaml_documents(provider: str) -> None:
    """`kubectl apply -f` refuses a bare JSON array; a v1 List is what it and `render -o json`
    use. The items are exactly the YAML output's documents."""
    as_json = gateway_run(provider, "-o", "json")
    assert as_json.exit_code == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert (document["apiVersion"], document["kind"]) == ("v1", "List")
    assert document["items"] == documents(gateway_run(provider).stdout)
    assert all({"apiVersion", "kind", "metadata"} <= set(item) for item in document["items"])


def test_envoy_json_stays_the_two_snippets() -> None:
    """Envoy's filter and cluster are not Kubernetes objects: no List around them."""
    result = gateway_run("envoy", "-o", "json")
    assert json.loads(result.stdout) == documents(gateway_run("envoy").stdout)


def test_tls_secret_takes_a_namespaced_name_as_the_crd_does() -> None:
    """virtualhost.tls.secretName may be "namespace/name" (with a TLSCertificateDelegation)."""
    result = run(
        "gateway", "--provider", "contour", "--url", PLAIN, "--fqdn", "a.example",
        "--tls-secret", "apps/api-tls",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert documents(result.stdout)[0]["spec"]["virtualhost"]["tls"] == {
        "secretName": "apps/api-tls"
    }
    for bad, fragment in (
        ("a/b/c", "is not SECRET or NAMESPACE/SECRET"),
        ("Apps/api-tls", "--tls-secret namespace"),
        ("apps/API", "DNS-1123 subdomain"),
    ):
        refused = run(
            "gateway", "--provider", "contour", "--url", PLAIN, "--fqdn", "a.example",
            "--tls-secret", bad,
        )  # fmt: skip
        assert refused.exit_code == 3 and fragment in refused.stderr, refused.stderr


@pytest.mark.parametrize(
    ("text", "go", "proto_json"),
    [
        ("1h30m", "1h30m", "5400s"),
        ("1m30s500ms", "1m30s500ms", "90.5s"),
        ("1h 0m 1s", "1h1s", "3601s"),
        ("2m1.5s", "2m1s500ms", "121.5s"),
    ],
)
def test_compound_durations_are_read_and_each_target_gets_its_own_form(
    text: str, go: str, proto_json: str
) -> None:
    """Contour's pattern and Gateway API's Duration take `1h30m`; Envoy's proto3 JSON
    Duration is seconds only, so it gets the conversion (issue 20, 15)."""
    flags = ("--cache-duration", text, "--fetch-timeout", text)
    contour = minimal_run("contour", "--url", PLAIN, *flags)
    assert contour.exit_code == 0, contour.stderr
    remote = documents(contour.stdout)[0]["spec"]["virtualhost"]["jwtProviders"][0]["remoteJWKS"]
    assert remote["cacheDuration"] == remote["timeout"] == go
    eg = minimal_run("envoy-gateway", "--url", PLAIN, *flags)
    remote = documents(eg.stdout)[0]["spec"]["jwt"]["providers"][0]["remoteJWKS"]
    assert remote["cacheDuration"] == go
    envoy = minimal_run("envoy", "--url", PLAIN, *flags)
    jwt_filter, cluster = documents(envoy.stdout)
    remote = jwt_filter["typed_config"]["providers"]["remote-jwks-go"]["remote_jwks"]
    assert remote["cache_duration"] == remote["http_uri"]["timeout"] == proto_json
    http_filter, _ = parse_envoy(jwt_filter, cluster)
    assert pgv_violations(http_filter) == []
    istio = minimal_run("istio", "--url", PLAIN, "--fetch-timeout", text)
    assert documents(istio.stdout)[0]["spec"]["jwtRules"][0]["timeout"] == proto_json


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hours=st.integers(0, 99_999),
    minutes=st.integers(0, 59),
    seconds=st.integers(0, 59),
    millis=st.integers(0, 999),
)
def test_every_duration_output_matches_its_targets_rule(
    hours: int, minutes: int, seconds: int, millis: int
) -> None:
    """Whatever whole-millisecond duration is typed (in Go's compound form), each target's
    text passes that target's CRD pattern or proto form and means the same number."""
    text = f"{hours}h{minutes}m{seconds}s{millis}ms"
    nanos = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000_000 + millis * 1_000_000
    if nanos == 0 or nanos > 10 * 365 * 24 * 3600 * 1_000_000_000:
        return
    for provider in ("contour", "envoy", "envoy-gateway"):
        assert gateway.duration_for(provider, "--cache-duration", text) == nanos
    go = gateway.go_duration(nanos)
    assert CONTOUR_DURATION.fullmatch(go) and GATEWAY_API_DURATION.fullmatch(go), go
    proto = gateway.proto_json_duration(nanos)
    assert PROTO_JSON_DURATION.fullmatch(proto), proto
    assert round(float(proto[:-1]) * 1000) == nanos // 1_000_000


def test_istio_without_a_selector_says_the_deny_policy_covers_the_namespace() -> None:
    """The --require-token policy is a DENY over every workload in scope, TCP ports included
    (istiod's own warning), which the RequestAuthentication-only warning never said."""
    result = run("gateway", "--provider", "istio", "--url", URL, "--issuer", "i", "--require-token")
    assert result.exit_code == 0, result.stderr
    [warning] = [w for w in warnings_of(result) if "no --selector" in w]
    assert "AuthorizationPolicy is a DENY" in warning
    assert "will deny all traffic to TCP ports under its scope" in warning
    assert "--selector" in warning
    scoped = run(
        "gateway", "--provider", "istio", "--url", URL, "--issuer", "i", "--require-token",
        "--selector", "app=gw",
    )  # fmt: skip
    assert not [w for w in warnings_of(scoped) if "no --selector" in w]
    plain = run("gateway", "--provider", "istio", "--url", URL, "--issuer", "i")
    [warning] = [w for w in warnings_of(plain) if "no --selector" in w]
    assert "RequestAuthentication applies to every workload" in warning
    assert "DENY" not in warning


def test_envoy_gateway_is_not_said_to_check_the_jwks_host() -> None:
    """v1.9's jwt.go sets the trust bundle and SNI, but no SAN matcher (issue 20, 17)."""
    result = minimal_run("envoy-gateway", "--url", URL, "--subject-name", "jwks.example.com")
    [warning] = [w for w in warnings_of(result) if "--subject-name" in w]
    assert "against the URL's host" not in warning
    assert "checks no name" in warning and "BackendTLSPolicy" in warning
    istio = minimal_run("istio", "--url", URL, "--subject-name", "jwks.example.com")
    assert "istiod checks the JWKS server's certificate against the URL's host" in istio.stderr


def test_the_readme_shows_how_to_pin_envoy_gateway_s_jwks_server() -> None:
    readme = (REPO / "docs" / "reference.md").read_text()
    section = readme.split("### Who serves the keys")[1].split("\n### ")[0]
    envoy_gateway = section.split("- **Envoy Gateway**")[1]
    assert "no SAN matcher" in envoy_gateway or "checks no name" in envoy_gateway
    [block] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    policy, tls = documents(textwrap.dedent(block))
    assert policy["kind"] == "SecurityPolicy"
    remote = policy["spec"]["jwt"]["providers"][0]["remoteJWKS"]
    [ref] = remote["backendRefs"]
    assert (tls["kind"], tls["apiVersion"]) == ("BackendTLSPolicy", "gateway.networking.k8s.io/v1")
    [target] = tls["spec"]["targetRefs"]
    assert (target["kind"], target["name"]) == (ref["kind"], ref["name"])
    host = urllib.parse.urlsplit(remote["uri"]).hostname
    assert tls["spec"]["validation"]["hostname"] == host


def test_a_bad_provider_name_is_reported_as_the_flag_given() -> None:
    gw = run("gateway", "--provider", "envoy", "--url", URL, "--provider-name", "My_JWKS")
    assert gw.exit_code == 3 and "--provider-name 'My_JWKS'" in gw.stderr
    assert "--name" not in gw.stderr.replace("--provider-name", "")
    named = run("gateway", "--provider", "envoy", "--url", URL, "--name", "My_JWKS")
    assert named.exit_code == 3 and "--name 'My_JWKS'" in named.stderr
    jwks = str(EXAMPLES / "jwks.json")
    applied = run(
        "apply", "-n", "a", "--jwks", jwks, "--dry-run=client", "--provider", "envoy",
        "--provider-name", "My_JWKS",
    )  # fmt: skip
    assert applied.exit_code == 3 and "--provider-name 'My_JWKS'" in applied.stderr


@pytest.mark.parametrize(
    ("duration", "window"),
    [("1.5", "1s500ms"), ("90.5s", "1m30s500ms"), ("1h30m", "1h30m"), ("1001ms", "1s1ms")],
)
def test_the_cache_window_note_is_exact_and_rotate_reads_it_back(
    duration: str, window: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rounding 90.5s down to 1m30s told rotate a window shorter than the real cache."""
    from jwksdeploy.durations import parse_duration

    monkeypatch.chdir(tmp_path)
    result = minimal_run("envoy", "--url", PLAIN, "--cache-duration", duration)
    assert result.exit_code == 0, result.stderr
    [note] = [line for line in result.stderr.splitlines() if "recorded" in line]
    assert f"({window}, " in note or f"{window} (" in note
    assert f"--cache-window {window}" in note
    assert f"--cache-window {window}0" not in note  # the whole value, not a prefix of it
    assert parse_duration(window, "--cache-window") == parse_duration(duration, "x")


def _client_dry_run(*args: str) -> Any:
    jwks = str(EXAMPLES / "jwks.json")
    return run("apply", "-n", "apps", "--jwks", jwks, "--dry-run=client", *args)


def test_apply_client_dry_run_prints_the_gateway_configuration() -> None:
    """It checked the gateway flags and printed nothing of the gateway (issue 20, 10)."""
    text = _client_dry_run("--provider", "istio", "--issuer", "i", "--selector", "app=gw")
    assert text.exit_code == 0, text.stderr
    [policy] = documents(text.stdout)
    url = "http://remote-jwks-go.apps.svc.cluster.local:8080/jwks"
    assert policy["spec"]["jwtRules"][0]["jwksUri"] == url
    assert f"apps: JWKS URL {url} (the in-cluster Service name" in text.stderr
    as_yaml = _client_dry_run("--provider", "istio", "--issuer", "i", "-o", "yaml")
    kinds = [doc["kind"] for doc in documents(as_yaml.stdout)]
    assert kinds == ["ConfigMap", "Service", "Deployment", "RequestAuthentication"]
    assert "# Istio: rejects requests with an invalid token" in as_yaml.stdout
    as_json = _client_dry_run(
        "--provider", "envoy-gateway", "--target-route", "api", "-o", "json",
        "--node-port", "31456", "--address", "10.0.0.12",
    )  # fmt: skip
    listed = json.loads(as_json.stdout)
    assert listed["kind"] == "List"
    assert [item["kind"] for item in listed["items"]][-1] == "SecurityPolicy"
    remote = listed["items"][-1]["spec"]["jwt"]["providers"][0]["remoteJWKS"]
    assert remote["uri"] == "http://10.0.0.12:31456/jwks"  # what a real apply would print
    named = _client_dry_run("--provider", "istio", "--issuer", "i", "-o", "name")
    assert "requestauthentication" not in named.stdout  # -o name: the applied objects only
    without = _client_dry_run("-o", "yaml")
    assert [d["kind"] for d in documents(without.stdout)] == ["ConfigMap", "Service", "Deployment"]


# --- the one duration reader every flag shares (jwksdeploy/durations.py) ----------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("1.5s", 1.5), ("1h30m", 5400), ("1m30s500ms", 90.5), (" 2m 1s ", 121)],
)
def test_every_duration_flag_reads_go_s_compound_form(text: str, seconds: float) -> None:
    from jwksdeploy.durations import parse_duration

    assert parse_duration(text, "--timeout") == seconds
    dry = run(
        "apply", "-n", "a", "--jwks", str(EXAMPLES / "jwks.json"), "--dry-run=client",
        "--timeout", text,
    )  # fmt: skip
    assert dry.exit_code == 0, dry.stderr


@pytest.mark.parametrize("text", ["1m s", "ms", "1h1h1h1h1h", "1d", "1.s", "-1s"])
def test_what_is_not_a_duration_is_still_refused(text: str) -> None:
    from jwksdeploy.durations import parse_duration

    with pytest.raises(InputError, match="is not a duration"):
        parse_duration(text, "--timeout")


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10 * 365 * 24 * 3600 * 1000))
def test_printed_durations_read_back_exactly(millis: int) -> None:
    from fractions import Fraction

    from jwksdeploy.durations import exact_seconds, flag_text

    seconds = Fraction(millis, 1000)
    assert exact_seconds(flag_text(seconds), "--cache-window") == seconds
