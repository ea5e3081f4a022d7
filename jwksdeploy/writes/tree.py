"""Owned output trees (`--output-dir`): jwksdeploy replaces or removes only files it wrote.

An output tree may be shared by several producers (`render`, `gateway <provider>`) and by the
user's own files; the manifest (plan.py) proves which files are ours and unedited. A write
takes the directory's lock, records the new files in the manifest (beside the sha256 of what
they replace) before the first one lands, replaces each file atomically, and writes the final
manifest last. A killed run leaves each file old or new, both provably ours, so rerunning
converges. Paths below the directory are reached through directory descriptors opened with
O_NOFOLLOW: a symlink inside it is never followed.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import OutputError
from .atomic import (
    DIR_FLAGS,
    check_path_text,
    drop,
    locked,
    put,
    read_small,
    sha256_of,
    stage,
    sweep,
)
from .plan import (
    MANIFEST,
    MISSING,
    Manifest,
    OnDisk,
    TreePlan,
    check_relative,
    manifest_json,
    parents,
    parse_manifest,
    paths_to_inspect,
    plan_tree,
    refusal_message,
    shown_path,
)

_SHOWN = 5


# --- doing: one output directory ----------------------------------------------------------


class _Root:
    """An open output directory; every path below it is reached through directory
    descriptors opened with O_NOFOLLOW, so nothing here ever follows a symlink."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._dirs: dict[str, int] = {}

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()
        os.close(self.fd)

    def dir_fd(self, directory: str) -> int:
        if not directory:
            return self.fd
        if directory not in self._dirs:
            above, _, name = directory.rpartition("/")
            fd = os.open(name, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=self.dir_fd(above))
            self._dirs[directory] = fd
        return self._dirs[directory]

    def at(self, path: str) -> tuple[int, str]:
        above, _, name = path.rpartition("/")
        return self.dir_fd(above), name

    def inspect(self, path: str) -> OnDisk:
        for directory in [*parents(path), path]:
            try:
                fd, name = self.at(directory)
                mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return MISSING
            if directory != path and not stat.S_ISDIR(mode):
                return OnDisk("blocked")
        if stat.S_ISLNK(mode):
            return OnDisk("symlink")
        if stat.S_ISDIR(mode):
            return OnDisk("directory")
        try:
            data = read_small(fd, name) if stat.S_ISREG(mode) else None
        except ValueError:
            data = None
        return OnDisk("other") if data is None else OnDisk("file", sha256_of(data))

    def sweep(self, directories: Sequence[str]) -> None:
        """Our temp files left by a killed run, in every directory of this tree we know."""
        for directory in directories:
            with contextlib.suppress(OSError):
                sweep(self.dir_fd(directory))

    def rmdir(self, path: str) -> None:
        """Remove a directory if empty; one not empty holds the user's files, so is theirs."""
        for cached in [d for d in self._dirs if d == path or d.startswith(path + "/")]:
            os.close(self._dirs.pop(cached))
        with contextlib.suppress(OSError):
            fd, name = self.at(path)
            os.rmdir(name, dir_fd=fd)


@dataclass(frozen=True)
class TreeResult:
    """What a write_tree run did that the user should hear about."""

    released: tuple[str, ...]
    forced: tuple[str, ...]

    def notes(self, directory: str) -> list[str]:
        """Lines for stderr beyond the summary."""
        lines = []
        if self.forced:
            lines.append(
                f"--force replaced {_listing(directory, self.forced)}, which jwksdeploy had not "
                "written (or which were edited since)"
            )
        if self.released:
            lines.append(
                f"kept {_listing(directory, self.released)}: no longer in this output, but "
                "edited since jwksdeploy wrote them, so they are yours now"
            )
        return lines


def _listing(directory: str, paths: Sequence[str]) -> str:
    shown = ", ".join(shown_path(directory, path) for path in paths[:_SHOWN])
    return shown + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")


