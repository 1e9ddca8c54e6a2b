"""The toy-city benchmark: deterministic, in the real layouts, and a real domain shift."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rccr.data import GTA5, Cityscapes, JointTransform
from rccr.data.labels import CLASS_NAMES
from rccr.data.prepare import prepare_dataset
from rccr.data.toycity import (
    SOURCE_STYLE,
    TARGET_STYLE,
    ToyCitySpec,
    make_toy_city,
    render_scene,
)

SMALL = ToyCitySpec(num_source=6, num_target_train=6, num_target_val=3, width=96, height=48)
REQUIRED = ["road", "sidewalk", "building", "pole", "traffic light", "traffic sign",
            "vegetation", "terrain", "sky", "person", "car"]  # fmt: skip


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_make_toy_city__same_seed_gives_identical_files(tmp_path: Path) -> None:
    make_toy_city(tmp_path / "a", SMALL, workers=1, progress=False)
    make_toy_city(tmp_path / "b", SMALL, workers=2, progress=False)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(a) == 2 * (6 + 6 + 3) + 1
    assert a == b


def test_make_toy_city__other_seed_gives_other_images(tmp_path: Path) -> None:
    make_toy_city(tmp_path / "a", SMALL, workers=1, progress=False)
    other = ToyCitySpec(**{**SMALL.__dict__, "seed": 1})
    make_toy_city(tmp_path / "b", other, workers=1, progress=False)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys()
    assert sum(a[k] != b[k] for k in a if k.endswith(".png")) == 30


def test_make_toy_city__real_loaders_and_preparation_read_it(tmp_path: Path) -> None:
    summary = make_toy_city(tmp_path / "toy", SMALL, workers=1, progress=False)
    native = JointTransform()
    source = GTA5(summary.gta5_root, transform=native)
    train = Cityscapes(summary.cityscapes_root, "train", transform=native)
    val = Cityscapes(summary.cityscapes_root, "val", transform=native)
    assert (len(source), len(train), len(val)) == (6, 6, 3)
    assert source[0].image.shape == (3, 48, 96)
    for dataset in ("gta5", "cityscapes"):
        root = summary.gta5_root if dataset == "gta5" else summary.cityscapes_root
        assert prepare_dataset(dataset, root, workers=1, progress=False).images > 0
    again = make_toy_city(tmp_path / "toy", SMALL, workers=1, progress=False)
    assert again.gta5_root == summary.gta5_root  # prepared files do not make it "foreign"


def test_make_toy_city__manifest_records_spec(tmp_path: Path) -> None:
    make_toy_city(tmp_path / "toy", SMALL, workers=1, progress=False)
    manifest = json.loads((tmp_path / "toy" / "toycity.json").read_text())
    assert manifest["spec"] == SMALL.__dict__
    assert manifest["counts"] == {"gta5": 6, "cityscapes/train": 6, "cityscapes/val": 3}


def test_make_toy_city__refuses_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=str(tmp_path / "toy")):
        make_toy_city(tmp_path / "toy", SMALL, workers=1, progress=False)
    assert (tmp_path / "toy" / "mine.txt").read_text() == "keep me"
    other = ToyCitySpec(**{**SMALL.__dict__, "seed": 5})
    make_toy_city(tmp_path / "t2", SMALL, workers=1, progress=False)
    with pytest.raises(FileExistsError, match="t2"):
        make_toy_city(tmp_path / "t2", other, workers=1, progress=False)


def test_make_toy_city__failure_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    import rccr.data.toycity.generate as toycity

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(toycity, "encode_png", broken)
    with pytest.raises(OSError, match="disk full"):
        make_toy_city(tmp_path / "toy", SMALL, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("num_source", 0), ("num_target_val", -1), ("width", 10), ("height", 8), ("seed", -1)],
)
def test_spec__out_of_range_names_the_field(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"ToyCitySpec.{field}"):
        ToyCitySpec(**{field: value})


@pytest.mark.parametrize("style", [SOURCE_STYLE, TARGET_STYLE], ids=["source", "target"])
def test_render_scene__shapes_and_label_values(style) -> None:
    image, label = render_scene(np.random.default_rng(0), style, 128, 64)
    assert image.shape == (64, 128, 3) and image.dtype == np.uint8
    assert label.shape == (64, 128) and label.dtype == np.uint8
    assert set(np.unique(label)) <= set(range(19)) | {255}


def _render_many(style, count: int = 60) -> tuple[np.ndarray, np.ndarray]:
    scenes = [render_scene(np.random.default_rng(i), style, 128, 64) for i in range(count)]
    return np.stack([s[0] for s in scenes]), np.stack([s[1] for s in scenes])


def test_render_scene__covers_the_required_classes() -> None:
    for style in (SOURCE_STYLE, TARGET_STYLE):
        _, labels = _render_many(style)
        present = {CLASS_NAMES[c] for c in np.unique(labels) if c < 19}
        assert set(REQUIRED) <= present
        assert present & {"wall", "fence"}


def test_render_scene__source_has_no_ignore_and_target_has_a_hood() -> None:
    _, source = _render_many(SOURCE_STYLE)
    _, target = _render_many(TARGET_STYLE)
    assert not (source == 255).any()
    hood = target == 255
    assert hood.any()
    assert hood[:, : 64 // 2].sum() == 0  # the hood is at the bottom of the image


def test_render_scene__the_two_styles_differ_in_appearance() -> None:
    """Per class, mean colour and texture differ between domains, beyond per-image noise."""
    src_img, src_lab = _render_many(SOURCE_STYLE)
    tgt_img, tgt_lab = _render_many(TARGET_STYLE)
    shifted = 0
    for cls in (0, 2, 8, 10, 13):  # road, building, vegetation, sky, car
        src = src_img[src_lab == cls].astype(float)
        tgt = tgt_img[tgt_lab == cls].astype(float)
        if np.linalg.norm(src.mean(0) - tgt.mean(0)) > 15:
            shifted += 1
    assert shifted >= 3

    # Source is flat-shaded: neighbouring pixels inside a class agree far more often.
    def flatness(img: np.ndarray, lab: np.ndarray) -> float:
        same = (lab[:, :, 1:] == lab[:, :, :-1]) & (lab[:, :, 1:] == 0)
        step = np.abs(img[:, :, 1:].astype(int) - img[:, :, :-1].astype(int)).sum(-1)
        return float((step[same] == 0).mean())

    assert flatness(src_img, src_lab) > 2 * flatness(tgt_img, tgt_lab)
