"""JWK member names as the most lenient reader reads them: the one rule for which members are
private, which spellings are ambiguous, and what in a JWKS could hold a key. Pure, no I/O.

Go's encoding/json (the Go JWKS server, go-jose) matches member names case-insensitively with
simple Unicode folding, so `D`, or `\\u212a` (the Kelvin sign) for `k`, is that member to it.
Other readers normalise (NFKC makes a fullwidth `ｄ` a `d`). A name is compared after every
such fold, in either order, so it is private when any consumer could take it for a private one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

# RFC 7518 §6.2.2/§6.3.2 and RFC 8037 (d), the oct secret k, and AKP's priv (the ML-DSA draft).
PRIVATE_NAMES = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"})
# RFC 7517 §4, RFC 7518 §6, RFC 8037, WebCrypto's ext and AKP's pub: what a public JWK may hold.
PUBLIC_NAMES = frozenset(
    {"kty", "use", "key_ops", "alg", "kid", "x5u", "x5c", "x5t", "x5t#S256"}
    | {"crv", "x", "y", "n", "e", "ext", "pub"}
)
REGISTERED_NAMES = PRIVATE_NAMES | PUBLIC_NAMES
JWKS_NAMES = frozenset({"keys"})
PEM_PRIVATE_MARKER = "PRIVATE KEY-----"

_LONGEST_NAME = max(map(len, REGISTERED_NAMES | JWKS_NAMES))
_BY_FOLD = {name.casefold(): name for name in REGISTERED_NAMES | JWKS_NAMES}
# Unicode's simple lowercase where Python's str.lower gives the full (longer) mapping.
_SIMPLE_LOWER = {"\u0130": "i"}
_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_#$./~-]{1,64}")


def _go_fold(text: str) -> str:
    """Go's encoding/json fold: per rune, upper of lower, with simple (one-rune) mappings."""
    out = []
    for char in text:
        lower = _SIMPLE_LOWER.get(char) or (char.lower() if len(char.lower()) == 1 else char)
        upper = lower.upper()
        out.append(upper if len(upper) == 1 else lower)
    return "".join(out)


def _nfkc(text: str) -> str:
    import unicodedata  # only for member names that are not plain ASCII

    return unicodedata.normalize("NFKC", text)


def _without_ignorables(text: str) -> str:
    # NFKC_Casefold drops default-ignorable characters (soft hyphen, zero-width space...).
    return _IGNORABLE.sub("", text)


_FOLDS = (_nfkc, str.casefold, _go_fold, _without_ignorables)


def folded_forms(name: str) -> frozenset[str]:
    """Every casefolded spelling `name` takes under NFKC, casefold, Go's fold and dropping
    ignorables, applied in any order (three rounds reach every combination that matters)."""
    if name.isascii():
        return frozenset({name.casefold()})
    base = _without_ignorables(name)
    if base.isascii() or len(base) > _LONGEST_NAME:
        # Folds never shorten a text (compositions give non-ASCII), so a longer name folds
        # to no registered one: no work is spent on a hostile long name.
        return frozenset({base.casefold()})
    forms = frontier = {base}
    for _ in range(3):
        frontier = {fold(form) for form in frontier for fold in _FOLDS} - forms
        forms = forms | frontier
    return frozenset(form.casefold() for form in forms)


def registered_as(name: str) -> str | None:
    """The registered member (JWK, or JWKS `keys`) some reader takes `name` for, else None;
    a private one wins when the folds disagree."""
    found = [_BY_FOLD[form] for form in folded_forms(name) if form in _BY_FOLD]
    private = [member for member in found if member in PRIVATE_NAMES]
    return min(private or found) if found else None


def is_private_name(name: str) -> bool:
    """True when some reader takes `name` for a private member (k included: see below)."""
    return registered_as(name) in PRIVATE_NAMES


def is_private_member(key: dict[str, Any], name: str) -> bool:
    """Whether member `name` of JWK `key` must never be published. `k` is the secret of an
    oct key and public only in that sense: spelled exactly, in a key whose kty is exactly oct
    (compared after JSON decoding, so `\\u006fct` is oct)."""
    if not is_private_name(name):
        return False
    return not (registered_as(name) == "k" and key.get("kty") == "oct")


def is_ambiguous(name: str) -> bool:
    """A name some reader takes for a registered member that it is not spelled as."""
    registered = registered_as(name)
    return registered is not None and registered != name


def looks_like_key(obj: dict[str, Any]) -> bool:
    """An object a reader could take for a JWK (a kty in any spelling) or that holds private
    members: never publishable inside a key or beside `keys`."""
    return any(registered_as(name) == "kty" or is_private_name(name) for name in obj)


def key_material(value: Any, path: str = "") -> Iterator[str]:
    """JSON Pointers (RFC 6901) below `value` of every object that looks like a key, every
    string holding a PEM private key, and every string that is JSON holding either."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            if looks_like_key(item):
                yield where or "/"
                continue
            stack.extend((child, f"{where}/{pointer_token(n)}") for n, child in item.items())
        elif isinstance(item, list):
            stack.extend((child, f"{where}/{index}") for index, child in enumerate(item))
        elif isinstance(item, str):
            if PEM_PRIVATE_MARKER in item:
                yield where or "/"
                continue
            inner = parse_embedded_json(item)
            if inner is not None and next(key_material(inner), None) is not None:
                yield where or "/"


def parse_embedded_json(text: str) -> dict[str, Any] | list[Any] | None:
    """A string's value when it is itself a JSON object or array, else None."""
    if not text.lstrip().startswith(("{", "[")):
        return None
    from .strictjson import StrictJsonError, parse

    try:
        value = parse(text)
    except StrictJsonError:
        return None
    return value if isinstance(value, dict | list) else None


def pointer_token(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def shown(name: str) -> str:
    """A member name (or pointer) for a message: as written when plain ASCII, else as a JSON
    string, so a Kelvin sign or a control character is visible and cannot drive a terminal."""
    return name if _PLAIN_NAME.fullmatch(name) else json.dumps(name)
