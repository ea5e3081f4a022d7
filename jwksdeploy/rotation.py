"""The key rotation state machine: recorded facts and a clock in, the next state or a refusal out.

Pure: no file, socket or clock of its own. A key goes `next` (published, not signing) ->
`active` (the one signing key) -> `retired` (published so older tokens still verify) ->
removed. Each step is safe only after gateways can have refetched the key set (the cache
window) and, for removal, after every token the retired key signed has expired; a step asked
for early is refused with the time it becomes safe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from .errors import InputError, TooEarly

END_OF_CALENDAR = 253402300800  # 10000-01-01T00:00:00Z, the first time RFC 3339 cannot write

NEXT, ACTIVE, RETIRED = "next", "active", "retired"
PHASES = (NEXT, ACTIVE, RETIRED)
STATE_ANNOTATION = "rotation.jwksdeploy.io/state"
# What `gateway` / `apply --provider` emitted for this instance: per provider/name, how long
# that gateway caches the key set. On the ConfigMap's metadata only, never in the served bytes.
GATEWAYS_ANNOTATION = "rotation.jwksdeploy.io/gateways"
# istiod refreshes remote JWKS every 20 minutes by default, the slowest of the gateways' defaults.
DEFAULT_CACHE_WINDOW = 1200.0
DEFAULT_MAX_TOKEN_TTL = 3600.0  # `jwksdeploy token --ttl`'s default
# Machines disagree by a little; a recorded time further ahead than this is clock skew.
CLOCK_TOLERANCE = 60.0
# Where a state's cache window came from (State.cache_window_from): the strictest known
# default, the --cache-window flag (kept at later steps unless a longer window is recorded),
# or a text naming the gateway record.
WINDOW_DEFAULT = "default"
WINDOW_FLAG = "--cache-window"


@dataclass(frozen=True)
class KeyRecord:
    """One kid's phase and the times it reached each phase (epoch seconds; None: unknown)."""

    kid: str
    phase: str
    published: float | None = None  # the rollout serving it completed
    promoted: float | None = None
    retired: float | None = None


@dataclass(frozen=True)
class State:
    """The rotation state of one instance: a record per kid, in key-set order."""

    keys: tuple[KeyRecord, ...]
    cache_window: float = DEFAULT_CACHE_WINDOW
    max_token_ttl: float = DEFAULT_MAX_TOKEN_TTL
    cache_window_from: str = WINDOW_DEFAULT

    def phase(self, phase: str) -> list[KeyRecord]:
        return [k for k in self.keys if k.phase == phase]

    @property
    def active(self) -> KeyRecord:
        return self.phase(ACTIVE)[0]

    def record(self, kid: str) -> KeyRecord | None:
        return next((k for k in self.keys if k.kid == kid), None)

    def with_record(self, new: KeyRecord) -> State:
        return replace(self, keys=tuple(new if k.kid == new.kid else k for k in self.keys))


@dataclass(frozen=True)
class Step:
    """What a step decided: the new state, the private key set to keep, and what happened."""

    name: str
    state: State
    private: dict[str, Any]
    summary: str
    publish: bool  # the public key set changed: render and apply it (the pods roll)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Due:
    """The next step of a rotation and the earliest time it is safe (None: never by itself)."""

    step: str | None
    at: float | None
    reason: str


# --- times and the on-the-wire form ---------------------------------------------------------


def when(epoch: float) -> str:
    """RFC 3339 UTC, seconds precision: what messages show. A time past the end of 9999 (a
    clock or JWKSDEPLOY_NOW near it, plus a window) has no such form and is shown as a bound."""
    if not 0 <= epoch < END_OF_CALENDAR:  # also nan
        return "after 9999-12-31T23:59:59Z" if epoch >= END_OF_CALENDAR else "before 1970"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_when(epoch: float, name: str) -> str:
    """A time as the record stores it; refused when RFC 3339 cannot write it."""
    if not 0 <= epoch < END_OF_CALENDAR:
        raise InputError(
            f"the rotation's {name} time lies outside the years 1970-9999 that its record can "
            "hold. Set the clock (or JWKSDEPLOY_NOW) to a time inside them; nothing was changed."
        )
    return when(epoch)


