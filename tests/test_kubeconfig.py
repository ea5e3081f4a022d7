"""Every command that reads a kubeconfig (url, status, delete, apply, verify -n, gateway -n,
and render for its default namespace) refuses a hostile one with exit 6 and one clean line,
leaking no token or client key: bad YAML, wrong shapes, missing or special files, endless
reads, a context namespace written as YAML 1.1 would misread it, a server that is no
Kubernetes API and TLS it cannot trust. Provenance: issue 9 (repro 13 is here too)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .helpers import b64, billion_laughs, kubeconfig, marker, valid_jwks
from .refusals import (
    Outcome,
    assert_clean_stderr,
    assert_refused,
    each_failure,
    invoke,
    process_env,
    snapshot,
    spawn,
    spawn_many,
)
from .servers import closed_port, http_answer, raw_server, self_signed_tls

pytestmark = pytest.mark.usefixtures("in_tmp")


KUBE_TOKEN = marker("kube-token")
CLIENT_KEY = marker("client-key")


def _yaml(document: Any) -> bytes:
    return json.dumps(document).encode()  # JSON is YAML, and keeps the structure exact


def _edited(server: str, edit: Callable[[dict[str, Any]], None]) -> bytes:
    document = kubeconfig(server, token=KUBE_TOKEN)
    edit(document)
    return _yaml(document)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit that sets a dotted path (list indexes as numbers), or deletes it for ...."""

    def edit(document: dict[str, Any]) -> None:
        target: Any = document
        parts = path.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is ...:
            del target[parts[-1]]
        else:
            target[parts[-1]] = value

    return edit


def hostile_kubeconfigs(tmp_path: Path, port: int) -> dict[str, bytes]:
    http = f"http://127.0.0.1:{port}"
    https = f"https://127.0.0.1:{port}"
    folder = tmp_path / "a-directory"
    folder.mkdir(exist_ok=True)
    tls_user = {"client-certificate-data": "%%%", "client-key-data": CLIENT_KEY}
    return {
        "not-yaml": b"{{{ : : ]]\n\t- [",
        "list-top-level": b"- clusters\n- users\n",
        "scalar-top-level": b"42\n",
        "string-top-level": b"just text\n",
        "empty": b"",
        "non-utf8": b"apiVersion: v1\nkind: \xff\xfe\n",
        "python-tag": b"clusters: !!python/object/apply:os.system ['true']\n",
        "deep-nesting": b"clusters: " + b"[" * 500 + b"]" * 500 + b"\n",
        "duplicate-key": _yaml(kubeconfig(http, token=KUBE_TOKEN))[:-1]
        + b', "current-context": "x"}',
        "no-contexts": _edited(http, lambda d: (d.pop("contexts"), d.pop("current-context"))),
        "current-context-missing": _edited(http, _set("current-context", "nope")),
        "current-context-list": _edited(http, _set("current-context", ["x"])),
        "context-missing-cluster": _edited(http, _set("contexts.0.context.cluster", "nope")),
        "context-null": _edited(http, _set("contexts.0.context", None)),
        "context-name-list": _edited(http, _set("contexts.0.name", ["x"])),
        "cluster-without-server": _edited(http, _set("clusters.0.cluster", {})),
        "server-not-a-url": _edited(http, _set("clusters.0.cluster.server", "not a url")),
        "server-bad-ipv6": _edited(http, _set("clusters.0.cluster.server", "http://[::1")),
        "server-bad-port": _edited(
            http, _set("clusters.0.cluster.server", "http://127.0.0.1:99999")
        ),
        "server-number": _edited(http, _set("clusters.0.cluster.server", 8080)),
        "clusters-mapping": _edited(http, _set("clusters", {"c": {"server": http}})),
        "users-strings": _edited(http, _set("users", ["u"])),
        "user-null": _edited(http, _set("users.0.user", None)),
        "contexts-null": _edited(http, _set("contexts", None)),
        "bad-ca-data": _edited(
            https, _set("clusters.0.cluster.certificate-authority-data", "!!!not base64!!!")
        ),
        "ca-data-not-pem": _edited(
            https, _set("clusters.0.cluster.certificate-authority-data", b64(b"hello"))
        ),
        "ca-file-missing": _edited(
            https, _set("clusters.0.cluster.certificate-authority", "/nope/ca.pem")
        ),
        "ca-file-directory": _edited(
            https, _set("clusters.0.cluster.certificate-authority", str(folder))
        ),
        "bad-client-cert-data": _edited(https, _set("users.0.user", tls_user)),
        "token-file-missing": _edited(http, _set("users.0.user", {"tokenFile": "/nope/token"})),
        "token-file-directory": _edited(http, _set("users.0.user", {"tokenFile": str(folder)})),
        "token-number": _edited(http, _set("users.0.user", {"token": 12345})),
        "exec-missing-command": _edited(
            http,
            _set(
                "users.0.user",
                {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": "/nope/credential-helper",
                        "interactiveMode": "Never",
                    }
                },
            ),
        ),
        "huge-file": b"# " + b"x" * (5 << 20) + b"\n" + _yaml(kubeconfig(http)),
    }


