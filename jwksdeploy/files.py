"""The file-system edge for inputs: bounded reads and values files."""

from __future__ import annotations

import os
import sys
from typing import Any

from .errors import InputError

MAX_INPUT_BYTES = 1 << 20  # a JWKS must fit a ConfigMap (1 MiB); no input of ours is larger


def read_bounded(path: str, what: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a file (or of stdin for '-'), never reading more than limit + 1 bytes,
    whatever the file is (/dev/zero, a pipe that never ends)."""
    if "\x00" in path:
        raise InputError(f"{what} {path!r} holds a NUL byte, which no file name can. Fix it.")
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            # O_NONBLOCK only for the open: a FIFO nobody writes to would block open() forever;
            # once open, a FIFO without a writer reads as empty instead.
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with open(descriptor, "rb") as handle:
                os.set_blocking(descriptor, True)
                data = handle.read(limit + 1)
    except FileNotFoundError:
        raise InputError(
            f"{what} {path!r} does not exist. Pass the right path, or create one with "
            "`jwksdeploy jwks generate --out jwks.json`."
            if what == "JWKS file"
            else f"{what} {path!r} does not exist. Check the path."
        ) from None
    except IsADirectoryError:
        raise InputError(f"{what} {path!r} is a directory. Pass a file.") from None
    except OSError as exc:
        raise InputError(
            f"{what} {path!r} cannot be read: {exc.strerror or type(exc).__name__}."
        ) from None
    if len(data) > limit:
        shown = "stdin" if path == "-" else repr(path)
        raise InputError(
            f"{what} {shown} is larger than {limit // 1024} KiB, more than any {what} can be. "
            "Pass the right file."
        )
    return data


def read_input(path: str, what: str) -> bytes:
    """The bytes of an input file (or stdin for '-'), at most MAX_INPUT_BYTES."""
    return read_bounded(path, what, MAX_INPUT_BYTES)


def relative_to_file(path: str, anchor_file: str) -> str:
    """A path from a values file is relative to that file (as kustomize does), not to $PWD."""
    if path == "-" or os.path.isabs(path) or anchor_file == "-":
        return path
    return os.path.join(os.path.dirname(anchor_file), path)


def read_values(path: str) -> Any:
    """A --values YAML file, parsed safely."""
    from .safeyaml import load_yaml

    return load_yaml(read_input(path, "values file"), f"values file {path!r}", mode="values")
