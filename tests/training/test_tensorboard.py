"""train.tensorboard: TensorBoard scalars beside metrics.jsonl, the same numbers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tiny_toy import tiny_config

from rccr.cli import main
from rccr.config import save_config
from rccr.training import Trainer, train


def _scalars(folder: Path) -> dict[str, dict[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values: dict[str, dict[int, float]] = {}
    for events in sorted(folder.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            for event in accumulator.Scalars(tag):
                values.setdefault(tag, {})[event.step] = event.value
    return values


def test_tensorboard__every_logged_number_as_a_scalar(toy: Path, tmp_path: Path) -> None:
    config = tiny_config(toy, "train.mode=rccr", "train.iterations=4", "train.eval_every=2",
                         "train.tensorboard=true")  # fmt: skip
    train(config, tmp_path / "run", progress=False, until=2)
    run = train(config, tmp_path / "run", progress=False)  # a resume adds an event file
    scalars = _scalars(tmp_path / "run" / "tensorboard")
    assert len(list((tmp_path / "run" / "tensorboard").glob("events.*"))) == 2
    for record in run.records:
        for key, value in record.items():
            if key not in ("iteration", "time"):
                assert scalars[key][record["iteration"]] == pytest.approx(value, rel=1e-6), key
    assert set(scalars["val/mIoU19"]) == {2, 4}
    assert {"loss_contrast", "lr", "contrast_weight", "sec_per_iter"} <= set(scalars)


def test_tensorboard__off_by_default_writes_nothing(toy: Path, tmp_path: Path) -> None:
    train(tiny_config(toy, "train.iterations=1"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_tensorboard__missing_package_is_one_line_before_training(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    config = tiny_config(toy, "train.iterations=1", "train.tensorboard=true")
    with pytest.raises(RuntimeError, match=r"pip install 'rccr\[tensorboard\]'"):
        Trainer(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    (tmp_path / "c.yaml").write_text(save_config(config))
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.tensorboard=true needs the tensorboard package" in err
