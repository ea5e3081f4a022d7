"""`jwksdeploy rotate start|promote|finish|status|run|revoke`: bind the flags to
rotate.RotateOptions and rotate.StepOptions, call rotate.run() or rotate.status(), print.

JWKSDEPLOY_NOW (RFC 3339 or epoch seconds) replaces the clock of these commands and of
`token`'s phase check: a testing aid, so tests move time without sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from .. import rotation
from ..errors import InputError
from ..rotation_record import to_json as state_json
from .common import (
    DEFAULT_PRIVATE,
    cluster_options,
    dry_run_option,
    echo,
    stack_options,
    vocab_option,
)
from .examples import EPILOGS
from .keys import key_type_options
from .render import render_options

if TYPE_CHECKING:
    from ..rotate import StepOptions, StepResult
    from ..rotate_session import RotateOptions


def shared_options(command: Any) -> Any:
    """Which instance and key files: render's flags (to publish the set the way apply does),
    the cluster's, and the rotation's own."""
    options = [
        vocab_option(
            "private",
            "private_path",
            default=DEFAULT_PRIVATE,
            show_default=True,
            metavar="PATH",
            help="Private key set (mode 0600); its rotation state is kept next to it.",
        ),
        click.option(
            "--local",
            is_flag=True,
            help="Only the files: no cluster is read or changed, and a new key counts as "
            "published when the command runs (deploy it at once with `jwksdeploy apply`).",
        ),
        click.option(
            "--cache-window",
            metavar="DURATION",
            help="How long gateways may cache the key set.  [default: the longest one "
            "`gateway` or `apply --provider` recorded on the instance's ConfigMap, else the "
            "one of the last step, else 20m, istiod's refresh interval]",
        ),
        click.option(
            "--max-token-ttl",
            metavar="DURATION",
            help="The longest lifetime of a token the issuer signs.  [default: the recorded "
            "one, else 1h]",
        ),
    ]
    return render_options(cluster_options(stack_options(command, options)))


def step_options(command: Any) -> Any:
    options = [
        dry_run_option(
            "client: decide and print, change nothing; server (bare --dry-run): also send the "
            "objects with dryRun=All."
        ),
        vocab_option(
            "timeout",
            default="5m",
            show_default=True,
            metavar="DURATION",
            help="How long to wait for the rollout that serves a new set.",
        ),
        click.option(
            "--private-secret",
            metavar="NAME",
            help="Also keep this Secret (the active private key and its kid, for an issuer in "
            "the cluster); it changes only at promote and revoke.",
        ),
        click.option(
            "--private-secret-namespace",
            metavar="NS",
            help="The Secret's namespace.  [default: --namespace]",
        ),
        vocab_option(
            "output",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
        ),
    ]
    return shared_options(stack_options(command, options))


@click.group("rotate", epilog=EPILOGS["rotate"])
def rotate_group() -> None:
    """Rotate signing keys without an outage: start, promote, finish (or `run` from a CronJob).

    Each step refuses to run before it is safe and says when it will be."""


def _rotate_options(params: dict[str, Any]) -> RotateOptions:
    """Pop the shared flags; settings (to render the set as apply does), even with --local."""
    from ..durations import parse_duration
    from ..rotate_session import RotateOptions
    from .common import connect_from_flags
    from .render import load_render_inputs

    private_path = params.pop("private_path")
    local = params.pop("local")
    cache_window = params.pop("cache_window")
    max_ttl = params.pop("max_token_ttl")
    kubeconfig = params.pop("kubeconfig")
    context = params.pop("context")
    request_timeout = params.pop("request_timeout")
    settings, _, public_path = load_render_inputs(params, kubeconfig, context)
    if len(settings.namespaces) != 1:
        raise InputError(
            f"rotate works on one instance; got {len(settings.namespaces)} namespaces. Pass one "
            "--namespace per run."
        )
    return RotateOptions(
        private_path,
        public_path,
        settings,
        None if local else (lambda: connect_from_flags(kubeconfig, context, request_timeout)),
        parse_duration(cache_window, "--cache-window") if cache_window is not None else None,
        parse_duration(max_ttl, "--max-token-ttl") if max_ttl is not None else None,
    )


def _step_options(name: str, params: dict[str, Any]) -> StepOptions:
    """Pop the step's own flags."""
    from ..durations import parse_duration
    from ..keys import key_spec
    from ..rotate import StepOptions

    dry_run = params.pop("dry_run")
    timeout = parse_duration(params.pop("timeout"), "--timeout")
    secret = params.pop("private_secret")
    secret_namespace = params.pop("private_secret_namespace")
    extra = {key: params.pop(key) for key in list(params) if key in _EXTRA[name]}
    assert not params, f"unbound flags {sorted(params)}"
    spec = None
    if any(extra.get(flag) for flag in ("kty", "size", "crv", "alg")):
        spec = key_spec(extra.get("kty"), extra.get("size"), extra.get("crv"), extra.get("alg"))
    kid = extra.get("kid")
    if name == "revoke":
        kid = _revoked_kid(extra.get("revoked_kid"), kid)
    after = extra.get("rotate_after")
    return StepOptions(
        name,
        dry_run,
        timeout,
        secret,
        secret_namespace,
        key_spec=spec,
        kid=kid,
        rotate_after=parse_duration(after, "--rotate-after") if after else None,
    )


