"""Waiting that gives a true verdict fast (issue 13): the pure verdicts of `status`, and
`apply`/`delete` following watches over real HTTP (the emulator, or a real cluster)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from jwksdeploy.kube.resources import instance_selector
from jwksdeploy.kube.rollout import CURRENT, FAILED, IN_PROGRESS, rollout_verdict, warning_events
from jwksdeploy.prune import prunable_kinds, prune_candidates

from .helpers import EXAMPLES
from .kube import Kube

JWKS = str(EXAMPLES / "jwks-rsa.json")

# --- pure verdicts ---------------------------------------------------------------------------


def deployment(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "uid": "d1", "generation": 2},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, **status},
    }


def replicaset(name: str = "web-new", revision: str = "2", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {"pod-template-hash": name.split("-")[-1]},
            "annotations": {"deployment.kubernetes.io/revision": revision},
            "ownerReferences": [{"uid": "d1"}],
        },
        "status": status,
    }


def pod(name: str = "web-new-0", rs: str = "new", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"pod-template-hash": rs}}, "status": status}


def waiting(reason: str, restarts: int = 0, message: str = "") -> dict[str, Any]:
    return {
        "containerStatuses": [
            {
                "name": "c",
                "restartCount": restarts,
                "state": {"waiting": {"reason": reason, "message": message}},
            }
        ]
    }


def verdict_of(*pods: dict[str, Any], events: list[dict[str, Any]] | None = None) -> Any:
    return rollout_verdict(
        deployment(), [replicaset("web-old", "1"), replicaset()], list(pods), events or []
    )


@pytest.mark.parametrize(
    "reason",
    [
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    ],
)
def test_a_hopeless_waiting_reason_fails_at_once(reason: str) -> None:
    verdict = verdict_of(pod(**waiting(reason, message="the kubelet's words")))
    assert verdict.status == FAILED
    assert verdict.reason == f"{reason}: the kubelet's words"
    assert verdict.subject == "pod web-new-0"


def test_err_image_pull_waits_for_the_kubelets_retry() -> None:
    verdict = verdict_of(pod(**waiting("ErrImagePull")))
    assert verdict.status == IN_PROGRESS
    assert "ErrImagePull" in verdict.message


@pytest.mark.parametrize(("restarts", "status"), [(1, IN_PROGRESS), (2, FAILED)])
def test_a_crash_loop_fails_from_the_second_restart(restarts: int, status: str) -> None:
    verdict = verdict_of(pod(**waiting("CrashLoopBackOff", restarts)))
    assert verdict.status == status


def test_a_replica_failure_of_the_new_replicaset_fails() -> None:
    failing = replicaset(
        conditions=[
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "FailedCreate",
                "message": 'pods "web-new-x" is forbidden: exceeded quota: compute',
            }
        ]
    )
    verdict = rollout_verdict(deployment(), [failing], [], [])
    assert verdict.status == FAILED
    assert verdict.reason.startswith("FailedCreate: pods")
    assert "exceeded quota" in verdict.reason
    assert verdict.subject == "replicaset web-new"


def test_progress_deadline_exceeded_fails() -> None:
    stuck = deployment(
        conditions=[
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
        ]
    )
    verdict = rollout_verdict(stuck, [], [], [])
    assert (verdict.status, verdict.reason) == (FAILED, "ProgressDeadlineExceeded")


def test_an_unschedulable_pod_fails_with_the_schedulers_message() -> None:
    unschedulable = pod(
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient memory.",
            }
        ]
    )
    verdict = verdict_of(unschedulable)
    assert verdict.status == FAILED
    assert verdict.reason == "Unschedulable: 0/3 nodes are available: 3 Insufficient memory."


def test_a_failed_mount_of_the_configmap_fails() -> None:
    event = {
        "type": "Warning",
        "reason": "FailedMount",
        "message": 'MountVolume.SetUp failed for volume "config" : configmap "jwks-config" '
        "not found",
        "involvedObject": {"kind": "Pod", "name": "web-new-0"},
    }
    verdict = verdict_of(pod(**waiting("ContainerCreating")), events=[event])
    assert verdict.status == FAILED
    assert verdict.reason.startswith('FailedMount: MountVolume.SetUp failed for volume "config"')
    assert warning_events([event], verdict.pods) == [
        f"event on web-new-0: FailedMount: {event['message']}"
    ]


def test_old_pods_and_an_unobserved_spec_do_not_decide() -> None:
    """A failing pod of the previous revision says nothing about this rollout, nor does
    anything before the controller has seen the new spec."""
    broken_old = pod("web-old-0", "old", **waiting("ImagePullBackOff"))
    assert verdict_of(broken_old, pod()).status == IN_PROGRESS
    unobserved = deployment(observedGeneration=1)
    verdict = rollout_verdict(unobserved, [replicaset()], [pod(**waiting("InvalidImageName"))], [])
    assert verdict.status == IN_PROGRESS


def test_a_completed_rollout_is_current() -> None:
    done = deployment(availableReplicas=1, readyReplicas=1)
    assert rollout_verdict(done, [], [], []).status == CURRENT


def test_prune_picks_only_our_objects_of_this_instance_that_are_not_rendered() -> None:
    rendered = [
        {"kind": kind, "metadata": {"name": "web"}}
        for kind in ("ConfigMap", "Service", "Deployment")
    ]
    assert prunable_kinds(rendered) == ["PodDisruptionBudget"]

    def pdb(name: str, **labels: str) -> dict[str, Any]:
        return {"kind": "PodDisruptionBudget", "metadata": {"name": name, "labels": labels}}

    ours = {"app.kubernetes.io/managed-by": "jwksdeploy", "app.kubernetes.io/instance": "web"}
    live = [
        pdb("web", **ours),
        pdb("hand-made"),
        pdb("other", **{**ours, "app.kubernetes.io/instance": "other"}),
        pdb("helm", **{**ours, "app.kubernetes.io/managed-by": "Helm"}),
    ]
    assert prune_candidates(live, rendered, "web") == ["web"]
    assert instance_selector("web") == (
        "app.kubernetes.io/managed-by=jwksdeploy,app.kubernetes.io/instance=web"
    )


# --- apply and delete over HTTP ----------------------------------------------------------------

cluster = pytest.mark.cluster


class later:
    """Run `action` in a thread once what it changes exists (retried while it raises
    KeyError/IndexError: the object is not there yet), like a controller or the kubelet."""

    def __init__(self, action: Any, *args: Any) -> None:
        self.stop = threading.Event()

        def run() -> None:
            while not self.stop.wait(0.05):
                try:
                    action(*args)
                    return
                except (KeyError, IndexError):
                    continue

        self.thread = threading.Thread(target=run, daemon=True)

    def __enter__(self) -> later:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def apply(kube: Kube, *args: str, namespace: str | None = None) -> Any:
    return kube.jwksdeploy("apply", "--jwks", JWKS, "-n", namespace or kube.namespace, *args)


def watches(kube: Kube, plural: str) -> list[Any]:
    assert kube.emulator is not None
    return [
        s
        for s in kube.emulator.requests("GET")
        if s.path.endswith(f"/{plural}") and s.query.get("watch") == "1"
    ]


@cluster
@pytest.mark.needs_pods
def test_apply_waits_by_default_without_a_terminal_and_prints_plain_lines(kube: Kube) -> None:
    result = apply(kube)
    assert result.exit_code == 0, result.stderr
    assert "rollout: 1/1 pods available after" in result.stderr
    assert "\r" not in result.stderr and "\033" not in result.stderr
    assert result.stdout.startswith("http://") and result.stdout.count("\n") == 1
    if kube.emulator is not None:
        assert watches(kube, "deployments"), "the rollout is followed with a watch"


@cluster
@pytest.mark.emulator_only
def test_a_good_rollout_ends_when_the_last_pod_is_ready_followed_by_watches(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.auto_ready = False

    def ready_once_watched() -> None:
        if not all(watches(kube, p) for p in ("deployments", "replicasets", "pods", "events")):
            raise KeyError("not watched yet")
        kube.emulator.set_deployment_ready(kube.namespace, "remote-jwks-go")  # type: ignore[union-attr]

    with later(ready_once_watched):
        result = apply(kube, "--timeout", "1m")
    assert result.exit_code == 0, result.stderr
    assert "rollout: 1/1 pods available after" in result.stderr
    deployment_gets = [
        s for s in kube.emulator.requests("GET") if s.path.endswith("/deployments/remote-jwks-go")
    ]
    assert len(deployment_gets) == 1, "only the pre-flight reads the Deployment; no polling"


FAULTS = {
    "ImagePullBackOff": waiting(
        "ImagePullBackOff", message='Back-off pulling image "127.0.0.1:1/missing:0"'
    ),
    "InvalidImageName": waiting("InvalidImageName", message="couldn't parse image name"),
    "CreateContainerConfigError": waiting(
        "CreateContainerConfigError", message='configmap "x" not found'
    ),
    "CreateContainerError": waiting("CreateContainerError", message="context deadline exceeded"),
    "CrashLoopBackOff": waiting("CrashLoopBackOff", restarts=2, message="back-off 20s"),
    "Unschedulable": {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient cpu.",
            }
        ],
    },
}


@cluster
@pytest.mark.emulator_only
@pytest.mark.parametrize("reason", sorted(FAULTS))
def test_each_pod_fault_ends_the_wait_with_its_reason(kube: Kube, reason: str) -> None:
    assert kube.emulator is not None
    kube.emulator.pod_faults[kube.namespace] = FAULTS[reason]
    kube.emulator.put(
        "events",
        kube.namespace,
        {
            "metadata": {"name": "warn"},
            "type": "Warning",
            "reason": "BackOff",
            "message": "Back-off restarting",
            "involvedObject": {"kind": "Pod", "name": "unrelated-pod"},
        },
    )
    result = apply(kube, "--timeout", "10m")
    assert result.exit_code == 10, result.stderr
    assert "cannot succeed" in result.stderr
    assert f": {reason}" in result.stderr
    assert "was not ready after" not in result.stderr, "fails fast, not at the timeout"
    assert "rollout: failed after" in result.stderr
    assert "unrelated-pod" not in result.stderr, "only the rollout's own pods' events"
    assert result.stdout == ""


@cluster
def test_an_image_that_cannot_be_pulled_fails_fast_with_its_reason(kube: Kube) -> None:
    """On a real cluster the kubelet really fails to pull (nothing listens on port 1)."""
    if kube.emulator is not None:
        kube.emulator.pod_faults[kube.namespace] = FAULTS["ImagePullBackOff"]
    result = apply(kube, "--image", "127.0.0.1:1/jwks/missing:0", "--timeout", "5m")
    assert result.exit_code == 10, result.stderr
    assert "cannot succeed" in result.stderr
    assert "ImagePullBackOff" in result.stderr
    assert result.stdout == ""


def test_in_a_terminal_progress_is_one_updating_line(capsys: pytest.CaptureFixture[str]) -> None:
    from jwksdeploy.cli.cluster_output import ApplyPrinter
    from jwksdeploy.kube.rollout import Verdict

    printer = ApplyPrinter(output="text", dry_run=False, multi=False, tty=True)
    printer.progress("ns", Verdict(IN_PROGRESS, 0, 2, "0/2 pods available"), 1.0)
    printer.progress("ns", Verdict(IN_PROGRESS, 1, 2, "1/2 pods available"), 2.0)
    printer.progress("ns", Verdict(CURRENT, 2, 2, "2/2 pods available"), 3.0)
    printer.finish()
    err = capsys.readouterr().err
    assert err.count("\n") == 1, "one line, rewritten in place, ended once"
    assert "\r  rollout: 0/2 pods available (1s)\033[K" in err
    assert err.endswith("  rollout: 2/2 pods available after 3s\n")
    plain = ApplyPrinter(output="text", dry_run=False, multi=True, tty=False)
    plain.progress("a", Verdict(IN_PROGRESS, 0, 1, "0/1 pods available"), 1.0)
    plain.progress("b", Verdict(FAILED, 0, 1, "0/1", "ImagePullBackOff", "pod b-1"), 2.0)
    assert capsys.readouterr().err == (
        "  a: rollout: 0/1 pods available (1s)\n"
        "  b: rollout: failed after 2s: pod b-1: ImagePullBackOff\n"
    )


@cluster
@pytest.mark.emulator_only
def test_a_failed_mount_and_its_event_end_the_wait(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.pod_faults[kube.namespace] = waiting("ContainerCreating")
    message = 'MountVolume.SetUp failed for volume "config" : configmap "jwks-config" not found'

    def mount_fails() -> None:
        pods = kube.emulator.pods_of(kube.namespace, "remote-jwks-go")  # type: ignore[union-attr]
        kube.emulator.put(  # type: ignore[union-attr]
            "events",
            kube.namespace,
            {
                "metadata": {"name": "mount"},
                "type": "Warning",
                "reason": "FailedMount",
                "message": message,
                "involvedObject": {"kind": "Pod", "name": pods[0]["metadata"]["name"]},
                "lastTimestamp": "2026-11-29T10:00:00Z",
            },
        )

    with later(mount_fails):
        result = apply(kube, "--timeout", "10m")
    assert result.exit_code == 10, result.stderr
    assert f"FailedMount: {message}" in result.stderr
    assert "Latest warnings: event on remote-jwks-go-" in result.stderr


@cluster
@pytest.mark.emulator_only
def test_a_replicaset_failure_ends_the_wait(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.replicaset_faults[kube.namespace] = {
        "type": "ReplicaFailure",
        "status": "True",
        "reason": "FailedCreate",
        "message": 'pods "remote-jwks-go-x" is forbidden: violates PodSecurity "restricted"',
    }
    result = apply(kube, "--timeout", "10m")
    assert result.exit_code == 10, result.stderr
    assert "replicaset remote-jwks-go-" in result.stderr
    assert 'FailedCreate: pods "remote-jwks-go-x" is forbidden' in result.stderr


@cluster
@pytest.mark.emulator_only
def test_progress_deadline_exceeded_ends_the_wait(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.auto_ready = False

    def deadline() -> None:
        kube.emulator.set_status(  # type: ignore[union-attr]
            "deployments",
            kube.namespace,
            "remote-jwks-go",
            {
                "conditions": [
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": 'ReplicaSet "remote-jwks-go-1" has timed out progressing.',
                    }
                ]
            },
        )

    with later(deadline):
        result = apply(kube, "--timeout", "10m")
    assert result.exit_code == 10, result.stderr
    assert "deployment remote-jwks-go: ProgressDeadlineExceeded" in result.stderr


@cluster
@pytest.mark.emulator_only
def test_a_watch_the_server_closes_is_resumed_from_its_resource_version(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.auto_ready = False
    kube.emulator.watch_close_after = 1
    emulator = kube.emulator

    def pod_changes_then_ready() -> None:
        """Change a pod (the watch sends it and closes), then, once the watch is open
        again, finish the rollout."""
        opened = len(watches(kube, "pods"))
        if opened == 0:
            raise KeyError("not watched yet")
        if opened == 1:
            name = emulator.pods_of(kube.namespace, "remote-jwks-go")[0]["metadata"]["name"]
            emulator.set_status("pods", kube.namespace, name, {"phase": "Pending"})
            raise KeyError("not resumed yet")
        emulator.set_deployment_ready(kube.namespace, "remote-jwks-go")

    with later(pod_changes_then_ready):
        result = apply(kube, "--timeout", "1m")
    assert result.exit_code == 0, result.stderr
    resumed = [w.query.get("resourceVersion") for w in watches(kube, "pods")]
    assert len(resumed) >= 2, "each closed watch is opened again"
    versions = [int(v) for v in resumed]
    assert versions == sorted(versions) and versions[-1] > versions[0], "from where it ended"


@cluster
@pytest.mark.emulator_only
def test_an_expired_resource_version_is_listed_again(kube: Kube) -> None:
    """410 Gone on resuming (the server compacted its history): list again, then watch."""
    assert kube.emulator is not None
    kube.emulator.auto_ready = False
    kube.emulator.watch_expire = 1000
    emulator = kube.emulator

    def pod_lists() -> list[Any]:
        return [
            s
            for s in emulator.requests("GET")
            if s.path.endswith("/pods") and "watch" not in s.query
        ]

    def ready_once_listed_again() -> None:
        if len(pod_lists()) < 2:
            raise KeyError("not listed again yet")
        emulator.watch_expire = 0
        emulator.set_deployment_ready(kube.namespace, "remote-jwks-go")

    with later(ready_once_listed_again):
        result = apply(kube, "--timeout", "1m")
    assert result.exit_code == 0, result.stderr
    assert len(pod_lists()) >= 2


@cluster
@pytest.mark.emulator_only
def test_a_refused_watch_falls_back_to_polling(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.auto_ready = False
    kube.emulator.watch_refused = 405
    emulator = kube.emulator

    def lists() -> list[Any]:
        return [
            s
            for s in emulator.requests("GET")
            if s.path.endswith("/deployments") and "watch" not in s.query
        ]

    def ready_once_polled() -> None:
        if len(lists()) < 2:
            raise KeyError("not polled yet")
        emulator.set_deployment_ready(kube.namespace, "remote-jwks-go")

    with later(ready_once_polled):
        result = apply(kube, "--timeout", "1m")
    assert result.exit_code == 0, result.stderr
    assert "rollout: 1/1 pods available after" in result.stderr
    assert len(lists()) >= 2, "the Deployment is listed again and again"


@cluster
@pytest.mark.emulator_only
def test_a_deployment_deleted_while_waiting_ends_the_wait(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.auto_ready = False

    def delete_once_watched() -> None:
        if not watches(kube, "deployments"):
            raise KeyError("not watched yet")
        status, _ = kube.call(
            "DELETE", f"/apis/apps/v1/namespaces/{kube.namespace}/deployments/remote-jwks-go"
        )
        assert status == 200

    with later(delete_once_watched):
        result = apply(kube, "--timeout", "10m")
    assert result.exit_code == 9, result.stderr
    assert "disappeared while waiting" in result.stderr


@cluster
@pytest.mark.emulator_only
def test_without_rbac_on_pods_replicasets_and_events_the_deployment_decides(
    kube: Kube,
) -> None:
    assert kube.emulator is not None
    for plural in ("pods", "replicasets", "events"):
        kube.emulator.fail("GET", plural, 403, f"{plural} is forbidden", times=1000)
    kube.emulator.auto_ready = False

    def ready_once_watched() -> None:
        if not watches(kube, "deployments"):
            raise KeyError("not watched yet")
        kube.emulator.set_deployment_ready(kube.namespace, "remote-jwks-go")  # type: ignore[union-attr]

    with later(ready_once_watched):
        result = apply(kube, "--timeout", "1m")
    assert result.exit_code == 0, result.stderr
    assert "rollout: 1/1 pods available after" in result.stderr


@cluster
@pytest.mark.emulator_only
def test_the_timeout_still_bounds_what_is_merely_slow(kube: Kube) -> None:
    assert kube.emulator is not None
    kube.emulator.pod_faults[kube.namespace] = waiting("ErrImagePull", message="i/o timeout")
    result = apply(kube, "--timeout", "1s")
    assert result.exit_code == 10
    assert "was not ready after 1s" in result.stderr
    assert "ErrImagePull (i/o timeout)" in result.stderr


# --- prune ---------------------------------------------------------------------------------


@cluster
def test_scaling_to_one_replica_prunes_the_disruption_budget(kube: Kube) -> None:
    two = apply(kube, "--replicas", "2", "--no-wait")
    assert two.exit_code == 0, two.stderr
    assert kube.read("PodDisruptionBudget", "remote-jwks-go") is not None
    preview = apply(kube, "--replicas", "1", "--no-wait", "--dry-run")
    assert preview.exit_code == 0, preview.stderr
    assert "poddisruptionbudget/remote-jwks-go pruned (dry run)" in preview.stderr
    assert kube.read("PodDisruptionBudget", "remote-jwks-go") is not None
    one = apply(kube, "--replicas", "1", "--no-wait", "-o", "json")
    assert one.exit_code == 0, one.stderr
    assert json.loads(one.stdout)["pruned"] == ["poddisruptionbudget/remote-jwks-go"]
    assert kube.read("PodDisruptionBudget", "remote-jwks-go") is None
    again = apply(kube, "--replicas", "1", "--no-wait")
    assert "pruned" not in again.stderr


@cluster
def test_prune_never_touches_what_lacks_our_labels(kube: Kube) -> None:
    def pdb(name: str, labels: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "labels": labels},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": name}}},
        }

    ours = {"app.kubernetes.io/managed-by": "jwksdeploy", "app.kubernetes.io/instance": "x"}
    foreign = [
        pdb("remote-jwks-go", {}),  # our name, no labels: someone's hand-made budget
        pdb("other-instance", {**ours, "app.kubernetes.io/instance": "other"}),
        pdb("helm-made", {**ours, "app.kubernetes.io/managed-by": "Helm"}),
    ]
    for obj in foreign:
        kube.server_side_apply(obj, "someone-else")
    result = apply(kube, "--replicas", "1", "--no-wait")
    assert result.exit_code == 0, result.stderr
    assert "pruned" not in result.stderr
    for obj in foreign:
        assert kube.read("PodDisruptionBudget", obj["metadata"]["name"]) is not None


# --- many namespaces -------------------------------------------------------------------------


@pytest.fixture
def twenty_namespaces(kube: Kube) -> Iterator[list[str]]:
    names = [f"{kube.namespace}-{i:02d}-{uuid.uuid4().hex[:4]}" for i in range(20)]
    for namespace in names:
        kube.create_namespace(namespace)
    try:
        yield names
    finally:
        for namespace in names:
            kube.delete_namespace(namespace)


@cluster
@pytest.mark.emulator_only
def test_twenty_namespaces_one_failing_the_others_succeed(
    kube: Kube, twenty_namespaces: list[str]
) -> None:
    assert kube.emulator is not None
    bad = twenty_namespaces[7]
    kube.emulator.pod_faults[bad] = FAULTS["ImagePullBackOff"]
    flags = [arg for ns in twenty_namespaces for arg in ("-n", ns)]
    result = kube.jwksdeploy("apply", "--jwks", JWKS, *flags, "--parallel", "5", "-o", "json")
    assert result.exit_code == 10, result.stderr
    report = json.loads(result.stdout)
    assert [r["namespace"] for r in report] == twenty_namespaces
    failed = [r for r in report if not r["ok"]]
    assert [r["namespace"] for r in failed] == [bad]
    assert failed[0]["exitCode"] == 10
    assert failed[0]["rollout"]["status"] == "Failed"
    assert "ImagePullBackOff" in failed[0]["error"]
    for item in report:
        if item["namespace"] != bad:
            assert item["url"].startswith("http://"), item
            assert item["rollout"]["status"] == "Current"
    assert f"1 of 20 namespaces failed ({bad})" in result.stderr
    text = kube.jwksdeploy("apply", "--jwks", JWKS, *flags, "--no-wait")
    assert text.exit_code == 0, text.stderr
    assert text.stdout.count("http://") == 20
    assert f"{bad}: configmap/jwks-config unchanged" in text.stderr


@cluster
def test_delete_waits_with_a_watch_and_takes_many_namespaces(
    kube: Kube, twenty_namespaces: list[str]
) -> None:
    some = twenty_namespaces[:3]
    flags = [arg for ns in some for arg in ("-n", ns)]
    applied = kube.jwksdeploy("apply", "--jwks", JWKS, *flags, "--no-wait")
    assert applied.exit_code == 0, applied.stderr
    deleted = kube.jwksdeploy("delete", *flags, "--wait", "--timeout", "1m")
    assert deleted.exit_code == 0, deleted.stderr
    for namespace in some:
        assert f"{namespace}: deployment/remote-jwks-go deleted" in deleted.stdout
        assert kube.read("Deployment", "remote-jwks-go", namespace) is None
    if kube.emulator is not None:
        assert watches(kube, "deployments") or any(
            s.query.get("fieldSelector") == "metadata.name=remote-jwks-go"
            for s in kube.emulator.requests("GET")
        )


@cluster
@pytest.mark.emulator_only
def test_a_load_balancer_url_is_printed_once_it_has_an_address(kube: Kube) -> None:
    assert kube.emulator is not None

    def provision() -> None:
        kube.emulator.set_status(  # type: ignore[union-attr]
            "services",
            kube.namespace,
            "remote-jwks-go",
            {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}},
        )

    with later(provision):
        result = apply(kube, "--service-type", "LoadBalancer", "--timeout", "1m")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "http://127.0.0.1:8080/jwks\n"


# ---------------------------------------------------------------------------------------------
# Moved from the hostile suites (issue 9): the cluster's text in rollout progress
# ---------------------------------------------------------------------------------------------
# It is escaped like every error, so a pod cannot drive the terminal.

from pathlib import Path  # noqa: E402

from .helpers import key_pair_files  # noqa: E402
from .refusals import assert_refused, invoke  # noqa: E402


@pytest.mark.usefixtures("in_tmp")
@pytest.mark.emulator_only
def test_rollout_progress_escapes_the_cluster_s_text(kube: Kube, tmp_path: Path) -> None:
    """apply's rollout line escapes a pod's waiting reason and message like every error
    (terminal.printable): printed verbatim, a pod could set the terminal's title, clear the screen
    or forge an `error:` line (issue 9, second campaign)."""
    hostile = "\x1b]0;pwned\x07\x1b[2J\r\nerror: forged"
    assert kube.emulator is not None
    kube.emulator.pod_faults[kube.namespace] = waiting(
        "ImagePullBackOff" + hostile, message="Back-off " + hostile
    )
    key_pair_files(tmp_path)
    outcome = invoke(
        "apply", "-n", kube.namespace, "--kubeconfig", kube.kubeconfig, "--timeout", "1"
    )
    assert_refused(outcome, 10)
    assert "\x1b" not in outcome.stderr and "\x07" not in outcome.stderr
    assert not any(line.startswith("error: forged") for line in outcome.stderr.splitlines())
