"""Commands for tokens: `token` (sign), `token inspect` (alias `decode`) and `verify`.

They bind flags, call the run()s of `token_commands` and `verify` and print the Result;
errors propagate to the one handler in `cli._Cli`. The core modules (and with them joserfc
and http.client) are imported inside the commands.
"""

from __future__ import annotations

import json
import sys
from typing import ClassVar

import click

from .common import (
    DEFAULT_PRIVATE,
    SuggestingGroup,
    echo,
    resolve_url,
    url_lookup_options,
    vocab_option,
)
from .examples import EPILOGS
from .through import through_options


class TokenGroup(SuggestingGroup):
    """`token` signs when named alone; `token inspect` (alias `decode`) looks inside one."""

    ALIASES: ClassVar[dict[str, str]] = {"decode": "inspect"}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.ALIASES.get(cmd_name, cmd_name))


@click.group(
    "token",
    cls=TokenGroup,
    invoke_without_command=True,
    subcommand_metavar="[inspect TOKEN]",
    epilog=EPILOGS["token"],
)
@vocab_option(
    "private",
    "key_path",
    aliases=("--key",),
    default=DEFAULT_PRIVATE,
    show_default=True,
    metavar="FILE",
    help="Private JWK or key set.",
)
@vocab_option(
    "kid",
    metavar="KID",
    help="Key to sign with.  [default: the active key of `rotate`, else the newest (last)]",
)
@click.option(
    "--allow-next",
    is_flag=True,
    help="Sign with a `next` key anyway (gateways that have not fetched it reject the token).",
)
@vocab_option("issuer", "iss", aliases=("--iss",), metavar="ISSUER", help="iss claim.")
@click.option("--sub", metavar="SUBJECT", help="sub claim.")
@vocab_option(
    "audience",
    "aud",
    aliases=("--aud",),
    multiple=True,
    metavar="AUDIENCE",
    help="aud claim, repeatable.",
)
@click.option(
    "--ttl", default="1h", show_default=True, metavar="DURATION", help="exp = now + DURATION."
)
@click.option("--nbf", metavar="TIME", help="nbf claim: now, epoch seconds, or an offset (5m).")
@click.option("--claim", multiple=True, metavar="K=V", help="Extra claim (JSON if it parses).")
@click.option(
    "--header", multiple=True, metavar="K=V", help="Extra JOSE header (JSON if it parses)."
)
@click.pass_context
def token_command(
    ctx: click.Context,
    key_path: str,
    kid: str | None,
    allow_next: bool,
    iss: str | None,
    sub: str | None,
    aud: tuple[str, ...],
    ttl: str,
    nbf: str | None,
    claim: tuple[str, ...],
    header: tuple[str, ...],
) -> None:
    """Sign a test JWT with a private key and print it (stdout holds the token and nothing else).

    With a rotation state next to the key set (see `rotate`), only the active key signs by
    default; a `next` key needs --allow-next, a retired one never signs.

    `jwksdeploy token inspect TOKEN` (or `decode`) prints what a token says, unverified."""
    import time

    if ctx.invoked_subcommand is not None:
        given = [
            str(param.opts[0])
            for param in ctx.command.params
            if param.name is not None
            and ctx.get_parameter_source(param.name) is not click.core.ParameterSource.DEFAULT
        ]
        if given:
            from ..errors import InputError

            raise InputError(
                f"`token {ctx.invoked_subcommand}` takes no signing options (got "
                f"{', '.join(given)}). Put its options "
                "after the subcommand, e.g. `jwksdeploy token inspect TOKEN --jwks jwks.json`."
            )
        return

    from ..durations import parse_duration
    from ..rotate_session import signing_kid
    from ..token_commands import SignOptions, run_sign

    options = SignOptions(
        key_path=key_path,
        kid=kid,
        issuer=iss,
        subject=sub,
        audiences=aud,
        ttl=parse_duration(ttl, "--ttl"),
        not_before=nbf,
        claims=claim,
        headers=header,
    )
    result = run_sign(
        options,
        int(time.time()),
        lambda document, asked: signing_kid(key_path, document, asked, allow_next),
    )
    if result.warning:
        echo(result.warning, err=True)
    echo(result.token)


