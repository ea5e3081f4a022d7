"""`jwksdeploy version` and `jwksdeploy completion`: what kubectl and Helm users reach for first."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import click

from .common import echo, vocab_option

# A version check must not hang on a cluster that is down: a short bound, never an error.
SERVER_VERSION_TIMEOUT = 3.0


def _client_version() -> str | None:
    try:
        return metadata.version("kubernetes")
    except metadata.PackageNotFoundError:
        return None


@click.command("version")
@click.option("--client", is_flag=True, help="Only this machine's versions; no cluster call.")
@vocab_option("kubeconfig", metavar="PATH", help="Kubeconfig file for the server version.")
@vocab_option("context", metavar="NAME", help="Kubeconfig context for the server version.")
@vocab_option("output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def version_command(client: bool, kubeconfig: str | None, context: str | None, output: str) -> None:
    """Print the versions of jwksdeploy, Python, the Kubernetes client and (when reachable,
    within 3s) the API server. An unreachable cluster is reported, never an error."""
    from .. import __version__
    from ..inspect import server_version as ask_server
    from ..strictjson import dumps

    server, problem = (
        (None, None) if client else ask_server(kubeconfig, context, SERVER_VERSION_TIMEOUT)
    )
    server_version = server.get("gitVersion") if isinstance(server, dict) else None
    if output == "json":
        document: dict[str, Any] = {
            "jwksdeploy": __version__,
            "python": platform.python_version(),
            "kubernetesClient": _client_version(),
        }
        if not client:
            document["server"] = server if isinstance(server, dict) else None
        echo(dumps(document, indent=2), data="json")
        return
    echo(f"jwksdeploy: {__version__}")
    echo(f"Python: {platform.python_version()}")
    echo(f"Kubernetes client: {_client_version() or 'not installed'}")
    if client:
        return
    if server_version is not None:
        echo(f"Server: {server_version}")
    else:
        echo(f"Server: not reachable ({problem or 'no version in its answer'})")


SHELLS = ("bash", "zsh", "fish")


@click.command(
    "completion",
    epilog="""\b
Examples:
  jwksdeploy completion bash > ~/.local/share/bash-completion/completions/jwksdeploy
  jwksdeploy completion zsh > "${fpath[1]}/_jwksdeploy"
  jwksdeploy completion fish > ~/.config/fish/completions/jwksdeploy.fish
  source <(jwksdeploy completion bash)      # this shell only""",
)
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion_command(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish (click's completion)."""
    from click.shell_completion import get_completion_class

    root = ctx.find_root()
    completion_class = get_completion_class(shell)
    assert completion_class is not None  # SHELLS are click's own
    prog = root.info_name or "jwksdeploy"
    script = completion_class(root.command, {}, prog, "_JWKSDEPLOY_COMPLETE").source()
    echo(script, nl=False, data="script")
