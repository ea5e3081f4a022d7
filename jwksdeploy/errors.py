"""One exception tree; each class carries the exit code the CLI turns it into.

The table in README.md ("Exit codes") is generated from EXIT_CODES below and checked
by a test, so the two never drift.
"""

from __future__ import annotations

import re

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


INTERNAL_ERROR = 70  # sysexits' EX_SOFTWARE: 1 is kubectl diff's "something differs"


class JwksDeployError(Exception):
    """Base of every error we expect; its message is one paragraph for a human.

    What a command had done when the error came is data on the error (set by the command,
    never by rewriting its text), and `format_message()` turns it into the sentences the CLI
    prints after the message."""

    exit_code = INTERNAL_ERROR
    title = "internal error"
    # A pre-flight refusal: no write happened (`left_behind`: namespaces created for the dry
    # run that could not be deleted again).
    changed_nothing = False
    left_behind: tuple[str, ...] = ()
    # What had landed when it failed: (kind, name, outcome) in the order applied.
    landed: tuple[tuple[str, str, str], ...] = ()

    def refused_before_writes(self, left_behind: tuple[str, ...] = ()) -> JwksDeployError:
        """Mark this error as found by a dry run before any write; returns self."""
        self.changed_nothing = True
        self.left_behind = left_behind
        return self

    def after_writes(self, landed: tuple[tuple[str, str, str], ...]) -> JwksDeployError:
        """Record what had already changed when this error came; returns self."""
        self.landed = landed
        return self

    def format_message(self) -> str:
        """The message with what was (not) changed and whether running again converges."""
        text = str(self)
        if self.changed_nothing:
            text += " Nothing was changed: a dry run found this before any write."
            if self.left_behind:
                names = ", ".join(repr(n) for n in self.left_behind)
                text += (
                    f" Except: namespace {names}, created for the dry run, could not be deleted "
                    "again; delete it yourself (kubectl delete namespace NAME)."
                )
        if self.landed:
            done = ", ".join(
                f"{kind.lower()}/{name} {outcome}" for kind, name, outcome in self.landed
            )
            text += f" Already applied: {done}. {self._converges()}"
        return text

    def _converges(self) -> str:
        recreated = {(kind, name) for kind, name, outcome in self.landed if outcome != "deleted"}
        gone = [
            (kind, name)
            for kind, name, outcome in self.landed
            if outcome == "deleted" and (kind, name) not in recreated
        ]
        if gone:
            return (
                f"The endpoint is down: {gone[0][0].lower()}/{gone[0][1]} was deleted and not "
                "created again; run the command again (without --recreate) to create it."
            )
        if isinstance(self, (ClusterUnreachable, WaitTimeout)):
            return "Running the command again converges once the API server answers."
        if isinstance(self, Forbidden):
            return "Running the command again converges once that permission is granted."
        return (
            "Fix the cause above, then run the command again; the objects already applied "
            "keep serving as before."
        )


class NamespacesFailed(JwksDeployError):
    """Some namespaces of a multi-namespace run failed; exits with the first one's code."""

    def __init__(
        self, failures: list[tuple[str, JwksDeployError]], total: int, others: str
    ) -> None:
        names = ", ".join(namespace for namespace, _ in failures)
        super().__init__(f"{len(failures)} of {total} namespaces failed ({names}); {others}.")
        self.failures = tuple(failures)
        self.exit_code = failures[0][1].exit_code

    def format_message(self) -> str:
        each = " ".join(f"[{ns}] {error.format_message()}" for ns, error in self.failures)
        return f"{self} {each}"


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
