"""Pieces the command modules share: the flag vocabulary, option stacks and the URL lookup."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from ..terminal import terminal_text

F = TypeVar("F", bound=Callable[..., Any])


def echo(text: str = "", *, err: bool = False, nl: bool = True, data: str | None = None) -> None:
    """The one way a command prints. Text for people has its terminal control characters
    shown escaped (a kid, a file name or a node name may hold ESC or BEL). `data` ("json",
    "yaml") is a document for scripts, printed as its serializer escaped it; JSON written
    with ensure_ascii=False still gets DEL and C1 as \\u escapes, which mean the same."""
    if data == "json":
        text = _JSON_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    elif data is None:
        text = terminal_text(text)
    click.echo(text, err=err, nl=nl)


_JSON_CONTROLS = re.compile(r"[\x7f-\x9f]")  # JSON escapes C0 itself; these only sit in strings


def examples(*lines: str) -> str:
    """A click epilog of examples: `\\b` keeps the lines as typed; comments start with '#'."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def echo_status(line: str | None) -> None:
    """On a terminal: rewrite the one status line in place (None: erase it)."""
    shown = "" if line is None else terminal_text(line)
    click.echo(f"\r{shown}\033[K", err=True, nl=False, color=True)


# The key files `jwks generate` writes and the other key commands and `serve` read by default.
DEFAULT_PUBLIC = "jwks.json"
DEFAULT_PRIVATE = "jwks.private.json"


@dataclass(frozen=True)
class Concept:
    """One idea the command line names: its visible flags and the old spellings kept hidden."""

    flags: tuple[str, ...]
    meaning: str
    aliases: tuple[str, ...] = ()


# The vocabulary: one concept, one flag, one meaning in every command. A flag that two
# commands share is either one of these or comes from one shared option definition
# (tests/test_vocabulary.py walks every command to check). Add a concept with one line.
VOCABULARY: dict[str, Concept] = {
    "namespace": Concept(("-n", "--namespace"), "the JWKS instance's namespace"),
    "name": Concept(("--name",), "the JWKS instance's name", ("--deployment",)),
    "jwks": Concept(("--jwks",), "the public key set file", ("--out",)),
    "private": Concept(("--private",), "the private key set file", ("--private-out", "--key")),
    "issuer": Concept(("--issuer",), "the issuer tokens carry", ("--iss",)),
    "audience": Concept(("--audience",), "an audience tokens may carry", ("--aud",)),
    "provider": Concept(("--provider",), "which gateway", ("--gateway",)),
    "provider-name": Concept(("--provider-name",), "the gateway's provider/object name"),
    "fetch-timeout": Concept(("--fetch-timeout",), "the gateway's JWKS fetch timeout"),
    "timeout": Concept(("--timeout",), "how long the command waits in total"),
    "request-timeout": Concept(("--request-timeout",), "one request's timeout", ("--timeout",)),
    "kubeconfig": Concept(("--kubeconfig",), "the kubeconfig file"),
    "context": Concept(("--context",), "the kubeconfig context"),
    "address": Concept(("--address",), "the host to print in a URL instead of a node's"),
    "listen": Concept(("--listen",), "the address `serve` listens on", ("--address",)),
    "port": Concept(("--port",), "the port the JWKS is served on (Service; `serve`)"),
    "url": Concept(("--url",), "the JWKS URL"),
    "dry-run": Concept(("--dry-run",), "a dry run: none, client or server (bare: server)"),
    "output": Concept(("-o", "--output"), "the output format"),
    "output-dir": Concept(("--output-dir",), "write files under this directory"),
    "force": Concept(("--force",), "overwrite outputs"),
    "field-manager": Concept(("--field-manager",), "the server-side apply field manager"),
    "values": Concept(("-f", "--values"), "a values file, repeatable"),
    "set": Concept(("--set",), "one value by long flag name"),
    "wait": Concept(("--wait/--no-wait",), "wait until the cluster is done"),
    "strict": Concept(("--strict/--no-strict",), "JWKS warnings are errors"),
    "kid": Concept(("--kid",), "a key ID"),
    "url-from": Concept(("--url-from",), "where the gateway's URL comes from"),
    "node-port": Concept(("--node-port",), "the Service's fixed nodePort"),
    "keep": Concept(("--keep",), "how many of the newest keys a key set keeps"),
    "parallel": Concept(("--parallel",), "namespaces worked on at once"),
    "insecure-skip-jwks-verify": Concept(
        ("--insecure-skip-jwks-verify",),
        "let the gateway fetch an https JWKS without checking its certificate",
    ),
}


