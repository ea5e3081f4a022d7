"""Issue 22 items 4, 8, 9 and 10: the kubeconfig's secrets never reach the terminal, a killed
cluster command leaves no client key behind, malformed inputs and answers are clean errors,
and no terminal control character from a file or the cluster is printed raw.

Every server here listens on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jwksdeploy import rotation, rotation_record
from jwksdeploy.kube.views import check_object

from .helpers import corrupt, key_pair_files, kubeconfig
from .kube import Kube
from .refusals import assert_clean_stderr, assert_refused, invoke
from .servers import self_signed_certificate

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
    corrupt(kube, *LIVE_NULLS[case])
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
        rotation_record.record_when(rotation.END_OF_CALENDAR + 5, "published")
    assert json.loads(json.dumps(rotation.when(0))) == "1970-01-01T00:00:00Z"


# ---------------------------------------------------------------------------------------------
# 22.4: no kubeconfig secret in any spelling reaches the terminal
# ---------------------------------------------------------------------------------------------

TOKEN = "tok-secret-9f2c41d8e07b"
EXEC_TOKEN = "exec-token-5a7b93c1d2e4"
ARG_SECRET = "arg-secret-3c9e1a7f"
ENV_SECRET = "env-secret-b81d44e2"
URL_PASSWORD = "url-pass-77c1e9a0"
CLUSTER_COMMANDS = {
    "url": ["url", "-n", "x", "--request-timeout", "2s"],
    "status": ["status", "-n", "x", "--request-timeout", "2s"],
    "delete": ["delete", "-n", "x", "--request-timeout", "2s"],
    "verify": ["verify", "-n", "x"],
    "gateway": ["gateway", "-n", "x", "--provider", "envoy"],
    "rotate-status": ["rotate", "status", "-n", "x"],
}


@pytest.fixture
def keys_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key files the key-reading commands look for, in the working directory."""
    monkeypatch.chdir(tmp_path)
    key_pair_files(tmp_path)


def _spelled(secret: str) -> list[str]:
    """The ways a message could show `secret` (what the old scrubber missed)."""
    import base64

    raw = secret.encode()
    return [
        secret,
        repr(secret)[1:-1],
        repr(raw)[2:-1],
        base64.b64encode(raw).decode(),
        base64.b64encode(f"Bearer {secret}".encode()).decode(),
    ]


def _write(tmp_path: Path, document: dict[str, Any]) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def _plugin(tmp_path: Path, behaviour: str) -> dict[str, Any]:
    """An exec credential plugin: `token` prints a token ending in a newline, `fail` echoes
    its arguments and environment to stderr and exits 1 (as real plugins' errors do)."""
    import sys

    script = tmp_path / "credential-plugin"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "if sys.argv[1] == 'fail':\n"
        "    sys.stderr.write(f'denied: {sys.argv[1:]} {os.environ.get(\"PLUGIN_SECRET\")}\\n')\n"
        "    sys.exit(1)\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1',\n"
        "    'kind': 'ExecCredential', 'status': {'token': sys.argv[2] + '\\n'}}))\n"
    )
    script.chmod(0o755)
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": str(script),
            "args": [behaviour, EXEC_TOKEN if behaviour == "token" else f"--key={ARG_SECRET}"],
            "env": [{"name": "PLUGIN_SECRET", "value": ENV_SECRET}],
            "interactiveMode": "Never",
        }
    }


def _assert_never_shown(outcome: Any, *secrets: str) -> None:
    for secret in secrets:
        for spelling in _spelled(secret):
            for stream in (outcome.stdout, outcome.stderr):
                assert spelling not in stream, f"{spelling!r} shown\n{outcome.describe()}"


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\t", "\n\n", "\x00", "é"])
def test_a_token_no_header_can_carry_is_refused_without_its_value(
    suffix: str, tmp_path: Path, keys_here: None
) -> None:
    """Finding: `token: |` sent "Bearer <token>\\n" and printed the client's "Invalid header
    value b'Bearer <token>\\n'" whole. client-go refuses it too (net/http: invalid header
    field value), so it is refused when the kubeconfig is read, naming the field."""
    path = _write(tmp_path, kubeconfig("http://127.0.0.1:9", token=TOKEN + suffix))
    for args in CLUSTER_COMMANDS.values():
        outcome = invoke(*args, "--kubeconfig", path)
        assert_refused(outcome, 6, mentions=["token"])
        assert "line break" in outcome.stderr, outcome.describe()
        _assert_never_shown(outcome, TOKEN)


