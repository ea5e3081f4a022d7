"""Commands for key sets: `jwks generate|rotate|public|check` (tokens are in cli/tokens.py).

They only parse, call and print; errors propagate to the one handler in `cli._Cli`.
joserfc and urllib are imported inside the commands that use them.
"""

from __future__ import annotations

import json
import os
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
    """The private set first (the source of truth), then `extra`, then the public set, which
    may go to stdout; a failure puts back what was written before it.

    `replaces`: the public file is updated in place; `rotating`: so is the private one."""
    from ..keys import to_json
    from ..writes import OutputFile, write_files

    symmetric = any(key.get("kty") == "oct" for key in public["keys"])
    outputs = []
    if private is not None and private_path is not None:
        outputs.append(OutputFile(private_path, to_json(private), True, replaces or rotating))
    outputs.extend(extra or [])
    if public_path != "-":
        outputs.append(OutputFile(public_path, to_json(public), symmetric, replaces))
    write_files(outputs, force)
    if public_path == "-":
        echo(to_json(public), nl=False, data="json")


def _oct_notice(public_path: str) -> None:
    echo(
        f"warning: oct keys are shared secrets: {public_path} holds the same secret as the private "
        "set and is written with mode 0600. Anyone who can fetch the JWKS endpoint can sign "
        "tokens; prefer --kty EC or RSA unless your gateway needs HMAC.",
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
    from ..keys import generate as generate_key
    from ..keys import key_spec

    spec = key_spec(kty, size, crv, alg)
    if add_to is not None:
        _rotate(add_to, private_out, out, spec, kid, keep, force)
        return
    if keep is not None:
        raise InputError("--keep only applies with --add-to (or `jwksdeploy jwks rotate`).")
    public_path = out or DEFAULT_PUBLIC
    from ..writes import same_file

    if public_path != "-" and same_file(public_path, private_out):
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
    echo(
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
    # Read, decide and write under one lock.
    with key_files_locked([private_path, public_path, target]):
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
    echo(f"added {_describe(key)}; the set now has {len(private['keys'])} key(s)", err=True)
    if dropped:
        echo(f"dropped the oldest: {', '.join(json.dumps(d) for d in dropped)}", err=True)
    echo(
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
    from ..errors import InputError
    from ..files import read_input
    from ..keys import parse_key_file, public_set
    from ..writes import same_file

    if "-" not in (path, out) and same_file(path, out):
        raise InputError(
            f"--private {path!r} and --jwks {out!r} are the same file: writing the public set "
            "there would replace the private set and lose its private keys. Nothing was "
            "written. Give the public JWKS its own path."
        )
    document = parse_key_file(read_input(path, "key file"), f"key file {path!r}")
    _write_sets(None, None, public_set(document, include_symmetric), out, force, replaces=False)
    if out != "-":
        echo(f"wrote the public JWKS {out} ({len(document['keys'])} key(s))", err=True)


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
        echo(
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
            echo(str(finding))
        echo(f"{path}: {len(document['keys'])} key(s), {errors} error(s), {warnings} warning(s)")
    if errors or (strict and warnings):
        what = f"{errors} error(s)" if errors else f"{warnings} warning(s) under --strict"
        raise JwksRejected(
            f"{path} has {what}. Fix the keys listed above; `jwksdeploy jwks public` strips "
            "private members and `jwksdeploy jwks generate` makes a clean key."
        )