def write_tree(
    directory: str, files: Mapping[str, str], producer: str, force: bool = False
) -> TreeResult:
    """Write one producer's files under directory; replace or remove only its own earlier
    output (see the module docstring). OutputError, with nothing changed, on a refusal."""
    check_path_text("--output-dir", directory)
    for path in files:
        try:
            check_relative(path)
        except ValueError as exc:
            raise OutputError(f"cannot write {exc}. This is a bug in jwksdeploy.") from None
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise OutputError(f"--output-dir {directory!r} is not a directory. Pass a directory path.")
    try:
        os.makedirs(directory, exist_ok=True)
        root = _Root(os.open(directory, DIR_FLAGS))
    except OSError as exc:
        raise OutputError(
            f"cannot create or open --output-dir {directory!r}: {exc.strerror}. Pass a "
            "directory you can write."
        ) from None
    try:
        with locked(root.fd, directory):
            manifest, old = _read_manifest(root, directory, force)
            try:
                wanted = paths_to_inspect(files, producer, manifest)
                disk = {path: root.inspect(path) for path in wanted}
            except OSError as exc:
                raise _read_failure(directory, exc) from None
            plan = plan_tree(files, producer, manifest, disk, force)
            if plan.refusals:
                raise OutputError(refusal_message(directory, plan.refusals))
            known = {d for path in [*manifest.files, *files] for d in parents(path)}
            root.sweep(sorted(known | manifest.dirs | {""}))
            if plan.changes:
                _write(root, directory, plan, old)
    finally:
        root.close()
    return TreeResult(plan.released, tuple(refusal.path for refusal in plan.forced))


def _read_manifest(root: _Root, directory: str, force: bool) -> tuple[Manifest, bytes | None]:
    """The manifest and its bytes (None when there is none)."""
    try:
        data = read_small(root.fd, MANIFEST)
        return (parse_manifest(data) if data is not None else Manifest()), data
    except (ValueError, RecursionError) as exc:
        if not force:
            raise OutputError(
                f"{shown_path(directory, MANIFEST)}, the record of the files jwksdeploy wrote "
                f"there, is damaged ({exc}). Nothing was changed. Restore it (e.g. from version "
                "control), or pass --force to start a new one: the files it listed then count "
                "as not written by jwksdeploy."
            ) from None
        return Manifest(), None
    except OSError as exc:
        raise _read_failure(directory, exc) from None


def _read_failure(directory: str, exc: OSError) -> OutputError:
    where = f" ({exc.filename})" if exc.filename else ""
    return OutputError(
        f"cannot read --output-dir {directory!r}{where}: {exc.strerror}. Nothing was changed. "
        "Check its permissions."
    )


def _write(root: _Root, directory: str, plan: TreePlan, old: bytes | None) -> None:
    """The interim manifest and the directories, every file staged, then each put in place,
    then the final manifest. A failure before the first file lands puts the manifest back and
    removes the new directories; after it there is no undo: the interim manifest proves the
    tree ours, and a rerun finishes it."""
    current, made, landed = MANIFEST, [], 0
    paths = [*plan.writes, *plan.removes]
    staged: list[tuple[str, int | None]] = []
    try:
        if plan.interim != plan.manifest and paths:
            _replace(root, MANIFEST, manifest_json(plan.interim).encode())
        for current in plan.mkdirs:
            fd, name = root.at(current)
            os.mkdir(name, 0o755, dir_fd=fd)
            made.append(current)
        for current, content in plan.writes.items():
            fd, name = root.at(current)
            staged.append((stage(name, content.encode(), 0o644, fd), fd))
        for landed, current in enumerate(paths):
            fd, name = root.at(current)
            put(staged[landed][0] if landed < len(staged) else None, name, fd)
        landed = len(paths)
    except OSError as exc:
        drop(staged[landed:])
        outcome = "Some files were replaced; rerun once it is fixed."
        if not landed:
            outcome = "Nothing was changed."
            for made_dir in reversed(made):
                root.rmdir(made_dir)
            with contextlib.suppress(OSError):
                _replace(root, MANIFEST, old)
        raise OutputError(
            f"cannot write {shown_path(directory, current)}: {exc.strerror}. {outcome} Check "
            "that the directory is writable and its files are not immutable (lsattr)."
        ) from None
    for path in plan.rmdirs:
        root.rmdir(path)
    if plan.manifest_changed or plan.interim != plan.manifest:
        try:
            _replace(root, MANIFEST, manifest_json(plan.manifest).encode())
        except OSError as exc:
            raise OutputError(
                f"cannot write {shown_path(directory, MANIFEST)}: {exc.strerror}. The "
                "files are written; rerun once it is fixed to record them."
            ) from None


def _replace(root: _Root, path: str, data: bytes | None) -> None:
    """Replace a file at the top of the tree (data None: remove it if there)."""
    try:
        put(None if data is None else stage(path, data, 0o644, root.fd), path, root.fd)
    except FileNotFoundError:
        if data is not None:
            raise
