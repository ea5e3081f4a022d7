"""`jwksdeploy gateway` and `apply --gateway`: golden outputs per target, each field checked
against the target's API, the warnings for what a target cannot express, and URL lookup
through the cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from jwksdeploy import gateway
from jwksdeploy.errors import InputError

from .helpers import EXAMPLES, REPO, run
from .kube import Kube

GOLDEN = REPO / "tests" / "golden"
URL = "https://jwks.example.com/jwks"
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
    "--timeout",
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
    ),
    "envoy": ("--cluster", "jwks_cluster", "--dns-lookup-family", "v4"),
    "istio": (
        "--selector",
        "istio=ingressgateway",
        "--policy-namespace",
        "istio-system",
        "--require-token",
    ),
    "envoy-gateway": ("--target-route", "api", "--policy-namespace", "apps"),
}


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def gateway_run(provider: str, *extra: str) -> Any:
    return run("gateway", "--provider", provider, *FULL, *NEEDS[provider], *extra)


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
            "timeout": "1s500ms",
            "cacheDuration": "5m",
            "dnsLookupFamily": "v4",
        },
        "forwardJWT": True,
    }


def test_envoy_fields() -> None:
    jwt_filter, cluster = documents(gateway_run("envoy").stdout)
    assert jwt_filter["name"] == "envoy.filters.http.jwt_authn"
    config = jwt_filter["typed_config"]
    assert config["@type"].endswith("jwt_authn.v3.JwtAuthentication")
    provider = config["providers"]["remote-jwks-go"]
    assert provider["issuer"] == "https://issuer.example"
    assert provider["audiences"] == ["api", "web"]
    assert provider["forward"] is True
    remote = provider["remote_jwks"]
    assert remote["http_uri"] == {
        "uri": URL,
        "cluster": "jwks_cluster",
        "timeout": {"seconds": 1, "nanos": 500_000_000},
    }
    assert remote["cache_duration"] == {"seconds": 300}
    assert "async_fetch" in remote and remote["retry_policy"]["num_retries"] == 3
    assert config["rules"] == [
        {"match": {"prefix": "/"}, "requires": {"provider_name": "remote-jwks-go"}}
    ]
    assert cluster["name"] == "jwks_cluster" and cluster["type"] == "STRICT_DNS"
    assert cluster["dns_lookup_family"] == "V4_ONLY"
    [endpoint] = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert endpoint["endpoint"]["address"]["socket_address"] == {
        "address": "jwks.example.com",
        "port_value": 443,
    }
    assert cluster["transport_socket"]["typed_config"]["sni"] == "jwks.example.com"


def test_envoy_plain_http_cluster_has_no_tls_and_a_default_timeout() -> None:
    result = run("gateway", "--provider", "envoy", "--url", "http://10.0.0.12:31456/jwks")
    jwt_filter, cluster = documents(result.stdout)
    remote = jwt_filter["typed_config"]["providers"]["remote-jwks-go"]["remote_jwks"]
    assert remote["http_uri"]["timeout"] == {"seconds": 1}  # Envoy requires one
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
            "remoteJWKS": {"uri": URL, "cacheDuration": "5m"},
        }
    ]


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("contour", []),
        ("envoy", []),
        ("istio", ["--cache-duration is ignored for istio"]),
        (
            "envoy-gateway",
            ["--timeout is ignored for envoy-gateway"],
        ),
    ],
)
def test_each_unsupported_field_is_a_warning(provider: str, expected: list[str]) -> None:
    result = gateway_run(provider)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert [w.split(":")[1].strip() for w in warnings] == [e.split(":")[0] for e in expected]
    for fragment in expected:
        assert fragment in result.stderr


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
    )
    assert result.exit_code == 0
    assert "--dns-lookup-family is ignored for envoy-gateway" in result.stderr
    assert "--no-forward is ignored for envoy-gateway" in result.stderr
    assert "--fqdn is ignored for envoy-gateway" in result.stderr
    assert "--selector is ignored for envoy-gateway" in result.stderr


def test_missing_pieces_warn_or_fail_per_target() -> None:
    contour = run("gateway", "--provider", "contour", "--url", URL)
    assert contour.exit_code == 0
    assert "no --fqdn and --tls-secret" in contour.stderr
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
    contour = run("gateway", "--provider", "contour", "--url", URL, "--require-token")
    assert "--require-token is ignored for contour: it already rejects" in contour.stderr
    assert "routes" not in documents(contour.stdout)[0]["spec"]


def test_plain_http_earns_a_warning_https_does_not() -> None:
    plain = run("gateway", "--provider", "envoy", "--url", "http://10.0.0.12:31456/jwks")
    assert "plain HTTP" in plain.stderr
    secure = run("gateway", "--provider", "envoy", "--url", URL)
    assert "plain HTTP" not in secure.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--url", "ftp://h/jwks"), "not an http(s) URL"),
        (("--url", "/jwks"), "not an http(s) URL"),
        (("--url", "http://h:99999/jwks"), "not an http(s) URL"),
        (("--url", URL, "--cache-duration", "soon"), "is not a duration"),
        (("--url", URL, "--timeout", "0s"), "must be longer than 0"),
        (("--url", URL, "--selector", "app"), "key=value"),
        (("--url", URL, "--selector", "app=not valid"), "--selector value"),
        (("--url", URL, "--name", "Bad_Name"), "DNS-1035"),
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
    ("seconds", "go", "proto", "proto_json"),
    [
        (300, "5m", {"seconds": 300}, "300s"),
        (90, "1m30s", {"seconds": 90}, "90s"),
        (1.5, "1s500ms", {"seconds": 1, "nanos": 500_000_000}, "1.5s"),
        (0.25, "250ms", {"seconds": 0, "nanos": 250_000_000}, "0.25s"),
        (7200, "2h", {"seconds": 7200}, "7200s"),
    ],
)
def test_duration_formats(seconds: float, go: str, proto: dict[str, int], proto_json: str) -> None:
    assert gateway.go_duration(seconds) == go
    assert gateway.proto_duration(seconds) == proto
    assert gateway.proto_json_duration(seconds) == proto_json


def test_json_and_output_dir(tmp_path: Path) -> None:
    as_json = run("gateway", "--provider", "envoy", "--url", URL, "-o", "json")
    assert [d["name"] for d in json.loads(as_json.stdout)] == [
        "envoy.filters.http.jwt_authn",
        "remote-jwks-go-jwks",
    ]
    written = run(
        "gateway", "--provider", "contour", "--url", URL, "--output-dir", str(tmp_path / "gw")
    )
    assert written.exit_code == 0, written.stderr
    [path] = list((tmp_path / "gw").rglob("*.yaml"))
    assert path.relative_to(tmp_path / "gw").as_posix() == "contour/httpproxy-remote-jwks-go.yaml"
    assert documents(path.read_text())[0]["kind"] == "HTTPProxy"


def test_the_cli_offers_exactly_the_targets_the_core_builds() -> None:
    from jwksdeploy.cli_gateway import PROVIDERS

    assert PROVIDERS == gateway.PROVIDERS


def test_options_are_pure_and_validated_once() -> None:
    with pytest.raises(InputError):
        gateway.gateway_options("nginx", "n", URL)
    options = gateway.gateway_options("envoy", "n", URL, audiences=("a", "a", "b"))
    assert options.audiences == ("a", "b")
    assert gateway.build(options).objects == gateway.build(options).objects


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

    as_json = kube.jwksdeploy(*args, "--address", "127.0.0.1", "--gateway", "envoy", "-o", "json")
    report = json.loads(as_json.stdout)
    assert (
        report["gateway"][0]["typed_config"]["providers"]["remote-jwks-go"]["remote_jwks"][
            "http_uri"
        ]["uri"]
        == report["url"]
    )
