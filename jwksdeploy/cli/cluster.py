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
from .examples import EPILOGS
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


@click.command("apply", epilog=EPILOGS["apply"])
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
    from ..apply import ApplyOptions
    from ..render import render_objects
    from ..settings import check_address, parse_duration
    from .gateway import POLICY_PARAMS

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
    if provider is not None:
        name_flag = "--provider-name" if provider_name else "--name"
        _check_gateway(
            provider, provider_name or settings.name, settings.namespaces, policy, name_flag
        )
    rendered = render_objects(settings, jwks_bytes, f"JWKS file {jwks_path!r}")
    print_findings(rendered.warnings)
    if mode == "client":
        from .gateway import client_dry_run_gateways, print_client_dry_run_gateways

        planned = (
            client_dry_run_gateways(
                rendered.objects, provider, provider_name or settings.name, policy, address
            )
            if provider is not None
            else []
        )
        extra = [obj for _, _, c in planned for obj in c.objects] if output == "json" else []
        _print_client_dry_run(rendered.objects + extra, output)
        print_client_dry_run_gateways(planned, str(provider), output)
        return
    dry_run = mode == "server"
    cluster = connect_from_flags(kubeconfig, context, request_timeout)
    cluster.field_manager = field_manager
    outcome = run_apply(
        cluster,
        ApplyOptions(
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
        ),
        output,
    )
    reports = outcome.results
    for warning in cluster.warnings:
        echo(f"warning: the API server says: {warning}", err=True)
    gateways = _gateways_for(reports, provider, provider_name or settings.name, policy)
    if output in ("json", "yaml"):
        results = [{**_report_json(r), **result_fields(r)} for r in reports]
        for result, config in zip(results, gateways, strict=True):
            result["gateway"] = config.objects if config is not None else None
        print_data(results if len(results) > 1 else results[0], output)
    elif output == "name":
        for report in reports:
            for obj in report.objects:
                echo(f"{obj.kind.lower()}/{obj.name}")
    else:
        for report, config in zip(reports, gateways, strict=True):
            if report.error is not None:
                continue
            if config is None:
                _print_endpoint(report.endpoint, report.namespace, dry_run)
                continue
            echo(f"{report.namespace}: JWKS URL {config.url}", err=True)
            for warning in config.warnings:
                echo(f"warning: {warning}", err=True)
            print_gateway(config, str(provider), "yaml", None)
    if provider is not None and record:
        from .gateway import record_cache_window

        for report, config in zip(reports, gateways, strict=True):
            if config is not None and report.error is None:
                suffix = f"-{report.namespace}" if len(reports) > 1 else ""
                record_cache_window(
                    cluster,
                    report.namespace,
                    settings.configmap_name,
                    f"{provider}/{provider_name or settings.name}{suffix}",
                    config,
                    dry_run,
                )
    failure = outcome.error()
    if failure is not None:
        raise failure


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


def _gateways_for(
    reports: list[Any], gateway: str | None, name: str, policy: dict[str, Any]
) -> list[Any]:
    """One gateway configuration per applied namespace (None where the URL is not known)."""
    from .gateway import build_gateway

    configs: list[Any] = []
    for report in reports:
        url = report.endpoint.url if report.endpoint is not None else None
        if gateway is None:
            configs.append(None)
        elif url is None:
            echo(
                f"warning: {report.namespace}: no gateway configuration: the JWKS URL is not "
                "known yet (see above); run `jwksdeploy gateway -n NS` once it is.",
                err=True,
            )
            configs.append(None)
        else:
            suffix = f"-{report.namespace}" if len(reports) > 1 else ""
            configs.append(build_gateway(gateway, f"{name}{suffix}", url, policy))
    return configs


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


