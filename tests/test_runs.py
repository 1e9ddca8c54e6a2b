"""The run directory: atomic writes, and a reader that tolerates partial runs."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from rccr.config import load_config
from rccr.runs import RunError, RunWriter, load_checkpoint, load_run


def _writer(tmp_path: Path) -> RunWriter:
    writer = RunWriter(tmp_path / "run")
    writer.write_config(load_config("toy"))
    return writer


def test_run__written_and_read_back(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.set_status("running", 0)
    for i in (1, 2, 3):
        writer.log({"iteration": i, "loss": 1.0 / i})
    writer.save_checkpoint(2, {"student": {"w": torch.ones(2)}})
    run = load_run(tmp_path / "run")
    assert run.problems == []
    assert run.config == load_config("toy") and run.status == "running"
    assert [r["iteration"] for r in run.records] == [1, 2, 3]
    assert list(run.checkpoints) == [2] and run.last_checkpoint is not None
    assert load_checkpoint(run.checkpoints[2])["iteration"] == 2


def test_run__metrics_truncated_on_resume(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    for i in range(1, 6):
        writer.log({"iteration": i})
    with open(tmp_path / "run" / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 6, "lo')  # a record cut short by a kill
    writer.truncate_metrics(3)
    assert [r["iteration"] for r in load_run(tmp_path / "run").records] == [1, 2, 3]


def test_load_run__partial_run_lists_problems(tmp_path: Path) -> None:
    root = tmp_path / "run"
    (root / "checkpoints").mkdir(parents=True)
    (root / "metrics.jsonl").write_text('{"iteration": 1}\nnot json\n{"iteration": 3')
    (root / "eval").mkdir()
    (root / "eval" / "iter_5.json").write_text("{}")
    (root / "checkpoints" / ".iter_9.pt.abc.tmp").write_bytes(b"partial")
    run = load_run(root)
    text = "\n".join(run.problems)
    assert f"{root / 'config.yaml'}: missing" in text
    assert f"{root / 'status.json'}: missing" in text
    assert "line 2 malformed" in text and "line 3 malformed (the last line" in text
    assert f"{root / 'eval' / 'iter_5.json'}: malformed evaluation" in text
    assert run.checkpoints == {} and [r["iteration"] for r in run.records] == [1]


def test_load_run__malformed_config_is_a_problem(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    (root / "config.yaml").write_text("train:\n  lrr: 3\n")
    run = load_run(root)
    assert run.config is None
    assert any("config.yaml: malformed: train.lrr: unknown key" in p for p in run.problems)


@pytest.mark.parametrize("what", ["missing", "not a run"])
def test_load_run__not_a_run_is_an_error(tmp_path: Path, what: str) -> None:
    path = tmp_path / "x"
    if what == "not a run":
        path.mkdir()
    with pytest.raises(RunError, match=str(path)):
        load_run(path)


def test_load_checkpoint__refuses_code_payload(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"iteration": 1, "student": Payload()}, f)
    with pytest.raises(RunError, match="not a loadable checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"garbage", None])
def test_load_checkpoint__bad_file_names_it(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "iter_1.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RunError, match=str(path)):
        load_checkpoint(path)


def test_save_checkpoint__failed_write_keeps_previous(tmp_path: Path, monkeypatch) -> None:
    writer = _writer(tmp_path)
    writer.save_checkpoint(1, {"student": {"w": torch.ones(1)}})
    before = (tmp_path / "run" / "checkpoints" / "iter_1.pt").read_bytes()

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        writer.save_checkpoint(1, {"student": {"w": torch.zeros(1)}})
    assert (tmp_path / "run" / "checkpoints" / "iter_1.pt").read_bytes() == before
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["iter_1.pt"]


def test_status__round_trip(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.set_status("interrupted", 40)
    run = load_run(tmp_path / "run")
    assert (run.status, run.iteration) == ("interrupted", 40)
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "interrupted"
