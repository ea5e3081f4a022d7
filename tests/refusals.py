"""How a refusal must look, checked the same way by every test of bad input.

A refused command ends in `assert_refused`: the documented exit code, stderr ending in one
`error: ` line, no traceback, no "This is a bug", no secret marker anywhere in the output, and
(given a snapshot) no file changed. Secrets are built from recognisable markers
(`helpers.marker`), so a leak of any private member, `k` or token signature is caught by a
plain substring test. Commands run in-process (`invoke`) or as processes (`spawn`).
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, settings

from jwksdeploy.cli import cli

from .helpers import b64

# Hostile-input properties spawn processes or servers per example: few examples, no deadline,
# and function-scoped fixtures (tmp_path) are fine to share across them.
HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

MARKER_TEXT = "SECRET-MARKER"
# Any printed secret of ours starts with this (base64url of b"SECRET-MARKER-...").
MARKER_B64_PREFIX = b64(b"SECRET-MARKER-")[:16]
SECRET_NEEDLES = (MARKER_TEXT, MARKER_B64_PREFIX)


@dataclass
class Outcome:
    """What a command did, in-process or as a process."""

    code: int
    stdout: str
    stderr: str
    argv: Sequence[Any] = ()

    def describe(self) -> str:
        return (
            f"argv={list(self.argv)!r}\nexit={self.code}\n--- stdout ---\n{self.stdout[-3000:]}"
            f"\n--- stderr ---\n{self.stderr[-3000:]}"
        )


def invoke(
    *args: str, input: bytes | str | None = None, env: dict[str, str] | None = None
) -> Outcome:
    """The CLI in-process (fast); an exception that escapes it shows up as a traceback, and a
    Python warning the user would see (library warnings with file paths) shows up on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        result = CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=True)
    stderr = result.stderr
    for warning in caught:
        if not issubclass(warning.category, DeprecationWarning | PendingDeprecationWarning):
            stderr += warnings.formatwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        info = result.exc_info
        assert info is not None
        stderr += "".join(traceback.format_exception(*info))
    return Outcome(result.exit_code, result.stdout, stderr, args)


def flag(command: str, *candidates: str) -> str:
    """The first of `candidates` that `jwksdeploy COMMAND` accepts (flags get renamed; the
    hostile cases stay about the value, not the name)."""
    import click

    with click.Context(cli) as ctx:
        found = cli.get_command(ctx, command)
    assert found is not None, command
    names = {name for param in found.params for name in (*param.opts, *param.secondary_opts)}
    for candidate in candidates:
        if candidate in names:
            return candidate
    raise AssertionError(f"jwksdeploy {command} has none of {candidates}")


def process_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment that reads nothing of the developer's and never uses a proxy."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        and not key.startswith(("JWKSDEPLOY_", "KUBECONFIG"))
    }
    env.update(
        HOME=str(tmp_path / "home"),
        KUBECONFIG=str(tmp_path / "no-kubeconfig"),
        XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),
        NO_PROXY="127.0.0.1",
        no_proxy="127.0.0.1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


def spawn_many(runs: Sequence[Sequence[str | bytes]], cwd: Path, timeout: float) -> list[Outcome]:
    """Several `python -m jwksdeploy` processes at once (tests that wait on a clock share
    the wait). A process still running after `timeout` seconds is killed and reported as a
    hang (exit -1)."""
    import time

    env = process_env(cwd)
    started = [
        (
            args,
            subprocess.Popen(
                [sys.executable, "-m", "jwksdeploy", *args],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ),
        )
        for args in runs
    ]
    deadline = time.monotonic() + timeout
    outcomes = []
    for args, process in started:
        try:
            out, err = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
            code = process.returncode
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            code = -1
            err += f"\n[test: still running after {timeout:g}s: a hang]".encode()
        outcomes.append(
            Outcome(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), args)
        )
    return outcomes


def spawn(
    *args: str | bytes,
    cwd: Path,
    timeout: float = 60,
    input: bytes = b"",
    env: dict[str, str] | None = None,
) -> Outcome:
    """`python -m jwksdeploy ARGS` as a process; the timeout is a safety net against hangs."""
    argv: list[str | bytes] = [sys.executable, "-m", "jwksdeploy", *args]
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=env if env is not None else process_env(cwd),
            input=input,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"jwksdeploy {args!r} did not finish within {timeout:g}s (a hang); stderr so far: "
            f"{(exc.stderr or b'')[-2000:]!r}"
        ) from None
    return Outcome(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
        args,
    )


def serve_outcome(path: str, cwd: Path, timeout: float = 30) -> Outcome:
    """`jwksdeploy serve --jwks PATH --port 0` as a process: it must refuse at start-up. If it
    starts serving instead, it is stopped and the outcome says so (exit code -1)."""
    return serve_outcomes([path], cwd, timeout)[0]


