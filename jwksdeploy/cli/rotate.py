"""`jwksdeploy rotate start|promote|finish|status|run|revoke`: parse flags, load the facts
(key files, the cluster's record), call the pure state machine in rotation.py, write and
print. Cluster I/O is in rotate_cluster.py.

JWKSDEPLOY_NOW (RFC 3339 or epoch seconds) replaces the clock of these commands and of
`token`'s phase check: a testing aid, so tests move time without sleeping.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import click

from .. import rotation
from ..errors import InputError
from ..errors import TooEarly as TooEarlyError
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


def clock() -> float:
    """The time: JWKSDEPLOY_NOW when set (a testing aid), else the system clock."""
    text = os.environ.get("JWKSDEPLOY_NOW")
    if not text:
        return time.time()
    try:
        seconds = float(text)
    except ValueError:
        value = rotation.parse_when(text, "JWKSDEPLOY_NOW")
        assert value is not None
        return value
    # nan compares false (nothing is ever due) and inf true (every step due at once)
    if not 0 <= seconds < rotation.END_OF_CALENDAR:  # what `when` can print
        raise InputError(f"JWKSDEPLOY_NOW {text!r} is not a time between 1970 and 9999.")
    return seconds


def mirror_path(private_path: str) -> str:
    """The local copy of the rotation state, next to the private set."""
    stem = private_path[: -len(".json")] if private_path.endswith(".json") else private_path
    return f"{stem}.rotation.json"


def read_mirror(path: str) -> tuple[rotation.State, str | None] | None:
    """(state, pendingFrom) of the local mirror, or None when there is none."""
    from ..files import read_input
    from ..strictjson import StrictJsonError, parse

    if not os.path.lexists(path):
        return None
    data = read_input(path, "rotation state")
    try:
        document = parse(data.decode("utf-8"))
    except (StrictJsonError, UnicodeDecodeError):
        raise InputError(
            f"the rotation state {path!r} is not JSON. Restore or remove it."
        ) from None
    if not isinstance(document, dict) or "state" not in document:
        raise InputError(f"the rotation state {path!r} has no `state`. Restore or remove it.")
    pending = document.get("pendingFrom")
    state = rotation.from_json(json.dumps(document["state"]), repr(path))
    return state, pending if isinstance(pending, str) else None


def mirror_text(state: rotation.State, pending_from: str | None) -> str:
    document = {"state": json.loads(rotation.to_json(state)), "pendingFrom": pending_from}
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def fingerprint(text: str | None) -> str:
    return hashlib.sha256((text or "").encode()).hexdigest()


def _kids(document: dict[str, Any]) -> list[str]:
    return list(rotation.keys_by_kid(document))


@dataclass
class Session:
    """The facts of one rotate command, loaded and checked."""

    now: float
    private_path: str
    public_path: str
    private: dict[str, Any]
    state: rotation.State
    local: bool
    namespace: str
    name: str
    settings: Any = None
    cluster: Any = None
    live_state_text: str | None = None
    pending: bool = False  # the local files hold a step the cluster has not got yet
    notes: list[str] = field(default_factory=list)

    @property
    def configmap(self) -> str:
        return str(self.settings.configmap_name)

    @property
    def mirror(self) -> str:
        return mirror_path(self.private_path)


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


@dataclass(frozen=True)
class Request:
    """The flags every rotate command shares, read but not yet checked against the files."""

    private_path: str
    public_path: str
    local: bool
    cache_window: str | None
    max_token_ttl: str | None
    settings: Any = None
    connect: Callable[[], Any] | None = None


def _request(params: dict[str, Any]) -> Request:
    """Pop the shared flags; settings (to render the set as apply does) unless --local."""
    from .common import connect_from_flags as _connect
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
    return Request(
        private_path,
        public_path,
        local,
        cache_window,
        max_ttl,
        settings,
        None if local else (lambda: _connect(kubeconfig, context, request_timeout)),
    )


def _load(request: Request) -> Session:
    """Read and check the key files, the local record and (unless --local) the cluster's.
    Call it holding the key files' lock."""
    from ..files import read_input
    from ..keys import parse_key_file
    from ..settings import parse_duration
    from .keys import _refuse_out_of_step

    now = clock()
    private_path, public_path = request.private_path, request.public_path
    source = f"private key set {private_path!r}"
    if not os.path.lexists(private_path):
        raise InputError(
            f"the private key set {private_path!r} is missing. Rotation keeps the public and "
            "private sets in step: pass --private with the file `jwksdeploy jwks generate` wrote."
        )
    private = parse_key_file(read_input(private_path, "private key set"), source)
    kids = _kids(private)
    public = parse_key_file(read_input(public_path, "JWKS file"), f"JWKS file {public_path!r}")
    _refuse_out_of_step(private, public, private_path, public_path)
    mirror = read_mirror(mirror_path(private_path))
    settings = request.settings
    session = Session(
        now,
        private_path,
        public_path,
        private,
        rotation.State(()),
        request.local,
        settings.namespaces[0] if settings else "",
        settings.name if settings else "",
        settings,
    )
    state: rotation.State | None = None
    windows: dict[str, rotation.GatewayWindow] = {}
    windows_where = ""
    if request.connect is None:
        state = mirror[0] if mirror else None
    else:
        from ..rotate_cluster import read_live

        session.cluster = request.connect()
        live = read_live(session.cluster, session.namespace, session.configmap, session.name)
        session.live_state_text = live.state_text
        where = f"ConfigMap {session.configmap!r} in {session.namespace!r}"
        windows = rotation.parse_gateway_windows(live.gateways_text, where)
        windows_where = where
        live_state = (
            rotation.from_json(live.state_text, where) if live.state_text is not None else None
        )
        live_kids = _live_kids(live.jwks_text, where)
        if live_kids != kids:
            ahead = mirror is not None and mirror[1] == fingerprint(live.state_text)
            if not ahead or mirror is None or [k.kid for k in mirror[0].keys] != kids:
                raise InputError(
                    f"the cluster and the local files disagree: {where} serves "
                    f"{', '.join(map(json.dumps, live_kids)) or 'no keys'}, {private_path!r} "
                    f"holds {', '.join(map(json.dumps, kids))}. Nothing was changed. If another "
                    "machine rotated, fetch its key files; if the cluster was changed by hand, "
                    f"apply the local set (`jwksdeploy apply -n {session.namespace} --jwks "
                    f"{public_path}`) and run again."
                )
            session.pending = True
            state = mirror[0]
        elif live_state is not None:
            state = live_state
            if mirror is not None and mirror[0] != live_state:
                session.notes.append(
                    f"the local record {session.mirror} differs from the cluster's; the cluster "
                    "wins (the next step rewrites the local copy)"
                )
        elif mirror is not None:
            state = mirror[0]
    if state is None:
        state = rotation.initial_state(
            kids, now, rotation.DEFAULT_CACHE_WINDOW, rotation.DEFAULT_MAX_TOKEN_TTL
        )
    flag = (
        parse_duration(request.cache_window, "--cache-window")
        if request.cache_window is not None
        else None
    )
    state = rotation.resolve_cache_window(state, flag, windows, windows_where)
    if request.max_token_ttl is not None:
        seconds = parse_duration(request.max_token_ttl, "--max-token-ttl")
        state = replace(state, max_token_ttl=seconds)
    rotation.reconcile(state, kids, repr(session.mirror))
    rotation.check_clock(state, now, "the rotation state")
    session.state = state
    return session