def parse_when(text: Any, what: str) -> float | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise InputError(f"{what} is {json.dumps(text)}, not an RFC 3339 time. Fix the record.")
    try:
        parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise InputError(
            f"{what} is {json.dumps(text)}, not a time like 2026-01-31T12:00:00Z. Fix the record."
        ) from None
    return parsed.timestamp()


def duration_text(seconds: float) -> str:
    """1h20m, 45s: short and exact to the second."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts) or "0s"


def to_json(state: State) -> str:
    """The annotation value and the local mirror's content: compact, stable JSON."""
    document = {
        "cacheWindowSeconds": state.cache_window,
        "cacheWindowFrom": state.cache_window_from,
        "maxTokenTtlSeconds": state.max_token_ttl,
        "keys": [
            {
                "kid": k.kid,
                "phase": k.phase,
                **{
                    name: record_when(value, name)
                    for name, value in (
                        ("published", k.published),
                        ("promoted", k.promoted),
                        ("retired", k.retired),
                    )
                    if value is not None
                },
            }
            for k in state.keys
        ],
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def from_json(text: str, source: str) -> State:
    """A recorded state, checked: known phases, unique kids, exactly one active key."""
    from .strictjson import StrictJsonError, parse

    try:
        document = parse(text)
    except StrictJsonError as exc:
        raise InputError(f"the rotation state in {source} is not JSON ({exc.reason}).") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise InputError(f"the rotation state in {source} has no `keys` list. Fix or remove it.")
    records = []
    for index, item in enumerate(document["keys"]):
        if not isinstance(item, dict) or not isinstance(item.get("kid"), str):
            raise InputError(f"the rotation state in {source}: record #{index} has no kid.")
        kid = item["kid"]
        if item.get("phase") not in PHASES:
            raise InputError(
                f"the rotation state in {source}: kid {json.dumps(kid)} has phase "
                f"{json.dumps(item.get('phase'))}; a phase is next, active or retired."
            )
        times = {
            name: parse_when(item.get(name), f"{source}: kid {json.dumps(kid)}'s {name} time")
            for name in ("published", "promoted", "retired")
        }
        records.append(KeyRecord(kid, item["phase"], **times))
    windows = {}
    for name in ("cacheWindowSeconds", "maxTokenTtlSeconds"):
        value = document.get(name)
        # The flags' bound (durations.MAX_DURATION_SECONDS): a longer window overflows a date.
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not 0 <= value <= 10 * 365 * 24 * 3600
        ):
            raise InputError(
                f"the rotation state in {source}: {name} is not a number of seconds up to ten "
                "years. Fix or remove the record."
            )
        windows[name] = float(value)
    origin = document.get("cacheWindowFrom", WINDOW_DEFAULT)
    if not isinstance(origin, str) or not origin or len(origin) > 1000:
        raise InputError(f"the rotation state in {source}: cacheWindowFrom is not a short text.")
    state = State(
        tuple(records), windows["cacheWindowSeconds"], windows["maxTokenTtlSeconds"], origin
    )
    check(state, source)
    return state


def check(state: State, source: str) -> None:
    """InputError unless kids are unique and exactly one key is active."""
    kids = [k.kid for k in state.keys]
    twice = sorted({kid for kid in kids if kids.count(kid) > 1})
    if twice:
        raise InputError(f"{source} records kid {json.dumps(twice[0])} twice. Fix the record.")
    active = state.phase(ACTIVE)
    if len(active) != 1:
        listed = ", ".join(json.dumps(k.kid) for k in active) or "none"
        raise InputError(
            f"{source} has {len(active)} active keys ({listed}); exactly one key signs. Mark "
            "the others next or retired (or restore the file), then run again."
        )