def test_a_block_scalar_token_in_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
        f"users:\n- name: u\n  user:\n    token: |\n      {TOKEN}\n"
    )
    outcome = invoke("url", "-n", "x", "--kubeconfig", str(path))
    assert_refused(outcome, 6, mentions=["token: |-"])
    _assert_never_shown(outcome, TOKEN)


def test_an_exec_plugin_token_the_client_cannot_send_is_not_printed(
    tmp_path: Path, keys_here: None
) -> None:
    """The plugin's token is in no file: the client's header error is scrubbed of what it
    sends."""
    from .servers import closed_port

    document = kubeconfig(f"http://127.0.0.1:{closed_port()}", **_plugin(tmp_path, "token"))
    path = _write(tmp_path, document)
    for args in CLUSTER_COMMANDS.values():
        outcome = invoke(*args, "--kubeconfig", path)
        assert_refused(outcome, 6)
        _assert_never_shown(outcome, EXEC_TOKEN)


def test_a_failing_exec_plugin_shows_neither_its_arguments_nor_its_environment(
    tmp_path: Path,
) -> None:
    """Finding: the client logs the plugin's stderr with logging.error(), which printed it raw
    (and turned on every library's log lines)."""
    from .refusals import spawn
    from .servers import closed_port

    document = kubeconfig(f"http://127.0.0.1:{closed_port()}", **_plugin(tmp_path, "fail"))
    path = _write(tmp_path, document)
    # a process: in-process, pytest's own log handler would hide what a user sees
    outcome = spawn("url", "-n", "x", "--kubeconfig", path, "--request-timeout", "2s", cwd=tmp_path)
    assert_refused(outcome, 6)
    _assert_never_shown(outcome, ARG_SECRET, ENV_SECRET)
    assert "Retrying" not in outcome.stderr, outcome.describe()  # no urllib3 log lines


def test_a_server_url_with_a_password_is_not_printed(tmp_path: Path, keys_here: None) -> None:
    from .servers import closed_port

    server = f"http://admin:{URL_PASSWORD}@127.0.0.1:{closed_port()}"
    path = _write(tmp_path, kubeconfig(server, token=TOKEN))
    for args in CLUSTER_COMMANDS.values():
        outcome = invoke(*args, "--kubeconfig", path)
        assert_refused(outcome, 6)
        _assert_never_shown(outcome, URL_PASSWORD, f"admin:{URL_PASSWORD}", TOKEN)


SPELLINGS = [
    lambda s: s,
    lambda s: f"Invalid header value {f'Bearer {s}'.encode()!r}",
    lambda s: repr(s),
    lambda s: json.dumps({"token": s}),
    lambda s: __import__("base64").b64encode(s.encode()).decode(),
    lambda s: __import__("urllib.parse").parse.quote(s, safe=""),
    lambda s: f"Authorization: Bearer {s.strip()}",
]


@given(
    secret=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8, max_size=40
    ),
    tail=st.sampled_from(["", "\n", " ", "\r\n", "\t"]),
    spelling=st.sampled_from(range(len(SPELLINGS))),
)
@settings(max_examples=300, deadline=None)
def test_property_scrub_blanks_every_spelling(secret: str, tail: str, spelling: int) -> None:
    from jwksdeploy.kubeconfig import REDACTED, scrub

    assume(secret not in f"cannot talk: (see above) {REDACTED}")
    text = f"cannot talk: {SPELLINGS[spelling](secret + tail)} (see above)"
    shown = scrub(text, [secret + tail])
    assert secret not in shown
    assert repr(secret)[1:-1] not in shown


# ---------------------------------------------------------------------------------------------
# 22.10: no terminal control character from a file or the cluster is printed raw
# ---------------------------------------------------------------------------------------------

