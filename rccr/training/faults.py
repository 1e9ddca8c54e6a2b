"""What training does when something goes wrong mid-run, and the record it keeps of it.

Two faults are handled here, each with a strict default and an opt-in way around it:

- **An unreadable sample** (``data.skip_bad``). The streams read through
  :class:`rccr.data.skipping.ReplaceBad`, which replaces a bad item by the next readable one
  and reports it. By default the first report stops the run with the file's error; with
  ``data.skip_bad`` each skipped file is logged and counted.
- **A NaN or infinite loss term** (``train.nan_retries``). By default the run stops with
  :class:`TrainingError` naming the term and the iteration; the last good checkpoint is
  kept. With ``train.nan_retries = k``, training rolls back to the newest checkpoint (read
  from disk, never a copy kept in memory), skips the offending batch and goes on, at most
  ``k`` times in the run.

A checkpoint is never written with non-finite weights (:func:`require_finite`).

Everything skipped goes to the run's ``skipped.jsonl`` (one record each, ``kind`` "sample"
or "batch"); metrics.jsonl carries the running counts (``data/skipped``,
``train/rollbacks``). The log is also the state: a resumed run reads from it which batches
were skipped, so step ``t`` reads the same batch on every resume.

Under DDP every rank keeps the same record: skipped samples are gathered from all ranks,
and a NaN, seen in the loss terms averaged over ranks, rolls every rank back together.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from torch import nn

from rccr.config import Config
from rccr.data.dataset import Sample
from rccr.data.files import DataError
from rccr.data.skipping import Checked, replaced_samples
from rccr.runs import RunWriter, read_skipped
from rccr.training.checkpoint import latest_checkpoint
from rccr.training.distributed import all_gather_objects

__all__ = ["Faults", "TrainingError", "first_batch", "non_finite", "require_finite"]


class TrainingError(RuntimeError):
    """Training cannot go on (a loss or a weight became NaN or infinite)."""


def first_batch(iteration: int, skipped: list[int]) -> int:
    """The stream's batch index for step ``iteration`` when the batches ``skipped`` are left out.

    Without skips step ``t`` reads batch ``t``; every skipped batch at or before the one a
    step would read shifts it (and all later steps) by one.
    """
    index = iteration
    for batch in sorted(skipped):
        if batch <= index:
            index += 1
    return index


def non_finite(modules: dict[str, nn.Module | None]) -> str | None:
    """The name of the first parameter or buffer holding NaN or Inf, or None if all are finite.

    Args:
        modules: name prefix -> module (None entries are ignored).
    """
    for prefix, module in modules.items():
        if module is None:
            continue
        for name, tensor in (*module.named_parameters(), *module.named_buffers()):
            if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
                return f"{prefix}.{name}"
    return None


def require_finite(modules: dict[str, nn.Module | None], iteration: int, run_dir: Path) -> None:
    """Refuse to checkpoint non-finite weights.

    Raises:
        TrainingError: naming the first parameter or buffer holding NaN or Inf.
    """
    bad = non_finite(modules)
    if bad is not None:
        raise TrainingError(
            f"{bad} is not finite at iteration {iteration}; no checkpoint written, the last "
            f"good one is kept in {run_dir / 'checkpoints'}"
        )


class Faults:
    """The run's policies for bad samples and non-finite losses, and its record of skips.

    Every rank keeps the same record; only rank 0 passes a writer to log it.

    Args:
        config: the run's config (``data.skip_bad``, ``train.nan_retries``).
        run_dir: the run directory, whose skipped.jsonl says what was skipped so far.
        iteration: the iteration training (re)starts from; later records are ignored, as
            the steps they came from will run again.
    """

    def __init__(self, config: Config, run_dir: str | os.PathLike, iteration: int) -> None:
        self.skip_bad = config.data.skip_bad
        self.nan_retries = config.train.nan_retries
        self.run_dir = Path(run_dir)
        # A malformed record is left out here, and dropped (with a warning) when rank 0
        # truncates the logs (``RunWriter.truncate_metrics``).
        records = [r for r in read_skipped(self.run_dir) if r["iteration"] <= iteration]
        # The iteration of each record, so that a roll-back can drop the later ones.
        self._samples = [int(r["iteration"]) for r in records if r.get("kind") == "sample"]
        self._rollbacks = [
            (int(r["iteration"]), int(r["batch"])) for r in records if r.get("kind") == "batch"
        ]
        self._pending: list[dict[str, Any]] = []

    @property
    def batches(self) -> list[int]:
        """The batch indices skipped by roll-backs."""
        return [batch for _, batch in self._rollbacks]

    def stream(
        self, start_at: Callable[[int], Iterator[Checked]], iteration: int, name: str
    ) -> Iterator[Sample]:
        """Batches for the steps from ``iteration`` on, past skipped batches, samples checked.

        Args:
            start_at: starts the raw stream (of ``Checked`` batches) at a batch index.
            iteration: the first step to feed.
            name: the stream's name in reports ("source" or "target").

        Raises (while iterating):
            DataError: naming the file, for an unreadable sample, unless ``skip_bad``.
        """
        skipped = self.batches
        start = first_batch(iteration, skipped)
        for index, batch in enumerate(start_at(start), start=start):
            if index not in skipped:
                yield self._check(batch, name)

    def _check(self, batch: Checked, name: str) -> Sample:
        for item in replaced_samples(batch):
            if not self.skip_bad:
                raise DataError(f"{item['error']} (data.skip_bad=true skips unreadable samples)")
            self._pending.append({"kind": "sample", "stream": name, **item})
        return batch.sample

    def commit(self, iteration: int, writer: RunWriter | None) -> None:
        """Log the samples skipped by the step that reached ``iteration`` (every rank's).

        Collective under DDP when ``skip_bad`` is on: every rank calls it after each step.
        """
        if not self.skip_bad:
            return
        records = all_gather_objects(self._pending)
        self._pending = []
        if writer is not None:
            for record in records:
                writer.log_skipped({"iteration": iteration, **record})
        self._samples += [iteration] * len(records)

    def metrics(self) -> dict[str, int]:
        """Running counts for metrics.jsonl (only those whose option is on)."""
        counts = {}
        if self.skip_bad:
            counts["data/skipped"] = len(self._samples)
        if self.nan_retries:
            counts["train/rollbacks"] = len(self._rollbacks)
        return counts

    def roll_back(
        self, error: TrainingError, step: int, writer: RunWriter | None
    ) -> dict[str, Any]:
        """After ``error`` at ``step``: the checkpoint to restore, with that step's batch skipped.

        Truncates the logs to the checkpoint's iteration (the steps after it run again)
        and logs the roll-back to skipped.jsonl.

        Returns:
            The newest loadable checkpoint of the run, read from disk.

        Raises:
            TrainingError: ``error`` itself if roll-backs are off; with a note if the
                ``train.nan_retries`` roll-backs are used up or there is no checkpoint.
        """
        if not self.nan_retries:
            raise error
        if len(self._rollbacks) >= self.nan_retries:
            raise TrainingError(
                f"{error} (gave up after {len(self._rollbacks)} roll-backs, "
                f"train.nan_retries={self.nan_retries})"
            ) from error
        state, _ = latest_checkpoint(self.run_dir)
        if state is None:
            raise TrainingError(f"{error} (no checkpoint to roll back to)") from error
        batch = first_batch(step, self.batches)
        iteration = int(state["iteration"])
        self._pending = []  # the failed step's batch is skipped altogether
        self._samples = [i for i in self._samples if i <= iteration]
        self._rollbacks = [(i, b) for i, b in self._rollbacks if i <= iteration]
        self._rollbacks.append((iteration, batch))
        if writer is not None:
            writer.truncate_metrics(iteration)
            writer.log_skipped(
                {"iteration": iteration, "kind": "batch", "batch": batch, "error": str(error)}
            )
        return state
