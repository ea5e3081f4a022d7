"""Rollout verdicts decided as data: a Deployment, its ReplicaSets, pods and events in,
Current / InProgress / Failed (with the object's own reason) out. No I/O here.

Failed means the rollout cannot succeed without a change from the user, so a waiter stops
at once instead of running into its timeout; whatever is merely slow stays InProgress.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CURRENT = "Current"
IN_PROGRESS = "InProgress"
FAILED = "Failed"

REVISION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH = "pod-template-hash"
# Container waiting reasons that no retry fixes. A lone ErrImagePull is left out on purpose
# (a registry hiccup clears on the kubelet's next attempt); ImagePullBackOff, the state the
# kubelet enters once a pull has failed and it waits to retry, is the verdict.
HOPELESS_WAITING = frozenset(
    {
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
CRASH_LOOP_RESTARTS = 2


@dataclass(frozen=True)
class Rollout:
    """What `kubectl rollout status` tests: ready/desired and whether the rollout is done."""

    ready: int
    desired: int
    done: bool
    message: str


@dataclass(frozen=True)
class Verdict:
    """One rollout's state: status, counts, a phase for progress, and why it failed."""

    status: str  # CURRENT, IN_PROGRESS or FAILED
    ready: int
    desired: int
    message: str  # the phase, for progress lines: "1/2 pods available", "ErrImagePull"
    reason: str = ""  # FAILED: the object's own reason (ImagePullBackOff, FailedCreate...)
    subject: str = ""  # FAILED: which object said so ("pod x", "replicaset y")
    pods: tuple[str, ...] = ()  # the pods of the current revision, for their events

    @property
    def done(self) -> bool:
        return self.status == CURRENT

    @property
    def failed(self) -> bool:
        return self.status == FAILED


# The objects come checked by kube.views (each field read here has its API type or is
# absent), so an absent field is the only case left to handle.


def _int(value: Any) -> int:
    return int(value or 0)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = obj.get("metadata") or {}
    return meta


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = obj.get("status") or {}
    return status


def _conditions(obj: dict[str, Any]) -> list[dict[str, Any]]:
    conditions: list[dict[str, Any]] = _status(obj).get("conditions") or []
    return conditions


def rollout_state(deployment: dict[str, Any]) -> Rollout:
    """The same test `kubectl rollout status` makes."""
    spec = deployment.get("spec") or {}
    status = _status(deployment)
    desired = int(spec.get("replicas", 1))
    generation = _int(_meta(deployment).get("generation"))
    observed = _int(status.get("observedGeneration"))
    updated = _int(status.get("updatedReplicas"))
    replicas = _int(status.get("replicas"))
    available = _int(status.get("availableReplicas"))
    if observed < generation:
        return Rollout(available, desired, False, "waiting for the deployment to be observed")
    if updated < desired:
        return Rollout(available, desired, False, f"{updated}/{desired} pods updated")
    if replicas > updated:
        return Rollout(available, desired, False, f"{replicas - updated} old pods terminating")
    if available < updated:
        return Rollout(available, desired, False, f"{available}/{desired} pods available")
    return Rollout(available, desired, True, f"{available}/{desired} pods available")


def _owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    uid = _meta(owner).get("uid")
    refs = _meta(obj).get("ownerReferences") or []
    if uid and refs:
        return any(r.get("uid") == uid for r in refs)
    return str(_meta(obj).get("name", "")).startswith(f"{_meta(owner).get('name')}-")


