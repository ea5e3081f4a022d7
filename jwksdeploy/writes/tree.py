"""Owned output trees (`--output-dir`): jwksdeploy replaces or removes only files it wrote.

An output tree may be shared by several producers (`render`, `gateway <provider>`) and by the
user's own files. A manifest in the directory (`.jwksdeploy-manifest.json`: each file's path,
sha256 and producer) proves which files are ours and unedited. Deciding is pure
(`plan_tree`); doing takes the directory's lock, records the new files in the manifest
(beside the sha256 of what they replace) before the first one lands, replaces each file
atomically, and writes the final manifest last. A killed run leaves each file old or new,
both provably ours, so rerunning converges. Paths below the directory are reached through
directory descriptors opened with O_NOFOLLOW: a symlink inside it is never followed.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import OutputError
from .atomic import (
    DIR_FLAGS,
    STAGING_PREFIX,
    Change,
    ChangeFailed,
    apply_changes,
    check_path_text,
    locked,
    read_small,
    sha256_of,
    sweep,
)

MANIFEST = ".jwksdeploy-manifest.json"
_SHOWN = 5  # paths named in one error before "and N more"

Kind = Literal["missing", "file", "symlink", "directory", "other", "blocked"]


# --- deciding (pure) -----------------------------------------------------------------------


@dataclass(frozen=True)
class OnDisk:
    """What sits at a path below the output directory, symlinks not followed.

    `blocked`: a parent of the path is not a directory (a file or a symlink)."""

    kind: Kind
    sha256: str | None = None  # of a regular file


MISSING = OnDisk("missing")


@dataclass(frozen=True)
class Owned:
    """A manifest entry: the file as jwksdeploy wrote it, and which producer did.

    `previous`: while a run is replacing the file, the sha256 of the version it replaces
    (a killed run leaves either one, and both are ours)."""

    sha256: str
    producer: str
    previous: str | None = None

    def proves(self, digest: str | None) -> bool:
        return digest is not None and digest in (self.sha256, self.previous)


@dataclass(frozen=True)
class Manifest:
    """The files jwksdeploy wrote in one output directory, and the directories it created."""

    files: Mapping[str, Owned] = field(default_factory=dict)
    dirs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Refusal:
    """A path this run would have to touch but may not; `forcible` ones yield to --force."""

    path: str
    reason: str
    forcible: bool


@dataclass(frozen=True)
class TreePlan:
    """What one producer's run does to an output directory."""

    writes: Mapping[str, str]  # relative path -> new content
    unchanged: tuple[str, ...]  # ours already, same bytes: not rewritten
    removes: Mapping[str, str]  # our stale files -> the sha256 they must still have
    released: tuple[str, ...]  # our stale files edited since: kept, and no longer ours
    mkdirs: tuple[str, ...]  # shallowest first
    rmdirs: tuple[str, ...]  # directories we created that nothing of ours needs; deepest first
    refusals: tuple[Refusal, ...]  # any of these: change nothing
    forced: tuple[Refusal, ...]  # what --force overrode
    manifest: Manifest
    manifest_changed: bool
    interim: Manifest = Manifest()  # written before the first file: proves old and new ours

    @property
    def changes(self) -> bool:
        return bool(self.writes or self.removes or self.rmdirs or self.manifest_changed)


def check_relative(path: str) -> None:
    """Refuse (ValueError) a path that could leave the directory or collide with our records."""
    parts = path.split("/")
    if (
        not path
        or "\\" in path
        or "\0" in path
        or any(part in ("", ".", "..") for part in parts)
        or parts[-1].startswith(STAGING_PREFIX)
    ):
        raise ValueError(f"{path!r} is not a plain relative path inside the output directory")


def parents(path: str) -> list[str]:
    """The directories above a relative path, shallowest first: a/b/c -> [a, a/b]."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: index + 1]) for index in range(len(parts))]


def paths_to_inspect(files: Mapping[str, str], producer: str, manifest: Manifest) -> list[str]:
    """Every path plan_tree asks about: targets, their parents, and this producer's old files."""
    wanted: dict[str, None] = {}
    for path in files:
        wanted.update(dict.fromkeys(parents(path)))
        wanted[path] = None
    for path, owner in manifest.files.items():
        if owner.producer == producer:
            wanted[path] = None
    return list(wanted)


