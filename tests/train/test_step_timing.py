"""StepTimer: RCCR's machinery is timed while active and restored afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from rccr.config import load_config
from rccr.data.toycity import ToyCitySpec, make_toy_city
from rccr.method import memory_bank, region_contrast
from rccr.train import Trainer, method_steps
from rccr.train.step_timing import StepTimer


def test_step_timer__times_each_kind_and_restores(tmp_path: Path) -> None:
    toy = tmp_path / "toy"
    spec = ToyCitySpec(num_source=4, num_target_train=4, num_target_val=1, width=64, height=32)
    make_toy_city(toy, spec, workers=1, progress=False)
    config = load_config("toy", [
        f"data.source_root={toy / 'gta5'}", f"data.target_root={toy / 'cityscapes'}",
        *(f"data.{k}=[64, 32]" for k in ("source_size", "target_size", "val_size")),
        "data.crop=[32, 32]", "model.width=8", "train.mode=rccr", "train.batch_size=2",
        "train.threads=1", "method.bank_per_step=16", "method.confidence_threshold=0",
    ])  # fmt: skip
    originals = (method_steps.region_contrastive_loss, memory_bank.MemoryBank.enqueue,
                 region_contrast._ChunkedInfoNCE.__dict__["backward"])  # fmt: skip
    trainer = Trainer(config, tmp_path / "run")
    source, target = trainer._stream(trainer.source_set, 0), trainer._stream(trainer.target_set, 1)
    syncs = []
    with StepTimer(sync=lambda: syncs.append(1)) as timer:
        trainer._train_step(source, target, 0.01)
        assert set(timer.spent) == {"sampling", "bank", "loss"}
        assert all(seconds > 0 for seconds in timer.spent.values())
        assert timer.total == pytest.approx(sum(timer.spent.values()))
        assert syncs  # the sync hook runs around every timed call
        timer.reset()
        assert timer.total == 0
    assert (method_steps.region_contrastive_loss, memory_bank.MemoryBank.enqueue,
            region_contrast._ChunkedInfoNCE.__dict__["backward"]) == originals  # fmt: skip
