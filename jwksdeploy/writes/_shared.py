"""What the two kinds of owned writes share: the staging-file prefix, the limits on the
records (manifest, journals) they read back, an flock per directory that this process may
take again, and the file primitives (a new file complete on disk with its mode from the first
byte; a backup by hard link)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..errors import OutputError

STAGING_PREFIX = ".jwksdeploy-"
LOCK_WAIT_SECONDS = 30.0
MAX_RECORD_BYTES = 16 << 20  # a manifest or journal larger than this is not ours
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def check_path_text(what: str, path: str) -> None:
    """A path the operating system can take at all (no NUL byte), else OutputError."""
    if "\x00" in path:
        raise OutputError(f"{what} {path!r} holds a NUL byte, which no file name can. Fix it.")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_objects(value: Any) -> list[dict[str, Any]]:
    """A journal's list of entries, each an object."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("expected a list of objects")
    return value


class _Held(threading.local):
    """The directories this thread holds locked (flock itself does not nest)."""

    def __init__(self) -> None:
        self.keys: set[tuple[int, int]] = set()


_HELD = _Held()


@contextlib.contextmanager
def locked(fd: int, directory: str) -> Iterator[None]:
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


def create_file(name: str, data: bytes, mode: int, dir_fd: int | None = None) -> None:
    # Opened 0600 whatever the final mode: a secret is never readable by others, even empty.
    handle = os.open(name, CREATE_FLAGS, 0o600, dir_fd=dir_fd)
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


def link_backup(
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
        handle = os.open(source, READ_FLAGS, dir_fd=source_fd)
        try:
            data = b""
            while chunk := os.read(handle, 1 << 16):
                data += chunk
        finally:
            os.close(handle)
        create_file(target, data, stat.S_IMODE(info.st_mode) & 0o666, target_fd)