def check_clock(state: State, now: float, source: str) -> None:
    """InputError when a recorded time lies ahead of the clock (skew, or a bad hand edit)."""
    for record in state.keys:
        for name in ("published", "promoted", "retired"):
            value = getattr(record, name)
            if value is not None and value > now + CLOCK_TOLERANCE:
                raise InputError(
                    f"{source} records kid {json.dumps(record.kid)} as {name} at {when(value)}, "
                    f"{duration_text(value - now)} ahead of this machine's clock ({when(now)}). "
                    "Every rotation wait is measured from those times, so nothing was changed: "
                    "fix this machine's clock (NTP), or the record if it was edited by hand."
                )


# --- the cache window gateways really use -----------------------------------------------------


@dataclass(frozen=True)
class GatewayWindow:
    """What one emitted gateway configuration lets the gateway cache: seconds, and why."""

    seconds: float
    why: str


def parse_gateway_windows(text: str | None, source: str) -> dict[str, GatewayWindow]:
    """The gateways annotation: {"PROVIDER/NAME": {"seconds": S, "why": TEXT}}, checked."""
    from .strictjson import StrictJsonError, parse

    if text is None:
        return {}
    try:
        document = parse(text)
    except StrictJsonError as exc:
        raise InputError(
            f"the gateway record {GATEWAYS_ANNOTATION} in {source} is not JSON ({exc.reason}). "
            "Remove the annotation and run `jwksdeploy gateway` or `apply --provider` again."
        ) from None
    windows: dict[str, GatewayWindow] = {}
    for key, entry in document.items() if isinstance(document, dict) else [(None, None)]:
        seconds = entry.get("seconds") if isinstance(entry, dict) else None
        why = entry.get("why") if isinstance(entry, dict) else None
        if (
            not isinstance(seconds, int | float)
            or isinstance(seconds, bool)
            or not 0 < seconds < 10**9
            or not isinstance(why, str)
            # Both end up in the state's cacheWindowFrom and in messages: short, one line.
            or not 0 < len(str(key)) <= 300
            or len(why) > 200
            or not (str(key) + why).isprintable()
        ):
            raise InputError(
                f"the gateway record {GATEWAYS_ANNOTATION} in {source} is not a map of "
                '"PROVIDER/NAME" to {"seconds": N, "why": TEXT}. Remove the annotation and '
                "run `jwksdeploy gateway` or `apply --provider` again."
            )
        windows[str(key)] = GatewayWindow(float(seconds), why)
    return windows


def gateway_windows_json(windows: dict[str, GatewayWindow]) -> str:
    """The gateways annotation's value: compact, sorted, so the same record is the same text."""
    document = {key: {"seconds": w.seconds, "why": w.why} for key, w in windows.items()}
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def resolve_cache_window(
    state: State, flag: float | None, windows: dict[str, GatewayWindow], where: str
) -> State:
    """The cache window a step waits for: --cache-window when given; else the longest one the
    gateways recorded (an earlier --cache-window that is longer still wins); else the one the
    state already has (the strictest known default unless a flag set it)."""
    if flag is not None:
        return replace(state, cache_window=flag, cache_window_from=WINDOW_FLAG)
    if not windows:
        return state
    key, longest = max(windows.items(), key=lambda item: (item[1].seconds, item[0]))
    if state.cache_window_from == WINDOW_FLAG and state.cache_window >= longest.seconds:
        return state
    origin = (
        f"recorded on {where}: {key} caches for {duration_text(longest.seconds)} ({longest.why})"
    )
    if len(windows) > 1:
        origin += f", the longest of {len(windows)} gateways"
    return replace(state, cache_window=longest.seconds, cache_window_from=origin)


