"""StepTimer: RCCR's machinery is timed while active and restored afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from step_timing import StepTimer
from tiny_toy import tiny_config

from rccr.method import memory_bank, region_contrast
from rccr.training import Trainer, steps


def test_step_timer__times_each_kind_and_restores(toy: Path, tmp_path: Path) -> None:
    config = tiny_config(toy, "train.mode=rccr", "method.confidence_threshold=0")
    originals = (steps.region_contrastive_loss, steps.sample_entries,
                 memory_bank.MemoryBank.enqueue,
                 region_contrast._TiledInfoNCE.__dict__["backward"])  # fmt: skip
    trainer = Trainer(config, tmp_path / "run")
    source, target = trainer._stream(trainer.source_set, 0), trainer._stream(trainer.target_set, 1)
    syncs = []
    with StepTimer(sync=lambda: syncs.append(1)) as timer:
        trainer._train_step(source, target)
        assert set(timer.spent) == {"sampling", "bank", "loss", "diagnostics"}
        assert all(seconds > 0 for seconds in timer.spent.values())
        assert timer.total == pytest.approx(sum(timer.spent.values()))
        assert syncs  # the sync hook runs around every timed call
        timer.reset()
        assert timer.total == 0
    assert (steps.region_contrastive_loss, steps.sample_entries,
            memory_bank.MemoryBank.enqueue,
            region_contrast._TiledInfoNCE.__dict__["backward"]) == originals  # fmt: skip