def plan_tree(
    files: Mapping[str, str],
    producer: str,
    manifest: Manifest,
    disk: Mapping[str, OnDisk],
    force: bool,
) -> TreePlan:
    """Decide what a producer's run writes, keeps, removes and refuses.

    `disk` holds what `paths_to_inspect` names (a path not in it counts as missing). Only
    files the manifest lists for this producer, unedited, are replaced or removed without
    --force; other producers' entries and every unlisted file are left alone.
    """
    refusals: dict[str, Refusal] = {}
    forced: list[Refusal] = []
    writes: dict[str, str] = {}
    unchanged: list[str] = []
    mkdirs: list[str] = []
    owned = {path: owner for path, owner in manifest.files.items() if owner.producer != producer}
    dirs = set(manifest.dirs)
    for path, content in files.items():
        digest = sha256_of(content.encode("utf-8"))
        blocked = False
        for directory in parents(path):
            kind = disk.get(directory, MISSING).kind
            if kind == "missing":
                if directory not in mkdirs:
                    mkdirs.append(directory)
                dirs.add(directory)
            elif kind != "directory":
                if kind != "blocked":  # a shallower parent already explains it
                    reason = f"{_a(kind)} where a directory is needed"
                    refusals.setdefault(directory, Refusal(directory, reason, False))
                blocked = True
                break
        if blocked:
            continue
        state = disk.get(path, MISSING)
        refusal = _replace_refusal(path, state, manifest.files.get(path), producer)
        owned[path] = Owned(digest, producer)
        if refusal is None:
            if state.kind == "file" and state.sha256 == digest:
                unchanged.append(path)
            else:
                writes[path] = content
        elif refusal.forcible and force:
            forced.append(refusal)
            writes[path] = content
        else:
            refusals[path] = refusal
    removes: dict[str, str] = {}
    released: list[str] = []
    for path, owner in sorted(manifest.files.items()):
        if owner.producer != producer or path in files:
            continue
        state = disk.get(path, MISSING)
        if state.kind == "file" and state.sha256 is not None and owner.proves(state.sha256):
            removes[path] = state.sha256
        elif state.kind != "missing":
            released.append(path)
    needed = {directory for path in owned for directory in parents(path)}
    rmdirs = sorted(dirs - needed, key=lambda d: (-d.count("/"), d))
    new = Manifest(dict(sorted(owned.items())), frozenset(dirs & needed))
    interim = dict(new.files)
    for path in writes:
        before = disk.get(path, MISSING).sha256
        interim[path] = Owned(interim[path].sha256, producer, before)
    interim.update({path: Owned(digest, producer) for path, digest in removes.items()})
    return TreePlan(
        writes=writes,
        unchanged=tuple(unchanged),
        removes=removes,
        released=tuple(released),
        mkdirs=tuple(mkdirs),
        rmdirs=tuple(rmdirs),
        refusals=tuple(refusals.values()),
        forced=tuple(forced),
        manifest=new,
        manifest_changed=new != manifest,
        interim=Manifest(dict(sorted(interim.items())), frozenset(dirs)),
    )


def _replace_refusal(
    path: str, state: OnDisk, owner: Owned | None, producer: str
) -> Refusal | None:
    if state.kind == "missing":
        return None
    if state.kind == "file":
        if owner is None:
            return Refusal(path, "a file jwksdeploy did not write", True)
        if not owner.proves(state.sha256):
            return Refusal(path, f"edited since `jwksdeploy {owner.producer}` wrote it", True)
        if owner.producer != producer:
            return Refusal(path, f"written by `jwksdeploy {owner.producer}`", True)
        return None
    if state.kind == "symlink":
        # --force replaces the link itself; its target is never written through it.
        return Refusal(path, "a symbolic link", True)
    return Refusal(path, f"{_a(state.kind)}, not a file", False)


def _a(kind: str) -> str:
    return {
        "file": "a file",
        "symlink": "a symbolic link",
        "directory": "a directory",
        "other": "a special file",
    }.get(kind, kind)


def refusal_message(directory: str, refusals: Sequence[Refusal]) -> str:
    """One paragraph naming the paths (a few, then a count) and the way out."""
    shown = ", ".join(
        f"{_shown_path(directory, refusal.path)} ({refusal.reason})"
        for refusal in refusals[:_SHOWN]
    )
    more = f" and {len(refusals) - _SHOWN} more" if len(refusals) > _SHOWN else ""
    fix = "Move them away or choose another --output-dir"
    if all(refusal.forcible for refusal in refusals):
        fix += "; --force overwrites them"
    return (
        f"--output-dir {directory!r}: jwksdeploy writes only over files it wrote itself (listed "
        f"in {MANIFEST}), and these are in the way: {shown}{more}. Nothing was changed. {fix}."
    )


def _shown_path(directory: str, path: str) -> str:
    return os.path.join(directory, *path.split("/"))


# --- the record: the manifest -------------------------------------------------------------


def manifest_json(manifest: Manifest) -> str:
    """The manifest's on-disk form: deterministic, so it can be committed with the output."""
    document = {
        "about": "jwksdeploy --output-dir: the files it wrote here. It replaces or removes "
        "only these, and only while their sha256 matches. Keep this file with them.",
        "version": 1,
        "files": {
            path: {"producer": owner.producer, "sha256": owner.sha256}
            | ({"previous": owner.previous} if owner.previous else {})
            for path, owner in sorted(manifest.files.items())
        },
        "dirs": sorted(manifest.dirs),
    }
    return json.dumps(document, indent=2) + "\n"


