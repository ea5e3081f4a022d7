"""The command line: parse flags, build settings, call one function, print. Nothing else.

One module per command family (render, cluster, gateway, keys, tokens, serve, rotate), each imported
only when its commands are named. Errors from the core arrive as JwksDeployError and become a
message and an exit code in exactly one place, `_Cli.invoke`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from .. import __version__
from ..errors import INTERNAL_ERROR, Differences, JwksDeployError
from ..terminal import printable
from .common import SuggestingGroup, echo
from .render import render_command

# Commands by module, imported only when named, so `render` does not pay for building the
# cluster, key, token, gateway and rotate commands (nor their imports).
LAZY_COMMANDS = {
    "apply": ("cluster", "apply"),
    "completion": ("about", "completion_command"),
    "delete": ("cluster", "delete"),
    "diff": ("cluster", "diff_command"),
    "gateway": ("gateway", "gateway_command"),
    "jwks": ("keys", "jwks_group"),
    "rotate": ("rotate", "rotate_group"),
    "serve": ("serve", "serve_command"),
    "status": ("cluster", "status"),
    "token": ("tokens", "token_command"),
    "url": ("cluster", "url"),
    "verify": ("tokens", "verify_command"),
    "version": ("about", "version_command"),
}

# What `jwksdeploy --help` lists for them, so listing does not import every command module
# (the rotation and gateway code among them). A test holds these to the commands' own help.
LAZY_HELP = {
    "apply": "Apply the rendered objects with server-side apply and print the JWKS URL.",
    "completion": "Print the shell completion script for bash, zsh or fish (click's completion).",
    "delete": "Delete the objects jwksdeploy manages (matched by name and managed-by label).",
    "diff": "Show what `apply` would change: the API server's dry run against the live objects.",
    "gateway": "Print the gateway's JWT provider configuration, pointed at the deployed JWKS.",
    "jwks": "Generate, rotate, publish and check key sets.",
    "rotate": "Rotate signing keys without an outage: start, promote, finish (or `run` from a "
    "CronJob).",
    "serve": "Serve a JWKS like the remote-jwks-go image: /jwks, /valid, /healthz, else `success`.",
    "status": "Show the deployed objects, ready replicas, the URL and whether the live JWKS "
    "matches.",
    "token": "Sign a test JWT with a private key and print it (stdout holds the token and "
    "nothing else).",
    "url": "Print the JWKS URL of what apply deployed.",
    "version": "Print the versions of jwksdeploy, Python, the Kubernetes client and (when "
    "reachable, within 3s) the API server. An unreachable cluster is reported, never an error.",
    "verify": "Check a live JWKS server: `/` answers success, `/jwks` is a clean JWKS, "
    "optionally equal to a local file, and optionally that a token verifies against it as "
    "Envoy would.",
}


class _Cli(SuggestingGroup):
    """Maps the error tree to stderr and exit codes, and loads LAZY_COMMANDS on demand."""

    listing_help = False
    # What Helm and kubectl users type, answered with ours.
    habits = {"template": "render", "install": "apply", "upgrade": "apply", "uninstall": "delete"}  # noqa: RUF012

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.listing_help = True  # click's own layout, over stand-ins that carry LAZY_HELP
        try:
            super().format_commands(ctx, formatter)
        finally:
            self.listing_help = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if self.listing_help and cmd_name in LAZY_HELP:
            return click.Command(cmd_name, help=LAZY_HELP[cmd_name])
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
            echo(_message(exc), err=True)
            ctx.exit(exc.exit_code)
        except JwksDeployError as exc:
            echo(f"error: {_message(exc)}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            echo("error: interrupted.", err=True)
            ctx.exit(130)
        except Exception as exc:  # the last resort: say what happened, no traceback by default
            if os.environ.get("JWKSDEPLOY_DEBUG"):
                import traceback

                traceback.print_exc()
            echo(
                f"error: unexpected {type(exc).__name__}: {_message(exc)}. This is a bug "
                "in jwksdeploy; "
                "rerun with JWKSDEPLOY_DEBUG=1 for a traceback and report it.",
                err=True,
            )
            ctx.exit(INTERNAL_ERROR)


def _message(exc: BaseException) -> str:
    """An error as one terminal line, with the kubeconfig's secrets scrubbed whatever text
    (ours or a library's) carried them."""
    from ..kubeconfig import scrub

    text = exc.report() if isinstance(exc, JwksDeployError) else str(exc)
    notes = getattr(exc, "__notes__", ())  # the fix a caller added (e.g. what works offline)
    return printable(scrub(" ".join([text, *map(str, notes)])))


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
        echo(ctx.get_help())


cli.add_command(render_command)


def main() -> None:
    # Text from argv that is not UTF-8 (or anything else unencodable) is shown escaped
    # instead of ending the run with a UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    cli(prog_name="jwksdeploy")