def window_origin_text(state: State) -> str:
    """Where the state's cache window comes from, for `rotate status`."""
    if state.cache_window_from == WINDOW_DEFAULT:
        return (
            "no gateway recorded one: the strictest known default, istiod's 20m refresh; "
            "pass --cache-window if a gateway caches longer"
        )
    if state.cache_window_from == WINDOW_FLAG:
        return "--cache-window"
    return state.cache_window_from


# --- reading facts ----------------------------------------------------------------------------


def initial_state(kids: list[str], now: float, cache_window: float, max_token_ttl: float) -> State:
    """The state of a key set nothing has recorded yet: the newest (last) key is the one that
    has been signing; older keys count as retired from now, the cautious guess."""
    records = [KeyRecord(kid, RETIRED, retired=now) for kid in kids[:-1]]
    records.append(KeyRecord(kids[-1], ACTIVE))
    return State(tuple(records), cache_window, max_token_ttl)


def reconcile(state: State, kids: list[str], source: str) -> None:
    """InputError when the recorded kids are not exactly the key set's."""
    recorded = [k.kid for k in state.keys]
    if sorted(recorded) != sorted(kids):
        missing = [kid for kid in kids if kid not in recorded]
        extra = [kid for kid in recorded if kid not in kids]
        raise InputError(
            f"the rotation state in {source} does not describe the key set: "
            + "; ".join(
                part
                for part in (
                    f"unrecorded kids {', '.join(map(json.dumps, missing))}" if missing else "",
                    f"recorded kids not in the set {', '.join(map(json.dumps, extra))}"
                    if extra
                    else "",
                )
                if part
            )
            + ". Was the set changed by hand or by `jwksdeploy apply` with another file? Apply "
            "the set the state describes, or remove the state to start over."
        )


def keys_by_kid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    keys: dict[str, dict[str, Any]] = {}
    for index, key in enumerate(document.get("keys") or []):
        kid = key.get("kid") if isinstance(key, dict) else None
        if not isinstance(kid, str) or not kid:
            raise InputError(
                f"key #{index} of the key set has no kid; rotation names keys by kid. Give it "
                "one (`jwksdeploy jwks generate` always does)."
            )
        keys[kid] = key
    return keys


# --- when is the next step safe ---------------------------------------------------------------


def promote_at(state: State) -> float | None:
    nxt = state.phase(NEXT)
    if not nxt or nxt[0].published is None:
        return None
    return nxt[0].published + state.cache_window


def finish_at(state: State) -> float | None:
    """When the last retired key may go: its tokens expired and every gateway refetched."""
    times = [k.retired for k in state.phase(RETIRED)]
    if not times:
        return None
    known = [t for t in times if t is not None]
    if len(known) < len(times):
        return None
    return max(known) + state.max_token_ttl + state.cache_window


def start_at(state: State, rotate_after: float | None) -> float | None:
    if rotate_after is None or state.phase(NEXT) or state.phase(RETIRED):
        return None
    promoted = state.active.promoted
    return 0.0 if promoted is None else promoted + rotate_after


def due(state: State, rotate_after: float | None = None) -> Due:
    """The next step of the cycle and when it is safe: finish before promote before start."""
    if state.phase(RETIRED):
        at = finish_at(state)
        if at is None:
            return Due("finish", None, "a retired key has no recorded retirement time")
        return Due("finish", at, "retired key(s) expire: promotion + max token TTL + cache window")
    if state.phase(NEXT):
        at = promote_at(state)
        if at is None:
            return Due(
                "promote",
                None,
                "the next key's rollout has not been seen complete; run start again",
            )
        return Due("promote", at, "the next key has been served for the cache window")
    at = start_at(state, rotate_after)
    if at is None:
        return Due(None, None, "no rotation in progress; `rotate start` begins one")
    return Due("start", at, "the active key reached --rotate-after")


def _refuse(step: str, at: float | None, now: float, why: str) -> TooEarly:
    if at is None:
        return TooEarly(f"cannot {step} yet: {why}. Nothing was changed.", None)
    return TooEarly(
        f"too early to {step}: {why}. It is safe at {when(at)} (in {duration_text(at - now)}); "
        "nothing was changed. Run it again then (or let `jwksdeploy rotate run` do it).",
        at,
    )


