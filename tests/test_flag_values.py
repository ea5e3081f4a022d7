"""Flag values are checked before anything runs: argv bytes that are not UTF-8, URLs, durations
that overflow, integers in ASCII digits only, hosts that make a URL, a zero request timeout.
Each is refused with a usage error (2) or an input error (3), never a crash while decoding or
printing it, and nothing is written or applied. Provenance: issue 9, both campaigns."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from .helpers import key_pair_files, kubeconfig
from .kube import Kube
from .refusals import (
    HYPOTHESIS,
    Outcome,
    assert_clean_stderr,
    assert_refused,
    each_failure,
    flag,
    invoke,
    snapshot,
    spawn_many,
)
from .servers import closed_port

pytestmark = pytest.mark.usefixtures("in_tmp")


VERIFY_TIMEOUT = flag("verify", "--request-timeout", "--timeout")
FETCH_TIMEOUT = flag("gateway", "--fetch-timeout", "--timeout")


# ---------------------------------------------------------------------------------------------
# Argv bytes that are not UTF-8, and URLs
# ---------------------------------------------------------------------------------------------


def _argv_cases(jwks: str, port: int) -> dict[str, list[str | bytes]]:
    url = f"http://127.0.0.1:{port}/jwks"
    return {
        "render-namespace": ["render", "--jwks", jwks, "--namespace", b"ns\xff"],
        "render-name": ["render", "--jwks", jwks, "-n", "a", "--name", b"n\xff"],
        "render-label": ["render", "--jwks", jwks, "-n", "a", "--label", b"team=\xff"],
        "render-label-key": ["render", "--jwks", jwks, "-n", "a", "--label", b"\xff=x"],
        "render-annotation": ["render", "--jwks", jwks, "-n", "a", "--annotation", b"a=\xff"],
        "render-image": ["render", "--jwks", jwks, "-n", "a", "--image", b"img\xff:1"],
        "render-jwks-path": ["render", "--jwks", b"missing-\xff.json", "-n", "a"],
        "check-path": ["jwks", "check", b"missing-\xff.json"],
        "token-key-path": ["token", "--key", b"missing-\xff.json"],
        "verify-url": ["verify", "--url", url.encode() + b"\xff"],
        "gateway-url": ["gateway", "--provider", "envoy", "--url", url.encode() + b"\xff"],
        "gateway-issuer": ["gateway", "--provider", "envoy", "--url", url, "--issuer", b"\xff"],
        "url-namespace": ["url", "-n", b"ns\xff"],
    }


def test_non_utf8_argv(tmp_path: Path, jwks_file: Path) -> None:
    """Bytes that are not UTF-8 in argv (processes, all at once): refused, never a crash
    while decoding or printing them."""
    cases = _argv_cases(str(jwks_file), closed_port())
    before = snapshot(tmp_path)
    outcomes = spawn_many(list(cases.values()), tmp_path, timeout=60)
    after = snapshot(tmp_path)

    def check(case: str, out: Outcome) -> Callable[[], None]:
        codes = (3, 11) if case == "verify-url" else 3
        return lambda: assert_refused(out, codes, before=before, after=after)

    each_failure({case: check(case, out) for case, out in zip(cases, outcomes, strict=True)})


BAD_URLS = [
    "http://127.0.0.1:{port}/j wks",
    "http://[::1",
    "http://127.0.0.1:99999/",
    "http://127.0.0.1:-1/",
    "http://127.0.0.1:port/",
    "http:///jwks",
    "http://",
    "ftp://127.0.0.1:{port}/jwks",
    "file:///etc/passwd",
    "127.0.0.1:{port}/jwks",
    "http://127.0.0.1:{port}/jwks\n",
    "http://127.0.0.1:{port}/\x00",
    "",
]


@pytest.mark.parametrize("template", BAD_URLS)
def test_bad_urls_are_refused(template: str, tmp_path: Path) -> None:
    url = template.format(port=closed_port())
    for args in (
        ["verify", "--url", url],
        ["gateway", "--provider", "envoy", "--url", url],
        ["gateway", "--provider", "contour", "--url", url],
    ):
        out = invoke(*args)
        assert_refused(out, 3, mentions=["url"] if args[0] == "verify" else ())


@HYPOTHESIS
@given(tail=st.text(max_size=30))
def test_property_gateway_url_never_crashes(tail: str, tmp_path: Path) -> None:
    """Whatever follows a local URL, gateway prints valid YAML (exit 0) or refuses (exit 3)."""
    if "\x00" in tail:
        tail = tail.replace("\x00", "")
    out = invoke("gateway", "--provider", "envoy", "--url", f"http://127.0.0.1:1{tail}")
    if out.code == 0:
        assert_clean_stderr(out)
        list(yaml.safe_load_all(out.stdout))
    else:
        assert_refused(out, 3)


# ---------------------------------------------------------------------------------------------
# Durations
# ---------------------------------------------------------------------------------------------


OVERFLOWING_DURATIONS = [
    "1e400s",
    "99999999999999999999h",
    "9" * 400 + "s",
    "9" * 5000,
    "10000000000000h",
    "nan",
    "inf",
    "-1s",
    "1.5.5s",
    "5 m s",
    "٣s",
    "",
]


def _duration_cases(tmp_path: Path, value: str) -> dict[str, list[str]]:
    public, private = key_pair_files(tmp_path)
    url = f"http://127.0.0.1:{closed_port()}/jwks"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(_kubeconfig_at(url)))
    k = ["--kubeconfig", str(kubeconfig)]
    return {
        "verify-timeout": ["verify", "--url", url, VERIFY_TIMEOUT, value],
        "verify-leeway": ["verify", "--url", url, "--leeway", value],
        "token-ttl": ["token", "--key", str(private), "--ttl", value],
        "token-nbf": ["token", "--key", str(private), "--nbf", value],
        "gateway-timeout": ["gateway", "--provider", "envoy", "--url", url, FETCH_TIMEOUT, value],
        "gateway-cache": [
            "gateway",
            "--provider",
            "contour",
            "--url",
            url,
            "--cache-duration",
            value,
        ],
        "apply-timeout": ["apply", "--jwks", str(public), "-n", "a", "--timeout", value, *k],
        "apply-request-timeout": [
            "apply",
            "--jwks",
            str(public),
            "-n",
            "a",
            "--request-timeout",
            value,
            *k,
        ],
        "url-request-timeout": ["url", "-n", "a", "--request-timeout", value, *k],
        "delete-timeout": ["delete", "-n", "a", "--timeout", value, *k],
        "status-request-timeout": ["status", "-n", "a", "--request-timeout", value, *k],
    }


def _kubeconfig_at(url: str) -> dict[str, Any]:

    server = url.rsplit("/", 1)[0]
    return kubeconfig(server)


@pytest.mark.parametrize("value", OVERFLOWING_DURATIONS)
def test_overflowing_durations_are_refused(value: str, tmp_path: Path) -> None:
    for name, args in _duration_cases(tmp_path, value).items():
        if name == "token-nbf" and value == "-1s":
            continue  # an offset into the past is a valid --nbf
        before = snapshot(tmp_path)
        out = invoke(*args)
        assert out.code != 0, f"{name}: {out.describe()}"
        assert_refused(out, 3, before=before, after=snapshot(tmp_path))


@HYPOTHESIS
@given(value=st.text(alphabet="0123456789.e+-smhnaif ", max_size=25))
def test_property_durations_never_crash(value: str, tmp_path: Path) -> None:
    """Any --ttl / gateway --timeout text gives a token / YAML (exit 0) or a clean exit 3."""
    _, private = key_pair_files(tmp_path)
    for args in (
        ["token", "--key", str(private), "--ttl", value],
        [
            "gateway",
            "--provider",
            "envoy",
            "--url",
            "http://127.0.0.1:1/jwks",
            FETCH_TIMEOUT,
            value,
        ],
    ):
        out = invoke(*args)
        if out.code == 0:
            assert_clean_stderr(out)
        else:
            assert_refused(out, 3)


# ---------------------------------------------------------------------------------------------
# Integer flags take ASCII digits only
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--port", "\u0663"],  # ARABIC-INDIC DIGIT THREE: was port 3
        ["serve", "--port", "0", "--max-connections", "\u0663"],
        ["render", "-n", "a", "--replicas", "\u0663"],
        ["render", "-n", "a", "--port", "80_80"],
        ["jwks", "generate", "--kty", "RSA", "--size", " 2048 "],
        ["rotate", "status", "--local", "--replicas", "\u0967"],
    ],
    ids=["serve-port", "serve-max-connections", "replicas", "underscore", "spaces", "rotate"],
)
def test_integer_flags_take_ascii_digits_only(args: list[str], tmp_path: Path) -> None:
    """Integer flags take ASCII digits only: a script's digits, "80_80" and surrounding spaces are
    a usage error (exit 2). Click's int type is Python's int(): `serve --port ٣` listened on
    port 3 (issue 9, second campaign)."""
    key_pair_files(tmp_path)
    before = snapshot(tmp_path)
    outcome = invoke(*args)
    assert outcome.code == 2, outcome.describe()
    assert_clean_stderr(outcome)
    assert "not a whole number in ASCII digits" in outcome.stderr
    assert snapshot(tmp_path) == before


def test_set_takes_ascii_digits_only(tmp_path: Path) -> None:
    key_pair_files(tmp_path)
    outcome = invoke("render", "-n", "a", "--set", "replicas=\u0663")
    assert_refused(outcome, 3, mentions=["ASCII digits"])
    assert invoke("render", "-n", "a", "--set", "replicas=3").code == 0


# ---------------------------------------------------------------------------------------------
# Hosts in the URLs we print; --request-timeout 0
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host, ok",
    [
        ("10.0.0.12", True),
        ("::1", True),
        ("node-1.example", True),
        ("x/y", False),
        ("a b", False),
        ("\x1b[31m1.2.3.4", False),
        ("\udcff", False),
        ("", False),
        ("a" * 300, False),
    ],
)
def test_is_host(host: str, ok: bool) -> None:
    from jwksdeploy.checks import is_host

    assert is_host(host) is ok


@pytest.mark.parametrize("address", ["x/y", "a b", "\udcff\udcfe", "\x1b[2J"])
def test_gateway_url_from_node_port_refuses_a_non_host(address: str) -> None:
    """`gateway --url-from node-port --address` must be a host: `x/y` printed jwksUri
    http://x/y:31000/jwks, another host and path (issue 9, second campaign)."""
    outcome = invoke(
        "gateway", "--provider", "istio", "-n", "ns", "--issuer", "https://i.example",
        "--url-from", "node-port", "--node-port", "31000", "--address", address,
    )  # fmt: skip
    assert_refused(outcome, 3, mentions=["--address"])


