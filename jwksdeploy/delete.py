"""`delete` as Options -> run() -> Result: remove the objects of one instance that are ours
(name and managed-by label), in each namespace (a bounded pool), optionally waiting until they
are gone; or a client / server dry run of it. No flag parsing and no printing here.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import JwksDeployError, NamespacesFailed
from .inspect import MANAGED_KINDS, instance_names, managed_objects

if TYPE_CHECKING:
    from .kube.client import Cluster

DEFAULT_PARALLEL = 4
DRY_RUNS = ("none", "client", "server")


@dataclass(frozen=True)
class DeleteOptions:
    namespaces: tuple[str, ...]
    name: str  # the instance (apply's --name)
    dry_run: str = "none"  # client: only read what would go; server: the API server's dry run
    wait: bool = False
    timeout: float = 120.0
    parallel: int = DEFAULT_PARALLEL


@dataclass
class NamespaceDeleted:
    namespace: str
    outcomes: list[tuple[str, str, str]] = field(default_factory=list)  # kind, name, outcome
    error: JwksDeployError | None = None


@dataclass
class DeleteResult:
    """Each namespace in order; `error` is the one to exit with. A dry run stops at its first
    failing namespace, which is then not listed."""

    namespaces: list[NamespaceDeleted]
    error: JwksDeployError | None = None


def run(cluster: Cluster, options: DeleteOptions) -> DeleteResult:
    names = instance_names(options.name)
    if options.dry_run == "none":
        deleted = _delete(cluster, options, names)
        return DeleteResult(deleted, delete_error(deleted))
    checked = []
    for namespace in options.namespaces:
        try:
            checked.append(_dry_run(cluster, namespace, names, options.dry_run))
        except JwksDeployError as exc:
            return DeleteResult(checked, exc)
    return DeleteResult(checked)


def _dry_run(
    cluster: Cluster, namespace: str, names: dict[str, str], mode: str
) -> NamespaceDeleted:
    live = managed_objects(cluster, namespace, names)
    result = NamespaceDeleted(namespace)
    for kind in MANAGED_KINDS:
        found = kind in live and (
            mode == "client" or cluster.delete(kind, namespace, names[kind], dry_run=True)
        )
        outcome = f"deleted ({mode} dry run)" if found else "not found"
        result.outcomes.append((kind, names[kind], outcome))
    return result


def _delete(
    cluster: Cluster, options: DeleteOptions, names: dict[str, str]
) -> list[NamespaceDeleted]:
    """Delete in each namespace; a namespace that fails does not stop the others."""

    def one(namespace: str) -> NamespaceDeleted:
        result = NamespaceDeleted(namespace)
        try:
            result.outcomes = delete_objects(
                cluster, namespace, names, options.wait, options.timeout
            )
        except JwksDeployError as exc:
            result.error = exc
        return result

    workers = max(1, min(options.parallel, len(options.namespaces)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            return list(pool.map(one, options.namespaces))
        except KeyboardInterrupt:
            from .kube.wait import CANCELLED

            CANCELLED.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def delete_objects(
    cluster: Cluster, namespace: str, names: dict[str, str], wait: bool, timeout: float
) -> list[tuple[str, str, str]]:
    """Delete what jwksdeploy manages (by name and managed-by label); (kind, name, outcome)."""
    results = []
    live = managed_objects(cluster, namespace, names)
    for kind in MANAGED_KINDS:
        if kind not in live:
            results.append((kind, names[kind], "not found"))
            continue
        gone = cluster.delete(kind, namespace, names[kind])
        results.append((kind, names[kind], "deleted" if gone else "not found"))
    if wait and live:
        from .kube.wait import wait_until_gone

        wait_until_gone(cluster, namespace, [(kind, names[kind]) for kind in live], timeout)
    return results


def delete_error(results: list[NamespaceDeleted]) -> JwksDeployError | None:
    """The error to exit with after a delete: the only failure, or a summary of them."""
    failed = [(r.namespace, r.error) for r in results if r.error is not None]
    if not failed:
        return None
    if len(results) == 1:
        return failed[0][1]
    return NamespacesFailed(failed, len(results), "the others were deleted")
