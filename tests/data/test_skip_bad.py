"""Unreadable training samples: replaced by the next readable one, deterministically, and
reported by name through a DataLoader (worker processes included)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_datasets import HEIGHT, WIDTH, make_cityscapes, make_gta5, write_gray_label
from torch.utils.data import DataLoader

from rccr.data import GTA5, Cityscapes, DataError, JointTransform, Size
from rccr.data.dataset import SegmentationDataset
from rccr.data.skipping import ReplaceBad, replaced_samples, require_readable
from rccr.training.data_stream import DataStream

CROP = JointTransform(crop=Size(8, 8), flip=True)


def _truncate(ds: SegmentationDataset, i: int) -> Path:
    path = ds.pairs[i].image
    path.write_bytes(path.read_bytes()[:60])
    return path


def _garbage(ds: SegmentationDataset, i: int) -> Path:
    path = ds.pairs[i].image
    path.write_bytes(b"not a png at all")
    return path


def _wrong_size_label(ds: SegmentationDataset, i: int) -> Path:
    path = ds.pairs[i].label
    write_gray_label(path, np.zeros((HEIGHT + 2, WIDTH)))
    return path


def _unknown_values(ds: SegmentationDataset, i: int) -> Path:
    path = ds.pairs[i].label
    write_gray_label(path, np.full((HEIGHT, WIDTH), 40))  # 40 is not a Cityscapes id
    return path


DAMAGE: dict[str, Callable[[SegmentationDataset, int], Path]] = {
    "truncated image": _truncate,
    "not an image": _garbage,
    "label of wrong size": _wrong_size_label,
    "unknown label values": _unknown_values,
}


def _cityscapes(root: Path, per_city: int = 3) -> Cityscapes:
    """Two train cities of ``per_city`` frames each."""
    return Cityscapes(make_cityscapes(root, count=per_city), "train", CROP)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_replace_bad__takes_the_next_readable_sample_and_names_the_file(
    tmp_path: Path, damage: str
) -> None:
    ds = _cityscapes(tmp_path)
    path = DAMAGE[damage](ds, 2)
    item = ReplaceBad(ds)[2]
    assert item.sample.name == ds.pairs[3].name
    [report] = replaced_samples(item)
    assert report["name"] == ds.pairs[2].name and report["error"].startswith(f"{path}: ")


def test_replace_bad__good_items_pass_unchanged(tmp_path: Path) -> None:
    ds = _cityscapes(tmp_path, per_city=2)
    for i in range(len(ds)):
        torch.manual_seed(i)
        expected = ds[i]
        torch.manual_seed(i)
        item = ReplaceBad(ds)[i]
        assert replaced_samples(item) == [] and item.sample.name == expected.name
        assert torch.equal(item.sample.image, expected.image)


def test_replace_bad__runs_of_bad_items_wrap_around_in_order(tmp_path: Path) -> None:
    ds = _cityscapes(tmp_path, per_city=2)
    assert len(ds) == 4
    for i in (3, 0):
        _garbage(ds, i)
    item = ReplaceBad(ds)[3]
    assert item.sample.name == ds.pairs[1].name
    assert [r["name"] for r in replaced_samples(item)] == [ds.pairs[3].name, ds.pairs[0].name]


def test_replace_bad__no_readable_item_is_an_error(tmp_path: Path) -> None:
    ds = _cityscapes(tmp_path, per_city=1)
    for i in range(2):
        _garbage(ds, i)
    with pytest.raises(DataError, match=r"none of the 2 samples can be read; the first error: /"):
        ReplaceBad(ds)[0]


@pytest.mark.parametrize("workers", [0, 2])
def test_replace_bad__reports_cross_the_dataloader(tmp_path: Path, workers: int) -> None:
    ds = GTA5(make_gta5(tmp_path, count=5), transform=CROP)
    bad = _truncate(ds, 1)
    loader = DataLoader(ReplaceBad(ds), batch_size=5, num_workers=workers)
    batch = next(iter(loader))
    assert batch.sample.image.shape == (5, 3, 8, 8) and batch.sample.name[1] == ds.pairs[2].name
    [report] = replaced_samples(batch)
    assert report["error"].startswith(f"{bad}: cannot read image")


def test_replace_bad__stream_is_reproducible_with_and_without_workers(tmp_path: Path) -> None:
    ds = GTA5(make_gta5(tmp_path, count=5), transform=CROP)
    _unknown_values(ds, 0)

    def take(workers: int) -> list[tuple[torch.Tensor, list[str], list[dict[str, str]]]]:
        stream = DataStream(ReplaceBad(ds), 2, seed=4, stream=0, num_workers=workers)
        return [(b.sample.image, list(b.sample.name), replaced_samples(b))
                for b in (next(stream) for _ in range(5))]  # fmt: skip

    serial, again, parallel = take(0), take(0), take(2)
    reports = [r for _, _, batch_reports in serial for r in batch_reports]
    assert len(reports) == 2  # 10 draws over 5 images in two epochs: image 0 twice
    for a, b in ((serial, again), (serial, parallel)):
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x[0], y[0]) and x[1:] == y[1:]


@pytest.mark.parametrize("bad", [[], [1], [0, 3]])
def test_require_readable__names_the_first_bad_file_and_counts_the_rest(
    tmp_path: Path, bad: list[int]
) -> None:
    ds = _cityscapes(tmp_path, per_city=2)
    paths = [_truncate(ds, i) for i in bad]
    if not bad:
        require_readable(ds, threads=2)
        return
    more = " (and 1 more files)" if len(bad) > 1 else ""
    with pytest.raises(DataError, match=rf"^{paths[0]}: cannot read image: .*{re.escape(more)};"):
        require_readable(ds, threads=2)
