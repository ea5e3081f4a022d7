"""`apply` as Options -> run() -> Result: pre-flight, adopt, apply, prune, wait, endpoint,
on one namespace or many (a bounded pool); no flag parsing and no printing here.

The pre-flight (reading what is live and a server-side dry run of every object) covers every
namespace before the first write, so a predictable refusal anywhere changes nothing. After
that each namespace goes on alone: one whose rollout fails does not stop the others, and
the result says which failed and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import JwksDeployError, NamespacesFailed, WaitTimeout
from .kube.rollout import Verdict

if TYPE_CHECKING:
    from .adopt import NamespacePlan
    from .apply_plan import AppliedObject
    from .gateway_record import CacheWindowRecord
    from .inspect import Endpoint
    from .kube.client import Cluster

DEFAULT_PARALLEL = 4


@dataclass(frozen=True)
class GatewayRequest:
    """apply --provider: each namespace's gateway configuration for its URL, once known, and
    (record) its cache window on the instance's ConfigMap for `rotate`."""

    provider: str
    name: str  # provider/name is the record's key; "-<namespace>" is added with several
    build: Callable[[str, str], Any]  # (name, url) -> GatewayConfig, from the gateway flags
    configmap: str
    record: bool = True


@dataclass(frozen=True)
class ApplyOptions:
    """What to apply and how; the CLI binds its flags to these fields."""

    objects: list[dict[str, Any]]  # rendered, every namespace
    instance: str
    create_namespace: bool = False
    dry_run: bool = False
    force: bool = False
    recreate: bool = False
    prune: bool = True
    wait: bool = True
    timeout: float = 120.0
    parallel: int = DEFAULT_PARALLEL
    address: str | None = None
    field_manager: str | None = None  # None: the cluster's (jwksdeploy)
    gateway: GatewayRequest | None = None


@dataclass
class Listener:
    """What the caller hears while apply runs (from several threads at once)."""

    plan: Callable[[NamespacePlan], None] = lambda plan: None
    applied: Callable[[AppliedObject], None] = lambda obj: None
    progress: Callable[[str, Verdict, float], None] = lambda ns, verdict, elapsed: None


@dataclass
class NamespaceResult:
    namespace: str
    objects: list[AppliedObject] = field(default_factory=list)  # pruned ones included
    endpoint: Endpoint | None = None
    verdict: Verdict | None = None  # None without --wait
    error: JwksDeployError | None = None
    waited: float | None = None  # seconds from the last write to the verdict
    down_for: float | None = None  # --recreate: seconds the endpoint was down (with wait)
    down_since: float | None = None
    dry_run: bool = False
    gateway: Any = None  # the GatewayConfig (with --provider, once the URL is known)
    gateway_missing: bool = False  # --provider, but the URL is not known
    cache_window: CacheWindowRecord | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        """The namespace for `-o json`: its URL, objects, whether it failed and why, the
        rollout, what was pruned and (--provider) the gateway's objects."""
        from .inspect import Endpoint

        endpoint = self.endpoint or Endpoint(None, None, None, None, "")
        verdict = self.verdict
        return {
            **endpoint.as_dict(self.namespace),
            "addressSource": endpoint.source if self.endpoint else None,
            "dryRun": self.dry_run,
            "objects": [
                {"kind": o.kind, "name": o.name, "namespace": o.namespace, "outcome": o.outcome}
                for o in self.objects
            ],
            "ok": self.ok,
            "exitCode": self.error.exit_code if self.error is not None else 0,
            "error": self.error.report() if self.error is not None else None,
            "rollout": None
            if verdict is None
            else {
                "status": verdict.status,
                "ready": verdict.ready,
                "desired": verdict.desired,
                "reason": verdict.reason or None,
                "object": verdict.subject or None,
            },
            "pruned": [f"{o.kind.lower()}/{o.name}" for o in self.objects if o.outcome == "pruned"],
            "gateway": self.gateway.objects if self.gateway is not None else None,
        }