@contextlib.contextmanager
def _locked(request: Request) -> Iterator[None]:
    """The key files' lock, held while they are read, decided on and written."""
    from ..writes import key_files_locked

    paths = [request.private_path, request.public_path, mirror_path(request.private_path)]
    with key_files_locked(paths):
        yield


def _live_kids(text: str | None, where: str) -> list[str]:
    from ..jwks import parse_jwks

    if text is None:
        return []
    return _kids(parse_jwks(text.encode(), where))


def _write_local(session: Session, step: rotation.Step, pending_from: str | None) -> None:
    from ..keys import public_set, to_json
    from ..writes import OutputFile, write_files

    public = public_set(step.private, include_symmetric=True)
    symmetric = any(k.get("kty") == "oct" for k in public["keys"])
    # The private set first (the source of truth), the public set, derived from it, last:
    # killed in between, the next step refuses the sets as out of step, naming the repair.
    outputs = [
        OutputFile(session.private_path, to_json(step.private), True, True),
        OutputFile(session.mirror, mirror_text(step.state, pending_from), False, True),
        OutputFile(session.public_path, to_json(public), symmetric, True),
    ]
    write_files(outputs, force=False)


def _execute(
    session: Session,
    step: rotation.Step,
    dry_run: str,
    timeout: str,
    secret: str | None,
    secret_namespace: str | None,
) -> rotation.Step:
    """Write the files, publish and record on the cluster, wait for the rollout when the set
    changed, and record when it was served."""
    from ..keys import public_set, to_json
    from ..rotate_cluster import publish, record_state, wait_served, write_secret
    from ..settings import parse_duration

    wait_seconds = parse_duration(timeout, "--timeout")
    if dry_run == "client":
        return step
    server_dry = dry_run == "server"
    if session.local:
        if server_dry:
            return step
        if step.name == "start" or (step.publish and session.pending):
            step = replace(step, state=rotation.mark_published(step.state, session.now))
        _write_local(session, step, None)
        return step
    pending_from = fingerprint(session.live_state_text)
    if not server_dry:
        _write_local(session, step, pending_from)
    cluster = session.cluster
    jwks = to_json(public_set(step.private, include_symmetric=True)).encode()

    def on_applied(obj: Any) -> None:
        suffix = " (dry run)" if server_dry else ""
        echo(f"{obj.kind.lower()}/{obj.name} {obj.outcome}{suffix}", err=True)

    if step.publish:
        for warning in publish(cluster, session.settings, jwks, server_dry, on_applied):
            echo(warning, err=True)
    # Recorded before the wait, so a rollout that times out leaves a record that matches
    # the served set: `rotate start` again waits for the same key.
    state_text = rotation.to_json(step.state)
    record_state(cluster, session.namespace, session.configmap, state_text, server_dry)
    if secret is not None and step.name in ("promote", "revoke"):
        write_secret(
            cluster,
            secret_namespace or session.namespace,
            secret,
            step.private,
            step.state.active.kid,
            server_dry,
        )
        echo(f"secret/{secret} configured{' (dry run)' if server_dry else ''}", err=True)
    if server_dry:
        return step
    if step.publish:
        wait_served(cluster, session.namespace, session.name, wait_seconds)
        served = rotation.mark_published(step.state, clock())
        if served != step.state:
            step = replace(step, state=served)
            record_state(
                cluster, session.namespace, session.configmap, rotation.to_json(served), False
            )
    _write_local(session, step, None)
    return step


