"""Whole-process timing for the bench scripts: wall time and peak RSS of one child process.

Importing this module byte-compiles the package first: a user's pip-installed wheel has its
`.pyc` files (pip compiles at install), but a checkout run with PYTHONDONTWRITEBYTECODE=1
(as some CI images and sandboxes set) would recompile every module of ours on every run,
about 120 ms that no user pays, and the ratios would measure the compiler.
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
compileall.compile_dir(REPO / "jwksdeploy", quiet=1)


def timed(command: Sequence[str], **popen: object) -> tuple[float, float]:
    """Run command to completion; return (seconds, peak RSS in MiB). Fails loudly on error."""
    start = time.perf_counter()
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **popen,  # type: ignore[call-overload]
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{stderr}")
    return elapsed, usage.ru_maxrss / 1024


def interleave(
    runs: int, cases: dict[str, Callable[[], tuple[float, float]]]
) -> dict[str, list[tuple[float, float]]]:
    """Run every case once per round, round after round, so drift hits all cases alike."""
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, case in cases.items():
            results[name].append(case())
    return results


def median_seconds(samples: list[tuple[float, float]]) -> float:
    return statistics.median(s for s, _ in samples)


def peak_mib(samples: list[tuple[float, float]]) -> float:
    return max(m for _, m in samples)


def report(
    results: dict[str, list[tuple[float, float]]], baseline: str, title: str, rss: bool = True
) -> dict[str, float]:
    """Print medians, ratios against baseline and peak RSS; return the ratios.

    Pass rss=False when this process is large: a child's peak RSS counts the parent's pages
    between fork and exec, so it would report the parent's size.
    """
    base = median_seconds(results[baseline])
    print(f"\n{title}")
    print(f"  {'case':<44} {'median':>9} {'ratio':>7}" + (f" {'peak RSS':>10}" if rss else ""))
    ratios = {}
    for name, samples in results.items():
        median = median_seconds(samples)
        ratios[name] = median / base
        memory = f" {peak_mib(samples):>7.1f}MiB" if rss else ""
        print(f"  {name:<44} {median * 1000:>7.1f}ms {ratios[name]:>6.2f}x{memory}")
    return ratios
