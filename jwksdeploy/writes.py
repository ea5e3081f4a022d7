"""Owned writes: output trees (`--output-dir`) and key-file sets, all-or-nothing."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import OutputError

if TYPE_CHECKING:
    from pathlib import Path


def _looks_generated(directory: Path) -> bool:
    """True when a directory holds only what --output-dir writes (YAML files, one level deep)."""
    for entry in directory.rglob("*"):
        relative = entry.relative_to(directory)
        if entry.is_dir():
            if len(relative.parts) > 1:
                return False
        elif entry.suffix != ".yaml" or len(relative.parts) > 2:
            return False
    return True


def write_tree(directory: str, files: Mapping[str, str]) -> None:
    """Write files under directory atomically: build a sibling temp dir, then swap it in.

    An existing directory is replaced only when it looks like our own earlier output, so a
    mistyped path can never wipe unrelated files.
    """
    import shutil
    import tempfile
    from pathlib import Path

    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise OutputError(f"--output-dir {directory!r} is a file. Pass a directory path.")
    if target.is_dir() and not _looks_generated(target):
        raise OutputError(
            f"--output-dir {directory!r} holds files jwksdeploy did not write. Pass an empty or "
            "new directory (an earlier jwksdeploy output is replaced as a whole)."
        )
    parent = target.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    except OSError as exc:
        raise OutputError(f"cannot create {str(parent)!r}: {exc.strerror}.") from None
    retired = None
    try:
        for relative, content in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            path.chmod(0o644)
        staging.chmod(0o755)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=parent))
            target.rename(retired / "tree")
        staging.rename(target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None and not target.exists():
            with contextlib.suppress(OSError):
                (retired / "tree").rename(target)
        raise OutputError(
            f"cannot write {directory!r}: {exc.strerror}. Nothing was changed."
        ) from None
    finally:
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)


@dataclass(frozen=True)
class OutputFile:
    """One file to write; `secret` files get mode 0600 from their first byte."""

    path: str
    content: str
    secret: bool
    replaces: bool = False  # an update of this very file (rotation), not a clobber


def write_files(outputs: list[OutputFile], force: bool) -> None:
    """Write several files all-or-nothing: each goes to a temp file beside its target, and
    only when every temp file is complete are they moved into place.

    Without force an existing target is refused, and the final link is no-clobber (O_EXCL
    semantics), so a file created meanwhile is never overwritten either.
    """
    import tempfile

    for output in outputs:
        if os.path.isdir(output.path):
            raise OutputError(f"{output.path!r} is a directory. Pass a file path.")
        if not force and not output.replaces and os.path.lexists(output.path):
            raise OutputError(
                f"{output.path!r} already exists"
                + (" and may hold a private key" if output.secret else "")
                + ". Pass --force to overwrite it, or choose another path. Nothing was written."
            )
    staged: list[tuple[OutputFile, str]] = []
    created: list[str] = []
    current = ""
    try:
        for output in outputs:
            current = output.path
            directory = os.path.dirname(os.path.abspath(output.path))
            fd, temp = tempfile.mkstemp(prefix=".jwksdeploy-", dir=directory)
            staged.append((output, temp))
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                # mkstemp already creates 0600; public files are widened only once complete.
                handle.write(output.content)
                handle.flush()
                os.fsync(handle.fileno())
            if not output.secret:
                os.chmod(temp, 0o644)
        for output, temp in staged:
            current = output.path
            if force or output.replaces:
                os.replace(temp, output.path)
            else:
                os.link(temp, output.path)
                created.append(output.path)
                os.unlink(temp)
    except FileExistsError:
        _undo(created)
        raise OutputError(
            f"{current!r} appeared while writing. Pass --force to overwrite "
            "it, or choose another path."
        ) from None
    except OSError as exc:
        _undo(created)
        raise OutputError(
            f"cannot write {current!r}: {exc.strerror}. Check that its directory exists and is "
            "writable. Nothing was written."
        ) from None
    finally:
        for _, temp in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def _undo(created: list[str]) -> None:
    """Remove files this call created, so a failure leaves nothing half-written."""
    for path in created:
        with contextlib.suppress(OSError):
            os.unlink(path)
