"""One value at a time against Kubernetes' rules (names, labels, ports, images, quantities) and
what may stand in a URL we print (hosts, http(s) URLs). Each check returns the value or raises
InputError naming the value, the rule and the fix; `settings.build_settings` runs them all.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping

from .errors import InputError

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_QUALIFIED_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
# The reference grammar of distribution/reference (what the kubelet parses): an optional
# registry host[:port], lowercase path components, an optional tag, an optional digest.
_IMAGE_HOST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_IMAGE_DOMAIN = rf"(?:{_IMAGE_HOST_PART}(?:\.{_IMAGE_HOST_PART})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?"
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?:(?P<domain>{_IMAGE_DOMAIN})/)?(?P<path>{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}))?",
    re.ASCII,
)
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGITS = re.compile(r"[0-9]{1,9}")
# Exact factors as (numerator, denominator), so quantities compare without rounding.
_QUANTITY_FACTORS: dict[str, tuple[int, int]] = {
    "": (1, 1),
    "m": (1, 1000),
    "k": (10**3, 1),
    "M": (10**6, 1),
    "G": (10**9, 1),
    "T": (10**12, 1),
    "P": (10**15, 1),
    "E": (10**18, 1),
    "Ki": (2**10, 1),
    "Mi": (2**20, 1),
    "Gi": (2**30, 1),
    "Ti": (2**40, 1),
    "Pi": (2**50, 1),
    "Ei": (2**60, 1),
}


def invalid(what: str, value: object, rule: str, fix: str) -> InputError:
    return InputError(f"{what} {_show(value)} is invalid: {rule}. {fix}")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "...'"


def check_text(what: str, value: str) -> str:
    """Refuse text no Kubernetes object can carry: NUL, lone surrogates (bad UTF-8 in argv)."""
    if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
        raise invalid(what, value, "it holds a NUL or non-UTF-8 character", "Remove it.")
    return value


def check_dns1123_label(what: str, value: str) -> str:
    if len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
        raise invalid(
            what,
            value,
            "it must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
            "Choose a name like 'envoy-yang'.",
        )
    return value


def check_object_name(value: str, flag: str = "--name") -> str:
    # Services need a DNS-1035 label (must start with a letter); every object derives from it.
    if len(value) > 63 - len("-jwks") or not is_dns1035_label(value):
        raise invalid(
            flag,
            value,
            "it must be a DNS-1035 label of at most 58 characters: lowercase letters, digits "
            "and '-', starting with a letter and ending with a letter or digit",
            "Choose a name like 'remote-jwks-go' or 'jwks-staging'.",
        )
    return value


def check_qualified_key(what: str, key: str) -> str:
    """A label or annotation key: optional DNS-1123 subdomain prefix, '/', a 63-char name."""
    prefix, _, name = key.rpartition("/")
    ok = bool(name) and len(name) <= 63 and bool(_QUALIFIED_NAME.fullmatch(name))
    if prefix:
        ok = ok and len(prefix) <= 253 and bool(_DNS1123_SUBDOMAIN.fullmatch(prefix))
    if not ok:
        raise invalid(
            f"{what} key",
            key,
            "keys are an optional DNS subdomain prefix and '/', then at most 63 letters, "
            "digits, '-', '_' or '.', starting and ending with a letter or digit",
            "Use a key like 'team' or 'example.com/team'.",
        )
    return key


def check_label_value(value: str, what: str = "--label") -> str:
    if len(value) > 63 or not LABEL_VALUE.fullmatch(value):
        raise invalid(
            f"{what} value",
            value,
            "label values are empty or at most 63 letters, digits, '-', '_' or '.', starting "
            "and ending with a letter or digit",
            "Put free text in an --annotation instead.",
        )
    return value


def check_port(what: str, value: object) -> int:
    number = whole_number(what, value)
    if not 1 <= number <= 65535:
        raise invalid(what, value, "a port is 1-65535", "Pick a port in that range.")
    return number


def check_image(image: str) -> str:
    """An image reference the kubelet can pull: `registry[:port]/path[:tag][@digest]`."""
    match = _IMAGE.fullmatch(image)
    ok = match is not None and len(image) <= 1024
    if match is not None:
        domain = match.group("domain")
        # Like the kubelet: a first component is a registry only with '.', ':' or localhost.
        if domain and not ("." in domain or ":" in domain or domain == "localhost"):
            ok = ok and domain == domain.lower()
        digest = match.group("digest")
        if digest:
            algorithm, _, hex_part = digest.partition(":")
            wanted = _DIGEST_LENGTHS.get(algorithm)
            ok = ok and (wanted is None or len(hex_part) == wanted)
    if not ok:
        raise invalid(
            "--image",
            image,
            "it is not an image reference: a lowercase repository path, optionally a "
            "registry host before it, a :tag and an @sha256:<64 hex digits> digest",
            "Use a form like registry.example.com/team/remote-jwks-go:0.1.0.",
        )
    return image


def quantity_value(value: str) -> tuple[int, int]:
    """The exact number a checked quantity stands for, as (numerator, denominator):
    `100m` -> (100, 1000), `1.5Ki` -> (15 * 1024, 10). Integer arithmetic, no float rounding."""
    match = re.fullmatch(r"([0-9]+)(?:\.([0-9]+))?([A-Za-z]*)", value)
    assert match is not None  # only called on values check_quantity accepted
    whole, fraction, suffix = match.group(1), match.group(2) or "", match.group(3)
    numerator, denominator = _QUANTITY_FACTORS[suffix]
    return int(whole + fraction) * numerator, 10 ** len(fraction) * denominator


def check_request_within_limit(resources: Mapping[str, str]) -> None:
    """The API server refuses a request above its limit; say so before anything is applied."""
    for resource in ("cpu", "memory"):
        request, limit = resources[f"{resource}-request"], resources[f"{resource}-limit"]
        (request_num, request_den), (limit_num, limit_den) = map(quantity_value, (request, limit))
        if request_num * limit_den > limit_num * request_den:
            raise InputError(
                f"--{resource}-request {request} is above --{resource}-limit {limit}; Kubernetes "
                "refuses a request larger than its limit. Lower the request or raise the limit."
            )


def check_quantity(what: str, value: str) -> str:
    if not _QUANTITY.fullmatch(value):
        raise invalid(
            what,
            value,
            "it is not a Kubernetes quantity",
            "Use a form like 100m or 0.5 for CPU and 64Mi or 1Gi for memory.",
        )
    return value


def whole_number(what: str, value: object) -> int:
    """A whole number from a flag (int) or a values file (its text: ASCII digits only)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    raise invalid(what, value, "it must be a whole number (at most 9 digits)", "Give a number.")


