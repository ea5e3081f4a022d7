"""One waiter: watches (resumed from their resourceVersion, polling only when the server
refuses to watch), one deadline, a progress callback, and a verdict from `status`.

Waiting for a rollout follows the Deployment, its ReplicaSets, its pods and their events,
and ends as soon as `status.rollout_verdict` says Current (success) or Failed (the object's
own reason, at once, not at the timeout). Waiting for deletion is the same machinery waiting
for each object to be gone. Talks to the cluster only through `kube.client.Cluster`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import (
    ClusterRejected,
    Forbidden,
    IngressTimedOut,
    Interrupted,
    JwksDeployError,
    RolloutFailed,
    RolloutTimedOut,
    StillThere,
)
from .rollout import IN_PROGRESS, Verdict, rollout_verdict, waiting_reasons, warning_events

if TYPE_CHECKING:
    from .client import Cluster

POLL_SECONDS = 0.5  # only when the server refuses to watch
WATCH_SECONDS = 60.0  # how long one watch request stays open before we resume it


CANCELLED = threading.Event()  # set by the main thread on Ctrl-C: every waiter stops


@dataclass
class _Source:
    """One resource followed by a watch (or by polling), and its objects by name."""

    kind: str
    label_selector: str | None = None
    field_selector: str | None = None
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    polling: bool = False
    listed: bool = False  # the first list answered
    watches: int = 0  # watch requests opened, resumptions included
    optional: bool = False  # refine the verdict; without RBAC to read them, go without


class _Follower:
    """Threads that keep each source's objects current and wake the waiter on a change."""

    def __init__(self, cluster: Cluster, namespace: str | None, deadline: float) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.deadline = deadline
        self.lock = threading.Lock()
        self.changes: queue.Queue[BaseException | None] = queue.Queue()
        self.stopped = threading.Event()
        self.sources: list[_Source] = []
        self._streams: list[Any] = []

    def follow(self, source: _Source) -> None:
        self.sources.append(source)
        thread = threading.Thread(
            target=self._run, args=(source,), name=f"watch-{source.kind}", daemon=True
        )
        thread.start()

    def snapshot(self, source: _Source) -> list[dict[str, Any]]:
        with self.lock:
            return [source.objects[k] for k in sorted(source.objects)]

    def stop(self) -> None:
        self.stopped.set()
        with self.lock:
            streams = list(self._streams)
        for stream in streams:
            stream.close()

    def _replace(self, source: _Source, items: list[dict[str, Any]]) -> None:
        with self.lock:
            source.objects = {str(i.get("metadata", {}).get("name")): i for i in items}
            source.listed = True
        self.changes.put(None)

    def _run(self, source: _Source) -> None:
        from ..errors import WatchExpired, WatchRefused

        try:
            version = self._list(source)
            while not self.stopped.is_set():
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    return
                if source.polling:
                    time.sleep(min(POLL_SECONDS, remaining))
                    if not self.stopped.is_set():
                        self._list(source)
                    continue
                try:
                    stream = self.cluster.watch(
                        source.kind,
                        self.namespace,
                        version,
                        label_selector=source.label_selector,
                        field_selector=source.field_selector,
                        timeout=min(WATCH_SECONDS, remaining + 1),
                    )
                except WatchRefused:
                    source.polling = True
                    continue
                except WatchExpired:
                    version = self._list(source)
                    continue
                source.watches += 1
                with self.lock:
                    self._streams.append(stream)
                try:
                    for kind, obj in stream:
                        version = str(obj.get("metadata", {}).get("resourceVersion") or version)
                        if kind == "BOOKMARK":
                            continue
                        name = str(obj.get("metadata", {}).get("name"))
                        with self.lock:
                            if kind == "DELETED":
                                source.objects.pop(name, None)
                            else:
                                source.objects[name] = obj
                        self.changes.put(None)
                except WatchExpired:
                    version = self._list(source)
                finally:
                    with self.lock:
                        self._streams.remove(stream)
        except Forbidden as exc:
            if source.optional:
                # RBAC lets us read the Deployment but not this: its status alone decides
                # (no fail-fast reasons from this source).
                self._replace(source, [])
            elif not self.stopped.is_set():
                self.changes.put(exc)
        except JwksDeployError as exc:
            if not self.stopped.is_set():
                self.changes.put(exc)
        except Exception as exc:  # a bug in a thread must still end the wait
            if not self.stopped.is_set():
                self.changes.put(exc)

    def _list(self, source: _Source) -> str:
        items, version = self.cluster.list_versioned(
            source.kind,
            self.namespace,
            label_selector=source.label_selector,
            field_selector=source.field_selector,
        )
        self._replace(source, items)
        return version

    def next_change(self) -> None:
        """Block until a source changed, or the deadline; re-raise a thread's error."""
        while True:
            if CANCELLED.is_set():
                raise Interrupted("interrupted.")
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                # wake now and then, so Ctrl-C in the main thread ends every waiter
                problem = self.changes.get(timeout=min(remaining, 0.25))
                break
            except queue.Empty:
                continue
        if problem is not None:
            raise problem
        # Several changes often arrive together (a pod and its ReplicaSet): take them all.
        while True:
            try:
                more = self.changes.get_nowait()
            except queue.Empty:
                return
            if more is not None:
                raise more


