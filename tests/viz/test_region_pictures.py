"""rccr.viz.region_pictures: pictures of a region-sampling step, pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rccr.data.labels import PALETTE
from rccr.viz import region_pictures as draw


@pytest.mark.parametrize(("width", "scale"), [(64, 8), (128, 4), (1024, 1), (2048, 1)])
def test_display_scale__whole_pixels_near_512(width: int, scale: int) -> None:
    assert draw.display_scale(width) == scale


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_enlarge__matches_a_naive_loop(factor: int) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (3, 5, 3), dtype=np.uint8)
    naive = np.zeros((3 * factor, 5 * factor, 3), np.uint8)
    for y in range(3 * factor):
        for x in range(5 * factor):
            naive[y, x] = rgb[y // factor, x // factor]
    np.testing.assert_array_equal(draw.enlarge(rgb, factor), naive)


def test_to_rgb__clamps_and_rounds() -> None:
    image = torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0]).view(1, 1, 5).expand(3, 1, 5)
    np.testing.assert_array_equal(draw.to_rgb(image)[0, :, 0], [0, 0, 128, 255, 255])


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.95])
def test_confidence_image__outlines_cells_above_the_threshold(threshold: float) -> None:
    confidence = torch.tensor([[0.5, 0.7, 0.9]])
    out = draw.confidence_image(confidence, threshold, stride=8, scale=1)
    assert out.shape == (8, 24, 3)
    for col, value in enumerate(confidence[0].tolist()):
        corner, centre = out[0, 8 * col], out[4, 8 * col + 4]
        assert (corner == 255).all() == (value > threshold)
        assert not (centre == 255).all()  # the colour itself shows inside the outline


def test_class_legend__one_swatch_per_class_in_its_colour() -> None:
    out = draw.class_legend([13, 0, 13, 255], width=400)
    assert out.shape[1] == 400
    for label in (0, 13):
        assert (out == PALETTE[label]).all(axis=-1).sum() >= 15 * 15
    assert (out == PALETTE[1]).all(axis=-1).sum() == 0  # sidewalk was not asked for


def test_outline_cell__frames_one_cell() -> None:
    out = draw.outline_cell(np.zeros((16, 32, 3), np.uint8), torch.tensor([1, 2]), 8, 1)
    assert tuple(out[8, 16]) == draw.BOX and tuple(out[15, 23]) == draw.BOX
    assert not out[12, 20].any() and not out[:8].any()


def test_outline_box__outlines_the_box_only() -> None:
    rgb = np.zeros((32, 48, 3), np.uint8)
    out = draw.outline_box(rgb, (8, 16, 8, 16), scale=1)  # top, left, height, width
    assert tuple(out[8, 20]) == draw.BOX and tuple(out[15, 31]) == draw.BOX
    assert not out[12, 24].any() and not out[0, 0].any()


def test_shade_cells__tints_the_cells_and_leaves_the_rest() -> None:
    rgb = np.zeros((16, 32, 3), np.uint8)
    out = draw.shade_cells(rgb, torch.tensor([[1, 2]]), [(255, 0, 0)], stride=8, scale=1)
    cell = out[8:16, 16:24]
    assert (cell[..., 0] > 0).all() and not cell[..., 1:].any()
    out[8:16, 16:24] = 0
    assert not out.any()


def test_mark_cells__kept_dots_in_class_colour_removed_crossed_out() -> None:
    rgb = np.full((32, 64, 3), 128, np.uint8)  # a 2 x 4 grid of 8-pixel cells, shown 2x
    cells, labels = torch.tensor([[0, 0], [1, 3]]), torch.tensor([13, 0])
    out = draw.mark_cells(rgb, cells, labels, torch.tensor([False, True]), stride=8, scale=2)
    np.testing.assert_array_equal(out[7, 7], PALETTE[13])  # centre of cell (0, 0)
    assert not out[23, 55].any()  # centre of cell (1, 3): the black cross
    assert (out[23, 55 - 5] == PALETTE[0]).all() or (out[23, 55 + 5] == PALETTE[0]).all()
