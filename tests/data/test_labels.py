"""Label maps against the datasets' own definitions."""

from __future__ import annotations

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as cityscapes_labels

from rccr.data import labels as L


@pytest.mark.parametrize("label", cityscapes_labels, ids=lambda lab: f"{lab.id}-{lab.name}")
def test_cityscapes_map__matches_cityscapesscripts_for_every_id(label) -> None:
    expected = label.trainId if 0 <= label.trainId <= 18 else 255
    assert L.train_id_of_cityscapes_id(label.id) == expected
    if label.id >= 0:
        assert L.CITYSCAPES_ID_TO_TRAIN_ID_LUT[label.id] == expected
        assert L.CITYSCAPES_KNOWN_IDS[label.id]


def test_cityscapes_map__license_plate_is_ignored() -> None:
    plate = next(lab for lab in cityscapes_labels if lab.name == "license plate")
    assert (plate.id, plate.trainId) == (-1, -1)
    assert L.train_id_of_cityscapes_id(-1) == 255


def test_cityscapes_map__unknown_ids_are_not_known() -> None:
    known = {lab.id for lab in cityscapes_labels if lab.id >= 0}
    for value in range(256):
        assert bool(L.CITYSCAPES_KNOWN_IDS[value]) == (value in known)
    with pytest.raises(KeyError):
        L.train_id_of_cityscapes_id(34)


@pytest.mark.parametrize(
    "lut", [L.CITYSCAPES_ID_TO_TRAIN_ID_LUT, L.SYNTHIA_ID_TO_TRAIN_ID_LUT], ids=["cs", "synthia"]
)
def test_lookup_table__total_over_uint8(lut: np.ndarray) -> None:
    assert lut.shape == (256,)
    assert set(np.unique(lut)) <= set(range(19)) | {255}


def test_classes__names_palette_and_ids_come_from_cityscapesscripts() -> None:
    by_train_id = {lab.trainId: lab for lab in cityscapes_labels if 0 <= lab.trainId < 19}
    assert len(L.CLASS_NAMES) == 19
    for train_id, name in enumerate(L.CLASS_NAMES):
        assert name == by_train_id[train_id].name
        assert tuple(L.PALETTE[train_id]) == by_train_id[train_id].color
        assert L.TRAIN_ID_TO_CITYSCAPES_ID[train_id] == by_train_id[train_id].id


def test_synthia_map__sixteen_classes_without_terrain_truck_train() -> None:
    names = {L.CLASS_NAMES[t] for t in L.SYNTHIA_ID_TO_TRAIN_ID.values()}
    assert len(names) == 16
    assert names.isdisjoint({"terrain", "truck", "train"})
    assert L.SYNTHIA_ID_TO_TRAIN_ID[3] == L.CLASS_NAMES.index("road")
    assert L.SYNTHIA_ID_TO_TRAIN_ID[1] == L.CLASS_NAMES.index("sky")
    assert L.SYNTHIA_ID_TO_TRAIN_ID[21] == L.CLASS_NAMES.index("wall")
    for raw in (
        0,
        13,
        14,
        16,
        18,
        20,
        22,
    ):  # void, parking, road-work, terrain, truck, train, lanes
        assert L.SYNTHIA_ID_TO_TRAIN_ID_LUT[raw] == 255
    assert L.SYNTHIA_KNOWN_IDS[:23].all() and not L.SYNTHIA_KNOWN_IDS[23:].any()


@pytest.mark.parametrize(
    ("n", "excluded"),
    [
        (19, set()),
        (16, {"terrain", "truck", "train"}),
        (13, {"terrain", "truck", "train", "wall", "fence", "pole"}),
    ],
)
def test_class_subset__contents(n: int, excluded: set[str]) -> None:
    subset = L.class_subset(n)
    assert len(subset) == n
    assert {L.CLASS_NAMES[t] for t in subset} == set(L.CLASS_NAMES) - excluded


def test_class_subset__unknown_size_raises() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        L.class_subset(12)


def test_colorize__uses_palette_and_blacks_out_ignore() -> None:
    ids = np.array([[0, 13, 255]])
    rgb = L.colorize(ids)
    assert rgb.shape == (1, 3, 3)
    assert tuple(rgb[0, 0]) == tuple(L.PALETTE[0])
    assert tuple(rgb[0, 1]) == tuple(L.PALETTE[13])
    assert tuple(rgb[0, 2]) == (0, 0, 0)


def test_colorize__values_past_255_are_black_and_the_image_is_uint8() -> None:
    """269 must not wrap to 13 (car) on its way to uint8, nor 256 to 0 (road); below 0 is
    clipped to road."""
    rgb = L.colorize(np.array([[269, 256, 19, 1000, -3]]))
    assert rgb.dtype == np.uint8
    assert [tuple(p) for p in rgb[0]] == [(0, 0, 0)] * 4 + [tuple(L.PALETTE[0])]
