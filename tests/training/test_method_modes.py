"""DACS and RCCR modes, and each RCCR ablation, end to end on a tiny toy city."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_toy import tiny_config

from rccr.analysis.feature_space import feature_diagnostics
from rccr.config import Config
from rccr.runs import load_checkpoint, load_run
from rccr.training import Trainer, train

ABLATIONS = {
    "rccr": [],
    "no-bank": ["method.bank=false"],
    "no-momentum-head": ["method.momentum_head=false"],
    "positives-all": ["method.positive_sampling=all"],
    "negatives-random": ["method.negative_sampling=random"],
}


def _config(toy: Path, mode: str, *overrides: str) -> Config:
    schedule = ["train.iterations=30", "train.eval_every=0", "train.checkpoint_every=15"]
    return tiny_config(toy, f"train.mode={mode}", *schedule, *overrides)


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


def test_rccr__diagnostics_logged_beside_the_losses(toy: Path, tmp_path: Path) -> None:
    """The toy city's target images have labels, so every logged step carries the teacher's,
    the anchors' and the negatives' diagnostics (``diag/*``; analysis only), and the bank
    snapshot carries each row's true class."""
    run = train(_config(toy, "rccr", "method.confidence_threshold=0"), tmp_path / "run",
                progress=False)  # fmt: skip
    for record in run.records:
        assert 0.0 <= record["diag/pl_acc"] <= 1.0 and 0.0 <= record["diag/pl_miou"] <= 100
        assert record["diag/anchors"] >= 1 and record["diag/anchors_kept_share"] == 1.0
        assert (
            0.0 <= record["diag/neg_false_kept"] <= 1.0
            and 0.0 <= record["diag/neg_false_drawn"] <= 1.0
        )
    with np.load(run.features[30]) as snap:
        truth = snap["truth"]
        assert truth.shape == snap["labels"].shape and (truth < 19).all()
        saved = {name: snap[name] for name in snap.files}
    # At each checkpoint, and only there, the bank's feature scores of the snapshot it wrote.
    logged = {record["iteration"]: record for record in run.records}
    scores = feature_diagnostics(saved)
    assert 0.0 <= scores["feat_knn_acc"] <= 1.0 and -1.0 <= scores["feat_align"] <= 1.0
    for name, value in scores.items():
        assert logged[30][f"diag/{name}"] == pytest.approx(value, nan_ok=True), name
    assert "diag/feat_knn_acc" in logged[15]
    assert not any(name.startswith("diag/feat_") for name in logged[14] | logged[29])
