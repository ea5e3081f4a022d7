"""Commands for tokens: `token` (sign), `token inspect` (alias `decode`) and `verify`.

They only parse, call and print; errors propagate to the one handler in `cli._Cli`.
joserfc and http.client are imported inside the commands that use them.
"""

from __future__ import annotations

import json
import sys
from typing import Any, ClassVar

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

    from ..files import read_input
    from ..keys import parse_key_file
    from ..settings import parse_duration
    from ..tokens import build_claims, parse_pairs_json, parse_time, pick_signing_key, sign

    now = int(time.time())
    lifetime = parse_duration(ttl, "--ttl")
    not_before = parse_time(nbf, now, "--nbf") if nbf is not None else None
    claims = build_claims(
        now, lifetime, iss, sub, aud, not_before, parse_pairs_json(claim, "--claim")
    )
    headers = parse_pairs_json(header, "--header")
    source = f"key file {key_path!r}"
    document = parse_key_file(read_input(key_path, "key file"), source)
    from .rotate import signing_kid

    kid = signing_kid(key_path, document, kid, allow_next)
    key = pick_signing_key(document, kid, source)
    echo(sign(key, claims, headers))


@token_command.command("inspect")
@click.argument("token", metavar="TOKEN")
@vocab_option(
    "jwks", "local_path", metavar="FILE", help="Name the key in this set that matches the token."
)
@vocab_option("output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def token_inspect(token: str, local_path: str | None, output: str) -> None:
    """Print a token's header and claims, UNVERIFIED, with times in UTC and relative to now.
    The signature is never printed; `jwksdeploy verify --jwks FILE --token TOKEN` checks it."""
    from ..errors import InputError, VerificationFailed
    from ..files import read_input
    from ..jwks import parse_jwks
    from ..strictjson import dumps
    from ..tokens import MAX_TOKEN_CHARS, inspect_token
    from .rotate import clock

    if token == "-":
        token = sys.stdin.buffer.readline(MAX_TOKEN_CHARS + 1).decode("utf-8", "replace")
    if not token.strip():
        raise InputError("TOKEN is empty (an unset $TOKEN?). Pass the JWT to inspect.")
    document = (
        parse_jwks(read_input(local_path, "JWKS file"), f"JWKS file {local_path!r}")
        if local_path
        else None
    )
    try:
        seen = inspect_token(token, clock(), document)
    except VerificationFailed as exc:
        raise InputError(f"cannot inspect the token: {exc}") from None
    matches = None
    if seen.matches is not None:
        matches = [{"index": index, "kid": kid} for index, kid in seen.matches]
    if output == "json":
        result = {"verified": False, "header": seen.header, "claims": seen.claims}
        echo(dumps({**result, "times": seen.times, "matchingKeys": matches}, indent=2), data="json")
        return
    echo("header (unverified):")
    echo(dumps(seen.header, indent=2), data="json")
    echo("claims (unverified):")
    echo(dumps(seen.claims, indent=2), data="json")
    for name, time in seen.times.items():
        shown = time.get("refused") or f"{time['utc']} ({time['relative']})"
        echo(f"{name}: {shown}")
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
    import time

    from ..errors import InputError, VerificationFailed
    from ..files import read_input
    from ..jwks import enforce, lint_jwks, parse_jwks
    from ..probe import check_jwks, check_root, compare_sets, fetch, server_urls, tls_context
    from ..settings import parse_duration
    from ..strictjson import dumps
    from ..tokens import MAX_TOKEN_CHARS, check_token

    seconds = parse_duration(timeout, "--request-timeout")
    skew = int(parse_duration(leeway, "--leeway"))
    if through is not None:
        from .through import check_through

        given = {"--url": url, "--namespace": namespace, "--token": token, "--jwks": local_path}
        others = [flag for flag, value in given.items() if value is not None]
        trust = tls_context(ca_file) if through.startswith("https:") or ca_file else None
        check_through(through, through_private, iss, aud, seconds, trust, output, others)
        return
    if token == "-":
        token = sys.stdin.buffer.readline(MAX_TOKEN_CHARS + 1).decode("utf-8", "replace").strip()
        if not token:
            raise InputError(
                "--token - read no token from stdin. Pipe one in, e.g. "
                "`jwksdeploy token | jwksdeploy verify --url URL --token -`."
            )
    elif token is not None and not token.strip():
        raise InputError(
            "--token is empty (an unset $TOKEN?). Pass the JWT to verify, or leave --token out "
            "to check only the endpoint."
        )
    if token is None and (iss is not None or aud):
        raise InputError(
            "--issuer and --audience check a token's claims, but no --token was given. Pass "
            "--token, "
            "or drop them."
        )
    offline = url is None and namespace is None and token is not None
    if offline and local_path is None:
        raise InputError(
            "--token needs keys to verify against: --jwks FILE (offline, e.g. `jwksdeploy "
            'verify --jwks jwks.json --token "$TOKEN"`), or --url/--namespace for a live server.'
        )
    local = (
        parse_jwks(read_input(local_path, "JWKS file"), f"JWKS file {local_path!r}")
        if local_path
        else None
    )
    if local is not None:
        enforce(lint_jwks(local), strict=False)  # a broken local file is not worth comparing
    result: dict[str, Any]
    notes: list[str] = []
    if offline and local is not None:
        served = local
        kids = [k.get("kid") for k in served["keys"] if isinstance(k, dict)]
        lines = [f"{local_path} holds {len(kids)} key(s): {', '.join(map(json.dumps, kids))}"]
        result = {"file": local_path, "kids": kids}
    else:
        example = "jwksdeploy verify --url http://192.0.2.10:31234/jwks"
        url = resolve_url(url, namespace, instance, address, kubeconfig, context, example, seconds)
        urls = server_urls(url)
        trust = tls_context(ca_file) if urls.root.startswith("https:") or ca_file else None
        lines = [check_root(fetch(urls.root, seconds, trust))]
        served, notes = check_jwks(fetch(urls.jwks, seconds, trust))
        kids = [k.get("kid") for k in served["keys"] if isinstance(k, dict)]
        lines.append(f"{urls.jwks} serves {len(kids)} key(s): {', '.join(map(json.dumps, kids))}")
        if local is not None:
            lines.append(compare_sets(served, local, str(local_path)))
        # compare_sets raises on a mismatch, so a given file that got here matches.
        matches = True if local is not None else None
        result = {"url": urls.jwks, "kids": kids, "matchesLocal": matches}
    verified = None
    if token:
        report = check_token(token, served, time.time(), iss, aud, skew)
        verified = report.verified
        if verified is None:
            if output == "json":
                result["token"] = report.as_json()
                echo(dumps(result, indent=2), data="json")
            failed = report.failed
            raise VerificationFailed(failed.detail if failed else "the token was not verified.")
        lines.append(report.summary())
        result["token"] = {
            "kid": verified.kid,
            "alg": verified.alg,
            "header": verified.header,
            "claims": verified.claims,
            **report.as_json(),
        }
    for note in notes:
        echo(note, err=True)
    if output == "json":
        echo(dumps(result, indent=2), data="json")
        return
    for line in lines:
        echo(f"ok: {line}")
    if verified is not None:
        echo(dumps(verified.claims, indent=2), data="json")
