"""status.json's states, the process a trainer names in it, and when a "running" status
no longer describes a live trainer (the run is stale)."""

from __future__ import annotations

import contextlib
import math
import os
import socket
from typing import Any, Literal

__all__ = ["STALE_AFTER_S", "Status", "ago", "finite", "staleness", "this_host"]

Status = Literal["running", "finished", "interrupted", "stale", "unknown"]

STALE_AFTER_S = 3600.0
"""A "running" run whose status.json is older than this, and than 10 of its log intervals,
is stale (its trainer is gone); on the trainer's own host a vanished PID says so at once."""
_STALE_INTERVALS = 10


def this_host() -> dict[str, str]:
    """Where this process runs: the host name, and the PID namespace where there is one
    (two containers may share a host name, never a PID namespace)."""
    host = {"host": socket.gethostname()}
    with contextlib.suppress(OSError):
        host["pid_ns"] = os.readlink("/proc/self/ns/pid")
    return host


def ago(seconds: float) -> str:
    """A duration as a person says it: "40 s", "5 min", "3 h", "2 days"."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{max(int(seconds), 0)} s"


def finite(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _gone(pid: int) -> bool:
    """Whether no process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # PermissionError: it exists, and is another user's
        return False
    return False


def staleness(status: dict[str, Any], now: float) -> str | None:
    """Why a status.json that says "running" no longer describes a live trainer, if it
    does not: its process is gone (on this host), or it has not been updated for more than
    :data:`STALE_AFTER_S` and 10 log intervals."""
    pid, host = status.get("pid"), status.get("host")
    here = this_host()
    same_host = host == here["host"] and status.get("pid_ns") == here.get("pid_ns")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        pid = None
    if same_host and pid is not None and _gone(pid):
        return f"process {pid} on {host} is gone"
    updated = finite(status.get("updated"))
    interval = finite(status.get("interval_s")) or 0.0
    limit = max(STALE_AFTER_S, _STALE_INTERVALS * interval)
    if updated is not None and now - updated > limit:
        return f"it was not updated for more than {ago(limit)}"
    return None
