"""SYNTHIA-RAND-CITYSCAPES in its own folder layout (a source domain).

::

    <root>/RGB/0000000.png
    <root>/GT/LABELS/0000000.png                (16-bit PNG; class id in the first channel)
    <root>/GT/LABELS/0000000_labelTrainIds.png  (prepared, 8-bit)

SYNTHIA has its own ids (0..22); 16 of them map to Cityscapes train ids. Images are
resized to 1280x760 by default, as in DACS and RCCR.
"""

from __future__ import annotations

import os
from pathlib import Path

from rccr.data.dataset import (
    LabelFormat,
    LabelSource,
    Pair,
    SegmentationDataset,
    pairs_by_name,
    select_pairs,
)
from rccr.data.labels import SYNTHIA_ID_TO_TRAIN_ID_LUT, SYNTHIA_KNOWN_IDS, SYNTHIA_NUM_IDS
from rccr.data.transforms import JointTransform, Size

__all__ = ["DEFAULT_SIZE", "LABEL_FORMAT", "Synthia", "synthia_pairs"]

DEFAULT_SIZE = Size(1280, 760)
LABEL_FORMAT = LabelFormat(
    f"SYNTHIA class ids (0..{SYNTHIA_NUM_IDS - 1})", SYNTHIA_ID_TO_TRAIN_ID_LUT, SYNTHIA_KNOWN_IDS
)


def synthia_pairs(root: str | os.PathLike) -> list[Pair]:
    """All image/label pairs, sorted by image name.

    Raises:
        DataError: if ``RGB/`` or ``GT/LABELS/`` is missing, or there are no images.
    """
    root = Path(root)
    return pairs_by_name(root / "RGB", root / "GT" / "LABELS", "0000000.png")


class Synthia(SegmentationDataset):
    """The SYNTHIA-RAND-CITYSCAPES dataset.

    Args:
        root: the folder holding ``RGB/`` and ``GT/LABELS/``.
        transform: joint transform; default resizes to 1280x760.
        list_file: optional file of image names (``0000000.png``).
        labels: see :class:`SegmentationDataset`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: JointTransform | None = None,
        list_file: str | os.PathLike | None = None,
        labels: LabelSource = "auto",
    ) -> None:
        pairs = select_pairs(synthia_pairs(root), list_file)
        super().__init__(pairs, LABEL_FORMAT, transform or JointTransform(DEFAULT_SIZE), labels)
