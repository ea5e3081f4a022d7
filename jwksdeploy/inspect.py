"""`url` and `status` as Options -> run() -> Result: where the JWKS of what apply deployed can
be fetched (a node's address, a load balancer's, the in-cluster name), and what is live. Cluster
reads only; no flag parsing and no printing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .checks import check_address, is_host
from .errors import ClusterRejected, Differences, Forbidden, JwksDeployError
from .kube.resources import DELETE_ORDER, OURS, ownership, resource_path

if TYPE_CHECKING:
    from .kube.client import Cluster


@dataclass(frozen=True)
class Endpoint:
    """Where the JWKS can be fetched, and how we found out."""

    url: str | None
    address: str | None
    node_port: int | None
    port: int | None
    source: str  # one human sentence: which node / which address kind / why unknown

    def as_dict(self, namespace: str) -> dict[str, Any]:
        """For `-o json`, keys in the order url and apply print them."""
        return {
            "namespace": namespace,
            "url": self.url,
            "address": self.address,
            "nodePort": self.node_port,
            "port": self.port,
            "addressSource": self.source,
        }


def node_address(nodes: list[dict[str, Any]]) -> tuple[str, str, str] | None:
    """(address, kind, node name): a Ready node's ExternalIP, else its InternalIP; nodes in
    name order so the answer is stable."""

    def ready(node: dict[str, Any]) -> bool:
        conditions = node.get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    ordered = sorted(nodes, key=lambda n: (not ready(n), n.get("metadata", {}).get("name", "")))
    for kind in ("ExternalIP", "InternalIP"):
        for node in ordered:
            for address in node.get("status", {}).get("addresses") or []:
                if address.get("type") == kind and address.get("address"):
                    return address["address"], kind, node["metadata"]["name"]
    return None


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def endpoint_for(cluster: Cluster, service: dict[str, Any], address: str | None = None) -> Endpoint:
    """The JWKS URL of a Service: NodePort on a node (or --address), a LoadBalancer's ingress,
    or the in-cluster name for ClusterIP."""
    spec = service.get("spec", {})
    meta = service.get("metadata", {})
    port_spec: dict[str, Any] = next(iter(spec.get("ports") or []), {})
    port = port_spec.get("port")
    node_port = port_spec.get("nodePort")
    kind = spec.get("type", "ClusterIP")
    if kind == "ClusterIP":
        host = f"{meta.get('name')}.{meta.get('namespace')}.svc.cluster.local"
        return Endpoint(
            f"http://{host}:{port}/jwks", host, None, port, "in-cluster DNS name (ClusterIP)"
        )
    check_address(address)
    if kind == "LoadBalancer" and not address:
        status = service.get("status", {}).get("loadBalancer", {})
        ingress: dict[str, Any] = next(iter(status.get("ingress") or []), {})
        lb = ingress.get("ip") or ingress.get("hostname")
        if lb and not is_host(lb):
            where = resource_path("Service", str(meta.get("namespace")), str(meta.get("name")))
            raise cluster.malformed_answer("GET", where, f"a load balancer address {lb!r}")
        if lb:
            return Endpoint(
                f"http://{_host(lb)}:{port}/jwks", lb, node_port, port, "load balancer ingress"
            )
    if node_port is None:
        return Endpoint(None, None, None, port, "the Service has no nodePort yet")
    if address:
        return Endpoint(
            f"http://{_host(address)}:{node_port}/jwks", address, node_port, port, "--address"
        )
    try:
        nodes = cluster.nodes()
    except Forbidden:
        return Endpoint(
            None,
            None,
            node_port,
            port,
            f"nodes cannot be listed (RBAC); the URL is http://<any node or gateway "
            f"address>:{node_port}/jwks, or pass --address",
        )
    found = node_address(nodes)
    if found is None:
        return Endpoint(None, None, node_port, port, "no node reports an address; pass --address")
    host, address_kind, node = found
    if not is_host(host):
        raise cluster.malformed_answer("GET", "/api/v1/nodes", f"a node address {host!r}")
    waiting = " (load balancer pending; NodePort used)" if kind == "LoadBalancer" else ""
    return Endpoint(
        f"http://{_host(host)}:{node_port}/jwks",
        host,
        node_port,
        port,
        f"{address_kind} of node {node}{waiting}",
    )


def deployed_endpoint(
    cluster: Cluster, namespace: str, service_name: str, address: str | None = None
) -> Endpoint:
    """The endpoint of a Service `apply` created, or ClusterRejected naming the fix."""
    service = cluster.get("Service", namespace, service_name)
    if service is None:
        raise ClusterRejected(
            f"there is no Service {service_name!r} in namespace {namespace!r}. Deploy it with "
            f"`jwksdeploy apply --namespace {namespace}`, or pass the --name you used."
        )
    return endpoint_for(cluster, service, address)


def deployed_url(cluster: Cluster, namespace: str, name: str, address: str | None) -> str:
    """The URL `apply` printed for the instance `name` in `namespace`, read from the cluster."""
    endpoint = deployed_endpoint(cluster, namespace, name, address)
    if endpoint.url is None:
        raise ClusterRejected(
            f"the JWKS URL in namespace {namespace!r} is not known: {endpoint.source}. Pass "
            "--address or --url."
        )
    return str(endpoint.url)


# --- what is live -------------------------------------------------------------------------------

MANAGED_KINDS = DELETE_ORDER


def instance_names(name: str) -> dict[str, str]:
    """The object names of the instance `name` (the --name apply used), by kind."""
    from .checks import check_object_name
    from .settings import DEFAULT_NAME, Settings

    settings = Settings(namespaces=("unused",), name=check_object_name(name or DEFAULT_NAME))
    return {
        "ConfigMap": settings.configmap_name,
        "Service": settings.name,
        "Deployment": settings.name,
        "PodDisruptionBudget": settings.name,
    }


def managed_objects(
    cluster: Cluster, namespace: str, names: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """The live objects of one instance that are ours (managed-by and instance labels), by
    kind: the same ownership test apply uses to decide what it adopts."""
    found = {}
    for kind in MANAGED_KINDS:
        obj = cluster.get(kind, namespace, names[kind])
        if obj is not None and ownership(obj, names["Deployment"]).state == OURS:
            found[kind] = obj
    return found


# --- url ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UrlOptions:
    namespaces: tuple[str, ...]
    name: str  # the instance (apply's --name)
    address: str | None = None


@dataclass
class UrlResult:
    """Each namespace's endpoint, in order, up to the first that failed (`error`)."""

    service: str
    endpoints: list[tuple[str, Endpoint]] = field(default_factory=list)
    error: JwksDeployError | None = None