class SuggestingGroup(click.Group):
    """A group that answers a mistyped command with the nearest one (`gatway` -> `gateway`),
    or with ours for another tool's name of it (`habits`: Helm's `template` -> `render`)."""

    habits: dict[str, str] = {}  # noqa: RUF012 - read only

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = click.utils.make_str(args[0]) if args else ""
        if args and not name.startswith("-") and self.get_command(ctx, name) is None:
            import difflib

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            if name in self.habits:
                close = [self.habits[name]]
            hint = f" Did you mean {close[0]!r}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint} `{ctx.command_path} --help` lists them.")
        found = super().resolve_command(ctx, args)
        if found[1] is not None:
            strict_numbers(found[1])
        return found


class _PlainInteger(click.ParamType[Any, Any]):
    """Mixed into an integer flag's type: only ASCII digits. Python's int() also takes other
    scripts' digits ("٣"), "3_000" and " 3 ", so `--port ٣` silently meant port 3."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)  # click's own words for "two"
        if isinstance(value, str) and not re.fullmatch(r"-?[0-9]+", value):
            self.fail(f"{value!r} is not a whole number in ASCII digits.", param, ctx)
        return number


_PLAIN: dict[type, type] = {}


class Duration(click.ParamType[Any, Any]):
    """A duration flag (`90s`, `2m`, `1h30m`) as seconds; a bad one is refused with the words
    `parse_duration` uses for any duration flag (exit 3, not a usage error)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        from ..durations import parse_duration

        return parse_duration(value, _flag(param))


class Host(click.ParamType[Any, Any]):
    """An IP address or a DNS name, to print in a URL (`checks.check_address`)."""

    name = "host"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ..checks import check_address

        return check_address(value)


def _flag(param: click.Parameter | None) -> str:
    opts = [o for o in (param.opts if param is not None else []) if o.startswith("--")]
    return opts[0] if opts else "--timeout"


def strict_numbers(command: click.Command) -> None:
    """Give every integer flag of `command` (and of its subcommands) the _PlainInteger check,
    in place and once; the type stays an instance of its class, so ranges still show."""
    for param in command.params:
        kind = type(param.type)
        if isinstance(param.type, click.types.IntParamType) and not isinstance(
            param.type, _PlainInteger
        ):
            plain = _PLAIN.setdefault(
                kind, type(f"Plain{kind.__name__}", (_PlainInteger, kind), {})
            )
            param.type = copy.copy(param.type)  # click.INT is shared: change only our copy
            param.type.__class__ = plain
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            strict_numbers(sub)


