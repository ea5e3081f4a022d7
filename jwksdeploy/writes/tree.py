"""Owned output trees (`--output-dir`): jwksdeploy replaces or removes only files it wrote.

A tree may be shared by producers (`render`, `gateway <provider>`) and the user's own files;
the manifest (MANIFEST: path, sha256, producer) proves which files are ours and unedited.
plan_tree decides, without I/O, what a run writes, removes and refuses; write_tree takes the
directory's lock, records the new files beside the sha256 of what they replace (the interim
manifest) before the first one lands, replaces each atomically and writes the final manifest
last: a killed run leaves each file old or new, both ours, so rerunning converges. Paths
below the directory are reached through directory descriptors opened with O_NOFOLLOW.
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
    check_path_text,
    drop,
    locked,
    put,
    read_small,
    sha256_of,
    stage,
    sweep,
)

MANIFEST = ".jwksdeploy-manifest.json"
_SHOWN = 5  # paths named in one message before "and N more"
_A = {"symlink": "a symbolic link", "directory": "a directory", "other": "a special file"}
Kind = Literal["missing", "file", "symlink", "directory", "other", "blocked"]


@dataclass(frozen=True)
class OnDisk:
    """What sits at a path, symlinks not followed; `blocked`: a parent is not a directory."""

    kind: Kind
    sha256: str | None = None  # of a regular file


MISSING = OnDisk("missing")


@dataclass(frozen=True)
class Owned:
    """A manifest entry; `previous`: the sha256 of the version a run is replacing."""

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
    writes: Mapping[str, str]  # relative path -> new content
    unchanged: tuple[str, ...]  # ours already, same bytes: not rewritten
    removes: Mapping[str, str]  # our stale files -> the sha256 they have
    released: tuple[str, ...]  # our stale files edited since: kept, and no longer ours
    mkdirs: tuple[str, ...]  # shallowest first
    rmdirs: tuple[str, ...]  # directories we created that nothing of ours needs; deepest first
    refusals: tuple[Refusal, ...]  # any of these: change nothing
    forced: tuple[Refusal, ...]  # what --force overrode
    manifest: Manifest
    manifest_changed: bool
    interim: Manifest  # written before the first file: proves old and new ours

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


def plan_tree(
    files: Mapping[str, str],
    producer: str,
    manifest: Manifest,
    disk: Mapping[str, OnDisk],
    force: bool,
) -> TreePlan:
    """What a producer's run writes, keeps, removes and refuses. `disk` holds the targets,
    their parents and the producer's old files (absent: missing). Only this producer's
    listed, unedited files are replaced or removed without --force."""
    refusals: dict[str, Refusal] = {}
    forced: list[Refusal] = []
    writes: dict[str, str] = {}
    unchanged: list[str] = []
    mkdirs: list[str] = []
    owned = {path: owner for path, owner in manifest.files.items() if owner.producer != producer}
    dirs = set(manifest.dirs)
    for path, content in files.items():
        digest = sha256_of(content.encode("utf-8"))
        kinds = [(d, disk.get(d, MISSING).kind) for d in parents(path)]
        blocked = [(d, kind) for d, kind in kinds if kind not in ("missing", "directory")]
        if blocked:
            directory, kind = blocked[0]
            if kind != "blocked":  # a shallower parent already explains it
                reason = f"{_A.get(kind, 'a file')} where a directory is needed"
                refusals.setdefault(directory, Refusal(directory, reason, False))
            continue
        for directory in [d for d, kind in kinds if kind == "missing" and d not in mkdirs]:
            mkdirs.append(directory)
            dirs.add(directory)
        state = disk.get(path, MISSING)
        refusal = _replace_refusal(path, state, manifest.files.get(path), producer)
        owned[path] = Owned(digest, producer)
        if refusal is None and state.sha256 == digest:
            unchanged.append(path)
        elif refusal is None or (refusal.forcible and force):
            forced += [refusal] if refusal else []
            writes[path] = content
        else:
            refusals[path] = refusal
    removes: dict[str, str] = {}
    released: list[str] = []
    for path, owner in sorted(manifest.files.items()):
        state = disk.get(path, MISSING)
        if owner.producer != producer or path in files or state.kind == "missing":
            continue
        if state.kind == "file" and state.sha256 is not None and owner.proves(state.sha256):
            removes[path] = state.sha256
        else:
            released.append(path)
    needed = {directory for path in owned for directory in parents(path)}
    new = Manifest(dict(sorted(owned.items())), frozenset(dirs & needed))
    interim = dict(new.files)
    for path in writes:
        interim[path] = Owned(interim[path].sha256, producer, disk.get(path, MISSING).sha256)
    interim.update({path: Owned(digest, producer) for path, digest in removes.items()})
    return TreePlan(
        writes=writes,
        unchanged=tuple(unchanged),
        removes=removes,
        released=tuple(released),
        mkdirs=tuple(mkdirs),
        rmdirs=tuple(sorted(dirs - needed, key=lambda d: (-d.count("/"), d))),
        refusals=tuple(refusals.values()),
        forced=tuple(forced),
        manifest=new,
        manifest_changed=new != manifest,
        interim=Manifest(dict(sorted(interim.items())), frozenset(dirs)),
    )


def _replace_refusal(path: str, state: OnDisk, owner: Owned | None, who: str) -> Refusal | None:
    if state.kind == "file":
        if owner is None:
            return Refusal(path, "a file jwksdeploy did not write", True)
        if not owner.proves(state.sha256):
            return Refusal(path, f"edited since `jwksdeploy {owner.producer}` wrote it", True)
        if owner.producer != who:
            return Refusal(path, f"written by `jwksdeploy {owner.producer}`", True)
    elif state.kind == "symlink":  # --force replaces the link itself, never its target
        return Refusal(path, "a symbolic link", True)
    elif state.kind != "missing":
        return Refusal(path, f"{_A.get(state.kind, state.kind)}, not a file", False)
    return None


def shown_path(directory: str, path: str) -> str:
    return os.path.join(directory, *path.split("/"))


def _listing(directory: str, paths: Sequence[str]) -> str:
    shown = ", ".join(shown_path(directory, path) for path in paths[:_SHOWN])
    return shown + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")


def refusal_message(directory: str, refusals: Sequence[Refusal]) -> str:
    """One paragraph naming the paths (a few, then a count) and the way out."""
    shown = ", ".join(f"{shown_path(directory, r.path)} ({r.reason})" for r in refusals[:_SHOWN])
    more = f" and {len(refusals) - _SHOWN} more" if len(refusals) > _SHOWN else ""
    fix = "Move them away or choose another --output-dir"
    if all(refusal.forcible for refusal in refusals):
        fix += "; --force overwrites them"
    return (
        f"--output-dir {directory!r}: jwksdeploy writes only over files it wrote itself (listed "
        f"in {MANIFEST}), and these are in the way: {shown}{more}. Nothing was changed. {fix}."
    )


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
    entries = document.get("files")
    if not isinstance(entries, dict):
        raise ValueError("no files object")
    files: dict[str, Owned] = {}
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
    return isinstance(value, str) and len(value) == 64 and set(value) <= set("0123456789abcdef")


# --- doing: one output directory ----------------------------------------------------------


class _Root:
    """An open output directory; paths below it are reached through directory descriptors
    opened with O_NOFOLLOW, so nothing here ever follows a symlink."""

    def __init__(self, fd: int) -> None:
        self.fd, self._dirs = fd, dict[str, int]()

    def close(self) -> None:
        for fd in [*self._dirs.values(), self.fd]:
            os.close(fd)

    def dir_fd(self, directory: str) -> int:
        if directory and directory not in self._dirs:
            fd, name = self.at(directory)
            self._dirs[directory] = os.open(name, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
        return self._dirs[directory] if directory else self.fd

    def at(self, path: str) -> tuple[int, str]:
        above, _, name = path.rpartition("/")
        return self.dir_fd(above), name

    def inspect(self, path: str) -> OnDisk:
        for step in [*parents(path), path]:
            try:
                fd, name = self.at(step)
                mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return MISSING
            if step != path and not stat.S_ISDIR(mode):
                return OnDisk("blocked")
        if stat.S_ISLNK(mode) or stat.S_ISDIR(mode):
            return OnDisk("symlink" if stat.S_ISLNK(mode) else "directory")
        with contextlib.suppress(ValueError):
            data = read_small(fd, name) if stat.S_ISREG(mode) else None
            return OnDisk("file", sha256_of(data)) if data is not None else OnDisk("other")
        return OnDisk("other")

    def rmdir(self, path: str) -> None:
        """Remove a directory if empty; one not empty holds the user's files, so is theirs."""
        for cached in [d for d in self._dirs if d == path or d.startswith(path + "/")]:
            os.close(self._dirs.pop(cached))
        with contextlib.suppress(OSError):
            fd, name = self.at(path)
            os.rmdir(name, dir_fd=fd)

    def replace(self, path: str, data: bytes | None) -> None:
        """Replace (data None: remove, if there) a file at the top of the tree."""
        try:
            put(None if data is None else stage(path, data, 0o644, self.fd), path, self.fd)
        except FileNotFoundError:
            if data is not None:
                raise


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
            try:
                manifest, old = _read_manifest(root, directory, force)
                wanted = {d: None for path in files for d in [*parents(path), path]}
                wanted.update(
                    {p: None for p, o in manifest.files.items() if o.producer == producer}
                )
                disk = {path: root.inspect(path) for path in wanted}
            except OSError as exc:
                where = f" ({exc.filename})" if exc.filename else ""
                raise OutputError(
                    f"cannot read --output-dir {directory!r}{where}: {exc.strerror}. Nothing "
                    "was changed. Check its permissions."
                ) from None
            plan = plan_tree(files, producer, manifest, disk, force)
            if plan.refusals:
                raise OutputError(refusal_message(directory, plan.refusals))
            known = {d for path in [*manifest.files, *files] for d in parents(path)}
            for folder in sorted(known | manifest.dirs | {""}):  # what a killed run left
                with contextlib.suppress(OSError):
                    sweep(root.dir_fd(folder))
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
            root.replace(MANIFEST, manifest_json(plan.interim).encode())
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
                root.replace(MANIFEST, old)
        raise OutputError(
            f"cannot write {shown_path(directory, current)}: {exc.strerror}. {outcome} Check "
            "that the directory is writable and its files are not immutable (lsattr)."
        ) from None
    for path in plan.rmdirs:
        root.rmdir(path)
    if plan.manifest_changed or plan.interim != plan.manifest:
        try:
            root.replace(MANIFEST, manifest_json(plan.manifest).encode())
        except OSError as exc:
            raise OutputError(
                f"cannot write {shown_path(directory, MANIFEST)}: {exc.strerror}. The "
                "files are written; rerun once it is fixed to record them."
            ) from None
