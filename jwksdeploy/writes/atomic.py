"""What every owned write shares: a directory lock that also clears what a killed run left,
and files replaced each atomically (a temp file beside it, fsync, rename, fsync the directory).
A group of files is staged first and then put in place in order, with no undo: a failure
while putting one leaves the earlier ones new (docs/reference.md, "Output directories")."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator

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
    the temp files a killed writer left there (safe only under the lock). Reentrant within
    a thread."""
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
    """Remove our temp files from a directory whose lock we hold: a killed run's, which may
    be a second hard link of a private set."""
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


def stage(path: str, data: bytes, mode: int, dir_fd: int | None = None) -> str:
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


def put(temp: str | None, path: str, dir_fd: int | None = None, clobber: bool = True) -> None:
    """Move a staged file into place (temp None: remove path), then fsync the directory.
    Without `clobber` the file is linked in, so one that appeared meanwhile is never replaced
    (FileExistsError)."""
    fds = {"src_dir_fd": dir_fd, "dst_dir_fd": dir_fd}
    if temp is None:
        os.unlink(path, dir_fd=dir_fd)
    elif clobber:
        os.replace(temp, path, **fds)
    else:
        os.link(temp, path, follow_symlinks=False, **fds)
        os.unlink(temp, dir_fd=dir_fd)
    with contextlib.suppress(OSError):
        handle = os.open(os.path.dirname(path) or ".", DIR_FLAGS, dir_fd=dir_fd)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def drop(temps: list[tuple[str, int | None]]) -> None:
    """Remove staged files that will not be put in place."""
    for temp, dir_fd in temps:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=dir_fd)