def kube_commands(jwks: str) -> dict[str, list[str]]:
    return {
        "url": ["url", "-n", "x", "--request-timeout", "5s"],
        "url-default-namespace": ["url", "--request-timeout", "5s"],
        "status": ["status", "-n", "x", "--request-timeout", "5s"],
        "delete": ["delete", "-n", "x", "--request-timeout", "5s"],
        "apply": ["apply", "--jwks", jwks, "-n", "x", "--no-wait", "--request-timeout", "5s"],
        "verify": ["verify", "-n", "x"],
        "gateway": ["gateway", "-n", "x", "--provider", "envoy"],
    }


HOSTILE_KUBECONFIG_IDS = list(hostile_kubeconfigs(Path("/tmp"), 1))


@pytest.mark.parametrize("case", HOSTILE_KUBECONFIG_IDS)
def test_every_cluster_command_refuses_a_hostile_kubeconfig(
    case: str, tmp_path: Path, jwks_file: Path
) -> None:
    """Every command that reads a kubeconfig: exit 6 with one clean line, nothing leaked."""
    path = tmp_path / "kubeconfig"
    path.write_bytes(hostile_kubeconfigs(tmp_path, closed_port())[case])
    before = snapshot(tmp_path)

    def check(args: list[str]) -> Callable[[], None]:
        def run_one() -> None:
            out = invoke(*args, "--kubeconfig", str(path))
            assert_refused(
                out, 6, secrets=[KUBE_TOKEN, CLIENT_KEY], before=before, after=snapshot(tmp_path)
            )

        return run_one

    each_failure({name: check(args) for name, args in kube_commands(str(jwks_file)).items()})


