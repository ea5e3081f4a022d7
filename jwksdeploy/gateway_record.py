"""Record a gateway configuration's cache window on the instance's ConfigMap, for `rotate`
(used by `apply --provider` and `gateway -n`). A failure is data, never the command's failure:
the configuration was printed, and rotate falls back to 20m or a flag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import JwksDeployError

if TYPE_CHECKING:
    from .cluster import Cluster


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
    from .rotate_cluster import record_gateway
    from .rotation import GatewayWindow

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
