"""The commands that reach a cluster: `apply`, `url`, `status`, `delete`, `diff`. Each binds
its flags to the Options of `apply.run`, `inspect.run_url`/`run_status`, `delete.run` or
`diff.run`, calls it, and prints the Result (cluster_output.py holds the printers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from .cluster_output import (
    print_apply,
    print_client_dry_run,
    print_data,
    print_endpoint,
    run_apply,
)
from .common import (
    Duration,
    F,
    Host,
    apply_set_values,
    check_field_manager,
    cluster_options,
    connect_from_flags,
    dry_run_option,
    echo,
    field_manager_option,
    stack_options,
    vocab_option,
)
from .examples import EPILOGS
from .gateway import PROVIDERS, policy_options, record_option
from .render import load_render_inputs, print_findings, render_options

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
    type=Host(),
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
    "timeout",
    type=Duration(),
    default="2m",
    show_default=True,
    metavar="DURATION",
    help="How long --wait waits.",
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
    from .gateway import POLICY_PARAMS, build_gateway

    apply_set_values(click.get_current_context(), flags, flags.pop("set", ()))
    kubeconfig: str | None = flags.pop("kubeconfig")
    context: str | None = flags.pop("context")
    request_timeout: str = flags.pop("request_timeout")
    mode: str = flags.pop("dry_run")
    field_manager = check_field_manager(flags.pop("field_manager"))
    output: str = flags.pop("output")
    address: str | None = flags.pop("address")
    wait: bool = flags.pop("wait")
    parallel: int = flags.pop("parallel")
    provider: str | None = flags.pop("provider")
    provider_name: str | None = flags.pop("provider_name")
    create_namespace: bool = flags.pop("create_namespace")
    force_conflicts: bool = flags.pop("force_conflicts")
    recreate: bool = flags.pop("recreate")
    wait_seconds: float = flags.pop("timeout")
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
    print_apply(outcome, output, str(provider))
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
    print_client_dry_run(objects + extra, output)
    print_client_dry_run_gateways(planned, str(provider), output)


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


def _namespaces(
    namespace: tuple[str, ...], kubeconfig: str | None, context: str | None
) -> list[str]:
    from ..checks import check_dns1123_label
    from ..kubeconfig import default_namespace

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
            print_endpoint(endpoint, ns, False)
        elif output == "name":
            echo(f"service/{result.service}")
        results.append(endpoint.as_dict(ns))
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
@vocab_option("timeout", type=Duration(), default="2m", show_default=True, metavar="DURATION")
@PARALLEL
@kubectl_output()
@cluster_options
def delete(
    namespace: tuple[str, ...],
    name: str,
    dry_run: str,
    wait: bool,
    timeout: float,
    parallel: int,
    output: str,
    kubeconfig: str | None,
    context: str | None,
    request_timeout: str,
) -> None:
    """Delete the objects jwksdeploy manages (matched by name and managed-by label)."""
    from ..delete import DeleteOptions, run
    from ..inspect import instance_names

    instance_names(name)
    cluster = connect_from_flags(kubeconfig, context, request_timeout)
    chosen = tuple(_namespaces(namespace, kubeconfig, context))
    options = DeleteOptions(chosen, name, dry_run, wait and dry_run == "none", timeout, parallel)
    result = run(cluster, options)
    results: list[dict[str, Any]] = []
    for item in result.namespaces:
        if item.error is not None:
            results.append({"namespace": item.namespace, "error": item.error.report()})
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
