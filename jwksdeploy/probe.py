"""The HTTP edge of `verify`: fetch a JWKS server's `/` and `/jwks` and report what came back.

Plain http.client on purpose: two GETs do not justify a dependency, and it lets one total
deadline cover the whole exchange. Redirects are not followed, because Envoy's remote_jwks
fetch does not follow them either.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

from .errors import InputError, VerificationFailed, WaitTimeout

MAX_BODY = 1 << 20  # a JWKS larger than 1 MiB is a misconfiguration, not a key set


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class ServerUrls:
    """The two URLs verify probes, derived from the one the user gave."""

    root: str
    jwks: str


def server_urls(url: str) -> ServerUrls:
    """`http://h:p/jwks` (what apply prints), `http://h:p` and `http://h:p/prefix/` all work."""
    from .checks import check_http_url

    parsed = check_http_url(url)
    path = parsed.path or "/"
    if path.endswith("/jwks"):
        root_path, jwks_path = path[: -len("jwks")], path
    else:
        root_path = path if path.endswith("/") else path + "/"
        jwks_path = root_path + "jwks"
    base = (parsed.scheme, parsed.netloc)
    return ServerUrls(
        root=urllib.parse.urlunsplit((*base, root_path, "", "")),
        jwks=urllib.parse.urlunsplit((*base, jwks_path, parsed.query, "")),
    )


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system trust store, or only the CA bundle the user names (read with a limit)."""
    from .files import read_bounded

    try:
        if ca_file is None:
            return ssl.create_default_context()
        pem = read_bounded(ca_file, "--ca-file", 4 << 20).decode("ascii")
        return ssl.create_default_context(cadata=pem)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise InputError(
            f"--ca-file {ca_file!r} cannot be used: {getattr(exc, 'strerror', None) or exc}. "
            "Pass a PEM file holding the CA certificate that signed the JWKS server's certificate."
        ) from None


def fetch(url: str, timeout: float, context: ssl.SSLContext | None = None) -> Response:
    """GET url within `timeout` seconds in total (not per read: a server that trickles one byte
    a second is cut off), reading at most MAX_BODY + 1 bytes. Any HTTP status is returned;
    network failures and answers that are not HTTP become our errors. Redirects are not
    followed and no proxy is used: Envoy's remote_jwks fetch does neither."""
    parsed = urllib.parse.urlsplit(url)
    path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    connection: http.client.HTTPConnection
    if parsed.scheme == "https":
        connection = http.client.HTTPSConnection(
            str(parsed.hostname), parsed.port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(str(parsed.hostname), parsed.port, timeout=timeout)
    expired = threading.Event()

    def cut_off() -> None:
        expired.set()
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(timeout, cut_off)
    timer.daemon = True
    timer.start()
    try:
        connection.request(
            "GET",
            path,
            headers={"User-Agent": "jwksdeploy-verify", "Accept": "application/json"},
        )
        answer = connection.getresponse()
        body = answer.read(MAX_BODY + 1)
        result = Response(url, answer.status, answer.getheader("Content-Type") or "", body)
    except ssl.SSLCertVerificationError as exc:
        raise VerificationFailed(
            f"{url} presented a certificate that is not trusted ({exc.verify_message}). Pass "
            "--ca-file with the CA that signed it; a gateway fetching this URL needs the same "
            "trust."
        ) from None
    except (TimeoutError, http.client.HTTPException, OSError, ValueError) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            raise WaitTimeout(
                f"{url} did not answer within {timeout:g}s. Check the address and port are "
                "reachable from here (a NodePort needs the node's firewall open), or raise "
                "--request-timeout."
            ) from None
        if isinstance(exc, http.client.HTTPException | ValueError):
            raise VerificationFailed(
                f"{url} did not answer with valid HTTP ({type(exc).__name__}). Another service "
                "is on that port, or the URL's scheme or port is wrong."
            ) from None
        text = getattr(exc, "strerror", None) or type(exc).__name__
        raise VerificationFailed(
            f"cannot reach {url}: {text}. Check the URL (`jwksdeploy url` prints it) and that "
            "the pods are ready (`jwksdeploy status`)."
        ) from None
    finally:
        timer.cancel()
        connection.close()
    if expired.is_set():
        raise WaitTimeout(f"{url} did not answer within {timeout:g}s. Raise --request-timeout.")
    return result


def check_root(answer: Response) -> str:
    """The source image answers `success` on `/`; anything else means something else is there."""
    text = answer.body[:200].decode("utf-8", "replace").strip()
    if answer.status != 200 or text != "success":
        raise VerificationFailed(
            f"{answer.url} answered HTTP {answer.status} {text[:60]!r}, not 200 'success'. "
            "Another service is on that port, or the URL's path is wrong."
        )
    return f'{answer.url} answers "success"'


def check_jwks(answer: Response) -> tuple[dict[str, Any], list[str]]:
    """The served document, parsed and linted; errors (private members!) fail the check."""
    from .jwks import lint_jwks, parse_jwks

    if answer.status != 200:
        raise VerificationFailed(
            f"{answer.url} answered HTTP {answer.status}, not 200. Check the path (the server "
            "serves /jwks) and that the pods are ready."
        )
    if len(answer.body) > MAX_BODY:
        raise VerificationFailed(f"{answer.url} returned more than 1 MiB; that is not a JWKS.")
    try:
        document = parse_jwks(answer.body, f"the JWKS served at {answer.url}")
    except InputError as exc:
        raise VerificationFailed(str(exc)) from None
    findings = lint_jwks(document)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        listed = "; ".join(str(f) for f in errors)
        raise VerificationFailed(
            f"the JWKS served at {answer.url} fails its checks: {listed}. Redeploy a clean "
            "public set (`jwksdeploy jwks public`, then `jwksdeploy apply`)."
        )
    notes = [str(f) for f in findings]
    if answer.content_type.split(";")[0].strip() != "application/json":
        notes.append(
            f"note: served with Content-Type {answer.content_type or '(none)'!r}, not "
            "application/json; Envoy does not mind, some other clients do."
        )
    return document, notes


def compare_sets(served: dict[str, Any], local: dict[str, Any], local_name: str) -> str:
    """Same keys, compared as parsed JWKs (member order and whitespace do not matter)."""
    from .jwks import key_subject, public_members

    def canonical(document: dict[str, Any]) -> dict[str, str]:
        """Canonical JSON of each key's public members -> how messages name that key."""
        return {
            json.dumps(public_members(key) if isinstance(key, dict) else key, sort_keys=True): (
                key_subject(key, index)
            )
            for index, key in enumerate(document["keys"])
        }

    served_keys, local_keys = canonical(served), canonical(local)
    missing = [subject for text, subject in local_keys.items() if text not in served_keys]
    extra = [subject for text, subject in served_keys.items() if text not in local_keys]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"not served: {', '.join(missing)}")
        if extra:
            parts.append(f"served but not in {local_name}: {', '.join(extra)}")
        raise VerificationFailed(
            f"the served JWKS differs from {local_name} ({'; '.join(parts)}). Run "
            "`jwksdeploy apply` with this file; the server reads its file only at start-up, and "
            "apply rolls the pods when the JWKS changes."
        )
    return f"the served set equals {local_name} ({len(local_keys)} key(s))"
