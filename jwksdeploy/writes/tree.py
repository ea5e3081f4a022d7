"""Owned output trees (`--output-dir`), all-or-nothing.

An output tree may be shared by several producers (`render`, `gateway <provider>`) and by the
user's own files. jwksdeploy replaces or removes only files it wrote itself, proven by a
manifest it keeps in the directory (`.jwksdeploy-manifest.json`: each file's path, sha256
and producer). Deciding is pure (`plan_tree`); doing is one transaction under an flock on
the directory: a journal names every staging file before it exists, files are staged as
hidden temp files beside their targets, and renames commit them. A run that dies is rolled
back (while staging) or forward (once committing) by the next one, so the directory holds the
old tree or the new one, and no staging files. Paths below the directory are reached through
directory descriptors opened with O_NOFOLLOW: a symlink inside it is never followed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import OutputError
from ._shared import (
    MAX_RECORD_BYTES,
    READ_FLAGS,
    STAGING_PREFIX,
    check_path_text,
    create_file,
    link_backup,
    locked,
    record_objects,
    sha256_of,
)

MANIFEST = ".jwksdeploy-manifest.json"
JOURNAL = ".jwksdeploy-journal.json"
_JOURNAL_TEMP = ".jwksdeploy-journal.json.tmp"
_SHOWN = 5  # paths named in one error before "and N more"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

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
    """A manifest entry: the file as jwksdeploy wrote it, and which producer did."""

    sha256: str
    producer: str


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
        if state.kind == "file" and state.sha256 == owner.sha256:
            removes[path] = owner.sha256
        elif state.kind != "missing":
            released.append(path)
    needed = {directory for path in owned for directory in parents(path)}
    rmdirs = sorted(dirs - needed, key=lambda d: (-d.count("/"), d))
    new = Manifest(dict(sorted(owned.items())), frozenset(dirs & needed))
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
    )


def _replace_refusal(
    path: str, state: OnDisk, owner: Owned | None, producer: str
) -> Refusal | None:
    if state.kind == "missing":
        return None
    if state.kind == "file":
        if owner is None:
            return Refusal(path, "a file jwksdeploy did not write", True)
        if state.sha256 != owner.sha256:
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


# --- the records: manifest and journal ----------------------------------------------------


def manifest_json(manifest: Manifest) -> str:
    """The manifest's on-disk form: deterministic, so it can be committed with the output."""
    document = {
        "about": "jwksdeploy --output-dir: the files it wrote here. It replaces or removes "
        "only these, and only while their sha256 matches. Keep this file with them.",
        "version": 1,
        "files": {
            path: {"producer": owner.producer, "sha256": owner.sha256}
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
        files[path] = Owned(str(digest), producer)
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


@dataclass
class TreeJournal:
    """An output-tree transaction as written before its first staging file exists."""

    producer: str
    state: Literal["staging", "committing"]
    mkdirs: list[str]
    writes: list[tuple[str, str, str | None]]  # target, staged temp, backup of the old file
    removes: list[tuple[str, str, str]]  # target, the sha256 it must have, backup
    rmdirs: list[str]
    manifest_temp: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": 1,
                "producer": self.producer,
                "state": self.state,
                "mkdirs": self.mkdirs,
                "writes": [{"path": p, "temp": t, "backup": b} for p, t, b in self.writes],
                "removes": [{"path": p, "sha256": s, "backup": b} for p, s, b in self.removes],
                "rmdirs": self.rmdirs,
                "manifest_temp": self.manifest_temp,
            },
            indent=2,
        )

    @classmethod
    def parse(cls, data: bytes) -> TreeJournal:
        """Read a journal back, refusing (ValueError) any path outside the directory or any
        staging name that is not one of ours beside its target."""
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("version") != 1:
            raise ValueError("not a version 1 journal")
        state = document.get("state")
        producer = document.get("producer")
        if state not in ("staging", "committing") or not isinstance(producer, str):
            raise ValueError("no state or producer")
        writes: list[tuple[str, str, str | None]] = []
        for entry in record_objects(document.get("writes")):
            path, temp, backup = entry.get("path"), entry.get("temp"), entry.get("backup")
            _check_staged(path, temp, ".tmp")
            if backup is not None:
                _check_staged(path, backup, ".old")
            writes.append((str(path), str(temp), None if backup is None else str(backup)))
        removes: list[tuple[str, str, str]] = []
        for entry in record_objects(document.get("removes")):
            path, digest, backup = entry.get("path"), entry.get("sha256"), entry.get("backup")
            _check_staged(path, backup, ".old")
            if not _is_digest(digest):
                raise ValueError("a remove without its sha256")
            removes.append((str(path), str(digest), str(backup)))
        mkdirs, rmdirs = _paths(document.get("mkdirs")), _paths(document.get("rmdirs"))
        manifest_temp = document.get("manifest_temp")
        _check_staged(MANIFEST, manifest_temp, ".tmp")
        return cls(producer, state, mkdirs, writes, removes, rmdirs, str(manifest_temp))


