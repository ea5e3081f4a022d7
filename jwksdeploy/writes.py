"""Owned writes: output trees (`--output-dir`) and key-file sets, all-or-nothing.

An output tree may be shared by several producers (`render`, `gateway <provider>`) and by the
user's own files. jwksdeploy replaces or removes only files it wrote itself, proven by a
manifest it keeps in the directory (`.jwksdeploy-manifest.json`: each file's path, sha256
and producer). Deciding is pure (`plan_tree`); doing is one transaction under an flock on
the directory: a journal names every staging file before it exists, files are staged as
hidden temp files beside their targets, and renames commit them. A run that dies is rolled
back (while staging) or forward (once committing) by the next one, so the directory holds the
old tree or the new one, and no staging files. Paths below the directory are reached through
directory descriptors opened with O_NOFOLLOW: a symlink inside it is never followed.

Key sets (`write_files`) use the same journal: every target that exists is hard-linked to a
backup first, which fails on an immutable or append-only file and in a read-only directory
before anything is replaced, and is the way back if a later rename fails.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .errors import OutputError

MANIFEST = ".jwksdeploy-manifest.json"
JOURNAL = ".jwksdeploy-journal.json"
_JOURNAL_TEMP = ".jwksdeploy-journal.json.tmp"
STAGING_PREFIX = ".jwksdeploy-"
LOCK_WAIT_SECONDS = 30.0
_MAX_RECORD_BYTES = 16 << 20  # a manifest or journal larger than this is not ours
_SHOWN = 5  # paths named in one error before "and N more"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

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


def check_path_text(what: str, path: str) -> None:
    """A path the operating system can take at all (no NUL byte), else OutputError."""
    if "\x00" in path:
        raise OutputError(f"{what} {path!r} holds a NUL byte, which no file name can. Fix it.")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
        for entry in _objects(document.get("writes")):
            path, temp, backup = entry.get("path"), entry.get("temp"), entry.get("backup")
            _check_staged(path, temp, ".tmp")
            if backup is not None:
                _check_staged(path, backup, ".old")
            writes.append((str(path), str(temp), None if backup is None else str(backup)))
        removes: list[tuple[str, str, str]] = []
        for entry in _objects(document.get("removes")):
            path, digest, backup = entry.get("path"), entry.get("sha256"), entry.get("backup")
            _check_staged(path, backup, ".old")
            if not _is_digest(digest):
                raise ValueError("a remove without its sha256")
            removes.append((str(path), str(digest), str(backup)))
        mkdirs, rmdirs = _paths(document.get("mkdirs")), _paths(document.get("rmdirs"))
        manifest_temp = document.get("manifest_temp")
        _check_staged(MANIFEST, manifest_temp, ".tmp")
        return cls(producer, state, mkdirs, writes, removes, rmdirs, str(manifest_temp))


def _objects(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("expected a list of objects")
    return value


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
        handle = os.open(name, _READ_FLAGS, dir_fd=fd)
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
            handle = os.open(name, _READ_FLAGS, dir_fd=fd)
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
                if len(data) > _MAX_RECORD_BYTES:
                    raise ValueError("it is too large")
            return data
        finally:
            os.close(handle)

    def create(self, path: str, data: bytes, mode: int) -> None:
        """A new file, complete and on disk, with `mode` from its first byte."""
        fd, name = self.at(path)
        _create_file(name, data, mode, fd)

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
        _backup(source_name, target_name, source_fd, target_fd)

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
        with _locked(fd, directory):
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
        with _locked(fd, directory):
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


# --- locks and file primitives ------------------------------------------------------------


class _Held(threading.local):
    """The directories this thread holds locked (flock itself does not nest)."""

    def __init__(self) -> None:
        self.keys: set[tuple[int, int]] = set()


_HELD = _Held()


@contextlib.contextmanager
def _locked(fd: int, directory: str) -> Iterator[None]:
    """An exclusive flock on a directory, so concurrent writers into it take turns.

    Reentrant within this process (a command that reads, decides and writes holds it once)."""
    import fcntl

    info = os.fstat(fd)
    key = (info.st_dev, info.st_ino)
    if key in _HELD.keys:
        yield
        return
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    locked = True
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise OutputError(
                    f"another jwksdeploy has been writing in {directory!r} for "
                    f"{LOCK_WAIT_SECONDS:.0f}s (it holds the directory's lock). Nothing was "
                    "changed. Wait for it to finish, then rerun."
                ) from None
            time.sleep(0.05)
        except OSError as exc:
            # Some network file systems have no flock; writing unlocked beats not writing.
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise OutputError(
                    f"cannot lock {directory!r}: {exc.strerror}. Nothing was changed."
                ) from None
            locked = False
            break
    _HELD.keys.add(key)
    try:
        yield
    finally:
        _HELD.keys.discard(key)
        if locked:
            fcntl.flock(fd, fcntl.LOCK_UN)


def _create_file(name: str, data: bytes, mode: int, dir_fd: int | None = None) -> None:
    # Opened 0600 whatever the final mode: a secret is never readable by others, even empty.
    handle = os.open(name, _CREATE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(handle, view) :]
        os.fchmod(handle, mode)
        os.fsync(handle)
    except BaseException:
        os.close(handle)
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)
        raise
    os.close(handle)


def _backup(
    source: str, target: str, source_fd: int | None = None, target_fd: int | None = None
) -> None:
    """Hard-link source to target: proof that source can be replaced, and the way back.

    link(2) fails on an immutable or append-only file and in a read-only directory, exactly
    where a rename over the file would fail. Under fs.protected_hardlinks it also fails for a
    file someone else owns; a copy is the way back then.
    """
    try:
        os.link(source, target, src_dir_fd=source_fd, dst_dir_fd=target_fd, follow_symlinks=False)
    except PermissionError:
        info = os.stat(source, dir_fd=source_fd, follow_symlinks=False)
        if info.st_uid == os.geteuid() or not stat.S_ISREG(info.st_mode):
            raise
        handle = os.open(source, _READ_FLAGS, dir_fd=source_fd)
        try:
            data = b""
            while chunk := os.read(handle, 1 << 16):
                data += chunk
        finally:
            os.close(handle)
        _create_file(target, data, stat.S_IMODE(info.st_mode) & 0o666, target_fd)


# --- key-file sets --------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputFile:
    """One file to write; `secret` files get mode 0600 from their first byte."""

    path: str
    content: str
    secret: bool
    replaces: bool = False  # an update of this very file (rotation), not a clobber


@dataclass
class KeyJournal:
    """A key-file transaction; paths are relative to the journal's directory."""

    state: Literal["staging", "committing"]
    entries: list[tuple[str, str, str | None]]  # target, staged temp, backup of the old file

    def to_json(self) -> str:
        entries = [{"path": p, "temp": t, "backup": b} for p, t, b in self.entries]
        return json.dumps({"version": 1, "state": self.state, "files": entries}, indent=2)

    @classmethod
    def parse(cls, data: bytes) -> KeyJournal:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("version") != 1:
            raise ValueError("not a version 1 journal")
        state = document.get("state")
        if state not in ("staging", "committing"):
            raise ValueError("no state")
        entries: list[tuple[str, str, str | None]] = []
        for entry in _objects(document.get("files")):
            path, temp, backup = entry.get("path"), entry.get("temp"), entry.get("backup")
            _check_key_staged(path, temp, ".tmp")
            if backup is not None:
                _check_key_staged(path, backup, ".old")
            entries.append((str(path), str(temp), None if backup is None else str(backup)))
        return cls(state, entries)


