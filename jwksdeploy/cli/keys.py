"""Commands for key sets: `jwks generate|rotate|public|check` (tokens are in cli/tokens.py).

They bind flags, call the run()s of `keyset_commands` and print the Result; errors propagate
to the one handler in `cli._Cli`. The core modules are imported inside the commands.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ..jwks import ALGS_BY_KTY
from .common import (
    DEFAULT_PRIVATE,
    DEFAULT_PUBLIC,
    SuggestingGroup,
    echo,
    stack_options,
    vocab_option,
)
from .examples import EPILOGS


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


def _oct_notice(public_path: str) -> None:
    where = (
        "the JWKS on stdout holds the same secret as the private set"
        if public_path == "-"
        else f"{public_path} holds the same secret as the private set and is written with mode 0600"
    )
    echo(
        f"warning: oct keys are shared secrets: {where}. Anyone who can fetch the JWKS endpoint "
        "can sign tokens; prefer --kty EC or RSA unless your gateway needs HMAC.",
        err=True,
    )


@jwks_group.command("generate", epilog=EPILOGS["jwks generate"])
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
    from ..keys import key_spec

    spec = key_spec(kty, size, crv, alg)
    if add_to is not None:
        _rotate(add_to, private_out, out, spec, kid, keep, force)
        return
    if keep is not None:
        raise InputError("--keep only applies with --add-to (or `jwksdeploy jwks rotate`).")
    from ..keyset_commands import GenerateOptions, run_generate
    from ..rotate import fresh_rotation_record

    options = GenerateOptions(
        spec=spec,
        private_path=private_out,
        public_path=out or DEFAULT_PUBLIC,
        kid=kid,
        use=use,
        force=force,
    )
    result = run_generate(options, fresh_rotation_record)
    if result.public_text is not None:
        echo(result.public_text, nl=False, data="json")
    shown = "stdout" if result.public_path == "-" else result.public_path
    echo(
        f"generated {_describe(result.key)}: private set {result.private_path} (mode 0600, keep "
        f"it secret), public JWKS {shown}",
        err=True,
    )
    if result.symmetric:
        _oct_notice(result.public_path)


def _rotate(
    public_path: str,
    private_path: str,
    out: str | None,
    spec: Any,
    kid: str | None,
    keep: int | None,
    force: bool,
) -> None:
    """`jwks rotate` and `generate --add-to`: `rotate start --local`, with --keep and --jwks."""
    from ..rotate import StepOptions, run
    from ..rotate_session import RotateOptions

    target = out or public_path
    copy = f" (and {target})" if target not in ("-", public_path) else ""
    step = StepOptions("start", key_spec=spec, kid=kid, keep=keep, public_out=out, force=force)
    result = run(RotateOptions(private_path, public_path), step)
    if result.public_text is not None:
        echo(result.public_text, nl=False, data="json")
    assert result.step is not None and result.new_key is not None
    key = result.new_key
    echo(
        f"added {_describe(key)}; the set now has {len(result.step.private['keys'])} key(s)",
        err=True,
    )
    if result.step.dropped:
        echo(
            f"dropped the oldest: {', '.join(json.dumps(d) for d in result.step.dropped)}", err=True
        )
    echo(
        f"updated {private_path} and {public_path}{copy}; the new key is `next`: `token` keeps "
        "signing with "
        f"the active key. Deploy the public set now (`jwksdeploy apply`), then `jwksdeploy rotate "
        f"promote --local --private {private_path}` once gateways can have fetched it. (`jwks "
        "rotate` is `jwksdeploy rotate start --local`, which the cluster steps build on.)",
        err=True,
    )
    if key["kty"] == "oct":
        _oct_notice(target)


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
    """Add a new key to both sets (same kind as the active one unless told) and drop old ones.

    Short for `jwks generate --add-to JWKS --private PRIVATE --keep N`.
    """
    from ..keys import key_spec

    spec = key_spec(kty, size, crv, alg) if kty or size or crv or alg else None
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
    from ..keyset_commands import PublicOptions, run_public

    options = PublicOptions(legacy_path or path, out, include_symmetric, force)
    result = run_public(options)
    if result.public_text is not None:
        echo(result.public_text, nl=False, data="json")
    else:
        echo(f"wrote the public JWKS {result.public_path} ({result.keys} key(s))", err=True)


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
    from ..keyset_commands import CheckOptions, run_check

    result = run_check(CheckOptions(legacy_path or path, strict))
    if output == "json":
        echo(json.dumps(result.as_json(), indent=2))
    else:
        for finding in result.findings:
            echo(str(finding))
        echo(
            f"{result.path}: {result.keys} key(s), {result.errors} error(s), "
            f"{result.warnings} warning(s)"
        )
    rejection = result.rejection()
    if rejection is not None:
        raise rejection
