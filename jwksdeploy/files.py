"""The file-system edge for inputs: bounded reads and values files."""

from __future__ import annotations

import os
import sys
from typing import Any

from .errors import InputError, OutputError

MAX_INPUT_BYTES = 1 << 20  # a JWKS must fit a ConfigMap (1 MiB); no input of ours is larger
# Inputs `jwksdeploy jwks generate` makes: a missing one says so.
_KEY_FILES = ("JWKS file", "key file", "private key set")


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
            "`jwksdeploy jwks generate` (it writes jwks.json and jwks.private.json)."
            if what in _KEY_FILES
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


def refuse_tracked_secret(path: str) -> None:
    """Refuse to write a secret where git would track it (`git add -A` would commit it).

    Asks git itself (`git check-ignore`), so every .gitignore, info/exclude and core.excludesFile
    counts. No git, or not inside a work tree: nothing to refuse.
    """
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None or path == "-":
        return
    target = os.path.abspath(path)
    folder = os.path.dirname(target)
    while folder and not os.path.isdir(folder):  # the writer creates missing folders
        folder = os.path.dirname(folder)
    try:
        inside = subprocess.run(
            [git, "-C", folder, "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return
        ignored = subprocess.run(
            [git, "-C", folder, "check-ignore", "-q", "--", target],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return  # git cannot answer; writing stays as safe as without git
    if ignored.returncode == 1:  # 0: ignored; 128: git could not decide (outside the tree)
        name = os.path.basename(target)
        raise OutputError(
            f"refusing to write {path!r}, which holds a private key: it is inside a git work "
            "tree and not ignored, so `git add -A` would commit it. Ignore it first (`echo "
            f"'{name}' >> .gitignore`), or write it outside the work tree (--private PATH; "
            "--jwks PATH for an oct set). Nothing was written."
        )
