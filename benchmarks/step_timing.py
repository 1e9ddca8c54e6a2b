"""Where an RCCR training step spends its time: region sampling, memory bank, loss.

Shared by ``bench_step.py`` and ``gpu_check.py``. :class:`StepTimer` wraps RCCR's own
machinery, where ``rccr.training.steps`` looks it up, with wall-clock timers for as long
as it is active (and puts the originals back afterwards):

- ``sampling``: ``box_cells``, ``gather_cells``, ``augmented_labels``, ``sample_entries``;
- ``bank``: ``MemoryBank.enqueue`` and ``MemoryBank.contents``;
- ``loss``: ``region_contrastive_loss`` (its forward computes the anchors' gradient too) and
  its custom backward;
- ``diagnostics`` (analysis only, ``method.diagnostics``): the teacher's, the anchors' and
  the negatives' scores against the target labels, and the labels' downsampling for them
  (``downsample_labels`` and one of the ``augmented_labels`` calls, counted as sampling).

The extra forward pass of the CutMix image is not counted: it is the method, not its
bookkeeping. On a GPU pass ``sync=torch.cuda.synchronize`` so that each timer waits for
the kernels it launched (the synchronisation slows the step a little; measure the step
time itself without the timer).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from rccr.method import memory_bank, region_contrast
from rccr.training import steps

__all__ = ["StepTimer"]

_SAMPLING = ("box_cells", "gather_cells", "augmented_labels", "sample_entries")
_DIAGNOSTICS = ("_teacher_diagnostics", "anchor_quality", "negative_quality", "downsample_labels")


class StepTimer:
    """Seconds spent in each kind of RCCR machinery while the context is active.

    Args:
        sync: called before reading the clock (e.g. ``torch.cuda.synchronize``).

    Attributes:
        spent: kind ("sampling", "bank", "loss") -> seconds.
    """

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self.sync = sync or (lambda: None)
        self.spent: dict[str, float] = {}
        self._restore: list[tuple[Any, str, Any]] = []

    def _timed(self, kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.sync()
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.sync()
                self.spent[kind] = self.spent.get(kind, 0.0) + time.perf_counter() - start

        return wrapper

    def _patch(self, owner: Any, name: str, kind: str, static: bool = False) -> None:
        original = owner.__dict__[name]
        function = original.__func__ if static else original
        timed = self._timed(kind, function)
        setattr(owner, name, staticmethod(timed) if static else timed)
        self._restore.append((owner, name, original))

    def __enter__(self) -> StepTimer:
        for name in _SAMPLING:
            self._patch(steps, name, "sampling")
        for name in _DIAGNOSTICS:
            self._patch(steps, name, "diagnostics")
        self._patch(steps, "region_contrastive_loss", "loss")
        self._patch(region_contrast._TiledInfoNCE, "backward", "loss", static=True)
        self._patch(memory_bank.MemoryBank, "enqueue", "bank")
        self._patch(memory_bank.MemoryBank, "contents", "bank")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for owner, name, original in reversed(self._restore):
            setattr(owner, name, original)
        self._restore.clear()

    def reset(self) -> None:
        """Forget the time spent so far (e.g. after warm-up steps)."""
        self.spent.clear()

    @property
    def total(self) -> float:
        return sum(self.spent.values())