def _resume(session: Session) -> rotation.Step:
    """The local files hold a step the cluster did not get (an interrupted run): publish it."""
    return rotation.Step(
        "resume",
        session.state,
        session.private,
        "published the step an earlier run wrote locally but did not finish on the cluster",
        publish=True,
    )


def _report(session: Session, step: rotation.Step, output: str, dry_run: str) -> None:
    for note in session.notes:
        echo(f"note: {note}", err=True)
    upcoming = rotation.due(step.state)
    would = "would have " if dry_run != "none" else ""
    if output == "json":
        echo(
            json.dumps(
                {
                    "step": step.name,
                    "dryRun": dry_run,
                    "summary": step.summary,
                    "notes": step.notes,
                    "state": json.loads(rotation.to_json(step.state)),
                    "next": _due_json(upcoming),
                },
                indent=2,
            )
        )
        return
    echo(f"{step.name}: {would}{step.summary}")
    for note in step.notes:
        echo(f"  {note}")
    if dry_run == "none":
        echo(f"next: {_due_text(upcoming)}")


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


def _step_command(
    name: str, decide: Callable[[Session, dict[str, Any]], rotation.Step]
) -> Callable[..., None]:
    def command(**params: Any) -> None:
        dry_run = params.pop("dry_run")
        timeout = params.pop("timeout")
        secret = params.pop("private_secret")
        secret_namespace = params.pop("private_secret_namespace")
        output = params.pop("output")
        extra = {key: params.pop(key) for key in list(params) if key in _EXTRA[name]}
        request = _request(params)
        with _locked(request):
            session = _load(request)
            step = _resume(session) if session.pending else decide(session, extra)
            step = _execute(session, step, dry_run, timeout, secret, secret_namespace)
        _report(session, step, output, dry_run)

    command.__name__ = name
    return command


_EXTRA: dict[str, set[str]] = {
    "start": {"kty", "size", "crv", "alg", "kid", "kid_from"},
    "promote": set(),
    "finish": set(),
    "revoke": {"revoked_kid", "kid"},
    "run": {"rotate_after"},
}


