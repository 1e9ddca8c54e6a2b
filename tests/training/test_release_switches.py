"""Each switch between this project and the authors' release changes what it claims, in
the training step that uses it; the release presets set every switch the release's way.

docs/method.md#paper-release-and-this-project lists the switches. The method-level
behaviour of each is tested beside its function (tests/method, tests/models); here the
tests drive the real training step and watch what it passes on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from tiny_toy import tiny_config, train_steps

from rccr.build import build_datasets
from rccr.config import load_config
from rccr.training import Trainer, steps

# Every key the release presets set differently from the paper presets, and its value.
RELEASE = {
    "data.target_size": (2048, 1024),
    "model.legacy_aspp": True,
    "model.bn_batch_stats": True,
    "model.stem_ceil_mode": True,
    "model.stride_in_1x1": True,
    "train.precision": "fp32",
    "method.train_head": False,
    "method.class_mix_ignore": True,
    "method.cutmix_box": "release",
    "method.photometric": "release",
    "method.align_corners": True,
    "method.bank_ignore": True,
}
# The release switches a tiny ResNet-18 run can take (it has no 1x1 convs to stride).
TINY_RELEASE = [
    "model.freeze_bn=true",
    "model.bn_batch_stats=true",
    "model.stem_ceil_mode=true",
    "model.legacy_aspp=true",
    "method.train_head=false",
    "method.class_mix_ignore=true",
    "method.cutmix_box=release",
    "method.photometric=release",
    "method.align_corners=true",
    "method.bank_ignore=true",
]


def _values(name: str) -> dict[str, Any]:
    """A preset as dotted key -> value (lists as tuples)."""
    flat = {}
    for section, values in load_config(name).to_dict().items():
        if isinstance(values, dict):
            for key, value in values.items():
                flat[f"{section}.{key}"] = tuple(value) if isinstance(value, list) else value
    return flat


@pytest.mark.parametrize(
    ("paper", "start"), [("gta2cityscapes", 300_000), ("synthia2cityscapes", 0)]
)
def test_release_presets__differ_from_the_paper_presets_in_the_switches_only(
    paper: str, start: int
) -> None:
    ours, release = _values(paper), _values(f"{paper}_release")
    differing = {key for key in ours if ours[key] != release[key]}
    expected = dict(RELEASE)
    if start:
        expected["method.contrast_start_iter"] = start
    assert differing == set(expected)
    assert {key: release[key] for key in differing} == expected
    assert ours["data.flip"] is False and ours["method.train_head"] is True


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple[tuple, dict]]:
    """Record every call the training step makes to ``steps.<name>``."""
    calls: list[tuple[tuple, dict]] = []
    original: Callable[..., Any] = getattr(steps, name)

    @functools.wraps(original)
    def recorder(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(steps, name, recorder)
    return calls


def _one_step(toy: Path, tmp_path: Path, *overrides: str) -> Trainer:
    config = tiny_config(toy, "train.mode=rccr", "train.iterations=2", *overrides)
    return train_steps(config, tmp_path / "run", 1)


@pytest.mark.parametrize("release", [False, True])
def test_switches__reach_the_functions_of_the_step(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, release: bool
) -> None:
    spies = {name: _spy(monkeypatch, name) for name in
             ("class_mix_masks", "photometric", "cut_mix", "sample_entries")}  # fmt: skip
    _one_step(toy, tmp_path, *(TINY_RELEASE if release else []))
    ((_, mix_kwargs),) = spies["class_mix_masks"]
    assert mix_kwargs["ignore_is_a_class"] is release
    assert len(spies["photometric"]) == 2  # the ClassMix image and the CutMix image
    for _, kwargs in spies["photometric"]:
        assert kwargs["per_batch"] is release and kwargs["bgr"] is release
    (_, _, boxes), _ = spies["cut_mix"][0]
    if release:
        assert bool((boxes == boxes[0]).all())  # one box for the batch
    assert [args[4] for args, _ in spies["sample_entries"]] == [release, release]


def test_align_corners__every_upsampling_of_the_step(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """method.align_corners: the source and ClassMix losses and the teacher's pseudo-labels
    all upsample logits with the switch's value."""
    seen: list[bool] = []
    original = F.interpolate

    def recorder(*args: Any, **kwargs: Any) -> torch.Tensor:
        if kwargs.get("mode") == "bilinear":
            seen.append(kwargs["align_corners"])
        return original(*args, **kwargs)

    monkeypatch.setattr(F, "interpolate", recorder)
    _one_step(toy, tmp_path / "on", "method.align_corners=true")
    assert len(seen) == 3 and all(seen)
    seen.clear()
    _one_step(toy, tmp_path / "off")
    assert len(seen) == 3 and not any(seen)


