"""`rotate start|promote|finish|revoke|run|status` as Options -> run() -> Result: load the
facts (rotate_session.py), let the state machine (rotation.py) decide, then write the key
files and, unless local, publish and record on the cluster (rotate_cluster.py).

`jwks rotate` and `jwks generate --add-to` are `start` on the files alone, with --keep and
another public target; there is one rotation model. No flag parsing and no printing here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from . import rotation
from .rotate_session import RotateOptions, Session, clock, fingerprint, load, locked, mirror_path
from .rotation_record import mirror_text
from .rotation_record import to_json as state_json

if TYPE_CHECKING:
    from .apply_plan import AppliedObject
    from .keys import KeySpec
    from .writes import OutputFile

STEPS = ("start", "promote", "finish", "revoke", "run")


@dataclass(frozen=True)
class StepOptions:
    """One step and how to take it; the CLI binds the step's flags to these fields."""

    step: str  # one of STEPS
    dry_run: str = "none"  # none; client: decide only; server: also send with dryRun=All
    timeout: float = 300.0  # seconds to wait for the rollout that serves a new set
    private_secret: str | None = None  # also keep this Secret (at promote and revoke)
    private_secret_namespace: str | None = None  # None: the instance's namespace
    key_spec: KeySpec | None = None  # start: what to generate; None: like the active key
    kid: str | None = None  # start: the new key's kid; revoke: the key to revoke
    rotate_after: float | None = None  # run: start once the active key is this old
    keep: int | None = None  # start: keep only the newest N keys (`jwks rotate --keep`)
    public_out: str | None = None  # local start: the public set's target ('-': the Result)
    force: bool = False  # overwrite an existing public_out


@dataclass
class Listener:
    """What the caller hears while a step changes the cluster."""

    applied: Callable[[AppliedObject], None] = lambda obj: None
    warning: Callable[[str], None] = lambda text: None
    secret: Callable[[str], None] = lambda name: None


@dataclass(frozen=True)
class StepResult:
    """What a step did (step None: `run` found nothing due) and what comes next."""

    step: rotation.Step | None
    next: rotation.Due
    notes: list[str] = field(default_factory=list)  # about the facts, not the step
    new_key: dict[str, Any] | None = None  # start: the key it made
    public_text: str | None = None  # the public set, when public_out is '-'


@dataclass(frozen=True)
class StatusResult:
    """`rotate status`: the recorded state, the next step and whether it is due now."""

    now: float
    local: bool
    namespace: str
    name: str
    pending: bool
    notes: list[str]
    state: rotation.State
    next: rotation.Due

    @property
    def due_now(self) -> bool:
        return self.next.at is not None and self.next.at <= self.now


def run(options: RotateOptions, step: StepOptions, listen: Listener | None = None) -> StepResult:
    """Load the facts, decide the step (or resume one an earlier run left half done) and
    take it, all under the key files' lock."""
    listen = listen or Listener()
    target = _public_target(options, step)
    with locked(options, *([target] if target != "-" else [])):
        session = load(options)
        if session.pending:
            decided = _resume(session)
        else:
            upcoming = _due_for(session, step)
            if upcoming is not None:
                return StepResult(None, upcoming)
            decided = _decide(session, step)
        new_key = _new_key_of(session, decided) if decided.name == "start" else None
        taken, public_text = _execute(session, decided, step, target, listen)
    return StepResult(taken, rotation.due(taken.state), session.notes, new_key, public_text)


def status(options: RotateOptions) -> StatusResult:
    with locked(options):
        session = load(options)
    return StatusResult(
        session.now,
        options.local,
        session.namespace,
        session.name,
        session.pending,
        session.notes,
        session.state,
        rotation.due(session.state),
    )


def _public_target(options: RotateOptions, step: StepOptions) -> str:
    return step.public_out if step.public_out is not None else options.public_path


def _due_for(session: Session, step: StepOptions) -> rotation.Due | None:
    """`run`: None when a step is due now, else what comes next (nothing is done)."""
    if step.step != "run":
        return None
    upcoming = rotation.due(session.state, step.rotate_after)
    if upcoming.step is None or upcoming.at is None or upcoming.at > session.now:
        return upcoming
    return None


def _decide(session: Session, step: StepOptions) -> rotation.Step:
    name = step.step
    if name == "run":
        name = str(rotation.due(session.state, step.rotate_after).step)
        step = replace(step, key_spec=None, kid=None, keep=None)
    if name == "start":
        return _start(session, step)
    if name == "promote":
        return rotation.promote(session.state, session.private, session.now)
    if name == "finish":
        return rotation.finish(session.state, session.private, session.now)
    if name == "revoke":
        if step.kid is None:
            raise ValueError("rotate revoke needs StepOptions.kid")
        return _revoke(session, step.kid)
    raise ValueError(f"unknown rotate step {name!r}")


def _start(session: Session, step: StepOptions) -> rotation.Step:
    waiting = session.state.phase(rotation.NEXT)
    if waiting and waiting[0].published is None:
        # Start again after a rollout that was not seen complete: wait for it, record it.
        return rotation.Step(
            "start",
            session.state,
            session.private,
            f"kid {json.dumps(waiting[0].kid)} is next; waited for its rollout",
            publish=True,
        )
    new_key = _generate(session, step.key_spec, step.kid)
    started = rotation.start(session.state, session.private, new_key, session.now)
    if step.keep is not None:
        started = rotation.keep_newest(started, step.keep, session.now)
    return started


