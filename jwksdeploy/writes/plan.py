"""Deciding what an output tree write does, without I/O: the manifest that proves which files
below an output directory jwksdeploy wrote (path, sha256, producer), and the plan of one
producer's run (what it writes, keeps, removes and refuses)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .atomic import STAGING_PREFIX, sha256_of

MANIFEST = ".jwksdeploy-manifest.json"
_SHOWN = 5  # paths named in one error before "and N more"

Kind = Literal["missing", "file", "symlink", "directory", "other", "blocked"]


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
        f"{shown_path(directory, refusal.path)} ({refusal.reason})" for refusal in refusals[:_SHOWN]
    )
    more = f" and {len(refusals) - _SHOWN} more" if len(refusals) > _SHOWN else ""
    fix = "Move them away or choose another --output-dir"
    if all(refusal.forcible for refusal in refusals):
        fix += "; --force overwrites them"
    return (
        f"--output-dir {directory!r}: jwksdeploy writes only over files it wrote itself (listed "
        f"in {MANIFEST}), and these are in the way: {shown}{more}. Nothing was changed. {fix}."
    )


def shown_path(directory: str, path: str) -> str:
    return os.path.join(directory, *path.split("/"))


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
