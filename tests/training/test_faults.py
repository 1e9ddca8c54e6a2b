"""Faults during training, injected: NaN losses (stop, or roll back past the batch with
``train.nan_retries``), non-finite weights, and unreadable samples (stop naming the file,
or skip and log them with ``data.skip_bad``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_toy import assert_same_tensors, last_weights, tiny_config

from rccr.config import Config, save_config
from rccr.data import DataError
from rccr.data.dataset import Sample
from rccr.runs import load_checkpoint, load_run, read_skipped
from rccr.training import Trainer, TrainingError, train
from rccr.training import trainer as trainer_module
from rccr.training.data_stream import _Positions
from rccr.training.faults import first_batch
from rccr.training.steps import StepOutput


def _config(toy: Path, *overrides: str) -> Config:
    schedule = ["train.iterations=6", "train.eval_every=0", "train.checkpoint_every=3"]
    return tiny_config(toy, *schedule, *overrides)


class _Poison:
    """Wraps a mode's step: records each step's source names; poisons chosen steps.

    Args:
        real: the step function.
        term: the loss term to poison.
        steps: 0-based steps (the trainer's iteration before the step) to poison.
        times: how many times in all (a transient fault: once; a persistent one: many).
        value: nan or inf.
    """

    def __init__(self, real: Any, term: str, steps: set[int], times: int, value: float) -> None:
        self.real, self.term, self.steps = real, term, steps
        self.times, self.value = times, value
        self.trainer: Trainer | None = None
        self.names: dict[int, list[str]] = {}  # step -> source names (the last time it ran)

    def __call__(self, *args: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        assert self.trainer is not None
        step = self.trainer.iteration
        source = next(a for a in args if isinstance(a, Sample))  # the first batch
        self.names[step] = list(source.name)
        loss, terms, diagnostics = self.real(*args)
        if step in self.steps and self.times > 0:
            self.times -= 1
            terms[self.term] = terms[self.term] * self.value
            loss = loss * self.value
        return StepOutput(loss, terms, diagnostics)


def _poisoned_trainer(
    monkeypatch: pytest.MonkeyPatch, config: Config, out: Path, poison: _Poison
) -> Trainer:
    step = {"source_only": "source_only_step", "dacs": "dacs_step", "rccr": "rccr_step"}
    monkeypatch.setattr(trainer_module, step[config.train.mode], poison)
    trainer = Trainer(config, out)
    poison.trainer = trainer
    return trainer


@pytest.mark.parametrize(
    ("mode", "term", "value"),
    [("dacs", "loss_mix", float("inf")), ("rccr", "loss_contrast", float("nan"))],
)
def test_nan__stops_naming_term_and_iteration_keeping_last_checkpoint(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, term: str, value: float
) -> None:
    real = getattr(trainer_module, f"{mode}_step")
    poison = _Poison(real, term, {4}, times=1, value=value)
    trainer = _poisoned_trainer(monkeypatch, _config(toy, f"train.mode={mode}"),
                                tmp_path / "run", poison)  # fmt: skip
    with pytest.raises(TrainingError, match=rf"^{term} is {value} at iteration 5; the last good"):
        trainer.run(progress=False)
    run = load_run(tmp_path / "run")
    assert list(run.checkpoints) == [3] and run.status == "interrupted"
    assert [r["iteration"] for r in run.records] == [1, 2, 3, 4]
    assert read_skipped(tmp_path / "run") == []


def test_nan_retries__rolls_back_from_disk_and_skips_the_batch(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batches an unpoisoned run reads at steps 0..6.
    clean = _Poison(trainer_module.source_only_step, "loss_source", set(), times=0, value=1.0)
    _poisoned_trainer(monkeypatch, _config(toy, "train.iterations=7"), tmp_path / "clean",
                      clean).run(progress=False)  # fmt: skip
    config = _config(toy, "train.nan_retries=2")
    poison = _Poison(trainer_module.source_only_step, "loss_source", {4}, times=1, value=np.nan)
    trainer = _poisoned_trainer(monkeypatch, config, tmp_path / "run", poison)
    with pytest.warns(UserWarning, match="at iteration 5; .* rolled back to iteration 3"):
        run = trainer.run(progress=False)

    assert run.status == "finished" and run.iteration == 6
    # Step 4 read batch 5 instead of the poisoned batch 4, and every later step moved on one.
    assert [poison.names[s] for s in range(6)] == [clean.names[s] for s in (0, 1, 2, 3, 5, 6)]
    assert [r["iteration"] for r in run.records] == [1, 2, 3, 4, 5, 6]  # no gap, no duplicate
    assert [r["train/rollbacks"] for r in run.records] == [0, 0, 0, 1, 1, 1]
    [event] = run.skipped
    assert (event["iteration"], event["kind"], event["batch"]) == (3, "batch", 4)
    assert event["error"].startswith("loss_source is nan at iteration 5")

    # Interrupted after the roll-back and resumed, the run still skips batch 4: bit-exact.
    monkeypatch.undo()
    half = Trainer(config, tmp_path / "resumed")
    poison2 = _Poison(trainer_module.source_only_step, "loss_source", {4}, times=1, value=np.nan)
    monkeypatch.setattr(trainer_module, "source_only_step", poison2)
    poison2.trainer = half
    with pytest.warns(UserWarning, match="rolled back"):
        half.run(progress=False, until=5)
    monkeypatch.undo()
    resumed = Trainer(config, tmp_path / "resumed")
    assert resumed.iteration == 5 and resumed.faults.batches == [4]
    done = resumed.run(progress=False)
    assert_same_tensors(last_weights(tmp_path / "resumed"), last_weights(tmp_path / "run"))
    # The same log (the error names each run's own folder).
    assert json.dumps(done.skipped).replace("resumed", "run") == json.dumps(run.skipped)
    assert [r["iteration"] for r in done.records] == [1, 2, 3, 4, 5, 6]


def test_nan_retries__before_any_checkpoint_rolls_back_to_the_initial_state(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(toy, "train.nan_retries=1", "train.checkpoint_every=0")
    poison = _Poison(trainer_module.source_only_step, "loss_source", {1}, times=1, value=np.nan)
    trainer = _poisoned_trainer(monkeypatch, config, tmp_path / "run", poison)
    with pytest.warns(UserWarning, match="rolled back to iteration 0"):
        run = trainer.run(progress=False)
    assert run.status == "finished" and list(run.checkpoints) == [0, 6]
    assert [(e["iteration"], e["batch"]) for e in run.skipped] == [(0, 1)]


def test_nan_retries__gives_up_after_k_roll_backs(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(toy, "train.nan_retries=2")
    always = _Poison(trainer_module.source_only_step, "loss_source", set(range(4, 99)), times=99,
                     value=np.inf)  # fmt: skip
    trainer = _poisoned_trainer(monkeypatch, config, tmp_path / "run", always)
    with (
        pytest.warns(UserWarning, match="rolled back"),
        pytest.raises(TrainingError, match=r"gave up after 2 roll-backs, train\.nan_retries=2"),
    ):
        trainer.run(progress=False)
    run = load_run(tmp_path / "run")
    assert run.status == "interrupted" and list(run.checkpoints) == [0, 3]  # 0: the start
    assert [(e["iteration"], e["batch"]) for e in run.skipped] == [(3, 4), (3, 5)]
    for path in run.checkpoints.values():
        assert all(t.isfinite().all() for t in load_checkpoint(path)["student"].values())


def test_non_finite_weights__are_never_checkpointed(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = Trainer(_config(toy), tmp_path / "run")
    real = trainer_module.distributed.broadcast_buffers

    def corrupt(student: torch.nn.Module) -> None:  # runs right after each optimiser step
        real(student)
        if trainer.iteration == 5:  # the step that reaches iteration 6 (a checkpoint)
            with torch.no_grad():
                next(student.parameters()).fill_(float("inf"))

    monkeypatch.setattr(trainer_module.distributed, "broadcast_buffers", corrupt)
    with pytest.raises(TrainingError, match=r"^student\..* is not finite at iteration 6; no che"):
        trainer.run(progress=False)
    assert list(load_run(tmp_path / "run").checkpoints) == [3]


@pytest.mark.parametrize(
    ("log", "line"),
    [
        ("skipped.jsonl", '{"iteration": "2", "kind": "batch", "batch": 1, "error": "nan"}'),
        ("skipped.jsonl", '{"iteration": 2, "kind": "batch", "error": "nan"}'),
        ("skipped.jsonl", '{"iteration": 2, "kind": "batch", "batch": "1"}'),
        ("metrics.jsonl", '{"iteration": "2", "loss_source": 1.0}'),
    ],
)
def test_resume__a_malformed_log_record_is_dropped_with_a_warning(
    toy: Path, tmp_path: Path, log: str, line: str
) -> None:
    config = _config(toy, "train.nan_retries=1")
    train(config, tmp_path / "run", progress=False, until=3)
    with open(tmp_path / "run" / log, "a") as f:
        f.write(line + "\n")
    with pytest.warns(UserWarning, match=rf"{log}: line \d+ malformed") as caught:
        run = Trainer(config, tmp_path / "run").run(progress=False)
    assert run.status == "finished" and not [w for w in caught if "Traceback" in str(w.message)]
    assert [r["iteration"] for r in run.records] == [1, 2, 3, 4, 5, 6]
    assert run.skipped == [] and run.problems == []  # the bad line is gone from the log


def test_first_batch__skips_shift_later_steps() -> None:
    assert [first_batch(t, []) for t in range(4)] == [0, 1, 2, 3]
    assert [first_batch(t, [2]) for t in range(4)] == [0, 1, 3, 4]
    assert [first_batch(t, [2, 3]) for t in range(4)] == [0, 1, 4, 5]
    assert [first_batch(t, [4, 1]) for t in range(5)] == [0, 2, 3, 5, 6]


# --- unreadable samples ---------------------------------------------------------------


def _damaged_copy(toy: Path, tmp_path: Path, damage: str) -> tuple[Path, Path]:
    """A copy of the toy city with one damaged file; returns (root, damaged file)."""
    root = tmp_path / "toy"
    shutil.copytree(toy, root)
    if damage == "truncated source image":
        path = root / "gta5" / "images" / "00002.png"
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "source label of wrong size":
        path = root / "gta5" / "labels" / "00002.png"
        Image.fromarray(np.zeros((31, 64), dtype=np.uint8)).save(path)
    else:  # unknown values in a target label (read though UDA does not train on it)
        path = sorted((root / "cityscapes" / "gtFine" / "train").rglob("*_labelIds.png"))[3]
        Image.fromarray(np.full((32, 64), 77, dtype=np.uint8)).save(path)
    return root, path


DAMAGE = {
    "truncated source image": ("source_only", "cannot read image"),
    "source label of wrong size": ("source_only", "label is 64x31"),
    "unknown target label values": ("dacs", "label values 77 are not Cityscapes label ids"),
}


@pytest.mark.parametrize(
    ("damage", "workers"), [*((d, 0) for d in DAMAGE), ("truncated source image", 2)]
)
def test_bad_sample__stops_naming_the_file(
    toy: Path, tmp_path: Path, damage: str, workers: int
) -> None:
    root, path = _damaged_copy(toy, tmp_path, damage)
    mode, reason = DAMAGE[damage]
    config = _config(root, f"train.mode={mode}", f"data.num_workers={workers}")
    with pytest.raises(DataError) as info:
        train(config, tmp_path / "run", progress=False)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and reason in message and "\n" not in message
    assert message.endswith("(data.skip_bad=true skips unreadable samples)")
    assert load_run(tmp_path / "run").status == "interrupted"


def test_cli_train__bad_sample_is_one_line(toy: Path, tmp_path: Path, capsys) -> None:
    from rccr.cli import main

    root, path = _damaged_copy(toy, tmp_path, "truncated source image")
    (tmp_path / "c.yaml").write_text(save_config(_config(root, "data.num_workers=2")))
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: cannot read image") and err.count("\n") == 1


def _draws(config: Config, stream: int, dataset_size: int, index: int) -> list[int]:
    """The iterations whose batch (of the given stream) draws dataset item ``index``."""
    positions = iter(_Positions(dataset_size, config.train.batch_size, config.train.seed,
                                stream, 0))  # fmt: skip
    return [step + 1 for step in range(config.train.iterations)
            for _, item in next(positions) if item == index]  # fmt: skip


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_skip_bad__logs_and_counts_every_skip_and_stays_reproducible(
    toy: Path, tmp_path: Path, damage: str
) -> None:
    root, path = _damaged_copy(toy, tmp_path, damage)
    mode, reason = DAMAGE[damage]
    config = _config(root, f"train.mode={mode}", "data.skip_bad=true")
    run = train(config, tmp_path / "run", progress=False)
    assert run.status == "finished"

    stream = "target" if "target" in damage else "source"
    trainer = Trainer(config, tmp_path / "run")
    dataset = trainer.source_set if stream == "source" else trainer.target_set
    index = next(i for i, p in enumerate(dataset.pairs) if path in (p.image, p.label))
    expected = _draws(config, stream == "target", len(dataset), index)
    assert expected, "the damaged file is never drawn: the test would prove nothing"
    assert [r["iteration"] for r in run.skipped] == expected
    for record in run.skipped:
        assert (record["kind"], record["stream"]) == ("sample", stream)
        assert record["name"] == dataset.pairs[index].name
        assert record["error"].startswith(f"{path}: ") and reason in record["error"]
    counts = [r["data/skipped"] for r in run.records]
    assert counts == [sum(i <= r["iteration"] for i in expected) for r in run.records]

    # Interrupted and resumed: the same weights and the same log, without duplicates.
    Trainer(config, tmp_path / "resumed").run(progress=False, until=expected[0])
    resumed = Trainer(config, tmp_path / "resumed").run(progress=False)
    assert resumed.skipped == run.skipped
    assert [r["data/skipped"] for r in resumed.records] == counts
    assert_same_tensors(last_weights(tmp_path / "resumed"), last_weights(tmp_path / "run"))
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "finished"


def _torchrun_train(config: Config, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "c.yaml").write_text(save_config(config))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "rccr", "train", "--config", str(tmp_path / "c.yaml"),
               "--out", str(tmp_path / "run"), "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("skip_bad", [True, False])
def test_bad_sample__under_ddp_every_rank_reports(
    toy: Path, tmp_path: Path, skip_bad: bool
) -> None:
    root, path = _damaged_copy(toy, tmp_path, "truncated source image")
    config = _config(root, f"data.skip_bad={str(skip_bad).lower()}")
    result = _torchrun_train(config, tmp_path)
    if not skip_bad:
        assert result.returncode != 0 and f"error: {path}: cannot read image" in result.stderr
        for iteration, checkpoint in load_run(tmp_path / "run").checkpoints.items():
            assert load_checkpoint(checkpoint)["iteration"] == iteration
        return
    assert result.returncode == 0, result.stderr[-3000:]
    run = load_run(tmp_path / "run")
    index = 1  # 00002.png
    expected = sorted(
        step + 1
        for rank in (0, 1)
        for step, batch in zip(
            range(config.train.iterations),
            _Positions(8, config.train.batch_size, config.train.seed, 0, 0, rank, 2),
            strict=False,
        )
        for _, item in batch
        if item == index
    )
    assert expected and sorted(r["iteration"] for r in run.skipped) == expected
    assert run.records[-1]["data/skipped"] == len(expected)


@pytest.mark.parametrize("skip_bad", ["false", "true"])
def test_bad_validation_file__stops_before_training(
    toy: Path, tmp_path: Path, skip_bad: str
) -> None:
    """Evaluation cannot skip a file (the score would change), so it is found up front."""
    root = tmp_path / "toy"
    shutil.copytree(toy, root)
    path = sorted((root / "cityscapes" / "leftImg8bit" / "val").rglob("*.png"))[0]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match=rf"^{path}: cannot read image: .*validation set$"):
        train(_config(root, f"data.skip_bad={skip_bad}"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
