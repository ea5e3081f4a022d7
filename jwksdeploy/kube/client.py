"""The only module that talks to Kubernetes, through the official `kubernetes` client.

Only the client's Configuration, REST transport (urllib3, TLS, proxies) and exec plugin
runner are imported, lazily and without the package's __init__ (which imports all of it):
requests are plain JSON over typed API paths, server-side apply is a PATCH with
`application/apply-patch+yaml`, and `kube.access` fills the Configuration from our own
kubeconfig reader. Every answer that is not a success becomes one of our errors through
`kube.errors.api_error`, one readable paragraph instead of headers and bodies.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    ClusterUnreachable,
    JwksDeployError,
    NamespaceMissing,
    NotFound,
    RequestTimedOut,
    WatchExpired,
    WatchRefused,
)
from ..kubeconfig import Kubeconfig
from ..terminal import printable
from .access import (
    PluginNode,
    access_of,
    configure,
    defer_init,
    private_folder,
    route_client_logs,
)
from .errors import api_error, malformed, not_an_api
from .resources import FIELD_MANAGER, resource_path
from .stream import WatchStream

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"

# The largest answer read (a Node list of a big cluster is a few MiB); more is not an API's.
MAX_ANSWER_BYTES = 64 << 20


_Items = list[dict[str, Any]]  # a name of its own: Cluster.list shadows `list` in its body


@dataclass
class Cluster:
    """A connection to one API server."""

    rest: Any  # kubernetes.client.rest.RESTClientObject
    configuration: Any  # kubernetes.client.configuration.Configuration
    server: str
    request_timeout: float = 30.0
    warnings: list[str] = field(default_factory=list)
    insecure: bool = False  # the kubeconfig skips TLS verification
    field_manager: str = FIELD_MANAGER  # apply --field-manager
    user_agent: str = "jwksdeploy"
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

        try:
            response = self._send(
                method, path, query, self.request_timeout, body=body, content_type=content_type
            )
            try:
                data = response.response.read(MAX_ANSWER_BYTES + 1)
            finally:
                # Back to the pool: an answer left checked out holds its socket until the
                # garbage collector finds it (a ResourceWarning, mid-command).
                response.response.release_conn()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, urllib3.exceptions.ReadTimeoutError) or (
                isinstance(reason, urllib3.exceptions.TimeoutError)
                and not isinstance(reason, urllib3.exceptions.ConnectTimeoutError)
            ):
                raise RequestTimedOut(self.server, method, path, self.request_timeout) from None
            raise ClusterUnreachable(
                f"cannot reach the API server at {self.server} ({type(reason).__name__}). "
                "Check that the cluster is running and that --kubeconfig/--context point at it."
            ) from None
        except JwksDeployError:
            raise  # no credentials to send (_authorization)
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
            raise self.malformed_answer(
                method, path, f"an answer larger than {MAX_ANSWER_BYTES >> 20} MiB"
            )
        try:
            document = json.loads(data) if data else {}
        except (ValueError, RecursionError):
            document = {}
        if 200 <= status < 300:
            if isinstance(document, dict) and (document or not data):
                return document
            raise not_an_api(self.server, status, method, path)
        raise api_error(status, document, method, path, server=self.server, what=what)

    def _send(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None,
        timeout: float | tuple[float, float],
        *,
        body: Any = None,
        content_type: str | None = None,
    ) -> Any:
        """The one HTTP call through the client's REST transport: its response, unread; the
        transport's failures are raised as they come, for the caller to name."""
        from urllib.parse import quote

        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if content_type:
            headers["Content-Type"] = content_type
        authorization = self._authorization()
        if authorization:
            headers["authorization"] = authorization
        url = self.configuration.host + path
        if query:
            url += "?" + "&".join(f"{k}={quote(str(v))}" for k, v in query.items())
        return self.rest.request(method, url, headers=headers, body=body, _request_timeout=timeout)

    def _authorization(self) -> str | None:
        """The credential to send; getting it may run an exec plugin again (the refresh
        hook, when its token expires), which raises whatever it meets."""
        try:
            value = self.configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
        except Exception as exc:
            raise ClusterUnreachable(
                f"cannot get credentials for the API server at {self.server}: "
                f"{self._client_text(exc)}. Check the user of the kubeconfig's context."
            ) from None
        return str(value) if value else None

    def _client_text(self, problem: object) -> str:
        """The first line of a client exception's text, scrubbed of the kubeconfig's secrets
        and of the credentials the client sends (an exec plugin's token is in no file)."""
        from ..kubeconfig import scrub

        sent = [str(v) for v in self.configuration.api_key.values() if v]
        lines = str(problem).splitlines()
        return scrub(lines[0] if lines else type(problem).__name__, sent)

    def close(self) -> None:
        """Close the pooled connections now, not when the garbage collector gets to them."""
        self.rest.pool_manager.clear()

    def malformed_answer(self, method: str, path: str, reason: str) -> ClusterUnreachable:
        return malformed(self.server, method, path, reason)

    def _checked(self, document: Any, kind: str, method: str, path: str) -> dict[str, Any]:
        """The answer if it has the shape the API guarantees for a `kind` (views)."""
        from .views import check_object

        try:
            check_object(document, kind)
        except ValueError as exc:
            raise self.malformed_answer(method, path, str(exc)) from None
        result: dict[str, Any] = document
        return result

    def _checked_items(self, document: Any, kind: str, path: str) -> _Items:
        from .views import check_list

        try:
            return check_list(document, kind)
        except ValueError as exc:
            raise self.malformed_answer("GET", path, str(exc)) from None

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
        try:
            # the read timeout outlasts the server's own end of the watch
            read_timeout = max(1.0, timeout) + self.request_timeout
            response = self._send("GET", path, query, (self.request_timeout, read_timeout))
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
                lambda reason: self.malformed_answer("GET", path + "?watch=1", reason),
                (urllib3.exceptions.HTTPError, OSError, ValueError),
            )
        data = response.response.read(MAX_ANSWER_BYTES)
        try:
            document = json.loads(data) if data else {}
        except (ValueError, RecursionError):
            document = {}
        if status == 410:
            raise WatchExpired(kind)
        if status in (403, 405, 501) or (status == 400 and "watch" in str(document).lower()):
            raise WatchRefused(kind, status)
        raise api_error(status, document, "GET", path, server=self.server, what=kind)

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
            raise NamespaceMissing(namespace, str(exc)) from None

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


