"""The command line: parse flags, build settings, call one function, print. Nothing else.

Errors from the core arrive as JwksDeployError and become a message and an exit code in
exactly one place, `_Cli.invoke`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from . import __version__
from .cli_common import (
    F,
    SuggestingGroup,
    apply_set_values,
    check_field_manager,
    dry_run_option,
    field_manager_option,
    stack_options,
    vocab_option,
)
from .cli_gateway import PROVIDERS, policy_options, print_gateway, record_option
from .errors import INTERNAL_ERROR, Differences, JwksDeployError, printable

# Commands defined in other modules, imported only when named, so `render` and the cluster
# commands do not pay for building the key, token and gateway commands.
LAZY_COMMANDS = {
    "gateway": ("cli_gateway", "gateway_command"),
    "jwks": ("cli_keys", "jwks_group"),
    "rotate": ("cli_rotate", "rotate_group"),
    "serve": ("cli_keys", "serve_command"),
    "token": ("cli_keys", "token_command"),
    "verify": ("cli_keys", "verify_command"),
}


class _Cli(SuggestingGroup):
    """Maps the error tree to stderr and exit codes, and loads LAZY_COMMANDS on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            import importlib

            module_name, attribute = LAZY_COMMANDS[cmd_name]
            module = importlib.import_module(f"{__package__}.{module_name}")
            command: click.Command = getattr(module, attribute)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Differences as exc:  # a verdict, not a failure: no "error:"
            click.echo(printable(str(exc)), err=True)
            ctx.exit(exc.exit_code)
        except JwksDeployError as exc:
            click.echo(f"error: {printable(str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("error: interrupted.", err=True)
            ctx.exit(130)
        except Exception as exc:  # the last resort: say what happened, no traceback by default
            if os.environ.get("JWKSDEPLOY_DEBUG"):
                import traceback

                traceback.print_exc()
            click.echo(
                f"error: unexpected {type(exc).__name__}: {printable(str(exc))}. This is a bug "
                "in jwksdeploy; "
                "rerun with JWKSDEPLOY_DEBUG=1 for a traceback and report it.",
                err=True,
            )
            ctx.exit(INTERNAL_ERROR)


@click.group(
    cls=_Cli,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="jwksdeploy")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Render, deploy and check a JWKS server for Envoy-based API gateways.

    Typical flow: `jwksdeploy jwks generate`, `jwksdeploy apply` (or `render` for
    GitOps), `jwksdeploy gateway`, then `jwksdeploy token` and `jwksdeploy verify`.
    Locally, without a cluster: `jwksdeploy serve`.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def print_findings(findings: list[Any]) -> None:
    for finding in findings:
        click.echo(str(finding), err=True)


def render_options(command: F) -> F:
    """The flags shared by render and apply; every one may also come from --values."""
    options = [
        vocab_option(
            "values",
            "values_file",
            multiple=True,
            metavar="FILE",
            help="YAML file with any of these flags by long name, repeatable (later files "
            "win); flags override it.",
        ),
        vocab_option(
            "set",
            multiple=True,
            metavar="NAME=VALUE",
            help="Any long flag of this command by name (Helm's --set), checked like the flag.",
        ),
        vocab_option(
            "jwks",
            metavar="PATH",
            help="JWKS file to publish ('-' reads stdin).  [default: ./jwks.json]",
        ),
        vocab_option(
            "namespace",
            multiple=True,
            metavar="NS",
            help="Target namespace, repeatable.  [default: $JWKSDEPLOY_NAMESPACE, "
            "else the kubeconfig context's namespace, else default]",
        ),
        vocab_option(
            "name",
            metavar="NAME",
            help="Name of the Deployment and Service; other names derive from it.  "
            "[default: remote-jwks-go]",
        ),
        click.option(
            "--image",
            metavar="IMAGE",
            help="JWKS server image.  [default: the source's remote-jwks-go:0.1.0]",
        ),
        click.option(
            "--server",
            type=click.Choice(["remote-jwks-go", "jwksdeploy", "nginx"]),
            help="Server preset: image, command, probes and mounts.  [default: remote-jwks-go]",
        ),
        click.option(
            "--replicas",
            type=int,
            metavar="N",
            help="Pod count; 2+ adds a PodDisruptionBudget and spreads pods across "
            "nodes.  [default: 1]",
        ),
        vocab_option("port", type=int, metavar="PORT", help="Service port.  [default: 8080]"),
        click.option(
            "--container-port",
            type=int,
            metavar="PORT",
            help="Port the server listens on in the container.  [default: 8080]",
        ),
        vocab_option(
            "node-port",
            type=int,
            metavar="PORT",
            help="Fixed nodePort (else the cluster picks one).",
        ),
        click.option(
            "--node-port-range",
            metavar="LOW-HIGH",
            help="Your API server's node port range.  [default: 30000-32767]",
        ),
        click.option(
            "--service-type",
            type=click.Choice(["NodePort", "ClusterIP", "LoadBalancer"]),
            help="Service type.  [default: NodePort]",
        ),
        click.option(
            "--label", multiple=True, metavar="K=V", help="Extra label on every object, repeatable."
        ),
        click.option(
            "--annotation",
            multiple=True,
            metavar="K=V",
            help="Extra annotation on every object, repeatable.",
        ),
        click.option(
            "--image-pull-policy",
            type=click.Choice(["IfNotPresent", "Always", "Never"]),
            help="[default: IfNotPresent]",
        ),
        click.option(
            "--image-pull-secret",
            multiple=True,
            metavar="SECRET",
            help="Secret for pulling the image, repeatable.",
        ),
        click.option("--cpu-request", metavar="Q", help="[default: 10m]"),
        click.option("--memory-request", metavar="Q", help="[default: 16Mi]"),
        click.option("--cpu-limit", metavar="Q", help="[default: 200m]"),
        click.option("--memory-limit", metavar="Q", help="[default: 64Mi]"),
        vocab_option(
            "strict",
            default=None,
            help="Treat JWKS warnings as errors (for CI).  [default: no-strict]",
        ),
        click.option(
            "--selector-compat",
            type=click.Choice(["recommended", "source"]),
            help="Pod selector: app.kubernetes.io/name+instance, or the source document's "
            "app=<name> (to take over its Deployment without apply).  [default: recommended]",
        ),
    ]
    return stack_options(command, options)


def load_render_inputs(
    params: dict[str, Any], kubeconfig: str | None = None, context: str | None = None
) -> tuple[Any, bytes, str]:
    """Values files + --set + flags -> (Settings, JWKS bytes, JWKS path), validated."""
    from .errors import InputError
    from .files import read_input, read_values, relative_to_file
    from .settings import build_settings, merge_layers, normalize_values

    apply_set_values(click.get_current_context(), params, params.pop("set", ()))
    values_files = list(params.pop("values_file", ()) or ())
    if values_files.count("-") + (params.get("jwks") == "-") > 1:
        raise InputError(
            "'-' (stdin) is given for more than one input (-f/--values, --jwks); stdin can feed "
            "only one. Put the others in files."
        )
    file_values: dict[str, Any] = {}
    jwks_from: str | None = None
    for values_file in values_files:
        layer = normalize_values(read_values(values_file), f"values file {values_file!r}")
        for key in ("label", "annotation"):
            if isinstance(file_values.get(key), dict) and isinstance(layer.get(key), dict):
                layer[key] = {**file_values[key], **layer[key]}
        if "jwks" in layer:
            jwks_from = values_file
        file_values.update(layer)
    flags = {key.replace("_", "-"): value for key, value in params.items()}
    merged = merge_layers(file_values, flags)
    namespace = None if merged.get("namespace") else _default_namespace(kubeconfig, context)
    settings = build_settings(merged, namespace or "default")
    jwks_path = str(merged.get("jwks") or "jwks.json")
    if jwks_from and not params.get("jwks"):
        jwks_path = relative_to_file(jwks_path, jwks_from)
    return settings, read_input(jwks_path, "JWKS file"), jwks_path


def _default_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace when none is given; one line on stderr when a kubeconfig chose it, so
    a CI job's output never silently depends on a file nobody sees."""
    from .files import default_namespace, kubeconfig_namespace

    namespace = default_namespace(kubeconfig, context)
    if not os.environ.get("JWKSDEPLOY_NAMESPACE") and kubeconfig_namespace(kubeconfig, context):
        which = f"context {context!r}" if context else "the current context"
        click.echo(
            f"note: namespace {namespace!r} comes from the kubeconfig's {which}; pass -n to "
            "make the output independent of it.",
            err=True,
        )
    return namespace


@cli.command()
@render_options
@vocab_option(
    "output",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Format on stdout.",
)
@vocab_option(
    "output-dir",
    metavar="DIR",
    help="Write one file per object and a kustomization.yaml per namespace under "
    "DIR/<namespace>/, atomically, instead of printing. Only files jwksdeploy wrote there "
    "(listed in DIR/.jwksdeploy-manifest.json) are replaced or removed.",
)
@vocab_option(
    "force",
    is_flag=True,
    help="With --output-dir: also overwrite files jwksdeploy did not write, or edited since.",
)
def render(**params: Any) -> None:
    """Print the ConfigMap, Service and Deployment (and a PodDisruptionBudget with 2+ replicas)
    that serve a JWKS in one or more namespaces."""
    from .render import output_files, render_objects, to_json_list, to_yaml_stream

    apply_set_values(click.get_current_context(), params, params.pop("set", ()))
    output: str = params.pop("output")
    output_dir: str | None = params.pop("output_dir")
    force: bool = params.pop("force")
    settings, jwks_bytes, jwks_path = load_render_inputs(params)
    rendered = render_objects(settings, jwks_bytes, f"JWKS file {jwks_path!r}")
    print_findings(rendered.warnings)
    if output_dir:
        from .writes import write_tree

        files = output_files(rendered.objects)
        written = write_tree(output_dir, files, "render", force)
        for note in written.notes(output_dir):
            click.echo(f"note: {note}", err=True)
        click.echo(f"wrote {len(files)} files under {output_dir}", err=True)
    elif output == "json":
        click.echo(to_json_list(rendered.objects), nl=False)
    else:
        click.echo(to_yaml_stream(rendered.objects), nl=False)


FORCE_CONFLICTS = click.option(
    "--force-conflicts", is_flag=True, help="Take over fields another field manager owns."
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


def cluster_options(command: F) -> F:
    """How to reach the cluster, shared by apply, url, status and delete."""
    options = [
        vocab_option(
            "kubeconfig",
            metavar="PATH",
            help="Kubeconfig file.  [default: $KUBECONFIG (merged), ~/.kube/config, "
            "else in-cluster]",
        ),
        vocab_option("context", metavar="NAME", help="Kubeconfig context to use."),
        vocab_option(
            "request-timeout",
            default="30s",
            show_default=True,
            metavar="DURATION",
            help="Timeout of each API request.",
        ),
    ]
    return stack_options(command, options)


def _connect(kubeconfig: str | None, context: str | None, request_timeout: str) -> Any:
    from .cli_common import connect_cluster
    from .settings import parse_duration

    seconds = parse_duration(request_timeout, "--request-timeout")
    return connect_cluster(kubeconfig, context, seconds)


@cli.command()
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
@vocab_option(
    "output",
    type=click.Choice(["text", "json", "yaml", "name"]),
    default="text",
    show_default=True,
    help="text: the URL on stdout, details on stderr; json/yaml: one object for scripts; "
    "name: kind/name of each object.",
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
    from .apply import ApplyOptions
    from .cli_apply import result_fields, run_apply
    from .cli_gateway import POLICY_PARAMS
    from .render import render_objects
    from .settings import check_address, parse_duration

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
        _check_gateway(provider, provider_name or settings.name, settings.namespaces, policy)
    rendered = render_objects(settings, jwks_bytes, f"JWKS file {jwks_path!r}")
    print_findings(rendered.warnings)
    if mode == "client":
        _print_client_dry_run(rendered.objects, output)
        return
    dry_run = mode == "server"
    cluster = _connect(kubeconfig, context, request_timeout)
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
        click.echo(f"warning: the API server says: {warning}", err=True)
    gateways = _gateways_for(reports, provider, provider_name or settings.name, policy)
    if output in ("json", "yaml"):
        results = [{**_report_json(r), **result_fields(r)} for r in reports]
        for result, config in zip(results, gateways, strict=True):
            result["gateway"] = config.objects if config is not None else None
        print_data(results if len(results) > 1 else results[0], output)
    elif output == "name":
        for report in reports:
            for obj in report.objects:
                click.echo(f"{obj.kind.lower()}/{obj.name}")
    else:
        for report, config in zip(reports, gateways, strict=True):
            if report.error is not None:
                continue
            if config is None:
                _print_endpoint(report.endpoint, report.namespace, dry_run)
                continue
            click.echo(f"{report.namespace}: JWKS URL {config.url}", err=True)
            for warning in config.warnings:
                click.echo(f"warning: {warning}", err=True)
            print_gateway(config, str(provider), "yaml", None)
    if provider is not None and record:
        from .cli_gateway import record_cache_window

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

        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
    else:
        click.echo(json.dumps(data, indent=2))


def _print_client_dry_run(objects: list[dict[str, Any]], output: str) -> None:
    """--dry-run=client: what would be sent, validated locally; the cluster is not contacted."""
    from .render import to_json_list, to_yaml_stream

    if output == "yaml":
        click.echo(to_yaml_stream(objects), nl=False)
    elif output == "json":
        click.echo(to_json_list(objects), nl=False)
    else:
        for obj in objects:
            line = f"{obj['kind'].lower()}/{obj['metadata']['name']}"
            if output == "name":
                click.echo(line)
            else:
                namespace = obj["metadata"].get("namespace")
                click.echo(f"{line} in {namespace} (dry run: client, not sent)", err=True)


def _print_plan(plan: Any, dry_run: bool) -> None:
    """One line per namespace on what is adopted and from whom, or what --recreate breaks."""
    from .adopt import selector_text

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
        click.echo(f"{plan.namespace}: {would}adopt {names}{source}{kept}", err=True)
    elif plan.kept_selector:
        click.echo(
            f"{plan.namespace}: keeping the Deployment's selector "
            f"{selector_text(plan.kept_selector)} (immutable; --recreate switches it)",
            err=True,
        )
    if plan.recreating:
        old = plan.old_selector.get("matchLabels") or plan.old_selector
        click.echo(
            f"{plan.namespace}: --recreate {would}delete and recreate the Deployment to change its "
            f"selector from {selector_text(old) if isinstance(old, dict) else old}: the JWKS "
            "endpoint will be down from the deletion until the new pod is ready (image pull "
            "and readiness probe, usually 5-30s; --wait reports the real time).",
            err=True,
        )


def _check_gateway(
    provider: str, name: str, namespaces: tuple[str, ...], policy: dict[str, Any]
) -> None:
    """Refuse bad gateway flags before anything is applied: build each namespace's configuration
    with a stand-in for the URL, which is known only once the Service exists (apply's URLs are
    http, so the scheme-dependent checks see what they will see then)."""
    from .cli_gateway import PLACEHOLDER_URL, build_gateway

    for namespace in namespaces:
        suffix = f"-{namespace}" if len(namespaces) > 1 else ""
        build_gateway(provider, f"{name}{suffix}", PLACEHOLDER_URL, policy)


def _gateways_for(
    reports: list[Any], gateway: str | None, name: str, policy: dict[str, Any]
) -> list[Any]:
    """One gateway configuration per applied namespace (None where the URL is not known)."""
    from .cli_gateway import build_gateway

    configs: list[Any] = []
    for report in reports:
        url = report.endpoint.url if report.endpoint is not None else None
        if gateway is None:
            configs.append(None)
        elif url is None:
            click.echo(
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
        click.echo(f"{namespace}: the URL is known once the Service exists (dry run).", err=True)
    elif endpoint.url is None:
        click.echo(f"{namespace}: nodePort {endpoint.node_port}: {endpoint.source}", err=True)
    else:
        click.echo(f"{namespace}: JWKS URL via {endpoint.source}", err=True)
        click.echo(endpoint.url)


def _instance_names(name: str) -> dict[str, str]:
    from .settings import DEFAULT_NAME, Settings, check_object_name

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
    from .files import default_namespace
    from .settings import check_dns1123_label

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


@cli.command()
@instance_options
@vocab_option("address", metavar="HOST", help="Address to use instead of a node's.")
@vocab_option(
    "output",
    type=click.Choice(["text", "json", "yaml", "name"]),
    default="text",
    show_default=True,
    help="text: the URL; json/yaml: the URL and how it was found; name: the Service.",
)
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
    from .cluster import deployed_endpoint

    names = _instance_names(name)
    namespaces = _namespaces(namespace, kubeconfig, context)
    cluster = _connect(kubeconfig, context, request_timeout)
    results = []
    for ns in namespaces:
        endpoint = deployed_endpoint(cluster, ns, names["Service"], address)
        if output == "text":
            _print_endpoint(endpoint, ns, False)
        elif output == "name":
            click.echo(f"service/{names['Service']}")
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


@cli.command()
@instance_options
@vocab_option("jwks", metavar="PATH", help="Local JWKS to compare with the live ConfigMap.")
@vocab_option(
    "output",
    type=click.Choice(["text", "json", "yaml", "name"]),
    default="text",
    show_default=True,
)
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
    from .cluster import endpoint_for, managed_objects, rollout_state
    from .errors import ClusterRejected, Differences
    from .files import read_input
    from .render import JWKS_KEY, jwks_checksum

    names = _instance_names(name)
    local = read_input(jwks, "JWKS file").decode("utf-8", "replace") if jwks else None
    cluster = _connect(kubeconfig, context, request_timeout)
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
                click.echo(obj)
    for result in results if output == "text" else []:
        click.echo(f"namespace: {result['namespace']}")
        click.echo(f"  objects: {', '.join(result['objects'])}")
        click.echo(
            f"  ready:   {result['ready']} ({'rolled out' if result['rolledOut'] else 'rolling'})"
        )
        click.echo(f"  url:     {result['url']}")
        if result["matchesLocalJwks"] is not None:
            verdict = "matches" if result["matchesLocalJwks"] else "DIFFERS from"
            click.echo(f"  jwks:    live ConfigMap {verdict} {jwks}")
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


@cli.command()
@instance_options
@dry_run_option(
    "server (bare --dry-run): the API server's dry run of each delete; client: only list "
    "what would be deleted."
)
@vocab_option("wait", default=False, help="Wait until the objects are gone (a watch).")
@vocab_option("timeout", default="2m", show_default=True, metavar="DURATION")
@PARALLEL
@vocab_option(
    "output",
    type=click.Choice(["text", "json", "yaml", "name"]),
    default="text",
    show_default=True,
)
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
    from .apply import delete as delete_instances
    from .apply import delete_error
    from .cluster import managed_objects
    from .settings import parse_duration

    seconds = parse_duration(timeout, "--timeout")
    names = _instance_names(name)
    cluster = _connect(kubeconfig, context, request_timeout)
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
                click.echo(f"{ns}: {kind.lower()}/{object_name} {outcome}")
            elif output == "name" and outcome != "not found":
                click.echo(f"{kind.lower()}/{object_name}")
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
    from .cluster import plan_apply
    from .diff import compare
    from .prune import instance_selector, prunable_kinds, prune_candidates

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
    from .cluster import preflight
    from .errors import ClusterRejected

    try:
        return preflight(cluster, [plan], create_namespace=False, force=force)
    except ClusterRejected:
        if cluster.get("Namespace", None, plan.namespace) is not None:
            raise
        return preflight(cluster, [plan], create_namespace=True, force=force)


@cli.command("diff")
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
    from .diff import summary
    from .errors import Differences
    from .render import render_objects

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
    cluster = _connect(kubeconfig, context, request_timeout)
    cluster.field_manager = field_manager
    diffs = _diffs(cluster, rendered.objects, settings.name, recreate, force)
    for warning in cluster.warnings:
        click.echo(f"warning: the API server says: {warning}", err=True)
    if output == "json":
        import json

        click.echo(json.dumps([d.as_dict() for d in diffs], indent=2))
    else:
        for verdict in diffs:
            if verdict.changes:
                click.echo(verdict.diff, nl=False)
    if any(d.changes for d in diffs):
        raise Differences(summary(diffs))
    click.echo(summary(diffs), err=True)


def main() -> None:
    # Text from argv that is not UTF-8 (or anything else unencodable) is shown escaped
    # instead of ending the run with a UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    cli(prog_name="jwksdeploy")


if __name__ == "__main__":  # pragma: no cover
    main()