def _check_key_staged(path: Any, staged: Any, suffix: str) -> None:
    if not isinstance(path, str) or not isinstance(staged, str) or not path or "\0" in path:
        raise ValueError("a path is not a string")
    folder, name = os.path.split(staged)
    if (
        folder != os.path.dirname(path)
        or not name.startswith(STAGING_PREFIX)
        or not name.endswith(suffix)
    ):
        raise ValueError(f"{staged!r} is not a staging name beside {path!r}")


def key_journal_path(path: str) -> str:
    """Where a key-file transaction whose first file is `path` keeps its journal."""
    folder, name = os.path.split(os.path.abspath(path))
    if len(os.fsencode(f"{STAGING_PREFIX}journal.{name}.json.tmp")) > 255:
        # A valid long file name would make an invalid journal name (NAME_MAX is 255 bytes).
        name = hashlib.sha256(os.fsencode(name)).hexdigest()
    return os.path.join(folder, f"{STAGING_PREFIX}journal.{name}.json")


@contextlib.contextmanager
def key_files_locked(paths: Sequence[str]) -> Iterator[list[str]]:
    """Lock the directories of these files, and finish or undo an interrupted write of them
    first; yields what was recovered (lines for stderr). Reentrant within this process."""
    for path in paths:
        check_path_text("a key file path", path)
    folders = sorted({os.path.dirname(os.path.abspath(path)) for path in paths})
    with contextlib.ExitStack() as stack:
        opened: list[tuple[os.stat_result, int, str]] = []
        for folder in folders:
            shown = next(p for p in paths if os.path.dirname(os.path.abspath(p)) == folder)
            try:
                fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as exc:
                raise OutputError(
                    f"cannot write {shown!r}: {exc.strerror} ({folder}). Check that its "
                    "directory exists and is writable. Nothing was written."
                ) from None
            stack.callback(os.close, fd)
            opened.append((os.fstat(fd), fd, folder))
        # One order for every process, so two writers of the same pair cannot deadlock.
        for _, fd, folder in sorted(opened, key=lambda o: (o[0].st_dev, o[0].st_ino)):
            stack.enter_context(_locked(fd, folder))
        notes = [note for path in paths if (note := _recover_keys(path))]
        yield notes


