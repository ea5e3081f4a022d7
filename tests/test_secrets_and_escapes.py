"""Issue 22 items 4, 8, 9 and 10: the kubeconfig's secrets never reach the terminal, a killed
cluster command leaves no client key behind, malformed inputs and answers are clean errors,
and no terminal control character from a file or the cluster is printed raw.

Every server here listens on 127.0.0.1 only."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from jwksdeploy import rotation
from jwksdeploy.kubeshape import check_object

from .hostile import assert_clean_stderr, assert_refused, invoke, key_pair_files, kubeconfig
from .kube import Kube
from .test_hostile_more import _corrupt

# ---------------------------------------------------------------------------------------------
# 22.9: crashes where a clean error is due
# ---------------------------------------------------------------------------------------------

PROXY_PASSWORD = "proxy-pass-8e1f"
BAD_PROXIES = {
    "not-a-url": "!!!",
    "no-host": "http://",
    "ftp": "ftp://proxy.example",
    "bad-ipv6": f"http://u:{PROXY_PASSWORD}@[::1",
    "bad-port": f"http://u:{PROXY_PASSWORD}@127.0.0.1:99999",
    "number": 3128,
}


@pytest.mark.parametrize("case", sorted(BAD_PROXIES))
def test_unusable_proxy_url_is_a_clean_error(case: str, tmp_path: Path) -> None:
    document = kubeconfig("http://127.0.0.1:9", token="t0ken-value")
    document["clusters"][0]["cluster"]["proxy-url"] = BAD_PROXIES[case]
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    outcome = invoke("url", "-n", "x", "--kubeconfig", str(path), "--request-timeout", "2s")
    assert_refused(outcome, 6, secrets=[PROXY_PASSWORD, "t0ken-value"], mentions=["proxy-url"])


@pytest.mark.parametrize(
    "obj",
    [
        {"spec": None},
        {"status": None},
        {"metadata": None},
        {"spec": {"ports": None}},
        {"spec": {"ports": [None]}},
        {"spec": {"type": None}},
        {"metadata": {"annotations": None}},
        {"status": {"loadBalancer": None}},
    ],
)
def test_null_where_the_api_writes_a_value_is_malformed(obj: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="is null, not a"):
        check_object(obj, "Service")


LIVE_NULLS: dict[str, tuple[str, str, Callable[[dict[str, Any]], None]]] = {
    "service-spec": ("services", "remote-jwks-go", lambda o: o.update(spec=None)),
    "service-port": ("services", "remote-jwks-go", lambda o: o["spec"].update(ports=[None])),
    "node-status": ("nodes", "node-1", lambda o: o.update(status=None)),
    "node-address": ("nodes", "node-1", lambda o: o["status"].update(addresses=[None])),
    "deployment-status": ("deployments", "remote-jwks-go", lambda o: o.update(status=None)),
    "configmap-data": ("configmaps", "jwks-config", lambda o: o.update(data=None)),
}


@pytest.mark.emulator_only
@pytest.mark.parametrize("case", sorted(LIVE_NULLS))
def test_live_nulls_are_malformed_answers(
    case: str, kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding: `spec: null` on the Service made status, url, gateway -n and verify -n exit
    70 (AttributeError); now every reader is exit 6 naming the answer."""
    monkeypatch.chdir(tmp_path)
    public, _ = key_pair_files(tmp_path)
    setup = invoke("apply", "-n", kube.namespace, "--kubeconfig", kube.kubeconfig, "--no-wait")
    assert setup.code == 0, setup.describe()
    _corrupt(kube, *LIVE_NULLS[case])
    ns = ["-n", kube.namespace, "--kubeconfig", kube.kubeconfig]
    commands = {
        "status": ["status", *ns, "--jwks", str(public)],
        "url": ["url", *ns],
        "gateway": ["gateway", "--provider", "istio", *ns, "--issuer", "https://i.example"],
        "verify": ["verify", *ns],
        "rotate-status": ["rotate", "status", *ns],
    }
    for args in commands.values():
        outcome = invoke(*args)
        assert_clean_stderr(outcome)
        if outcome.code not in (0, 1, 11, 13):  # a command that never reads the object
            assert_refused(outcome, 6, mentions=["which no Kubernetes API server sends"])


@pytest.mark.parametrize("now", ["9999-12-31T23:59:59Z", "253402300799", "253402300000"])
def test_a_clock_at_the_end_of_9999_is_no_crash(
    now: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding: JWKSDEPLOY_NOW near the end of 9999 made `rotate start|status` exit 70
    (ValueError: year 10000 is out of range) once a window was added to it."""
    monkeypatch.chdir(tmp_path)
    key_pair_files(tmp_path)
    env = {"JWKSDEPLOY_NOW": now}
    for args in (["start"], ["status"], ["run"], ["promote"], ["finish"]):
        outcome = invoke("rotate", *args, "--local", env=env)
        assert_clean_stderr(outcome)
        assert outcome.code in (0, 12, 13), outcome.describe()
    status = invoke("rotate", "status", "--local", env=env)
    assert "after 9999-12-31T23:59:59Z" in status.stdout, status.describe()


def test_times_outside_the_calendar() -> None:
    assert rotation.when(rotation.END_OF_CALENDAR - 1) == "9999-12-31T23:59:59Z"
    assert rotation.when(rotation.END_OF_CALENDAR) == "after 9999-12-31T23:59:59Z"
    assert rotation.when(float("inf")) == "after 9999-12-31T23:59:59Z"
    from jwksdeploy.errors import InputError

    with pytest.raises(InputError, match="1970-9999"):
        rotation.record_when(rotation.END_OF_CALENDAR + 5, "published")
    assert json.loads(json.dumps(rotation.when(0))) == "1970-01-01T00:00:00Z"