class VocabOption(click.Option):
    """A click option that belongs to a VOCABULARY concept; its old spellings work but are
    not shown in --help."""

    def __init__(
        self,
        param_decls: Sequence[str],
        concept: str = "",
        hidden_aliases: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(param_decls, **kwargs)
        self.concept = concept
        self.hidden_aliases = tuple(hidden_aliases)

    def visible_opts(self) -> list[str]:
        return [o for o in self.opts if o not in self.hidden_aliases]

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        opts = self.opts
        self.opts = self.visible_opts()
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = opts


def vocab_option(
    concept: str, dest: str | None = None, aliases: Sequence[str] = (), **kwargs: Any
) -> Callable[[F], F]:
    """`click.option` for a VOCABULARY concept: its flags, plus `aliases` (old spellings the
    concept lists) hidden from --help."""
    entry = VOCABULARY[concept]
    unknown = set(aliases) - set(entry.aliases)
    if unknown:  # pragma: no cover - a programming error caught by the vocabulary test
        raise ValueError(f"{sorted(unknown)} are not aliases of {concept!r}")
    decls = [*entry.flags, *aliases, *([dest] if dest else [])]
    return click.option(
        *decls, cls=VocabOption, concept=concept, hidden_aliases=tuple(aliases), **kwargs
    )


def stack_options(command: F, options: Sequence[Callable[[F], F]]) -> F:
    """Apply Click options so they appear in --help in the order listed."""
    for option in reversed(options):
        command = option(command)
    return command


def url_lookup_options(name_aliases: Sequence[str] = ()) -> Callable[[F], F]:
    """`--url URL`, or `--namespace NS` with what it takes to find that deployment's URL."""

    def decorate(command: F) -> F:
        options = [
            vocab_option("url", metavar="URL", help="The JWKS URL `apply` printed (http(s))."),
            vocab_option(
                "namespace",
                metavar="NS",
                help="Instead of --url: the URL of what apply deployed in NS (reads the cluster).",
            ),
            vocab_option(
                "name",
                "instance",
                aliases=name_aliases,
                default="remote-jwks-go",
                show_default=True,
                metavar="NAME",
                help="With --namespace: the --name apply used.",
            ),
            vocab_option("address", metavar="HOST", help="With --namespace: the URL's host."),
            vocab_option("kubeconfig", metavar="PATH", help="With --namespace."),
            vocab_option("context", metavar="NAME", help="With --namespace."),
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
    from ..errors import InputError

    if (url is None) == (namespace is None):
        raise InputError(
            "pass exactly one of --url (the JWKS URL) or --namespace (to look it up in the "
            f"cluster), e.g. `{example}`."
        )
    if url is not None:
        return url
    from ..checks import check_dns1123_label, check_object_name
    from ..errors import ClusterUnreachable
    from ..inspect import deployed_url

    check_dns1123_label("--namespace", str(namespace))
    check_object_name(instance)
    try:
        cluster = connect_cluster(kubeconfig, context, timeout)
        return deployed_url(cluster, str(namespace), instance, address)
    except ClusterUnreachable as exc:
        ctx = click.get_current_context(silent=True)
        exc.add_note(_OFFLINE_HINTS.get(ctx.info_name if ctx else None, _OFFLINE_HINTS[None]))
        raise


# What works without a cluster, said when -n could not reach one.
_OFFLINE_HINTS: dict[str | None, str] = {
    "gateway": "Without a cluster, --url URL or --url-from service -n NS (the in-cluster URL "
    "the gateway will use) work offline.",
    "verify": "Without a cluster, --url URL checks any JWKS server (e.g. `jwksdeploy serve`), "
    "and --jwks FILE --token TOKEN verifies a token offline.",
    None: "Without a cluster, pass --url URL instead of --namespace.",
}


def connect_cluster(kubeconfig: str | None, context: str | None, request_timeout: float) -> Any:
    """The cluster of --kubeconfig/--context, for every command that reaches one: says once,
    on stderr, when the kubeconfig turns off TLS verification."""
    from ..errors import InputError
    from ..kube.client import connect

    if not request_timeout > 0:  # urllib3 refuses a zero timeout only at the first watch
        raise InputError(
            f"--request-timeout {request_timeout:g}s is not more than zero: a request needs "
            "time to be answered. Pass a duration like 30s."
        )
    cluster = connect(kubeconfig, context, request_timeout)
    command = click.get_current_context(silent=True)
    if command is not None:
        command.call_on_close(cluster.close)
    if cluster.insecure:
        echo(
            f"warning: the kubeconfig sets insecure-skip-tls-verify for {cluster.server}: its "
            "certificate is not checked, so anyone on the network path can pose as the API "
            "server and read the credentials sent to it. Set certificate-authority instead.",
            err=True,
        )
    return cluster


DRY_RUN_CHOICES = ("none", "client", "server")


def dry_run_option(help: str) -> Callable[[F], F]:
    """`--dry-run[=none|client|server]`, kubectl's; a bare `--dry-run` is `server`."""
    return vocab_option(
        "dry-run",
        type=click.Choice(DRY_RUN_CHOICES),
        is_flag=False,
        flag_value="server",
        default="none",
        show_default=True,
        help=help,
    )


def field_manager_option(command: F) -> F:
    return vocab_option(
        "field-manager",
        default="jwksdeploy",
        show_default=True,
        metavar="NAME",
        help="Field manager of the server-side apply (kubectl's --field-manager).",
    )(command)


def check_field_manager(value: str) -> str:
    """The API server takes a field manager of 1-128 printable characters."""
    from ..errors import InputError

    if not value or len(value) > 128 or not value.isprintable():
        raise InputError(
            f"--field-manager {value!r} must be 1-128 printable characters, e.g. jwksdeploy."
        )
    return value


def apply_set_values(ctx: click.Context, params: dict[str, Any], sets: Sequence[str]) -> None:
    """Helm's `--set name=value`: as if `--name value` were given, converted and checked by
    that flag's own type; repeatable flags collect every value."""
    from click.core import ParameterSource

    from ..errors import InputError

    by_flag = {
        opt: param
        for param in ctx.command.params
        if isinstance(param, click.Option)
        for opt in [*param.opts, *param.secondary_opts]
        if opt.startswith("--") and param.name not in ("set", "values_file")
    }
    for item in (one for given in sets for one in split_set(given)):
        key, sep, value = item.partition("=")
        flag = "--" + key.strip().replace("_", "-")
        param = by_flag.get(flag)
        if not sep or param is None or param.name is None:
            names = sorted({o[2:] for o in by_flag if not o.startswith("--no-")})
            raise InputError(
                f"--set {item!r}: expected NAME=VALUE with NAME a long flag of this command "
                f"({', '.join(names)})."
                + (nearest_hint(key.strip().replace("_", "-"), names) if sep else "")
            )
        if param.name not in params:
            continue
        if param.is_flag and not param.multiple:
            lowered = value.strip().lower()
            if lowered not in ("true", "false"):
                raise InputError(f"--set {key}={value}: {flag} takes true or false.")
            converted: Any = (lowered == "true") != (flag in param.secondary_opts)
            if param.flag_value is not True and param.flag_value is not None and converted:
                converted = param.flag_value
        else:
            try:
                converted = param.type_cast_value(ctx, (value,) if param.multiple else value)
            except click.BadParameter as exc:
                raise InputError(f"--set {key}={value}: {exc.message}") from None
        if param.multiple:
            params[param.name] = (*(params[param.name] or ()), *converted)
            continue
        if ctx.get_parameter_source(param.name) == ParameterSource.COMMANDLINE:
            raise InputError(
                f"{flag} was given both as a flag and as --set {key}=...; keep one of the two."
            )
        params[param.name] = converted


def split_set(given: str) -> list[str]:
    """One --set as Helm reads it: `a=1,b=2` is two values; `\\,` is a comma in a value."""
    parts = re.split(r"(?<!\\),", given)
    return [part.replace("\\,", ",") for part in parts]


def nearest_hint(name: str, known: Sequence[str]) -> str:
    """` Did you mean 'replicas'?` for a typo'd name, else nothing."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def cluster_options(command: F) -> F:
    """How to reach the cluster, shared by apply, url, status, delete, diff and rotate."""
    options = [
        vocab_option(
            "kubeconfig",
            metavar="PATH",
            help="Kubeconfig file.  [default: $KUBECONFIG (merged), ~/.kube/config, "
            "else in-cluster]",
        ),
        vocab_option("context", metavar="NAME", help="Kubeconfig context to use."),
        vocab_option(
            "request-timeout",
            default="30s",
            show_default=True,
            metavar="DURATION",
            help="Timeout of each API request.",
        ),
    ]
    return stack_options(command, options)


def connect_from_flags(kubeconfig: str | None, context: str | None, request_timeout: str) -> Any:
    from ..durations import parse_duration

    seconds = parse_duration(request_timeout, "--request-timeout")
    return connect_cluster(kubeconfig, context, seconds)