def run_url(cluster: Cluster, options: UrlOptions) -> UrlResult:
    names = instance_names(options.name)
    result = UrlResult(names["Service"])
    for namespace in options.namespaces:
        try:
            endpoint = deployed_endpoint(cluster, namespace, names["Service"], options.address)
        except JwksDeployError as exc:
            result.error = exc
            break
        result.endpoints.append((namespace, endpoint))
    return result


# --- status -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusOptions:
    namespaces: tuple[str, ...]
    name: str
    local_jwks: str | None = None  # the text of --jwks, to compare with the live ConfigMap
    local_jwks_path: str | None = None  # where it came from, for the verdict


@dataclass(frozen=True)
class NamespaceStatus:
    namespace: str
    objects: list[str]  # kind/name, sorted
    ready: str | None  # "ready/desired"
    rolled_out: bool
    url: str | None
    jwks_checksum: str | None
    matches_local_jwks: bool | None  # None without --jwks or a live JWKS

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "objects": self.objects,
            "ready": self.ready,
            "rolledOut": self.rolled_out,
            "url": self.url,
            "jwksChecksum": self.jwks_checksum,
            "matchesLocalJwks": self.matches_local_jwks,
        }


@dataclass(frozen=True)
class StatusResult:
    namespaces: list[NamespaceStatus]
    local_jwks_path: str | None = None

    def differences(self) -> Differences | None:
        """Exit 1 (not a failure): the live JWKS differs from --jwks or a rollout is behind."""
        behind = [r.namespace for r in self.namespaces if not r.rolled_out]
        differs = [r.namespace for r in self.namespaces if r.matches_local_jwks is False]
        if not (behind or differs):
            return None
        reasons = []
        if differs:
            reasons.append(
                f"the live JWKS differs from {self.local_jwks_path} in {', '.join(differs)}"
            )
        if behind:
            reasons.append(f"the rollout is incomplete in {', '.join(behind)}")
        return Differences(
            f"{'; '.join(reasons)}. `jwksdeploy apply` deploys the local set; `jwksdeploy "
            "apply --wait` waits for the rollout."
        )


def run_status(cluster: Cluster, options: StatusOptions) -> StatusResult:
    """What is live per namespace; ClusterRejected when nothing of the instance is."""
    from .kube.rollout import rollout_state
    from .render import JWKS_KEY, jwks_checksum

    names = instance_names(options.name)
    local = options.local_jwks
    found = []
    for namespace in options.namespaces:
        live = managed_objects(cluster, namespace, names)
        if not live:
            raise ClusterRejected(
                f"nothing managed by jwksdeploy named {options.name!r} in namespace "
                f"{namespace!r}. Deploy it with `jwksdeploy apply --namespace {namespace}`, or "
                "pass the --name you used."
            )
        state = rollout_state(live["Deployment"]) if "Deployment" in live else None
        endpoint = endpoint_for(cluster, live["Service"]) if "Service" in live else None
        live_text = (live.get("ConfigMap", {}).get("data") or {}).get(JWKS_KEY)
        found.append(
            NamespaceStatus(
                namespace=namespace,
                objects=sorted(
                    f"{kind.lower()}/{obj['metadata']['name']}" for kind, obj in live.items()
                ),
                ready=f"{state.ready}/{state.desired}" if state else None,
                rolled_out=state.done if state else False,
                url=endpoint.url if endpoint else None,
                jwks_checksum=jwks_checksum(live_text) if live_text is not None else None,
                matches_local_jwks=(
                    None
                    if local is None or live_text is None
                    else jwks_checksum(local) == jwks_checksum(live_text)
                ),
            )
        )
    return StatusResult(found, options.local_jwks_path)


def server_version(
    kubeconfig: str | None, context: str | None, timeout: float
) -> tuple[Any, str | None]:
    """The API server's /version document, or None and why not; never raises."""
    from .errors import JwksDeployError
    from .kube.client import connect

    try:
        cluster = connect(kubeconfig, context, timeout)
    except JwksDeployError as exc:
        return None, str(exc)
    try:
        return cluster.request("GET", "/version", what="the server version"), None
    except JwksDeployError as exc:
        return None, str(exc)
    finally:
        cluster.close()
