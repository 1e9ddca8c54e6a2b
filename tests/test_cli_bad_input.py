"""Bad config and CLI input: one line on stderr naming the key or path, exit status 2, no
traceback unless ``--debug``.

tests/test_cli.py already covers an unknown override key, a missing preset, a negative crop,
a missing dataset folder and a missing run directory; this file adds the rest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fake_datasets import make_cityscapes, make_gta5

from rccr.cli import main
from rccr.config import PRESET_DIR, ConfigError, load_config


def _one_line_error(capsys: pytest.CaptureFixture[str], message: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.iterations=abc", "train.iterations: expected an integer, got 'abc'"),
        ("train.lr=fast", "train.lr: expected a number, got 'fast'"),
        ("data.flip=maybe", "data.flip: expected true or false, got 'maybe'"),
        ("data.crop=[128]", "data.crop: expected a list of 2 integers, got [128]"),
        ("data.source_size=[-256, 128]", "data.source_size: expected [width, height] > 0"),
        ("data.val_size=[0, 128]", "data.val_size: expected [width, height] > 0"),
        ("train.batch_size=-2", "train.batch_size: expected >= 1, got -2"),
        ("data.num_workers=-1", "data.num_workers: expected >= 0, got -1"),
        ("train.nan_retries=-1", "train.nan_retries: expected >= 0, got -1"),
        ("data.skip_bad=sometimes", "data.skip_bad: expected true or false"),
        ("data.crop=[512, 128]", "data.crop: expected at most data.source_size [256, 128]"),
        ("data.crop=[128, 200]", "data.crop: expected at most data.source_size [256, 128]"),
        (
            "data.source_size=[512, 256]",
            "data.crop: expected at most data.target_size [100, 100], got [128, 128]",
        ),
        ("model.backbone=resnet9000", "model.backbone: expected one of 'resnet101'"),
        ("method.bank_steps=0", "method.bank_steps: expected >= 1, got 0"),
        ("eval=3", "eval: expected a mapping, got 3"),
        ("train=", "train: expected a mapping, got None"),
    ],
)
def test_cli_train__bad_override_is_named_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, message: str
) -> None:
    args = ["train", "--config", "toy", override, "--out", str(tmp_path / "r")]
    if override.startswith("data.source_size=[512"):
        args.insert(4, "data.target_size=[100, 100]")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
    # The override is blamed, never the preset file, which is valid as shipped.
    if override.startswith("data.source_size=[512"):  # a rule between two keys: both named
        assert err.startswith(f"error: {PRESET_DIR / 'toy.yaml'} with overrides "
                              f"{override}, data.target_size=[100, 100]: data.crop: ")  # fmt: skip
    else:
        assert err.startswith(f"error: override {override}: "), err
    assert not (tmp_path / "r").exists()


def test_load_config__a_long_override_is_quoted_cut_to_200_characters() -> None:
    long = "train.lr=" + "9" * 400
    with pytest.raises(ConfigError) as info:
        load_config("toy", [long, "train.iterations=5"])
    assert str(info.value).startswith(f"override {long[:197]}...: train.lr: expected ")
    exact = "data.source_list=" + "x" * 183  # 200 characters: quoted whole
    with pytest.raises(ConfigError) as info:
        load_config("toy", [exact, "data.source_size=[100, 100]"])
    assert str(info.value).startswith(f"{PRESET_DIR / 'toy.yaml'} with overrides {exact}, data.")


def test_load_config__a_yaml_error_without_a_position_is_quoted_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PyYAML errors usually carry a line and column; one without says only its problem."""
    import yaml

    import rccr.config

    parse = rccr.config.parse_yaml

    def no_position(text: str) -> object:  # fails on the override's value only
        if text != "1":
            return parse(text)
        raise yaml.constructor.ConstructorError(None, None, "cannot construct this", None)

    monkeypatch.setattr(rccr.config, "parse_yaml", no_position)
    with pytest.raises(ConfigError) as info:
        load_config("toy", ["train.lr=1"])
    assert str(info.value) == "train.lr: cannot parse value '1': cannot construct this"


