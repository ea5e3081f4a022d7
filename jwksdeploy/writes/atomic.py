"""What every owned write shares: a directory lock that also clears what a killed run left,
and a group of files replaced one at a time, each atomically (a temp file beside it, fsync,
rename, fsync the directory), put back from memory when one of them fails."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..errors import OutputError

STAGING_PREFIX = ".jwksdeploy-"
LOCK_WAIT_SECONDS = 30.0
MAX_RECORD_BYTES = 16 << 20  # a manifest larger than this is not ours
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def check_path_text(what: str, path: str) -> None:
    """A path the operating system can take at all (no NUL byte), else OutputError."""
    if "\x00" in path:
        raise OutputError(f"{what} {path!r} holds a NUL byte, which no file name can. Fix it.")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Held(threading.local):
    """The directories this thread holds locked (flock itself does not nest)."""

    def __init__(self) -> None:
        self.keys: set[tuple[int, int]] = set()


_HELD = _Held()


@contextlib.contextmanager
def locked(fd: int, directory: str) -> Iterator[None]:
    """An exclusive flock on a directory, so writers into it take turns; taking it removes
    the temp files a killed writer left there (safe only under the lock, so no lock, no
    write). Reentrant within a thread."""
    import fcntl

    info = os.fstat(fd)
    key = (info.st_dev, info.st_ino)
    if key in _HELD.keys:
        yield
        return
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
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
            message = f"cannot lock {directory!r}: {exc.strerror}. Nothing was changed."
            raise OutputError(message) from None
    _HELD.keys.add(key)
    try:
        sweep(fd)
        yield
    finally:
        _HELD.keys.discard(key)
        fcntl.flock(fd, fcntl.LOCK_UN)


def sweep(fd: int) -> None:
    """Remove our temp files (prefix and .tmp) from a directory whose lock we hold: a killed
    run's, which may be a second hard link of a private set."""
    with contextlib.suppress(OSError):
        for name in os.listdir(fd):
            if name.startswith(STAGING_PREFIX) and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=fd)


def read_small(fd: int | None, path: str) -> bytes | None:
    """A regular file's bytes (symlinks not followed), None when missing; ValueError when it
    is not a regular file or larger than any record of ours."""
    try:
        handle = os.open(path, READ_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("it is a symbolic link") from None
        raise
    with open(handle, "rb") as reader:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            raise ValueError("it is not a regular file")
        data = reader.read(MAX_RECORD_BYTES + 1)
    if len(data) > MAX_RECORD_BYTES:
        raise ValueError("it is too large")
    return data


@dataclass(frozen=True)
class Change:
    """One file to write (or remove, data None); `path` is relative to `dir_fd` when given.
    A file that must not exist yet (`clobber` False) is linked into place, never over one."""

    path: str
    data: bytes | None
    mode: int = 0o644
    dir_fd: int | None = None
    clobber: bool = True


class ChangeFailed(Exception):
    """Change number `index` failed (`staged`: while putting it in place); `undone`: the
    ones before it were put back."""

    def __init__(self, index: int, error: OSError, staged: bool, undone: bool) -> None:
        super().__init__(error.strerror)
        self.index, self.error, self.staged, self.undone = index, error, staged, undone


def stage(path: str, data: bytes, mode: int, dir_fd: int | None) -> str:
    """A temp file beside path, complete and on disk; 0600 from creation whatever `mode`."""
    temp = os.path.join(os.path.dirname(path), f"{STAGING_PREFIX}{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    handle = os.open(temp, flags, 0o600, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(handle, view) :]
        os.fchmod(handle, mode)
        os.fsync(handle)
    except BaseException:
        os.close(handle)
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=dir_fd)
        raise
    os.close(handle)
    return temp


def _sync_dir(path: str, dir_fd: int | None) -> None:
    with contextlib.suppress(OSError):
        handle = os.open(os.path.dirname(path) or ".", DIR_FLAGS, dir_fd=dir_fd)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _put(change: Change, temp: str | None) -> None:
    fds = {"src_dir_fd": change.dir_fd, "dst_dir_fd": change.dir_fd}
    if temp is None:
        os.unlink(change.path, dir_fd=change.dir_fd)
    elif change.clobber:
        os.replace(temp, change.path, **fds)
    else:
        os.link(temp, change.path, follow_symlinks=False, **fds)  # EEXIST: never over a file
        os.unlink(temp, dir_fd=change.dir_fd)
    _sync_dir(change.path, change.dir_fd)


def _before(change: Change) -> Change | None:
    """The change that puts back what change.path holds now, kept in memory (never a second
    link on disk); None for a symbolic link, which --force replaces for good."""
    try:
        info = os.stat(change.path, dir_fd=change.dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return Change(change.path, None, dir_fd=change.dir_fd)
    if stat.S_ISLNK(info.st_mode):
        return None
    try:
        data = read_small(change.dir_fd, change.path)
    except ValueError:  # not a regular file, or huge: replaced for good, as --force asked
        return None
    return Change(change.path, data, stat.S_IMODE(info.st_mode), change.dir_fd)


def apply_changes(changes: Sequence[Change]) -> None:
    """Stage every file, then put each in place; when one fails, the earlier ones are put
    back (ChangeFailed). Killed, each file is old or new, and the next lock of its directory
    removes the temp files left."""
    temps: list[str | None] = []
    befores: list[Change | None] = []
    for index, change in enumerate(changes):
        try:
            befores.append(_before(change))
            temps.append(_stage(change))
        except OSError as exc:
            _drop(changes, temps)
            raise ChangeFailed(index, exc, staged=False, undone=True) from None
    for index, change in enumerate(changes):
        try:
            _put(change, temps[index])
        except OSError as exc:
            _drop(changes[index:], temps[index:])
            try:
                for back in reversed(befores[:index]):
                    if back is not None:
                        _put(back, _stage(back))
            except OSError:
                raise ChangeFailed(index, exc, staged=True, undone=False) from None
            raise ChangeFailed(index, exc, staged=True, undone=True) from None


def _stage(change: Change) -> str | None:
    data = change.data
    return None if data is None else stage(change.path, data, change.mode, change.dir_fd)


def _drop(changes: Sequence[Change], temps: Sequence[str | None]) -> None:
    for change, temp in zip(changes, temps, strict=False):
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=change.dir_fd)
