"""rccr.viz.images: grids, palette and region figures draw exactly the data given."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from rccr import viz
from rccr.analysis.regions import RegionSample
from rccr.data.labels import CLASS_NAMES, IGNORE_INDEX, colorize


def _images(fig: Figure) -> list[AxesImage]:
    return [image for ax in fig.axes for image in ax.get_images()]


def _legend_labels(fig: Figure) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_image_grid__draws_images_labels_masks_and_maps() -> None:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 16, 32, generator=g)  # (3, H, W)
    label = torch.randint(0, 3, (16, 32), generator=g)
    label[0, 0] = IGNORE_INDEX
    mask, confidence = label == 1, torch.rand(16, 32, generator=g)
    fig = viz.image_grid([[image, label], [mask, confidence]], col_titles=["a", "b"])
    assert isinstance(fig, viz.NotebookFigure) and fig.photo
    drawn = [np.asarray(im.get_array()) for im in _images(fig)]
    np.testing.assert_allclose(drawn[0], image.permute(1, 2, 0).numpy())
    np.testing.assert_array_equal(drawn[1], colorize(label.numpy()))
    np.testing.assert_array_equal(drawn[2], mask.numpy())
    np.testing.assert_allclose(drawn[3], confidence.numpy())
    assert _images(fig)[3].get_clim() == (0, 1)
    assert _legend_labels(fig) == list(CLASS_NAMES[:3])  # 255 is not a class
    assert [ax.get_title() for ax in fig.axes[:2]] == ["a", "b"]


def test_image_grid__boxes_scale_to_smaller_maps() -> None:
    image, grid = torch.zeros(3, 32, 64), torch.zeros(4, 8, dtype=torch.long)  # stride 8
    fig = viz.image_grid([[image, grid]], boxes=[(8, 16, 16, 24)], legend=False)
    boxes = [[p for p in ax.patches if isinstance(p, Rectangle)] for ax in fig.axes[:2]]
    assert [(r.get_y() + 0.5, r.get_x() + 0.5, r.get_height(), r.get_width())
            for r in (boxes[0][0], boxes[1][0])] == [(8, 16, 16, 24), (1, 2, 2, 3)]  # fmt: skip


def test_image_grid__rejects_a_volume() -> None:
    with pytest.raises(ValueError, match=r"shape \(2, 3, 4, 5\)"):
        viz.image_grid([[np.zeros((2, 3, 4, 5))]])


def test_palette_figure__names_every_class() -> None:
    texts = [t.get_text() for t in viz.palette_figure().axes[0].texts]
    assert texts == [f"{c} {name}" for c, name in enumerate(CLASS_NAMES)]


def _region_sample() -> RegionSample:
    g = torch.Generator().manual_seed(0)
    h, w, stride = 4, 8, 8
    anchor_cells = torch.tensor([[1, 2], [1, 3], [2, 2], [2, 3]])  # the box: rows 1-2, cols 2-3
    negative_labels = torch.tensor([0, 0, 1, 2, 2, 2])
    anchor_labels = torch.tensor([0, 1, 1, 0])
    return RegionSample(
        tgt_image=torch.rand(3, h * stride, w * stride, generator=g),
        aug_image=torch.rand(3, h * stride, w * stride, generator=g),
        box=(8, 16, 16, 16), stride=stride,
        pseudo_label=torch.randint(0, 3, (h, w), generator=g), confidence=torch.rand(h, w),
        anchor_cells=anchor_cells, anchor_labels=anchor_labels,
        anchor_confidence=torch.tensor([0.9, 0.8, 0.1, 0.2]),
        anchor_kept=torch.tensor([True, True, False, False]),
        positive_similarity=torch.tensor([0.5, 0.4, 0.3, 0.2]),
        negative_cells=torch.zeros(6, 2, dtype=torch.long),
        negative_domains=torch.tensor([0, 1, 0, 1, 0, 1]), negative_labels=negative_labels,
        negative_removed=anchor_labels[:, None] == negative_labels[None, :], loss=1.25,
    )  # fmt: skip


def test_region_figure__anchors_similarity_and_negatives() -> None:
    sample = _region_sample()
    fig = viz.region_figure(sample)
    confidence_ax, similarity_ax, negatives_ax = fig.axes[3], fig.axes[4], fig.axes[5]
    kept, dropped = confidence_ax.collections[:2]
    assert kept.get_offsets().tolist() == [[2, 1], [3, 1]]  # (col, row) of the kept anchors
    assert dropped.get_offsets().tolist() == [[2, 2], [3, 2]]
    background, overlay = similarity_ax.get_images()
    grey = 0.35 + 0.4 * sample.tgt_image.mean(dim=0).numpy()  # the clean image, dimmed
    np.testing.assert_allclose(np.asarray(background.get_array()), grey, rtol=1e-6)
    assert background.get_extent() == [-0.5, 7.5, 3.5, -0.5]  # under the 4 x 8 grid
    similarity = np.asarray(overlay.get_array())
    assert similarity[1, 2] == pytest.approx(0.5) and np.isnan(similarity[0, 0])
    assert overlay.get_clim() == pytest.approx((0.2, 0.5))  # this step's range, not -1..1
    widths = [p.get_width() for p in negatives_ax.patches]
    # Bars of all negatives per label (0, 1, 2), then the removed part: the kept anchors
    # have labels 0 and 1, so label 2's negatives are never removed.
    assert widths == [2, 1, 3, 2, 1, 0]
    assert fig.get_suptitle() == (
        "CutMix box 16 px high x 16 px wide, top-left corner at row 8, column 16; loss 1.250"
    )
    assert fig.photo


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.93, 0.97, 0.99], (0.9, 1.0)),
        ([0.5, 0.5, 0.5], (0.45, 0.55)),
        ([-1.0, 1.0, 0.0], (-1, 1)),
    ],
)
def test_region_figure__similarity_scale_is_the_steps_range_rounded_out(
    values: list[float], expected: tuple[float, float]
) -> None:
    sample = _region_sample()
    sample = dataclasses.replace(
        sample, anchor_cells=sample.anchor_cells[:3], anchor_kept=sample.anchor_kept[:3],
        anchor_labels=sample.anchor_labels[:3], anchor_confidence=sample.anchor_confidence[:3],
        negative_removed=sample.negative_removed[:3], positive_similarity=torch.tensor(values),
    )  # fmt: skip
    overlay = viz.region_figure(sample).axes[4].get_images()[1]
    assert overlay.get_clim() == pytest.approx(expected)


def test_image_grid__a_column_range_sets_the_colour_scale() -> None:
    near_one = torch.full((4, 8), 0.95)
    near_one[0, 0] = 0.9
    fig = viz.image_grid([[near_one, near_one]], ranges=[None, (0.9, 1.0)], legend=False)
    default, narrow = _images(fig)
    assert default.get_clim() == (0, 1) and narrow.get_clim() == (0.9, 1.0)