@dataclass
class ApplyResult:
    results: list[NamespaceResult]
    api_warnings: list[str] = field(default_factory=list)  # the API server's Warning headers

    @property
    def failed(self) -> list[NamespaceResult]:
        return [r for r in self.results if r.error is not None]

    def error(self) -> JwksDeployError | None:
        """None when every namespace succeeded; else the one error to exit with: the only
        failure itself, or a summary with the first failure's exit code."""
        failed = self.failed
        if not failed:
            return None
        errors = [(r.namespace, r.error) for r in failed if r.error is not None]
        if len(self.results) == 1:
            return errors[0][1]
        return NamespacesFailed(errors, len(self.results), "the others succeeded")


def _pool(parallel: int, count: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(1, min(parallel, count)))


def run(cluster: Cluster, options: ApplyOptions, listen: Listener | None = None) -> ApplyResult:
    """Apply options.objects; raise only when the pre-flight refuses (nothing changed)."""
    from .apply_plan import plan_apply, preflight

    listen = listen or Listener()
    if options.field_manager is not None:
        cluster.field_manager = options.field_manager
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for obj in options.objects:
        by_namespace.setdefault(obj["metadata"]["namespace"], []).append(obj)

    def check(namespace: str) -> tuple[Any, Any]:
        group = by_namespace[namespace]
        plans = plan_apply(
            cluster,
            group,
            instance=options.instance,
            recreate=options.recreate,
            force=options.force,
        )
        created = None
        try:
            # A dry run cannot create a namespace, and objects cannot be dry-run in one that
            # does not exist: create it for real, dry-run in it, delete it on a refusal.
            real_create = options.create_namespace and not options.dry_run
            if real_create:
                created = create_missing_namespace(cluster, namespace, force=options.force)
            answers = preflight(
                cluster,
                plans,
                # it exists now: preflight need not look (a dry run's still may not)
                create_namespace=options.create_namespace and not real_create,
                force=options.force,
            )
        except JwksDeployError as exc:
            left = undo_namespaces(cluster, [namespace] if created else [])
            raise exc.refused_before_writes(tuple(left)) from None
        if created is not None:
            answers[("Namespace", namespace, None)] = created
        return plans[0], answers

    namespaces = list(by_namespace)
    failure: JwksDeployError | None = None
    checked = []
    with _pool(options.parallel, len(namespaces)) as pool:
        futures = [pool.submit(check, ns) for ns in namespaces]
        for future in futures:
            if future.cancelled():
                continue
            try:
                checked.append(future.result())
            except JwksDeployError as exc:
                failure = failure or exc
                for other in futures:
                    other.cancel()
    if failure is not None:
        # Another namespace's pre-flight refused: undo what this run created elsewhere.
        if options.create_namespace and not options.dry_run:
            undo_namespaces(
                cluster, [p.namespace for p, a in checked if ("Namespace", p.namespace, None) in a]
            )
        raise failure
    with _pool(options.parallel, len(namespaces)) as pool:
        try:
            results = list(
                pool.map(
                    lambda item: _one_namespace(cluster, options, listen, *item),
                    checked,
                )
            )
        except KeyboardInterrupt:
            from .kube.wait import CANCELLED

            CANCELLED.set()  # the pool's waiters stop within 0.25 s
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    if options.gateway is not None:
        _gateways(cluster, options, options.gateway, results)
    return ApplyResult(results, list(cluster.warnings))


def _gateways(
    cluster: Cluster, options: ApplyOptions, gateway: GatewayRequest, results: list[NamespaceResult]
) -> None:
    """Each namespace's gateway configuration for its URL, then the records of their cache
    windows where the namespace succeeded."""
    from .gateway_record import record_cache_window

    def suffix(result: NamespaceResult) -> str:
        return f"-{result.namespace}" if len(results) > 1 else ""

    for result in results:
        url = result.endpoint.url if result.endpoint is not None else None
        if url is None:
            result.gateway_missing = True
        else:
            result.gateway = gateway.build(f"{gateway.name}{suffix(result)}", url)
    if not gateway.record:
        return
    for result in results:
        if result.gateway is not None and result.error is None:
            result.cache_window = record_cache_window(
                cluster,
                result.namespace,
                gateway.configmap,
                f"{gateway.provider}/{gateway.name}{suffix(result)}",
                result.gateway,
                options.dry_run,
            )