def check_dns1123_subdomain(what: str, value: str, fix: str = "Use the Secret's name.") -> str:
    """A Kubernetes object name (Secrets, HTTPRoutes...): a DNS-1123 subdomain."""
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(value):
        raise invalid(what, value, "it must be a DNS-1123 subdomain", fix)
    return value


def is_dns1035_label(value: str) -> bool:
    """A Service name: lowercase letters, digits and '-', starting with a letter, <= 63."""
    return len(value) <= 63 and bool(_DNS1035_LABEL.fullmatch(value))


_HOSTNAME = re.compile(
    r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?"
)


def is_host(text: str) -> bool:
    """An IP address or a DNS name: what may stand between http:// and :port in a URL we
    print (a node address or --address could hold spaces, a path or terminal escapes)."""
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return len(text) <= 253 and bool(_HOSTNAME.fullmatch(text))
    return True


def check_address(address: str | None) -> str | None:
    """--address as given, or InputError when it is not a host (see is_host)."""
    if address is not None and not is_host(address):
        raise InputError(
            f"--address {address!r} is not an IP address or a DNS name. Pass a node's address "
            "the gateway can reach, e.g. --address 10.0.0.12."
        )
    return address


def check_http_url(url: str) -> urllib.parse.SplitResult:
    """An absolute http(s) URL with a host and a valid port: what gateways and verify fetch."""
    try:
        if any(ch.isspace() or not ch.isprintable() or not ch.isascii() for ch in url):
            raise ValueError("whitespace, control or non-ASCII characters")
        parsed = urllib.parse.urlsplit(url)
        port_ok = parsed.port is None or parsed.port > 0
    except ValueError:
        parsed, port_ok = urllib.parse.urlsplit(""), False
    if parsed.scheme not in ("http", "https") or not parsed.hostname or not port_ok:
        raise InputError(
            f"--url {url!r} is not an http(s) URL with a host. Pass the URL `jwksdeploy apply` "
            "printed (like http://192.0.2.10:31456/jwks), or --namespace to look it up."
        )
    return parsed