def serve_outcomes(paths: Sequence[str], cwd: Path, timeout: float = 60) -> list[Outcome]:
    """`serve_outcome` for several paths at once (the processes start together, so the suite
    waits for the slowest start-up, not their sum); `timeout` bounds them all."""
    import time

    started = [_start_serve(path, cwd) for path in paths]
    deadline = time.monotonic() + timeout
    return [_refusal_of(run, max(0.1, deadline - time.monotonic()), timeout) for run in started]


@dataclass
class _ServeRun:
    argv: list[str]
    process: subprocess.Popen[bytes]
    lines: list[bytes]
    serving: threading.Event
    reader: threading.Thread


def _start_serve(path: str, cwd: Path) -> _ServeRun:
    argv = [sys.executable, "-m", "jwksdeploy", "serve", "--jwks", path, "--port", "0"]
    process = subprocess.Popen(
        argv, cwd=cwd, env=process_env(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    lines: list[bytes] = []
    serving = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if line.startswith(b"serving "):
                serving.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return _ServeRun(argv, process, lines, serving, reader)


def _refusal_of(run: _ServeRun, wait: float, timeout: float) -> Outcome:
    run.reader.join(wait)
    if run.serving.is_set() or run.reader.is_alive():
        run.process.kill()
        run.process.wait(10)
        state = "started serving" if run.serving.is_set() else f"hung for {timeout:g}s"
        text = b"".join(run.lines).decode("utf-8", "replace")
        return Outcome(-1, "", f"{text}\n[test: serve {state} instead of refusing]", run.argv)
    run.process.wait(10)
    assert run.process.stdout is not None
    stdout = run.process.stdout.read().decode("utf-8", "replace")
    stderr = b"".join(run.lines).decode("utf-8", "replace")
    return Outcome(run.process.returncode, stdout, stderr, run.argv)


def each_failure(checks: dict[str, Callable[[], None]]) -> None:
    """Run every check and report all that fail together (one test covers many commands)."""
    failures = []
    for name, check in checks.items():
        try:
            check()
        except AssertionError as exc:
            failures.append(f"[{name}] {exc}")
    assert not failures, f"{len(failures)} of {len(checks)} failed:\n\n" + "\n\n".join(failures)


def assert_no_secret(outcome: Outcome, extra: Sequence[str] = ()) -> None:
    for needle in (*SECRET_NEEDLES, *extra):
        assert needle not in outcome.stdout, f"secret {needle!r} on stdout\n{outcome.describe()}"
        assert needle not in outcome.stderr, f"secret {needle!r} on stderr\n{outcome.describe()}"


def assert_clean_stderr(outcome: Outcome) -> None:
    """No traceback and no last-resort "bug" message, whatever the exit code."""
    for text in (outcome.stdout, outcome.stderr):
        assert "Traceback" not in text, outcome.describe()
    assert "This is a bug" not in outcome.stderr, outcome.describe()


def assert_refused(
    outcome: Outcome,
    codes: int | Sequence[int],
    *,
    secrets: Sequence[str] = (),
    before: Snapshot | None = None,
    after: Snapshot | None = None,
    mentions: Sequence[str] = (),
) -> None:
    """A clean refusal: a documented exit code and exactly one one-line `error: ` at the end."""
    allowed = (codes,) if isinstance(codes, int) else tuple(codes)
    assert outcome.code in allowed, f"expected exit {allowed}\n{outcome.describe()}"
    assert_clean_stderr(outcome)
    lines = outcome.stderr.rstrip("\n").split("\n")
    assert lines[-1].startswith("error: "), (
        f"last stderr line is not `error: `\n{outcome.describe()}"
    )
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, f"{len(errors)} `error: ` lines\n{outcome.describe()}"
    for words in mentions:
        # one needle, or alternatives separated by "|"
        assert any(w.lower() in lines[-1].lower() for w in words.split("|")), (
            f"error does not mention {words!r}\n{outcome.describe()}"
        )
    assert_no_secret(outcome, secrets)
    if before is not None:
        assert after is not None
        assert after == before, (
            f"files changed on refusal: {diff(before, after)}\n{outcome.describe()}"
        )


Snapshot = dict[str, tuple[str, int]]


def snapshot(root: Path, skip: Sequence[Path] = ()) -> Snapshot:
    """path -> (sha256 or "<dir>", mode) for everything under root (symlinks not followed)."""
    state: Snapshot = {}
    skipped = {str(p) for p in skip}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in skipped]
        for name in dirs:
            path = os.path.join(folder, name)
            state[os.path.relpath(path, root)] = ("<dir>", os.lstat(path).st_mode)
        for name in files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            else:
                digest = f"<{stat.S_IFMT(info.st_mode):o}>"
            state[os.path.relpath(path, root)] = (digest, info.st_mode)
    return state


def diff(before: Snapshot, after: Snapshot) -> dict[str, str]:
    changes = {p: "removed" for p in before if p not in after}
    changes.update({p: "added" for p in after if p not in before})
    changes.update({p: "changed" for p in before if p in after and before[p] != after[p]})
    return changes