# --- the steps --------------------------------------------------------------------------------


def start(state: State, private: dict[str, Any], new_key: dict[str, Any], now: float) -> Step:
    """Publish new_key as `next`; its publication time is set once the rollout is seen done."""
    if state.phase(NEXT):
        raise TooEarly(
            f"a rotation is already in progress: kid {json.dumps(state.phase(NEXT)[0].kid)} is "
            "next. Promote it (`jwksdeploy rotate promote`) or revoke it; nothing was changed.",
            promote_at(state),
        )
    kid = new_key.get("kid")
    if not isinstance(kid, str) or state.record(kid) is not None:
        raise InputError(f"kid {json.dumps(kid)} is already in the set. Pick another --kid.")
    record = KeyRecord(kid, NEXT)
    return Step(
        "start",
        replace(state, keys=(*state.keys, record)),
        {"keys": [*private["keys"], new_key]},
        f"published kid {json.dumps(kid)} as next",
        publish=True,
    )


def mark_published(state: State, now: float) -> State:
    """The rollout serving the new set was seen complete at `now`: the next key, or a key
    `revoke` made active before it was ever served, is published from then on."""
    for record in state.keys:
        fresh = record.phase == NEXT or (record.phase == ACTIVE and record.promoted is not None)
        if fresh and record.published is None:
            state = state.with_record(replace(record, published=now))
    return state


def promote(state: State, private: dict[str, Any], now: float) -> Step:
    """Make `next` the signing key, once every gateway can have fetched it."""
    nxt = state.phase(NEXT)
    if not nxt:
        raise TooEarly(
            "there is no next key to promote. Start a rotation first (`jwksdeploy rotate start`).",
            None,
        )
    at = promote_at(state)
    if at is None or now < at:
        published = nxt[0].published
        why = (
            f"kid {json.dumps(nxt[0].kid)} has been served since {when(published)}, and gateways "
            f"may cache the old key set for the cache window ({duration_text(state.cache_window)})"
            if published is not None
            else f"kid {json.dumps(nxt[0].kid)} has not been seen served by every ready pod yet "
            "(the rollout did not finish); run `jwksdeploy rotate start` again to wait for it"
        )
        raise _refuse("promote", at, now, why)
    old = state.active
    state = state.with_record(replace(old, phase=RETIRED, retired=now))
    state = state.with_record(replace(nxt[0], phase=ACTIVE, promoted=now))
    return Step(
        "promote",
        state,
        private,
        f"kid {json.dumps(nxt[0].kid)} is active (signing); kid {json.dumps(old.kid)} retired",
        publish=False,
    )


def finish(state: State, private: dict[str, Any], now: float) -> Step:
    """Remove retired keys once every token they signed has expired."""
    retired = state.phase(RETIRED)
    if not retired:
        raise TooEarly(
            "there is no retired key to remove: the rotation is finished (or not promoted yet).",
            None,
        )
    at = finish_at(state)
    if at is None or now < at:
        since = max((k.retired or 0.0) for k in retired)
        why = (
            f"tokens signed before the promotion at {when(since)} may live for the max token TTL "
            f"({duration_text(state.max_token_ttl)}), plus the cache window "
            f"({duration_text(state.cache_window)})"
        )
        raise _refuse("finish", at, now, why)
    gone = {k.kid for k in retired}
    return Step(
        "finish",
        replace(state, keys=tuple(k for k in state.keys if k.kid not in gone)),
        {"keys": [k for k in private["keys"] if k.get("kid") not in gone]},
        f"removed retired kid(s) {', '.join(json.dumps(k) for k in sorted(gone))}",
        publish=True,
    )


