#!/usr/bin/env python3
"""Benchmark `jwksdeploy apply --no-wait` against the API emulator on 127.0.0.1
(run: python bench/apply.py [--runs N]; needs the test extra installed).

Prints, interleaved in one run: wall time and peak RSS of apply (target under 80 MiB), the
requests it made (target 4), the floor of importing what apply must import, and the
source's manual flow (`kubectl apply --server-side`, `kubectl get svc`, `kubectl get nodes`)
when kubectl can talk to the emulator (target: apply at most 1.3x that flow).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, interleave, peak_mib, report, timed

sys.path.insert(0, str(REPO))
from tests.emulator import EmulatorServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    python = sys.executable
    jwksdeploy = str(Path(python).parent / "jwksdeploy")
    workdir = Path(tempfile.mkdtemp(prefix="bench-apply-"))
    jwks = str(REPO / "examples" / "jwks.json")
    rendered = workdir / "rendered.yaml"
    rendered.write_text(
        subprocess.run(
            [jwksdeploy, "render", "--jwks", jwks, "-n", "envoy-yang"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    with EmulatorServer() as server:
        emulator = server.emulator
        emulator.put("namespaces", None, {"metadata": {"name": "envoy-yang"}})
        kubeconfig = str(server.write_kubeconfig(workdir / "kubeconfig"))
        apply = [
            jwksdeploy,
            "apply",
            "--jwks",
            jwks,
            "-n",
            "envoy-yang",
            "--no-wait",
            "--kubeconfig",
            kubeconfig,
        ]
        before = len(emulator.requests())
        timed(apply)
        first_requests = len(emulator.requests()) - before
        before = len(emulator.requests())
        timed(apply)
        again_requests = len(emulator.requests()) - before
        cases = {
            "floor: import kubernetes.client, click, jinja2, yaml": lambda: timed(
                [python, "-c", "import kubernetes.client, kubernetes.config, click, jinja2, yaml"]
            ),
            "jwksdeploy apply --no-wait": lambda: timed(apply),
        }
        kubectl = ["kubectl", "--kubeconfig", kubeconfig]
        manual = [
            [*kubectl, "apply", "--server-side", "-f", str(rendered)],
            [*kubectl, "get", "svc", "-n", "envoy-yang"],
            [*kubectl, "get", "nodes", "-o", "wide"],
        ]
        probe = subprocess.run(manual[0], capture_output=True, text=True, check=False)
        if probe.returncode == 0:

            def manual_flow() -> tuple[float, float]:
                parts = [timed(cmd) for cmd in manual]
                return sum(p[0] for p in parts), max(p[1] for p in parts)

            cases["manual flow: kubectl apply, get svc, get nodes"] = manual_flow
            baseline = "manual flow: kubectl apply, get svc, get nodes"
        else:
            reason = (probe.stderr.strip().splitlines() or ["no output"])[0]
            print(f"manual kubectl flow unavailable against the emulator: {reason}")
            baseline = "floor: import kubernetes.client, click, jinja2, yaml"
        results = interleave(runs, cases)
    ratios = report(results, baseline, f"apply, {runs} runs each (baseline: {baseline})")
    print(f"\n  requests: first apply {first_requests}, re-apply {again_requests} (target 4)")
    print(f"  apply / baseline: {ratios['jwksdeploy apply --no-wait']:.2f}x")
    print(
        f"  peak RSS of apply: {peak_mib(results['jwksdeploy apply --no-wait']):.1f} MiB "
        "(target < 80 MiB)"
    )


if __name__ == "__main__":
    main()
