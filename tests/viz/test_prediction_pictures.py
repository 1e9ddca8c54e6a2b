"""rccr.viz.prediction_pictures: class maps over images, panels side by side."""

from __future__ import annotations

import numpy as np
import pytest

from rccr.data.labels import PALETTE
from rccr.viz.prediction_pictures import overlay, side_by_side


def test_overlay__blends_class_colours_and_leaves_ignored_pixels() -> None:
    image = np.full((2, 3, 3), 100, np.uint8)
    labels = np.array([[0, 1, 255], [2, 255, 0]])
    out = overlay(image, labels, alpha=0.5)
    assert np.array_equal(out[0, 2], image[0, 2]) and np.array_equal(out[1, 1], image[1, 1])
    expected = (0.5 * 100 + 0.5 * PALETTE[1].astype(float) + 0.5).astype(np.uint8)
    assert np.array_equal(out[0, 1], expected)
    with pytest.raises(ValueError, match="differ in size"):
        overlay(image, labels[:, :2])


def test_side_by_side__panels_in_a_row_under_titles() -> None:
    a, b = np.zeros((10, 20, 3), np.uint8), np.full((10, 30, 3), 255, np.uint8)
    out = side_by_side([a, b], ["a very long title that cannot fit", "b"], gap=4)
    assert out.shape == (10 + 26, 20 + 4 + 30, 3)
    assert np.array_equal(out[26:, :20], a) and np.array_equal(out[26:, 24:], b)
    with pytest.raises(ValueError, match="height"):
        side_by_side([a, np.zeros((5, 5, 3), np.uint8)], ["a", "b"])


def test_prediction_picture__panels_for_image_predictions_and_truth_with_a_legend() -> None:
    from rccr.viz.prediction_pictures import prediction_picture

    image = np.zeros((20, 40, 3), np.uint8)
    first = np.zeros((20, 40), np.int64)  # all road
    second = np.full((20, 40), 13, np.int64)  # all car
    truth = np.full((20, 40), 255, np.int64)
    truth[:, :10] = 10  # sky, the rest ignored
    alone = prediction_picture(image, "x.png", [("a", first)])
    both = prediction_picture(image, "x.png", [("a", first), ("b", second)], truth)
    factor = 512 // 40
    assert alone.shape[1] == 2 * 40 * factor + 8  # image and one prediction
    assert both.shape[1] == 4 * 40 * factor + 3 * 8  # image, two predictions, truth
    legend = both[-20:]  # the legend's swatches: road, sky, car; never the ignore label
    colours = {tuple(c) for c in legend.reshape(-1, 3)}
    assert {tuple(PALETTE[0]), tuple(PALETTE[10]), tuple(PALETTE[13])} <= colours
