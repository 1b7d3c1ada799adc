"""The lock on a run directory: one command at a time writes there.

`RunLock` takes `fcntl.flock` on RUN_DIR/.lock (Linux and macOS; on a network file
system, as far as it supports flock). The kernel drops the lock when the process
ends, however it ends (SIGKILL included), so a killed run never leaves a stale lock
behind; the file itself stays. Where `fcntl` does not exist (Windows) there is no
lock.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..errors import NnscratchError

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

LOCK_FILE = ".lock"


class RunDirInUse(NnscratchError):
    """The run directory's lock is held by another process (named in the message)."""


class RunLock:
    """`with RunLock(run_dir, "nnscratch train"):` holds the run directory's lock, or
    refuses at once with one line naming the process that holds it."""

    def __init__(self, run_dir, command: str):
        self.run_dir, self.command = Path(run_dir), command
        self._fd: int | None = None

    def __enter__(self):
        if fcntl is None:
            return self
        path = self.run_dir / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise NnscratchError(
                f"cannot lock {self.run_dir}: {e.strerror or e}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: held by another process
            holder = os.pread(fd, 500, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise RunDirInUse(
                f"{self.run_dir} is in use by another run ({holder or 'starting'}): "
                "wait for it to end, or choose another folder"
            ) from None
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {self.command}, since {since}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # nobody holds it now
            os.close(self._fd)  # and this releases the lock
            self._fd = None