_STEP_FLAGS = {"dry_run", "timeout", "private_secret", "private_secret_namespace"}
_EXTRA: dict[str, set[str]] = {
    "start": {"kty", "size", "crv", "alg", "kid", "kid_from"},
    "promote": set(),
    "finish": set(),
    "revoke": {"revoked_kid", "kid"},
    "run": {"rotate_after"},
}


def _revoked_kid(argument: str | None, flag: str | None) -> str:
    """KID as an argument or --kid, exactly one. One RFC 7638 thumbprint in 64 starts with
    '-', which the shell line would read as an option: `--kid -4Xy...` always works."""
    if (argument is None) == (flag is None):
        raise InputError(
            "name the key to revoke once: `rotate revoke KID`, or `rotate revoke --kid KID` "
            "for a kid that starts with '-'."
        )
    return str(argument if argument is not None else flag)


def _step_command(name: str) -> Callable[..., None]:
    def command(**params: Any) -> None:
        from ..rotate import Listener, run

        output = params.pop("output")
        own = {key: params.pop(key) for key in list(params) if key in _STEP_FLAGS | _EXTRA[name]}
        options = _rotate_options(params)  # the rest are render's flags
        step = _step_options(name, own)
        suffix = " (dry run)" if step.dry_run == "server" else ""
        listen = Listener(
            applied=lambda obj: echo(
                f"{obj.kind.lower()}/{obj.name} {obj.outcome}{suffix}", err=True
            ),
            warning=lambda text: echo(text, err=True),
            secret=lambda secret: echo(f"secret/{secret} configured{suffix}", err=True),
        )
        result = run(options, step, listen)
        if result.step is None:
            _report_nothing_due(result, output)
        else:
            _report(result, output, step.dry_run)

    command.__name__ = name
    return command


def _report(result: StepResult, output: str, dry_run: str) -> None:
    step = result.step
    assert step is not None
    for note in result.notes:
        echo(f"note: {note}", err=True)
    would = "would have " if dry_run != "none" else ""
    if output == "json":
        echo(
            json.dumps(
                {
                    "step": step.name,
                    "dryRun": dry_run,
                    "summary": step.summary,
                    "notes": step.notes,
                    "state": json.loads(state_json(step.state)),
                    "next": _due_json(result.next),
                },
                indent=2,
            )
        )
        return
    echo(f"{step.name}: {would}{step.summary}")
    for note in step.notes:
        echo(f"  {note}")
    if dry_run == "none":
        echo(f"next: {_due_text(result.next)}")


