"""The second hostile-input campaign (issue 9, "other hostile inputs"): what the first one's
suites did not reach. Each finding has its regression here: the input, the command, and the
clean refusal it now gets (documented exit code, one `error: ` line, no traceback).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from jwksdeploy.kubeshape import check_list, check_object

from .hostile import (
    Outcome,
    assert_clean_stderr,
    assert_refused,
    invoke,
    key_pair_files,
    kubeconfig,
    raw_server,
    snapshot,
)
from .kube import Kube


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


# ---------------------------------------------------------------------------------------------
# Key file paths: a NUL byte, and a long but valid file name (the journal's name overflowed)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["jwks", "generate", "--add-to", "a\x00b"],
        ["jwks", "rotate", "--private", "a\x00b"],
        ["rotate", "status", "-n", "ns", "--private", "a\x00b"],
    ],
    ids=["generate-add-to", "jwks-rotate", "rotate-status"],
)
def test_nul_in_a_key_file_path_is_refused(args: list[str], tmp_path: Path) -> None:
    key_pair_files(tmp_path)
    before = snapshot(tmp_path)
    outcome = invoke(*args)
    assert_refused(outcome, (3, 5), before=before, after=snapshot(tmp_path), mentions=["NUL"])


def test_generate_with_the_longest_file_names(tmp_path: Path) -> None:
    """255 bytes is a valid name; the transaction's journal beside it must still fit."""
    public, private = "j" * 250 + ".json", "p" * 250 + ".json"
    outcome = invoke("jwks", "generate", "--jwks", public, "--private", private)
    assert outcome.code == 0, outcome.describe()
    assert json.loads((tmp_path / public).read_text())["keys"]
    assert json.loads((tmp_path / private).read_text())["keys"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".jwksdeploy-")]


@pytest.mark.parametrize("command", [["jwks", "generate", "--jwks"], ["jwks", "public", "--jwks"]])
def test_file_name_too_long_is_refused(command: list[str], tmp_path: Path) -> None:
    key_pair_files(tmp_path)
    before = snapshot(tmp_path)
    outcome = invoke(*command, "x" * 300)
    assert_refused(outcome, (3, 5), before=before, after=snapshot(tmp_path))


# ---------------------------------------------------------------------------------------------
# API answers of the wrong shape: refused where they arrive (jwksdeploy/kubeshape.py)
# ---------------------------------------------------------------------------------------------

SHAPE_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "configmap-data-list": ("ConfigMap", {"data": ["x"]}),
    "configmap-data-string": ("ConfigMap", {"data": "x"}),
    "configmap-value-number": ("ConfigMap", {"data": {"jwks.json": 5}}),
    "annotations-list": ("ConfigMap", {"metadata": {"annotations": ["a"]}}),
    "labels-string": ("Service", {"metadata": {"labels": "x"}}),
    "metadata-list": ("Service", {"metadata": []}),
    "service-ports-object": ("Service", {"spec": {"ports": {"a": 1}}}),
    "service-ports-ints": ("Service", {"spec": {"ports": [1]}}),
    "service-node-port-string": ("Service", {"spec": {"ports": [{"nodePort": "x"}]}}),
    "service-node-port-huge": ("Service", {"spec": {"ports": [{"nodePort": 10**30}]}}),
    "service-node-port-bool": ("Service", {"spec": {"ports": [{"nodePort": True}]}}),
    "service-spec-list": ("Service", {"spec": []}),
    "deployment-status-list": ("Deployment", {"status": []}),
    "deployment-conditions-string": ("Deployment", {"status": {"conditions": "x"}}),
    "deployment-replicas-string": ("Deployment", {"status": {"readyReplicas": "2"}}),
    "node-status-list": ("Node", {"status": []}),
    "node-addresses-object": ("Node", {"status": {"addresses": {"a": 1}}}),
    "node-address-number": ("Node", {"status": {"addresses": [{"type": 5, "address": "x"}]}}),
    "pod-state-string": ("Pod", {"status": {"containerStatuses": [{"state": {"waiting": "x"}}]}}),
    "not-an-object": ("ConfigMap", []),  # type: ignore[dict-item]
}


@pytest.mark.parametrize("case", sorted(SHAPE_CASES))
def test_check_object_refuses_wrong_shapes(case: str) -> None:
    kind, obj = SHAPE_CASES[case]
    with pytest.raises(ValueError, match=f"a {kind}"):
        check_object(obj, kind)