def _new_key(session: Session, extra: dict[str, Any]) -> dict[str, Any]:
    from ..keys import generate, key_spec, spec_like

    if extra.get("kty") or extra.get("size") or extra.get("crv") or extra.get("alg"):
        spec = key_spec(extra.get("kty"), extra.get("size"), extra.get("crv"), extra.get("alg"))
    else:
        active = rotation.keys_by_kid(session.private)[session.state.active.kid]
        spec = spec_like(active)
    return generate(spec, extra.get("kid"))


def _start(session: Session, extra: dict[str, Any]) -> rotation.Step:
    if session.state.phase(rotation.NEXT):
        # Start again after a rollout that was not seen complete: wait for it, record it.
        nxt = session.state.phase(rotation.NEXT)[0]
        if nxt.published is None:
            return rotation.Step(
                "start",
                session.state,
                session.private,
                f"kid {json.dumps(nxt.kid)} is next; waited for its rollout",
                publish=True,
            )
    return rotation.start(session.state, session.private, _new_key(session, extra), session.now)


def _promote(session: Session, extra: dict[str, Any]) -> rotation.Step:
    return rotation.promote(session.state, session.private, session.now)


def _finish(session: Session, extra: dict[str, Any]) -> rotation.Step:
    return rotation.finish(session.state, session.private, session.now)


def _revoked_kid(argument: str | None, flag: str | None) -> str:
    """KID as an argument or --kid, exactly one. One RFC 7638 thumbprint in 64 starts with
    '-', which the shell line would read as an option: `--kid -4Xy...` always works."""
    if (argument is None) == (flag is None):
        raise InputError(
            "name the key to revoke once: `rotate revoke KID`, or `rotate revoke --kid KID` "
            "for a kid that starts with '-'."
        )
    return str(argument if argument is not None else flag)


def _revoke(session: Session, extra: dict[str, Any]) -> rotation.Step:
    from ..keys import generate, spec_like

    kid = _revoked_kid(extra.get("revoked_kid"), extra.get("kid"))
    replacement = None
    record = session.state.record(kid)
    if (
        record is not None
        and record.phase == rotation.ACTIVE
        and not session.state.phase(rotation.NEXT)
    ):
        active = rotation.keys_by_kid(session.private)[kid]
        replacement = generate(spec_like(active))
    return rotation.revoke(session.state, session.private, kid, session.now, replacement)


def _run(session: Session, extra: dict[str, Any]) -> rotation.Step:
    from ..settings import parse_duration

    after = extra.get("rotate_after")
    seconds = parse_duration(after, "--rotate-after") if after else None
    upcoming = rotation.due(session.state, seconds)
    if upcoming.step is None or upcoming.at is None or upcoming.at > session.now:
        raise _NothingDue(upcoming)
    steps = {"start": _start, "promote": _promote, "finish": _finish}
    return steps[upcoming.step](session, {})


class _NothingDue(Exception):
    def __init__(self, upcoming: rotation.Due) -> None:
        self.upcoming = upcoming


def _register(
    name: str,
    help_text: str,
    decide: Callable[[Session, dict[str, Any]], rotation.Step],
    extra: list[Callable[[Any], Any]] | None = None,
) -> None:
    command = _step_command(name, decide)
    command.__doc__ = help_text
    decorated = step_options(stack_options(command, extra or []))
    rotate_group.command(name)(decorated)