def _report_nothing_due(result: StepResult, output: str) -> None:
    if output == "json":
        echo(json.dumps({"step": None, "next": _due_json(result.next)}, indent=2), data="json")
    else:
        echo(f"nothing due; next: {_due_text(result.next)}")


def _due_json(upcoming: rotation.Due) -> dict[str, Any]:
    return {
        "step": upcoming.step,
        "at": rotation.when(upcoming.at) if upcoming.at is not None else None,
        "reason": upcoming.reason,
    }


def _due_text(upcoming: rotation.Due) -> str:
    if upcoming.step is None:
        return upcoming.reason
    if upcoming.at is None:
        return f"{upcoming.step}: {upcoming.reason}"
    return f"{upcoming.step} at {rotation.when(upcoming.at)} ({upcoming.reason})"


def _register(
    name: str,
    help_text: str,
    extra: list[Callable[[Any], Any]] | None = None,
) -> None:
    command = _step_command(name)
    command.__doc__ = help_text
    decorated = step_options(stack_options(command, extra or []))
    rotate_group.command(name)(decorated)


_register(
    "start",
    "Make a key (the active key's kind unless told), publish it as `next`, apply (the pods "
    "roll) and record when every ready pod serves it.",
    [key_type_options],
)
_register(
    "promote",
    "Make the `next` key the signing key, once it has been served for the cache window; the "
    "old one is retired.",
)
_register(
    "finish",
    "Remove retired keys once promotion + --max-token-ttl + the cache window has passed.",
)
_register(
    "revoke",
    "Emergency: remove KID now, promote a replacement at once, and print how long gateways "
    "may still trust KID.",
    [
        click.argument("revoked_kid", metavar="[KID]", required=False),
        vocab_option(
            "kid",
            metavar="KID",
            help="The key to revoke (for a kid that starts "
            "with '-', which would read as an option).",
        ),
    ],
)


@rotate_group.command("run")
@step_options
@click.option(
    "--rotate-after",
    metavar="DURATION",
    help="Start a new rotation once the active key is this old.  [default: never start; only "
    "promote and finish]",
)
def run_command(**params: Any) -> None:
    """Do whichever step is due (at most one), else say when the next one is; for a CronJob."""
    _step_command("run")(**params)


@rotate_group.command("status")
@shared_options
@vocab_option("output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def status_command(output: str, **params: Any) -> None:
    """Each kid, its phase and times, and the next step; exit 13 when a step is due now."""
    from ..errors import STEP_DUE
    from ..rotate import status

    result = status(_rotate_options(params))
    state = result.state
    upcoming = result.next
    where = "local files" if result.local else f"{result.namespace}/{result.name}"
    if output == "json":
        echo(
            json.dumps(
                {
                    "instance": where,
                    "now": rotation.when(result.now),
                    "pendingLocalStep": result.pending,
                    "notes": result.notes,
                    "cacheWindow": {
                        "seconds": state.cache_window,
                        "from": rotation.window_origin_text(state),
                    },
                    "state": json.loads(state_json(state)),
                    "next": _due_json(upcoming),
                    "due": result.due_now,
                },
                indent=2,
            )
        )
    else:
        for note in result.notes:
            echo(f"note: {note}", err=True)
        echo(
            f"{where}: cache window {rotation.duration_text(state.cache_window)}, max "
            f"token TTL {rotation.duration_text(state.max_token_ttl)}"
        )
        echo(f"  cache window from: {rotation.window_origin_text(state)}")
        for record in state.keys:
            times = ", ".join(
                f"{name} {rotation.when(value)}"
                for name, value in (
                    ("published", record.published),
                    ("promoted", record.promoted),
                    ("retired", record.retired),
                )
                if value is not None
            )
            echo(f"  {record.kid}  {record.phase}" + (f"  ({times})" if times else ""))
        if result.pending:
            echo("  the local files hold a step the cluster did not get: run any step")
        echo(f"next: {_due_text(upcoming)}" + (" -- due now" if result.due_now else ""))
    if result.due_now:
        click.get_current_context().exit(STEP_DUE)
