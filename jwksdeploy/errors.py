"""One exception tree; each class carries the exit code the CLI turns it into.

The table in docs/reference.md ("Exit codes") is generated from EXIT_CODES below and checked
by a test, so the two never drift.
"""

from __future__ import annotations

import re

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


INTERNAL_ERROR = 70  # sysexits' EX_SOFTWARE: 1 is kubectl diff's "something differs"


class JwksDeployError(Exception):
    """Base of every error we expect; its message is one paragraph for a human."""

    exit_code = INTERNAL_ERROR
    title = "internal error"


class Differences(JwksDeployError):
    """`diff`: applying would change something; `status`: the live JWKS differs from --jwks or
    the rollout is incomplete (kubectl diff's convention; not a failure of the command)."""

    exit_code = 1
    title = "differences"


class InputError(JwksDeployError):
    """A flag, values file, JWKS file or key file is malformed or out of range."""

    exit_code = 3
    title = "invalid input"


class JwksRejected(JwksDeployError):
    """The JWKS failed its checks (private material, duplicates, or warnings under --strict)."""

    exit_code = 4
    title = "JWKS rejected"


class OutputError(JwksDeployError):
    """Writing files failed; nothing was left half-written."""

    exit_code = 5
    title = "cannot write output"


class ClusterUnreachable(JwksDeployError):
    """No kubeconfig, the API server cannot be reached, or it refused our credentials (401)."""

    exit_code = 6
    title = "cluster unreachable"


class Forbidden(JwksDeployError):
    """The API server answered 403 for a verb on a resource."""

    exit_code = 7
    title = "forbidden"


class Conflict(JwksDeployError):
    """Server-side apply conflicted with another field manager (409)."""

    exit_code = 8
    title = "conflict"


class ClusterRejected(JwksDeployError):
    """The API server refused an object (422/400) or a namespace or object is missing."""

    exit_code = 9
    title = "rejected by the cluster"


class WaitTimeout(JwksDeployError):
    """Pods did not become ready, objects did not go away, or a request timed out."""

    exit_code = 10
    title = "timed out"


class VerificationFailed(JwksDeployError):
    """A live endpoint, served JWKS or token did not pass verification."""

    exit_code = 11
    title = "verification failed"


class TooEarly(JwksDeployError):
    """A rotation step was asked for before it is safe; the message says when it will be."""

    exit_code = 12
    title = "too early"

    def __init__(self, message: str, safe_at: float | None = None) -> None:
        super().__init__(message)
        self.safe_at = safe_at


STEP_DUE = 13  # `rotate status` when a rotation step is due now

EXIT_CODES: list[tuple[int, str]] = [
    (0, "success"),
    (1, " ".join((Differences.__doc__ or "").split())),
    (2, "usage error: unknown flag, missing argument, bad choice (reported by Click)"),
    *[
        (cls.exit_code, (cls.__doc__ or "").strip())
        for cls in (
            InputError,
            JwksRejected,
            OutputError,
            ClusterUnreachable,
            Forbidden,
            Conflict,
            ClusterRejected,
            WaitTimeout,
            VerificationFailed,
            TooEarly,
        )
    ],
    (STEP_DUE, "`rotate status`: a rotation step is due now (not an error)."),
    (
        INTERNAL_ERROR,
        "unexpected internal error (please report it; set JWKSDEPLOY_DEBUG=1 for a traceback)",
    ),
]


# An error quotes what it refuses; a 1 MiB path, kid or value must not flood the terminal.
MAX_PRINTABLE = 2000


# What a terminal would act on inside kept lines: C0 controls but tab and newline (ESC starts
# an escape sequence, BEL rings, CR rewrites the line), DEL, C1 (CSI in 8-bit terminals) and
# lone surrogates from undecodable argv.
_TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape", "backslashreplace").decode("ascii")


def terminal_text(text: str) -> str:
    """Text with its lines kept and every other control character shown escaped (\\x1b), so
    a kid, a file name or the cluster's text cannot drive the terminal."""
    return _TERMINAL_CONTROLS.sub(_escaped, text)


def printable(text: str) -> str:
    """Text safe for one line of a terminal: line breaks become spaces, other control
    characters (terminal escapes) and undecodable bytes from argv are shown escaped, and the
    middle of a text longer than MAX_PRINTABLE is left out (the fix is said at the end)."""

    def escape(match: re.Match[str]) -> str:
        return " " if match.group() in "\n\r\t" else _escaped(match)

    if len(text) > MAX_PRINTABLE:
        head, tail = MAX_PRINTABLE * 2 // 3, MAX_PRINTABLE // 3
        left_out = len(text) - head - tail
        text = f"{text[:head]} [...{left_out} characters left out...] {text[-tail:]}"
    return _UNPRINTABLE.sub(escape, text)
