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
    assert proc.returncode == 3, stderr  # interrupted: not 0, so a scheduler can tell
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


# One trainer per run folder, and a resume that checks what it continues


def test_lock__a_second_trainer_on_the_folder_is_refused(toy: Path, tmp_path: Path) -> None:
    import os
    import socket

    first = Trainer(_config(toy), tmp_path / "run")
    for config in (_config(toy), _config(toy, "train.seed=1")):
        with pytest.raises(RunError) as info:
            Trainer(config, tmp_path / "run")
        message = str(info.value)
        assert message.startswith(f"{tmp_path / 'run'}: in use by another trainer (PID ")
        assert f"PID {os.getpid()} on {socket.gethostname()}" in message and "\n" not in message
    run = first.run(progress=False)  # the lock is released when the run ends
    assert [r["iteration"] for r in run.records] == [1, 2, 3, 4, 5, 6]
    assert Trainer(_config(toy), tmp_path / "run").iteration == 6


def test_lock__released_when_the_trainer_fails(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rccr.training import trainer as trainer_module

    def broken(*args: object) -> None:
        raise RuntimeError("a step that fails")

    monkeypatch.setattr(trainer_module, "source_only_step", broken)
    with pytest.raises(RuntimeError, match="a step that fails"):
        Trainer(_config(toy), tmp_path / "run").run(progress=False)
    monkeypatch.undo()
    train(_config(toy), tmp_path / "run", progress=False)  # not refused: the lock is free


def test_cli_train__a_second_trainer_is_refused_while_the_first_runs(
    toy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rccr.cli import main

    config = _config(toy, "train.iterations=100000", "train.checkpoint_every=0",
                     "train.eval_every=0")  # fmt: skip
    (tmp_path / "c.yaml").write_text(save_config(config))
    out = tmp_path / "run"
    proc = _start_training(tmp_path / "c.yaml", out, logged=2)
    other = save_config(_config(toy, "train.seed=1", "train.lr=0.05"))
    (tmp_path / "other.yaml").write_text(other)
    for config_file in ("c.yaml", "other.yaml"):
        code = main(["train", "--config", str(tmp_path / config_file), "--out", str(out),
                     "--no-progress"])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert f"in use by another trainer (PID {proc.pid} on " in err
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 3
    run = load_run(out)
    its = [r["iteration"] for r in run.records]
    assert its == list(range(1, len(its) + 1)) and run.problems == []
    assert load_checkpoint(run.last_checkpoint)["config"] == config.to_dict()
    assert (out / "config.yaml").read_text() == save_config(config)


def _start_training(config_file: Path, out: Path, logged: int) -> subprocess.Popen[str]:
    """``rccr train`` in a subprocess, returned once ``logged`` records are in metrics.jsonl."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rccr", "train", "--config", str(config_file),
         "--out", str(out), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    metrics = out / "metrics.jsonl"
    while (
        time.monotonic() < deadline
        and proc.poll() is None
        and (not metrics.exists() or len(metrics.read_text().splitlines()) < logged)
    ):
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]
    return proc


def test_resume__config_yaml_edited_by_hand_is_refused_naming_the_keys(
    toy: Path, tmp_path: Path
) -> None:
    from rccr.config import load_config

    train(_config(toy), tmp_path / "run", progress=False, until=3)
    saved = tmp_path / "run" / "config.yaml"
    data = yaml.safe_load(saved.read_text())
    data["train"]["lr"], data["train"]["seed"] = 0.05, 1
    saved.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(RunError) as info:
        Trainer(load_config(saved), tmp_path / "run")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'run' / 'checkpoints' / 'iter_3.pt'}: written ")
    assert "train.lr (0.01 in the checkpoint, 0.05 in config.yaml)" in message
    assert "train.seed (0 in the checkpoint, 1 in config.yaml)" in message
    assert "\n" not in message

    for key in ("momentum", "weight_decay", "poly_power", "batch_size"):  # many: a few named
        data["train"][key] = 3 if key == "batch_size" else 0.5
    saved.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(RunError, match=r"train\.batch_size .*, and 3 more;"):
        Trainer(load_config(saved), tmp_path / "run")


def test_resume__checkpoints_without_config_yaml_are_refused(toy: Path, tmp_path: Path) -> None:
    train(_config(toy), tmp_path / "run", progress=False, until=3)
    (tmp_path / "run" / "config.yaml").unlink()
    for config in (_config(toy), _config(toy, "train.seed=1")):
        with pytest.raises(RunError, match=r"holds checkpoints but no config\.yaml"):
            Trainer(config, tmp_path / "run")


def test_other_config__refusal_names_the_keys(toy: Path, tmp_path: Path) -> None:
    train(_config(toy, "train.iterations=1"), tmp_path / "run", progress=False)
    with pytest.raises(
        RunError, match=r"train\.iterations \(1 in .*config\.yaml, 2 in this config\)"
    ):
        Trainer(_config(toy, "train.iterations=2"), tmp_path / "run")


# status.json: a heartbeat at every log step


def test_status__updated_at_every_log_step(toy: Path, tmp_path: Path) -> None:
    import os

    seen = []

    def on_log(record: dict) -> None:
        seen.append((record["iteration"], json.loads((tmp_path / "run" / "status.json")
                                                      .read_text())))  # fmt: skip

    train(_config(toy, "train.log_every=2"), tmp_path / "run", progress=False, on_log=on_log)
    assert [i for i, _ in seen] == [2, 3, 4, 6]  # logs at 2, 4, 6; an evaluation at 3
    for iteration, status in seen:
        assert (status["state"], status["iteration"]) == ("running", iteration)
        assert status["pid"] == os.getpid() and status["iterations"] == 6
        assert status["eta_s"] >= 0 and status["interval_s"] >= 0
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "finished"


# Exit status, and the checkpoint before the evaluation of its iteration


def test_cli_train__help_says_what_the_exit_status_means() -> None:
    result = subprocess.run([sys.executable, "-m", "rccr", "train", "--help"],
                            capture_output=True, text=True)  # fmt: skip
    text = " ".join(result.stdout.split())
    assert "exit status: 0 finished, 3 interrupted" in text


def test_cli_train__until_done_exits_0(toy: Path, tmp_path: Path) -> None:
    from rccr.cli import main

    (tmp_path / "c.yaml").write_text(save_config(_config(toy, "train.iterations=2")))
    args = ["train", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r")]
    assert main([*args, "--no-progress"]) == 0


def _fail_once(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make the first write of run file ``name`` fail as on a full disk."""
    import errno
    import os

    from rccr.data import files

    real, failed = os.replace, []

    def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        if Path(dst).name == name and not failed:
            failed.append(dst)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)


def _values(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("time", "sec_per_iter")} for r in records]


