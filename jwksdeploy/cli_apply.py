"""What `apply` and `delete` print while they run: objects as they land, rollout progress
(one updating line in a terminal, plain lines otherwise), on stderr; stdout holds only the
result. The work itself is `apply.run` / `apply.delete`."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import click

from .apply import ApplyOptions, ApplyResult, Listener, NamespaceResult
from .errors import printable
from .status import Verdict


class ApplyPrinter:
    """A Listener that prints; safe to call from the pool's threads."""

    def __init__(self, *, output: str, dry_run: bool, multi: bool, tty: bool) -> None:
        self.output = output
        self.dry_run = dry_run
        self.multi = multi
        self.tty = tty
        self.lock = threading.Lock()
        self.states: dict[str, tuple[Verdict, float]] = {}
        self.started = time.monotonic()
        self._line_open = False

    def listener(self) -> Listener:
        return Listener(plan=self.plan, applied=self.applied, progress=self.progress)

    def _echo(self, text: str) -> None:
        with self.lock:
            self._close_line()
            click.echo(text, err=True)

    def _close_line(self) -> None:
        if self._line_open:
            click.echo("\r\033[K", err=True, nl=False, color=True)
            self._line_open = False

    def plan(self, plan: Any) -> None:
        from .cli import _print_plan

        with self.lock:
            self._close_line()
            _print_plan(plan, self.dry_run)

    def applied(self, obj: Any) -> None:
        if self.output != "text":
            return
        suffix = " (dry run)" if self.dry_run else ""
        prefix = f"{obj.namespace}: " if self.multi and obj.namespace else ""
        self._echo(f"{prefix}{obj.kind.lower()}/{obj.name} {obj.outcome}{suffix}")

    def progress(self, namespace: str, verdict: Verdict, elapsed: float) -> None:
        prefix = f"{namespace}: " if self.multi else ""
        with self.lock:
            self.states[namespace] = (verdict, elapsed)
            if verdict.done:
                line = f"  {prefix}rollout: {verdict.message} after {elapsed:.0f}s"
            elif verdict.failed:
                line = (
                    f"  {prefix}rollout: failed after {elapsed:.0f}s: {verdict.subject}: "
                    f"{verdict.reason}"
                )
            else:
                line = f"  {prefix}rollout: {verdict.message} ({elapsed:.0f}s)"
            # reasons and messages are the cluster's text: no escape or line break of theirs
            line = printable(line)
            final = verdict.done or verdict.failed
            if not self.tty:
                click.echo(line, err=True)
                return
            self._close_line()
            if final:
                click.echo(line, err=True)
            if self.multi:
                line = self._summary()
            if not final or self.multi:
                click.echo(f"\r{line}\033[K", err=True, nl=False, color=True)
                self._line_open = True

    def _summary(self) -> str:
        done = sum(1 for v, _ in self.states.values() if v.done)
        failed = sum(1 for v, _ in self.states.values() if v.failed)
        waiting = [
            (ns, v) for ns, (v, _) in sorted(self.states.items()) if not (v.done or v.failed)
        ]
        text = f"  rollout: {done} ready, {failed} failed, {len(waiting)} waiting"
        if waiting:
            ns, verdict = waiting[0]
            text += f" ({ns}: {verdict.message})"
        return printable(f"{text} ({time.monotonic() - self.started:.0f}s)")

    def finish(self) -> None:
        with self.lock:
            self._close_line()


def run_apply(cluster: Any, options: ApplyOptions, output: str) -> ApplyResult:
    """Run apply with progress on stderr; say what --recreate cost."""
    from .apply import run

    namespaces = {o["metadata"]["namespace"] for o in options.objects}
    printer = ApplyPrinter(
        output=output,
        dry_run=options.dry_run,
        multi=len(namespaces) > 1,
        tty=sys.stderr.isatty(),
    )
    try:
        result = run(cluster, options, printer.listener())
    finally:
        printer.finish()
    for item in result.results:
        if item.down_since is None or item.error is not None:
            continue
        if item.down_for is not None:
            click.echo(
                f"{item.namespace}: the endpoint was down for about {item.down_for:.0f}s "
                "(--recreate: from the deletion to the new pods being ready).",
                err=True,
            )
        else:
            click.echo(
                f"{item.namespace}: the endpoint is down until the new pods are ready "
                f"(--recreate); `jwksdeploy status -n {item.namespace}` shows when.",
                err=True,
            )
    return result


def result_fields(item: NamespaceResult) -> dict[str, Any]:
    """What `-o json` adds per namespace: whether it failed, why, and the rollout."""
    verdict = item.verdict
    return {
        "ok": item.ok,
        "exitCode": item.error.exit_code if item.error is not None else 0,
        "error": str(item.error) if item.error is not None else None,
        "rollout": None
        if verdict is None
        else {
            "status": verdict.status,
            "ready": verdict.ready,
            "desired": verdict.desired,
            "reason": verdict.reason or None,
            "object": verdict.subject or None,
        },
        "pruned": [f"{o.kind.lower()}/{o.name}" for o in item.objects if o.outcome == "pruned"],
    }