EVIL = "\x1b[2J\x1b]0;owned\x07\x9b31m\r\x7f"
RAW_CONTROLS = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))]


def _assert_no_raw_controls(outcome: Any) -> None:
    for name, stream in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
        found = sorted({c for c in stream if c in RAW_CONTROLS})
        assert not found, f"raw {found!r} on {name}\n{outcome.describe()}"


def _evil_pair(tmp_path: Path, kid: str) -> None:
    from .helpers import Signer

    key_pair_files(tmp_path, Signer(kid))


def test_rotate_status_escapes_kids_and_the_window_origin_from_local_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _evil_pair(tmp_path, f"kid{EVIL}")
    start = invoke("rotate", "start", "--local")
    assert start.code == 0, start.describe()
    mirror = tmp_path / "jwks.private.rotation.json"
    document = json.loads(mirror.read_text())
    document["state"]["cacheWindowFrom"] = f"gateway{EVIL}"
    mirror.write_text(json.dumps(document))
    for output in ([], ["-o", "json"]):
        outcome = invoke("rotate", "status", "--local", *output)
        assert_clean_stderr(outcome)
        _assert_no_raw_controls(outcome)
    shown = invoke("rotate", "status", "--local")
    assert "kid\\x1b[2J" in shown.stdout and "gateway\\x1b[2J" in shown.stdout, shown.describe()


def test_jwks_check_escapes_the_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    key_pair_files(tmp_path)
    evil = f"jwks{EVIL.replace(chr(0), '')}.json"
    (tmp_path / "jwks.json").rename(tmp_path / evil)
    for output in ([], ["-o", "json"]):
        outcome = invoke("jwks", "check", evil, *output)
        assert outcome.code == 0, outcome.describe()
        _assert_no_raw_controls(outcome)
    assert "jwks\\x1b[2J" in invoke("jwks", "check", evil).stdout


