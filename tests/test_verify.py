"""`jwksdeploy verify` against hostile HTTP answers (framing, headers, chunking, sizes, served
key sets that are not clean JWKS) and hostile tokens (correctly signed but with odd headers or
claims, or not a JWS at all): exit 11 or 3 with one clean line, never a crash, never the
token's signature in any output. Servers listen on 127.0.0.1 only. Provenance: issue 9
(its repros 4 and 6 are here too)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import Signer, b64, dumps, marker, private_rsa, valid_jwks
from .refusals import (
    Outcome,
    assert_clean_stderr,
    assert_no_secret,
    assert_refused,
    each_failure,
    flag,
    invoke,
    snapshot,
)
from .servers import http_answer, jwks_server, raw_server

pytestmark = pytest.mark.usefixtures("in_tmp")


VERIFY_TIMEOUT = flag("verify", "--request-timeout", "--timeout")
MIB = 1 << 20
DEEP = 100_000


def _chunked(body: bytes, size: int = 65536) -> bytes:
    out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def _served(document: bytes) -> bytes:
    return http_answer("200 OK", document, "Content-Type: application/json")


EC_PUBLIC = Signer("served").public
DUP_KEYS = b'{"keys":[' + dumps(private_rsa()) + b'],"keys":[' + dumps(EC_PUBLIC) + b"]}"
HOSTILE_ANSWERS: dict[str, bytes] = {
    "garbage-status-line": b"HELLO WORLD\r\n\r\n",
    "no-status-line": valid_jwks(),
    "status-code-2000": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "status-line-binary": b"HTTP/1.1 200 \xff\xfe\x00\r\nContent-Length: 0\r\n\r\n",
    "thousand-headers": b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 1000 + b"\r\n",
    "megabyte-header-line": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * MIB + b"\r\n\r\n",
    "broken-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n",
    "chunk-truncated": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nabc",
    "chunk-size-huge": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"f" * 40
    + b"\r\nabc",
    "content-length-lies": b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{}",
    "content-length-negative": b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n{}",
    "content-length-garbage": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n{}",
    "close-without-answer": b"",
    "body-over-1mib": _served(b'{"keys":[],"pad":"' + b"a" * (2 * MIB) + b'"}'),
    "body-over-1mib-chunked": _chunked(b'{"keys":[],"pad":"' + b"a" * (2 * MIB) + b'"}'),
    "body-over-1mib-no-length": b"HTTP/1.0 200 OK\r\n\r\n" + b" " * (2 * MIB) + valid_jwks(),
    "redirect": b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/jwks\r\n"
    b"Content-Length: 0\r\n\r\n",
    "gzip-garbage": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\n"
    b"\x1f\x8b\xff\xff",
    "served-duplicate-keys": _served(DUP_KEYS),
    "served-nan": _served(b'{"keys":[' + dumps(EC_PUBLIC)[:-1] + b',"exp":NaN}]}'),
    "served-1e999": _served(b'{"keys":[' + dumps(EC_PUBLIC)[:-1] + b',"exp":1e999}]}'),
    "served-5000-digits": _served(
        b'{"keys":[' + dumps(EC_PUBLIC)[:-1] + b',"exp":' + b"7" * 5000 + b"}]}"
    ),
    "served-private-members": _served(dumps({"keys": [private_rsa()]})),
    "served-private-odd-kty": _served(dumps({"keys": [private_rsa(kty="rsa")]})),
    "served-oct-with-d": _served(
        dumps({"keys": [{"kty": "oct", "k": marker("k"), "d": marker("d")}]})
    ),
    "served-deep": _served(
        b'{"keys":[' + dumps(EC_PUBLIC) + b'],"x":' + b"[" * DEEP + b"]" * DEEP + b"}"
    ),
    "served-kty-list": _served(dumps({"keys": [{**EC_PUBLIC, "kty": []}]})),
    "served-kid-object": _served(dumps({"keys": [{**EC_PUBLIC, "kid": {"a": 1}}]})),
    "served-bom": _served(b"\xef\xbb\xbf" + dumps({"keys": [EC_PUBLIC]})),
    "served-not-utf8": _served(b'{"keys":[' + dumps(EC_PUBLIC)[:-1] + b',"n":"\xff"}]}'),
    "served-html": http_answer("200 OK", b"<html>hi</html>", "Content-Type: text/html"),
}


@pytest.mark.parametrize("case", list(HOSTILE_ANSWERS))
def test_verify_against_hostile_jwks_answer(case: str, tmp_path: Path) -> None:
    with jwks_server(HOSTILE_ANSWERS[case]) as port:
        before = snapshot(tmp_path)
        out = invoke("verify", "--url", f"http://127.0.0.1:{port}/jwks", VERIFY_TIMEOUT, "10s")
    assert_refused(out, 11, before=before, after=snapshot(tmp_path))


ROOT_CASES = [
    "garbage-status-line",
    "thousand-headers",
    "megabyte-header-line",
    "broken-chunk-size",
    "body-over-1mib-no-length",
]


@pytest.mark.parametrize("case", ROOT_CASES)
def test_verify_against_hostile_root_answer(case: str, tmp_path: Path) -> None:
    """The same answers on `/`, which verify reads first."""

    def handler(conn: socket.socket, head: bytes) -> None:
        conn.sendall(HOSTILE_ANSWERS[case])

    with raw_server(handler) as port:
        out = invoke("verify", "--url", f"http://127.0.0.1:{port}/jwks", VERIFY_TIMEOUT, "10s")
    assert_refused(out, 11)


# ---------------------------------------------------------------------------------------------
# Tokens and claims
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer("k1")


@pytest.fixture(scope="module")
def jwks_url(signer: Signer) -> Iterator[str]:
    with jwks_server(_served(dumps({"keys": [signer.public]}))) as port:
        yield f"http://127.0.0.1:{port}/jwks"


def _future() -> int:
    return int(time.time()) + 3600


def _verify(url: str, token: str, *extra: str) -> Outcome:
    return invoke("verify", "--url", url, "--token", token, *extra)


def _signature(token: str) -> list[str]:
    parts = token.split(".")
    return [parts[2]] if len(parts) == 3 and len(parts[2]) >= 16 else []


def test_a_good_token_verifies(signer: Signer, jwks_url: str) -> None:
    """The control: the server and signer used below do verify a well-formed token, so the
    refusals below are about the hostile part only."""
    token = signer.sign(signer.header(), dumps({"iss": "me", "exp": _future()}))
    out = _verify(jwks_url, token, "--iss", "me")
    assert out.code == 0, out.describe()
    assert_clean_stderr(out)
    assert_no_secret(out, _signature(token))


def hostile_tokens(signer: Signer) -> dict[str, str]:
    """Tokens correctly signed by `signer` whose header or payload is hostile, and tokens
    that are not well-formed JWS at all."""
    future = _future()
    good_payload = dumps({"exp": future})
    sign = signer.sign
    h = signer.header()
    raw_header = b'{"alg":"ES256","kid":"k1"'
    signing_input = f"{b64(h)}.{b64(good_payload)}"
    hs256 = base64.urlsafe_b64encode(
        hmac.new(dumps(signer.public), signing_input.encode(), hashlib.sha256).digest()
    )
    return {
        # headers
        "alg-list": sign(dumps({"alg": ["ES256"], "kid": "k1"}), good_payload),
        "alg-object": sign(dumps({"alg": {"ES256": 1}, "kid": "k1"}), good_payload),
        "alg-none": f"{b64(dumps({'alg': 'none', 'kid': 'k1'}))}.{b64(good_payload)}.",
        "alg-hs256-with-public-key": f"{b64(dumps({'alg': 'HS256', 'kid': 'k1'}))}."
        f"{b64(good_payload)}.{hs256.rstrip(b'=').decode()}",
        "kid-list": sign(dumps({"alg": "ES256", "kid": ["k1"]}), good_payload),
        "kid-object": sign(dumps({"alg": "ES256", "kid": {"k1": 1}}), good_payload),
        "header-duplicate-alg": sign(b'{"alg":"none","alg":"ES256","kid":"k1"}', good_payload),
        "header-nan": sign(raw_header + b',"x":NaN}', good_payload),
        "header-deep": sign(raw_header + b',"x":' + b"[" * DEEP + b"]" * DEEP + b"}", good_payload),
        "header-5000-digits": sign(raw_header + b',"x":' + b"9" * 5000 + b"}", good_payload),
        "header-not-object": sign(b'["ES256"]', good_payload),
        "header-bom": sign(b"\xef\xbb\xbf" + h, good_payload),
        "header-not-utf8": sign(raw_header + b',"x":"\xff"}', good_payload),
        # payloads
        "exp-minus-1e20": sign(h, b'{"exp":-1e20}'),
        "exp-nan": sign(h, b'{"exp":NaN}'),
        "exp-infinity": sign(h, b'{"exp":Infinity}'),
        "exp-1e999": sign(h, b'{"exp":1e999}'),
        "exp-400-digits": sign(h, b'{"exp":' + b"9" * 400 + b"}"),
        "exp-5000-digits": sign(h, b'{"exp":' + b"9" * 5000 + b"}"),
        "exp-string": sign(h, dumps({"exp": str(future)})),
        "exp-list": sign(h, dumps({"exp": [future]})),
        "exp-true": sign(h, b'{"exp":true}'),
        "nbf-nan": sign(h, f'{{"exp":{future},"nbf":NaN}}'.encode()),
        "nbf-400-digits": sign(h, f'{{"exp":{future},"nbf":{"9" * 400}}}'.encode()),
        "iat-nan": sign(h, f'{{"exp":{future},"iat":NaN}}'.encode()),
        "exp-duplicate": sign(h, f'{{"exp":1,"exp":{future}}}'.encode()),
        "iss-duplicate": sign(h, f'{{"iss":"evil","iss":"me","exp":{future}}}'.encode()),
        "payload-deep": sign(
            h, f'{{"exp":{future},"x":'.encode() + b"[" * DEEP + b"]" * DEEP + b"}"
        ),
        "payload-list": sign(h, b"[]"),
        "payload-string": sign(h, b'"exp"'),
        "payload-empty": sign(h, b""),
        "payload-not-utf8": sign(h, f'{{"exp":{future},"x":"'.encode() + b'\xff"}'),
        "payload-bom": sign(h, b"\xef\xbb\xbf" + good_payload),
        "iss-list": sign(h, dumps({"iss": ["me"], "exp": future})),
        "aud-object": sign(h, dumps({"aud": {"api": 1}, "exp": future})),
        # framing
        "signature-marker": f"{b64(h)}.{b64(good_payload)}.{marker('signature')}",
        "signature-huge": f"{b64(h)}.{b64(good_payload)}.{'A' * (2 * MIB)}",
        "non-base64url": "a+b/c.d+e/f.g+h/i",
        "two-parts": f"{b64(h)}.{b64(good_payload)}",
        "four-parts": sign(h, good_payload) + ".abc",
        "five-parts-jwe": "a.b.c.d.e",
        "empty-parts": "..",
        "dots-only": "....",
        "non-ascii": "é.é.é",
        "whitespace-inside": sign(h, good_payload).replace(".", ". ", 1),
        "nul": sign(h, good_payload)[:10] + "\x00" + sign(h, good_payload)[10:],
        "megabyte-token": "a" * (2 * MIB) + ".b.c",
    }


HOSTILE_TOKEN_IDS = list(hostile_tokens(Signer("ids")))


@pytest.mark.parametrize("case", HOSTILE_TOKEN_IDS)
def test_verify_hostile_token(case: str, signer: Signer, jwks_url: str) -> None:
    token = hostile_tokens(signer)[case]
    extra = ["--iss", "me"] if case.startswith("iss") else []
    extra += ["--aud", "api"] if case.startswith("aud") else []
    out = _verify(jwks_url, token, *extra)
    assert_refused(out, (3, 11), secrets=_signature(token))


def test_verify_hostile_token_on_stdin(signer: Signer, jwks_url: str) -> None:
    tokens = hostile_tokens(signer)
    checks = {}
    for case in ("exp-nan", "header-deep", "exp-duplicate", "signature-marker", "megabyte-token"):

        def run_one(token: str = tokens[case]) -> None:
            out = invoke("verify", "--url", jwks_url, "--token", "-", input=token + "\n")
            assert_refused(out, (3, 11), secrets=_signature(token))

        checks[case] = run_one
    each_failure(checks)


@pytest.mark.parametrize(
    ("token", "stdin"),
    [("", None), (" ", None), ("-", ""), ("-", "\n"), ("-", "   \n\n")],
    ids=["empty", "blank", "stdin-empty", "stdin-newline", "stdin-blank"],
)
def test_verify_empty_token_fails(token: str, stdin: str | None, jwks_url: str) -> None:
    """An empty $TOKEN in CI must not pass."""
    out = invoke("verify", "--url", jwks_url, "--token", token, input=stdin)
    assert_refused(out, (3, 11), mentions=["token"])


@pytest.mark.parametrize(
    "extra", [["--iss", "me"], ["--aud", "api"], ["--iss", "me", "--aud", "a", "--aud", "b"]]
)
def test_verify_claims_without_token_are_refused(extra: list[str], jwks_url: str) -> None:
    out = invoke("verify", "--url", jwks_url, *extra)
    assert_refused(out, 3, mentions=["--token"])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    claims=st.dictionaries(
        st.sampled_from(["exp", "nbf", "iat", "iss", "aud", "sub", "x"]),
        st.recursive(
            st.none()
            | st.booleans()
            | st.floats(allow_nan=True, allow_infinity=True)
            | st.integers(-(10**30), 10**30)
            | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=3), inner, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=5,
    )
)
def test_property_verify_any_claims(claims: dict[str, Any], signer: Signer, jwks_url: str) -> None:
    """Any claims (NaN and Infinity included), correctly signed: verified, or a clean refusal;
    never a crash, never the signature in the output."""
    token = signer.sign(signer.header(), json.dumps(claims).encode())
    out = _verify(jwks_url, token, "--iss", "me")
    assert_no_secret(out, _signature(token))
    if out.code == 0:
        assert_clean_stderr(out)
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        assert claims.get("iss") == "me", out.describe()
        assert type(exp) in (int, float) and time.time() - 60 < exp < 1e16, out.describe()
        assert type(nbf) in (int, float) and nbf <= time.time() + 60, out.describe()
    else:
        assert_refused(out, (3, 11))


# ---------------------------------------------------------------------------------------------
# The issue's repros 4 and 6 as it quotes them
# ---------------------------------------------------------------------------------------------


def test_a_token_with_a_nan_exp_never_verifies(tmp_path: Path) -> None:
    """A hand-made token with exp NaN (a NaN compares false with everything) never verifies,
    and -o json never prints NaN (issue 9, repro 4)."""
    signer = Signer("k1")
    token = signer.sign(signer.header(), b'{"exp":NaN}')
    with jwks_server(http_answer("200 OK", dumps({"keys": [signer.public]}))) as port:
        url = f"http://127.0.0.1:{port}/jwks"
        out = invoke("verify", "--url", url, "--token", token, "-o", "json")
    assert_refused(out, (3, 11))

    def no_constants(name: str) -> None:
        raise AssertionError(f"-o json printed {name}")

    # stdout carries the failed checks as data (their text may name NaN), never a NaN value.
    json.loads(out.stdout, parse_constant=no_constants)


def test_an_empty_token_or_claims_without_one_do_not_pass(tmp_path: Path) -> None:
    """An empty --token, an empty stdin, and --iss or --aud without a token fail
    (issue 9, repro 6)."""
    signer = Signer("k1")
    with jwks_server(http_answer("200 OK", dumps({"keys": [signer.public]}))) as port:
        url = f"http://127.0.0.1:{port}/jwks"
        assert_refused(invoke("verify", "--url", url, "--token", ""), (3, 11))
        assert_refused(invoke("verify", "--url", url, "--token", "-", input=""), (3, 11))
        assert_refused(invoke("verify", "--url", url, "--iss", "https://issuer.example"), 3)
        assert_refused(invoke("verify", "--url", url, "--aud", "api"), 3)
