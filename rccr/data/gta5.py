"""GTA5 ("Playing for Data") in its own folder layout (a source domain).

::

    <root>/images/00001.png
    <root>/labels/00001.png                (palette PNG; pixel values are Cityscapes label ids)
    <root>/labels/00001_labelTrainIds.png  (prepared)

Images are resized to 1280x720 by default, as in DACS and RCCR.
"""

from __future__ import annotations

import os
from pathlib import Path

from rccr.data.cityscapes import LABEL_FORMAT
from rccr.data.dataset import (
    LabelSource,
    Pair,
    SegmentationDataset,
    pairs_by_name,
    select_pairs,
)
from rccr.data.transforms import JointTransform, Size

__all__ = ["DEFAULT_SIZE", "GTA5", "LABEL_FORMAT", "gta5_pairs"]

DEFAULT_SIZE = Size(1280, 720)


def gta5_pairs(root: str | os.PathLike) -> list[Pair]:
    """All image/label pairs, sorted by image name.

    Raises:
        DataError: if ``images/`` or ``labels/`` is missing, or there are no images.
    """
    root = Path(root)
    return pairs_by_name(root / "images", root / "labels", "00001.png")


class GTA5(SegmentationDataset):
    """The GTA5 dataset.

    Args:
        root: the folder holding ``images/`` and ``labels/``.
        transform: joint transform; default resizes to 1280x720.
        list_file: optional file of image names (``00001.png``).
        labels: see :class:`SegmentationDataset`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: JointTransform | None = None,
        list_file: str | os.PathLike | None = None,
        labels: LabelSource = "auto",
    ) -> None:
        pairs = select_pairs(gta5_pairs(root), list_file)
        super().__init__(pairs, LABEL_FORMAT, transform or JointTransform(DEFAULT_SIZE), labels)
