"""The three datasets over their real on-disk layouts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_datasets import (
    HEIGHT,
    WIDTH,
    cityscapes_files,
    make_cityscapes,
    make_gta5,
    make_synthia,
    write_gray_label,
    write_rgb,
)
from torch.utils.data import DataLoader

from rccr.data import GTA5, Cityscapes, DataError, JointTransform, Size, Synthia
from rccr.data.files import read_label
from rccr.data.labels import CITYSCAPES_ID_TO_TRAIN_ID, SYNTHIA_ID_TO_TRAIN_ID

NATIVE = JointTransform()
REAL_SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "cityscapes_sample"


def _naive_map(raw: np.ndarray, table: dict[int, int]) -> np.ndarray:
    out = np.empty(raw.shape, dtype=np.int64)
    for (i, j), value in np.ndenumerate(raw):
        out[i, j] = table.get(int(value), 255)
    return out


def _open(name: str, root: Path, **kwargs):
    if name == "gta5":
        return GTA5(make_gta5(root), transform=NATIVE, **kwargs)
    if name == "synthia":
        return Synthia(make_synthia(root), transform=NATIVE, **kwargs)
    return Cityscapes(make_cityscapes(root), split="train", transform=NATIVE, **kwargs)


@pytest.mark.parametrize("name", ["gta5", "synthia", "cityscapes"])
def test_dataset__labels_match_naive_mapping(tmp_path: Path, name: str) -> None:
    ds = _open(name, tmp_path)
    table = SYNTHIA_ID_TO_TRAIN_ID if name == "synthia" else CITYSCAPES_ID_TO_TRAIN_ID
    assert len(ds) > 0 and ds.label_source == "raw"
    for i in range(len(ds)):
        sample = ds[i]
        assert sample.image.shape == (3, HEIGHT, WIDTH)
        raw = read_label(ds.pairs[i].label)
        np.testing.assert_array_equal(sample.label.numpy(), _naive_map(raw, table))


def test_dataset__sorted_names_and_default_sizes(tmp_path: Path) -> None:
    gta = GTA5(make_gta5(tmp_path / "g"))
    assert [p.name for p in gta.pairs] == ["00001.png", "00002.png", "00003.png"]
    assert gta[0].image.shape == (3, 720, 1280)
    assert Synthia(make_synthia(tmp_path / "s"))[0].image.shape == (3, 760, 1280)
    cs = Cityscapes(make_cityscapes(tmp_path / "c"), split="val")
    assert cs[0].image.shape == (3, 512, 1024)
    assert cs.pairs[0].name == "frankfurt/frankfurt_000000_000019_leftImg8bit.png"


def test_dataset__collates_in_a_loader(tmp_path: Path) -> None:
    ds = GTA5(make_gta5(tmp_path), transform=JointTransform(crop=Size(8, 8), flip=True))
    batch = next(iter(DataLoader(ds, batch_size=2, generator=torch.Generator().manual_seed(0))))
    assert batch.image.shape == (2, 3, 8, 8)
    assert batch.label.shape == (2, 8, 8)
    assert list(batch.name) == ["00001.png", "00002.png"]


def test_dataset__prepared_train_ids_are_used_when_complete(tmp_path: Path) -> None:
    ds = _open("gta5", tmp_path)
    expected = ds[0].label.numpy()
    for pair in ds.pairs:
        write_gray_label(pair.train_ids, np.full((HEIGHT, WIDTH), 7))
    again = GTA5(tmp_path, transform=NATIVE)
    assert again.label_source == "train_ids"
    assert (again[0].label == 7).all()
    assert np.array_equal(GTA5(tmp_path, transform=NATIVE, labels="raw")[0].label, expected)


def test_list_file__selects_in_file_order(tmp_path: Path) -> None:
    make_gta5(tmp_path / "g")
    (tmp_path / "list.txt").write_text("# subset\n00003.png\n\n00001.png\n")
    ds = GTA5(tmp_path / "g", list_file=tmp_path / "list.txt")
    assert [p.name for p in ds.pairs] == ["00003.png", "00001.png"]


def test_list_file__unknown_entry_names_file_and_line(tmp_path: Path) -> None:
    make_gta5(tmp_path / "g")
    (tmp_path / "list.txt").write_text("00001.png\n09999.png\n")
    with pytest.raises(DataError, match=r"list\.txt.*\n.*line 2: 09999\.png"):
        GTA5(tmp_path / "g", list_file=tmp_path / "list.txt")
    with pytest.raises(DataError, match=r"missing\.txt"):
        GTA5(tmp_path / "g", list_file=tmp_path / "missing.txt")


def test_list_file__a_repeated_entry_names_both_lines(tmp_path: Path) -> None:
    make_gta5(tmp_path / "g")
    (tmp_path / "list.txt").write_text("00001.png\n00002.png\n# x\n00001.png\n00002.png\n")
    with pytest.raises(DataError) as info:
        GTA5(tmp_path / "g", list_file=tmp_path / "list.txt")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'list.txt'}: 2 entries repeat an earlier line")
    assert "line 4: 00001.png (as line 1)" in message and "line 5: 00002.png (as line 2)" in message


def test_list_file__larger_than_a_list_is_refused_unread(tmp_path: Path) -> None:
    make_gta5(tmp_path / "g")
    with open(tmp_path / "list.txt", "wb") as f:
        f.truncate(1 << 30)  # sparse
    with pytest.raises(DataError, match=r"list\.txt: larger than 64 MiB"):
        GTA5(tmp_path / "g", list_file=tmp_path / "list.txt")


def _touch_later(path: Path, seconds: float = 5.0) -> None:
    import os

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + int(seconds * 1e9)))


def test_dataset__raw_label_newer_than_its_train_ids_is_mapped_from_raw(tmp_path: Path) -> None:
    """A label edited after ``rccr data prepare``: its stale train-id file is not used."""
    from rccr.data.prepare import prepare_dataset

    root = make_gta5(tmp_path)
    prepare_dataset("gta5", root, workers=1, progress=False)
    first = GTA5(root, transform=NATIVE).pairs[1]
    write_gray_label(first.label, np.full((HEIGHT, WIDTH), 7))  # road (label id 7)
    with pytest.warns(UserWarning, match=r"1 raw label is newer than its train-id file") as seen:
        ds = GTA5(root, transform=NATIVE)
    assert str(first.label) in str(seen[0].message) and "rccr data prepare" in str(seen[0].message)
    assert ds.label_source == "train_ids" and (ds[1].label == 0).all()  # road's train id
    assert np.array_equal(ds[0].label, GTA5(root, transform=NATIVE, labels="raw")[0].label)


OPENERS = {"gta5": GTA5, "synthia": Synthia, "cityscapes": Cityscapes}
MAKERS = {"gta5": make_gta5, "synthia": make_synthia, "cityscapes": make_cityscapes}


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("gta5", "labels"),
        ("gta5", "images"),
        ("synthia", "GT/LABELS"),
        ("synthia", "RGB"),
        ("cityscapes", "gtFine/train"),
        ("cityscapes", "leftImg8bit/train"),
    ],
)
def test_dataset__missing_folder_error_names_it(tmp_path: Path, name: str, folder: str) -> None:
    MAKERS[name](tmp_path)
    shutil.rmtree(tmp_path / folder)
    with pytest.raises(DataError, match=str(tmp_path / folder)):
        OPENERS[name](tmp_path)


def test_dataset__missing_folder_given_relative_says_relative_to_what(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative root (a run's config.yaml from before paths were stored absolute, read
    by a dashboard started elsewhere) is named with the folder it was taken against."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as info:
        OPENERS["gta5"](Path("data/gta5"))
    assert str(info.value).startswith(f"data/gta5/images: folder not found (relative to "
                                      f"{tmp_path}); expected images")  # fmt: skip
    with pytest.raises(DataError, match=rf"^{tmp_path}/gta5/images: folder not found; "):
        OPENERS["gta5"](tmp_path / "gta5")  # absolute: nothing to add


def test_dataset__missing_label_error_names_it(tmp_path: Path) -> None:
    make_gta5(tmp_path)
    (tmp_path / "labels" / "00002.png").unlink()
    with pytest.raises(DataError, match=str(tmp_path / "labels" / "00002.png")):
        GTA5(tmp_path)


def test_dataset__empty_image_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(DataError, match=r"no \.png images"):
        GTA5(tmp_path)


def test_dataset__corrupt_image_error_names_it(tmp_path: Path) -> None:
    ds = _open("gta5", tmp_path)
    ds.pairs[1].image.write_bytes(ds.pairs[1].image.read_bytes()[:40])
    with pytest.raises(DataError, match=str(ds.pairs[1].image)):
        ds[1]


def test_dataset__label_of_wrong_size_error_names_it(tmp_path: Path) -> None:
    ds = _open("cityscapes", tmp_path)
    write_gray_label(ds.pairs[0].label, np.zeros((HEIGHT + 1, WIDTH)))
    with pytest.raises(DataError, match=rf"{ds.pairs[0].label}: label is 24x17 .* is 24x16"):
        ds[0]


def test_dataset__unknown_label_values_error_names_file(tmp_path: Path) -> None:
    ds = _open("cityscapes", tmp_path)
    write_gray_label(ds.pairs[0].label, np.full((HEIGHT, WIDTH), 40))
    with pytest.raises(
        DataError, match=rf"{ds.pairs[0].label}: label values 40 are not Cityscapes"
    ):
        ds[0]


def test_dataset__bad_prepared_label_values_error(tmp_path: Path) -> None:
    ds = _open("synthia", tmp_path)
    for pair in ds.pairs:
        write_gray_label(pair.train_ids, np.full((HEIGHT, WIDTH), 19))
    with pytest.raises(DataError, match="label values 19 are not train ids"):
        Synthia(tmp_path, transform=NATIVE)[0]


def test_cityscapes__unknown_split_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split 'test'"):
        Cityscapes(make_cityscapes(tmp_path), split="test")


def test_cityscapes__extra_image_without_label_is_reported(tmp_path: Path) -> None:
    make_cityscapes(tmp_path)
    image, label = cityscapes_files(tmp_path, "val", "lindau", 5)
    write_rgb(image, np.random.default_rng(1))
    with pytest.raises(DataError, match=str(label)):
        Cityscapes(tmp_path, split="val")


@pytest.mark.skipif(not REAL_SAMPLE.is_dir(), reason="shared/realdata sample not present")
def test_cityscapes__reads_real_sample() -> None:
    ds = Cityscapes(REAL_SAMPLE, split="val", transform=NATIVE)
    assert len(ds) == 1
    sample = ds[0]
    assert sample.image.shape == (3, 128, 256)
    values = set(np.unique(sample.label.numpy()))
    assert values <= set(range(19)) | {255}
    assert {0, 2, 10, 13} <= values  # a street scene: road, building, sky, car
