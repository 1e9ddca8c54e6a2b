"""Stopping a run cleanly: Ctrl-C and SIGTERM end the current step, never a write.

While :func:`stop_requests` is active, SIGINT and SIGTERM only record that a stop was
asked for; the trainer checks after each step, saves a checkpoint and returns, so an
interrupted run resumes bit for bit. Under DDP a signal can reach the ranks at different
steps; :func:`agreed_stop` makes every rank stop at the same one.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import torch

from rccr.training import distributed

__all__ = ["agreed_stop", "stop_requests"]


@contextmanager
def stop_requests() -> Iterator[Callable[[], str | None]]:
    """While active, SIGINT and SIGTERM set a flag instead of killing the process.

    Yields:
        A function returning the first signal's name, or None if none came. Outside the
        main thread (where handlers cannot be installed) it always returns None.
    """
    reason: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        reason.append(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: reason[0] if reason else None
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def agreed_stop(reason: str | None, world: distributed.World, device: torch.device) -> str | None:
    """This rank's stop reason, or "stopped on another rank" if any other rank stops.

    Stopping alone would leave the other ranks waiting in the next all-reduce. A no-op in
    a world of one.
    """
    if not world.distributed:
        return reason
    flag = torch.tensor([0.0 if reason is None else 1.0], device=device)
    if distributed.all_reduce_mean(flag).item() > 0 and reason is None:
        return "stopped on another rank"
    return reason
