"""The flags and the printing of `verify --through URL` (the logic is jwksdeploy.enforce)."""

from __future__ import annotations

from typing import Any

import click

from .common import DEFAULT_PRIVATE, F, echo, stack_options, vocab_option


def through_options(command: F) -> F:
    options = [
        click.option(
            "--through",
            metavar="URL",
            help="A gateway route protected by the JWT policy: send it no token, a valid one "
            "and bad ones (another key, expired, wrong --audience/--issuer) and check it lets "
            "only the valid one pass. Signs with --private.",
        ),
        vocab_option(
            "private",
            "through_private",
            metavar="PATH",
            default=DEFAULT_PRIVATE,
            show_default=True,
            help="With --through: the private key set whose public half the gateway trusts.",
        ),
    ]
    return stack_options(command, options)


def check_through(
    url: str,
    private_path: str,
    issuer: str | None,
    audiences: tuple[str, ...],
    timeout: float,
    trust: Any,
    output: str,
    others: list[str],
) -> None:
    """Run the enforcement check, print expected vs got per case; VerificationFailed (exit
    11) naming every failing case unless all are right."""
    import time

    from ..enforce import ThroughOptions, failure_message, run
    from ..errors import VerificationFailed
    from ..files import read_input
    from ..keys import parse_key_file
    from ..strictjson import dumps

    refuse_mixed(others)
    source = f"key file {private_path!r}"
    private = parse_key_file(read_input(private_path, "key file"), source)
    options = ThroughOptions(
        url, private, source, issuer, audiences, timeout, trust, now=time.time()
    )
    result = run(options)
    if output == "json":
        document = {"url": url, "cases": [o.as_json() for o in result.outcomes]}
        echo(dumps(document, indent=2), data="json")
    else:
        for outcome in result.outcomes:
            verdict = "ok:" if outcome.verdict == "ok" else f"{outcome.verdict}:"
            echo(f"{verdict} {outcome.case}: expected {outcome.expected}, got {outcome.got}")
    if result.failing:
        raise VerificationFailed(failure_message(result))


def refuse_mixed(given: list[str]) -> None:
    """--through mints and sends its own tokens; the flags of the other checks do not apply."""
    if given:
        from ..errors import InputError

        raise InputError(
            f"--through checks the gateway with tokens it mints itself, so {', '.join(given)} "
            "does not apply. Run `jwksdeploy verify --through URL --private jwks.private.json` "
            "alone, and the JWKS server check separately."
        )
