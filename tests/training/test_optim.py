"""The poly learning rate: the formula, and the rate the trainer actually sets and logs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from tiny_toy import tiny_config

from rccr.training import Trainer, train
from rccr.training.optim import poly_lr


@pytest.mark.parametrize(
    ("iteration", "total", "power", "expected"),
    [
        (0, 100, 0.9, 0.01),
        (50, 100, 0.9, 0.01 * 0.5**0.9),
        (99, 100, 0.9, 0.01 * 0.01**0.9),
        (50, 100, 2.0, 0.01 * 0.25),
        (50, 100, 0.0, 0.01),
        (100, 100, 0.9, 0.0),
        (150, 100, 0.9, 0.0),  # past the end: 0, never a complex number
    ],
)
def test_poly_lr__formula(iteration: int, total: int, power: float, expected: float) -> None:
    assert poly_lr(0.01, iteration, total, power) == pytest.approx(expected, abs=1e-15)


def test_poly_lr__logged_and_set_rates_follow_the_schedule(toy: Path, tmp_path: Path) -> None:
    """Every logged ``lr`` is the poly rate of the step it reports (0-based t = iteration - 1),
    with the configured power, and the optimiser's groups hold it times their ``lr_mult``."""
    config = tiny_config(toy, "train.iterations=6", "train.log_every=1", "train.poly_power=2.0",
                         "train.lr=0.03", "train.eval_every=0")  # fmt: skip
    run = train(config, tmp_path / "run", progress=False)
    logged = [(r["iteration"], r["lr"]) for r in run.records if "lr" in r]
    assert [i for i, _ in logged] == [1, 2, 3, 4, 5, 6]
    for iteration, lr in logged:
        assert lr == pytest.approx(0.03 * (1 - (iteration - 1) / 6) ** 2.0, rel=1e-12)
    trainer = Trainer(config, tmp_path / "run")  # resumes at the end, rates as last set
    for group in trainer.optimizer.param_groups:
        assert group["lr"] == pytest.approx(0.03 * (1 - 5 / 6) ** 2 * group["lr_mult"])
    assert math.isclose(sorted(g["lr_mult"] for g in trainer.optimizer.param_groups)[-1], 10.0)
