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
