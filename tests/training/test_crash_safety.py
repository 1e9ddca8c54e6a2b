"""Crash safety: a SIGKILL at any moment, or a full disk, never costs more than the steps
since the last complete checkpoint, and never leaves a partial file taken for one."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tiny_toy import assert_same_tensors, tiny_config

from rccr.config import Config, save_config
from rccr.data import files
from rccr.runs import iteration_files, load_checkpoint, load_run
from rccr.training import Trainer, train

ITERATIONS = 24


def _config(toy: Path, *overrides: str) -> Config:
    schedule = [f"train.iterations={ITERATIONS}", "train.eval_every=0", "train.checkpoint_every=1"]
    return tiny_config(toy, *schedule, *overrides)


@pytest.fixture(scope="module")
def straight(toy: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    """The final weights of an uninterrupted run."""
    out = tmp_path_factory.mktemp("straight") / "run"
    run = train(_config(toy), out, progress=False)
    return load_checkpoint(run.checkpoints[ITERATIONS])["student"]


def _temporaries(out: Path) -> list[Path]:
    return sorted((out / "checkpoints").glob(".iter_*.tmp"))


def _kill_during_training(config_file: Path, out: Path, moment: str, rng: random.Random) -> str:
    """Start ``rccr train`` and SIGKILL it at ``moment``; return what was seen at the kill."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rccr", "train", "--config", str(config_file),
         "--out", str(out), "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    metrics = out / "metrics.jsonl"

    def logged() -> int:
        return len(metrics.read_text().splitlines()) if metrics.exists() else 0

    deadline = time.monotonic() + 120
    seen = "running"
    if moment == "during a checkpoint write":
        # Poll for a checkpoint's temporary file and kill the moment one exists.
        while time.monotonic() < deadline and proc.poll() is None:
            if logged() >= 3 and _temporaries(out):
                seen = "temporary file present"
                break
    else:
        wanted = rng.randint(2, ITERATIONS // 2) if moment == "after random steps" else 1
        while time.monotonic() < deadline and proc.poll() is None and logged() < wanted:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.05))  # land anywhere within a step
    assert proc.poll() is None, f"training ended before the kill: {proc.stderr.read()}"  # type: ignore[union-attr]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return seen


@pytest.mark.parametrize(
    ("seed", "moment"),
    [(0, "after the first step"), (1, "after random steps"), (2, "during a checkpoint write")],
)
def test_sigkill__resumes_from_a_complete_checkpoint_bit_exact(
    toy: Path, tmp_path: Path, straight: dict[str, torch.Tensor], seed: int, moment: str
) -> None:
    config = _config(toy)
    (tmp_path / "config.yaml").write_text(save_config(config))
    out = tmp_path / "run"
    seen = _kill_during_training(tmp_path / "config.yaml", out, moment, random.Random(seed))
    if moment == "during a checkpoint write":
        assert seen == "temporary file present"

    # Every file named like a checkpoint is complete; a temporary file is never listed.
    killed = load_run(out)
    assert killed.status == "stale"  # status.json says running; its process is gone
    assert set(killed.checkpoints) == set(iteration_files(out / "checkpoints", ".pt"))
    for iteration, path in killed.checkpoints.items():
        assert load_checkpoint(path)["iteration"] == iteration
    last = max(killed.checkpoints, default=0)

    with _no_warnings():
        resumed = Trainer(config, out)
    assert resumed.iteration == last
    run = resumed.run(progress=False)
    assert run.status == "finished" and run.iteration == ITERATIONS
    assert [r["iteration"] for r in run.records] == list(range(1, ITERATIONS + 1))
    assert not _temporaries(out), "a killed write's temporary file was left behind"
    assert_same_tensors(load_checkpoint(run.checkpoints[ITERATIONS])["student"], straight)


class _no_warnings:
    """Resuming after a kill needs no warning: every checkpoint on disk is complete."""

    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc: object) -> None:
        self._catch.__exit__(*exc)


def _full_disk_for(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make the rename that publishes ``name`` fail as on a full disk (everything else works)."""
    real = os.replace

    def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        if Path(dst).name == name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)


def test_full_disk__checkpoint_write_fails_cleanly_and_the_run_resumes(
    toy: Path, tmp_path: Path, straight: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(toy, "train.checkpoint_every=8")
    out = tmp_path / "run"
    _full_disk_for(monkeypatch, "iter_16.pt")
    with pytest.raises(OSError, match=r"iter_16\.pt: checkpoint not written") as info:
        Trainer(config, out).run(progress=False)
    assert info.value.errno == errno.ENOSPC
    assert "No space left on device" in str(info.value) and "are intact" in str(info.value)
    run = load_run(out)
    assert list(run.checkpoints) == [8] and run.status == "interrupted"
    assert load_checkpoint(run.checkpoints[8])["iteration"] == 8
    assert not _temporaries(out)

    monkeypatch.undo()  # space freed: the run continues from iteration 8
    resumed = Trainer(config, out)
    assert resumed.iteration == 8
    done = resumed.run(progress=False)
    assert done.status == "finished" and list(done.checkpoints) == [8, 16, 24]
    assert [r["iteration"] for r in done.records] == list(range(1, ITERATIONS + 1))
    assert_same_tensors(load_checkpoint(done.checkpoints[24])["student"], straight)


class _FullDiskFile:
    """A file whose writes fail as on a full disk."""

    def __enter__(self) -> _FullDiskFile:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self) -> None:
        pass


@pytest.mark.parametrize(
    "path", ["checkpoints/iter_3.pt", "status.json", "metrics.jsonl"], ids=lambda p: p
)
def test_full_disk__cli_reports_the_file_in_one_line(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, path: str
) -> None:
    from rccr.cli import main
    from rccr.runs import writer as runs_writer

    config = _config(toy, "train.iterations=4")
    (tmp_path / "c.yaml").write_text(save_config(config))
    out = tmp_path / "run"
    if path == "metrics.jsonl":  # appended to, not renamed into place
        monkeypatch.setattr(runs_writer, "open", lambda *a, **k: _FullDiskFile(), raising=False)
    else:
        _full_disk_for(monkeypatch, Path(path).name)
    code = main(["train", "--config", str(tmp_path / "c.yaml"), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert str(out / path) in err and "No space left on device" in err
    for iteration, checkpoint in load_run(out).checkpoints.items():  # what was written is whole
        assert load_checkpoint(checkpoint)["iteration"] == iteration


def test_full_disk__metrics_append_is_reported_as_itself(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The disk fills up while metrics.jsonl is appended to: every later write fails too
    (status.json included), and the error still names metrics.jsonl."""
    from rccr.cli import main
    from rccr.runs import writer as runs_writer

    config = _config(toy, "train.iterations=4")
    (tmp_path / "c.yaml").write_text(save_config(config))
    out = tmp_path / "run"
    full: list[bool] = []
    real_replace = os.replace

    class _Appending(_FullDiskFile):
        def write(self, text: str) -> int:
            full.append(True)
            return super().write(text)

    def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(runs_writer, "open", lambda *a, **k: _Appending(), raising=False)
    monkeypatch.setattr(files.os, "replace", replace)
    code = main(["train", "--config", str(tmp_path / "c.yaml"), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"{out / 'metrics.jsonl'}: cannot append (No space left on device)" in err
    assert "status.json" not in err
    # status.json still holds the last heartbeat: once this process is gone, a reader on
    # this host sees its PID gone and calls the run stale (tests/test_runs.py).
    assert json.loads((out / "status.json").read_text())["pid"] == os.getpid()