@pytest.mark.emulator_only
@pytest.mark.parametrize("address", ["\udcff\udcfe", "x/y z"])
def test_url_refuses_a_non_host_address(address: str, kube: Kube, tmp_path: Path) -> None:
    """Every command that builds a URL refuses an --address that is no host (exit 3), apply before
    anything is applied: argv bytes crashed printing the URL after applying (UnicodeEncodeError,
    exit 70; issue 9, second campaign)."""
    key_pair_files(tmp_path)
    ns = ["-n", kube.namespace, "--kubeconfig", kube.kubeconfig]
    refused = invoke("apply", *ns, "--no-wait", "--address", address)
    assert_refused(refused, 3, mentions=["--address"])
    assert kube.read("ConfigMap", "jwks-config") is None, "refused before anything is applied"
    assert invoke("apply", *ns, "--no-wait").code == 0
    assert_refused(invoke("url", *ns, "--address", address), 3, mentions=["--address"])


@pytest.mark.emulator_only
def test_request_timeout_zero_is_refused_before_connecting(kube: Kube, tmp_path: Path) -> None:
    """`apply --request-timeout 0` is refused before connecting, nothing applied: it applied, then
    urllib3 refused the zero timeout at the first watch, exit 70 (issue 9, second campaign)."""
    key_pair_files(tmp_path)
    before = snapshot(tmp_path)
    outcome = invoke(
        "apply", "-n", kube.namespace, "--kubeconfig", kube.kubeconfig, "--request-timeout", "0"
    )
    assert_refused(
        outcome, 3, mentions=["--request-timeout"], before=before, after=snapshot(tmp_path)
    )
    assert kube.read("ConfigMap", "jwks-config") is None, "nothing was applied"
