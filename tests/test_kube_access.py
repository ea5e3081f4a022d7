"""kube.access fills the client's Configuration as the client's own kubeconfig loader does:
the same host, credential, TLS material, verification, server name and proxy, checked field
by field against `kubernetes.config.load_kube_config_from_dict` (the reference) for each way
a kubeconfig can say them; and an exec plugin's token is fetched again when it expires."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from jwksdeploy.kube.access import access_of, configure, expired
from jwksdeploy.kubeconfig import load

from .helpers import kubeconfig


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


CA = b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
CERT = b"-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"
TLS_USER = {"client-certificate-data": b64(CERT), "client-key-data": b64(KEY), "token": "t0k"}

CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "token": ("http://127.0.0.1:1", {"token": "t0k"}, {}),
    "basic": ("http://127.0.0.1:1", {"username": "ann", "password": "pässwörd"}, {}),
    "token-over-basic": (
        "http://127.0.0.1:1",
        {"token": "t", "username": "a", "password": "b"},
        {},
    ),
    "no-user-credential": ("http://127.0.0.1:1", {"username": "only"}, {}),
    "trailing-slash": ("http://127.0.0.1:1/", {"token": "t"}, {}),
    "https-ca-and-client-cert": (
        "https://127.0.0.1:1",
        TLS_USER,
        {"certificate-authority-data": b64(CA)},
    ),
    "https-insecure": ("https://127.0.0.1:1", {"token": "t"}, {"insecure-skip-tls-verify": True}),
    "https-verify-explicit": (
        "https://127.0.0.1:1",
        {"token": "t"},
        {"insecure-skip-tls-verify": False, "tls-server-name": "kubernetes.default"},
    ),
    "http-ignores-tls-files": (
        "http://127.0.0.1:1",
        TLS_USER,
        {"certificate-authority-data": b64(CA)},
    ),
    "proxy": ("http://127.0.0.1:1", {"token": "t"}, {"proxy-url": "http://127.0.0.1:3128"}),
}
FIELDS = ("host", "api_key", "verify_ssl", "tls_server_name", "proxy")
FILES = ("ssl_ca_cert", "cert_file", "key_file")


def _loaded(tmp_path: Path, server: str, user: dict[str, Any], cluster: dict[str, Any]) -> Any:
    document = kubeconfig(server, **user)
    document["clusters"][0]["cluster"].update(cluster)
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(document))
    return load(str(path), None)


def _seen(configuration: Any) -> dict[str, Any]:
    seen = {name: getattr(configuration, name) for name in FIELDS}
    for name in FILES:
        value = getattr(configuration, name)
        seen[name] = Path(value).read_bytes() if value else None
    return seen


@pytest.mark.parametrize("case", list(CASES))
def test_the_configuration_is_the_official_loaders(case: str, tmp_path: Path) -> None:
    from kubernetes import client, config

    loaded = _loaded(tmp_path, *CASES[case])
    ours, theirs = client.Configuration(), client.Configuration()
    (tmp_path / "ours").mkdir()
    configure(ours, access_of(loaded), str(tmp_path / "ours"), lambda *_: pytest.fail("no exec"))
    config.load_kube_config_from_dict(
        loaded.document,
        context=loaded.context,
        client_configuration=theirs,
        persist_config=False,
        temp_file_path=str(tmp_path / "theirs"),
    )
    assert _seen(ours) == _seen(theirs)
    for name in FILES:
        if getattr(ours, name):
            assert Path(getattr(ours, name)).stat().st_mode & 0o777 == 0o600


def _in(minutes: int) -> str:
    now = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes)
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_expiry_is_five_minutes_early_as_the_official_loader_reads_it() -> None:
    assert expired(_in(4)) and expired(_in(-1))
    assert not expired(_in(6)) and not expired("not a time") and not expired("2030-01-01T00:00:00")


@pytest.mark.parametrize(("minutes", "runs"), [(60, 1), (2, 2)])
def test_an_exec_token_is_fetched_again_once_it_nears_its_expiry(
    minutes: int, runs: int, tmp_path: Path
) -> None:
    from kubernetes import client

    exec_config = {"apiVersion": "client.authentication.k8s.io/v1", "command": "plugin"}
    loaded = _loaded(tmp_path, "http://127.0.0.1:1", {"exec": exec_config}, {})
    calls: list[dict[str, Any]] = []

    def run(plugin: dict[str, Any], cluster: dict[str, Any]) -> dict[str, Any]:
        calls.append(plugin)
        return {"token": f"token-{len(calls)}", "expirationTimestamp": _in(minutes)}

    configuration = client.Configuration()
    configure(configuration, access_of(loaded), str(tmp_path), run)
    sent = configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
    assert len(calls) == runs and calls[0]["command"] == "plugin"
    assert sent == f"Bearer token-{runs}"


def test_a_failing_exec_plugin_is_one_warning_and_the_next_credential_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kubernetes import client

    user = {"exec": {"apiVersion": "v1", "command": "p"}, "username": "a", "password": "b"}
    loaded = _loaded(tmp_path, "http://127.0.0.1:1", user, {})

    def run(plugin: dict[str, Any], cluster: dict[str, Any]) -> dict[str, Any]:
        raise OSError("exec: process returned 1")

    configuration = client.Configuration()
    configure(configuration, access_of(loaded), str(tmp_path), run)
    assert configuration.api_key["BearerToken"] == "Basic YTpi"
    assert capsys.readouterr().err == (
        "warning: the Kubernetes client says: exec: process returned 1\n"
    )
