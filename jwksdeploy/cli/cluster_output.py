"""What apply and delete print while they run: objects as they land, rollout progress (one
updating line in a terminal, plain lines otherwise), on stderr; and what the cluster commands
print once done. stdout holds only the result. The work itself is `apply.run`, `delete.run`.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ..terminal import printable
from .common import echo, echo_status

if TYPE_CHECKING:
    from ..apply import ApplyOptions, ApplyResult, Listener
    from ..kube.rollout import Verdict


def print_apply(outcome: ApplyResult, output: str, provider: str) -> None:
    """What apply says once it is done: the API server's warnings, then per namespace the URL
    (or the gateway's configuration) or, for scripts, one object; then what was recorded."""
    from .gateway import print_gateway, print_record

    reports = outcome.results
    for warning in outcome.api_warnings:
        echo(f"warning: the API server says: {warning}", err=True)
    for report in reports:
        if report.gateway_missing:
            echo(
                f"warning: {report.namespace}: no gateway configuration: the JWKS URL is not "
                "known yet (see above); run `jwksdeploy gateway -n NS` once it is.",
                err=True,
            )
    if output in ("json", "yaml"):
        results = [r.as_dict() for r in reports]
        print_data(results if len(results) > 1 else results[0], output)
    elif output == "name":
        for report in reports:
            for obj in report.objects:
                echo(f"{obj.kind.lower()}/{obj.name}")
    else:
        for report in reports:
            if report.error is not None:
                continue
            if report.gateway is None:
                print_endpoint(report.endpoint, report.namespace, report.dry_run)
                continue
            echo(f"{report.namespace}: JWKS URL {report.gateway.url}", err=True)
            for warning in report.gateway.warnings:
                echo(f"warning: {warning}", err=True)
            print_gateway(report.gateway, provider, "yaml", None)
    for report in reports:
        if report.cache_window is not None:
            print_record(report.cache_window)


def print_data(data: Any, output: str) -> None:
    """A result for scripts: indented JSON, or the same data as YAML."""
    import json

    if output == "yaml":
        import yaml

        from ..safeyaml import SafeDumper

        text = yaml.dump(data, Dumper=SafeDumper, sort_keys=False, allow_unicode=True)
        echo(text, nl=False, data="yaml")
    else:
        echo(json.dumps(data, indent=2), data="json")


def print_client_dry_run(objects: list[dict[str, Any]], output: str) -> None:
    """--dry-run=client: what would be sent, validated locally; the cluster is not contacted."""
    from ..render import to_json_list, to_yaml_stream

    if output == "yaml":
        echo(to_yaml_stream(objects), nl=False, data="yaml")
    elif output == "json":
        echo(to_json_list(objects), nl=False, data="json")
    else:
        for obj in objects:
            line = f"{obj['kind'].lower()}/{obj['metadata']['name']}"
            if output == "name":
                echo(line)
            else:
                namespace = obj["metadata"].get("namespace")
                echo(f"{line} in {namespace} (dry run: client, not sent)", err=True)


def _print_plan(plan: Any, dry_run: bool) -> None:
    """One line per namespace on what is adopted and from whom, or what --recreate breaks."""
    from ..adopt import selector_text

    would = "would " if dry_run else ""
    adopted = plan.adopted
    if adopted:
        names = ", ".join(f"{p.kind.lower()}/{p.name}" for p in adopted)
        managers = sorted({m for p in adopted for m in (p.kubectl + p.others)})
        source = f" from {', '.join(managers)}" if managers else ""
        kept = (
            f"; keeping the Deployment's selector {selector_text(plan.kept_selector)} "
            "(immutable), so old and new pods both serve"
            if plan.kept_selector
            else ""
        )
        echo(f"{plan.namespace}: {would}adopt {names}{source}{kept}", err=True)
    elif plan.kept_selector:
        echo(
            f"{plan.namespace}: keeping the Deployment's selector "
            f"{selector_text(plan.kept_selector)} (immutable; --recreate switches it)",
            err=True,
        )
    if plan.recreating:
        old = plan.old_selector.get("matchLabels") or plan.old_selector
        echo(
            f"{plan.namespace}: --recreate {would}delete and recreate the Deployment to change its "
            f"selector from {selector_text(old) if isinstance(old, dict) else old}: the JWKS "
            "endpoint will be down from the deletion until the new pod is ready (image pull "
            "and readiness probe, usually 5-30s; --wait reports the real time).",
            err=True,
        )


def print_endpoint(endpoint: Any, namespace: str, dry_run: bool) -> None:
    if endpoint is None or (dry_run and endpoint.url is None):
        echo(f"{namespace}: the URL is known once the Service exists (dry run).", err=True)
    elif endpoint.url is None:
        echo(f"{namespace}: nodePort {endpoint.node_port}: {endpoint.source}", err=True)
    else:
        echo(f"{namespace}: JWKS URL via {endpoint.source}", err=True)
        echo(endpoint.url)


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
        from ..apply import Listener

        return Listener(plan=self.plan, applied=self.applied, progress=self.progress)

    def _echo(self, text: str) -> None:
        with self.lock:
            self._close_line()
            echo(text, err=True)

    def _close_line(self) -> None:
        if self._line_open:
            echo_status(None)
            self._line_open = False

    def plan(self, plan: Any) -> None:
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
                echo(line, err=True)
                return
            self._close_line()
            if final:
                echo(line, err=True)
            if self.multi:
                line = self._summary()
            if not final or self.multi:
                echo_status(line)
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
    from ..apply import run

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
            echo(
                f"{item.namespace}: the endpoint was down for about {item.down_for:.0f}s "
                "(--recreate: from the deletion to the new pods being ready).",
                err=True,
            )
        else:
            echo(
                f"{item.namespace}: the endpoint is down until the new pods are ready "
                f"(--recreate); `jwksdeploy status -n {item.namespace}` shows when.",
                err=True,
            )
    return result