def _recover_keys(path: str) -> str | None:
    journal_path = key_journal_path(path)
    folder = os.path.dirname(journal_path)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(journal_path + ".tmp")
        with open(journal_path, "rb") as handle:
            data = handle.read(_MAX_RECORD_BYTES + 1)
        if len(data) > _MAX_RECORD_BYTES:
            raise ValueError("it is too large")
        journal = KeyJournal.parse(data)
    except FileNotFoundError:
        return None
    except (ValueError, RecursionError) as exc:
        raise OutputError(
            f"{journal_path}, left by an interrupted key write, is damaged ({exc}). Nothing was "
            "written. Check the key files next to it, then delete it and any hidden "
            f"{STAGING_PREFIX}* files there."
        ) from None
    except OSError as exc:
        raise OutputError(f"cannot read {journal_path}: {exc.strerror}.") from None
    entries = [
        (
            os.path.join(folder, target),
            os.path.join(folder, temp),
            None if backup is None else os.path.join(folder, backup),
        )
        for target, temp, backup in journal.entries
    ]
    names = " and ".join(target for target, _, _ in entries)
    try:
        if journal.state == "staging":
            _roll_back_keys(entries, journal_path)
            return (
                f"an earlier write of {names} was interrupted before it replaced either; its "
                "staging files were removed and both are as they were"
            )
        for target, temp, _ in entries:
            if os.path.lexists(temp):
                os.replace(temp, target)
        _finish_keys(entries, journal_path)
    except OSError as exc:
        raise OutputError(
            f"an earlier write of {names} was interrupted and cannot be completed: "
            f"{exc.strerror} ({exc.filename}). Fix that and rerun; the journal is {journal_path} "
            "and the old files' backups are the .jwksdeploy-*.old files beside them."
        ) from None
    return (
        f"an earlier write of {names} was interrupted halfway; it was completed, so the files "
        "are in step again"
    )


def write_files(outputs: Sequence[OutputFile], force: bool) -> list[str]:
    """Write several files all-or-nothing; return notes on a recovered earlier write.

    Each file is staged beside its target and every existing target is hard-linked to a
    backup before any is replaced (the pre-check that each can be replaced); a failure after
    that puts the backups back. Without force an existing target is refused, and a new file
    is linked into place (no-clobber), so one created meanwhile is never overwritten either.
    """
    for output in outputs:
        check_path_text("an output path", output.path)
    absolute = [os.path.abspath(output.path) for output in outputs]
    if len(set(map(os.path.realpath, absolute))) < len(absolute):
        raise OutputError(
            f"{' and '.join(repr(o.path) for o in outputs)} are the same file. Give each its own."
        )
    with key_files_locked([output.path for output in outputs]) as notes:
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
        if outputs:
            _write_key_files(outputs, absolute, force)
    return notes


