"""The command line: parse flags, build settings, call one function, print. Nothing else.

Errors from the core arrive as JwksDeployError and become a message and an exit code in
exactly one place, `_Cli.invoke`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .cli_common import F, stack_options
from .cli_gateway import PROVIDERS, policy_options, print_gateway
from .errors import JwksDeployError, printable

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


class _Cli(click.Group):
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
            ctx.exit(1)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jwksdeploy")
def cli() -> None:
    """Render, deploy and check a JWKS server for Envoy-based API gateways.

    Typical flow: `jwksdeploy jwks generate`, `jwksdeploy apply` (or `render` for
    GitOps), `jwksdeploy gateway`, then `jwksdeploy token` and `jwksdeploy verify`.
    Locally, without a cluster: `jwksdeploy serve`.
    """


def print_findings(findings: list[Any]) -> None:
    for finding in findings:
        click.echo(str(finding), err=True)


def render_options(command: F) -> F:
    """The flags shared by render and apply; every one may also come from --values."""
    options = [
        click.option(
            "--values",
            "values_file",
            metavar="FILE",
            help="YAML file with any of these flags by long name; flags override it.",
        ),
        click.option(
            "--jwks",
            metavar="PATH",
            help="JWKS file to publish ('-' reads stdin).  [default: ./jwks.json]",
        ),
        click.option(
            "--namespace",
            "-n",
            multiple=True,
            metavar="NS",
            help="Target namespace, repeatable.  [default: $JWKSDEPLOY_NAMESPACE, "
            "else the kubeconfig context's namespace, else default]",
        ),
        click.option(
            "--name",
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
        click.option("--port", type=int, metavar="PORT", help="Service port.  [default: 8080]"),
        click.option(
            "--container-port",
            type=int,
            metavar="PORT",
            help="Port the server listens on in the container.  [default: 8080]",
        ),
        click.option(
            "--node-port",
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
        click.option(
            "--strict/--no-strict",
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
    """Values file + flags -> (Settings, JWKS bytes, JWKS path), validated."""
    from .files import default_namespace, read_input, read_values, relative_to_file
    from .settings import build_settings, merge_layers, normalize_values

    file_values: dict[str, Any] = {}
    values_file = params.pop("values_file", None)
    if values_file:
        file_values = normalize_values(read_values(values_file), f"values file {values_file!r}")
    flags = {key.replace("_", "-"): value for key, value in params.items()}
    merged = merge_layers(file_values, flags)
    namespace = None if merged.get("namespace") else default_namespace(kubeconfig, context)
    settings = build_settings(merged, namespace or "default")
    jwks_path = str(merged.get("jwks") or "jwks.json")
    if values_file and not params.get("jwks") and "jwks" in file_values:
        jwks_path = relative_to_file(jwks_path, values_file)
    return settings, read_input(jwks_path, "JWKS file"), jwks_path


@cli.command()
@render_options
@click.option(
    "--output",
    "-o",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Format on stdout.",
)
@click.option(
    "--output-dir",
    metavar="DIR",
    help="Write one file per object and a kustomization.yaml per namespace under "
    "DIR/<namespace>/, atomically, instead of printing. Only files jwksdeploy wrote there "
    "(listed in DIR/.jwksdeploy-manifest.json) are replaced or removed.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With --output-dir: also overwrite files jwksdeploy did not write, or edited since.",
)
def render(output: str, output_dir: str | None, force: bool, **params: Any) -> None:
    """Print the ConfigMap, Service and Deployment (and a PodDisruptionBudget with 2+ replicas)
    that serve a JWKS in one or more namespaces."""
    from .render import output_files, render_objects, to_json_list, to_yaml_stream
    from .writes import write_tree

    settings, jwks_bytes, jwks_path = load_render_inputs(params)
    rendered = render_objects(settings, jwks_bytes, f"JWKS file {jwks_path!r}")
    print_findings(rendered.warnings)
    if output_dir:
        files = output_files(rendered.objects)
        written = write_tree(output_dir, files, "render", force)
        for note in written.notes(output_dir):
            click.echo(f"note: {note}", err=True)
        click.echo(f"wrote {len(files)} files under {output_dir}", err=True)
    elif output == "json":
        click.echo(to_json_list(rendered.objects), nl=False)
    else:
        click.echo(to_yaml_stream(rendered.objects), nl=False)


def cluster_options(command: F) -> F:
    """How to reach the cluster, shared by apply, url, status and delete."""
    options = [
        click.option(
            "--kubeconfig",
            metavar="PATH",
            help="Kubeconfig file.  [default: $KUBECONFIG (merged), ~/.kube/config, "
            "else in-cluster]",
        ),
        click.option("--context", metavar="NAME", help="Kubeconfig context to use."),
        click.option(
            "--request-timeout",
            default="30s",
            show_default=True,
            metavar="DURATION",
            help="Timeout of each API request.",
        ),
    ]
    return stack_options(command, options)


def _connect(kubeconfig: str | None, context: str | None, request_timeout: str) -> Any:
    from .cluster import connect
    from .settings import parse_duration

    cluster = connect(kubeconfig, context, parse_duration(request_timeout, "--request-timeout"))
    if cluster.insecure:
        click.echo(
            f"warning: the kubeconfig sets insecure-skip-tls-verify for {cluster.server}: its "
            "certificate is not checked, so anyone on the network path can pose as the API "
            "server and read the credentials sent to it. Set certificate-authority instead.",
            err=True,
        )
    return cluster


def _progress(verbose_tty: bool) -> Callable[[Any, float], None]:
    """Live 'ready/total, elapsed' on a TTY; a plain final line otherwise."""

    def show(state: Any, elapsed: float) -> None:
        if verbose_tty:
            end = "\n" if state.done else ""
            click.echo(
                f"\r  rollout: {state.message} ({elapsed:.0f}s)\033[K{end}", err=True, nl=False
            )
        elif state.done:
            click.echo(f"  rollout: {state.message} after {elapsed:.0f}s", err=True)

    return show


@cli.command()
@render_options
@cluster_options
@click.option("--create-namespace", is_flag=True, help="Create the namespace if it is missing.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Server-side dry run (dryRun=All): validated by the server, nothing stored.",
)
@click.option(
    "--force-conflicts", is_flag=True, help="Take over fields another field manager owns."
)
@click.option(
    "--recreate",
    is_flag=True,
    help="When the live Deployment selects pods differently (e.g. the source's app label), "
    "delete and recreate it with jwksdeploy's selector; the endpoint is down until the new "
    "pod is ready. Without it the live selector is kept.",
)
@click.option(
    "--address",
    metavar="HOST",
    help="Address for the URL (e.g. the gateway's); else a node's ExternalIP, else its InternalIP.",
)
@click.option(
    "--wait/--no-wait",
    default=None,
    help="Wait for the rollout like `kubectl rollout status`.  [default: wait when "
    "stdout is a terminal]",
)
@click.option(
    "--timeout", default="2m", show_default=True, metavar="DURATION", help="How long --wait waits."
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: the URL on stdout, details on stderr; json: one object for scripts.",
)
@click.option(
    "--gateway",
    type=click.Choice(PROVIDERS),
    help="Then print this gateway's JWT provider for the URL (on stdout; the URL goes to "
    "stderr). Takes the `jwksdeploy gateway` flags below.",
)
@click.option("--provider-name", metavar="NAME", help="With --gateway.  [default: the --name]")
@policy_options("--fetch-timeout")
def apply(
    kubeconfig: str | None,
    context: str | None,
    request_timeout: str,
    create_namespace: bool,
    dry_run: bool,
    force_conflicts: bool,
    recreate: bool,
    address: str | None,
    wait: bool | None,
    timeout: str,
    output: str,
    gateway: str | None,
    provider_name: str | None,
    **params: Any,
) -> None:
    """Apply the rendered objects with server-side apply and print the JWKS URL.

    Objects of the same names made by hand (e.g. the source document's YAML with `kubectl
    apply`) are taken over without an outage: the live Deployment's selector is kept."""
    import json
    import time

    from .cli_gateway import POLICY_PARAMS
    from .cluster import apply_objects, endpoint_for, partial_failure, wait_for_rollout
    from .errors import JwksDeployError
    from .render import render_objects
    from .settings import parse_duration

    wait_seconds = parse_duration(timeout, "--timeout")
    policy = {key: params.pop(key) for key in POLICY_PARAMS}
    settings, jwks_bytes, jwks_path = load_render_inputs(params, kubeconfig, context)
    rendered = render_objects(settings, jwks_bytes, f"JWKS file {jwks_path!r}")
    print_findings(rendered.warnings)
    cluster = _connect(kubeconfig, context, request_timeout)
    landed: list[Any] = []

    def on_applied(obj: Any) -> None:
        landed.append(obj)
        if output == "text":
            suffix = " (dry run)" if dry_run else ""
            click.echo(f"{obj.kind.lower()}/{obj.name} {obj.outcome}{suffix}", err=True)

    try:
        reports = apply_objects(
            cluster,
            rendered.objects,
            create_namespace=create_namespace,
            dry_run=dry_run,
            force=force_conflicts,
            on_applied=on_applied,
            instance=settings.name,
            recreate=recreate,
            on_plan=lambda plan: _print_plan(plan, dry_run),
            gone_timeout=wait_seconds,
        )
    except JwksDeployError as exc:
        raise partial_failure(exc, landed) from None
    if wait is None:
        wait = sys.stdout.isatty() and not dry_run
    for report in reports:
        if wait and not dry_run:
            wait_for_rollout(
                cluster,
                report.namespace,
                settings.name,
                wait_seconds,
                _progress(sys.stderr.isatty()),
            )
        if report.down_since is not None:
            if wait:
                down = time.monotonic() - report.down_since
                click.echo(
                    f"{report.namespace}: the endpoint was down for about {down:.0f}s "
                    "(--recreate: from the deletion to the new pods being ready).",
                    err=True,
                )
            else:
                click.echo(
                    f"{report.namespace}: the endpoint is down until the new pods are ready "
                    f"(--recreate); `jwksdeploy status -n {report.namespace}` shows when.",
                    err=True,
                )
        if report.service is not None:
            report.endpoint = endpoint_for(cluster, report.service, address)
    for warning in cluster.warnings:
        click.echo(f"warning: the API server says: {warning}", err=True)
    gateways = _gateways_for(reports, gateway, provider_name or settings.name, policy)
    if output == "json":
        results = [_report_json(r) for r in reports]
        for result, config in zip(results, gateways, strict=True):
            result["gateway"] = config.objects if config is not None else None
        click.echo(json.dumps(results if len(results) > 1 else results[0], indent=2))
        return
    for report, config in zip(reports, gateways, strict=True):
        if config is None:
            _print_endpoint(report.endpoint, report.namespace, dry_run)
            continue
        click.echo(f"{report.namespace}: JWKS URL {config.url}", err=True)
        for warning in config.warnings:
            click.echo(f"warning: {warning}", err=True)
        print_gateway(config, str(gateway), "yaml", None)


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


@cli.command()
@click.option("--namespace", "-n", multiple=True, metavar="NS", help="Namespace, repeatable.")
@click.option("--name", default="remote-jwks-go", show_default=True)
@click.option("--address", metavar="HOST", help="Address to use instead of a node's.")
@cluster_options
def url(
    namespace: tuple[str, ...],
    name: str,
    address: str | None,
    kubeconfig: str | None,
    context: str | None,
    request_timeout: str,
) -> None:
    """Print the JWKS URL of what apply deployed."""
    from .cluster import deployed_endpoint

    names = _instance_names(name)
    namespaces = _namespaces(namespace, kubeconfig, context)
    cluster = _connect(kubeconfig, context, request_timeout)
    for ns in namespaces:
        _print_endpoint(deployed_endpoint(cluster, ns, names["Service"], address), ns, False)


@cli.command()
@click.option("--namespace", "-n", multiple=True, metavar="NS", help="Namespace, repeatable.")
@click.option("--name", default="remote-jwks-go", show_default=True)
@click.option("--jwks", metavar="PATH", help="Local JWKS to compare with the live ConfigMap.")
@click.option(
    "--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True
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
    """Show the deployed objects, ready replicas, the URL and whether the live JWKS matches."""
    import json

    from .cluster import endpoint_for, managed_objects, rollout_state
    from .errors import ClusterRejected
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
    if output == "json":
        click.echo(json.dumps(results if len(results) > 1 else results[0], indent=2))
        return
    for result in results:
        click.echo(f"namespace: {result['namespace']}")
        click.echo(f"  objects: {', '.join(result['objects'])}")
        click.echo(
            f"  ready:   {result['ready']} ({'rolled out' if result['rolledOut'] else 'rolling'})"
        )
        click.echo(f"  url:     {result['url']}")
        if result["matchesLocalJwks"] is not None:
            verdict = "matches" if result["matchesLocalJwks"] else "DIFFERS from"
            click.echo(f"  jwks:    live ConfigMap {verdict} {jwks}")


@cli.command()
@click.option("--namespace", "-n", multiple=True, metavar="NS", help="Namespace, repeatable.")
@click.option("--name", default="remote-jwks-go", show_default=True)
@click.option("--wait/--no-wait", default=False, help="Wait until the objects are gone.")
@click.option("--timeout", default="2m", show_default=True, metavar="DURATION")
@cluster_options
def delete(
    namespace: tuple[str, ...],
    name: str,
    wait: bool,
    timeout: str,
    kubeconfig: str | None,
    context: str | None,
    request_timeout: str,
) -> None:
    """Delete the objects jwksdeploy manages (matched by name and managed-by label)."""
    from .cluster import delete_objects
    from .settings import parse_duration

    seconds = parse_duration(timeout, "--timeout")
    names = _instance_names(name)
    cluster = _connect(kubeconfig, context, request_timeout)
    for ns in _namespaces(namespace, kubeconfig, context):
        for kind, object_name, outcome in delete_objects(cluster, ns, names, wait, seconds):
            click.echo(f"{ns}: {kind.lower()}/{object_name} {outcome}")


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
