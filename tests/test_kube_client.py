"""What the Kubernetes client does with API answers no real server sends: objects of the wrong
shape (refused where they arrive, exit 6 naming the field), bodies nested too deep or larger
than any object, Status documents with odd details or where an object was asked for, watch
streams with deep events or a line that never ends, and Warning headers or Node addresses
holding terminal escapes. Servers are raw sockets or the emulator, on 127.0.0.1 only.
Provenance: issue 9, the second hostile-input campaign."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from jwksdeploy.kube.views import check_list, check_object

from .helpers import corrupt, key_pair_files, kubeconfig
from .kube import Kube
from .refusals import Outcome, assert_clean_stderr, assert_refused, invoke
from .servers import raw_server

pytestmark = pytest.mark.usefixtures("in_tmp")


# ---------------------------------------------------------------------------------------------
# API answers of the wrong shape: refused where they arrive (jwksdeploy/kube/views.py)
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
    """A live object of the wrong shape (a ConfigMap whose data is a list, a Service whose ports is
    an object, a Node whose status is a list...) is exit 6 naming the field in `status`, `url`,
    `gateway`, `rotate status` and `apply`; each exited 70 (AttributeError) before (issue 9,
    second campaign)."""
    public, _ = key_pair_files(tmp_path)
    setup = invoke("apply", "-n", kube.namespace, "--kubeconfig", kube.kubeconfig, "--no-wait")
    assert setup.code == 0, setup.describe()
    corrupt(kube, *LIVE_CORRUPTIONS[case])
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


@pytest.mark.emulator_only
def test_a_node_address_that_is_no_host_is_refused(kube: Kube, tmp_path: Path) -> None:
    """A Node address that is no host (a terminal escape, a space and a path) is a malformed answer,
    exit 6: it went verbatim into the URL on stdout and the gateway's jwksUri (issue 9, second
    campaign)."""
    key_pair_files(tmp_path)
    ns = ["-n", kube.namespace, "--kubeconfig", kube.kubeconfig]
    assert invoke("apply", *ns, "--no-wait").code == 0
    bad = [{"type": "InternalIP", "address": "\x1b[31m1.2.3.4/x y"}]
    corrupt(kube, "nodes", "node-1", lambda o: o["status"].update(addresses=bad))
    for command in (["url"], ["gateway", "--provider", "istio", "--issuer", "https://i.example"]):
        outcome = invoke(*command, *ns)
        assert_refused(outcome, 6, mentions=["node address"])
        assert "\x1b" not in outcome.stdout + outcome.stderr


# ---------------------------------------------------------------------------------------------
# Raw API answers: deeply nested and endless bodies
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
def test_a_deeply_nested_api_answer_is_refused(body: bytes, status: str, tmp_path: Path) -> None:
    """A deeply nested answer is refused cleanly, whatever its status: it raised RecursionError out
    of json.loads, exit 70 (issue 9, second campaign)."""
    outcome = _against(_answer(body, status), tmp_path)
    assert_refused(outcome, (6, 8, 9))


def _endless_body(conn: socket.socket, head: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    conn.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
    block = b'{"a":"' + b"x" * (1 << 20)
    with contextlib.suppress(OSError):
        for _ in range(200):  # 200 MiB unless the client stops reading
            conn.sendall(b"%x\r\n%s\r\n" % (len(block), block))


def test_an_api_answer_larger_than_any_object_is_refused(tmp_path: Path) -> None:
    """At most 64 MiB of an API answer is read and more is refused (exit 6): the answer was read
    whole, whatever its size (issue 9, second campaign)."""
    assert_refused(_against(_endless_body, tmp_path), 6, mentions=["larger than 64 MiB"])


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
def test_a_409_with_odd_details_is_a_conflict(case: str, tmp_path: Path) -> None:
    """A 409 whose details is a string or a list is a conflict (exit 8) naming no manager, in every
    cluster command: it raised AttributeError, exit 70 (issue 9, second campaign)."""
    _each_command(_every_answer("409 Conflict", ODD_STATUSES[case]), tmp_path)


@pytest.mark.parametrize("status", ["200 OK", "201 Created"])
def test_a_status_where_an_object_was_asked_for_is_refused(status: str, tmp_path: Path) -> None:
    """A Status (or any other kind) is not the object asked for: a server answering every GET with
    `200 {"kind": "Status"}` made `diff` say "no changes" and `url` print a URL (issue 9,
    second campaign)."""
    _each_command(_every_answer(status, {"kind": "Status", "status": "Failure"}), tmp_path)


# ---------------------------------------------------------------------------------------------
# Watch streams: deep events, a line that never ends; Warning headers
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


def test_a_watch_event_nested_too_deep_is_skipped(tmp_path: Path) -> None:
    """A deeply nested watch line is skipped like any line that is not an event, and the wait times
    out (exit 10): it raised RecursionError out of the waiter, exit 70 (issue 9, second
    campaign)."""
    assert_refused(_apply_against(_mini_api(_deep_events), tmp_path), 10)


def _endless_line(write: Callable[[bytes], None]) -> None:
    with contextlib.suppress(OSError):
        for _ in range(40):  # 40 MiB, more than one event may hold
            write(b"x" * (1 << 20))


def test_a_watch_line_without_end_is_refused(tmp_path: Path) -> None:
    """One watch event is at most 16 MiB and more is refused (exit 6): kubernetes' iter_resp_lines
    buffers a line without limit, and a watch that never sent a newline grew the process by
    ~130 MB a second until --timeout (issue 9, second campaign)."""
    outcome = _apply_against(_mini_api(_endless_line), tmp_path)
    assert_refused(outcome, 6, mentions=["watch event longer than"])


def test_api_warnings_are_escaped(tmp_path: Path) -> None:
    """The API server's Warning headers are escaped where they are collected: they were printed
    verbatim, terminal escapes included (issue 9, second campaign)."""
    key_pair_files(tmp_path)
    with raw_server(_mini_api(lambda write: None)) as port:
        config = tmp_path / "kubeconfig"
        config.write_text(json.dumps(kubeconfig(f"http://127.0.0.1:{port}")))
        outcome = invoke("apply", "-n", "ns", "--no-wait", "--kubeconfig", str(config))
    assert outcome.code == 0, outcome.describe()
    assert "the API server says" in outcome.stderr
    assert "\x1b" not in outcome.stderr and "\x07" not in outcome.stderr