def parse_manifest(data: bytes) -> Manifest:
    """The manifest `manifest_json` wrote, or ValueError."""
    document = json.loads(data)
    if not isinstance(document, dict) or document.get("version") != 1:
        raise ValueError("not a version 1 manifest")
    files: dict[str, Owned] = {}
    entries = document.get("files")
    if not isinstance(entries, dict):
        raise ValueError("no files object")
    for path, entry in entries.items():
        check_relative(path)
        if not isinstance(entry, dict):
            raise ValueError(f"entry {path!r} is not an object")
        digest, producer = entry.get("sha256"), entry.get("producer")
        if not _is_digest(digest) or not isinstance(producer, str) or not producer:
            raise ValueError(f"entry {path!r} lacks sha256 or producer")
        previous = entry.get("previous")
        if previous is not None and not _is_digest(previous):
            raise ValueError(f"entry {path!r} has a bad previous sha256")
        files[path] = Owned(str(digest), producer, previous)
    dirs = document.get("dirs", [])
    if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
        raise ValueError("dirs is not a list of paths")
    for directory in dirs:
        check_relative(directory)
    return Manifest(files, frozenset(dirs))


def _is_digest(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


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

    def change(self, path: str, data: bytes | None) -> Change:
        fd, name = self.at(path)
        return Change(name, data, 0o644, fd)


@dataclass(frozen=True)
class TreeResult:
    """What a write_tree run did, for the CLI to report."""

    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]
    released: tuple[str, ...]
    forced: tuple[str, ...]

    def notes(self, directory: str) -> list[str]:
        """Lines for stderr beyond the summary: what the user should know."""
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
    shown = ", ".join(_shown_path(directory, path) for path in paths[:_SHOWN])
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
        fd = os.open(directory, DIR_FLAGS)
    except OSError as exc:
        raise OutputError(
            f"cannot create or open --output-dir {directory!r}: {exc.strerror}. Pass a "
            "directory you can write."
        ) from None
    root = _Root(fd)
    try:
        with locked(fd, directory):
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
    return TreeResult(
        written=tuple(plan.writes),
        unchanged=plan.unchanged,
        removed=tuple(plan.removes),
        released=plan.released,
        forced=tuple(refusal.path for refusal in plan.forced),
    )


def _read_manifest(root: _Root, directory: str, force: bool) -> tuple[Manifest, bytes | None]:
    """The manifest and its bytes (None when there is none)."""
    try:
        data = read_small(root.fd, MANIFEST)
        return (parse_manifest(data) if data is not None else Manifest()), data
    except (ValueError, RecursionError) as exc:
        if not force:
            raise OutputError(
                f"{_shown_path(directory, MANIFEST)}, the record of the files jwksdeploy wrote "
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
    """The interim manifest, the directories, the files and removals, the final manifest."""
    current = MANIFEST
    made: list[str] = []
    try:
        if plan.interim != plan.manifest and (plan.writes or plan.removes):
            apply_changes([root.change(MANIFEST, manifest_json(plan.interim).encode())])
        for current in plan.mkdirs:
            fd, name = root.at(current)
            os.mkdir(name, 0o755, dir_fd=fd)
            made.append(current)
        changes = [root.change(path, content.encode()) for path, content in plan.writes.items()]
        changes += [root.change(path, None) for path in plan.removes]
        apply_changes(changes)
    except (OSError, ChangeFailed) as exc:
        failed = exc if isinstance(exc, ChangeFailed) else None
        path = current if failed is None else _path_of(root, failed.change, plan)
        error = exc if failed is None else failed.error
        outcome = "Some files were replaced and could not be put back; rerun once it is fixed."
        if failed is None or failed.undone:
            for directory in reversed(made):
                root.rmdir(directory)
            with contextlib.suppress(ChangeFailed):
                apply_changes([root.change(MANIFEST, old)])
            outcome = "Nothing was changed."
        assert isinstance(error, OSError)
        raise OutputError(
            f"cannot write {_shown_path(directory, path)}: {error.strerror}. {outcome} Check "
            "that the directory is writable and its files are not immutable (lsattr)."
        ) from None
    for path in plan.rmdirs:
        root.rmdir(path)
    if plan.manifest_changed or plan.interim != plan.manifest:
        try:
            apply_changes([root.change(MANIFEST, manifest_json(plan.manifest).encode())])
        except ChangeFailed as exc:
            raise OutputError(
                f"cannot write {_shown_path(directory, MANIFEST)}: {exc.error.strerror}. The "
                "files are written; rerun once it is fixed to record them."
            ) from None


def _path_of(root: _Root, change: Change, plan: TreePlan) -> str:
    for path in [*plan.writes, *plan.removes, MANIFEST]:
        if root.at(path) == (change.dir_fd, change.path):
            return path
    return change.path