def current_replicaset(
    deployment: dict[str, Any], replicasets: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The ReplicaSet of the Deployment's current revision (the revision annotations match),
    else the owned one with the highest revision."""
    owned = [rs for rs in replicasets if _owned_by(rs, deployment)]
    revision = (_meta(deployment).get("annotations") or {}).get(REVISION)
    for rs in owned:
        if revision and (_meta(rs).get("annotations") or {}).get(REVISION) == revision:
            return rs

    def number(rs: dict[str, Any]) -> int:
        text = str((_meta(rs).get("annotations") or {}).get(REVISION, "0"))
        return int(text) if text.isdigit() else 0

    return max(owned, key=number, default=None)


def _pods_of(replicaset: dict[str, Any] | None, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    live = [p for p in pods if not _meta(p).get("deletionTimestamp")]
    if replicaset is None:
        return live
    wanted = (_meta(replicaset).get("labels") or {}).get(TEMPLATE_HASH)
    if not wanted:
        return [p for p in live if _owned_by(p, replicaset)]
    return [p for p in live if (_meta(p).get("labels") or {}).get(TEMPLATE_HASH) == wanted]


def _pod_problem(pod: dict[str, Any]) -> tuple[str, str, str] | None:
    """(verdict, reason, detail) of a pod that is stuck or on its way to being stuck."""
    status = _status(pod)
    for condition in _conditions(pod):
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return FAILED, "Unschedulable", str(condition.get("message") or "")
    containers = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    seen: tuple[str, str, str] | None = None
    for container in containers:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        detail = str(waiting.get("message") or "")
        if reason in HOPELESS_WAITING:
            return FAILED, reason, detail
        if reason == "CrashLoopBackOff":
            restarts = _int(container.get("restartCount"))
            if restarts >= CRASH_LOOP_RESTARTS:
                last = ((container.get("lastState") or {}).get("terminated")) or {}
                why = f"restarted {restarts} times"
                if last.get("reason") or last.get("exitCode") is not None:
                    why += f"; last exit {last.get('exitCode')} ({last.get('reason') or '?'})"
                return FAILED, reason, f"{detail} ({why})" if detail else why
        if reason and reason not in ("ContainerCreating", "PodInitializing") and seen is None:
            seen = (IN_PROGRESS, reason, detail)
    return seen


def _failed_mount(pod_name: str, events: list[dict[str, Any]]) -> str | None:
    """The message of a FailedMount of a ConfigMap on this pod, if the kubelet reported one."""
    for event in events:
        involved = event.get("involvedObject") or {}
        if (
            involved.get("name") == pod_name
            and event.get("reason") == "FailedMount"
            and "configmap" in str(event.get("message", "")).lower()
        ):
            return str(event.get("message", ""))
    return None


def rollout_verdict(
    deployment: dict[str, Any] | None,
    replicasets: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> Verdict:
    """The rollout's verdict from what the API server said (see the module docstring)."""
    if deployment is None:
        return Verdict(FAILED, 0, 0, "deployment gone", "NotFound", "the Deployment")
    name = str(_meta(deployment).get("name", "?"))
    state = rollout_state(deployment)
    if _int(_status(deployment).get("observedGeneration")) < _int(
        _meta(deployment).get("generation")
    ):
        # What the pods and ReplicaSets say belongs to the previous revision.
        return Verdict(IN_PROGRESS, state.ready, state.desired, state.message)
    for condition in _conditions(deployment):
        if condition.get("type") == "Progressing" and condition.get("status") == "False":
            return Verdict(
                FAILED,
                state.ready,
                state.desired,
                state.message,
                str(condition.get("reason") or "ProgressDeadlineExceeded"),
                f"deployment {name}",
            )
    if state.done:
        return Verdict(CURRENT, state.ready, state.desired, state.message)
    replicaset = current_replicaset(deployment, replicasets)
    current = _pods_of(replicaset, pods)
    names = tuple(sorted(str(_meta(p).get("name", "")) for p in current))
    if replicaset is not None:
        for condition in _conditions(replicaset):
            if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
                reason = str(condition.get("reason") or "ReplicaFailure")
                return Verdict(
                    FAILED,
                    state.ready,
                    state.desired,
                    state.message,
                    f"{reason}: {condition.get('message') or ''}".rstrip(": "),
                    f"replicaset {_meta(replicaset).get('name')}",
                    names,
                )
    phase = state.message
    for pod in sorted(current, key=lambda p: str(_meta(p).get("name", ""))):
        pod_name = str(_meta(pod).get("name", ""))
        mount = _failed_mount(pod_name, events)
        if mount is not None:
            return Verdict(
                FAILED,
                state.ready,
                state.desired,
                state.message,
                f"FailedMount: {mount}",
                f"pod {pod_name}",
                names,
            )
        problem = _pod_problem(pod)
        if problem is None:
            continue
        verdict, reason, detail = problem
        text = f"{reason}: {detail}" if detail else reason
        if verdict == FAILED:
            return Verdict(
                FAILED, state.ready, state.desired, state.message, text, f"pod {pod_name}", names
            )
        phase = f"{state.message}, {reason}"
    return Verdict(IN_PROGRESS, state.ready, state.desired, phase, pods=names)


def warning_events(
    events: list[dict[str, Any]], names: tuple[str, ...], last: int = 3
) -> list[str]:
    """The latest warning events on the named objects (all objects when names is empty)."""
    chosen = [
        e
        for e in events
        if e.get("type") == "Warning"
        and (not names or (e.get("involvedObject") or {}).get("name") in names)
    ]
    chosen.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return [
        f"event on {(e.get('involvedObject') or {}).get('name', '?')}: "
        f"{e.get('reason')}: {e.get('message')}"
        for e in chosen[-last:]
    ]


def waiting_reasons(pods: list[dict[str, Any]]) -> list[str]:
    """'pod NAME: Reason (message)' for every waiting container, for a timeout's message."""
    out = []
    for pod in pods:
        for container in _status(pod).get("containerStatuses") or []:
            waiting = ((container or {}).get("state") or {}).get("waiting") or {}
            if waiting.get("reason"):
                detail = f" ({waiting['message']})" if waiting.get("message") else ""
                out.append(f"pod {_meta(pod).get('name')}: {waiting['reason']}{detail}")
    return out