def _selector_text(selector: dict[str, Any]) -> str:
    labels = selector.get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def wait_for_rollout(
    cluster: Cluster,
    namespace: str,
    name: str,
    timeout: float,
    progress: Callable[[Verdict, float], None],
    *,
    start: float | None = None,
) -> Verdict:
    """Follow the rollout until Current (returned), Failed (RolloutFailed, at once) or the
    timeout (WaitTimeout with the pods' waiting reasons and the latest warning events)."""
    began = time.monotonic() if start is None else start
    follower = _Follower(cluster, namespace, began + timeout)
    deployments = _Source("Deployment", field_selector=f"metadata.name={name}")
    follower.follow(deployments)
    replicasets: _Source | None = None
    pods: _Source | None = None
    events = _Source("Event", field_selector="involvedObject.kind=Pod", optional=True)
    last: Verdict | None = None
    try:
        while True:
            follower.next_change()
            elapsed = time.monotonic() - began
            found = follower.snapshot(deployments)
            deployment = found[0] if found else None
            if deployment is not None and pods is None:
                selector = _selector_text(deployment.get("spec", {}).get("selector") or {})
                replicasets = _Source("ReplicaSet", label_selector=selector, optional=True)
                pods = _Source("Pod", label_selector=selector, optional=True)
                for source in (replicasets, pods, events):
                    follower.follow(source)
            verdict = rollout_verdict(
                deployment,
                follower.snapshot(replicasets) if replicasets else [],
                follower.snapshot(pods) if pods else [],
                follower.snapshot(events),
            )
            if not deployments.listed and elapsed < timeout:
                continue
            complete = all(s.listed for s in follower.sources)
            if verdict.failed and not complete and deployment is not None:
                # Without the ReplicaSets every pod would look current: decide once all
                # the lists have answered.
                verdict = Verdict(IN_PROGRESS, verdict.ready, verdict.desired, verdict.message)
            if deployments.listed and deployment is None:
                raise ClusterRejected(
                    f"Deployment {name!r} in {namespace!r} disappeared while waiting (someone "
                    "deleted it). Run apply again to create it."
                )
            if verdict != last or verdict.done or verdict.failed:
                progress(verdict, elapsed)
            last = verdict
            if verdict.done:
                return verdict
            if verdict.failed:
                notes = warning_events(follower.snapshot(events), verdict.pods)
                raise RolloutFailed(
                    name, namespace, verdict.reason, verdict.subject, notes, elapsed
                )
            if elapsed >= timeout:
                pod_list = follower.snapshot(pods) if pods else []
                reasons = [
                    *waiting_reasons(pod_list),
                    *warning_events(follower.snapshot(events), ()),
                ]
                raise RolloutTimedOut(name, namespace, timeout, verdict.message, reasons)
    finally:
        follower.stop()


def wait_for_ingress(
    cluster: Cluster, namespace: str, name: str, timeout: float, total: float
) -> dict[str, Any]:
    """Follow a LoadBalancer Service until it has an ingress address; returns the Service."""
    follower = _Follower(cluster, namespace, time.monotonic() + timeout)
    services = _Source("Service", field_selector=f"metadata.name={name}")
    follower.follow(services)
    try:
        while True:
            follower.next_change()
            found = follower.snapshot(services)
            if found and ((found[0].get("status") or {}).get("loadBalancer") or {}).get("ingress"):
                return found[0]
            if time.monotonic() >= follower.deadline:
                raise IngressTimedOut(name, namespace, total)
    finally:
        follower.stop()


def wait_until_gone(
    cluster: Cluster,
    namespace: str | None,
    objects: list[tuple[str, str]],
    timeout: float,
) -> None:
    """Wait until every (kind, name) is gone, following each with a watch; WaitTimeout names
    those still there (a finalizer may hold them)."""
    deadline = time.monotonic() + timeout
    follower = _Follower(cluster, namespace, deadline)
    sources = [_Source(kind, field_selector=f"metadata.name={name}") for kind, name in objects]
    for source in sources:
        follower.follow(source)
    try:
        while True:
            follower.next_change()
            waiting = [
                (s.kind, name)
                for s, (_, name) in zip(sources, objects, strict=True)
                if not s.listed or follower.snapshot(s)
            ]
            if not waiting:
                return
            if time.monotonic() >= deadline:
                raise StillThere(waiting, namespace, timeout)
    finally:
        follower.stop()
