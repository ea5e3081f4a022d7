"""Durations as every flag reads them: `90`, `1.5s`, `500ms`, `2m`, and Go's `1h30m`.

Read exactly (a Fraction, no float), so a gateway's rules and the cache-window note see the
value that was typed. The compound form is the one the gateways' own APIs take (Contour's and
Envoy Gateway's durations, Go's time.ParseDuration) and the one jwksdeploy prints (`1m30s`).
"""

from __future__ import annotations

import re
from fractions import Fraction

from .errors import InputError

MAX_DURATION_SECONDS = 10 * 365 * 24 * 3600
_NUMBER = r"[0-9]{1,12}(?:\.[0-9]{1,9})?"
_PIECE = re.compile(rf"({_NUMBER})\s*(ms|s|m|h)")
# A plain number of seconds, or one to four NUMBER UNIT pieces (1h30m15s500ms).
_DURATION = re.compile(rf"\s*(?:({_NUMBER})|((?:{_NUMBER}\s*(?:ms|s|m|h)\s*){{1,4}}))\s*")
# Go's time.ParseDuration also takes these; none of our targets goes below a millisecond.
_BELOW_MILLISECONDS = re.compile(rf"\s*{_NUMBER}\s*(?:us|µs|μs|ns)\s*")
_UNIT_SECONDS = {"ms": Fraction(1, 1000), "s": Fraction(1), "m": Fraction(60), "h": Fraction(3600)}


def read_seconds(text: str, what: str) -> Fraction:
    """The duration `text` in seconds, exactly, before any bound; InputError naming `what`
    when it is not one."""
    match = _DURATION.fullmatch(text)
    if not match and _BELOW_MILLISECONDS.fullmatch(text):
        raise InputError(
            f"{what} {text!r} is below a millisecond: durations here are at least 1ms, in "
            "whole milliseconds (the finest unit is ms). Use a form like 1ms, 500ms or 2s."
        )
    if not match:
        raise InputError(f"{what} {text!r} is not a duration. Use a form like 90s, 2m or 1h.")
    if match.group(1) is not None:
        return Fraction(match.group(1))
    pieces = _PIECE.findall(text)
    return sum((Fraction(number) * _UNIT_SECONDS[unit] for number, unit in pieces), Fraction(0))


def exact_seconds(text: str, what: str) -> Fraction:
    """read_seconds within the bound every duration flag shares: at most ten years."""
    seconds = read_seconds(text, what)
    if seconds > MAX_DURATION_SECONDS:
        raise InputError(
            f"{what} {text!r} is longer than ten years, more than any timeout or token lifetime "
            "needs. Use a shorter duration."
        )
    return seconds


def parse_duration(text: str, what: str) -> float:
    """'2m', '90s', '1h', '500ms', '1h30m' or a plain number of seconds; at most ten years."""
    return float(exact_seconds(text, what))


def flag_text(seconds: Fraction | float) -> str:
    """A duration as a flag value every duration flag reads back exactly: `5m`, `1m30s500ms`.

    Never rounded: a cache window printed shorter than it is would let `rotate` promote a key
    before every gateway has fetched it. Below a millisecond it is seconds with decimals.
    """
    exact = Fraction(seconds)
    millis, rest = divmod(exact * 1000, 1)
    if rest:
        return f"{float(exact)!r}s" if exact else "0s"
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(int(millis), size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