@token_command.command("inspect")
@click.argument("token", metavar="TOKEN")
@vocab_option(
    "jwks", "local_path", metavar="FILE", help="Name the key in this set that matches the token."
)
@vocab_option("output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def token_inspect(token: str, local_path: str | None, output: str) -> None:
    """Print a token's header and claims, UNVERIFIED, with times in UTC and relative to now.
    The signature is never printed; `jwksdeploy verify --jwks FILE --token TOKEN` checks it."""
    from ..rotate_session import clock
    from ..strictjson import dumps
    from ..token_commands import InspectOptions, read_token_line, run_inspect

    if token == "-":
        token = read_token_line(sys.stdin.buffer)
    result = run_inspect(InspectOptions(token, local_path), clock())
    if output == "json":
        echo(dumps(result.as_json(), indent=2), data="json")
        return
    seen = result.inspection
    echo("header (unverified):")
    echo(dumps(seen.header, indent=2), data="json")
    echo("claims (unverified):")
    echo(dumps(seen.claims, indent=2), data="json")
    for name, time in seen.times.items():
        shown = time.get("refused") or f"{time['utc']} ({time['relative']})"
        echo(f"{name}: {shown}")
    matches = result.matches
    if matches is not None:
        named = ", ".join(
            json.dumps(m["kid"]) if m["kid"] is not None else f"#{m['index']}" for m in matches
        )
        echo(
            f"key: {named} in {local_path} matches the token's kid and alg"
            if matches
            else f"key: no key in {local_path} matches the token's kid and alg"
        )
    echo(
        "note: nothing above is verified; `jwksdeploy verify --jwks FILE --token TOKEN` checks "
        "the signature and the claims.",
        err=True,
    )


@click.command("verify", epilog=EPILOGS["verify"])
@url_lookup_options()
@vocab_option(
    "jwks",
    "local_path",
    metavar="FILE",
    help="Local JWKS the server must serve; without --url/-n, verify --token against it offline.",
)
@click.option(
    "--token", metavar="TOKEN", help="A JWT to verify against the served keys ('-': stdin)."
)
@vocab_option(
    "issuer",
    "iss",
    aliases=("--iss",),
    metavar="ISSUER",
    help="With --token: the issuer it must carry.",
)
@vocab_option(
    "audience",
    "aud",
    aliases=("--aud",),
    multiple=True,
    metavar="AUDIENCE",
    help="With --token: allowed audiences.",
)
@click.option(
    "--leeway",
    default="60s",
    show_default=True,
    metavar="DURATION",
    help="Clock skew allowed on exp/nbf (Envoy's default).",
)
@vocab_option(
    "request-timeout",
    "timeout",
    aliases=("--timeout",),
    default="5s",
    show_default=True,
    metavar="DURATION",
    help="Each request's timeout, in total however slowly the server answers.",
)
@click.option(
    "--ca-file",
    metavar="PEM",
    help="Trust only this CA for an https URL.  [default: the system trust store]",
)
@through_options
@vocab_option("output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_command(
    url: str | None,
    namespace: str | None,
    instance: str,
    address: str | None,
    kubeconfig: str | None,
    context: str | None,
    local_path: str | None,
    token: str | None,
    iss: str | None,
    aud: tuple[str, ...],
    leeway: str,
    timeout: str,
    ca_file: str | None,
    through: str | None,
    through_private: str,
    output: str,
) -> None:
    """Check a live JWKS server: `/` answers success, `/jwks` is a clean JWKS, optionally equal
    to a local file, and optionally that a token verifies against it as Envoy would. Offline,
    `--jwks FILE --token T` without --url/-n verifies the token against the file."""
    from ..durations import parse_duration
    from ..strictjson import dumps
    from ..verify import VerifyOptions, run, token_from_stdin

    seconds = parse_duration(timeout, "--request-timeout")
    skew = int(parse_duration(leeway, "--leeway"))
    if through is not None:
        from ..probe import tls_context
        from .through import check_through

        given = {"--url": url, "--namespace": namespace, "--token": token, "--jwks": local_path}
        others = [flag for flag, value in given.items() if value is not None]
        trust = tls_context(ca_file) if through.startswith("https:") or ca_file else None
        check_through(through, through_private, iss, aud, seconds, trust, output, others)
        return
    if token == "-":
        token = token_from_stdin(sys.stdin.buffer)
    options = VerifyOptions(
        url=url,
        namespace=namespace,
        local_path=local_path,
        token=token,
        issuer=iss,
        audiences=aud,
        leeway=skew,
        request_timeout=seconds,
        ca_file=ca_file,
    )
    example = "jwksdeploy verify --url http://192.0.2.10:31234/jwks"
    result = run(
        options,
        lambda: resolve_url(
            url, namespace, instance, address, kubeconfig, context, example, seconds
        ),
    )
    failure = result.failure
    if failure is not None:
        if output == "json":
            echo(dumps(result.as_json(), indent=2), data="json")
        raise failure
    for note in result.notes:
        echo(note, err=True)
    if output == "json":
        echo(dumps(result.as_json(), indent=2), data="json")
        return
    for line in result.lines():
        echo(f"ok: {line}")
    if result.token is not None and result.token.verified is not None:
        echo(dumps(result.token.verified.claims, indent=2), data="json")