_register(
    "start",
    "Make a key (the active key's kind unless told), publish it as `next`, apply (the pods "
    "roll) and record when every ready pod serves it.",
    _start,
    [key_type_options],
)
_register(
    "promote",
    "Make the `next` key the signing key, once it has been served for the cache window; the "
    "old one is retired.",
    _promote,
)
_register(
    "finish",
    "Remove retired keys once promotion + --max-token-ttl + the cache window has passed.",
    _finish,
)
_register(
    "revoke",
    "Emergency: remove KID now, promote a replacement at once, and print how long gateways "
    "may still trust KID.",
    _revoke,
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
    command = _step_command("run", _run)
    try:
        command(**params)
    except _NothingDue as nothing:
        if params.get("output") == "json":
            echo(
                json.dumps({"step": None, "next": _due_json(nothing.upcoming)}, indent=2),
                data="json",
            )
        else:
            echo(f"nothing due; next: {_due_text(nothing.upcoming)}")


@rotate_group.command("status")
@shared_options
@vocab_option("output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def status_command(output: str, **params: Any) -> None:
    """Each kid, its phase and times, and the next step; exit 13 when a step is due now."""
    from ..errors import STEP_DUE

    request = _request(params)
    with _locked(request):
        session = _load(request)
    state = session.state
    upcoming = rotation.due(state)
    due_now = upcoming.at is not None and upcoming.at <= session.now
    where = "local files" if session.local else f"{session.namespace}/{session.name}"
    if output == "json":
        echo(
            json.dumps(
                {
                    "instance": where,
                    "now": rotation.when(session.now),
                    "pendingLocalStep": session.pending,
                    "notes": session.notes,
                    "cacheWindow": {
                        "seconds": state.cache_window,
                        "from": rotation.window_origin_text(state),
                    },
                    "state": json.loads(rotation.to_json(state)),
                    "next": _due_json(upcoming),
                    "due": due_now,
                },
                indent=2,
            )
        )
    else:
        for note in session.notes:
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
        if session.pending:
            echo("  the local files hold a step the cluster did not get: run any step")
        echo(f"next: {_due_text(upcoming)}" + (" -- due now" if due_now else ""))
    if due_now:
        click.get_current_context().exit(STEP_DUE)


def signing_kid(
    key_path: str, document: dict[str, Any], kid: str | None, allow_next: bool
) -> str | None:
    """For `token`: the kid to sign with under the rotation state kept next to key_path (the
    active one by default), or `kid` unchanged when there is no state; refusals as in
    rotation.signing_check, a warning on stderr when a next key is allowed."""
    mirror = read_mirror(mirror_path(key_path))
    if mirror is None:
        return kid
    state = mirror[0]
    kids = _kids(document)
    rotation.reconcile(state, kids, repr(mirror_path(key_path)))
    chosen = kid if kid is not None else state.active.kid
    warning = rotation.signing_check(state, chosen, clock(), allow_next)
    if warning:
        echo(warning, err=True)
    return chosen


def legacy_rotation_record(
    private_path: str,
    before: dict[str, Any],
    after: dict[str, Any],
    new_key: dict[str, Any],
) -> Any:
    """`jwks rotate` / `jwks generate --add-to` as `rotate start --local`: the new key is
    recorded `next` (published now), so `token` keeps signing with the active key; keys
    dropped by --keep must be retired keys whose tokens have expired. Returns the record's
    OutputFile, written with the two key sets."""
    from ..writes import OutputFile

    now = clock()
    path = mirror_path(private_path)
    mirror = read_mirror(path)
    kids = _kids(before)
    state = (
        mirror[0]
        if mirror
        else rotation.initial_state(
            kids, now, rotation.DEFAULT_CACHE_WINDOW, rotation.DEFAULT_MAX_TOKEN_TTL
        )
    )
    rotation.reconcile(state, kids, repr(path))
    rotation.check_clock(state, now, repr(path))
    step = rotation.start(state, before, new_key, now)
    kept = set(_kids(after))
    dropped = [k for k in step.state.keys if k.kid not in kept]
    for record in dropped:
        if record.phase != rotation.RETIRED:
            raise InputError(
                f"--keep would drop kid {json.dumps(record.kid)}, the {record.phase} key: "
                "tokens it signs would stop verifying at once. Keep it (raise --keep); "
                "`jwksdeploy rotate finish` removes retired keys once that is safe."
            )
    if dropped:
        at = rotation.finish_at(step.state)
        if at is None or at > now:
            raise TooEarlyError(
                f"--keep would drop retired kid(s) "
                f"{', '.join(json.dumps(k.kid) for k in dropped)} before tokens they signed "
                f"expire (safe at {rotation.when(at) if at else 'an unknown time'}). Raise "
                "--keep, or wait and run `jwksdeploy rotate finish --local`.",
                at,
            )
    state = replace(step.state, keys=tuple(k for k in step.state.keys if k.kid in kept))
    state = rotation.mark_published(state, now)
    return OutputFile(path, mirror_text(state, None), False, True)


def fresh_rotation_record(private_path: str, kid: str) -> Any:
    """`jwks generate` over an existing private set (--force): a rotation record left next to
    it would describe keys that are gone, so it is replaced by one for the new key."""
    from ..writes import OutputFile

    path = mirror_path(private_path)
    if not os.path.lexists(path) and not os.path.lexists(private_path):
        return None
    state = rotation.initial_state(
        [kid], clock(), rotation.DEFAULT_CACHE_WINDOW, rotation.DEFAULT_MAX_TOKEN_TTL
    )
    return OutputFile(path, mirror_text(state, None), False, True)