def test_check_object_accepts_real_objects() -> None:
    check_object(
        {
            "metadata": {"name": "a", "labels": {"k": "v"}},
            "spec": {"ports": [{"port": 8080, "nodePort": 31000, "targetPort": "http"}]},
            "status": {"loadBalancer": {}},
        },
        "Service",
    )
    check_object({"metadata": {"name": "n"}, "status": {}}, "Node")
    check_object({"data": {"jwks.json": "{}"}, "whatever": [1, {"x": None}]}, "ConfigMap")
    assert check_list({"items": None, "metadata": {}}, "Pod") == []


@pytest.mark.parametrize(
    "document",
    [[], {"items": {}}, {"items": [1]}, {"items": [], "metadata": []}],
    ids=["list", "items-object", "item-number", "metadata-list"],
)
def test_check_list_refuses_wrong_shapes(document: Any) -> None:
    with pytest.raises(ValueError):
        check_list(document, "Node")


def _corrupt(kube: Kube, plural: str, name: str, edit: Callable[[dict[str, Any]], None]) -> None:
    emulator = kube.emulator
    assert emulator is not None
    namespace = None if plural == "nodes" else kube.namespace
    with emulator.lock:
        edit(emulator.store[(plural, namespace, name)].obj)


LIVE_CORRUPTIONS: dict[str, tuple[str, str, Callable[[dict[str, Any]], None]]] = {
    "configmap-data-list": ("configmaps", "jwks-config", lambda o: o.update(data=["x"])),
    "configmap-annotations-list": (
        "configmaps",
        "jwks-config",
        lambda o: o["metadata"].update(annotations=["a"]),
    ),
    "service-ports-object": (
        "services",
        "remote-jwks-go",
        lambda o: o["spec"].update(ports={"a": 1}),
    ),
    "service-node-port-string": (
        "services",
        "remote-jwks-go",
        lambda o: o["spec"]["ports"][0].update(nodePort="x"),
    ),
    "node-status-list": ("nodes", "node-1", lambda o: o.update(status=[])),
    "node-addresses-ints": ("nodes", "node-1", lambda o: o["status"].update(addresses=[1])),
}


@pytest.mark.emulator_only
@pytest.mark.parametrize("case", sorted(LIVE_CORRUPTIONS))
def test_live_objects_of_the_wrong_shape(case: str, kube: Kube, tmp_path: Path) -> None:
    """Findings: `status`, `url`, `gateway`, `rotate status|start` and `apply` exited 70
    (AttributeError) on a ConfigMap whose data is a list, a Service whose ports is an object,
    a Node whose status is a list... Now every one is exit 6 naming the field."""
    public, _ = key_pair_files(tmp_path)
    setup = invoke("apply", "-n", kube.namespace, "--kubeconfig", kube.kubeconfig, "--no-wait")
    assert setup.code == 0, setup.describe()
    _corrupt(kube, *LIVE_CORRUPTIONS[case])
    ns = ["-n", kube.namespace, "--kubeconfig", kube.kubeconfig]
    commands = {
        "status": ["status", *ns, "--jwks", str(public)],
        "url": ["url", *ns],
        "gateway": ["gateway", "--provider", "istio", *ns, "--issuer", "https://i.example"],
        "rotate-status": ["rotate", "status", *ns],
        "apply": ["apply", *ns, "--no-wait"],
    }
    for name, args in commands.items():
        outcome = invoke(*args)
        if outcome.code == 0:  # this command never reads the corrupted object
            assert_clean_stderr(outcome)
            continue
        assert_refused(outcome, 6, mentions=["which no Kubernetes API server sends"])
        assert name


# ---------------------------------------------------------------------------------------------
# Raw API answers: huge and deeply nested bodies
# ---------------------------------------------------------------------------------------------


