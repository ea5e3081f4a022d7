"""Key files: a private set, the public set derived from it, and the rotation record beside
them. The private set is written first, as the source of truth: a run killed between two
files leaves the sets out of step, which the next key command refuses (naming the repair)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..errors import OutputError
from ..files import refuse_tracked_secret
from .atomic import DIR_FLAGS, check_path_text, drop, locked, put, stage


@dataclass(frozen=True)
class OutputFile:
    """One file to write; `secret` files get mode 0600 from their first byte."""

    path: str
    content: str
    secret: bool
    replaces: bool = False  # an update of this very file (rotation), not a clobber


def same_file(first: str, second: str) -> bool:
    """One file under two names: the same path once resolved, or the same inode (a hard link)."""
    try:
        resolved = os.path.realpath(first) == os.path.realpath(second)
        return resolved or os.path.samefile(first, second)
    except (OSError, ValueError):  # missing, or no file name at all (a NUL byte)
        return False


@contextlib.contextmanager
def key_files_locked(paths: Sequence[str]) -> Iterator[None]:
    """Lock the directories of these files (in one order for every process, so two writers
    cannot deadlock), removing what a killed write left there. Reentrant within a thread."""
    for path in paths:
        check_path_text("a key file path", path)
    folders = {os.path.dirname(os.path.abspath(path)): path for path in reversed(paths)}
    with contextlib.ExitStack() as stack:
        opened: list[tuple[tuple[int, int], int, str]] = []
        for folder, shown in folders.items():
            try:
                fd = os.open(folder, DIR_FLAGS)
            except OSError as exc:
                raise OutputError(
                    f"cannot write {shown!r}: {exc.strerror} ({folder}). Check that its "
                    "directory exists and is writable. Nothing was written."
                ) from None
            stack.callback(os.close, fd)
            info = os.fstat(fd)
            opened.append(((info.st_dev, info.st_ino), fd, folder))
        for _, fd, folder in sorted(opened):
            stack.enter_context(locked(fd, folder))
        yield


def write_files(outputs: Sequence[OutputFile], force: bool) -> None:
    """Write several files in order (the private set first): all staged, then each put in
    place. A failure while staging changes nothing; one while putting a later file leaves the
    earlier ones new (no undo). Without force an existing target is refused, and a new file
    is linked into place, so one created meanwhile is never overwritten either."""
    for output in outputs:
        check_path_text("an output path", output.path)
    for index, output in enumerate(outputs):
        if any(same_file(output.path, other.path) for other in outputs[:index]):
            names = " and ".join(repr(o.path) for o in outputs)
            raise OutputError(f"{names} are the same file. Give each its own.")
    with key_files_locked([output.path for output in outputs]):
        for output in outputs:
            if os.path.isdir(output.path):
                raise OutputError(f"{output.path!r} is a directory. Pass a file path.")
            if os.path.exists(output.path) and not os.path.isfile(output.path):
                raise OutputError(
                    f"{output.path!r} is not a regular file (a device or a pipe?). Pass a file "
                    "path, or '-' where stdout is accepted. Nothing was written."
                )
            if not force and not output.replaces and os.path.lexists(output.path):
                raise OutputError(
                    f"{output.path!r} already exists"
                    + (" and may hold a private key" if output.secret else "")
                    + ". Pass --force to overwrite it, or choose another path. Nothing was "
                    "written."
                )
            if output.secret:
                refuse_tracked_secret(output.path)
        staged: list[tuple[str, int | None]] = []
        try:
            for output in outputs:
                mode = 0o600 if output.secret else 0o644
                data = output.content.encode("utf-8")
                staged.append((stage(os.path.abspath(output.path), data, mode), None))
        except OSError as exc:
            drop(staged)
            raise OutputError(_failure(outputs, len(staged), exc, staged=False)) from None
        for index, output in enumerate(outputs):
            try:
                put(staged[index][0], os.path.abspath(output.path), None, force or output.replaces)
            except OSError as exc:
                drop(staged[index:])
                raise OutputError(_failure(outputs, index, exc, staged=True)) from None


def _failure(outputs: Sequence[OutputFile], index: int, error: OSError, staged: bool) -> str:
    current = outputs[index].path
    if staged and index:  # no undo: the ones before it are new (docs/reference.md, Key files)
        written = " and ".join(repr(o.path) for o in outputs[:index])
        return (
            f"cannot replace {current!r}: {error.strerror}, after {written} "
            f"{'was' if index == 1 else 'were'} written. The next key command refuses the "
            "files as out of step and says how to bring them back in step."
        )
    others = [repr(o.path) for o in outputs if o.path != current]
    verb = "is" if len(others) == 1 else "are"
    unchanged = f"{' and '.join(others)} {verb}" if others else "it is"
    if isinstance(error, FileExistsError):
        return (
            f"{current!r} appeared while writing. Pass --force to overwrite it, or choose "
            "another path. Nothing was written."
        )
    if not staged:
        return (
            f"cannot write {current!r}: {error.strerror}. Check that its directory exists "
            "and is writable. Nothing was written."
        )
    return (
        f"cannot replace {current!r}: {error.strerror}. Is it immutable or append-only "
        f"(lsattr), or its directory read-only? Nothing was written: {unchanged} unchanged too."
    )
