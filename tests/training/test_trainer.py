"""The trainer end to end on a tiny toy city: determinism, resume, interrupts, NaN."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from tiny_toy import assert_same_tensors, last_weights, tiny_config

from rccr.config import Config, ConfigError, save_config
from rccr.runs import RunError, load_checkpoint, load_run
from rccr.training import Trainer, TrainingError, train


def _config(toy: Path, *overrides: str) -> Config:
    schedule = ["train.iterations=6", "train.eval_every=3", "train.checkpoint_every=3"]
    return tiny_config(toy, *schedule, *overrides)


def test_train__writes_the_run_directory(toy: Path, tmp_path: Path) -> None:
    run = train(_config(toy), tmp_path / "run", progress=False)
    assert run.status == "finished" and run.iteration == 6 and run.problems == []
    assert list(run.checkpoints) == [3, 6] and list(run.evals) == [3, 6]
    assert [r["iteration"] for r in run.records] == [1, 2, 3, 4, 5, 6]
    assert "val/mIoU19" in run.records[2] and "loss_source" in run.records[0]
    assert (tmp_path / "run" / "config.yaml").read_text() == save_config(_config(toy))
    assert 0.0 <= run.evals[6].miou["mIoU19"] <= 100.0
    assert (run.evals[3].checkpoint_choice, run.evals[6].checkpoint_choice) == (
        "iter_3",
        "last, iter_6",
    )


def test_train__same_seed_same_weights_other_seed_differs(toy: Path, tmp_path: Path) -> None:
    train(_config(toy), tmp_path / "a", progress=False)
    train(_config(toy), tmp_path / "b", progress=False)
    train(_config(toy, "train.seed=1"), tmp_path / "c", progress=False)
    assert_same_tensors(last_weights(tmp_path / "a"), last_weights(tmp_path / "b"))
    a, c = last_weights(tmp_path / "a"), last_weights(tmp_path / "c")
    assert any(not torch.equal(a[key], c[key]) for key in a)


def test_train__resume_is_bit_exact(toy: Path, tmp_path: Path) -> None:
    config = _config(toy, "train.checkpoint_every=0")
    straight = train(config, tmp_path / "straight", progress=False)
    half = train(config, tmp_path / "resumed", progress=False, until=3)
    assert half.status == "interrupted" and list(half.checkpoints) == [3]
    resumed = Trainer(config, tmp_path / "resumed")
    assert resumed.iteration == 3
    done = resumed.run(progress=False)
    assert done.status == "finished"
    assert_same_tensors(last_weights(tmp_path / "straight"), last_weights(tmp_path / "resumed"))
    its = [r["iteration"] for r in done.records]
    assert its == [r["iteration"] for r in straight.records] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(straight.records, done.records, strict=True):
        assert a.get("loss_source") == b.get("loss_source")


def test_train__other_config_in_same_folder_is_refused(toy: Path, tmp_path: Path) -> None:
    train(_config(toy, "train.iterations=1"), tmp_path / "run", progress=False)
    with pytest.raises(RunError, match="different config"):
        Trainer(_config(toy, "train.iterations=2"), tmp_path / "run")


def test_train__run_written_before_a_key_existed_resumes(toy: Path, tmp_path: Path) -> None:
    """An older config.yaml lacks keys added since; they take their defaults on resume."""
    config = _config(toy)
    Trainer(config, tmp_path / "run").run(progress=False, until=2)
    saved = tmp_path / "run" / "config.yaml"
    data = yaml.safe_load(saved.read_text())
    del data["train"]["precision"], data["train"]["lr_scaling"]
    saved.write_text(yaml.safe_dump(data, sort_keys=False))
    assert Trainer(config, tmp_path / "run").iteration == 2


def test_train__unreadable_config_in_the_folder_is_named(toy: Path, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("train: [unclosed")
    with pytest.raises(RunError, match=r"config\.yaml: unreadable, so this folder cannot be"):
        Trainer(_config(toy), tmp_path / "run")


def test_train__oracle_mode_trains_on_target_labels(toy: Path, tmp_path: Path) -> None:
    run = train(_config(toy, "train.mode=oracle", "train.iterations=2"), tmp_path / "o",
                progress=False)  # fmt: skip
    assert "loss_target_oracle" in run.records[0] and "loss_source" not in run.records[0]


def test_train__nan_loss_stops_naming_term_and_iteration(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rccr.training import trainer as trainer_module

    real = trainer_module.source_only_step

    def poisoned(student, source):
        out = real(student, source)
        if trainer.iteration == 4:
            out.terms["loss_source"] = out.loss * float("nan")
        return out

    monkeypatch.setattr(trainer_module, "source_only_step", poisoned)
    trainer = Trainer(_config(toy), tmp_path / "run")
    with pytest.raises(TrainingError, match="loss_source is nan at iteration 5"):
        trainer.run(progress=False)
    run = load_run(tmp_path / "run")
    assert list(run.checkpoints) == [3] and run.status == "interrupted"


def test_cli_train__sigterm_saves_a_resumable_checkpoint(toy: Path, tmp_path: Path) -> None:
    config = _config(toy, "train.iterations=100000", "train.checkpoint_every=0",
                     "train.eval_every=0")  # fmt: skip
    (tmp_path / "c.yaml").write_text(save_config(config))
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rccr", "train", "--config", str(tmp_path / "c.yaml"),
         "--out", str(out), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    metrics = out / "metrics.jsonl"
    while time.monotonic() < deadline and (
        not metrics.exists() or len(metrics.read_text().splitlines()) < 3
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "SIGTERM: saved a checkpoint" in stdout
    run = load_run(out)
    assert run.status == "interrupted" and run.checkpoints
    last = max(run.checkpoints)
    assert load_checkpoint(run.checkpoints[last])["iteration"] == last >= 3
    assert json.loads((out / "status.json").read_text())["iteration"] == last
    assert Trainer(config, out).iteration == last


def test_train__resume_skips_a_corrupt_newest_checkpoint_with_a_warning(
    toy: Path, tmp_path: Path
) -> None:
    train(_config(toy), tmp_path / "run", progress=False)
    (tmp_path / "run" / "checkpoints" / "iter_6.pt").write_bytes(b"truncated")
    with pytest.warns(UserWarning, match=r"skipped on resume: .*iter_6\.pt"):
        trainer = Trainer(_config(toy), tmp_path / "run")
    assert trainer.iteration == 3


def test_resume__restores_every_random_state_it_saves(toy: Path, tmp_path: Path) -> None:
    """The checkpoint holds torch's global generator and the method's own; a resumed trainer
    continues from exactly those states, whatever happened to them in between."""
    config = _config(toy, "train.mode=rccr")
    run = train(config, tmp_path / "run", progress=False, until=3)
    state = load_checkpoint(run.checkpoints[3])
    assert torch.equal(torch.get_rng_state(), state["rng"])  # saved as it was at the save
    torch.manual_seed(12345)
    torch.rand(10)  # the process draws on: a resume must not inherit this
    resumed = Trainer(config, tmp_path / "run")
    assert resumed.iteration == 3 and resumed.method is not None
    assert torch.equal(torch.get_rng_state(), state["rng"])
    assert torch.equal(resumed.method.generator.get_state(), state["method"]["generator"])
    assert not torch.equal(state["rng"], torch.manual_seed(0).get_state())  # not a fresh seed


@pytest.mark.parametrize("backbone", ["resnet50", "resnet101"])
def test_train__a_pretrained_backbone_refuses_random_weights_unless_told(
    toy: Path, tmp_path: Path, backbone: str
) -> None:
    """The paper presets leave model.pretrained null: training them as they are would start
    a ResNet-101 from random weights, so it is refused, naming what to pass; ``none`` says
    random weights are wanted."""
    config = _config(toy, f"model.backbone={backbone}", "model.width=8")
    assert config.model.pretrained is None
    with pytest.raises(ConfigError, match=r"model\.pretrained.*DeepLab.*model\.pretrained=none"):
        Trainer(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    chosen = _config(toy, f"model.backbone={backbone}", "model.width=8", "model.pretrained=none",
                     "train.iterations=1")  # fmt: skip
    assert train(chosen, tmp_path / "run", progress=False).status == "finished"