def _generate(session: Session, spec: KeySpec | None, kid: str | None = None) -> dict[str, Any]:
    from .keys import generate, spec_like

    if spec is None:
        spec = spec_like(rotation.keys_by_kid(session.private)[session.state.active.kid])
    return generate(spec, kid)


def _new_key_of(session: Session, step: rotation.Step) -> dict[str, Any] | None:
    """The key a start added (None when it only waited for an earlier one)."""
    before = {key.get("kid") for key in session.private["keys"]}
    added = [key for key in step.private["keys"] if key.get("kid") not in before]
    return added[0] if added else None


def _revoke(session: Session, kid: str) -> rotation.Step:
    replacement = None
    record = session.state.record(kid)
    if (
        record is not None
        and record.phase == rotation.ACTIVE
        and not session.state.phase(rotation.NEXT)
    ):
        replacement = _generate(session, None)
    return rotation.revoke(session.state, session.private, kid, session.now, replacement)


def _resume(session: Session) -> rotation.Step:
    """The local files hold a step the cluster did not get (an interrupted run): publish it."""
    return rotation.Step(
        "resume",
        session.state,
        session.private,
        "published the step an earlier run wrote locally but did not finish on the cluster",
        publish=True,
    )


def _execute(
    session: Session,
    step: rotation.Step,
    options: StepOptions,
    target: str,
    listen: Listener,
) -> tuple[rotation.Step, str | None]:
    """Write the files, publish and record on the cluster, wait for the rollout when the set
    changed, and record when it was served. Returns the step taken and, when the public set
    goes to '-', its text."""
    from .keys import public_set, to_json

    if options.dry_run == "client":
        return step, None
    server_dry = options.dry_run == "server"
    cluster = session.cluster
    if cluster is None:
        if server_dry:
            return step, None
        if step.name == "start" or (step.publish and session.pending):
            step = replace(step, state=rotation.mark_published(step.state, session.now))
        return step, _write_local(session, step, None, target, options.force)
    from .rotate_cluster import publish, record_state, wait_served, write_secret

    pending_from = fingerprint(session.live_state_text)
    if not server_dry:
        _write_local(session, step, pending_from, target, options.force)
    jwks = to_json(public_set(step.private, include_symmetric=True)).encode()
    settings = session.options.settings
    if step.publish:
        for warning in publish(cluster, settings, jwks, server_dry, listen.applied):
            listen.warning(warning)
    # Recorded before the wait, so a rollout that times out leaves a record that matches
    # the served set: `rotate start` again waits for the same key.
    state_text = state_json(step.state)
    record_state(cluster, session.namespace, session.configmap, state_text, server_dry)
    secret = options.private_secret
    if secret is not None and step.name in ("promote", "revoke"):
        write_secret(
            cluster,
            options.private_secret_namespace or session.namespace,
            secret,
            step.private,
            step.state.active.kid,
            server_dry,
        )
        listen.secret(secret)
    if server_dry:
        return step, None
    if step.publish:
        wait_served(cluster, session.namespace, session.name, options.timeout)
        served = rotation.mark_published(step.state, clock())
        if served != step.state:
            step = replace(step, state=served)
            record_state(cluster, session.namespace, session.configmap, state_json(served), False)
    _write_local(session, step, None, target, options.force)
    return step, None


def _write_local(
    session: Session,
    step: rotation.Step,
    pending_from: str | None,
    target: str,
    force: bool,
) -> str | None:
    """The private set first (the source of truth), the record, and the public set, derived
    from it, last: killed in between, the next step refuses the sets as out of step, naming
    the repair. The public set beside the private one is always updated with it (a copy
    elsewhere, or on stdout, is extra: the pair never goes out of step). Returns the public
    set's text when `target` is '-'."""
    from .keys import public_set, to_json
    from .writes import OutputFile, write_files

    public = public_set(step.private, include_symmetric=True)
    symmetric = any(k.get("kty") == "oct" for k in public["keys"])
    options = session.options
    outputs = [
        OutputFile(options.private_path, to_json(step.private), True, True),
        OutputFile(session.mirror, mirror_text(step.state, pending_from), False, True),
    ]
    if target not in ("-", options.public_path):
        outputs.append(OutputFile(target, to_json(public), symmetric, False))
    outputs.append(OutputFile(options.public_path, to_json(public), symmetric, True))
    write_files(outputs, force=force)
    return to_json(public) if target == "-" else None


def fresh_rotation_record(private_path: str, kid: str) -> OutputFile | None:
    """`jwks generate` over an existing private set (--force): a rotation record left next to
    it would describe keys that are gone, so it is replaced by one for the new key."""
    import os

    from .writes import OutputFile

    path = mirror_path(private_path)
    if not os.path.lexists(path) and not os.path.lexists(private_path):
        return None
    state = rotation.initial_state(
        [kid], clock(), rotation.DEFAULT_CACHE_WINDOW, rotation.DEFAULT_MAX_TOKEN_TTL
    )
    return OutputFile(path, mirror_text(state, None), False, True)
