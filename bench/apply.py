#!/usr/bin/env python3
"""Benchmark `jwksdeploy apply` against the API emulator on 127.0.0.1
(run: python bench/apply.py [--runs N]; needs the test extra installed).

Whole processes, interleaved, medians of --runs rounds:

- ready -> exit: apply waits (the default) on a rollout the emulator holds back; once the
  waiter's watches are open, the emulator makes the pod ready; time from that moment to the
  process exiting (target under 1 s).
- doomed -> exit: the pod first reports ErrImagePull; once watched, the emulator reports
  ImagePullBackOff (the kubelet's verdict after its retry); time from that to the process
  exiting with the reason (target under 10 s; before issue 13 it was --timeout).
- 20 namespaces: `jwksdeploy apply` (waiting, the default, and --no-wait) against
  `kubectl apply --server-side -f <the same 20 namespaces rendered>` (target: under 2 s, and
  at most 0.5x kubectl). The emulator serves kubectl's discovery but no OpenAPI documents, so
  kubectl runs with --validate=false (the server still validates ours strictly), and both run
  without a token (kubectl sends none over plain http).
Also: requests per namespace, first apply and re-apply.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import REPO, interleave, report, timed

sys.path.insert(0, str(REPO))
from tests.emulator import ClusterEmulator, EmulatorServer

JWKS = str(REPO / "examples" / "jwks-rsa.json")


def _watching(emulator: ClusterEmulator, namespace: str, since: int) -> bool:
    return any(
        s.method == "GET"
        and s.query.get("watch") == "1"
        and s.path == f"/api/v1/namespaces/{namespace}/pods"
        for s in emulator.requests()[since:]
    )


def signal_to_exit(
    emulator: ClusterEmulator,
    command: list[str],
    namespace: str,
    signal: Callable[[], None],
    expect: int,
) -> float:
    """Start command; once it watches the pods, call signal(); seconds from then to exit."""
    since = len(emulator.requests())
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while not _watching(emulator, namespace, since):
        if process.poll() is not None:
            raise SystemExit(f"exited before watching: {process.stderr.read().decode()}")  # type: ignore[union-attr]
        time.sleep(0.005)
    start = time.perf_counter()
    signal()
    process.wait()
    elapsed = time.perf_counter() - start
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != expect:
        raise SystemExit(f"{' '.join(command)} exited {process.returncode}:\n{stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    jwksdeploy = str(Path(sys.executable).parent / "jwksdeploy")
    workdir = Path(tempfile.mkdtemp(prefix="bench-apply-"))
    namespaces = [f"bench-{i:02d}" for i in range(20)]
    flags = [arg for ns in namespaces for arg in ("-n", ns)]
    # kubectl gets namespaces of its own: two field managers on one object would conflict.
    theirs = [f"kubectl-{i:02d}" for i in range(20)]
    rendered = workdir / "rendered.yaml"
    rendered.write_text(
        subprocess.run(
            [jwksdeploy, "render", "--jwks", JWKS, *[a for ns in theirs for a in ("-n", ns)]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    with EmulatorServer() as server:
        emulator = server.emulator
        # Pods ready at once: the bench times jwksdeploy, not the emulator's kubelet delay
        # (ready -> exit holds the rollout back itself).
        emulator.ready_delay = None
        emulator.token = None
        kubeconfig = str(server.write_kubeconfig(workdir / "kubeconfig", token=None))
        for ns in [*namespaces, *theirs, "ready", "doomed"]:
            emulator.put("namespaces", None, {"metadata": {"name": ns}})
        base = [jwksdeploy, "apply", "--jwks", JWKS, "--kubeconfig", kubeconfig]

        # --- requests ---------------------------------------------------------------------
        before = len(emulator.requests())
        timed([*base, "-n", "envoy-yang", "--create-namespace", "--no-wait"])
        first = len(emulator.requests()) - before
        before = len(emulator.requests())
        timed([*base, "-n", "envoy-yang", "--no-wait"])
        again = len(emulator.requests()) - before
        before = len(emulator.requests())
        timed([*base, "-n", "envoy-yang"])
        waiting = len(emulator.requests()) - before

        # --- ready -> exit and doomed -> exit, interleaved ------------------------------------
        ready_times: list[float] = []
        doomed_times: list[float] = []
        for run in range(runs):
            emulator.auto_ready = False
            image = f"127.0.0.1:5000/jwks/server:{run}"  # a new template each run
            ready_times.append(
                signal_to_exit(
                    emulator,
                    [*base, "-n", "ready", "--image", image, "--timeout", "2m"],
                    "ready",
                    lambda: emulator.set_deployment_ready("ready", "remote-jwks-go"),
                    0,
                )
            )
            emulator.pod_faults["doomed"] = {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "remote-jwks-go",
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}},
                    }
                ],
            }

            def back_off() -> None:
                for pod in emulator.pods_of("doomed", "remote-jwks-go"):
                    status = dict(pod["status"])
                    container = dict(status["containerStatuses"][0])
                    container["state"] = {
                        "waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling"}
                    }
                    emulator.set_status(
                        "pods",
                        "doomed",
                        pod["metadata"]["name"],
                        {"containerStatuses": [container]},
                    )

            doomed_times.append(
                signal_to_exit(
                    emulator,
                    [*base, "-n", "doomed", "--image", image, "--timeout", "2m"],
                    "doomed",
                    back_off,
                    10,
                )
            )
            emulator.pod_faults.clear()
            emulator.auto_ready = True

        # --- 20 namespaces vs kubectl ---------------------------------------------------------
        cases = {
            "floor: import kubernetes.client, click, jinja2, yaml": lambda: timed(
                [
                    sys.executable,
                    "-c",
                    "import kubernetes.client, kubernetes.config, click, jinja2, yaml",
                ]
            ),
            "jwksdeploy apply, 20 namespaces (waits)": lambda: timed([*base, *flags]),
            "jwksdeploy apply, 20 namespaces --no-wait": lambda: timed(
                [*base, *flags, "--no-wait"]
            ),
        }
        kubectl = [
            "kubectl",
            "--kubeconfig",
            kubeconfig,
            "apply",
            "--server-side",
            "--validate=false",
            "-f",
            str(rendered),
        ]
        probe = subprocess.run(kubectl, capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            baseline = "kubectl apply --server-side, 20 namespaces"
            cases[baseline] = lambda: timed(kubectl)
        else:
            reason = (probe.stderr.strip().splitlines() or ["no output"])[0]
            print(f"kubectl unavailable against the emulator: {reason}")
            baseline = "jwksdeploy apply, 20 namespaces --no-wait"
        results = interleave(runs, cases)
    print(f"\nwaiting, {runs} runs each (median, max)")
    print(
        f"  last pod ready -> exit:        {statistics.median(ready_times) * 1000:7.1f}ms "
        f"{max(ready_times) * 1000:7.1f}ms (target < 1000ms)"
    )
    print(
        f"  ImagePullBackOff -> exit (10): {statistics.median(doomed_times) * 1000:7.1f}ms "
        f"{max(doomed_times) * 1000:7.1f}ms (target < 10s)"
    )
    ratios = report(
        results, baseline, f"20 namespaces, {runs} runs each (baseline: {baseline})", rss=False
    )
    print(f"\n  requests for one namespace: first apply {first}, re-apply {again}, ")
    print(f"  re-apply with the (default) wait {waiting}")
    for name, ratio in ratios.items():
        if name.startswith("jwksdeploy") and name != baseline:
            print(f"  {name} / baseline: {ratio:.2f}x (target <= 0.5x, and < 2 s)")


if __name__ == "__main__":
    main()
