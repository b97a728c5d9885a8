"""File-system steps every persistence plugin needs, each with the reason it is there.

A file is durable under its final name only after: its bytes are written and fsynced, it is
renamed into place (atomic on POSIX: readers see the old file or the new one, never half of
one), and the directory holding the name is fsynced (the rename itself is a directory change
that a crash can otherwise undo). ``atomic_publish`` does the last two.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from ..errors import PersistenceError

LOCK_FILE_NAME = "LOCK"


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make creations, renames and deletions inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_publish(temporary: str | os.PathLike[str], final: str | os.PathLike[str]) -> None:
    """Rename an already fsynced ``temporary`` to ``final`` and make the rename durable."""
    os.replace(temporary, final)
    fsync_dir(Path(final).parent)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """``os.write`` until every byte is written (a regular file may accept part of a large
    write, e.g. when a signal arrives)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def ensure_directory(path: Path, what: str) -> Path:
    """Create ``path`` (and parents) if needed and prove it writable, or raise a
    :class:`PersistenceError` that names it and the reason."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PersistenceError(f"{what} {str(path)!r} cannot be created: "
                               f"{exc.strerror or exc}") from None
    if not path.is_dir():
        raise PersistenceError(f"{what} {str(path)!r} is not a directory")
    probe = path / f".write-test-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, b"x")
        finally:
            os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PersistenceError(f"{what} {str(path)!r} is not writable: "
                               f"{exc.strerror or exc}") from None
    return path


class DataDirLock:
    """An exclusive ``flock`` on ``<data_dir>/LOCK`` for as long as the node runs.

    Two nodes on one data dir would interleave their logs; the second is refused. The kernel
    drops the lock when the process dies however it dies, so a restart after ``kill -9`` is
    never blocked by a stale lock file (the file itself stays and is harmless).
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise PersistenceError(f"cannot open the data dir lock {str(self.path)!r}: "
                                   f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                by = f" (pid {holder})" if holder else ""
                raise PersistenceError(
                    f"data dir {str(self.path.parent)!r} is in use by another node{by}: "
                    "each node needs its own node.data_dir") from None
            raise PersistenceError(f"cannot lock {str(self.path)!r}: "
                                   f"{exc.strerror or exc}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def _read_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
