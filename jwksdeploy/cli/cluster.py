"""The commands that talk to a cluster: `apply`, `url`, `status`, `delete`, `diff`, and what
apply and delete print while they run. The `kubernetes` client is imported only through
jwksdeploy/cluster.py, when a command connects.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ..errors import printable
from .common import (
    F,
    apply_set_values,
    check_field_manager,
    cluster_options,
    connect_from_flags,
    dry_run_option,
    echo,
    echo_status,
    field_manager_option,
    stack_options,
    vocab_option,
)
from .gateway import PROVIDERS, policy_options, print_gateway, record_option
from .render import load_render_inputs, print_findings, render_options

if TYPE_CHECKING:
    from ..apply import ApplyOptions, ApplyResult, Listener, NamespaceResult
    from ..status import Verdict

FORCE_CONFLICTS = click.option(
    "--force-conflicts", is_flag=True, help="Take over fields another field manager owns."
)


def kubectl_output(help: str | None = None) -> Callable[[F], F]:
    """`-o text|json|yaml|name`, as kubectl offers them, for the cluster commands."""
    return vocab_option(
        "output",
        type=click.Choice(["text", "json", "yaml", "name"]),
        default="text",
        show_default=True,
        help=help,
    )


PARALLEL = vocab_option(
    "parallel",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    metavar="N",
    help="Namespaces worked on at once.",
)
RECREATE = click.option(
    "--recreate",
    is_flag=True,
    help="When the live Deployment selects pods differently (e.g. the source's app label), "
    "delete and recreate it with jwksdeploy's selector; the endpoint is down until the new "
    "pod is ready. Without it the live selector is kept.",
)


@click.command("apply")
@render_options
@cluster_options
@click.option("--create-namespace", is_flag=True, help="Create the namespace if it is missing.")
@dry_run_option(
    "client: render and validate only, no cluster; server (bare --dry-run): the API "
    "server's dry run (dryRun=All), validated by the server, nothing stored."
)
@field_manager_option
@FORCE_CONFLICTS
@RECREATE
@vocab_option(
    "address",
    metavar="HOST",
    help="Address for the URL (e.g. the gateway's); else a node's ExternalIP, else its InternalIP.",
)
@vocab_option(
    "wait",
    default=True,
    show_default=True,
    help="Wait until the pods serve (and a LoadBalancer has its address); stop at once, with "
    "the pod's own reason, when they cannot (image pull, crash loop, quota...).",
)
@PARALLEL
@vocab_option(
    "timeout", default="2m", show_default=True, metavar="DURATION", help="How long --wait waits."
)
@kubectl_output(
    "text: the URL on stdout, details on stderr; json/yaml: one object for scripts; "
    "name: kind/name of each object."
)
@vocab_option(
    "provider",
    aliases=("--gateway",),
    type=click.Choice(PROVIDERS),
    help="Then print this gateway's JWT provider for the URL (on stdout; the URL goes to "
    "stderr). Takes the `jwksdeploy gateway` flags below.",
)
@vocab_option("provider-name", metavar="NAME", help="With --provider.  [default: the --name]")
@policy_options
@record_option
def apply(**flags: Any) -> None:
    """Apply the rendered objects with server-side apply and print the JWKS URL.

    Objects of the same names made by hand (e.g. the source document's YAML with `kubectl
    apply`) are taken over without an outage: the live Deployment's selector is kept."""
    from ..apply import ApplyOptions, GatewayRequest
    from ..render import render_objects
    from ..settings import check_address, parse_duration
    from .gateway import POLICY_PARAMS, build_gateway

    apply_set_values(click.get_current_context(), flags, flags.pop("set", ()))
    kubeconfig: str | None = flags.pop("kubeconfig")
    context: str | None = flags.pop("context")
    request_timeout: str = flags.pop("request_timeout")
    mode: str = flags.pop("dry_run")
    field_manager = check_field_manager(flags.pop("field_manager"))
    output: str = flags.pop("output")
    address = check_address(flags.pop("address"))  # before anything is applied
    wait: bool = flags.pop("wait")
    parallel: int = flags.pop("parallel")
    provider: str | None = flags.pop("provider")
    provider_name: str | None = flags.pop("provider_name")
    create_namespace: bool = flags.pop("create_namespace")
    force_conflicts: bool = flags.pop("force_conflicts")
    recreate: bool = flags.pop("recreate")
    wait_seconds = parse_duration(flags.pop("timeout"), "--timeout")
    policy = {key: flags.pop(key) for key in POLICY_PARAMS}
    record: bool = flags.pop("record")
    settings, jwks_bytes, jwks_path = load_render_inputs(flags, kubeconfig, context)
    gateway_name = provider_name or settings.name
    if provider is not None:
        name_flag = "--provider-name" if provider_name else "--name"
        _check_gateway(provider, gateway_name, settings.namespaces, policy, name_flag)
    rendered = render_objects(settings, jwks_bytes, f"JWKS file {jwks_path!r}")
    print_findings(rendered.warnings)
    if mode == "client":
        _client_dry_run(rendered.objects, provider, gateway_name, policy, address, output)
        return
    dry_run = mode == "server"
    gateway = None
    if provider is not None:
        chosen = provider

        def build(name: str, url: str) -> Any:
            return build_gateway(chosen, name, url, policy)

        gateway = GatewayRequest(provider, gateway_name, build, settings.configmap_name, record)
    cluster = connect_from_flags(kubeconfig, context, request_timeout)
    options = ApplyOptions(
        objects=rendered.objects,
        instance=settings.name,
        create_namespace=create_namespace,
        dry_run=dry_run,
        force=force_conflicts,
        recreate=recreate,
        wait=wait,
        timeout=wait_seconds,
        parallel=parallel,
        address=address,
        field_manager=field_manager,
        gateway=gateway,
    )
    outcome = run_apply(cluster, options, output)
    _print_apply(outcome, output, str(provider))
    failure = outcome.error()
    if failure is not None:
        raise failure


def _client_dry_run(
    objects: list[dict[str, Any]],
    provider: str | None,
    name: str,
    policy: dict[str, Any],
    address: str | None,
    output: str,
) -> None:
    from .gateway import client_dry_run_gateways, print_client_dry_run_gateways

    planned = (
        client_dry_run_gateways(objects, provider, name, policy, address)
        if provider is not None
        else []
    )
    extra = [obj for _, _, c in planned for obj in c.objects] if output == "json" else []
    _print_client_dry_run(objects + extra, output)
    print_client_dry_run_gateways(planned, str(provider), output)


def _print_apply(outcome: ApplyResult, output: str, provider: str) -> None:
    """What apply says once it is done: the API server's warnings, then per namespace the URL
    (or the gateway's configuration) or, for scripts, one object; then what was recorded."""
    from .gateway import print_record

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
        results = [{**_report_json(r), **result_fields(r)} for r in reports]
        for result, report in zip(results, reports, strict=True):
            result["gateway"] = report.gateway.objects if report.gateway is not None else None
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
                _print_endpoint(report.endpoint, report.namespace, report.dry_run)
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


def _print_client_dry_run(objects: list[dict[str, Any]], output: str) -> None:
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


def _check_gateway(
    provider: str, name: str, namespaces: tuple[str, ...], policy: dict[str, Any], name_flag: str
) -> None:
    """Refuse bad gateway flags before anything is applied: build each namespace's configuration
    with a stand-in for the URL, which is known only once the Service exists (apply's URLs are
    http, so the scheme-dependent checks see what they will see then)."""
    from .gateway import PLACEHOLDER_URL, build_gateway

    for namespace in namespaces:
        suffix = f"-{namespace}" if len(namespaces) > 1 else ""
        build_gateway(provider, f"{name}{suffix}", PLACEHOLDER_URL, policy, name_flag)


def _report_json(report: Any) -> dict[str, Any]:
    endpoint = report.endpoint
    return {
        "namespace": report.namespace,
        "url": endpoint.url if endpoint else None,
        "address": endpoint.address if endpoint else None,
        "nodePort": endpoint.node_port if endpoint else None,
        "port": endpoint.port if endpoint else None,
        "addressSource": endpoint.source if endpoint else None,
        "dryRun": report.dry_run,
        "objects": [
            {"kind": o.kind, "name": o.name, "namespace": o.namespace, "outcome": o.outcome}
            for o in report.objects
        ],
    }


def _print_endpoint(endpoint: Any, namespace: str, dry_run: bool) -> None:
    if endpoint is None or (dry_run and endpoint.url is None):
        echo(f"{namespace}: the URL is known once the Service exists (dry run).", err=True)
    elif endpoint.url is None:
        echo(f"{namespace}: nodePort {endpoint.node_port}: {endpoint.source}", err=True)
    else:
        echo(f"{namespace}: JWKS URL via {endpoint.source}", err=True)
        echo(endpoint.url)


def _namespaces(
    namespace: tuple[str, ...], kubeconfig: str | None, context: str | None
) -> list[str]:
    from ..kubeconfig import default_namespace
    from ..settings import check_dns1123_label

    chosen = list(namespace) or [default_namespace(kubeconfig, context)]
    return [check_dns1123_label("--namespace", ns) for ns in chosen]


def instance_options(command: F) -> F:
    """Which instance(s): -n (repeatable) and --name, for url, status, delete and diff."""
    return stack_options(
        command,
        [
            vocab_option(
                "namespace",
                multiple=True,
                metavar="NS",
                help="Namespace, repeatable.  [default: the kubeconfig context's]",
            ),
            vocab_option(
                "name",
                default="remote-jwks-go",
                show_default=True,
                metavar="NAME",
                help="The --name apply used.",
            ),
        ],
    )


@click.command("url")
@instance_options
@vocab_option("address", metavar="HOST", help="Address to use instead of a node's.")
@kubectl_output("text: the URL; json/yaml: the URL and how it was found; name: the Service.")
@cluster_options
def url(
    namespace: tuple[str, ...],
    name: str,
    address: str | None,
    output: str,
    kubeconfig: str | None,
    context: str | None,
    request_timeout: str,
) -> None:
    """Print the JWKS URL of what apply deployed."""
    from ..inspect import UrlOptions, instance_names, run_url

    instance_names(name)  # a bad --name is refused before the kubeconfig is read
    namespaces = _namespaces(namespace, kubeconfig, context)
    cluster = connect_from_flags(kubeconfig, context, request_timeout)
    result = run_url(cluster, UrlOptions(tuple(namespaces), name, address))
    results = []
    for ns, endpoint in result.endpoints:
        if output == "text":
            _print_endpoint(endpoint, ns, False)
        elif output == "name":
            echo(f"service/{result.service}")
        results.append(
            {
                "namespace": ns,
                "url": endpoint.url,
                "address": endpoint.address,
                "nodePort": endpoint.node_port,
                "port": endpoint.port,
                "addressSource": endpoint.source,
            }
        )
    if result.error is not None:
        raise result.error
    if output in ("json", "yaml"):
        print_data(results if len(results) > 1 else results[0], output)


@click.command("status")
@instance_options
@vocab_option("jwks", metavar="PATH", help="Local JWKS to compare with the live ConfigMap.")
@kubectl_output()
@cluster_options
def status(
    namespace: tuple[str, ...],
    name: str,
    jwks: str | None,
    output: str,
    kubeconfig: str | None,
    context: str | None,
    request_timeout: str,
) -> None:
    """Show the deployed objects, ready replicas, the URL and whether the live JWKS matches.

    Exit 1 when the live JWKS differs from --jwks or the rollout is incomplete."""
    from ..files import read_input
    from ..inspect import StatusOptions, instance_names, run_status

    instance_names(name)
    local = read_input(jwks, "JWKS file").decode("utf-8", "replace") if jwks else None
    cluster = connect_from_flags(kubeconfig, context, request_timeout)
    namespaces = tuple(_namespaces(namespace, kubeconfig, context))
    result = run_status(cluster, StatusOptions(namespaces, name, local, jwks))
    if output in ("json", "yaml"):
        found = [r.as_dict() for r in result.namespaces]
        print_data(found if len(found) > 1 else found[0], output)
    elif output == "name":
        for item in result.namespaces:
            for obj in item.objects:
                echo(obj)
    for item in result.namespaces if output == "text" else []:
        echo(f"namespace: {item.namespace}")
        echo(f"  objects: {', '.join(item.objects)}")
        echo(f"  ready:   {item.ready} ({'rolled out' if item.rolled_out else 'rolling'})")
        echo(f"  url:     {item.url}")
        if item.matches_local_jwks is not None:
            verdict = "matches" if item.matches_local_jwks else "DIFFERS from"
            echo(f"  jwks:    live ConfigMap {verdict} {jwks}")
    differences = result.differences()
    if differences is not None:
        raise differences


@click.command("delete")
@instance_options
@dry_run_option(
    "server (bare --dry-run): the API server's dry run of each delete; client: only list "
    "what would be deleted."
)
@vocab_option("wait", default=False, help="Wait until the objects are gone (a watch).")
@vocab_option("timeout", default="2m", show_default=True, metavar="DURATION")
@PARALLEL
@kubectl_output()
@cluster_options
def delete(
    namespace: tuple[str, ...],
    name: str,
    dry_run: str,
    wait: bool,
    timeout: str,
    parallel: int,
    output: str,
    kubeconfig: str | None,
    context: str | None,
    request_timeout: str,
) -> None:
    """Delete the objects jwksdeploy manages (matched by name and managed-by label)."""
    from ..delete import DeleteOptions, run
    from ..inspect import instance_names
    from ..settings import parse_duration

    seconds = parse_duration(timeout, "--timeout")
    instance_names(name)
    cluster = connect_from_flags(kubeconfig, context, request_timeout)
    chosen = tuple(_namespaces(namespace, kubeconfig, context))
    options = DeleteOptions(chosen, name, dry_run, wait and dry_run == "none", seconds, parallel)
    result = run(cluster, options)
    results: list[dict[str, Any]] = []
    for item in result.namespaces:
        if item.error is not None:
            results.append({"namespace": item.namespace, "error": item.error.format_message()})
        for kind, object_name, outcome in item.outcomes:
            results.append(
                {"namespace": item.namespace, "kind": kind, "name": object_name, "outcome": outcome}
            )
            if output == "text":
                echo(f"{item.namespace}: {kind.lower()}/{object_name} {outcome}")
            elif output == "name" and outcome != "not found":
                echo(f"{kind.lower()}/{object_name}")
    if output in ("json", "yaml") and (dry_run == "none" or result.error is None):
        print_data(results, output)
    if result.error is not None:
        raise result.error


@click.command("diff")
@render_options
@cluster_options
@FORCE_CONFLICTS
@RECREATE
@field_manager_option
@vocab_option(
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: a unified YAML diff per object; json: the same for scripts.",
)
def diff_command(**flags: Any) -> None:
    """Show what `apply` would change: the API server's dry run against the live objects.

    Exit 0 when nothing would change, 1 when something would, above 1 on errors (kubectl
    diff's convention). Objects apply would create or prune are listed as such."""
    from ..diff import DiffOptions, run
    from ..errors import Differences
    from ..render import render_objects

    apply_set_values(click.get_current_context(), flags, flags.pop("set", ()))
    kubeconfig: str | None = flags.pop("kubeconfig")
    context: str | None = flags.pop("context")
    request_timeout: str = flags.pop("request_timeout")
    force: bool = flags.pop("force_conflicts")
    recreate: bool = flags.pop("recreate")
    output: str = flags.pop("output")
    field_manager = check_field_manager(flags.pop("field_manager"))
    settings, jwks_bytes, jwks_path = load_render_inputs(flags, kubeconfig, context)
    rendered = render_objects(settings, jwks_bytes, f"JWKS file {jwks_path!r}")
    print_findings(rendered.warnings)
    cluster = connect_from_flags(kubeconfig, context, request_timeout)
    options = DiffOptions(rendered.objects, settings.name, recreate, force, field_manager)
    result = run(cluster, options)
    for warning in result.api_warnings:
        echo(f"warning: the API server says: {warning}", err=True)
    if output == "json":
        import json

        echo(json.dumps([d.as_dict() for d in result.diffs], indent=2), data="json")
    else:
        for verdict in result.diffs:
            if verdict.changes:
                echo(verdict.diff, nl=False)
    if result.changed:
        raise Differences(result.summary())
    echo(result.summary(), err=True)


# What apply and delete print while they run: objects as they land, rollout progress (one
# updating line in a terminal, plain lines otherwise), on stderr; stdout holds only the result.
# The work itself is `apply.run` / `apply.delete`.


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


def result_fields(item: NamespaceResult) -> dict[str, Any]:
    """What `-o json` adds per namespace: whether it failed, why, and the rollout."""
    verdict = item.verdict
    return {
        "ok": item.ok,
        "exitCode": item.error.exit_code if item.error is not None else 0,
        "error": item.error.format_message() if item.error is not None else None,
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
