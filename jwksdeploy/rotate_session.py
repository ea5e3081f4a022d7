"""The facts a rotate step decides on: the key files (in step), the local record next to them
and, unless local, the cluster's record; read and checked under the key files' lock.

Also the rotation clock and `token`'s choice of signing kid, which read the same record.
JWKSDEPLOY_NOW (RFC 3339 or epoch seconds) replaces the clock of the rotate commands and of
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
from typing import TYPE_CHECKING, Any

from . import rotation, rotation_record
from .errors import InputError

if TYPE_CHECKING:
    from .kube.client import Cluster
    from .settings import Settings


def clock() -> float:
    """The time: JWKSDEPLOY_NOW when set (a testing aid), else the system clock."""
    text = os.environ.get("JWKSDEPLOY_NOW")
    if not text:
        return time.time()
    try:
        seconds = float(text)
    except ValueError:
        value = rotation_record.parse_when(text, "JWKSDEPLOY_NOW")
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
    from .files import read_input

    if not os.path.lexists(path):
        return None
    return rotation_record.parse_mirror(read_input(path, "rotation state"), path)


def fingerprint(text: str | None) -> str:
    """Names a cluster record in the mirror's pendingFrom."""
    return hashlib.sha256((text or "").encode()).hexdigest()


def kids_of(document: dict[str, Any]) -> list[str]:
    return list(rotation.keys_by_kid(document))


@dataclass(frozen=True)
class RotateOptions:
    """Which instance and key files every rotate step works on; the CLI binds its flags here."""

    private_path: str
    public_path: str
    settings: Settings | None = None  # the instance, rendered as apply does; None: files only
    connect: Callable[[], Cluster] | None = None  # None: --local, no cluster read or changed
    cache_window: float | None = None  # seconds; None: the recorded one
    max_token_ttl: float | None = None

    @property
    def local(self) -> bool:
        return self.connect is None


@dataclass
class Session:
    """The facts of one rotate command, loaded and checked."""

    now: float
    options: RotateOptions
    private: dict[str, Any]
    state: rotation.State
    cluster: Cluster | None = None
    live_state_text: str | None = None
    pending: bool = False  # the local files hold a step the cluster has not got yet
    notes: list[str] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        settings = self.options.settings
        return settings.namespaces[0] if settings is not None else ""

    @property
    def name(self) -> str:
        settings = self.options.settings
        return settings.name if settings is not None else ""

    @property
    def configmap(self) -> str:
        assert self.options.settings is not None
        return str(self.options.settings.configmap_name)

    @property
    def mirror(self) -> str:
        return mirror_path(self.options.private_path)


@contextlib.contextmanager
def locked(options: RotateOptions, *more: str) -> Iterator[None]:
    """The key files' lock, held while they are read, decided on and written."""
    from .writes import key_files_locked

    paths = [options.private_path, options.public_path, mirror_path(options.private_path)]
    with key_files_locked([*paths, *more]):
        yield


def load(options: RotateOptions) -> Session:
    """Read and check the key files, the local record and (unless local) the cluster's.
    Call it holding the key files' lock."""
    from .files import read_input
    from .keys import parse_key_file, refuse_out_of_step

    now = clock()
    private_path, public_path = options.private_path, options.public_path
    if not os.path.lexists(private_path):
        raise InputError(
            f"the private key set {private_path!r} is missing. Rotation keeps the public and "
            "private sets in step: pass --private with the file `jwksdeploy jwks generate` wrote."
        )
    source = f"private key set {private_path!r}"
    private = parse_key_file(read_input(private_path, "private key set"), source)
    kids = kids_of(private)
    public = parse_key_file(read_input(public_path, "JWKS file"), f"JWKS file {public_path!r}")
    refuse_out_of_step(private, public, private_path, public_path)
    mirror = read_mirror(mirror_path(private_path))
    session = Session(now, options, private, rotation.State(()))
    state: rotation.State | None = None
    windows: dict[str, rotation.GatewayWindow] = {}
    windows_where = ""
    if options.connect is None:
        state = mirror[0] if mirror else None
    else:
        state, windows, windows_where = _cluster_facts(session, options.connect, mirror, kids)
    if state is None:
        state = rotation.initial_state(
            kids, now, rotation.DEFAULT_CACHE_WINDOW, rotation.DEFAULT_MAX_TOKEN_TTL
        )
    state = rotation.resolve_cache_window(state, options.cache_window, windows, windows_where)
    if options.max_token_ttl is not None:
        state = replace(state, max_token_ttl=options.max_token_ttl)
    rotation.reconcile(state, kids, repr(session.mirror))
    rotation.check_clock(state, now, "the rotation state")
    session.state = state
    return session


def _cluster_facts(
    session: Session,
    connect: Callable[[], Cluster],
    mirror: tuple[rotation.State, str | None] | None,
    kids: list[str],
) -> tuple[rotation.State | None, dict[str, rotation.GatewayWindow], str]:
    """The cluster's record, the gateways' windows and where they are, checked against the
    files: the cluster wins, unless the mirror holds a step started from its very record."""
    from .rotate_cluster import read_live

    session.cluster = connect()
    live = read_live(session.cluster, session.namespace, session.configmap, session.name)
    session.live_state_text = live.state_text
    where = f"ConfigMap {session.configmap!r} in {session.namespace!r}"
    windows = rotation_record.parse_gateway_windows(live.gateways_text, where)
    live_state = (
        rotation_record.from_json(live.state_text, where) if live.state_text is not None else None
    )
    live_kids = _live_kids(live.jwks_text, where)
    if live_kids != kids:
        ahead = mirror is not None and mirror[1] == fingerprint(live.state_text)
        if not ahead or mirror is None or [k.kid for k in mirror[0].keys] != kids:
            options = session.options
            raise InputError(
                f"the cluster and the local files disagree: {where} serves "
                f"{', '.join(map(json.dumps, live_kids)) or 'no keys'}, "
                f"{options.private_path!r} holds {', '.join(map(json.dumps, kids))}. Nothing "
                "was changed. If another machine rotated, fetch its key files; if the cluster "
                f"was changed by hand, apply the local set (`jwksdeploy apply -n "
                f"{session.namespace} --jwks {options.public_path}`) and run again."
            )
        session.pending = True
        return mirror[0], windows, where
    if live_state is not None:
        if mirror is not None and mirror[0] != live_state:
            session.notes.append(
                f"the local record {session.mirror} differs from the cluster's; the cluster "
                "wins (the next step rewrites the local copy)"
            )
        return live_state, windows, where
    return (mirror[0] if mirror is not None else None), windows, where


def _live_kids(text: str | None, where: str) -> list[str]:
    from .jwks import parse_jwks

    if text is None:
        return []
    return kids_of(parse_jwks(text.encode(), where))


def signing_kid(
    key_path: str, document: dict[str, Any], kid: str | None, allow_next: bool
) -> tuple[str | None, str | None]:
    """For `token`: (the kid to sign with, a warning or None) under the rotation state kept
    next to key_path: the active kid by default, `kid` unchanged when there is no state;
    refusals as in rotation.signing_check, a warning when a next key is allowed."""
    mirror = read_mirror(mirror_path(key_path))
    if mirror is None:
        return kid, None
    state = mirror[0]
    rotation.reconcile(state, kids_of(document), repr(mirror_path(key_path)))
    chosen = kid if kid is not None else state.active.kid
    return chosen, rotation.signing_check(state, chosen, clock(), allow_next)
