"""DACS and RCCR modes, and each RCCR ablation, end to end on a tiny toy city."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rccr.config import Config, load_config
from rccr.data.toycity import ToyCitySpec, make_toy_city
from rccr.runs import load_checkpoint, load_run
from rccr.train import Trainer, train

TINY = ToyCitySpec(num_source=8, num_target_train=8, num_target_val=3, width=64, height=32)
ABLATIONS = {
    "rccr": [],
    "no-bank": ["method.bank=false"],
    "no-momentum-head": ["method.momentum_head=false"],
    "positives-all": ["method.positive_sampling=all"],
    "negatives-random": ["method.negative_sampling=random"],
}


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toy") / "toy"
    make_toy_city(out, TINY, workers=1, progress=False)
    return out


def _config(toy: Path, mode: str, *overrides: str) -> Config:
    return load_config(
        "toy",
        [
            f"data.source_root={toy / 'gta5'}",
            f"data.target_root={toy / 'cityscapes'}",
            *(f"data.{k}=[64, 32]" for k in ("source_size", "target_size", "val_size")),
            "data.crop=[32, 32]",
            "model.width=8",
            f"train.mode={mode}",
            "train.iterations=30",
            "train.batch_size=2",
            "train.log_every=1",
            "train.eval_every=0",
            "train.checkpoint_every=15",
            "train.threads=1",
            "method.bank_per_step=16",
            *overrides,
        ],
    )


@pytest.mark.parametrize("name", ["dacs", *ABLATIONS])
def test_mode__thirty_steps_with_finite_losses(toy: Path, tmp_path: Path, name: str) -> None:
    mode = "dacs" if name == "dacs" else "rccr"
    trainer = Trainer(_config(toy, mode, *ABLATIONS.get(name, [])), tmp_path / "run")
    assert trainer.method is not None
    run = trainer.run(progress=False)
    assert run.status == "finished" and len(run.records) == 30
    terms = ["loss_source", "loss_mix"] + (["loss_contrast"] if mode == "rccr" else [])
    for record in run.records:
        for term in terms:
            assert math.isfinite(record[term]), (term, record)
    teacher = trainer.method.teacher
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    if trainer.method.teacher_head is not None:
        assert all(p.grad is None for p in trainer.method.teacher_head.parameters())
    # The teacher follows the student but is not the student.
    student, ema = trainer.student.state_dict(), teacher.state_dict()
    assert any(
        not torch.equal(student[k], ema[k]) for k in student if student[k].is_floating_point()
    )


def test_rccr__bank_snapshots_written_at_checkpoints(toy: Path, tmp_path: Path) -> None:
    run = train(_config(toy, "rccr"), tmp_path / "run", progress=False)
    assert list(run.features) == [15, 30]
    with np.load(run.features[30]) as snap:
        assert snap["features"].dtype == np.float16 and snap["features"].shape[1] == 128
        assert set(np.unique(snap["domain"])) == {0, 1}
        assert (snap["labels"] < 19).all()
    state = load_checkpoint(run.checkpoints[30])
    assert {"teacher", "student_head", "teacher_head", "bank", "generator"} <= set(state["method"])


@pytest.mark.parametrize("mode", ["dacs", "rccr"])
def test_method_mode__resume_is_bit_exact(toy: Path, tmp_path: Path, mode: str) -> None:
    config = _config(toy, mode, "train.iterations=6", "train.checkpoint_every=0")
    train(config, tmp_path / "straight", progress=False)
    Trainer(config, tmp_path / "resumed").run(progress=False, until=3)
    train(config, tmp_path / "resumed", progress=False)
    a = load_checkpoint(load_run(tmp_path / "straight").checkpoints[6])
    b = load_checkpoint(load_run(tmp_path / "resumed").checkpoints[6])
    for part in ("student",):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), key
    for key in a["method"]["teacher"]:
        assert torch.equal(a["method"]["teacher"][key], b["method"]["teacher"][key]), key
