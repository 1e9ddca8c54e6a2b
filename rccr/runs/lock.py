"""One trainer per run directory: :class:`RunLock`, an ``flock`` on ``<run>/.lock``."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

from rccr.runs.paths import RunError
from rccr.runs.status import this_host

__all__ = ["LOCK_FILE", "RunLock"]

LOCK_FILE = ".lock"


class RunLock:
    """An exclusive hold on a run directory: one trainer writes a run at a time.

    An ``flock`` on ``<run>/.lock``, a file that is never deleted (a deleted lock file lets
    two trainers lock two different files). The holder writes its PID and host into it.
    :meth:`close` releases it; the OS releases it when the process dies, also on
    ``kill -9``. A forked child (a DataLoader worker) closes its copy of the lock file at
    once, so a worker outliving a killed trainer does not keep the run locked.

    Args:
        root: the run directory (created if needed).

    Raises:
        RunError: in one line, naming the holder's PID and host, if another process holds
            the run; naming ``root`` if it is a file.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise RunError(f"{self.root}: not a folder; choose another output folder")
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise RunError(
                f"{self.root}: in use by another trainer ({holder}); wait for it to finish "
                "or stop it, or choose another output folder"
            ) from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), **this_host()}).encode(), 0)
        self._fd: int | None = fd
        _HELD.add(fd)

    def close(self) -> None:
        """Release the run (a no-op once released)."""
        if self._fd is not None:
            _HELD.discard(self._fd)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_HELD: set[int] = set()  # this process's lock files


def _forget_locks() -> None:
    """In a forked child: close the lock files, which stay locked by the parent alone."""
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_locks)


def _lock_holder(fd: int) -> str:
    """The holder of a lock file, "PID <pid> on <host>", as it wrote itself in."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0))
        return f"PID {int(holder['pid'])} on {str(holder['host'])[:100]}"
    except (OSError, ValueError, KeyError, TypeError):
        return "PID unknown: it is starting or stopping"
