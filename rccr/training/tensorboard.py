"""TensorBoard events beside metrics.jsonl (``train.tensorboard: true``).

Every record the trainer appends to metrics.jsonl (loss terms, learning rate, lambda(t),
throughput, diagnostics, target-val mIoU) is also written as TensorBoard scalars, keyed by
its metrics.jsonl name, under ``<run>/tensorboard/``::

    tensorboard --logdir runs        # every run with train.tensorboard=true

metrics.jsonl stays the run's record; the events are a view of it. A resumed run writes a
new event file, starting at the iteration it resumes from. Needs the ``tensorboard``
package (``pip install 'rccr[tensorboard]'``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["TensorBoardLog", "require_tensorboard"]


def require_tensorboard() -> None:
    """Raise a one-line error if the tensorboard package is missing (checked before a run
    starts, so it never fails after its first steps)."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(
            "train.tensorboard=true needs the tensorboard package: pip install "
            f"'rccr[tensorboard]' (or set train.tensorboard=false) ({exc})"
        ) from exc


class TensorBoardLog:
    """Writes metrics.jsonl records as scalars to ``folder`` (created)."""

    def __init__(self, folder: Path) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))

    def write(self, record: dict[str, Any]) -> None:
        """One metrics.jsonl record: every finite number but ``iteration`` and ``time``."""
        step = int(record["iteration"])
        for key, value in record.items():
            if key in ("iteration", "time") or isinstance(value, bool):
                continue
            if isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(key, value, step, walltime=record.get("time"))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