@pytest.mark.parametrize("train_head", [True, False])
def test_train_head__false_keeps_the_head_at_its_initialisation(
    toy: Path, tmp_path: Path, train_head: bool
) -> None:
    """method.train_head=false (the release): after training, the head's weights are those it
    started with, and the teacher's "momentum head" equals it."""
    config = tiny_config(toy, "train.mode=rccr", "train.iterations=4", "train.eval_every=0",
                         f"method.train_head={str(train_head).lower()}")  # fmt: skip
    trainer = Trainer(config, tmp_path / "run")
    assert trainer.method is not None and trainer.method.student_head is not None
    start = {k: v.clone() for k, v in trainer.method.student_head.state_dict().items()}
    trainer.run(progress=False)
    end = trainer.method.student_head.state_dict()
    unchanged = all(torch.equal(start[k], end[k]) for k in start)
    assert unchanged is not train_head
    assert trainer.method.teacher_head is not None
    teacher = trainer.method.teacher_head.state_dict()
    if not train_head:  # the EMA of a constant: equal up to the rounding of the average
        for key in end:
            torch.testing.assert_close(teacher[key], end[key], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("batch_stats", [False, True])
def test_bn_batch_stats__teacher_normalises_like_the_student(
    toy: Path, tmp_path: Path, batch_stats: bool
) -> None:
    """model.bn_batch_stats (the release): the teacher runs in train mode too, so both
    normalise with batch statistics; otherwise the teacher uses its running statistics."""
    config = tiny_config(toy, "train.mode=dacs", "model.freeze_bn=true",
                         f"model.bn_batch_stats={str(batch_stats).lower()}")  # fmt: skip
    trainer = Trainer(config, tmp_path / "run")
    assert trainer.method is not None
    bns = [m for m in trainer.method.teacher.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(bn.training is batch_stats for bn in bns)


def test_target_size__native_size_crops_the_full_resolution_image(toy: Path) -> None:
    """data.target_size at the images' own size (the release's [2048, 1024] on Cityscapes)
    crops without resizing: a crop is a window of the original image."""
    config = tiny_config(toy, "data.crop=[32, 32]", "data.flip=false")
    sample = build_datasets(config.data).target[0]
    whole = tiny_config(toy, "data.crop=[64, 32]", "data.flip=false")
    original = build_datasets(whole.data).target[0]
    windows = original.image.unfold(2, 32, 1)  # (3, 32, 33, 32): every horizontal window
    found = any(torch.equal(windows[:, :, i], sample.image) for i in range(windows.shape[2]))
    assert found


def test_release_switches__a_tiny_run_trains(toy: Path, tmp_path: Path) -> None:
    """Every release switch at once (65x65-style grid included) trains and evaluates."""
    config = tiny_config(toy, "train.mode=rccr", "train.iterations=3", *TINY_RELEASE)
    run = Trainer(config, tmp_path / "run").run(progress=False)
    assert run.status == "finished" and 3 in run.evals
    assert all(torch.isfinite(torch.tensor(r["loss_contrast"])) for r in run.records)
