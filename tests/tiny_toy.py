"""The tiny toy city and config shared by the tests that train (64x32 images, few steps).

``tests/conftest.py`` generates the city once per session (the ``toy`` fixture);
:func:`tiny_config` points the toy preset at it with a network and batch small enough
that a step takes milliseconds. Each test adds the schedule it needs as overrides. The
resume tests compare runs with :func:`last_weights` and :func:`assert_same_tensors`;
:func:`train_steps` takes SGD steps outside the loop, for tests that watch one step.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rccr.config import Config, load_config
from rccr.data.toycity import ToyCitySpec
from rccr.runs import load_checkpoint, load_run
from rccr.training import Trainer

TINY = ToyCitySpec(num_source=8, num_target_train=8, num_target_val=3, width=64, height=32)


def tiny_overrides(toy: Path, *extra: str) -> list[str]:
    """Overrides of the toy preset for the tiny city at ``toy``, then ``extra``."""
    return [
        f"data.source_root={toy / 'gta5'}",
        f"data.target_root={toy / 'cityscapes'}",
        *(f"data.{k}=[64, 32]" for k in ("source_size", "target_size", "val_size")),
        "data.crop=[32, 32]",
        "model.width=8",
        "train.batch_size=2",
        "train.log_every=1",
        "train.threads=1",
        "method.bank_per_step=16",
        *extra,
    ]


def tiny_config(toy: Path, *extra: str) -> Config:
    """The toy preset on the tiny city, with ``extra`` overrides (``"train.mode=rccr"``)."""
    return load_config("toy", tiny_overrides(toy, *extra))


def last_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The student's weights in a run's newest checkpoint."""
    return load_checkpoint(load_run(run_dir).last_checkpoint)["student"]


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Two state dicts hold the same keys and bit-identical tensors."""
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def train_steps(config: Config, out: Path, steps: int) -> Trainer:
    """A trainer on ``config`` after ``steps`` SGD steps, taken without the loop around
    them (no logging, evaluation or checkpoint), for tests that watch the step itself."""
    trainer = Trainer(config, out)
    source = trainer._stream(trainer.source_set, 0)
    target = trainer._stream(trainer.target_set, 1)
    trainer.student.train()
    for _ in range(steps):
        trainer._train_step(source, target)
    return trainer