def _paths(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("expected a list of paths")
    for item in value:
        check_relative(item)
    return value


def _check_staged(path: Any, staged: Any, suffix: str) -> None:
    if not isinstance(path, str) or not isinstance(staged, str):
        raise ValueError("a path is not a string")
    if path != MANIFEST:
        check_relative(path)
    folder, _, name = staged.rpartition("/")
    if (
        folder != path.rpartition("/")[0]
        or not name.startswith(STAGING_PREFIX)
        or not name.endswith(suffix)
        or "/" in name
        or name in ("", ".", "..")
    ):
        raise ValueError(f"{staged!r} is not a staging name beside {path!r}")


def _staging_name(path: str, suffix: str) -> str:
    folder = path.rpartition("/")[0]
    name = f"{STAGING_PREFIX}{secrets.token_hex(6)}{suffix}"
    return f"{folder}/{name}" if folder else name


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
            self._dirs[directory] = os.open(name, _DIR_FLAGS, dir_fd=self.dir_fd(above))
        return self._dirs[directory]

    def at(self, path: str) -> tuple[int, str]:
        above, _, name = path.rpartition("/")
        return self.dir_fd(above), name

    def lstat(self, path: str) -> os.stat_result | None:
        try:
            fd, name = self.at(path)
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def inspect(self, path: str) -> OnDisk:
        for directory in parents(path):
            found = self.lstat(directory)
            if found is None:
                return MISSING
            if not stat.S_ISDIR(found.st_mode):
                return OnDisk("blocked")
        found = self.lstat(path)
        if found is None:
            return MISSING
        mode = found.st_mode
        if stat.S_ISLNK(mode):
            return OnDisk("symlink")
        if stat.S_ISDIR(mode):
            return OnDisk("directory")
        if not stat.S_ISREG(mode):
            return OnDisk("other")
        digest = self.hash(path)
        return OnDisk("file", digest) if digest is not None else OnDisk("other")

    def hash(self, path: str) -> str | None:
        fd, name = self.at(path)
        handle = os.open(name, READ_FLAGS, dir_fd=fd)
        try:
            if not stat.S_ISREG(os.fstat(handle).st_mode):
                return None
            digest = hashlib.sha256()
            while chunk := os.read(handle, 1 << 16):
                digest.update(chunk)
            return digest.hexdigest()
        finally:
            os.close(handle)

    def read(self, path: str) -> bytes | None:
        """A small regular file's bytes, None when missing; ValueError for anything else."""
        fd, name = self.at(path)
        try:
            handle = os.open(name, READ_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ValueError("it is a symbolic link") from None
            raise
        try:
            if not stat.S_ISREG(os.fstat(handle).st_mode):
                raise ValueError("it is not a regular file")
            data = b""
            while chunk := os.read(handle, 1 << 16):
                data += chunk
                if len(data) > MAX_RECORD_BYTES:
                    raise ValueError("it is too large")
            return data
        finally:
            os.close(handle)

    def create(self, path: str, data: bytes, mode: int) -> None:
        """A new file, complete and on disk, with `mode` from its first byte."""
        fd, name = self.at(path)
        create_file(name, data, mode, fd)

    def mkdir(self, path: str) -> None:
        fd, name = self.at(path)
        os.mkdir(name, 0o755, dir_fd=fd)

    def rmdir(self, path: str) -> bool:
        """Remove an empty directory; False when it is not there or not empty."""
        for cached in [d for d in self._dirs if d == path or d.startswith(path + "/")]:
            os.close(self._dirs.pop(cached))
        try:
            fd, name = self.at(path)
            os.rmdir(name, dir_fd=fd)
        except OSError:
            return False
        return True

    def rename(self, source: str, target: str) -> None:
        source_fd, source_name = self.at(source)
        target_fd, target_name = self.at(target)
        os.rename(source_name, target_name, src_dir_fd=source_fd, dst_dir_fd=target_fd)

    def backup(self, path: str, backup: str) -> None:
        source_fd, source_name = self.at(path)
        target_fd, target_name = self.at(backup)
        link_backup(source_name, target_name, source_fd, target_fd)

    def unlink(self, path: str) -> bool:
        """Remove a file; False when it is not there."""
        try:
            fd, name = self.at(path)
            os.unlink(name, dir_fd=fd)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def sync(self, directories: Sequence[str]) -> None:
        for directory in dict.fromkeys(directories):
            with contextlib.suppress(OSError):
                os.fsync(self.dir_fd(directory))


@dataclass(frozen=True)
class TreeResult:
    """What a write_tree run did, for the CLI to report."""

    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]
    released: tuple[str, ...]
    forced: tuple[str, ...]
    recovered: str | None

    def notes(self, directory: str) -> list[str]:
        """Lines for stderr beyond the summary: what the user should know."""
        lines = [self.recovered] if self.recovered else []
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
    created = _make_directory(directory)
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        _remove_created(created)
        raise OutputError(
            f"cannot open --output-dir {directory!r}: {exc.strerror}. Pass a directory you "
            "can write."
        ) from None
    root = _Root(fd)
    try:
        with locked(fd, directory):
            recovered = _recover_tree(root, directory)
            plan = _plan(root, directory, files, producer, force)
            if plan.changes:
                _transact(root, directory, plan, producer)
    except BaseException:
        root.close()
        _remove_created(created)
        raise
    root.close()
    return TreeResult(
        written=tuple(plan.writes),
        unchanged=plan.unchanged,
        removed=tuple(plan.removes),
        released=plan.released,
        forced=tuple(refusal.path for refusal in plan.forced),
        recovered=recovered,
    )


def recover_tree(directory: str) -> str | None:
    """Finish or undo what a killed run left in an output directory (every write_tree does
    this first); say which, or None when there was nothing to do."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise OutputError(f"cannot open {directory!r}: {exc.strerror}.") from None
    root = _Root(fd)
    try:
        with locked(fd, directory):
            return _recover_tree(root, directory)
    finally:
        root.close()


def _make_directory(directory: str) -> list[str]:
    """Create directory and missing parents; return those created, deepest last."""
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise OutputError(f"--output-dir {directory!r} is not a directory. Pass a directory path.")
    missing: list[str] = []
    path = os.path.abspath(directory)
    while not os.path.lexists(path):
        missing.append(path)
        path = os.path.dirname(path)
    created: list[str] = []
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            continue  # a concurrent run made it; it is not ours to remove
        except OSError as exc:
            _remove_created(created)
            raise OutputError(
                f"cannot create {path!r}: {exc.strerror}. Pass an --output-dir you can write."
            ) from None
        created.append(path)
    return created


def _remove_created(created: list[str]) -> None:
    for path in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _plan(
    root: _Root, directory: str, files: Mapping[str, str], producer: str, force: bool
) -> TreePlan:
    try:
        data = root.read(MANIFEST)
        manifest = parse_manifest(data) if data is not None else Manifest()
    except (ValueError, RecursionError) as exc:
        if not force:
            raise OutputError(
                f"{_shown_path(directory, MANIFEST)}, the record of the files jwksdeploy wrote "
                f"there, is damaged ({exc}). Nothing was changed. Restore it (e.g. from version "
                "control), or pass --force to start a new one: the files it listed then count "
                "as not written by jwksdeploy."
            ) from None
        manifest = Manifest()
    except OSError as exc:
        raise _read_failure(directory, exc) from None
    try:
        disk = {path: root.inspect(path) for path in paths_to_inspect(files, producer, manifest)}
    except OSError as exc:
        raise _read_failure(directory, exc) from None
    plan = plan_tree(files, producer, manifest, disk, force)
    if plan.refusals:
        raise OutputError(refusal_message(directory, plan.refusals))
    return plan


def _read_failure(directory: str, exc: OSError) -> OutputError:
    where = f" ({exc.filename})" if exc.filename else ""
    return OutputError(
        f"cannot read --output-dir {directory!r}{where}: {exc.strerror}. Nothing was changed. "
        "Check its permissions."
    )


def _transact(root: _Root, directory: str, plan: TreePlan, producer: str) -> None:
    """Stage, then commit by renames; roll back on a failure, so the old tree stays."""
    journal = TreeJournal(
        producer=producer,
        state="staging",
        mkdirs=list(plan.mkdirs),
        writes=[
            (
                path,
                _staging_name(path, ".tmp"),
                None if root.lstat(path) is None else _staging_name(path, ".old"),
            )
            for path in plan.writes
        ],
        removes=[
            (path, digest, _staging_name(path, ".old")) for path, digest in plan.removes.items()
        ],
        rmdirs=list(plan.rmdirs),
        manifest_temp=_staging_name(MANIFEST, ".tmp"),
    )
    current = MANIFEST
    try:
        _write_journal(root, journal)
        for current in journal.mkdirs:
            root.mkdir(current)
        for current, temp, backup in journal.writes:
            root.create(temp, plan.writes[current].encode("utf-8"), 0o644)
            if backup is not None:
                root.backup(current, backup)  # fails now, not halfway, on an immutable file
        for current, _, backup in journal.removes:
            root.backup(current, backup)
        current = MANIFEST
        root.create(journal.manifest_temp, manifest_json(plan.manifest).encode(), 0o644)
        root.sync([*journal.mkdirs, *(path.rpartition("/")[0] for path, _, _ in journal.writes)])
        journal.state = "committing"
        _write_journal(root, journal)
    except BaseException as exc:
        _roll_back(root, journal)
        if isinstance(exc, OSError):
            raise _write_failure(directory, current, exc, "Nothing was changed.") from None
        raise
    progress = _Progress()
    try:
        _commit(root, journal, progress)
    except OSError as exc:
        try:
            _undo(root, journal, progress.done)
        except OSError:
            raise _write_failure(
                directory,
                progress.current,
                exc,
                f"Undoing it failed too; the next jwksdeploy run into {directory!r} completes it "
                f"from {JOURNAL}.",
            ) from None
        _roll_back(root, journal)
        raise _write_failure(directory, progress.current, exc, "Nothing was changed.") from None
    _finish(root, journal)


def _write_failure(directory: str, path: str, exc: OSError, outcome: str) -> OutputError:
    return OutputError(
        f"cannot write {_shown_path(directory, path)}: {exc.strerror}. {outcome} Check that "
        "the directory is writable and its files are not immutable (lsattr)."
    )


def _write_journal(root: _Root, journal: TreeJournal) -> None:
    root.unlink(_JOURNAL_TEMP)
    root.create(_JOURNAL_TEMP, journal.to_json().encode(), 0o644)
    root.rename(_JOURNAL_TEMP, JOURNAL)
    root.sync([""])


@dataclass
class _Progress:
    """The steps of a commit done so far, and the path of the one under way."""

    done: list[tuple[str, str]] = field(default_factory=list)
    current: str = MANIFEST


def _commit(root: _Root, journal: TreeJournal, progress: _Progress) -> None:
    """The renames and removals; safe to repeat after a crash (each step checks first)."""
    for path, temp, _ in journal.writes:
        progress.current = path
        if root.lstat(temp) is not None:
            root.rename(temp, path)
            progress.done.append(("write", path))
    for path, digest, _ in journal.removes:
        progress.current = path
        if root.inspect(path) == OnDisk("file", digest):
            root.unlink(path)
            progress.done.append(("remove", path))
    progress.current = MANIFEST
    if root.lstat(journal.manifest_temp) is not None:
        root.rename(journal.manifest_temp, MANIFEST)


def _undo(root: _Root, journal: TreeJournal, done: list[tuple[str, str]]) -> None:
    """Reverse the steps of a commit that failed in this process, newest first."""
    backups = {path: backup for path, _, backup in journal.writes}
    removed = {path: backup for path, _, backup in journal.removes}
    for step, path in reversed(done):
        if step == "remove":
            root.rename(removed[path], path)
        elif step == "write":
            backup = backups[path]
            if backup is None:
                root.unlink(path)
            else:
                root.rename(backup, path)


def _roll_back(root: _Root, journal: TreeJournal) -> None:
    """Remove every staging file and directory of an uncommitted transaction, then the journal."""
    for _, temp, backup in journal.writes:
        for staged in (temp, backup):
            if staged is not None:
                with contextlib.suppress(OSError):
                    root.unlink(staged)
    for _, _, backup in journal.removes:
        with contextlib.suppress(OSError):
            root.unlink(backup)
    with contextlib.suppress(OSError):
        root.unlink(journal.manifest_temp)
    for directory in reversed(journal.mkdirs):
        root.rmdir(directory)
    with contextlib.suppress(OSError):
        root.unlink(JOURNAL)
        root.sync([""])


def _finish(root: _Root, journal: TreeJournal) -> None:
    """Drop the backups of a committed transaction and the directories it emptied, then its
    journal. A leftover is harmless: the journal then says committing, and the next run
    finishes this again."""
    for staged in [
        *(backup for _, _, backup in journal.writes if backup is not None),
        *(backup for _, _, backup in journal.removes),
    ]:
        with contextlib.suppress(OSError):
            root.unlink(staged)
    for directory in journal.rmdirs:
        root.rmdir(directory)  # not empty: the user's files are in it, so it is theirs now
    with contextlib.suppress(OSError):
        root.unlink(JOURNAL)
    root.sync([""])


def _recover_tree(root: _Root, directory: str) -> str | None:
    """Finish or undo a transaction a killed run left behind; say which, or None."""
    try:
        root.unlink(_JOURNAL_TEMP)
        data = root.read(JOURNAL)
        if data is None:
            return None
        journal = TreeJournal.parse(data)
    except (ValueError, RecursionError) as exc:
        raise OutputError(
            f"{_shown_path(directory, JOURNAL)}, left by an interrupted jwksdeploy run, is "
            f"damaged ({exc}). Nothing was changed. Check the directory's files, then delete "
            "the journal and its hidden .jwksdeploy-* staging files."
        ) from None
    except OSError as exc:
        raise _read_failure(directory, exc) from None
    progress = _Progress()
    try:
        if journal.state == "staging":
            _roll_back(root, journal)
            return (
                f"an earlier `jwksdeploy {journal.producer}` into {directory} was interrupted "
                "before it changed anything; its staging files were removed"
            )
        _commit(root, journal, progress)
        _finish(root, journal)
    except OSError as exc:
        raise OutputError(
            f"an earlier `jwksdeploy {journal.producer}` into {directory!r} was interrupted "
            f"and cannot be completed: {exc.strerror} "
            f"({_shown_path(directory, progress.current)}). Nothing else was changed; fix that "
            f"and rerun (the journal is {JOURNAL})."
        ) from None
    return (
        f"an earlier `jwksdeploy {journal.producer}` into {directory} was interrupted while "
        "committing; it was completed"
    )
