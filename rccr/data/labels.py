"""Class definitions and label-id maps for Cityscapes, GTA5 and SYNTHIA.

Every dataset in the workbench is mapped onto the 19 Cityscapes *training* classes
("train ids" 0..18) with ``IGNORE_INDEX = 255`` for everything else.

- Cityscapes and GTA5 annotate with Cityscapes *label ids* (0..33); the map to train ids
  is built from ``cityscapesscripts.helpers.labels``, the dataset's own definitions. The
  one negative entry there, 'license plate' (id -1, train id -1), is mapped to 255.
- SYNTHIA-RAND-CITYSCAPES has its own ids (0..22). It covers 16 of the 19 classes
  (no terrain, truck or train); results on it are reported as mIoU16 and as mIoU13,
  which also leaves out wall, fence and pole.

Lookup tables are total over 0..255 (unknown values map to 255) and come with a
``*_KNOWN`` mask that tells which raw values a dataset may contain, so a loader can
report unknown values instead of silently ignoring them.
"""

from __future__ import annotations

import numpy as np
from cityscapesscripts.helpers.labels import labels as _cityscapes_labels

__all__ = [
    "CITYSCAPES_ID_TO_TRAIN_ID",
    "CITYSCAPES_ID_TO_TRAIN_ID_LUT",
    "CITYSCAPES_KNOWN_IDS",
    "CITYSCAPES_LABEL_PALETTE",
    "CLASS_NAMES",
    "CLASS_SUBSETS",
    "IGNORE_INDEX",
    "NUM_CLASSES",
    "PALETTE",
    "SYNTHIA_ID_TO_TRAIN_ID",
    "SYNTHIA_ID_TO_TRAIN_ID_LUT",
    "SYNTHIA_KNOWN_IDS",
    "SYNTHIA_NUM_IDS",
    "TRAIN_ID_TO_CITYSCAPES_ID",
    "class_subset",
    "colorize",
    "train_id_of_cityscapes_id",
]

IGNORE_INDEX = 255
NUM_CLASSES = 19

_train_labels = sorted(
    (lab for lab in _cityscapes_labels if 0 <= lab.trainId < NUM_CLASSES),
    key=lambda lab: lab.trainId,
)
assert [lab.trainId for lab in _train_labels] == list(range(NUM_CLASSES))

CLASS_NAMES: tuple[str, ...] = tuple(lab.name for lab in _train_labels)
"""The 19 training classes, indexed by train id ('road', 'sidewalk', ..., 'bicycle')."""

PALETTE: np.ndarray = np.array([lab.color for lab in _train_labels], dtype=np.uint8)
"""(19, 3) uint8 RGB colour of each train id, the official Cityscapes colours."""
PALETTE.setflags(write=False)

TRAIN_ID_TO_CITYSCAPES_ID: tuple[int, ...] = tuple(lab.id for lab in _train_labels)
"""Cityscapes label id of each train id (used to write labels in the GTA5 format)."""


CITYSCAPES_ID_TO_TRAIN_ID: dict[int, int] = {
    lab.id: (lab.trainId if 0 <= lab.trainId < NUM_CLASSES else IGNORE_INDEX)
    for lab in _cityscapes_labels
}
"""Every Cityscapes label id (including -1, 'license plate') -> train id or 255."""


def train_id_of_cityscapes_id(label_id: int) -> int:
    """Train id (0..18) of a Cityscapes label id, or 255 for an ignored class.

    Negative train ids in cityscapesscripts ('license plate': -1) become 255.

    Raises:
        KeyError: if ``label_id`` is not a Cityscapes label id.
    """
    return CITYSCAPES_ID_TO_TRAIN_ID[label_id]


CITYSCAPES_ID_TO_TRAIN_ID_LUT = np.full(256, IGNORE_INDEX, dtype=np.uint8)
CITYSCAPES_KNOWN_IDS = np.zeros(256, dtype=bool)
for _id, _train_id in CITYSCAPES_ID_TO_TRAIN_ID.items():
    if _id >= 0:  # -1 cannot occur in a PNG
        CITYSCAPES_ID_TO_TRAIN_ID_LUT[_id] = _train_id
        CITYSCAPES_KNOWN_IDS[_id] = True
