"""Pieces the command modules share: option stacks and the --url/--namespace lookup."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def stack_options(command: F, options: Sequence[Callable[[F], F]]) -> F:
    """Apply Click options so they appear in --help in the order listed."""
    for option in reversed(options):
        command = option(command)
    return command


def url_lookup_options(name_flag: str) -> Callable[[F], F]:
    """`--url URL`, or `--namespace NS` with what it takes to find that deployment's URL."""

    def decorate(command: F) -> F:
        options = [
            click.option("--url", metavar="URL", help="The JWKS URL `apply` printed (http(s))."),
            click.option(
                "--namespace",
                "-n",
                metavar="NS",
                help="Instead of --url: the URL of what apply deployed in NS (reads the cluster).",
            ),
            click.option(
                name_flag,
                "instance",
                default="remote-jwks-go",
                show_default=True,
                metavar="NAME",
                help="With --namespace: the --name apply used.",
            ),
            click.option("--address", metavar="HOST", help="With --namespace: the URL's host."),
            click.option("--kubeconfig", metavar="PATH", help="With --namespace."),
            click.option("--context", metavar="NAME", help="With --namespace."),
        ]
        return stack_options(command, options)

    return decorate


def resolve_url(
    url: str | None,
    namespace: str | None,
    instance: str,
    address: str | None,
    kubeconfig: str | None,
    context: str | None,
    example: str,
    timeout: float = 30.0,
) -> str:
    """The URL given, or the one of the deployment in --namespace (through the cluster)."""
    from .errors import InputError

    if (url is None) == (namespace is None):
        raise InputError(
            "pass exactly one of --url (the JWKS URL) or --namespace (to look it up in the "
            f"cluster), e.g. `{example}`."
        )
    if url is not None:
        return url
    from .cluster import deployed_url

    return deployed_url(str(namespace), instance, address, kubeconfig, context, timeout)