def test_a_hostile_kubeconfig_in_the_environment_is_refused(
    tmp_path: Path, jwks_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$KUBECONFIG (a list, merged) is read the same way as --kubeconfig."""
    cases = hostile_kubeconfigs(tmp_path, closed_port())
    checks = {}
    for case in ("not-yaml", "list-top-level", "deep-nesting", "bad-ca-data", "users-strings"):
        path = tmp_path / f"kubeconfig-{case}"
        path.write_bytes(cases[case])

        def run_one(path: Path = path) -> None:
            monkeypatch.setenv("KUBECONFIG", f"{path}:{tmp_path / 'other'}")
            assert_refused(invoke("url", "-n", "x"), 6, secrets=[KUBE_TOKEN])
            assert_refused(invoke("url"), 6, secrets=[KUBE_TOKEN])

        checks[case] = run_one
    each_failure(checks)


def test_missing_kubeconfig_says_it_does_not_exist(tmp_path: Path, jwks_file: Path) -> None:
    for name, args in kube_commands(str(jwks_file)).items():
        out = invoke(*args, "--kubeconfig", "/nope/config")
        assert_refused(out, 6, mentions=["does not exist|no such file|not found"])
        assert "/nope/config" in out.stderr, f"{name}: {out.describe()}"


def test_kubeconfig_that_is_a_directory(tmp_path: Path, jwks_file: Path) -> None:
    for args in kube_commands(str(jwks_file)).values():
        assert_refused(invoke(*args, "--kubeconfig", str(tmp_path)), 6, mentions=["directory"])


def _endless_kubeconfigs(tmp_path: Path, port: int) -> dict[str, tuple[str, list[str]]]:
    """(kubeconfig path, extra args) for kubeconfigs that never end or never finish expanding."""
    http = f"http://127.0.0.1:{port}"
    token_zero = tmp_path / "kubeconfig-token-zero"
    token_zero.write_bytes(_yaml(kubeconfig(http, tokenFile="/dev/zero")))
    ca_zero = tmp_path / "kubeconfig-ca-zero"
    https = kubeconfig(f"https://127.0.0.1:{port}")
    https["clusters"][0]["cluster"]["certificate-authority"] = "/dev/zero"
    ca_zero.write_bytes(_yaml(https))
    laughs = tmp_path / "kubeconfig-laughs"
    laughs.write_text(
        billion_laughs("preferences")
        + "apiVersion: v1\nkind: Config\n"
        + f"clusters: [{{name: c, cluster: {{server: '{http}'}}}}]\n"
        + "users: [{name: u, user: {token: t}}]\n"
        + "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    return {
        "path-dev-zero": ("/dev/zero", []),
        "token-file-dev-zero": (str(token_zero), []),
        "ca-file-dev-zero": (str(ca_zero), []),
        "billion-laughs": (str(laughs), []),
    }


ENDLESS_CASES = ["path-dev-zero", "token-file-dev-zero", "ca-file-dev-zero", "billion-laughs"]
ENDLESS_COMMANDS = ("url", "apply", "gateway")


@pytest.fixture(scope="module")
def endless_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Outcome]]:
    """url, apply and gateway on each endless kubeconfig, as processes (a hang or an unbounded
    read must not take the test runner with it), all started together: each imports the
    Kubernetes client, a second or more on a loaded machine, so the suite waits once."""
    tmp_path = tmp_path_factory.mktemp("endless")
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(valid_jwks())
    kubeconfigs = _endless_kubeconfigs(tmp_path, closed_port())
    commands = kube_commands(str(jwks))
    runs = {
        (case, name): [*commands[name], "--kubeconfig", kubeconfigs[case][0], *kubeconfigs[case][1]]
        for case in ENDLESS_CASES
        for name in ENDLESS_COMMANDS
    }
    # The bound only catches a hang (which never ends): twelve processes on a loaded machine
    # took 30 s once, so it is generous.
    outcomes = dict(zip(runs, spawn_many(list(runs.values()), tmp_path, timeout=120), strict=True))
    return {case: [outcomes[case, name] for name in ENDLESS_COMMANDS] for case in ENDLESS_CASES}


@pytest.mark.parametrize("case", ENDLESS_CASES)
def test_endless_kubeconfig_is_refused(
    case: str, endless_outcomes: dict[str, list[Outcome]]
) -> None:
    for out in endless_outcomes[case]:
        assert_refused(out, 6)


# ---------------------------------------------------------------------------------------------
# The server a kubeconfig names: no Kubernetes API, TLS that cannot be trusted
# ---------------------------------------------------------------------------------------------


def _write_kubeconfig(tmp_path: Path, server: str, **user: Any) -> str:
    path = tmp_path / "kubeconfig"
    path.write_bytes(_yaml(kubeconfig(server, **(user or {"token": KUBE_TOKEN}))))
    return str(path)


def _not_found(conn: socket.socket, head: bytes) -> None:
    conn.sendall(http_answer("404 Not Found", b"404 page not found\n", "Content-Type: text/plain"))


def test_plain_http_server_is_not_a_kubernetes_api(tmp_path: Path, jwks_file: Path) -> None:
    """404 to everything means "not a Kubernetes API", never "namespace does not exist"."""
    with raw_server(_not_found) as port:
        k = ["--kubeconfig", _write_kubeconfig(tmp_path, f"http://127.0.0.1:{port}")]
        checks = {}
        for name, args in kube_commands(str(jwks_file)).items():

            def run_one(args: list[str] = args) -> None:
                out = invoke(*args, *k)
                assert_refused(out, 6, secrets=[KUBE_TOKEN], mentions=["kubernetes"])
                assert "does not exist" not in out.stderr, out.describe()

            checks[name] = run_one
        each_failure(checks)


def test_insecure_skip_tls_verify_prints_no_library_warnings(tmp_path: Path) -> None:
    """urllib3's InsecureRequestWarning (with file paths) never reaches the user."""
    with raw_server(_not_found, tls=self_signed_tls()) as port:
        path = tmp_path / "kubeconfig"
        document = kubeconfig(f"https://127.0.0.1:{port}", token=KUBE_TOKEN)
        document["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = True
        path.write_bytes(_yaml(document))
        out = spawn("url", "-n", "x", "--kubeconfig", str(path), cwd=tmp_path, timeout=30)
    assert out.code != 0
    assert_refused(out, 6, secrets=[KUBE_TOKEN])
    assert "InsecureRequestWarning" not in out.stderr, out.describe()
    assert "site-packages" not in out.stderr, out.describe()
    assert ".py:" not in out.stderr, out.describe()


def test_tls_api_server_with_untrusted_certificate(tmp_path: Path) -> None:
    with raw_server(_not_found, tls=self_signed_tls()) as port:
        path = _write_kubeconfig(tmp_path, f"https://127.0.0.1:{port}")
        out = spawn("url", "-n", "x", "--kubeconfig", path, cwd=tmp_path, timeout=30)
    assert_refused(out, 6, secrets=[KUBE_TOKEN])
    assert "site-packages" not in out.stderr, out.describe()


# ---------------------------------------------------------------------------------------------
# render (and apply) without -n take the namespace from the current context
# ---------------------------------------------------------------------------------------------


KUBECONFIG_NAMESPACE_TEXTS = [
    "010",
    "0x1f",
    "1_0",
    "12:30",
    "yes",
    "off",
    "1e3",
]  # `~` is no namespace


def _context_namespace_kubeconfig(text: str) -> str:
    """A kubeconfig in plain YAML (not JSON) whose context namespace is written unquoted."""
    return (
        "apiVersion: v1\nkind: Config\n"
        "clusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:1'}\n"
        "users:\n- name: u\n  user: {token: t}\n"
        f"contexts:\n- name: x\n  context: {{cluster: c, user: u, namespace: {text}}}\n"
        "current-context: x\n"
    )


def test_kubeconfig_namespace_keeps_its_text(
    tmp_path: Path, jwks_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kubectl reads a context's namespace as the text written (sigs.k8s.io/yaml keeps string
    fields literal): `namespace: 010` is namespace "010", never 8 and never silently
    "default". render must use that text or refuse."""
    path = tmp_path / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(path))
    checks = {}
    for text in KUBECONFIG_NAMESPACE_TEXTS:

        def run_one(text: str = text) -> None:
            path.write_text(_context_namespace_kubeconfig(text))
            out = invoke("render", "--jwks", str(jwks_file), "-o", "json")
            if out.code == 0:
                assert_clean_stderr(out)
                namespaces = {
                    item["metadata"]["namespace"] for item in json.loads(out.stdout)["items"]
                }
                assert namespaces == {text}, (
                    f"namespace {text!r} became {namespaces}\n{out.describe()}"
                )
            else:
                assert_refused(out, (3, 6))

        checks[text] = run_one
    each_failure(checks)


def test_kubeconfig_namespace_of_the_wrong_type_is_refused(
    tmp_path: Path, jwks_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kubectl refuses a context whose namespace is a list or a mapping; render must not
    quietly fall back to "default"."""
    path = tmp_path / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(path))
    for text in ("[a]", "{a: b}"):
        path.write_text(_context_namespace_kubeconfig(text))
        assert_refused(invoke("render", "--jwks", str(jwks_file)), (3, 6))


def test_render_with_an_endless_kubeconfig_ends(tmp_path: Path, jwks_file: Path) -> None:
    """render reads the kubeconfig only for a default namespace: an endless or exploding one
    must neither hang it nor crash it (it may fall back to "default" or refuse)."""
    laughs = tmp_path / "laughs"
    laughs.write_text(billion_laughs("preferences") + "current-context: x\n")
    runs = [["render", "--jwks", str(jwks_file)]]
    for kubeconfig_path in ("/dev/zero", str(laughs), str(tmp_path)):
        env = process_env(tmp_path, KUBECONFIG=kubeconfig_path)
        out = spawn(*runs[0], cwd=tmp_path, env=env, timeout=30)
        if out.code == 0:
            assert_clean_stderr(out)
            assert "namespace: default" in out.stdout, out.describe()
        else:
            assert_refused(out, (3, 6))


# ---------------------------------------------------------------------------------------------
# The repro 13 as it quotes it
# ---------------------------------------------------------------------------------------------


def test_a_missing_kubeconfig_is_named_as_missing(tmp_path: Path) -> None:
    """`url --kubeconfig /nope/config` says the file does not exist and names it
    (issue 9, repro 13)."""
    out = invoke("url", "-n", "a", "--kubeconfig", "/nope/config")
    assert_refused(out, 6, mentions=["does not exist"])
    assert "/nope/config" in out.stderr


def test_insecure_skip_tls_verify_is_quiet(tmp_path: Path) -> None:
    """`insecure-skip-tls-verify` prints no library warning or file path (issue 9, repro 13)."""

    def not_found(conn: socket.socket, head: bytes) -> None:
        conn.sendall(http_answer("404 Not Found", b"404 page not found\n"))

    with raw_server(not_found, tls=self_signed_tls()) as port:
        document = kubeconfig(f"https://127.0.0.1:{port}")
        document["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = True
        path = tmp_path / "kubeconfig"
        path.write_text(json.dumps(document))
        out = spawn("url", "-n", "a", "--kubeconfig", str(path), cwd=tmp_path, timeout=30)
    assert_refused(out, 6)
    assert "InsecureRequestWarning" not in out.stderr and "site-packages" not in out.stderr


def test_a_404_server_is_no_kubernetes_api_to_url_and_apply(
    tmp_path: Path, jwks_file: Path
) -> None:
    """A server answering 404 to everything is "not a Kubernetes API", never "namespace does not
    exist", for `url` and `apply` (issue 9, repro 13)."""

    def not_found(conn: socket.socket, head: bytes) -> None:
        conn.sendall(http_answer("404 Not Found", b"404 page not found\n"))

    with raw_server(not_found) as port:
        path = tmp_path / "kubeconfig"
        path.write_text(json.dumps(kubeconfig(f"http://127.0.0.1:{port}")))
        for args in (
            ["url", "-n", "envoy-yang"],
            ["apply", "--jwks", str(jwks_file), "-n", "envoy-yang", "--no-wait"],
        ):
            out = invoke(*args, "--kubeconfig", str(path))
            assert_refused(out, 6, mentions=["kubernetes api"])
            assert "does not exist" not in out.stderr, out.describe()
