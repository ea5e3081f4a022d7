"""Text from users and the cluster, made safe for a terminal: the one place that decides how
control characters, undecodable argv bytes and floods are shown."""

from __future__ import annotations

import re

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

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
