"""`jwksdeploy render`, and the flags and input loading it shares with apply, diff and rotate."""

from __future__ import annotations

import os
from typing import Any

import click

from .common import F, apply_set_values, echo, examples, stack_options, vocab_option


class ShortOptionsCommand(click.Command):
    """A command whose parser tries `-n` as a short option without a detour: click first
    tries it as a long option, and the NoSuchOption it builds and drops costs a gettext
    lookup and a difflib did-you-mean each time: a third of a 1,000-namespace render."""

    def make_parser(self, ctx: click.Context) -> Any:
        parser = super().make_parser(ctx)
        match_long = getattr(parser, "_match_long_opt", None)
        long_opts = getattr(parser, "_long_opt", None)
        prefixes = getattr(parser, "_opt_prefixes", None)
        if match_long is None or long_opts is None or prefixes is None:
            return parser  # another click: keep its own parser as it is

        def match_long_or_fall_through(opt: str, explicit_value: Any, state: Any) -> None:
            if opt not in long_opts and opt[:2] not in prefixes:
                # Caught by click, which then matches the short option: never shown.
                raise click.NoSuchOption(opt, message=opt, ctx=ctx)
            match_long(opt, explicit_value, state)

        parser._match_long_opt = match_long_or_fall_through  # type: ignore[method-assign]
        return parser


def print_findings(findings: list[Any]) -> None:
    for finding in findings:
        echo(str(finding), err=True)


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
    from ..errors import InputError
    from ..files import read_input, read_values, relative_to_file
    from ..settings import build_settings, merge_layers, normalize_values

    if "set" in params:  # the command did not apply --set itself (rotate)
        apply_set_values(click.get_current_context(), params, params.pop("set"))
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
    from ..kubeconfig import default_namespace, namespace_of

    namespace = default_namespace(kubeconfig, context)
    if not os.environ.get("JWKSDEPLOY_NAMESPACE") and namespace_of(kubeconfig, context):
        which = f"context {context!r}" if context else "current context"
        echo(
            f"note: namespace {namespace!r} comes from the kubeconfig's {which}; pass -n to "
            "make the output independent of it.",
            err=True,
        )
    return namespace


RENDER_EXAMPLES = examples(
    "# the manifests for namespace envoy-yang, from jwks.json",
    "jwksdeploy render -n envoy-yang --jwks jwks.json",
    "# from a values file, one value overridden, Helm's way",
    "jwksdeploy render -f values.yaml --set replicas=2,port=9000",
    "# one file per object under a folder, for GitOps",
    "jwksdeploy render -n envoy-yang --jwks jwks.json --output-dir deploy --strict",
)


@click.command("render", cls=ShortOptionsCommand, epilog=RENDER_EXAMPLES)
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
def render_command(**params: Any) -> None:
    """Print the ConfigMap, Service and Deployment (and a PodDisruptionBudget with 2+ replicas)
    that serve a JWKS in one or more namespaces."""
    from ..render import output_files, render_objects, to_json_list, to_yaml_stream

    apply_set_values(click.get_current_context(), params, params.pop("set", ()))
    output: str = params.pop("output")
    output_dir: str | None = params.pop("output_dir")
    force: bool = params.pop("force")
    settings, jwks_bytes, jwks_path = load_render_inputs(params)
    rendered = render_objects(settings, jwks_bytes, f"JWKS file {jwks_path!r}")
    print_findings(rendered.warnings)
    if output_dir:
        from ..writes import write_tree

        files = output_files(rendered.objects)
        written = write_tree(output_dir, files, "render", force)
        for note in written.notes(output_dir):
            echo(f"note: {note}", err=True)
        echo(f"wrote {len(files)} files under {output_dir}", err=True)
    elif output == "json":
        echo(to_json_list(rendered.objects), nl=False, data="json")
    else:
        echo(to_yaml_stream(rendered.objects), nl=False, data="yaml")
