"""Image and label decoding, and atomic writes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from fake_datasets import write_gray_label, write_palette_label, write_rgb, write_synthia_label
from PIL import Image

from rccr.data.files import (
    DataError,
    encode_png,
    image_size,
    read_image,
    read_label,
    write_atomic,
)

IDS = np.arange(24 * 16).reshape(16, 24) % 34


def test_read_label__palette_png_gives_indices(tmp_path: Path) -> None:
    write_palette_label(tmp_path / "l.png", IDS)
    np.testing.assert_array_equal(read_label(tmp_path / "l.png"), IDS)


def test_read_label__grayscale_png_gives_values(tmp_path: Path) -> None:
    write_gray_label(tmp_path / "l.png", IDS)
    np.testing.assert_array_equal(read_label(tmp_path / "l.png"), IDS)


@pytest.mark.parametrize("channels", [3, 4])
def test_read_label__16bit_colour_png_gives_first_channel(tmp_path: Path, channels: int) -> None:
    write_synthia_label(tmp_path / "l.png", IDS % 23, channels=channels)
    label = read_label(tmp_path / "l.png")
    assert label.dtype == np.uint16
    np.testing.assert_array_equal(label, IDS % 23)


def test_read_label__16bit_gray_png(tmp_path: Path) -> None:
    Image.fromarray((IDS * 1000).astype(np.uint16)).save(tmp_path / "l.png")
    np.testing.assert_array_equal(read_label(tmp_path / "l.png"), IDS * 1000)


def test_read_label__rgb_colour_label_is_refused(tmp_path: Path) -> None:
    write_rgb(tmp_path / "l.png", np.random.default_rng(0))
    with pytest.raises(DataError, match=r"l\.png.*mode 'RGB'"):
        read_label(tmp_path / "l.png")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("reader", [read_image, read_label])
@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing", "empty"])
def test_readers__damaged_file_error_names_path(tmp_path: Path, reader, damage: str) -> None:
    path = tmp_path / "x.png"
    if reader is read_image:
        write_rgb(path, np.random.default_rng(0), size=(64, 64))
    else:
        write_gray_label(path, np.random.default_rng(0).integers(0, 34, (64, 64)))
    if damage == "truncated":
        _truncate(path)
    elif damage == "garbage":
        path.write_bytes(b"not a png at all" * 10)
    elif damage == "missing":
        path.unlink()
    else:
        path.write_bytes(b"")
    with pytest.raises(DataError, match=str(path)):
        reader(path)


def test_read_label__truncated_16bit_png_error_names_path(tmp_path: Path) -> None:
    path = tmp_path / "l.png"
    write_synthia_label(path, np.random.default_rng(0).integers(0, 23, (64, 64)))
    _truncate(path)
    with pytest.raises(DataError, match=str(path)):
        read_label(path)


def test_image_size__reads_header(tmp_path: Path) -> None:
    write_rgb(tmp_path / "i.png", np.random.default_rng(0), size=(30, 20))
    assert image_size(tmp_path / "i.png") == (30, 20)
    with pytest.raises(DataError, match=r"nope\.png"):
        image_size(tmp_path / "nope.png")


def test_encode_png__deterministic_and_round_trips(tmp_path: Path) -> None:
    ids = IDS.astype(np.uint8)
    data = encode_png(ids)
    assert data == encode_png(ids.copy())
    (tmp_path / "l.png").write_bytes(data)
    np.testing.assert_array_equal(read_label(tmp_path / "l.png"), ids)


def test_encode_png__palette_gives_p_mode(tmp_path: Path) -> None:
    palette = np.tile(np.arange(256, dtype=np.uint8)[:, None], (1, 3))
    (tmp_path / "l.png").write_bytes(encode_png(IDS.astype(np.uint8), palette=palette))
    with Image.open(tmp_path / "l.png") as img:
        assert img.mode == "P"
    np.testing.assert_array_equal(read_label(tmp_path / "l.png"), IDS)


def test_write_atomic__replaces_file(tmp_path: Path) -> None:
    write_atomic(tmp_path / "f", b"old")
    write_atomic(tmp_path / "f", b"new")
    assert (tmp_path / "f").read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["f"]


def test_write_atomic__failed_write_keeps_previous_file(tmp_path: Path, monkeypatch) -> None:
    write_atomic(tmp_path / "f", b"old")

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(tmp_path / "f", b"new")
    assert (tmp_path / "f").read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]