def _write_key_files(outputs: Sequence[OutputFile], absolute: list[str], force: bool) -> None:
    journal_path = key_journal_path(outputs[0].path)
    folder = os.path.dirname(journal_path)
    entries: list[tuple[str, str, str | None]] = []
    for path in absolute:
        beside = os.path.dirname(path)
        temp = os.path.join(beside, f"{STAGING_PREFIX}{secrets.token_hex(6)}.tmp")
        backup = (
            os.path.join(beside, f"{STAGING_PREFIX}{secrets.token_hex(6)}.old")
            if os.path.lexists(path)
            else None
        )
        entries.append((path, temp, backup))
    journal = KeyJournal(
        "staging",
        [
            (
                os.path.relpath(target, folder),
                os.path.relpath(temp, folder),
                None if backup is None else os.path.relpath(backup, folder),
            )
            for target, temp, backup in entries
        ],
    )
    current = outputs[0].path
    try:
        _write_key_journal(journal_path, journal)
        for output, (_, temp, backup) in zip(outputs, entries, strict=True):
            current = output.path
            _create_file(temp, output.content.encode("utf-8"), 0o600 if output.secret else 0o644)
            if backup is not None:
                try:
                    _backup(output.path, backup)
                except OSError as exc:
                    raise _CannotReplace(exc) from None
        journal.state = "committing"
        _write_key_journal(journal_path, journal)
    except _CannotReplace as failure:
        _roll_back_keys(entries, journal_path)
        raise OutputError(
            f"cannot replace {current!r}: {failure.error.strerror}. Is it immutable or append-only "
            "(lsattr), or its directory read-only? Nothing was written: "
            f"{_others(outputs, current)} unchanged too."
        ) from None
    except BaseException as exc:
        _roll_back_keys(entries, journal_path)
        if isinstance(exc, OSError):
            raise OutputError(
                f"cannot write {current!r}: {exc.strerror}. Check that its directory exists and "
                "is writable. Nothing was written."
            ) from None
        raise
    done: list[tuple[str, str, str | None]] = []
    try:
        for output, entry in zip(outputs, entries, strict=True):
            target, temp, _ = entry
            current = output.path
            if force or output.replaces:
                os.replace(temp, target)
            else:
                os.link(temp, target)
                os.unlink(temp)
            done.append(entry)
    except OSError as exc:
        try:
            for target, _, backup in reversed(done):
                if backup is None:
                    os.unlink(target)
                else:
                    os.replace(backup, target)
        except OSError:
            raise OutputError(
                f"cannot write {current!r}: {exc.strerror}, and undoing the files already "
                f"replaced failed too. The next write of these files completes it from "
                f"{journal_path}."
            ) from None
        _roll_back_keys(entries, journal_path)
        if isinstance(exc, FileExistsError):
            raise OutputError(
                f"{current!r} appeared while writing. Pass --force to overwrite it, or choose "
                "another path. Nothing was written."
            ) from None
        raise OutputError(
            f"cannot write {current!r}: {exc.strerror}. Nothing was written: "
            f"{_others(outputs, current)} unchanged too."
        ) from None
    _finish_keys(entries, journal_path)


class _CannotReplace(Exception):
    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _others(outputs: Sequence[OutputFile], current: str) -> str:
    others = [repr(o.path) for o in outputs if o.path != current]
    if not others:
        return "it is"
    return f"{' and '.join(others)} {'is' if len(others) == 1 else 'are'}"


def _write_key_journal(journal_path: str, journal: KeyJournal) -> None:
    temp = journal_path + ".tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)
    _create_file(temp, journal.to_json().encode(), 0o600)
    os.replace(temp, journal_path)
    _fsync_dir(os.path.dirname(journal_path))


def _roll_back_keys(entries: list[tuple[str, str, str | None]], journal_path: str) -> None:
    for _, temp, backup in entries:
        for staged in (temp, backup):
            if staged is not None:
                with contextlib.suppress(OSError):
                    os.unlink(staged)
    with contextlib.suppress(OSError):
        os.unlink(journal_path)


def _finish_keys(entries: list[tuple[str, str, str | None]], journal_path: str) -> None:
    for folder in {os.path.dirname(target) for target, _, _ in entries}:
        _fsync_dir(folder)
    for _, _, backup in entries:
        if backup is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(backup)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(journal_path)
    _fsync_dir(os.path.dirname(journal_path))


def _fsync_dir(folder: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def out_of_step_detail(paths: Sequence[str]) -> str:
    """Which of two files changed last, and any backups of them, for an out-of-step refusal."""
    stamps: list[tuple[float, str]] = []
    for path in paths:
        with contextlib.suppress(OSError):
            stamps.append((os.stat(path).st_mtime, path))
    stamps.sort()
    text = ""
    if len(stamps) == 2:
        (older_time, older), (newer_time, newer) = stamps
        if newer_time == older_time:
            text = f"{older} and {newer} were modified at the same time ({_when(newer_time)})."
        else:
            text = (
                f"{newer} is the newer file (modified {_when(newer_time)}; {older} "
                f"{_when(older_time)})."
            )
    backups = sorted(
        os.path.join(folder, name)
        for folder in {os.path.dirname(os.path.abspath(path)) for path in paths}
        for name in _listdir(folder)
        if name.startswith(STAGING_PREFIX) and name.endswith(".old")
    )
    if backups:
        text += f" Backups of replaced key files are in {', '.join(backups)}."
    return text.strip()


def _listdir(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
