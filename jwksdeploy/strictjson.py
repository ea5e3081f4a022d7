"""One strict JSON reader for every JSON input: JWKS files, served key sets, key files, token
headers and payloads, claim values.

RFC 8259 only, so that what we check is what every other parser (Go's in the JWKS server,
Envoy's in the gateway) reads too: duplicate member names are refused at any depth (Python
keeps the last one, other parsers the first), NaN and Infinity are refused (not JSON), and
so are numbers no parser represents exactly, deep nesting, and escaped lone surrogates.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32
MAX_INTEGER_DIGITS = 32


class StrictJsonError(ValueError):
    """Why a text is not strict JSON; `syntax` is True when it is not JSON at all."""

    def __init__(self, reason: str, syntax: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.syntax = syntax


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name, value in pairs:
        if name in document:
            raise StrictJsonError(f"the member name {json.dumps(name)[:80]} appears twice")
        document[name] = value
    return document


def _no_constant(name: str) -> Any:
    raise StrictJsonError(f"{name} is not a JSON number")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise StrictJsonError(f"an integer has more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJsonError(f"the number {text[:40]} is out of range")
    return value


def parse(text: str) -> Any:
    """The value of a strict JSON text, or StrictJsonError."""
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_members,
            parse_constant=_no_constant,
            parse_int=_integer,
            parse_float=_float,
        )
    except json.JSONDecodeError as exc:
        raise StrictJsonError(
            f"{exc.msg} at line {exc.lineno}, column {exc.colno}", syntax=True
        ) from None
    except RecursionError:
        raise StrictJsonError(f"it nests deeper than {MAX_DEPTH} levels") from None
    check_values(value)
    return value


def parse_bytes(data: bytes) -> Any:
    """As `parse`, for UTF-8 bytes without a byte-order mark."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise StrictJsonError(
            "it starts with a UTF-8 byte-order mark, which JSON parsers in the JWKS server and "
            "the gateway reject"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StrictJsonError(f"it is not UTF-8 (invalid byte at offset {exc.start})") from None
    return parse(text)


def check_values(root: Any) -> None:
    """Depth and strings, iteratively: a deep document must not recurse here either."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            children = value
        else:
            if isinstance(value, str):
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise StrictJsonError(
                        "a string holds an escaped lone surrogate (not Unicode text)"
                    ) from None
            continue
        if depth > MAX_DEPTH:
            raise StrictJsonError(f"it nests deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)


def dumps(value: Any, **options: Any) -> str:
    """json.dumps that can never write NaN or Infinity (not JSON)."""
    return json.dumps(value, allow_nan=False, **options)