def test_load_config__the_last_override_of_a_key_is_the_one_blamed() -> None:
    with pytest.raises(ConfigError, match=r"^override train\.lr=-1: train\.lr: expected > 0"):
        load_config("toy", ["train.lr=0.1", "train.lr=-1"])
    with pytest.raises(ConfigError, match=r"^override 'nokey': expected key=value"):
        load_config("toy", ["nokey"])
    # The key ends at the first "=": a value holding "=" is still blamed on its override.
    with pytest.raises(ConfigError, match=r"^override train\.lr=1=2: train\.lr: expected a"):
        load_config("toy", ["train.lr=1=2"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train:\n  lrr: 1\n", "bad.yaml: train.lrr: unknown key; valid keys in 'train'"),
        ("trian:\n  lr: 1\n", "bad.yaml: trian: unknown key; valid keys in the top level"),
        ("train: [1, 2\n", "bad.yaml: not valid YAML: line 2, column 1: expected ',' or ']'"),
        ("train:\n  lr: !!python/name:os.system\n", "bad.yaml: not valid YAML: line 2, column 7"),
        ("- 1\n- 2\n", "bad.yaml: expected a mapping of sections, got list"),
        ("data:\n  crop: [2048, 2048]\n", "bad.yaml: data.crop: expected at most"),
    ],
)
def test_cli_train__bad_config_file_is_named_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    assert main(["train", "--config", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "r")])
    _one_line_error(capsys, message)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("data")
    make_gta5(root / "gta5", count=2)
    make_cityscapes(root / "cityscapes", count=1)
    return [
        f"data.source_root={root / 'gta5'}",
        f"data.target_root={root / 'cityscapes'}",
        *(f"data.{k}=[32, 16]" for k in ("source_size", "target_size", "val_size")),
        "data.crop=[16, 16]",
        "model.width=8",
        "train.iterations=1",
        "train.eval_every=0",
    ]


def test_cli_train__out_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: list[str]
) -> None:
    (tmp_path / "taken").write_text("not a folder")
    assert main(["train", "--config", "toy", *data, "--out", str(tmp_path / "taken"),
                 "--no-progress"]) == 2  # fmt: skip
    _one_line_error(capsys, str(tmp_path / "taken"))
    assert (tmp_path / "taken").read_text() == "not a folder"


def test_cli_train__out_holds_another_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: list[str]
) -> None:
    out = tmp_path / "run"
    assert main(["train", "--config", "toy", *data, "--out", str(out), "--no-progress"]) == 0
    before = (out / "config.yaml").read_text()
    assert main(["train", "--config", "toy", *data, "train.lr=0.5", "--out", str(out)]) == 2
    _one_line_error(capsys, f"{out}: holds a run with a different config")
    assert (out / "config.yaml").read_text() == before


@pytest.mark.parametrize(
    ("what", "args", "message"),
    [
        ("a file", ["--run", "{tmp}/file"], "{tmp}/file: run directory not found"),
        ("an empty folder", ["--run", "{tmp}/empty"], "{tmp}/empty: not a run directory"),
        ("no checkpoints", ["--run", "{tmp}/fresh"], "{tmp}/fresh/checkpoints: no checkpoints"),
        ("a bad --checkpoint", ["--run", "{tmp}/fresh", "--checkpoint", "best"], "--checkpoint"),
    ],
)
def test_cli_eval__bad_run_is_named_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str, args: list[str], message: str
) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "fresh" / "checkpoints").mkdir(parents=True)
    (tmp_path / "fresh" / "config.yaml").write_text("name: fresh\n")
    tmp = str(tmp_path)
    assert main(["eval", *(a.format(tmp=tmp) for a in args), "--no-progress"]) == 2
    _one_line_error(capsys, message.format(tmp=tmp))


def _rccr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rccr", *args], capture_output=True, text=True)


def test_cli__traceback_only_with_debug(tmp_path: Path) -> None:
    args = ["train", "--config", "toy", "train.batch_size=0", "--out", str(tmp_path / "r")]
    plain = _rccr(*args)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert (
        plain.stderr
        == "error: override train.batch_size=0: train.batch_size: expected >= 1, got 0\n"
    )
    assert plain.stderr.count("\n") == 1
    debug = _rccr("--debug", *args)
    assert debug.returncode != 0 and "Traceback (most recent call last)" in debug.stderr
    assert "ConfigError: " in debug.stderr and "train.batch_size: expected >= 1" in debug.stderr


@pytest.mark.parametrize("preset", ["gta2cityscapes", "synthia2cityscapes_release"])
def test_cli_train__paper_preset_without_weights_says_what_to_pass(
    preset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--config", preset, "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.pretrained=FILE" in err
    assert "model.pretrained=none" in err and not (tmp_path / "r").exists()