@pytest.mark.parametrize("fails", ["eval/iter_3.json", "metrics.jsonl", "features/iter_3.npz"])
def test_failure_after_the_checkpoint__the_resume_completes_its_iteration(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    """The checkpoint of an iteration is written before its evaluation, snapshot and log
    record; whichever of those fails (or a kill between them), the resume writes it."""
    from rccr import runs

    config = _config(toy, "train.mode=rccr")
    straight = train(config, tmp_path / "straight", progress=False)
    out = tmp_path / "run"
    if fails == "metrics.jsonl":
        real = runs.RunWriter.log

        def log(self: runs.RunWriter, record: dict) -> None:
            if record["iteration"] == 3:
                raise OSError(28, f"{self.root / 'metrics.jsonl'}: cannot append")
            real(self, record)

        monkeypatch.setattr(runs.RunWriter, "log", log)
    else:
        _fail_once(monkeypatch, Path(fails).name)
    with pytest.raises(OSError, match=r"iter_3\.(json|npz)|metrics\.jsonl"):
        Trainer(config, out).run(progress=False)
    assert list(load_run(out).checkpoints) == [3]  # the checkpoint came first
    monkeypatch.undo()
    resumed = Trainer(config, out)
    assert resumed.iteration == 3
    done = resumed.run(progress=False)
    assert done.status == "finished" and done.problems == []
    assert _values(done.records) == _values(straight.records)
    assert list(done.evals) == [3, 6] and list(done.features) == [3, 6]
    assert done.evals[3].miou == straight.evals[3].miou
    for name in ("iter_3.npz", "iter_6.npz"):
        assert (out / "features" / name).read_bytes() == (
            tmp_path / "straight" / "features" / name
        ).read_bytes()


def test_train__each_evaluation_prints_a_line_with_the_best_so_far(
    toy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run can be watched with --no-progress: one line per evaluation, and a resumed run
    counts the evaluations written before it."""
    import re

    config = _config(toy, "train.eval_every=2", "train.checkpoint_every=2")
    train(config, tmp_path / "run", progress=False, until=4)
    run = train(config, tmp_path / "run", progress=False)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("iter")]
    assert [line.split(":")[0] for line in lines] == [f"iteration {i}/6" for i in (2, 4, 6)]
    scores = {i: r.miou["mIoU19"] for i, r in run.evals.items()}
    for line, iteration in zip(lines, (2, 4, 6), strict=True):
        best = max((i for i in scores if i <= iteration), key=scores.__getitem__)
        assert f": mIoU19 {scores[iteration]:.2f} (best mIoU19 so far " in line
        assert f"so far {scores[best]:.2f} at iteration {best})" in line
    assert re.search(r"; about \d+ (s|min) left$", lines[0]) and lines[2].endswith(")")


def test_train__config_yaml_names_files_by_absolute_path(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative data roots are stored resolved, so the run reads from anywhere; a run
    written before (relative paths in config.yaml) still resumes from its own folder."""
    import os

    monkeypatch.chdir(tmp_path)
    relative = [f"data.source_root={os.path.relpath(toy / 'gta5')}",
                f"data.target_root={os.path.relpath(toy / 'cityscapes')}"]  # fmt: skip
    assert not relative[0].split("=")[1].startswith("/")
    config = _config(toy, *relative)
    train(config, "run", progress=False, until=3)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["source_root"] == str(toy / "gta5")
    assert load_checkpoint(tmp_path / "run/checkpoints/iter_3.pt")["config"] == saved
    # An older run: config.yaml and its checkpoint with the paths as typed.
    saved["data"]["source_root"] = relative[0].split("=")[1]
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    state = load_checkpoint(tmp_path / "run/checkpoints/iter_3.pt")
    state["config"] = saved
    torch.save(state, tmp_path / "run/checkpoints/iter_3.pt")
    resumed = Trainer(config, "run")  # not refused
    assert resumed.iteration == 3
    assert resumed.run(progress=False).status == "finished"