def _context_shown(loaded: Any) -> str:
    return repr(loaded.context) if loaded is not None else "(service account)"


def _tls_in_memory(rest: Any, configuration: Any) -> None:
    """Load the CA, client certificate and key written into files into one SSL context now,
    so the files can go at once: urllib3 would re-read them at every new connection."""
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
    rest.pool_manager.connection_pool_kw.update(
        ssl_context=tls, ca_certs=None, cert_file=None, key_file=None
    )


def _client_modules() -> tuple[Any, Any]:
    """The official client's Configuration and REST transport modules, and nothing else of
    it (no generated API or model, no pydantic: answers are read as plain JSON)."""
    defer_init("kubernetes")
    import kubernetes.client.configuration as configuration
    import kubernetes.client.rest as rest

    return configuration, rest


def _run_exec_plugin(exec_config: dict[str, Any], cluster: dict[str, Any]) -> Any:
    """The status an exec credential plugin returns, through the client's own ExecProvider."""
    defer_init("kubernetes")
    defer_init("kubernetes.config")
    from kubernetes.config.exec_provider import ExecProvider

    return ExecProvider(PluginNode(exec_config), None, PluginNode(cluster)).run()


def _load_with_official_loader(configuration: Any, loaded: Kubeconfig, folder: str) -> None:
    """An auth-provider (gcp, oidc) user: the official loader, which speaks OAuth."""
    from kubernetes import config

    config.load_kube_config_from_dict(
        loaded.document,
        context=loaded.context,
        client_configuration=configuration,
        persist_config=False,
        temp_file_path=folder,
    )


def connect(
    kubeconfig: str | None = None, context: str | None = None, request_timeout: float = 30.0
) -> Cluster:
    """The client's transport from --kubeconfig, $KUBECONFIG (merged like kubectl) or
    ~/.kube/config, or the in-cluster service account when none of those exist and we run in
    a pod.

    The kubeconfig files are read and checked by `kubeconfig.load` (bounded, safe YAML, the
    files they name inlined); whatever the client still raises while loading becomes one
    ClusterUnreachable sentence with no token or key in it."""
    from .. import kubeconfig as kubeconfigs

    loaded = kubeconfigs.load(kubeconfig, context)
    route_client_logs()
    configuration_module, rest_module = _client_modules()
    configuration = configuration_module.Configuration()
    secrets = loaded.secrets() if loaded else []
    with private_folder() as folder:
        try:
            if loaded is not None:
                access = access_of(loaded)
                if access.auth_provider:
                    _load_with_official_loader(configuration, loaded, folder)
                else:
                    configure(configuration, access, folder, _run_exec_plugin)
            elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                defer_init("kubernetes.config")
                from kubernetes.config.incluster_config import load_incluster_config

                load_incluster_config(client_configuration=configuration)
            else:
                looked = os.environ.get("KUBECONFIG") or "~/.kube/config"
                raise ClusterUnreachable(
                    f"no kubeconfig found (looked at {looked}). Pass --kubeconfig, set KUBECONFIG, "
                    "or run inside a pod with a service account."
                )
        except JwksDeployError:
            raise
        except Exception as exc:  # the client's parsing raises whatever it meets
            if type(exc).__name__ == "ConfigException":
                text = kubeconfigs.scrub(str(exc).splitlines()[0] if str(exc) else "", secrets)
                raise ClusterUnreachable(
                    f"cannot use the kubeconfig: {text}. Check --kubeconfig and --context "
                    "(`kubectl config get-contexts` lists them)."
                ) from None
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
            rest = rest_module.RESTClientObject(configuration)
            if loaded is not None:
                _tls_in_memory(rest, configuration)
        except Exception as exc:  # ssl.SSLError on a bad key or CA, urllib3's on a proxy
            raise ClusterUnreachable(
                f"cannot use the certificates or proxy of the kubeconfig's context "
                f"{_context_shown(loaded)}: {kubeconfigs.scrub(str(exc), secrets)}. "
                "Check its certificate-authority, client-certificate, client-key and proxy-url."
            ) from None
    return Cluster(
        rest=rest,
        configuration=configuration,
        server=kubeconfigs.scrub(host),  # shown in messages: no userinfo
        request_timeout=request_timeout,
        insecure=insecure,
        # the official client's own User-Agent, as its ApiClient sends it
        user_agent=f"OpenAPI-Generator/{sys.modules['kubernetes.client'].__version__}/python",
    )
