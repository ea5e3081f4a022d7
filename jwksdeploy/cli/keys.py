"""Commands for keys and tokens: `jwks generate|rotate|public|check`, `token`, `verify`.

They only parse, call and print; errors propagate to the one handler in `cli._Cli`.
joserfc and urllib are imported inside the commands that use them.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, ClassVar

import click

from ..jwks import ALGS_BY_KTY
from .common import (
    DEFAULT_PRIVATE,
    DEFAULT_PUBLIC,
    SuggestingGroup,
    resolve_url,
    stack_options,
    url_lookup_options,
    vocab_option,
)


@click.group("jwks", cls=SuggestingGroup)
def jwks_group() -> None:
    """Generate, rotate, publish and check key sets."""


def key_type_options(command: Any) -> Any:
    options = [
        click.option(
            "--kty",
            type=click.Choice(["oct", "RSA", "EC", "OKP"]),
            help="Key type.  [default: EC, or what --alg implies]",
        ),
        click.option(
            "--size",
            type=int,
            metavar="BITS",
            help="oct: secret bits (default: the hash size); RSA: 2048, 3072 or 4096 "
            "(default 2048).",
        ),
        click.option(
            "--crv",
            type=click.Choice(["P-256", "P-384", "P-521", "Ed25519"]),
            help="EC or OKP curve.  [default: P-256 for EC, Ed25519 for OKP]",
        ),
        click.option(
            "--alg",
            type=click.Choice([alg for algs in ALGS_BY_KTY.values() for alg in algs]),
            help="Signing algorithm, written into the key.  [default: from the key]",
        ),
        vocab_option("kid", metavar="VALUE", help="Key ID.  [default: --kid-from]"),
        click.option(
            "--kid-from",
            type=click.Choice(["thumbprint"]),
            default="thumbprint",
            show_default=True,
            help="Derive the kid: the RFC 7638 SHA-256 thumbprint of the public key.",
        ),
    ]
    return stack_options(command, options)


def _describe(key: dict[str, Any]) -> str:
    detail = key.get("crv") or f"{key.get('kty')}"
    return f"kid {json.dumps(key.get('kid'))}, {key.get('alg')}, {detail}"


def _write_sets(
    private: dict[str, Any] | None,
    private_path: str | None,
    public: dict[str, Any],
    public_path: str,
    force: bool,
    replaces: bool,
    rotating: bool = False,
    extra: list[Any] | None = None,
) -> None:
    """Both files land together or neither does; the public one may go to stdout.

    `replaces`: the public file is updated in place; `rotating`: so is the private one."""
    from ..keys import to_json
    from ..writes import OutputFile, write_files

    symmetric = any(key.get("kty") == "oct" for key in public["keys"])
    outputs = []
    if private is not None and private_path is not None:
        outputs.append(OutputFile(private_path, to_json(private), True, replaces or rotating))
    if public_path != "-":
        outputs.append(OutputFile(public_path, to_json(public), symmetric, replaces))
    outputs.extend(extra or [])
    for note in write_files(outputs, force):
        click.echo(f"note: {note}", err=True)
    if public_path == "-":
        click.echo(to_json(public), nl=False)


def _oct_notice(public_path: str) -> None:
    click.echo(
        f"warning: oct keys are shared secrets: {public_path} holds the same secret as the private "
        "set and is written with mode 0600. Anyone who can fetch the JWKS endpoint can sign "
        "tokens; prefer --kty EC or RSA unless your gateway needs HMAC.",
        err=True,
    )


@jwks_group.command("generate")
@key_type_options
@click.option(
    "--use", type=click.Choice(["sig"]), default="sig", show_default=True, help="Key use."
)
@vocab_option(
    "jwks",
    "out",
    aliases=("--out",),
    metavar="PATH",
    help=f"Public JWKS to deploy ('-' for stdout).  [default: {DEFAULT_PUBLIC}, or the "
    "--add-to file]",
)
@vocab_option(
    "private",
    "private_out",
    aliases=("--private-out",),
    metavar="PATH",
    default=DEFAULT_PRIVATE,
    show_default=True,
    help="Private key set (mode 0600). With --add-to it must exist and is updated.",
)
@click.option(
    "--add-to",
    metavar="JWKS",
    help="Append the new key to this existing public set (rotation), keeping the private "
    "set in step.",
)
@click.option("--keep", type=int, metavar="N", help="With --add-to: keep only the newest N keys.")
@vocab_option("force", is_flag=True, help="Overwrite existing output files.")
def generate(
    kty: str | None,
    size: int | None,
    crv: str | None,
    alg: str | None,
    kid: str | None,
    kid_from: str,
    use: str,
    out: str | None,
    private_out: str,
    add_to: str | None,
    keep: int | None,
    force: bool,
) -> None:
    """Generate a signing key: the private set for `token`, the public JWKS for `render`.

    With no options it makes an ES256 (P-256) key. The source's HMAC recipe is
    `--kty oct --size 256 --alg HS256`.
    """
    from ..errors import InputError
    from ..keys import generate as generate_key
    from ..keys import key_spec

    spec = key_spec(kty, size, crv, alg)
    if add_to is not None:
        _rotate(add_to, private_out, out, spec, kid, keep, force)
        return
    if keep is not None:
        raise InputError("--keep only applies with --add-to (or `jwksdeploy jwks rotate`).")
    public_path = out or DEFAULT_PUBLIC
    if public_path == private_out:
        raise InputError(
            f"--jwks and --private are both {public_path!r}. Give the private set its own file."
        )
    key = generate_key(spec, kid, use)
    _publish_new_set(key, private_out, public_path, force)


def _publish_new_set(key: dict[str, Any], private_path: str, public_path: str, force: bool) -> None:
    from ..keys import public_set
    from .rotate import fresh_rotation_record

    private = {"keys": [key]}
    public = public_set(private, include_symmetric=True)
    record = fresh_rotation_record(private_path, str(key["kid"]))
    extra = [record] if record is not None else []
    _write_sets(private, private_path, public, public_path, force, replaces=False, extra=extra)
    shown = "stdout" if public_path == "-" else public_path
    click.echo(
        f"generated {_describe(key)}: private set {private_path} (mode 0600, keep it secret), "
        f"public JWKS {shown}",
        err=True,
    )
    if key["kty"] == "oct":
        _oct_notice(shown)


def _rotate(
    public_path: str,
    private_path: str,
    out: str | None,
    spec: Any,
    kid: str | None,
    keep: int | None,
    force: bool,
) -> None:
    from ..errors import InputError
    from ..files import read_input
    from ..keys import generate as generate_key
    from ..keys import parse_key_file, rotate
    from ..writes import key_files_locked

    target = out or public_path
    # Read, decide and write under one lock, after finishing any write a crash interrupted.
    with key_files_locked([private_path, public_path, target]) as notes:
        for note in notes:
            click.echo(f"note: {note}", err=True)
        public_in = parse_key_file(
            read_input(public_path, "JWKS file"), f"JWKS file {public_path!r}"
        )
        if not os.path.lexists(private_path):
            raise InputError(
                f"the private key set {private_path!r} is missing. Rotation keeps the public "
                "and private sets in step, so it needs both: pass --private with the file "
                "`jwks generate` wrote."
            )
        private_bytes = read_input(private_path, "private key set")
        private_in = parse_key_file(private_bytes, f"private key set {private_path!r}")
        _refuse_out_of_step(private_in, public_in, private_path, public_path)
        key = generate_key(spec, kid)
        private, public = rotate(private_in, public_in, key, keep)
        from .rotate import legacy_rotation_record

        record = legacy_rotation_record(private_path, private_in, private, key)
        _write_sets(
            private,
            private_path,
            public,
            target,
            force,
            target == public_path,
            rotating=True,
            extra=[record],
        )
    kept = {k.get("kid") for k in private["keys"]}
    dropped = [k.get("kid") for k in private_in["keys"] if k.get("kid") not in kept]
    click.echo(f"added {_describe(key)}; the set now has {len(private['keys'])} key(s)", err=True)
    if dropped:
        click.echo(f"dropped the oldest: {', '.join(json.dumps(d) for d in dropped)}", err=True)
    click.echo(
        f"updated {private_path} and {target}; the new key is `next`: `token` keeps signing with "
        f"the active key. Deploy the public set now (`jwksdeploy apply`), then `jwksdeploy rotate "
        f"promote --local --private {private_path}` once gateways can have fetched it. (`jwks "
        "rotate` is `jwksdeploy rotate start --local`, which the cluster steps build on.)",
        err=True,
    )
    if key["kty"] == "oct":
        _oct_notice(target)


def _refuse_out_of_step(
    private_in: dict[str, Any], public_in: dict[str, Any], private_path: str, public_path: str
) -> None:
    """InputError when the sets differ, saying which file changed last (rotate() would refuse
    too, but cannot see the files)."""
    from ..errors import InputError
    from ..jwks import key_subject, public_members
    from ..keys import has_private_half
    from ..writes import out_of_step_detail

    keys = [key for key in private_in["keys"] if isinstance(key, dict)]
    if not all(has_private_half(key) for key in keys):
        return  # rotate() names the key that cannot sign
    if [public_members(key) for key in keys] == public_in["keys"]:
        return

    def kids(found: list[Any]) -> str:
        return ", ".join(key_subject(key, index) for index, key in enumerate(found)) or "none"

    raise InputError(
        f"the public and private key sets are out of step: they must hold the same keys in the "
        f"same order (public {public_path}: {kids(public_in['keys'])}; private {private_path}: "
        f"{kids(keys)}). {out_of_step_detail([private_path, public_path])} If the private set "
        "is the one you want, regenerate the public set from it with `jwksdeploy jwks public "
        f"--private {private_path} --jwks {public_path} --force` (add --include-symmetric for "
        "oct keys); otherwise restore the private set from your backup."
    )


@jwks_group.command("rotate", hidden=True)
@key_type_options
@click.option(
    "--jwks",
    "public_path",
    default=DEFAULT_PUBLIC,
    show_default=True,
    metavar="PATH",
    help="Public set to update.",
)
@click.option(
    "--private",
    "private_path",
    default=DEFAULT_PRIVATE,
    show_default=True,
    metavar="PATH",
    help="Private set to update (mode 0600).",
)
@click.option(
    "--keep",
    type=int,
    default=2,
    show_default=True,
    metavar="N",
    help="Keep the newest N keys: the new one plus N-1 still trusted for tokens in flight.",
)
def rotate_command(
    kty: str | None,
    size: int | None,
    crv: str | None,
    alg: str | None,
    kid: str | None,
    kid_from: str,
    public_path: str,
    private_path: str,
    keep: int,
) -> None:
    """Add a new key to both sets (same kind as the newest unless told) and drop old ones.

    Short for `jwks generate --add-to JWKS --private PRIVATE --keep N`.
    """
    from ..files import read_input
    from ..keys import key_spec, parse_key_file, spec_like

    if kty or size or crv or alg:
        spec = key_spec(kty, size, crv, alg)
    else:
        current = parse_key_file(read_input(public_path, "JWKS file"), f"JWKS {public_path!r}")
        spec = spec_like(current["keys"][-1])
    _rotate(public_path, private_path, None, spec, kid, keep, force=False)


@jwks_group.command("public")
@click.argument("legacy_path", metavar="[FILE]", required=False)
@vocab_option(
    "private",
    "path",
    metavar="PATH",
    default=DEFAULT_PRIVATE,
    show_default=True,
    help="The key set (or single JWK) to strip; FILE is the same.",
)
@vocab_option(
    "jwks",
    "out",
    aliases=("--out",),
    metavar="PATH",
    default="-",
    help="Where to write the public JWKS.  [default: - (stdout)]",
)
@click.option(
    "--include-symmetric",
    is_flag=True,
    help="Keep oct keys (their secret is published: there is no public half).",
)
@vocab_option("force", is_flag=True, help="Overwrite --jwks if it exists.")
def public_command(
    legacy_path: str | None, path: str, out: str, include_symmetric: bool, force: bool
) -> None:
    """Strip every private member from a key set and print the public JWKS."""
    path = legacy_path or path
    from ..files import read_input
    from ..keys import parse_key_file, public_set

    document = parse_key_file(read_input(path, "key file"), f"key file {path!r}")
    _write_sets(None, None, public_set(document, include_symmetric), out, force, replaces=False)
    if out != "-":
        click.echo(f"wrote the public JWKS {out} ({len(document['keys'])} key(s))", err=True)


@jwks_group.command("check")
@click.argument("legacy_path", metavar="[FILE]", required=False)
@vocab_option(
    "jwks",
    "path",
    metavar="PATH",
    default=DEFAULT_PUBLIC,
    show_default=True,
    help="The JWKS to check; FILE is the same.",
)
@vocab_option("strict", default=False, help="Fail on warnings too.")
@vocab_option("output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check_command(legacy_path: str | None, path: str, strict: bool, output: str) -> None:
    """Run render's checks on a JWKS and list every finding (exit 4 on errors)."""
    path = legacy_path or path
    from ..errors import JwksRejected
    from ..files import read_input
    from ..jwks import lint_jwks, parse_jwks

    document = parse_jwks(read_input(path, "JWKS file"), f"JWKS file {path!r}")
    findings = lint_jwks(document)
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "file": path,
                    "keys": len(document["keys"]),
                    "findings": [
                        {
                            "severity": f.severity,
                            "code": f.code,
                            "key": f.subject,
                            "message": f.message,
                        }
                        for f in findings
                    ],
                },
                indent=2,
            )
        )
    else:
        for finding in findings:
            click.echo(str(finding))
        click.echo(
            f"{path}: {len(document['keys'])} key(s), {errors} error(s), {warnings} warning(s)"
        )
    if errors or (strict and warnings):
        what = f"{errors} error(s)" if errors else f"{warnings} warning(s) under --strict"
        raise JwksRejected(
            f"{path} has {what}. Fix the keys listed above; `jwksdeploy jwks public` strips "
            "private members and `jwksdeploy jwks generate` makes a clean key."
        )


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
    click.echo(sign(key, claims, headers))


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
        click.echo(dumps({**result, "times": seen.times, "matchingKeys": matches}, indent=2))
        return
    click.echo("header (unverified):")
    click.echo(dumps(seen.header, indent=2))
    click.echo("claims (unverified):")
    click.echo(dumps(seen.claims, indent=2))
    for name, time in seen.times.items():
        shown = time.get("refused") or f"{time['utc']} ({time['relative']})"
        click.echo(f"{name}: {shown}")
    if matches is not None:
        named = ", ".join(
            json.dumps(m["kid"]) if m["kid"] is not None else f"#{m['index']}" for m in matches
        )
        click.echo(
            f"key: {named} in {local_path} matches the token's kid and alg"
            if matches
            else f"key: no key in {local_path} matches the token's kid and alg"
        )
    click.echo(
        "note: nothing above is verified; `jwksdeploy verify --jwks FILE --token TOKEN` checks "
        "the signature and the claims.",
        err=True,
    )


@click.command("verify")
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
                click.echo(dumps(result, indent=2))
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
        click.echo(note, err=True)
    if output == "json":
        click.echo(dumps(result, indent=2))
        return
    for line in lines:
        click.echo(f"ok: {line}")
    if verified is not None:
        click.echo(dumps(verified.claims, indent=2))
