"""Tiny datasets written in the exact on-disk formats of the real ones.

- GTA5: RGB PNG images; labels are 8-bit palette ("P") PNGs of Cityscapes label ids with
  the Cityscapes colour palette.
- Cityscapes: ``leftImg8bit`` RGB PNGs; ``gtFine_labelIds`` 8-bit grayscale PNGs.
- SYNTHIA-RAND-CITYSCAPES: RGB PNGs; ``GT/LABELS`` 16-bit 3-channel PNGs with the class id
  in the first channel and an instance id in the second.

Label maps are random over the dataset's valid ids, so every mapped value is exercised.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from rccr.data.labels import CITYSCAPES_KNOWN_IDS, CITYSCAPES_LABEL_PALETTE, SYNTHIA_NUM_IDS

WIDTH, HEIGHT = 24, 16
CITYSCAPES_IDS = np.flatnonzero(CITYSCAPES_KNOWN_IDS)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def write_rgb(
    path: Path, rng: np.random.Generator, size: tuple[int, int] = (WIDTH, HEIGHT)
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def write_palette_label(path: Path, ids: np.ndarray) -> None:
    """An 8-bit palette PNG whose indices are ``ids``, as GTA5 ships its labels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.frombytes("P", (ids.shape[1], ids.shape[0]), ids.astype(np.uint8).tobytes())
    img.putpalette(CITYSCAPES_LABEL_PALETTE.tobytes())
    img.save(path)


def write_gray_label(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ids.astype(np.uint8)).save(path)


def write_synthia_label(path: Path, ids: np.ndarray, channels: int = 3) -> None:
    """A 16-bit PNG, class id in the first channel, instance id in the second."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((*ids.shape, channels), dtype=np.uint16)
    array[..., 0] = ids
    array[..., 1] = np.arange(ids.size, dtype=np.uint16).reshape(ids.shape) * 257
    if channels == 4:
        array[..., 3] = 65535
    # OpenCV writes channels in B, G, R(, A) order: reverse the colour channels.
    order = [2, 1, 0, 3][:channels]
    assert cv2.imwrite(str(path), np.ascontiguousarray(array[..., order]))


def random_ids(rng: np.random.Generator, valid: np.ndarray) -> np.ndarray:
    return rng.choice(valid, size=(HEIGHT, WIDTH)).astype(np.int64)


def make_gta5(root: Path, count: int = 3, seed: int = 0) -> Path:
    rng = _rng(seed)
    for i in range(1, count + 1):
        write_rgb(root / "images" / f"{i:05d}.png", rng)
        write_palette_label(root / "labels" / f"{i:05d}.png", random_ids(rng, CITYSCAPES_IDS))
    return root


def make_synthia(root: Path, count: int = 3, seed: int = 0) -> Path:
    rng = _rng(seed)
    for i in range(count):
        write_rgb(root / "RGB" / f"{i:07d}.png", rng)
        write_synthia_label(
            root / "GT" / "LABELS" / f"{i:07d}.png", random_ids(rng, np.arange(SYNTHIA_NUM_IDS))
        )
    return root


def cityscapes_files(root: Path, split: str, city: str, index: int) -> tuple[Path, Path]:
    stem = f"{city}_{index:06d}_000019"
    return (
        root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
        root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png",
    )


def make_cityscapes(root: Path, count: int = 2, seed: int = 0) -> Path:
    """``count`` frames per city: two train cities and one val city."""
    rng = _rng(seed)
    for split, city in (("train", "aachen"), ("train", "bochum"), ("val", "frankfurt")):
        for i in range(count):
            image, label = cityscapes_files(root, split, city, i)
            write_rgb(image, rng)
            write_gray_label(label, random_ids(rng, CITYSCAPES_IDS))
    return root


MAKERS = {"gta5": make_gta5, "cityscapes": make_cityscapes, "synthia": make_synthia}
