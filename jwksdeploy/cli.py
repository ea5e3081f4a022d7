"""The command line: parse flags, build settings, call one function, print. Nothing else.

Errors from the core arrive as JwksDeployError and become a message and an exit code in
exactly one place, `_Cli.invoke`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from . import __version__
from .errors import JwksDeployError

F = TypeVar("F", bound=Callable[..., Any])


class _Cli(click.Group):
    """Maps the error tree to stderr and exit codes; everything else is Click's."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JwksDeployError as exc:
            click.echo(f"error: {exc}", err=True)
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
                f"error: unexpected {type(exc).__name__}: {exc}. This is a bug in jwksdeploy; "
                "rerun with JWKSDEPLOY_DEBUG=1 for a traceback and report it.",
                err=True,
            )
            ctx.exit(1)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jwksdeploy")
def cli() -> None:
    """Render, deploy and check a JWKS server for Envoy-based API gateways.

    Typical flow: `jwksdeploy jwks generate`, `jwksdeploy render` (or `apply`),
    `jwksdeploy token`, `jwksdeploy verify`.
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
    ]
    for option in reversed(options):
        command = option(command)
    return command


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
    "DIR/<namespace>/, atomically, instead of printing.",
)
def render(output: str, output_dir: str | None, **params: Any) -> None:
    """Print the ConfigMap, Service and Deployment (and a PodDisruptionBudget with 2+ replicas)
    that serve a JWKS in one or more namespaces."""
    from .files import write_tree
    from .render import output_files, render_objects, to_json_list, to_yaml_stream

    settings, jwks_bytes, jwks_path = load_render_inputs(params)
    rendered = render_objects(settings, jwks_bytes, f"JWKS file {jwks_path!r}")
    print_findings(rendered.warnings)
    if output_dir:
        files = output_files(rendered.objects)
        write_tree(output_dir, files)
        click.echo(f"wrote {len(files)} files under {output_dir}", err=True)
    elif output == "json":
        click.echo(to_json_list(rendered.objects), nl=False)
    else:
        click.echo(to_yaml_stream(rendered.objects), nl=False)


def main() -> None:
    cli(prog_name="jwksdeploy")


if __name__ == "__main__":  # pragma: no cover
    main()
