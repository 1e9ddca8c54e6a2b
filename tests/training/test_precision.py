"""Mixed precision, channels-last and torch.compile through the trainer, on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_toy import tiny_config

from rccr.config import ConfigError
from rccr.training import Trainer
from rccr.training.precision import Precision


def _trainer(toy: Path, out: Path, *overrides: str) -> Trainer:
    schedule = ["train.mode=rccr", "train.iterations=3", "train.eval_every=0"]
    return Trainer(tiny_config(toy, *schedule, *overrides), out)


@pytest.mark.parametrize(
    ("setting", "device", "expected"),
    [("auto", "cpu", "fp32"), ("fp32", "cpu", "fp32"), ("bf16", "cpu", "bf16")],
)
def test_precision__from_config(setting: str, device: str, expected: str) -> None:
    precision = Precision.from_config(setting, torch.device(device))
    assert precision.name == expected
    assert not precision.scaler.is_enabled()


def test_precision__fp16_on_cpu_is_refused_with_the_key() -> None:
    with pytest.raises(ConfigError, match=r"train\.precision=fp16 needs CUDA"):
        Precision.from_config("fp16", torch.device("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the auto default is bf16 only on CUDA")
def test_precision__auto_is_bf16_on_cuda() -> None:
    assert Precision.from_config("auto", torch.device("cuda")).name == "bf16"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 with a GradScaler needs CUDA")
def test_precision__fp16_on_cuda_has_an_enabled_scaler() -> None:
    assert Precision.from_config("fp16", torch.device("cuda")).scaler.is_enabled()


def test_precision__bf16_rccr_step_keeps_losses_and_bank_in_float32(
    toy: Path, tmp_path: Path
) -> None:
    """bf16 autocast on CPU: finite losses, float32 contrastive loss and bank."""
    trainer = _trainer(toy, tmp_path / "run", "train.precision=bf16")
    assert trainer.precision.dtype == torch.bfloat16
    captured = {}
    with trainer.precision.autocast():
        source, target = (
            trainer._stream(trainer.source_set, 0),
            trainer._stream(trainer.target_set, 1),
        )
        loss, terms, _ = trainer.step(trainer._next(source), trainer._next(target))
        captured["logits"] = trainer.student(trainer._next(source).image).logits.dtype
    assert captured["logits"] == torch.bfloat16  # the network does run in bf16
    assert terms["loss_contrast"].dtype == torch.float32
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert trainer.method is not None and trainer.method.bank is not None
    assert trainer.method.bank.features.dtype == torch.float32
    run = trainer.run(progress=False)
    assert run.status == "finished" and run.evals[3].miou["mIoU19"] >= 0


def test_precision__channels_last_matches_contiguous(toy: Path, tmp_path: Path) -> None:
    """The memory format changes speed, not the numbers (up to float rounding)."""
    runs = {}
    for layout in ("false", "true"):
        trainer = _trainer(toy, tmp_path / layout, f"train.channels_last={layout}")
        runs[layout] = trainer.run(progress=False).records
    for plain, last in zip(runs["false"], runs["true"], strict=True):
        for key in ("loss_source", "loss_mix", "loss_contrast"):
            assert last[key] == pytest.approx(plain[key], rel=1e-3, abs=1e-5)


def test_precision__compiled_student_matches_eager(toy: Path, tmp_path: Path) -> None:
    """train.compile=true runs the step through torch.compile (inductor) with the same losses."""
    records = {}
    for flag in ("false", "true"):
        trainer = _trainer(toy, tmp_path / flag, f"train.compile={flag}", "train.iterations=1")
        records[flag] = trainer.run(progress=False).records[0]
    for key in ("loss_source", "loss_mix"):
        assert records["true"][key] == pytest.approx(records["false"][key], rel=1e-3)
