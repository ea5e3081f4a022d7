"""The `jwks` commands over key set files as Options -> run() -> Result: generate a key pair,
publish a private set's public half, check a JWKS. No flag parsing and no printing here.

The private set is the source of truth and is written first; the public set is derived from
it. A Result holds no private member, only what the CLI says about the key, and the public set
when it is to be printed (for an oct key that set is the shared secret, as the CLI warns).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import InputError, JwksRejected

if TYPE_CHECKING:
    from .jwks import Finding
    from .keys import KeySpec
    from .writes import OutputFile

STDOUT = "-"  # as a public set's path: print it instead of writing a file


def write_sets(
    private: dict[str, Any] | None,
    private_path: str | None,
    public: dict[str, Any],
    public_path: str,
    force: bool,
    replaces: bool,
    extra: Sequence[OutputFile] = (),
) -> str | None:
    """The private set first (the source of truth), then `extra`, then the public set; a
    failure after the first leaves them out of step, refused by the next key command.
    Returns the public set's text when it goes to stdout (public_path '-'), for the caller
    to print.

    `replaces`: both files are updated in place."""
    from .keys import to_json
    from .writes import OutputFile, write_files

    symmetric = any(key.get("kty") == "oct" for key in public["keys"])
    outputs = []
    if private is not None and private_path is not None:
        outputs.append(OutputFile(private_path, to_json(private), True, replaces))
    outputs.extend(extra)
    if public_path != STDOUT:
        outputs.append(OutputFile(public_path, to_json(public), symmetric, replaces))
    write_files(outputs, force)
    return to_json(public) if public_path == STDOUT else None


def key_summary(key: dict[str, Any]) -> dict[str, Any]:
    """What may be said about a key: kty, alg, kid and crv, never a secret member."""
    return {name: key[name] for name in ("kty", "alg", "kid", "crv") if name in key}


@dataclass(frozen=True)
class GenerateOptions:
    """`jwks generate` without --add-to: a new key in a new pair of sets."""

    spec: KeySpec
    private_path: str
    public_path: str  # '-': stdout
    kid: str | None = None  # None: the RFC 7638 thumbprint
    use: str = "sig"
    force: bool = False


@dataclass(frozen=True)
class GenerateResult:
    key: dict[str, Any]  # key_summary of the new key
    private_path: str
    public_path: str
    public_text: str | None  # the public set, when it goes to stdout

    @property
    def symmetric(self) -> bool:
        """An oct key: the 'public' set holds the shared secret too."""
        return self.key.get("kty") == "oct"


# The rotation record to write beside a new private set (private path, kid), or None: the
# rotation code decides, the CLI passes its function in.
RotationRecord = Callable[[str, str], "OutputFile | None"]


def run_generate(
    options: GenerateOptions, rotation_record: RotationRecord = lambda path, kid: None
) -> GenerateResult:
    """Generate the key, then write the private set, its rotation record and the public set."""
    from .keys import generate, public_set
    from .writes import same_file

    if options.public_path != STDOUT and same_file(options.public_path, options.private_path):
        raise InputError(
            f"--jwks and --private are both {options.public_path!r}. Give the private set its "
            "own file."
        )
    key = generate(options.spec, options.kid, options.use)
    private = {"keys": [key]}
    public = public_set(private, include_symmetric=True)
    record = rotation_record(options.private_path, str(key["kid"]))
    extra = [record] if record is not None else []
    printed = write_sets(
        private,
        options.private_path,
        public,
        options.public_path,
        options.force,
        replaces=False,
        extra=extra,
    )
    return GenerateResult(key_summary(key), options.private_path, options.public_path, printed)


@dataclass(frozen=True)
class PublicOptions:
    """`jwks public`: strip a key set (or a single JWK) to the JWKS to publish."""

    private_path: str
    public_path: str = STDOUT
    include_symmetric: bool = False
    force: bool = False


@dataclass(frozen=True)
class PublicResult:
    public_path: str
    keys: int
    public_text: str | None  # the public set, when it goes to stdout


def run_public(options: PublicOptions) -> PublicResult:
    from .files import read_input
    from .keys import parse_key_file, public_set
    from .writes import same_file

    path, out = options.private_path, options.public_path
    if STDOUT not in (path, out) and same_file(path, out):
        raise InputError(
            f"--private {path!r} and --jwks {out!r} are the same file: writing the public set "
            "there would replace the private set and lose its private keys. Nothing was "
            "written. Give the public JWKS its own path."
        )
    document = parse_key_file(read_input(path, "key file"), f"key file {path!r}")
    public = public_set(document, options.include_symmetric)
    printed = write_sets(None, None, public, out, options.force, replaces=False)
    return PublicResult(out, len(document["keys"]), printed)


@dataclass(frozen=True)
class CheckOptions:
    """`jwks check`: render's checks on a JWKS file."""

    path: str
    strict: bool = False


@dataclass(frozen=True)
class CheckResult:
    path: str
    keys: int
    findings: list[Finding]
    strict: bool

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return len(self.findings) - self.errors

    def as_json(self) -> dict[str, Any]:
        listed = [
            {"severity": f.severity, "code": f.code, "key": f.subject, "message": f.message}
            for f in self.findings
        ]
        return {"file": self.path, "keys": self.keys, "findings": listed}

    def rejection(self) -> JwksRejected | None:
        """The error to exit with after the findings are shown: errors, or warnings under
        strict; None when the JWKS passes."""
        if not self.errors and not (self.strict and self.warnings):
            return None
        what = (
            f"{self.errors} error(s)"
            if self.errors
            else f"{self.warnings} warning(s) under --strict"
        )
        return JwksRejected(
            f"{self.path} has {what}. Fix the keys listed above; `jwksdeploy jwks public` strips "
            "private members and `jwksdeploy jwks generate` makes a clean key."
        )


def run_check(options: CheckOptions) -> CheckResult:
    from .files import read_input
    from .jwks import lint_jwks, parse_jwks

    path = options.path
    document = parse_jwks(read_input(path, "JWKS file"), f"JWKS file {path!r}")
    return CheckResult(path, len(document["keys"]), lint_jwks(document), options.strict)
