"""verify's run(): the checks it ran as data, the token's refusal as a value, input errors
before anything is read or fetched, and the CLI printing exactly that Result. Servers are
`serve`'s own, or a scripted one, on 127.0.0.1."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from jwksdeploy.errors import InputError, VerificationFailed
from jwksdeploy.token_commands import SignOptions, run_sign
from jwksdeploy.verify import VerifyOptions, run, token_from_stdin

from . import helpers
from .helpers import jwks_bytes, oct_key, serving

NOW = 1_767_225_600
KEY = oct_key(kid="o")


def nowhere() -> str:
    raise AssertionError("verify looked for a server it should not need")


@pytest.fixture
def keys(tmp_path: Path) -> str:
    path = tmp_path / "jwks.json"
    path.write_bytes(jwks_bytes(KEY))
    return str(path)


def token(keys: str, **claims: Any) -> str:
    extra = tuple(f"{name}={json.dumps(value)}" for name, value in claims.items())
    return run_sign(SignOptions(keys, issuer="me", claims=extra), NOW).token


def test_offline_the_file_is_the_one_check_and_the_token_report_says_the_rest(
    keys: str,
) -> None:
    result = run(VerifyOptions(local_path=keys, token=token(keys)), nowhere, NOW)
    assert [(c.name, c.status) for c in result.checks] == [("file", "passed")]
    assert result.failure is None and result.url is None
    assert result.token is not None
    passed = result.token.names("passed")
    assert (passed[0], passed[-1]) == ("format", "signature") and "exp" in passed
    assert "iss" in result.token.names("not checked")
    assert result.lines() == [
        f'{keys} holds 1 key(s): "o"',
        'token verified by key "o" (HS256): signature, exp, iat checked; issuer and audience '
        "not checked: pass --issuer/--audience",
    ]
    document = result.as_json()
    assert set(document) == {"file", "kids", "token"}
    assert document["token"]["kid"] == "o" and document["token"]["ok"] is True


def test_a_refused_token_is_a_value_naming_the_check_that_failed(keys: str) -> None:
    options = VerifyOptions(local_path=keys, token=token(keys), issuer="someone-else")
    result = run(options, nowhere, NOW)
    failure = result.failure
    assert isinstance(failure, VerificationFailed)
    assert result.token is not None and result.token.failed is not None
    assert result.token.failed.name == "iss"
    assert str(failure) == result.token.failed.detail
    assert result.token.names("passed")[:1] == ["format"]  # what ran before it is kept
    assert result.as_json()["token"] == result.token.as_json()
    assert result.lines() == [f'{keys} holds 1 key(s): "o"']  # nothing about the token held


def test_the_cli_prints_the_result_and_exits_with_its_failure(keys: str) -> None:
    signed = token(keys)
    options = VerifyOptions(local_path=keys, token=signed, issuer="someone-else")
    expected = run(options, nowhere, NOW).as_json()
    cli = helpers.run(
        "verify", "--jwks", keys, "--token", signed, "--issuer", "someone-else", "-o", "json"
    )
    assert cli.exit_code == 11
    got = json.loads(cli.stdout)
    assert got["token"]["checks"][-1] == expected["token"]["checks"][-1]
    assert cli.stderr.startswith('error: the token\'s issuer is "me"')


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (VerifyOptions(token=" "), "--token is empty"),
        (VerifyOptions(url="http://127.0.0.1:1", issuer="me"), "no --token was given"),
        (VerifyOptions(audiences=("a",), local_path="missing.json"), "no --token was given"),
        (VerifyOptions(token="t"), "--token needs keys to verify against"),
    ],
)
def test_flags_that_mean_nothing_alone_are_refused_before_anything_is_read(
    options: VerifyOptions, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        run(options, nowhere)


def test_online_the_server_checks_come_in_order_and_the_url_is_located_once(keys: str) -> None:
    located: list[str] = []
    with serving(jwks_bytes(KEY)) as url:

        def locate() -> str:
            located.append(url)
            return url

        options = VerifyOptions(url=url, local_path=keys, token=token(keys), issuer="me")
        result = run(options, locate, NOW)
    assert located == [url]
    assert [c.name for c in result.checks] == ["root", "jwks", "local"]
    assert all(c.status == "passed" for c in result.checks)
    assert result.failure is None
    document = result.as_json()
    assert (document["url"], document["kids"], document["matchesLocal"]) == (url, ["o"], True)
    assert result.token is not None and "iss" in result.token.names("passed")


def test_the_cli_prints_ok_for_each_line_of_the_result(keys: str) -> None:
    with serving(jwks_bytes(KEY)) as url:
        expected = run(VerifyOptions(url=url, local_path=keys), lambda: url).lines()
        cli = helpers.run("verify", "--url", url, "--jwks", keys)
    assert cli.exit_code == 0, cli.stderr
    assert cli.stdout.splitlines() == [f"ok: {line}" for line in expected]


class _Root(BaseHTTPRequestHandler):
    """`/` answers success; `/jwks` serves a set other than the local file."""

    def do_GET(self) -> None:
        body = b"success" if self.path == "/" else jwks_bytes(oct_key(kid="other"))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def other_keys() -> Iterator[str]:
    with helpers.running(HTTPServer(("127.0.0.1", 0), _Root)) as port:
        yield f"http://127.0.0.1:{port}/jwks"


def test_a_server_check_that_fails_raises_at_once_and_the_token_is_not_checked(
    keys: str,
) -> None:
    with other_keys() as url, pytest.raises(VerificationFailed, match="served JWKS differs"):
        run(VerifyOptions(url=url, local_path=keys, token="not.even.checked"), lambda: url)


def test_a_token_from_stdin_is_stripped_and_must_not_be_empty() -> None:
    assert token_from_stdin(io.BytesIO(b"  a.b.c \nmore\n")) == "a.b.c"
    with pytest.raises(InputError, match="read no token from stdin"):
        token_from_stdin(io.BytesIO(b"\n"))