CITYSCAPES_ID_TO_TRAIN_ID_LUT.setflags(write=False)
CITYSCAPES_KNOWN_IDS.setflags(write=False)

CITYSCAPES_LABEL_PALETTE = np.zeros((256, 3), dtype=np.uint8)
"""(256, 3) colour of each Cityscapes label id: the palette of a GTA5 label PNG."""
for _lab in _cityscapes_labels:
    if _lab.id >= 0:
        CITYSCAPES_LABEL_PALETTE[_lab.id] = _lab.color
CITYSCAPES_LABEL_PALETTE.setflags(write=False)

# SYNTHIA-RAND-CITYSCAPES ids (its README): 0 void, 1 sky, 2 building, 3 road, 4 sidewalk,
# 5 fence, 6 vegetation, 7 pole, 8 car, 9 traffic sign, 10 pedestrian, 11 bicycle,
# 12 motorcycle, 13 parking-slot, 14 road-work, 15 traffic light, 16 terrain, 17 rider,
# 18 truck, 19 bus, 20 train, 21 wall, 22 lanemarking. The 16-class protocol (DACS,
# AdaptSegNet lineage) keeps the 16 that Cityscapes evaluates and SYNTHIA renders well;
# terrain, truck, train, parking-slot, road-work, lanemarking and void are ignored.
SYNTHIA_NUM_IDS = 23
SYNTHIA_ID_TO_TRAIN_ID: dict[int, int] = {
    3: 0,  # road
    4: 1,  # sidewalk
    2: 2,  # building
    21: 3,  # wall
    5: 4,  # fence
    7: 5,  # pole
    15: 6,  # traffic light
    9: 7,  # traffic sign
    6: 8,  # vegetation
    1: 10,  # sky
    10: 11,  # person
    17: 12,  # rider
    8: 13,  # car
    19: 15,  # bus
    12: 17,  # motorcycle
    11: 18,  # bicycle
}
"""SYNTHIA id -> train id for the 16 evaluated classes; every other id in 0..22 is 255."""

SYNTHIA_ID_TO_TRAIN_ID_LUT = np.full(256, IGNORE_INDEX, dtype=np.uint8)
for _id, _train_id in SYNTHIA_ID_TO_TRAIN_ID.items():
    SYNTHIA_ID_TO_TRAIN_ID_LUT[_id] = _train_id
SYNTHIA_ID_TO_TRAIN_ID_LUT.setflags(write=False)
SYNTHIA_KNOWN_IDS = np.zeros(256, dtype=bool)
SYNTHIA_KNOWN_IDS[:SYNTHIA_NUM_IDS] = True
SYNTHIA_KNOWN_IDS.setflags(write=False)

_SYNTHIA16 = tuple(sorted(SYNTHIA_ID_TO_TRAIN_ID.values()))
CLASS_SUBSETS: dict[int, tuple[int, ...]] = {
    19: tuple(range(NUM_CLASSES)),
    16: _SYNTHIA16,
    13: tuple(t for t in _SYNTHIA16 if CLASS_NAMES[t] not in ("wall", "fence", "pole")),
}
"""Train ids in each evaluation subset: all 19, SYNTHIA's 16, and its 13 (no wall/fence/pole)."""


def class_subset(num_classes: int) -> tuple[int, ...]:
    """Train ids averaged by mIoU``num_classes`` (19, 16 or 13).

    Raises:
        ValueError: for any other number.
    """
    if num_classes not in CLASS_SUBSETS:
        raise ValueError(f"no {num_classes}-class subset; expected one of {sorted(CLASS_SUBSETS)}")
    return CLASS_SUBSETS[num_classes]


def colorize(train_ids: np.ndarray) -> np.ndarray:
    """Colour a train-id map with the Cityscapes palette; 255 (and anything else) is black.

    Args:
        train_ids: (H, W) integer array of train ids.

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:NUM_CLASSES] = PALETTE
    return lut[np.clip(train_ids, 0, 255).astype(np.uint8)]
