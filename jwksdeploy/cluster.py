"""The only module that talks to Kubernetes, through the official `kubernetes` client.

The client is imported lazily (it costs more than everything else together), and we call
its ApiClient directly with the typed API paths instead of importing the generated
CoreV1Api/AppsV1Api modules: those take another ~1.3 s to import, and server-side apply is
just a PATCH with `application/apply-patch+yaml`. Config loading, auth plugins, TLS and the
connection pool are the client's own. Every ApiException-like answer is translated here into
our error tree, with one readable paragraph instead of headers and bodies.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .adopt import (
    FIELD_MANAGER,
    conflicting_fields,
    conflicting_managers,
)
from .errors import (
    ClusterRejected,
    ClusterUnreachable,
    Conflict,
    Forbidden,
    InputError,
    JwksDeployError,
    WaitTimeout,
    printable,
)
from .status import Rollout as Rollout
from .status import rollout_state as rollout_state

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"

# kind -> (API path prefix, plural); namespaced unless the prefix has no {namespace}.
RESOURCES: dict[str, tuple[str, str]] = {
    "Namespace": ("/api/v1", "namespaces"),
    "ConfigMap": ("/api/v1/namespaces/{namespace}", "configmaps"),
    "Service": ("/api/v1/namespaces/{namespace}", "services"),
    "Deployment": ("/apis/apps/v1/namespaces/{namespace}", "deployments"),
    "PodDisruptionBudget": ("/apis/policy/v1/namespaces/{namespace}", "poddisruptionbudgets"),
    "Node": ("/api/v1", "nodes"),
    "Pod": ("/api/v1/namespaces/{namespace}", "pods"),
    "ReplicaSet": ("/apis/apps/v1/namespaces/{namespace}", "replicasets"),
    "Event": ("/api/v1/namespaces/{namespace}", "events"),
}
VERBS = {"GET": "get", "PATCH": "patch", "DELETE": "delete", "POST": "create"}
# The largest answer read (a Node list of a big cluster is a few MiB); more is not an API's.
MAX_ANSWER_BYTES = 64 << 20
MAX_EVENT_BYTES = 16 << 20  # one watch event: one object (a ConfigMap holds at most 1 MiB)


class NotFound(JwksDeployError):
    """A 404 inside this module; callers decide whether it is an error."""

    exit_code = ClusterRejected.exit_code


class WatchRefused(JwksDeployError):
    """The API server will not watch this resource for us (403, 405...): poll instead."""

    exit_code = Forbidden.exit_code


class WatchExpired(JwksDeployError):
    """410 Gone: the resourceVersion is too old to resume from; list again."""

    exit_code = WaitTimeout.exit_code


class ApplyConflict(Conflict):
    """A 409 from server-side apply, with the managers and fields the API server named."""

    def __init__(
        self, message: str, managers: list[str] | None = None, fields: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.managers = managers or []
        self.fields = fields or []


_Items = list[dict[str, Any]]  # a name of its own: Cluster.list shadows `list` in its body


def resource_path(kind: str, namespace: str | None = None, name: str | None = None) -> str:
    prefix, plural = RESOURCES[kind]
    path = f"{prefix.format(namespace=namespace)}/{plural}"
    return f"{path}/{name}" if name else path


@dataclass
class Cluster:
    """A connection to one API server, plus a count of the requests it made."""

    api_client: Any
    server: str
    request_timeout: float = 30.0
    requests_made: int = 0
    warnings: list[str] = field(default_factory=list)
    insecure: bool = False  # the kubeconfig skips TLS verification
    field_manager: str = FIELD_MANAGER  # apply --field-manager
    _nodes: _Items | None = field(default=None, repr=False)
    _nodes_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- plumbing -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        what: str = "",
    ) -> dict[str, Any]:
        """One HTTP call through the client; returns the parsed JSON or raises our errors."""
        import urllib3

        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        query_params = list((query or {}).items())
        _, url, header_params, serialized, _ = self._serialize(
            method=method,
            resource_path=path,
            query_params=query_params,
            header_params=headers,
            body=body,
        )
        self.requests_made += 1
        try:
            response = self.api_client.call_api(
                method,
                url,
                header_params=header_params,
                body=serialized,
                _request_timeout=self.request_timeout,
            )
            data = response.response.read(MAX_ANSWER_BYTES + 1)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, urllib3.exceptions.ReadTimeoutError) or (
                isinstance(reason, urllib3.exceptions.TimeoutError)
                and not isinstance(reason, urllib3.exceptions.ConnectTimeoutError)
            ):
                raise WaitTimeout(
                    f"the API server at {self.server} did not answer {method} {path} within "
                    f"{self.request_timeout:g}s. Check the cluster's health or raise "
                    "--request-timeout."
                ) from None
            raise ClusterUnreachable(
                f"cannot reach the API server at {self.server} ({type(reason).__name__}). "
                "Check that the cluster is running and that --kubeconfig/--context point at it."
            ) from None
        except Exception as exc:  # the client wraps TLS failures in ApiException(status=0)
            raise ClusterUnreachable(
                f"cannot talk to the API server at {self.server}: "
                f"{self._client_text(getattr(exc, 'reason', exc))}. Check the kubeconfig's "
                "server address and certificates."
            ) from None
        for warning in response.headers.get_all("Warning") or []:
            self.warnings.append(printable(str(warning)))  # the server's text, shown as is
        status = int(response.status)
        if len(data) > MAX_ANSWER_BYTES:
            raise self._malformed(
                method, path, f"an answer larger than {MAX_ANSWER_BYTES >> 20} MiB"
            )
        try:
            document = json.loads(data) if data else {}
        except (ValueError, RecursionError):
            document = {}
        if 200 <= status < 300:
            if isinstance(document, dict) and (document or not data):
                return document
            raise self._not_an_api(status, method, path)
        raise self._translate(status, document, method, path, what)

    def _serialize(self, **request: Any) -> Any:
        """The client's request parts; building them may run an exec plugin or refresh a
        token (the client's refresh hook), which raises whatever it meets."""
        try:
            return self.api_client.param_serialize(**request, auth_settings=["BearerToken"])
        except Exception as exc:
            raise ClusterUnreachable(
                f"cannot get credentials for the API server at {self.server}: "
                f"{self._client_text(exc)}. Check the user of the kubeconfig's context."
            ) from None

    def _client_text(self, problem: object) -> str:
        """The first line of a client exception's text, scrubbed of the kubeconfig's secrets
        and of the credentials the client sends (an exec plugin's token is in no file)."""
        from .kubeconfig import scrub

        sent = [str(v) for v in self.api_client.configuration.api_key.values() if v]
        lines = str(problem).splitlines()
        return scrub(lines[0] if lines else type(problem).__name__, sent)

    def _not_an_api(self, status: int, method: str, path: str) -> ClusterUnreachable:
        return ClusterUnreachable(
            f"the server at {self.server} is not a Kubernetes API: it answered {method} {path} "
            f"with {status} and no Kubernetes object. Check the kubeconfig's server address "
            "(`kubectl cluster-info` prints the right one)."
        )

    def malformed_answer(self, method: str, path: str, reason: str) -> ClusterUnreachable:
        return self._malformed(method, path, reason)

    def _malformed(self, method: str, path: str, reason: str) -> ClusterUnreachable:
        return ClusterUnreachable(
            f"the server at {self.server} answered {method} {path} with {reason}, which no "
            "Kubernetes API server sends. Check the kubeconfig's server address and any proxy "
            "in front of the API server."
        )

    def _checked(self, document: Any, kind: str, method: str, path: str) -> dict[str, Any]:
        """The answer if it has the shape the API guarantees for a `kind` (kubeshape)."""
        from .kubeshape import check_object

        try:
            check_object(document, kind)
        except ValueError as exc:
            raise self._malformed(method, path, str(exc)) from None
        result: dict[str, Any] = document
        return result

    def _checked_items(self, document: Any, kind: str, path: str) -> _Items:
        from .kubeshape import check_list

        try:
            return check_list(document, kind)
        except ValueError as exc:
            raise self._malformed("GET", path, str(exc)) from None

    def _translate(
        self, status: int, document: Any, method: str, path: str, what: str
    ) -> JwksDeployError:
        message = str(document.get("message", "")) if isinstance(document, dict) else ""
        target = what or path
        if status == 401:
            return ClusterUnreachable(
                f"the API server at {self.server} refused our credentials (401 Unauthorized). "
                "Log in again or refresh the kubeconfig's token or certificate."
            )
        if status == 403:
            verb, resource, namespace = describe_request(method, path)
            where = f" in namespace {namespace!r}" if namespace else " at cluster scope"
            return Forbidden(
                f"the API server denied {verb} on {resource}{where} (403 Forbidden): {message} "
                f"Ask an administrator for RBAC permission to {verb} {resource}, or use a "
                "context that has it."
            )
        if status == 404:
            if not isinstance(document, dict) or document.get("kind") != "Status":
                return self._not_an_api(status, method, path)
            return NotFound(message or f"{target} not found")
        if status == 409:
            managers = conflicting_managers(document)
            fields = conflicting_fields(document)
            owners = ", ".join(managers) or "another client"
            where = f" ({', '.join(fields)})" if fields else ""
            summary = message.splitlines()[0] if message else "conflict"
            return ApplyConflict(
                f"applying {target} conflicts with fields managed by {owners}{where} (409): "
                f"{summary} Another tool set these fields; re-run with --force-conflicts to take "
                "them over, or remove them from the other tool.",
                managers,
                fields,
            )
        if status in (400, 422):
            return ClusterRejected(
                f"the API server rejected {target} ({status}): {message} Fix the value it "
                "names and run again."
            )
        if status == 429 or status >= 500:
            return ClusterUnreachable(
                f"the API server at {self.server} answered {status} for {target}: {message} "
                "It is overloaded or failing; try again shortly."
            )
        return ClusterRejected(f"the API server answered {status} for {target}: {message}")

    # --- operations -----------------------------------------------------------------------

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        path = resource_path(kind, namespace, name)
        try:
            document = self.request("GET", path, what=f"{kind} {name!r}")
        except NotFound:
            return None
        return self._checked(document, kind, "GET", path)

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        path = resource_path(kind, namespace)
        document = self.request("GET", path, query=query, what=kind)
        return self._checked_items(document, kind, path)

    def nodes(self) -> _Items:
        """The cluster's nodes, listed once per run (every namespace's URL needs them)."""
        with self._nodes_lock:
            if self._nodes is None:
                self._nodes = self.list("Node")
            return self._nodes

    def list_versioned(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[_Items, str]:
        """The items and the list's resourceVersion, to watch from."""
        query = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        path = resource_path(kind, namespace)
        document = self.request("GET", path, query=query, what=kind)
        items = self._checked_items(document, kind, path)
        version = str((document.get("metadata") or {}).get("resourceVersion") or "")
        return items, version

    def watch(
        self,
        kind: str,
        namespace: str | None,
        resource_version: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout: float = 30.0,
    ) -> WatchStream:
        """Open a watch from resource_version; the server ends it after `timeout` seconds.

        Raises WatchRefused when the server will not watch (then poll), WatchExpired on
        410 Gone (then list again), and our usual errors otherwise."""
        import urllib3

        query = {
            "watch": "1",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(max(1, int(timeout))),
        }
        if resource_version:
            query["resourceVersion"] = resource_version
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        path = resource_path(kind, namespace)
        _, url, header_params, _, _ = self._serialize(
            method="GET",
            resource_path=path,
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
        )
        self.requests_made += 1
        try:
            response = self.api_client.call_api(
                "GET",
                url,
                header_params=header_params,
                # the read timeout outlasts the server's own end of the watch
                _request_timeout=(self.request_timeout, max(1.0, timeout) + self.request_timeout),
            )
        except (urllib3.exceptions.HTTPError, OSError):
            raise ClusterUnreachable(
                f"cannot reach the API server at {self.server} to watch {kind}. Check that "
                "the cluster is running."
            ) from None
        status = int(response.status)
        if status == 200:
            return WatchStream(
                response.response,
                kind,
                lambda reason: self._malformed("GET", path + "?watch=1", reason),
            )
        data = response.response.read(MAX_ANSWER_BYTES)
        try:
            document = json.loads(data) if data else {}
        except (ValueError, RecursionError):
            document = {}
        if status == 410:
            raise WatchExpired(f"watch of {kind} expired")
        if status in (403, 405, 501) or (status == 400 and "watch" in str(document).lower()):
            raise WatchRefused(f"watch of {kind} refused ({status})")
        raise self._translate(status, document, "GET", path, kind)

    def apply(self, obj: dict[str, Any], *, dry_run: bool, force: bool) -> dict[str, Any]:
        """Server-side apply one object; returns the server's answer."""
        meta = obj["metadata"]
        query = {"fieldManager": self.field_manager, "fieldValidation": "Strict"}
        if force:
            query["force"] = "true"
        if dry_run:
            query["dryRun"] = "All"
        namespace = meta.get("namespace")
        what = f"{obj['kind']} {meta['name']!r}" + (f" in {namespace!r}" if namespace else "")
        path = resource_path(obj["kind"], namespace, meta["name"])
        try:
            answer = self.request(
                "PATCH",
                path,
                query=query,
                body=obj,
                content_type=APPLY_CONTENT_TYPE,
                what=what,
            )
            return self._checked(answer, obj["kind"], "PATCH", path)
        except NotFound as exc:
            raise ClusterRejected(
                f"namespace {namespace!r} does not exist ({exc}). Create it, or pass "
                "--create-namespace to let jwksdeploy create it."
            ) from None

    def delete(self, kind: str, namespace: str | None, name: str, *, dry_run: bool = False) -> bool:
        """Delete one object; False when it was already gone."""
        query = {"propagationPolicy": "Background"}
        if dry_run:
            query["dryRun"] = "All"
        try:
            self.request(
                "DELETE",
                resource_path(kind, namespace, name),
                query=query,
                what=f"{kind} {name!r}",
            )
        except NotFound:
            return False
        return True


class WatchStream:
    """The events of one open watch, as (type, object); ends when the server closes it."""

    def __init__(
        self,
        response: Any,
        kind: str = "",
        malformed: Callable[[str], JwksDeployError] | None = None,
    ) -> None:
        self._response = response
        self._kind = kind
        self._malformed = malformed

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        import urllib3

        try:
            for line in self._lines():
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except (ValueError, RecursionError):
                    continue
                if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
                    continue
                kind = str(event.get("type", ""))
                obj: dict[str, Any] = event["object"]
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise WatchExpired("watch expired")
                    return
                self._check(obj)
                yield kind, obj
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            return  # the connection ended (closed, timed out or shut down): resume
        finally:
            # a shut-down connection cannot go back to the pool
            with contextlib.suppress(Exception):
                self._response.release_conn()

    def _lines(self) -> Iterator[bytes]:
        """The stream's lines, each at most MAX_EVENT_BYTES: kubernetes' iter_resp_lines
        buffers a line without end (a server that never sends a newline fills the memory)."""
        buffer = bytearray()
        scanned = 0
        for segment in self._response.stream(amt=65536, decode_content=False):
            buffer.extend(segment)
            while (newline := buffer.find(b"\n", scanned)) >= 0:
                yield bytes(buffer[:newline])
                del buffer[: newline + 1]
                scanned = 0
            scanned = len(buffer)
            if scanned > MAX_EVENT_BYTES:
                reason = f"a watch event longer than {MAX_EVENT_BYTES >> 20} MiB"
                if self._malformed is not None:
                    raise self._malformed(reason)
                raise ClusterUnreachable(f"the API server sent {reason}.")

    def _check(self, obj: dict[str, Any]) -> None:
        from .kubeshape import check_object

        if self._kind and self._malformed is not None:
            try:
                check_object(obj, self._kind)
            except ValueError as exc:
                raise self._malformed(f"a watch event holding {exc}") from None

    def close(self) -> None:
        """End the stream from another thread (urllib3 interrupts the blocked read)."""
        with contextlib.suppress(Exception):  # already closed: nothing to interrupt
            self._response.shutdown()


def describe_request(method: str, path: str) -> tuple[str, str, str | None]:
    """(verb, resource, namespace) of a request path, as RBAC names them."""
    parts = [p for p in path.split("/") if p]
    namespace = None
    if "namespaces" in parts:
        index = parts.index("namespaces")
        if index + 2 < len(parts):
            namespace = parts[index + 1]
            parts = parts[index + 2 :]
        else:
            parts = parts[index:]
    else:
        parts = parts[2:] if parts[:1] == ["api"] else parts[3:]
    resource = parts[0] if parts else path
    verb = VERBS.get(method, method.lower())
    if method == "GET" and len(parts) < 2:
        verb = "list"
    return verb, resource, namespace


class _ClientLog(logging.Handler):
    """The client logs exec-plugin failures with logging.error(), whose first call would
    install a root handler printing every library's records raw (with the plugin's stderr,
    arguments and tokens). This handler is installed first: it shows the client's own errors
    as one scrubbed line and drops everything else."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name != "root" or record.levelno < logging.ERROR:
            return
        from .kubeconfig import scrub

        text = printable(scrub(record.getMessage()))
        sys.stderr.write(f"warning: the Kubernetes client says: {text}\n")


def _route_client_logs() -> None:
    root = logging.getLogger()
    if not any(isinstance(handler, _ClientLog) for handler in root.handlers):
        root.addHandler(_ClientLog())


@contextlib.contextmanager
def _private_folder() -> Iterator[str]:
    """A folder only we can read, for the files the client writes from the kubeconfig's
    inlined data (the client key among them); removed when the block ends, also on SIGTERM
    (a CI timeout), which Python would otherwise end without running this `finally`."""
    import shutil
    import signal
    import tempfile

    folder = tempfile.mkdtemp(prefix="jwksdeploy-kubeconfig-")
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if in_main else None

    def terminated(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    if in_main:
        signal.signal(signal.SIGTERM, terminated)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _context_shown(loaded: Any) -> str:
    return repr(loaded.context) if loaded is not None else "(service account)"


def _tls_in_memory(api_client: Any, configuration: Any) -> None:
    """Load the CA, client certificate and key the client wrote into files into one SSL
    context now, so the files can go at once: urllib3 would re-read them at every new
    connection, and the client removes them only at a normal exit."""
    if not (configuration.cert_file or configuration.ssl_ca_cert):
        return
    from urllib3.util.ssl_ import create_urllib3_context

    tls = create_urllib3_context()
    if configuration.verify_ssl:
        if configuration.ssl_ca_cert:
            tls.load_verify_locations(cafile=configuration.ssl_ca_cert)
        else:
            tls.load_default_certs()
    if configuration.cert_file:
        tls.load_cert_chain(configuration.cert_file, configuration.key_file)
    api_client.rest_client.pool_manager.connection_pool_kw.update(
        ssl_context=tls, ca_certs=None, cert_file=None, key_file=None
    )


def connect(
    kubeconfig: str | None = None, context: str | None = None, request_timeout: float = 30.0
) -> Cluster:
    """An ApiClient from --kubeconfig, $KUBECONFIG (merged like kubectl) or ~/.kube/config, or
    the in-cluster service account when none of those exist and we run in a pod.

    The kubeconfig files are read and checked by `kubeconfig.load` (bounded, safe YAML, the
    files they name inlined); whatever the client still raises while loading becomes one
    ClusterUnreachable sentence with no token or key in it."""
    from kubernetes import client, config

    from . import kubeconfig as kubeconfigs

    if not request_timeout > 0:  # urllib3 refuses a zero timeout only at the first watch
        raise InputError(
            f"--request-timeout {request_timeout:g}s is not more than zero: a request needs "
            "time to be answered. Pass a duration like 30s."
        )
    loaded = kubeconfigs.load(kubeconfig, context)
    _route_client_logs()
    configuration = client.Configuration()
    secrets = loaded.secrets() if loaded else []
    with _private_folder() as folder:
        try:
            if loaded is not None:
                config.load_kube_config_from_dict(
                    loaded.document,
                    context=loaded.context,
                    client_configuration=configuration,
                    persist_config=False,
                    temp_file_path=folder,
                )
            elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config(client_configuration=configuration)
            else:
                looked = os.environ.get("KUBECONFIG") or "~/.kube/config"
                raise ClusterUnreachable(
                    f"no kubeconfig found (looked at {looked}). Pass --kubeconfig, set KUBECONFIG, "
                    "or run inside a pod with a service account."
                )
        except JwksDeployError:
            raise
        except config.ConfigException as exc:
            text = kubeconfigs.scrub(str(exc).splitlines()[0] if str(exc) else "", secrets)
            raise ClusterUnreachable(
                f"cannot use the kubeconfig: {text}. Check --kubeconfig and --context "
                "(`kubectl config get-contexts` lists them)."
            ) from None
        except Exception as exc:  # the client's parsing raises whatever it meets
            raise ClusterUnreachable(
                f"cannot use the kubeconfig ({type(exc).__name__} while reading its "
                f"{'context ' + repr(loaded.context) if loaded else 'service account'}). Check the "
                "server address, certificates and user of that context."
            ) from None
        # One quick retry on a refused connection, not urllib3's default three with backoff,
        # and never a second wait on a server that accepted the request but does not answer.
        from urllib3.util.retry import Retry

        configuration.retries = Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)
        # Watches hold a connection each while apply works on several namespaces at once.
        configuration.connection_pool_maxsize = 64
        host = str(configuration.host)
        insecure = host.startswith("https") and not configuration.verify_ssl
        if insecure:
            # urllib3 would print a warning with file paths on every request; the CLI says it
            # once, in our words.
            import warnings

            import urllib3

            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        try:
            api_client = client.ApiClient(configuration)
            if loaded is not None:
                _tls_in_memory(api_client, configuration)
        except Exception as exc:  # ssl.SSLError on a bad key or CA, urllib3's on a proxy
            raise ClusterUnreachable(
                f"cannot use the certificates or proxy of the kubeconfig's context "
                f"{_context_shown(loaded)}: {kubeconfigs.scrub(str(exc), secrets)}. "
                "Check its certificate-authority, client-certificate, client-key and proxy-url."
            ) from None
    return Cluster(
        api_client=api_client,
        server=kubeconfigs.scrub(host),  # shown in messages: no userinfo
        request_timeout=request_timeout,
        insecure=insecure,
    )