def _instance_names(name: str) -> dict[str, str]:
    from ..settings import DEFAULT_NAME, Settings, check_object_name

    settings = Settings(namespaces=("unused",), name=check_object_name(name or DEFAULT_NAME))
    return {
        "ConfigMap": settings.configmap_name,
        "Service": settings.name,
        "Deployment": settings.name,
        "PodDisruptionBudget": settings.name,
    }


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
    from ..cluster import deployed_endpoint

    names = _instance_names(name)
    namespaces = _namespaces(namespace, kubeconfig, context)
    cluster = connect_from_flags(kubeconfig, context, request_timeout)
    results = []
    for ns in namespaces:
        endpoint = deployed_endpoint(cluster, ns, names["Service"], address)
        if output == "text":
            _print_endpoint(endpoint, ns, False)
        elif output == "name":
            echo(f"service/{names['Service']}")
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
    from ..cluster import endpoint_for, managed_objects, rollout_state
    from ..errors import ClusterRejected, Differences
    from ..files import read_input
    from ..render import JWKS_KEY, jwks_checksum

    names = _instance_names(name)
    local = read_input(jwks, "JWKS file").decode("utf-8", "replace") if jwks else None
    cluster = connect_from_flags(kubeconfig, context, request_timeout)
    results: list[dict[str, Any]] = []
    for ns in _namespaces(namespace, kubeconfig, context):
        live = managed_objects(cluster, ns, names)
        if not live:
            raise ClusterRejected(
                f"nothing managed by jwksdeploy named {name!r} in namespace {ns!r}. Deploy it "
                f"with `jwksdeploy apply --namespace {ns}`, or pass the --name you used."
            )
        state = rollout_state(live["Deployment"]) if "Deployment" in live else None
        endpoint = endpoint_for(cluster, live["Service"]) if "Service" in live else None
        live_text = (live.get("ConfigMap", {}).get("data") or {}).get(JWKS_KEY)
        result: dict[str, Any] = {
            "namespace": ns,
            "objects": sorted(
                f"{kind.lower()}/{obj['metadata']['name']}" for kind, obj in live.items()
            ),
            "ready": f"{state.ready}/{state.desired}" if state else None,
            "rolledOut": state.done if state else False,
            "url": endpoint.url if endpoint else None,
            "jwksChecksum": jwks_checksum(live_text) if live_text is not None else None,
            "matchesLocalJwks": (
                None
                if local is None or live_text is None
                else jwks_checksum(local) == jwks_checksum(live_text)
            ),
        }
        results.append(result)
    if output in ("json", "yaml"):
        print_data(results if len(results) > 1 else results[0], output)
    elif output == "name":
        for result in results:
            for obj in result["objects"]:
                echo(obj)
    for result in results if output == "text" else []:
        echo(f"namespace: {result['namespace']}")
        echo(f"  objects: {', '.join(result['objects'])}")
        echo(f"  ready:   {result['ready']} ({'rolled out' if result['rolledOut'] else 'rolling'})")
        echo(f"  url:     {result['url']}")
        if result["matchesLocalJwks"] is not None:
            verdict = "matches" if result["matchesLocalJwks"] else "DIFFERS from"
            echo(f"  jwks:    live ConfigMap {verdict} {jwks}")
    behind = [r["namespace"] for r in results if not r["rolledOut"]]
    differs = [r["namespace"] for r in results if r["matchesLocalJwks"] is False]
    if behind or differs:
        reasons = []
        if differs:
            reasons.append(f"the live JWKS differs from {jwks} in {', '.join(differs)}")
        if behind:
            reasons.append(f"the rollout is incomplete in {', '.join(behind)}")
        raise Differences(
            f"{'; '.join(reasons)}. `jwksdeploy apply` deploys the local set; `jwksdeploy "
            "apply --wait` waits for the rollout."
        )


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
    from ..apply import delete as delete_instances
    from ..apply import delete_error
    from ..cluster import managed_objects
    from ..settings import parse_duration

    seconds = parse_duration(timeout, "--timeout")
    names = _instance_names(name)
    cluster = connect_from_flags(kubeconfig, context, request_timeout)
    results: list[dict[str, Any]] = []
    chosen = _namespaces(namespace, kubeconfig, context)
    deleted = (
        delete_instances(cluster, chosen, names, wait=wait, timeout=seconds, parallel=parallel)
        if dry_run == "none"
        else []
    )
    for index, ns in enumerate(chosen):
        if dry_run == "none":
            outcomes = deleted[index].outcomes
            if deleted[index].error is not None:
                results.append({"namespace": ns, "error": str(deleted[index].error)})
        else:
            outcomes = []
            live = managed_objects(cluster, ns, names)
            for kind, obj_name in ((k, names[k]) for k in reversed(list(names))):
                found = kind in live and (
                    dry_run == "client" or cluster.delete(kind, ns, obj_name, dry_run=True)
                )
                outcomes.append(
                    (kind, obj_name, f"deleted ({dry_run} dry run)" if found else "not found")
                )
        for kind, object_name, outcome in outcomes:
            results.append({"namespace": ns, "kind": kind, "name": object_name, "outcome": outcome})
            if output == "text":
                echo(f"{ns}: {kind.lower()}/{object_name} {outcome}")
            elif output == "name" and outcome != "not found":
                echo(f"{kind.lower()}/{object_name}")
    if output in ("json", "yaml"):
        print_data(results, output)
    failure = delete_error(deleted)
    if failure is not None:
        raise failure


