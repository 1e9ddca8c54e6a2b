"""Untrusted files: a checkpoint or YAML file carrying code is refused without running it.

Each payload writes a marker file when it runs. Every test first shows that the payload
does run when the file is loaded unsafely (so the test can fail), then that each of the
package's readers refuses it and the marker never appears.

The dashboard's own guards (run names and query paths confined to its runs root, binding
127.0.0.1 by default) are tested with the dashboard in tests/dashboard/.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from fake_datasets import make_cityscapes, make_gta5

from rccr.cli import main
from rccr.config import Config, ConfigError, load_config, save_config
from rccr.models import DeepLabV2, load_pretrained
from rccr.runs import RunError, load_checkpoint, load_run
from rccr.training import Trainer


class _Shell:
    """Unpickles to ``os.system("touch marker")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return (os.system, (f"touch '{self.marker}'",))


class _Exec:
    """Unpickles to ``exec("open(marker, 'w')")``: pure Python, no shell."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _torch_file(payload: object) -> bytes:
    buffer = io.BytesIO()
    torch.save({"iteration": 5, "student": {"w": torch.ones(1)}, "extra": payload}, buffer)
    return buffer.getvalue()


def _raw_pickle(payload: object) -> bytes:
    return pickle.dumps({"iteration": 5, "student": payload})


PAYLOADS = {
    "torch.save + os.system": (_torch_file, _Shell),
    "torch.save + exec": (_torch_file, _Exec),
    "raw pickle + os.system": (_raw_pickle, _Shell),
}


def _evil(path: Path, kind: str, marker: Path) -> Path:
    wrap, payload = PAYLOADS[kind]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wrap(payload(marker)))
    return path


@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_payload__runs_when_loaded_unsafely(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "ran"
    path = _evil(tmp_path / "evil.pt", kind, marker)
    # What the package must never do. A raw pickle runs as torch reads its "magic number",
    # which torch then finds wrong.
    with contextlib.suppress(RuntimeError):
        torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_load_checkpoint__refuses_payload_without_running_it(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "ran"
    path = _evil(tmp_path / "iter_5.pt", kind, marker)
    with pytest.raises(RunError, match=rf"{path}: not a loadable checkpoint") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and "weights_only` set to `False" not in str(info.value)
    if kind.startswith("torch.save"):
        assert "unpickling it would call" in str(info.value)
    assert not marker.exists()


def test_load_pretrained__refuses_payload_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = _evil(tmp_path / "resnet.pth", "torch.save + exec", marker)
    with pytest.raises(ValueError, match="not a weights-only PyTorch checkpoint"):
        load_pretrained(DeepLabV2(num_classes=19, backbone="resnet18", width=8), path)
    assert not marker.exists()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    make_gta5(root / "gta5", count=3)
    make_cityscapes(root / "cityscapes", count=2)
    return root


def _config(data: Path) -> Config:
    return load_config(
        "toy",
        [
            f"data.source_root={data / 'gta5'}",
            f"data.target_root={data / 'cityscapes'}",
            *(f"data.{k}=[32, 16]" for k in ("source_size", "target_size", "val_size")),
            "data.crop=[16, 16]",
            "model.width=8",
            "train.iterations=2",
            "train.eval_every=0",
        ],
    )


def _run_with_evil_checkpoint(data: Path, root: Path, marker: Path) -> Path:
    run = root / "run"
    run.mkdir()
    (run / "config.yaml").write_text(save_config(_config(data)))
    _evil(run / "checkpoints" / "iter_5.pt", "torch.save + os.system", marker)
    return run


def test_resume__refuses_payload_and_starts_from_what_loads(data: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    run = _run_with_evil_checkpoint(data, tmp_path, marker)
    with pytest.warns(UserWarning, match=r"skipped on resume: .*iter_5\.pt: not a loadable"):
        trainer = Trainer(_config(data), run)
    assert trainer.iteration == 0 and not marker.exists()


def test_cli_eval__refuses_payload_in_one_line(data: Path, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "ran"
    run = _run_with_evil_checkpoint(data, tmp_path, marker)
    assert main(["eval", "--run", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{run / 'checkpoints' / 'iter_5.pt'}: not a loadable checkpoint" in err
    assert not marker.exists()


def test_load_models__refuses_payload(data: Path, tmp_path: Path) -> None:
    from rccr.analysis.checkpoints import load_models

    marker = tmp_path / "ran"
    run = _run_with_evil_checkpoint(data, tmp_path, marker)
    with pytest.raises(RunError, match="not a loadable checkpoint"):
        load_models(run)
    assert not marker.exists()


def _yaml_payload(marker: Path) -> str:
    return f"!!python/object/apply:os.system [\"touch '{marker}'\"]"


def test_yaml_payload__runs_with_an_unsafe_loader(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    yaml.load(f"train: {_yaml_payload(marker)}", Loader=yaml.UnsafeLoader)  # never in rccr
    assert marker.exists()


@pytest.mark.parametrize("where", ["config file", "override", "run's config.yaml"])
def test_yaml__python_tags_are_refused_without_running(tmp_path: Path, where: str) -> None:
    marker = tmp_path / "ran"
    text = f"train:\n  lr: {_yaml_payload(marker)}\n"
    if where == "config file":
        (tmp_path / "evil.yaml").write_text(text)
        with pytest.raises(ConfigError, match=r"evil\.yaml: not valid YAML.*python/object"):
            load_config(tmp_path / "evil.yaml")
    elif where == "override":
        with pytest.raises(ConfigError, match=r"train\.lr: cannot parse value"):
            load_config("toy", [f"train.lr={_yaml_payload(marker)}"])
    else:
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "config.yaml").write_text(text)
        run = load_run(tmp_path / "run")
        assert run.config is None
        assert any("config.yaml: malformed" in p and "python/object" in p for p in run.problems)
    assert not marker.exists()


def test_cli_train__yaml_payload_is_one_line(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "evil.yaml").write_text(f"train:\n  lr: {_yaml_payload(marker)}\n")
    assert main(["train", "--config", str(tmp_path / "evil.yaml"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert "evil.yaml: not valid YAML" in err and "Traceback" not in err
    assert not marker.exists() and not (tmp_path / "r").exists()
