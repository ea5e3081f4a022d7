"""Record a gateway configuration's cache window on the instance's ConfigMap, for `rotate`
(used by `apply --provider` and `gateway -n`). A failure is data, never the command's failure:
the configuration was printed, and rotate falls back to 20m or a flag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import JwksDeployError
from .kube.client import APPLY_CONTENT_TYPE
from .kube.resources import resource_path
from .rotation import GatewayWindow
from .rotation_record import GATEWAYS_ANNOTATION

if TYPE_CHECKING:
    from .kube.client import Cluster

# The gateway record's own field manager: neither a plain `apply` (which never sends it) nor
# GitOps applying `render`'s output removes it or reports it as drift.
GATEWAY_MANAGER = "jwksdeploy-gateway"


@dataclass(frozen=True)
class CacheWindowRecord:
    namespace: str
    configmap: str
    key: str  # provider/name
    window: str  # the exact window, e.g. 5m (what to pass as --cache-window)
    why: str
    dry_run: bool
    recorded: bool  # False: no ConfigMap (yet), or `error`
    error: JwksDeployError | None = None


def record_cache_window(
    cluster: Cluster, namespace: str, configmap: str, key: str, config: Any, dry_run: bool
) -> CacheWindowRecord:
    window = GatewayWindow(config.cache_window, config.cache_window_why)

    def outcome(recorded: bool, error: JwksDeployError | None = None) -> CacheWindowRecord:
        return CacheWindowRecord(
            namespace,
            configmap,
            key,
            config.cache_window_text,
            window.why,
            dry_run,
            recorded,
            error,
        )

    try:
        return outcome(record_gateway(cluster, namespace, configmap, key, window, dry_run))
    except JwksDeployError as exc:
        return outcome(False, exc)


def record_gateway(
    cluster: Cluster,
    namespace: str,
    configmap: str,
    key: str,
    window: GatewayWindow,
    dry_run: bool,
) -> bool:
    """Merge one gateway's cache window into the instance ConfigMap's gateway record (an
    annotation on its metadata: the served bytes and the pods stay as they are). False when
    the ConfigMap does not exist (yet), so there is nothing to record on."""
    from .rotation_record import gateway_windows_json, parse_gateway_windows

    obj = cluster.get("ConfigMap", namespace, configmap)
    if obj is None:
        return False
    metadata = obj.get("metadata") or {}
    where = f"ConfigMap {configmap!r} in {namespace!r}"
    windows = parse_gateway_windows(
        (metadata.get("annotations") or {}).get(GATEWAYS_ANNOTATION), where
    )
    if windows.get(key) == window:
        return True  # already recorded: no write, no new resourceVersion
    windows[key] = window
    fields: dict[str, Any] = {"name": configmap, "namespace": namespace}
    if isinstance(metadata.get("resourceVersion"), str):
        # Makes the apply conditional: a record merged by someone else since the read is a
        # 409, never silently overwritten.
        fields["resourceVersion"] = metadata["resourceVersion"]
    annotations = {GATEWAYS_ANNOTATION: gateway_windows_json(windows)}
    apply_annotations(cluster, fields, annotations, GATEWAY_MANAGER, dry_run)
    return True


def apply_annotations(
    cluster: Cluster,
    metadata: dict[str, Any],
    annotations: dict[str, str],
    manager: str,
    dry_run: bool,
) -> None:
    """Server-side apply of annotations on the instance ConfigMap under their own field
    manager, so a later `apply` (another manager) neither owns nor drops them."""
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {**metadata, "annotations": annotations},
    }
    query = {"fieldManager": manager, "fieldValidation": "Strict", "force": "true"}
    if dry_run:
        query["dryRun"] = "All"
    namespace, name = metadata["namespace"], metadata["name"]
    cluster.request(
        "PATCH",
        resource_path("ConfigMap", namespace, name),
        query=query,
        body=body,
        content_type=APPLY_CONTENT_TYPE,
        what=f"ConfigMap {name!r} in {namespace!r}",
    )