def create_missing_namespace(
    cluster: Cluster, namespace: str, *, force: bool
) -> dict[str, Any] | None:
    """Create the namespace if it is missing (--create-namespace, before the pre-flight);
    the server's answer, or None when it existed."""
    if cluster.get("Namespace", None, namespace) is not None:
        return None
    created = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    return cluster.apply(created, dry_run=False, force=force)


def undo_namespaces(cluster: Cluster, namespaces: list[str]) -> list[str]:
    """Delete the namespaces this run created, after a refusal; those that could not be."""
    left = []
    for namespace in namespaces:
        try:
            cluster.delete("Namespace", None, namespace)
        except JwksDeployError:
            left.append(namespace)
    return left


def _one_namespace(
    cluster: Cluster,
    options: ApplyOptions,
    listen: Listener,
    plan: NamespacePlan,
    answers: dict[tuple[str, str, str | None], dict[str, Any]],
) -> NamespaceResult:
    from .apply_plan import apply_plan, partial_failure, prune
    from .inspect import endpoint_for

    namespace = plan.namespace
    result = NamespaceResult(namespace, dry_run=options.dry_run)

    def applied(obj: AppliedObject) -> None:
        result.objects.append(obj)
        listen.applied(obj)

    listen.plan(plan)
    try:
        report = apply_plan(
            cluster,
            plan,
            answers,
            create_namespace=options.create_namespace,
            dry_run=options.dry_run,
            force=options.force,
            on_applied=applied,
            gone_timeout=options.timeout,
        )
        result.down_since = report.down_since
        if options.prune:
            rendered = [o for o in options.objects if o["metadata"]["namespace"] == namespace]
            prune(
                cluster,
                namespace,
                rendered,
                options.instance,
                dry_run=options.dry_run,
                on_applied=applied,
            )
    except JwksDeployError as exc:
        result.error = partial_failure(exc, result.objects)
        return result
    try:
        service = report.service
        if options.wait and not options.dry_run:
            service = _wait(cluster, options, listen, result, service)
        if service is not None:
            result.endpoint = endpoint_for(cluster, service, options.address)
    except JwksDeployError as exc:  # everything landed: the message says what is wrong
        result.error = exc
    return result


def _wait(
    cluster: Cluster,
    options: ApplyOptions,
    listen: Listener,
    result: NamespaceResult,
    service: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """Wait for the rollout, then (LoadBalancer, no --address) for the ingress address."""
    from .kube.wait import wait_for_ingress, wait_for_rollout

    began = time.monotonic()
    namespace = result.namespace

    def progress(verdict: Verdict, elapsed: float) -> None:
        result.verdict = verdict
        listen.progress(namespace, verdict, elapsed)

    result.verdict = wait_for_rollout(
        cluster, namespace, options.instance, options.timeout, progress, start=began
    )
    result.waited = time.monotonic() - began
    if result.down_since is not None:
        result.down_for = time.monotonic() - result.down_since
    if (
        service is not None
        and (service.get("spec") or {}).get("type") == "LoadBalancer"
        and not options.address
    ):
        remaining = options.timeout - (time.monotonic() - began)
        if remaining <= 0:
            raise WaitTimeout(
                f"the LoadBalancer Service in {namespace!r} has no ingress address yet and "
                f"--timeout ({options.timeout:g}s) is spent. Check the cloud's load balancer, "
                "or pass --address."
            )
        service = wait_for_ingress(
            cluster, namespace, service["metadata"]["name"], remaining, options.timeout
        )
    return service
