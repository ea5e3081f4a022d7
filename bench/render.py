#!/usr/bin/env python3
"""Benchmark `jwksdeploy render` as whole processes (run: python bench/render.py [--runs N]).

(a) render of the shipped example vs `python -c 'import click, jinja2, yaml'`, the imports
    no render can avoid; target: at most 1.15x.
(b) render of 100 namespaces in one call vs one namespace; target: under 2x.
(c) for reference, `kubectl kustomize` on the rendered kustomization, when kubectl exists.
Also the peak RSS of render; target: under 40 MiB.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from common import REPO, interleave, peak_mib, report, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    python = sys.executable
    jwks = str(REPO / "examples" / "jwks.json")
    # The console script, as users run it (python -m adds runpy's own imports).
    render = [str(Path(python).parent / "jwksdeploy"), "render", "--jwks", jwks]
    many = [arg for i in range(100) for arg in ("-n", f"ns-{i:03d}")]
    workdir = Path(tempfile.mkdtemp(prefix="bench-render-"))
    timed([*render, "-n", "envoy-yang", "--output-dir", str(workdir / "out")])
    cases = {
        "baseline: import click, jinja2, yaml": lambda: timed(
            [python, "-c", "import click, jinja2, yaml"]
        ),
        "render example (1 namespace)": lambda: timed([*render, "-n", "envoy-yang"]),
        "render 100 namespaces": lambda: timed([*render, *many]),
    }
    kubectl = shutil.which("kubectl")
    if kubectl:
        cases["reference: kubectl kustomize (1 namespace)"] = lambda: timed(
            [kubectl, "kustomize", str(workdir / "out" / "envoy-yang")]
        )
    results = interleave(runs, cases)
    ratios = report(results, "baseline: import click, jinja2, yaml", f"render, {runs} runs each")
    one = ratios["render example (1 namespace)"]
    hundred = ratios["render 100 namespaces"] / one
    rss = peak_mib(results["render example (1 namespace)"])
    print(f"\n  (a) render / unavoidable imports: {one:.2f}x (target <= 1.15x)")
    print(f"  (b) 100 namespaces / 1 namespace: {hundred:.2f}x (target < 2x)")
    print(f"  peak RSS of render: {rss:.1f} MiB (target < 40 MiB)")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