@pytest.mark.emulator_only
def test_cluster_text_is_escaped(
    kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`url` printed a node name from the API server raw; `rotate status` the record's kid and
    cacheWindowFrom from the ConfigMap's annotation."""
    monkeypatch.chdir(tmp_path)
    public, _ = key_pair_files(tmp_path)
    ns = ["-n", kube.namespace, "--kubeconfig", kube.kubeconfig]
    assert invoke("apply", *ns, "--no-wait").code == 0
    state = {
        "cacheWindowFrom": f"istio/gw{EVIL}",
        "cacheWindowSeconds": 1200,
        "keys": [{"kid": f"pair-1{EVIL}", "phase": "active"}],
        "maxTokenTtlSeconds": 3600,
    }

    def edit(obj: dict[str, Any]) -> None:
        obj["metadata"]["name"] = f"node{EVIL}"

    def annotate(obj: dict[str, Any]) -> None:
        annotations = obj["metadata"].setdefault("annotations", {})
        annotations[rotation_record.STATE_ANNOTATION] = json.dumps(state)

    corrupt(kube, "nodes", "node-1", edit)
    corrupt(kube, "configmaps", "jwks-config", annotate)
    for args in (
        ["url", *ns],
        ["status", *ns, "--jwks", str(public)],
        ["rotate", "status", *ns],
        ["rotate", "status", *ns, "-o", "json"],
    ):
        outcome = invoke(*args)
        assert_clean_stderr(outcome)
        _assert_no_raw_controls(outcome)


@given(kid=st.text(min_size=1, max_size=12), origin=st.text(min_size=1, max_size=12))
@settings(max_examples=60, deadline=None)
def test_property_rotate_status_prints_no_raw_control_character(kid: str, origin: str) -> None:
    import tempfile

    kid = kid.replace("\x00", "") or "k"
    with tempfile.TemporaryDirectory() as folder, _cwd(Path(folder)):
        _evil_pair(Path(folder), kid)
        state = {
            "pendingFrom": None,
            "state": {
                "cacheWindowFrom": origin,
                "cacheWindowSeconds": 1200,
                "keys": [{"kid": kid, "phase": "active"}],
                "maxTokenTtlSeconds": 3600,
            },
        }
        (Path(folder) / "jwks.private.rotation.json").write_text(json.dumps(state))
        for args in (["rotate", "status", "--local"], ["jwks", "check", "jwks.json"]):
            outcome = invoke(*args)
            assert outcome.code != 70, outcome.describe()
            _assert_no_raw_controls(outcome)


def _cwd(path: Path) -> Any:
    import contextlib
    import os

    @contextlib.contextmanager
    def inside() -> Any:
        before = os.getcwd()
        os.chdir(path)
        try:
            yield
        finally:
            os.chdir(before)

    return inside()


def test_data_output_is_unchanged_and_json_stays_json() -> None:
    """-o json/yaml are documents: printed as serialized, C1 in JSON as a \\u escape."""
    import click
    from click.testing import CliRunner

    from jwksdeploy.cli.common import echo

    @click.command()
    def show() -> None:
        echo(json.dumps({"k": "a\x85b\x7f"}, ensure_ascii=False), data="json")
        echo("key: value\n", data="yaml", nl=False)
        echo("kid a\x1b[2Jb\tc")

    out = CliRunner().invoke(show).output
    lines = out.splitlines()
    assert json.loads(lines[0]) == {"k": "a\x85b\x7f"}
    assert "\x85" not in lines[0] and "\x7f" not in lines[0]
    assert lines[1] == "key: value"
    assert lines[2] == "kid a\\x1b[2Jb\tc"


# ---------------------------------------------------------------------------------------------
# 22.8: a killed cluster command leaves no client key on disk
# ---------------------------------------------------------------------------------------------


class _MutualTls:
    """An API server stand-in on 127.0.0.1 that requires a client certificate, and a
    kubeconfig that inlines that certificate and its key as data (as `kind` and most cloud
    CLIs write them)."""

    def __init__(self, folder: Path) -> None:
        import base64
        import ssl

        self.server_cert, server_key = self_signed_certificate("127.0.0.1")
        self.client_cert, self.client_key = self_signed_certificate("jwksdeploy-test-client")
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        (folder / "server.pem").write_bytes(self.server_cert)
        (folder / "server-key.pem").write_bytes(server_key)
        self.context.load_cert_chain(folder / "server.pem", folder / "server-key.pem")
        (folder / "server-key.pem").unlink()
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(cadata=self.client_cert.decode())
        self.folder = folder
        self.encode = lambda data: base64.b64encode(data).decode()

    def kubeconfig(self, port: int) -> str:
        document = kubeconfig(
            f"https://127.0.0.1:{port}",
            **{
                "client-certificate-data": self.encode(self.client_cert),
                "client-key-data": self.encode(self.client_key),
            },
        )
        document["clusters"][0]["cluster"]["certificate-authority-data"] = self.encode(
            self.server_cert
        )
        return _write(self.folder, document)

    def key_needles(self) -> list[bytes]:
        body = b"".join(self.client_key.splitlines()[1:-1])
        return [self.client_key, body[:40], body[-40:]]


def _files_holding(root: Path, needles: list[bytes]) -> list[str]:
    import os

    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            with contextlib.suppress(OSError):
                data = path.read_bytes()
                if any(needle in data for needle in needles):
                    found.append(str(path))
    return found


def test_client_certificates_work_from_memory(tmp_path: Path) -> None:
    """The client key is loaded into the TLS context at connect time and its file removed:
    requests still authenticate with it (the server refuses a handshake without it)."""
    from .refusals import process_env, spawn
    from .servers import http_answer, raw_server

    tls = _MutualTls(tmp_path)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    status = json.dumps({"kind": "Status", "apiVersion": "v1", "code": 404}).encode()
    seen: list[bytes] = []

    def not_found(conn: Any, head: bytes) -> None:
        seen.append(head)
        conn.sendall(http_answer("404 Not Found", status, "Content-Type: application/json"))

    with raw_server(not_found, tls=tls.context) as port:
        env = process_env(tmp_path, TMPDIR=str(private_tmp))
        outcome = spawn(
            "url", "-n", "x", "--kubeconfig", tls.kubeconfig(port), cwd=tmp_path, env=env
        )
    assert seen, outcome.describe()  # the handshake with the client certificate succeeded
    assert outcome.code == 9, outcome.describe()  # the Service does not exist
    assert _files_holding(private_tmp, tls.key_needles()) == []


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_killed_cluster_command_leaves_no_client_key(signal_name: str, tmp_path: Path) -> None:
    """Finding: the client writes client-key-data to a temp file it removes only at a normal
    exit; a SIGTERM (a CI timeout) left a copy of the private key in $TMPDIR."""
    import signal
    import subprocess
    import sys
    import threading

    from .refusals import process_env
    from .servers import raw_server

    tls = _MutualTls(tmp_path)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    arrived, release = threading.Event(), threading.Event()
    during: list[list[str]] = []

    def stall(conn: Any, head: bytes) -> None:
        during.append(_files_holding(private_tmp, tls.key_needles()))
        arrived.set()
        release.wait(120)

    with raw_server(stall, tls=tls.context) as port:
        argv = ["url", "-n", "x", "--request-timeout", "300s", "--kubeconfig"]
        process = subprocess.Popen(
            [sys.executable, "-m", "jwksdeploy", *argv, tls.kubeconfig(port)],
            cwd=tmp_path,
            env=process_env(tmp_path, TMPDIR=str(private_tmp)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert arrived.wait(120), "the command never reached the server"
            process.send_signal(getattr(signal, signal_name))
            _, stderr = process.communicate(timeout=120)
        finally:
            release.set()
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode != 0
    assert b"Traceback" not in stderr, stderr
    assert during == [[]], during  # not even while the request ran
    assert _files_holding(private_tmp, tls.key_needles()) == []
    assert list(private_tmp.iterdir()) == []


@given(
    core=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=12, max_size=40
    ),
    tail=st.sampled_from(["\n", "\r\n", " ", "\t", "\x0b", "\x00", "\x85", "\u2028", "é"]),
    where=st.sampled_from(["token", "server", "exec-arg"]),
)
@settings(max_examples=40, deadline=None)
def test_property_kubeconfig_secrets_never_reach_the_terminal(
    core: str, tail: str, where: str
) -> None:
    """A secret in any of these places, with any of these tails, is never printed in any of
    the spellings a message could carry."""
    import tempfile
    import urllib.parse

    from .servers import closed_port

    assume(core not in "<redacted>")
    with tempfile.TemporaryDirectory() as folder:
        port = closed_port()
        if where == "server":
            password = urllib.parse.quote(core + tail, safe="")
            document = kubeconfig(f"http://admin:{password}@127.0.0.1:{port}", token="t0ken")
            shown = [password, core]
        else:
            document = kubeconfig(f"http://127.0.0.1:{port}", token=core + tail)
            shown = [core]
            if where == "exec-arg":
                document["users"][0]["user"] = {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "/nonexistent/credential-plugin",
                        "args": [f"--token={core}{tail}"],
                        "interactiveMode": "Never",
                    }
                }
        path = _write(Path(folder), document)
        outcome = invoke("url", "-n", "x", "--kubeconfig", path, "--request-timeout", "2s")
        assert outcome.code == 6, outcome.describe()
        assert_clean_stderr(outcome)
        _assert_never_shown(outcome, *shown)


def test_exec_plugin_words_are_not_secrets_but_its_values_are() -> None:
    """`command: kubectl` with `args: [oidc-login, get-token, ...]` must not blank the words
    kubectl, get-token in every message; a path, a --flag=VALUE's value and env values are."""
    from jwksdeploy.kubeconfig import secrets_of

    found = secrets_of(
        {
            "users": [
                {
                    "user": {
                        "exec": {
                            "command": "kubectl",
                            "args": ["oidc-login", "get-token", "--secret=S3cr3t-v4lue"],
                            "env": [{"name": "A", "value": "env-value-1"}],
                        }
                    }
                },
                {"user": {"exec": {"command": "/home/alice/bin/plugin"}}},
            ]
        }
    )
    assert "kubectl" not in found and "get-token" not in found
    assert {"S3cr3t-v4lue", "--secret=S3cr3t-v4lue", "env-value-1"} <= set(found)
    assert "/home/alice/bin/plugin" in found
