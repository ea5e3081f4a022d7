"""The rotation record: a State as the instance's ConfigMap annotation and the local mirror
file hold it (RFC 3339 times, checked on the way in), and the gateways' cache-window record.

Pure text in, State out (and back); rotation.py decides, this module only writes and reads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .errors import InputError
from .rotation import (
    ACTIVE,
    END_OF_CALENDAR,
    PHASES,
    WINDOW_DEFAULT,
    GatewayWindow,
    KeyRecord,
    State,
    when,
)

STATE_ANNOTATION = "rotation.jwksdeploy.io/state"
# What `gateway` / `apply --provider` emitted for this instance: per provider/name, how long
# that gateway caches the key set. On the ConfigMap's metadata only, never in the served bytes.
GATEWAYS_ANNOTATION = "rotation.jwksdeploy.io/gateways"


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


def mirror_text(state: State, pending_from: str | None) -> str:
    """The local mirror's content: the state, and the fingerprint of the cluster record a step
    written locally but not yet on the cluster started from (None: nothing pending)."""
    document = {"state": json.loads(to_json(state)), "pendingFrom": pending_from}
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def parse_mirror(data: bytes, path: str) -> tuple[State, str | None]:
    """(state, pendingFrom) of a local mirror's bytes, checked."""
    from .strictjson import StrictJsonError, parse

    try:
        document = parse(data.decode("utf-8"))
    except (StrictJsonError, UnicodeDecodeError):
        raise InputError(
            f"the rotation state {path!r} is not JSON. Restore or remove it."
        ) from None
    if not isinstance(document, dict) or "state" not in document:
        raise InputError(f"the rotation state {path!r} has no `state`. Restore or remove it.")
    pending = document.get("pendingFrom")
    state = from_json(json.dumps(document["state"]), repr(path))
    return state, pending if isinstance(pending, str) else None