def _diffs(
    cluster: Any, objects: list[dict[str, Any]], instance: str, recreate: bool, force: bool
) -> list[Any]:
    """Plan as apply does, dry-run each namespace, and compare with what is live; then what
    apply would prune. Cluster reads and dry runs only: nothing is stored."""
    from ..cluster import plan_apply
    from ..diff import compare
    from ..prune import instance_selector, prunable_kinds, prune_candidates

    plans = plan_apply(cluster, objects, instance=instance, recreate=recreate, force=force)
    diffs = []
    for plan in plans:
        answers = _dry_run_plan(cluster, plan, force)
        namespace_key = ("Namespace", plan.namespace, None)
        if namespace_key in answers:
            diffs.append(compare("Namespace", plan.namespace, None, None, answers[namespace_key]))
        for item in plan.objects:
            planned = answers.get((item.kind, item.name, item.namespace), item.obj)
            diffs.append(
                compare(
                    item.kind, item.name, item.namespace, item.live, planned, recreate=item.recreate
                )
            )
        if namespace_key in answers:
            continue  # nothing lives in a namespace that does not exist yet
        group = [o for o in objects if o["metadata"]["namespace"] == plan.namespace]
        for kind in prunable_kinds(group):
            live = {
                str(o.get("metadata", {}).get("name")): o
                for o in cluster.list(kind, plan.namespace, instance_selector(instance))
            }
            for name in prune_candidates(list(live.values()), group, instance):
                diffs.append(
                    compare(kind, name, plan.namespace, {"kind": kind, **live[name]}, None)
                )
    return diffs


def _dry_run_plan(cluster: Any, plan: Any, force: bool) -> dict[Any, dict[str, Any]]:
    """apply's pre-flight for one namespace. A missing namespace is part of the diff, not an
    error (everything in it is a create); the Namespace is read only when the dry run says so,
    so a user whose RBAC stops at the namespace can still diff."""
    from ..cluster import preflight
    from ..errors import ClusterRejected

    try:
        return preflight(cluster, [plan], create_namespace=False, force=force)
    except ClusterRejected:
        if cluster.get("Namespace", None, plan.namespace) is not None:
            raise
        return preflight(cluster, [plan], create_namespace=True, force=force)


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
    from ..diff import summary
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
    cluster.field_manager = field_manager
    diffs = _diffs(cluster, rendered.objects, settings.name, recreate, force)
    for warning in cluster.warnings:
        echo(f"warning: the API server says: {warning}", err=True)
    if output == "json":
        import json

        echo(json.dumps([d.as_dict() for d in diffs], indent=2), data="json")
    else:
        for verdict in diffs:
            if verdict.changes:
                echo(verdict.diff, nl=False)
    if any(d.changes for d in diffs):
        raise Differences(summary(diffs))
    echo(summary(diffs), err=True)


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
