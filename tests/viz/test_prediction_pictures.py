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
