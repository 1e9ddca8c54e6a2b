"""Cityscapes in its own folder layout (the target domain).

::

    <root>/leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
    <root>/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png  (prepared)

Labels hold Cityscapes label ids, mapped to the 19 train ids with the dataset's own
definitions (``cityscapesscripts``). Images are resized to 1024x512 by default, as in DACS
(the authors' RCCR release instead crops its training images at full resolution:
``data.target_size``); for evaluation at full resolution keep the label at 2048x1024
(``JointTransform(resize=..., resize_label=False)``).
"""

from __future__ import annotations

import os
from pathlib import Path

from rccr.data.dataset import (
    LabelFormat,
    LabelSource,
    Pair,
    SegmentationDataset,
    list_files,
    require_dir,
    select_pairs,
)
from rccr.data.files import DataError
from rccr.data.labels import CITYSCAPES_ID_TO_TRAIN_ID_LUT, CITYSCAPES_KNOWN_IDS
from rccr.data.transforms import JointTransform, Size

__all__ = ["DEFAULT_SIZE", "LABEL_FORMAT", "SPLITS", "Cityscapes", "cityscapes_pairs"]

DEFAULT_SIZE = Size(1024, 512)
SPLITS = ("train", "val")
LABEL_FORMAT = LabelFormat(
    "Cityscapes label ids (0..33)", CITYSCAPES_ID_TO_TRAIN_ID_LUT, CITYSCAPES_KNOWN_IDS
)
_IMAGE_SUFFIX = "_leftImg8bit.png"


def cityscapes_pairs(root: str | os.PathLike, split: str) -> list[Pair]:
    """All image/label pairs of one split, sorted by image path.

    Raises:
        DataError: if the split's image or label folder is missing or holds no images.
        ValueError: for an unknown split.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: expected one of {SPLITS}")
    root = Path(root)
    image_dir = require_dir(root / "leftImg8bit" / split, f"<city>/*{_IMAGE_SUFFIX} images")
    label_dir = require_dir(root / "gtFine" / split, "<city>/*_gtFine_labelIds.png labels")
    images = list_files(image_dir, _IMAGE_SUFFIX)
    if not images:
        raise DataError(f"{image_dir}: no images found; expected <city>/*{_IMAGE_SUFFIX}")
    pairs = []
    for image in images:
        rel = image.relative_to(image_dir)
        stem = str(rel)[: -len(_IMAGE_SUFFIX)]
        pairs.append(
            Pair(
                image=image,
                label=label_dir / f"{stem}_gtFine_labelIds.png",
                train_ids=label_dir / f"{stem}_gtFine_labelTrainIds.png",
                name=rel.as_posix(),
            )
        )
    return pairs


class Cityscapes(SegmentationDataset):
    """Cityscapes ``train`` or ``val``.

    Args:
        root: the folder holding ``leftImg8bit/`` and ``gtFine/``.
        split: "train" or "val".
        transform: joint transform; default resizes to 1024x512.
        list_file: optional file of image names (``<city>/<name>_leftImg8bit.png``).
        labels: see :class:`SegmentationDataset`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        transform: JointTransform | None = None,
        list_file: str | os.PathLike | None = None,
        labels: LabelSource = "auto",
    ) -> None:
        pairs = select_pairs(cityscapes_pairs(root, split), list_file)
        super().__init__(pairs, LABEL_FORMAT, transform or JointTransform(DEFAULT_SIZE), labels)
