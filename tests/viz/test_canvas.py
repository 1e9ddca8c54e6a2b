"""rccr.viz.canvas: array conversion, palette colours, and the figure notebooks show."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from rccr import viz
from rccr.data.labels import IGNORE_INDEX, PALETTE

PNG, JPEG = b"\x89PNG", b"\xff\xd8\xff"


@pytest.mark.parametrize(
    ("value", "dtype"),
    [(torch.ones(2, 3, dtype=torch.bfloat16), np.float32), (torch.arange(4), np.int64),
     (np.zeros((2, 2), np.uint8), np.uint8), ([1.5, 2.5], np.float64)],
)  # fmt: skip
def test_to_numpy__tensors_and_arrays(value: Any, dtype: type) -> None:
    out = viz.to_numpy(value)
    assert isinstance(out, np.ndarray) and out.dtype == dtype
    np.testing.assert_array_equal(out, np.asarray(torch.as_tensor(value).float()).astype(dtype))


def test_class_colors__palette_and_black_for_ignore() -> None:
    colors = viz.class_colors([0, 18, IGNORE_INDEX])
    np.testing.assert_allclose(colors[:2], PALETTE[[0, 18]] / 255.0)
    assert colors[2] == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(("photo", "magic", "other"), [(False, PNG, "_repr_jpeg_"),
                                                       (True, JPEG, "_repr_png_")])  # fmt: skip
def test_notebook_figure__one_format_for_ipython(photo: bool, magic: bytes, other: str) -> None:
    fig = viz.NotebookFigure(photo=photo)
    fig.subplots().plot([0, 1], [1, 0])
    shown = fig._repr_jpeg_() if photo else fig._repr_png_()
    assert shown is not None and shown.startswith(magic)
    assert getattr(fig, other)() is None
