"""The `rccr` command: data preparation, toy generation, and how errors are reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fake_datasets import make_gta5

from rccr.cli import main

TINY = ["--num-source", "4", "--num-target-train", "4", "--num-target-val", "2", "--size", "96x48"]


def test_cli__make_toy_then_prepare_both_domains(tmp_path: Path, capsys) -> None:
    out = tmp_path / "toy"
    assert (
        main(
            [
                "data",
                "make-toy",
                "--out",
                str(out),
                "--seed",
                "3",
                "--workers",
                "1",
                "--no-progress",
                *TINY,
            ]
        )
        == 0
    )
    spec = json.loads((out / "toycity.json").read_text())
    assert spec["spec"]["seed"] == 3 and spec["spec"]["width"] == 96
    for name, root in (("gta5", out / "gta5"), ("cityscapes", out / "cityscapes")):
        assert (
            main(["data", "prepare", name, "--root", str(root), "--workers", "1", "--no-progress"])
            == 0
        )
        assert (root / "class_stats.json").is_file()
    assert "images checked" in capsys.readouterr().out


def test_cli__missing_root_is_one_line_naming_the_path(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "no-such-dataset"
    assert main(["data", "prepare", "gta5", "--root", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err and "Traceback" not in err


def test_cli__debug_shows_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no-such-dataset"):
        main(["--debug", "data", "prepare", "gta5", "--root", str(tmp_path / "no-such-dataset")])


def test_cli__every_problem_is_printed(tmp_path: Path, capsys) -> None:
    root = make_gta5(tmp_path, count=3)
    for name in ("00001.png", "00003.png"):
        (root / "images" / name).write_bytes(b"broken")
    assert main(["data", "prepare", "gta5", "--root", str(root), "--no-progress"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[1].strip() for line in err[:2]] == [
        str(root / "images" / "00001.png"),
        str(root / "images" / "00003.png"),
    ]
    assert err[-1] == "error: 2 problems; nothing was written"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--size", "big"], "WIDTHxHEIGHT"), (["--num-source", "0"], "num_source")],
)
def test_cli__bad_toy_options_are_named(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rccr", "data", "make-toy", "--out", str(tmp_path / "t"), *args],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "t").exists()


def _tiny_run(tmp_path: Path) -> tuple[Path, list[str]]:
    toy = tmp_path / "toy"
    assert main(["data", "make-toy", "--out", str(toy), "--workers", "1", "--no-progress",
                 *TINY]) == 0  # fmt: skip
    overrides = [
        f"data.source_root={toy / 'gta5'}",
        f"data.target_root={toy / 'cityscapes'}",
        *(f"data.{k}=[96, 48]" for k in ("source_size", "target_size", "val_size")),
        "data.crop=[48, 48]",
        "model.width=8",
        "train.iterations=2",
        "train.eval_every=0",
        "train.checkpoint_every=1",
    ]
    return toy, overrides


def test_cli__train_then_eval_a_checkpoint(tmp_path: Path, capsys) -> None:
    _, overrides = _tiny_run(tmp_path)
    run_dir = tmp_path / "run"
    assert main(["train", "--config", "toy", *overrides, "--out", str(run_dir),
                 "--no-progress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "finished at iteration 2" in out and "mIoU19" in out
    assert main(["eval", "--run", str(run_dir), "--checkpoint", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "checkpoint iter_1" in out and "road" in out and "mIoU19" in out
    saved = json.loads((run_dir / "eval" / "iter_1.json").read_text())
    assert saved["num_images"] == 2 and "mIoU19" in saved["miou"]
    assert saved["checkpoint_choice"] == "iter_1"
    assert main(["eval", "--run", str(run_dir), "--checkpoint", "7", "--no-progress"]) == 2
    assert "no checkpoint at iteration 7; have 1, 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "toy", "train.lrr=1"], "train.lrr: unknown key; valid keys in 'train'"),
        (["--config", "nope"], "nope: no such preset or config file"),
        (["--config", "toy", "data.crop=[-1, 5]"], "data.crop: expected [width, height] > 0"),
        (["--config", "toy", "data.source_root=/no/such/dir"], "/no/such/dir/images: folder"),
    ],
)
def test_cli__train_input_errors_are_one_line(
    tmp_path: Path, capsys, args: list[str], message: str
) -> None:
    assert main(["train", *args, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli__eval_of_missing_run_is_named(tmp_path: Path, capsys) -> None:
    assert main(["eval", "--run", str(tmp_path / "ghost")]) == 2
    assert f"{tmp_path / 'ghost'}: run directory not found" in capsys.readouterr().err


def test_cli__missing_data_says_how_to_make_it(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The toy preset before `rccr data make-toy`: the preset's relative path is named as
    the absolute path it was taken for, and the commands that make the data are suggested."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", "toy", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: {tmp_path}/data/toy/gta5/images: folder not found; ")
    assert "`rccr data make-toy --out data/toy`" in err and "`rccr data prepare " in err


def test_cli__train_help_lists_the_modes_and_config_show(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "source_only, dacs, rccr, oracle" in out and "rccr config show PRESET" in out
    assert "runs/<name>-<mode>" in out


def test_cli__config_show_gives_every_key_its_value_and_meaning(capsys) -> None:
    from rccr.config import flatten_config, load_config

    assert main(["config", "show", "gta2cityscapes", "train.lr=0.001"]) == 0
    out = capsys.readouterr().out
    config = flatten_config(load_config("gta2cityscapes", ["train.lr=0.001"]))
    shown = [line for line in out.splitlines() if not line.startswith(" ")]
    assert [line.split(": ", 1)[0] for line in shown] == list(config)
    assert "train.lr: 0.001" in shown and "model.pretrained: null" in shown
    assert "data.crop: [512, 512]" in shown and "train.mode: rccr" in shown
    lines = out.splitlines()
    for i, line in enumerate(lines):  # every key is followed by its meaning, indented
        if not line.startswith(" "):
            assert lines[i + 1].startswith("    ") and "(undocumented)" not in lines[i + 1]
    assert "    teacher EMA momentum cap" in out


def test_cli__config_show_of_a_bad_override_is_one_line(capsys) -> None:
    assert main(["config", "show", "toy", "train.lr=fast"]) == 2
    assert capsys.readouterr().err.startswith("error: override train.lr=fast: train.lr: ")


def test_cli__train_without_out_goes_to_a_folder_named_by_preset_and_mode(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, overrides = _tiny_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    for mode in ("source_only", "dacs"):
        assert main(["train", "--config", "toy", *overrides, f"train.mode={mode}",
                     "--no-progress"]) == 0  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["toy-dacs", "toy-source-only"]
    assert "runs/toy-dacs: finished at iteration 2" in capsys.readouterr().out