def revoke(
    state: State,
    private: dict[str, Any],
    kid: str,
    now: float,
    replacement: dict[str, Any] | None,
) -> Step:
    """Remove `kid` now; if it was signing, promote the next key (or `replacement`) at once.

    The notes give the worst-case window: gateways may trust the revoked key until they
    refetch, and tokens of a key they have not fetched fail until then."""
    record = state.record(kid)
    if record is None:
        known = ", ".join(json.dumps(k.kid) for k in state.keys)
        raise InputError(f"there is no kid {json.dumps(kid)} in the set (kids: {known}).")
    keys = [k for k in state.keys if k.kid != kid]
    private_keys = [k for k in private["keys"] if k.get("kid") != kid]
    notes = [
        f"gateways may still trust kid {json.dumps(kid)} until {when(now + state.cache_window)} "
        f"(the cache window, {duration_text(state.cache_window)}, after the new set is served)"
    ]
    summary = f"revoked kid {json.dumps(kid)}"
    if record.phase == ACTIVE:
        waiting = [k for k in keys if k.phase == NEXT]
        if waiting:
            chosen = waiting[0]
        elif replacement is not None:
            chosen = KeyRecord(str(replacement["kid"]), NEXT)
            keys.append(chosen)
            private_keys.append(replacement)
        else:
            raise InputError(
                f"kid {json.dumps(kid)} is the active key and there is no next key to take over. "
                "Pass a replacement (the CLI generates one) and run again."
            )
        fetched_at = chosen.published + state.cache_window if chosen.published is not None else None
        keys = [replace(k, phase=ACTIVE, promoted=now) if k.kid == chosen.kid else k for k in keys]
        summary += f"; kid {json.dumps(chosen.kid)} is active at once"
        if fetched_at is not None and fetched_at <= now:
            notes.append(
                f"tokens of kid {json.dumps(chosen.kid)} verify everywhere now: it has been "
                "served for longer than the cache window"
            )
        else:
            until = fetched_at if fetched_at is not None else now + state.cache_window
            notes.append(
                f"tokens of kid {json.dumps(chosen.kid)} may fail at gateways that have not "
                f"refetched until {when(until)}"
            )
        notes.append(
            "to shorten both windows: make the gateways refetch now by restarting them "
            "(`kubectl rollout restart` of the Envoy, Contour or Envoy Gateway proxies; for "
            "Istio, of istiod, which inlines the keys), and lower their JWKS cache duration "
            "(`jwksdeploy gateway --cache-duration`) before the next emergency"
        )
    return Step(
        "revoke",
        replace(state, keys=tuple(keys)),
        {"keys": private_keys},
        summary,
        publish=True,
        notes=notes,
    )


def signing_check(state: State, kid: str, now: float, force: bool) -> str | None:
    """For `token`: None when kid may sign; a warning when forced; InputError/TooEarly when not."""
    record = state.record(kid)
    if record is None or record.phase == ACTIVE:
        return None
    if record.phase == RETIRED:
        raise InputError(
            f"kid {json.dumps(kid)} is retired: it stays published only so tokens it already "
            f"signed verify, and goes at `rotate finish`. Sign with the active kid "
            f"{json.dumps(state.active.kid)} (leave --kid out)."
        )
    at = promote_at(state)
    if force:
        return (
            f"warning: kid {json.dumps(kid)} is next, not active: gateways that have not fetched "
            'it yet will reject this token ("Jwks doesn\'t have key to match kid or alg").'
        )
    if at is not None and at <= now:
        text = f"it is safe since {when(at)}: run `jwksdeploy rotate promote`"
    elif at is not None:
        text = f"it is safe from {when(at)} (in {duration_text(at - now)}), after `rotate promote`"
    else:
        text = "its rollout was not seen complete yet"
    raise TooEarly(
        f"kid {json.dumps(kid)} is the next key, not the active one: gateways may not have "
        f"fetched it, and would reject the token; {text}. Pass --allow-next to sign anyway "
        "(for testing that rejection).",
        at,
    )