def _answer(body: bytes, status: str = "200 OK") -> Callable[[socket.socket, bytes], None]:
    def handler(conn: socket.socket, head: bytes) -> None:
        conn.sendall(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    return handler


def _against(handler: Callable[[socket.socket, bytes], None], tmp_path: Path) -> Outcome:
    key_pair_files(tmp_path)
    with raw_server(handler) as port:
        config = tmp_path / "kubeconfig"
        config.write_text(json.dumps(kubeconfig(f"http://127.0.0.1:{port}")))
        return invoke("url", "-n", "ns", "--kubeconfig", str(config))


@pytest.mark.parametrize(
    "body",
    [b"[" * 200_000 + b"]" * 200_000, b'{"a":' * 5000 + b"1" + b"}" * 5000],
    ids=["deep-list", "deep-object"],
)
@pytest.mark.parametrize("status", ["200 OK", "409 Conflict", "500 Oops"])
def test_deeply_nested_api_answer(body: bytes, status: str, tmp_path: Path) -> None:
    """Finding: a deeply nested answer raised RecursionError out of json.loads (exit 70)."""
    outcome = _against(_answer(body, status), tmp_path)
    assert_refused(outcome, (6, 8, 9))


# ---------------------------------------------------------------------------------------------
# Rotation records (the local mirror; the ConfigMap annotation is read by the same from_json)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def rotating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A local key pair with a rotation started; returns the mirror's document."""
    monkeypatch.setenv("JWKSDEPLOY_NOW", "1800000000")
    assert invoke("jwks", "generate").code == 0
    started = invoke("rotate", "start", "--local")
    assert started.code == 0, started.describe()
    document: dict[str, Any] = json.loads((tmp_path / "jwks.private.rotation.json").read_text())
    return document


@pytest.mark.parametrize(
    "field, value",
    [
        ("cacheWindowSeconds", 1e300),
        ("cacheWindowSeconds", 10**30),
        ("maxTokenTtlSeconds", 10**18),
        ("maxTokenTtlSeconds", 1e300),
    ],
)
@pytest.mark.parametrize("step", ["status", "promote", "run"])
def test_rotation_record_with_an_overflowing_window(
    field: str,
    value: float,
    step: str,
    rotating: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Finding: a window past year 9999 raised OverflowError (or EOVERFLOW) formatting a date,
    exit 70, at status or once promote was due. Now the record is refused like the flags."""
    rotating["state"][field] = value
    (tmp_path / "jwks.private.rotation.json").write_text(json.dumps(rotating))
    monkeypatch.setenv("JWKSDEPLOY_NOW", str(1800000000 + 10**7))  # every step is due
    before = snapshot(tmp_path)
    outcome = invoke("rotate", step, "--local")
    assert_refused(outcome, 3, before=before, after=snapshot(tmp_path), mentions=[field])


def test_a_huge_value_in_a_record_gives_a_short_error(
    rotating: dict[str, Any], tmp_path: Path
) -> None:
    """Finding: a 900 KB kid in the record was echoed whole into the one-line error."""
    rotating["state"]["keys"][1]["kid"] = "k" * 900_000
    (tmp_path / "jwks.private.rotation.json").write_text(json.dumps(rotating))
    outcome = invoke("rotate", "status", "--local")
    assert_refused(outcome, 3)
    assert len(outcome.stderr) < 10_000
    assert "characters left out" in outcome.stderr


def test_a_megabyte_path_gives_a_short_error(tmp_path: Path) -> None:
    outcome = invoke("render", "--jwks", "x" * 1_000_000, "-n", "a")
    assert_refused(outcome, 3, mentions=["too long|does not exist"])
    assert len(outcome.stderr) < 10_000


# ---------------------------------------------------------------------------------------------
# Status objects with odd fields, and a Status where the object was asked for
# ---------------------------------------------------------------------------------------------

ODD_STATUSES: dict[str, Any] = {
    "details-string": {"kind": "Status", "message": "m", "details": "x"},
    "details-list": {"kind": "Status", "details": [1]},
    "causes-object": {"kind": "Status", "details": {"causes": {"a": 1}}},
    "causes-mixed": {"kind": "Status", "details": {"causes": [1, None, {"field": [1]}]}},
    "no-details": {"kind": "Status"},
    "message-escapes": {"kind": "Status", "message": '\x1b[2J conflict with "\x1b[31m"'},
}
CLUSTER_COMMANDS = {
    "apply": ["apply", "-n", "ns", "--timeout", "5"],
    "diff": ["diff", "-n", "ns"],
    "status": ["status", "-n", "ns"],
    "url": ["url", "-n", "ns"],
    "rotate-status": ["rotate", "status", "-n", "ns"],
}


def _every_answer(status: str, document: Any) -> Callable[[socket.socket, bytes], None]:
    return _answer(json.dumps(document).encode(), status)


def _each_command(handler: Callable[[socket.socket, bytes], None], tmp_path: Path) -> None:
    key_pair_files(tmp_path)
    with raw_server(handler) as port:
        config = tmp_path / "kubeconfig"
        config.write_text(json.dumps(kubeconfig(f"http://127.0.0.1:{port}")))
        for args in CLUSTER_COMMANDS.values():
            outcome = invoke(*args, "--kubeconfig", str(config))
            assert_refused(outcome, (6, 8, 9))
            assert "\x1b" not in outcome.stderr


@pytest.mark.parametrize("case", sorted(ODD_STATUSES))
def test_409_with_odd_details(case: str, tmp_path: Path) -> None:
    """Finding: a 409 whose details is a string or a list raised AttributeError (exit 70) in
    every cluster command. Now it is a conflict (exit 8) naming no manager."""
    _each_command(_every_answer("409 Conflict", ODD_STATUSES[case]), tmp_path)


@pytest.mark.parametrize("status", ["200 OK", "201 Created"])
def test_a_status_object_where_an_object_was_asked_for(status: str, tmp_path: Path) -> None:
    """Finding: a server answering every GET with `200 {"kind": "Status"}` made `diff` say "no
    changes" and `url` print a URL. A Status (any other kind) is not the object asked for."""
    _each_command(_every_answer(status, {"kind": "Status", "status": "Failure"}), tmp_path)


# ---------------------------------------------------------------------------------------------
# Watch streams: deep events, and a line that never ends
# ---------------------------------------------------------------------------------------------


LISTS = {
    "deployments",
    "replicasets",
    "pods",
    "events",
    "services",
    "configmaps",
    "poddisruptionbudgets",
    "nodes",
}


def _mini_api(
    watch: Callable[[Callable[[bytes], None]], None],
) -> Callable[[socket.socket, bytes], None]:
    """Just enough of an API server for `apply` to reach its wait: namespace `ns` exists, GETs
    of objects are 404, PATCH echoes the object, lists hold the applied Deployment, and every
    watch is a chunked stream that `watch` writes."""
    applied: dict[str, Any] = {}

    def send(conn: socket.socket, document: Any, status: str = "200 OK") -> None:
        conn.sendall(_http(status, json.dumps(document).encode()))

    def handler(conn: socket.socket, head: bytes) -> None:
        method, target = head.split(b"\r\n", 1)[0].decode().split(" ")[:2]
        path, _, query = target.partition("?")
        if method == "PATCH":
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = head.split(b"\r\n\r\n", 1)[1]
            while len(body) < length:
                body += conn.recv(65536)
            obj = yaml.safe_load(body)
            obj["metadata"].update(resourceVersion="5", uid="u")
            if obj["kind"] == "Service":
                obj["spec"]["ports"][0]["nodePort"] = 30001
            applied[obj["kind"]] = obj
            send(conn, obj)
        elif "watch=1" in query:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            conn.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
            watch(lambda data: conn.sendall(b"%x\r\n%s\r\n" % (len(data), data)))
        elif path == "/api/v1/namespaces/ns":
            send(conn, {"kind": "Namespace", "metadata": {"name": "ns"}})
        elif path.rsplit("/", 1)[-1] in LISTS:
            items = [applied["Deployment"]] if path.endswith("deployments") else []
            send(conn, {"kind": "List", "metadata": {"resourceVersion": "1"}, "items": items})
        else:
            send(conn, {"kind": "Status", "code": 404, "message": "not found"}, "404 Not Found")

    return handler


HOSTILE_WARNING = b'Warning: 299 - "\x1b]0;pwned\x07\x1b[2J deprecated"\r\n'


def _http(status: str, body: bytes) -> bytes:
    return (
        (
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            "\r\nConnection: close\r\n"
        ).encode()
        + HOSTILE_WARNING
        + b"\r\n"
        + body
    )


def _apply_against(handler: Callable[[socket.socket, bytes], None], tmp_path: Path) -> Outcome:
    key_pair_files(tmp_path)
    with raw_server(handler) as port:
        config = tmp_path / "kubeconfig"
        config.write_text(json.dumps(kubeconfig(f"http://127.0.0.1:{port}")))
        return invoke("apply", "-n", "ns", "--timeout", "1", "--kubeconfig", str(config))


def _deep_events(write: Callable[[bytes], None]) -> None:
    for _ in range(3):
        write(b"[" * 100_000 + b"]" * 100_000 + b"\n")
        write(b'{"type":"MODIFIED","object":' + b'{"a":' * 3000 + b"1" + b"}" * 3001 + b"\n")


def test_watch_events_nested_too_deep(tmp_path: Path) -> None:
    """Finding: a deeply nested watch line raised RecursionError out of the waiter (exit 70).
    Now it is skipped like any line that is not an event, and the wait times out (exit 10)."""
    assert_refused(_apply_against(_mini_api(_deep_events), tmp_path), 10)


def _endless_line(write: Callable[[bytes], None]) -> None:
    with contextlib.suppress(OSError):
        for _ in range(40):  # 40 MiB, more than one event may hold
            write(b"x" * (1 << 20))


def test_watch_line_without_end(tmp_path: Path) -> None:
    """Finding: kubernetes' iter_resp_lines buffers a line without limit: a watch that never
    sends a newline grew the process by ~130 MB a second until --timeout. Now one event is at
    most 16 MiB and more is refused (exit 6)."""
    outcome = _apply_against(_mini_api(_endless_line), tmp_path)
    assert_refused(outcome, 6, mentions=["watch event longer than"])


# ---------------------------------------------------------------------------------------------
# Integer flags take ASCII digits only; serve --listen that no socket can take
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
    """Finding: click's int type is Python's int(), which takes any script's digits, "80_80"
    and surrounding spaces: `serve --port ٣` listened on port 3. Now a usage error (exit 2)."""
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


@pytest.mark.parametrize(
    "address", ["\udcff", "a\x00b", "\u00e4" * 70], ids=["argv-bytes", "nul", "idna-too-long"]
)
def test_serve_listen_address_no_socket_takes(address: str, tmp_path: Path) -> None:
    """Finding: a --listen the socket module cannot encode was a TypeError (exit 70), and a NUL
    left a socket open (ResourceWarning). Now checked before any socket exists (exit 3)."""
    key_pair_files(tmp_path)
    outcome = invoke("serve", "--port", "0", "--listen", address)
    assert_refused(outcome, 3, mentions=["cannot listen"])
    assert "ResourceWarning" not in outcome.stderr


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
    """Finding: `--address x/y` printed jwksUri http://x/y:31000/jwks (another host and path)."""
    outcome = invoke(
        "gateway", "--provider", "istio", "-n", "ns", "--issuer", "https://i.example",
        "--url-from", "node-port", "--node-port", "31000", "--address", address,
    )  # fmt: skip
    assert_refused(outcome, 3, mentions=["--address"])


@pytest.mark.emulator_only
@pytest.mark.parametrize("address", ["\udcff\udcfe", "x/y z"])
def test_url_refuses_a_non_host_address(address: str, kube: Kube, tmp_path: Path) -> None:
    """Finding: `apply --address` with argv bytes crashed printing the URL (UnicodeEncodeError,
    exit 70) after applying. Now every command that builds a URL refuses it (exit 3)."""
    key_pair_files(tmp_path)
    ns = ["-n", kube.namespace, "--kubeconfig", kube.kubeconfig]
    refused = invoke("apply", *ns, "--no-wait", "--address", address)
    assert_refused(refused, 3, mentions=["--address"])
    assert kube.read("ConfigMap", "jwks-config") is None, "refused before anything is applied"
    assert invoke("apply", *ns, "--no-wait").code == 0
    assert_refused(invoke("url", *ns, "--address", address), 3, mentions=["--address"])


@pytest.mark.emulator_only
def test_a_node_address_that_is_no_host(kube: Kube, tmp_path: Path) -> None:
    """Finding: a Node address holding a terminal escape, a space and a path went verbatim into
    the URL on stdout and into the gateway's jwksUri. Now the answer is refused (exit 6)."""
    key_pair_files(tmp_path)
    ns = ["-n", kube.namespace, "--kubeconfig", kube.kubeconfig]
    assert invoke("apply", *ns, "--no-wait").code == 0
    bad = [{"type": "InternalIP", "address": "\x1b[31m1.2.3.4/x y"}]
    _corrupt(kube, "nodes", "node-1", lambda o: o["status"].update(addresses=bad))
    for command in (["url"], ["gateway", "--provider", "istio", "--issuer", "https://i.example"]):
        outcome = invoke(*command, *ns)
        assert_refused(outcome, 6, mentions=["node address"])
        assert "\x1b" not in outcome.stdout + outcome.stderr


@pytest.mark.emulator_only
def test_request_timeout_zero(kube: Kube, tmp_path: Path) -> None:
    """Finding: `apply --request-timeout 0` applied, then urllib3 refused the zero timeout at
    the first watch: ValueError, exit 70. Now refused before connecting."""
    key_pair_files(tmp_path)
    before = snapshot(tmp_path)
    outcome = invoke(
        "apply", "-n", kube.namespace, "--kubeconfig", kube.kubeconfig, "--request-timeout", "0"
    )
    assert_refused(
        outcome, 3, mentions=["--request-timeout"], before=before, after=snapshot(tmp_path)
    )
    assert kube.read("ConfigMap", "jwks-config") is None, "nothing was applied"


def _endless_body(conn: socket.socket, head: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    conn.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
    block = b'{"a":"' + b"x" * (1 << 20)
    with contextlib.suppress(OSError):
        for _ in range(200):  # 200 MiB unless the client stops reading
            conn.sendall(b"%x\r\n%s\r\n" % (len(block), block))


def test_api_answer_larger_than_any_object(tmp_path: Path) -> None:
    """Finding: an API answer was read whole (response.read()), whatever its size. Now at most
    64 MiB is read and more is refused (exit 6)."""
    assert_refused(_against(_endless_body, tmp_path), 6, mentions=["larger than 64 MiB"])


@pytest.mark.emulator_only
def test_rotation_annotation_with_an_overflowing_window(kube: Kube, tmp_path: Path) -> None:
    """The ConfigMap's rotation annotation is read by the same checked reader as the mirror."""
    key_pair_files(tmp_path)
    ns = ["-n", kube.namespace, "--kubeconfig", kube.kubeconfig]
    assert invoke("apply", *ns, "--no-wait").code == 0
    record = {
        "keys": [{"kid": "pair-1", "phase": "active"}],
        "cacheWindowSeconds": 1e300,
        "maxTokenTtlSeconds": 3600,
    }
    annotations = {"rotation.jwksdeploy.io/state": json.dumps(record)}
    _corrupt(
        kube, "configmaps", "jwks-config", lambda o: o["metadata"].update(annotations=annotations)
    )
    for step in ("status", "promote", "run"):
        assert_refused(invoke("rotate", step, *ns), 3, mentions=["cacheWindowSeconds"])


@pytest.mark.parametrize("now", ["nan", "inf", "1e400", "-1", "-inf"])
@pytest.mark.parametrize("step", ["status", "finish"])
def test_a_clock_that_is_not_a_time(
    now: str, step: str, rotating: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding: JWKSDEPLOY_NOW=inf made every step due at once (finish would drop the old key
    now) and nan made none due, silently. Now the clock must be a time (exit 3)."""
    monkeypatch.setenv("JWKSDEPLOY_NOW", now)
    before = snapshot(tmp_path)
    outcome = invoke("rotate", step, "--local")
    assert_refused(outcome, 3, mentions=["JWKSDEPLOY_NOW"], before=before, after=snapshot(tmp_path))


@pytest.mark.emulator_only
def test_rollout_progress_escapes_the_cluster_s_text(kube: Kube, tmp_path: Path) -> None:
    """Finding: apply's rollout line printed a pod's waiting reason and message verbatim: a
    pod could set the terminal's title, clear the screen or forge an `error:` line. Now
    escaped like every error (errors.printable)."""
    from .test_wait import waiting

    hostile = "\x1b]0;pwned\x07\x1b[2J\r\nerror: forged"
    assert kube.emulator is not None
    kube.emulator.pod_faults[kube.namespace] = waiting(
        "ImagePullBackOff" + hostile, message="Back-off " + hostile
    )
    key_pair_files(tmp_path)
    outcome = invoke(
        "apply", "-n", kube.namespace, "--kubeconfig", kube.kubeconfig, "--timeout", "1"
    )
    assert_refused(outcome, 10)
    assert "\x1b" not in outcome.stderr and "\x07" not in outcome.stderr
    assert not any(line.startswith("error: forged") for line in outcome.stderr.splitlines())


def test_api_warnings_are_escaped(tmp_path: Path) -> None:
    """Finding: the API server's Warning headers were printed verbatim ("warning: the API
    server says: ..."), terminal escapes included. Now escaped where they are collected."""
    key_pair_files(tmp_path)
    with raw_server(_mini_api(lambda write: None)) as port:
        config = tmp_path / "kubeconfig"
        config.write_text(json.dumps(kubeconfig(f"http://127.0.0.1:{port}")))
        outcome = invoke("apply", "-n", "ns", "--no-wait", "--kubeconfig", str(config))
    assert outcome.code == 0, outcome.describe()
    assert "the API server says" in outcome.stderr
    assert "\x1b" not in outcome.stderr and "\x07" not in outcome.stderr
