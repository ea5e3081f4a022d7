"""Owned key-file sets (a private and a public key set), all-or-nothing.

The same scheme as output trees, with a journal of their own beside the first file: each
file is staged beside its target, and every target that exists is hard-linked to a backup
first, which fails on an immutable or append-only file and in a read-only directory before
anything is replaced, and is the way back if a later rename fails. A write that dies is
finished or undone by the next one (under the same directory lock).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ..errors import OutputError
from ._shared import (
    MAX_RECORD_BYTES,
    STAGING_PREFIX,
    check_path_text,
    create_file,
    link_backup,
    locked,
    record_objects,
)


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
        for entry in record_objects(document.get("files")):
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
            stack.enter_context(locked(fd, folder))
        notes = [note for path in paths if (note := _recover_keys(path))]
        yield notes


def _recover_keys(path: str) -> str | None:
    journal_path = key_journal_path(path)
    folder = os.path.dirname(journal_path)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(journal_path + ".tmp")
        with open(journal_path, "rb") as handle:
            data = handle.read(MAX_RECORD_BYTES + 1)
        if len(data) > MAX_RECORD_BYTES:
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
            create_file(temp, output.content.encode("utf-8"), 0o600 if output.secret else 0o644)
            if backup is not None:
                try:
                    link_backup(output.path, backup)
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
    create_file(temp, journal.to_json().encode(), 0o600)
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
