"""rccr.viz: every figure shows the data it is given (checked on the drawn artists)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from rccr import viz
from rccr.data.labels import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES, PALETTE, colorize
from rccr.evaluate import EvalResult, confusion_matrix, iou_from_confusion, mean_iou
from rccr.regions import RegionSample
from rccr.runs import Run

PNG, JPEG = b"\x89PNG", b"\xff\xd8\xff"


def _result(seed: int) -> EvalResult:
    """An EvalResult of a random prediction against a random label."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, NUM_CLASSES, (40, 40), generator=g)
    pred = torch.where(torch.rand(40, 40, generator=g) < 0.6, label, torch.zeros_like(label))
    cm = confusion_matrix(pred, label, NUM_CLASSES)
    iou = iou_from_confusion(cm)
    return EvalResult("cityscapes", "val", "test", 1, cm.tolist(), (100 * iou).tolist(),
                      {"mIoU19": mean_iou(iou)})  # fmt: skip


def _images(fig: Figure) -> list[AxesImage]:
    return [image for ax in fig.axes for image in ax.get_images()]


def _legend_labels(fig: Figure) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


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


def test_class_frequency_figure__shares_sum_to_100() -> None:
    counts = {"source": np.arange(NUM_CLASSES) + 1, "target": np.ones(NUM_CLASSES, int)}
    bars = viz.class_frequency_figure(counts).axes[0].patches
    heights = np.array([b.get_height() for b in bars]).reshape(2, NUM_CLASSES)
    np.testing.assert_allclose(heights.sum(axis=1), [100, 100])
    np.testing.assert_allclose(heights[0], 100 * counts["source"] / counts["source"].sum())


def test_iou_table__classes_then_miou_in_percent() -> None:
    results = {"a": _result(0), "b": _result(1)}
    table = viz.iou_table(results)
    assert list(table.columns) == ["a", "b"]
    assert list(table.index) == [*CLASS_NAMES, "mIoU19"]
    np.testing.assert_allclose(table["b"].iloc[:NUM_CLASSES], np.round(results["b"].iou, 1))
    assert table.loc["mIoU19", "a"] == round(results["a"].miou["mIoU19"], 1)


def test_iou_figure__bar_heights_are_the_ious() -> None:
    results = {"a": _result(0), "b": _result(2)}
    ax = viz.iou_figure(results).axes[0]
    heights = np.array([b.get_height() for b in ax.patches]).reshape(2, NUM_CLASSES)
    np.testing.assert_allclose(heights, np.nan_to_num([r.iou for r in results.values()]))
    assert "mIoU19" in ax.get_legend().get_texts()[0].get_text()


def test_miou_figure__one_line_per_run_in_iteration_order() -> None:
    run = Run(path=Path("r"), evals={200: _result(1), 100: _result(0)})
    lines = viz.miou_figure({"r": run, "empty": Run(path=Path("e"))}).axes[0].get_lines()
    assert len(lines) == 1
    np.testing.assert_array_equal(lines[0].get_xdata(), [100, 200])
    np.testing.assert_allclose(lines[0].get_ydata(), [_result(i).miou["mIoU19"] for i in (0, 1)])


@pytest.mark.parametrize("with_eval", [False, True])
def test_loss_figure__each_loss_term_and_val(with_eval: bool) -> None:
    records: list[dict[str, Any]] = [
        {"iteration": i, "loss_source": 1.0 / i, "loss_mix": 2.0 / i, "lr": 0.1} for i in (1, 2)
    ]
    if with_eval:
        records[1]["val/mIoU19"] = 12.5
    fig = viz.loss_figure(records)
    assert len(fig.axes) == (2 if with_eval else 1)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert sorted(lines) == ["loss_mix", "loss_source"]  # lr is not a loss
    np.testing.assert_allclose(lines["loss_mix"].get_ydata(), [2.0, 1.0])
    if with_eval:
        assert list(fig.axes[1].get_lines()[0].get_ydata()) == [12.5]


def test_live_loss_plot__displays_once_then_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    import IPython.display

    calls: list[tuple[str, Figure]] = []

    class Handle:
        def update(self, figure: Figure) -> None:
            calls.append(("update", figure))

    def display(figure: Figure, display_id: bool = False) -> Handle:
        assert display_id
        calls.append(("display", figure))
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    live = viz.LiveLossPlot([{"iteration": 1, "loss": 3.0}])
    for i in (2, 3):
        live({"iteration": i, "loss": 3.0 / i})
    assert [kind for kind, _ in calls] == ["display", "update"]
    np.testing.assert_allclose(calls[-1][1].axes[0].get_lines()[0].get_ydata(), [3, 1.5, 1])


def test_line_figure__series_and_markers() -> None:
    fig = viz.line_figure([1, 2, 3], {"a": [1, 2, 3], "b": torch.tensor([3.0, 2, 1])}, "x", "y",
                          logx=True, vlines={"v": 2.0})  # fmt: skip
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b", "v"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [3, 2, 1])
    assert ax.get_xscale() == "log"


def test_histogram_figure__counts_every_value() -> None:
    values = {"a": torch.rand(50), "b": np.random.default_rng(0).random((5, 6))}
    ax = viz.histogram_figure(values, "x", bins=10).axes[0]
    assert sum(p.get_height() for p in ax.patches) == 80


def test_bar_figure__one_bar_per_value() -> None:
    ax = viz.bar_figure({"a": 1.0, "b": 3.0}, "x").axes[0]
    assert [p.get_width() for p in ax.patches] == [1.0, 3.0]


def test_bank_fill_figure__stacks_rows_by_step() -> None:
    steps = [np.array([0, 0]), np.array([0, 0, 1, 1]), np.array([1, 1, 2, 2])]
    ax = viz.bank_fill_figure(steps, capacity=4).axes[0]
    tops = np.zeros(3)
    for bar in ax.patches:
        tops[round(bar.get_x() + bar.get_width() / 2)] += bar.get_height()
    np.testing.assert_array_equal(tops, [2, 4, 4])
    assert [line.get_ydata()[0] for line in ax.get_lines()] == [4]


def test_tsne_figure__colours_by_class_and_splits_domains() -> None:
    points, labels = np.random.default_rng(0).random((6, 2)), np.array([0, 0, 1, 1, 13, 13])
    domain = np.array([0, 1, 0, 1, 0, 1])
    by_class, by_domain = viz.tsne_figure(points, labels, domain).axes
    scatter = next(c for c in by_class.collections if isinstance(c, PathCollection))
    np.testing.assert_allclose(scatter.get_facecolors()[:, :3], PALETTE[labels] / 255.0)
    assert [len(c.get_offsets()) for c in by_domain.collections] == [3, 3]


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
    similarity = np.asarray(similarity_ax.get_images()[0].get_array())
    assert similarity[1, 2] == pytest.approx(0.5) and np.isnan(similarity[0, 0])
    widths = [p.get_width() for p in negatives_ax.patches]
    # Bars of all negatives per label (0, 1, 2), then the removed part: the kept anchors
    # have labels 0 and 1, so label 2's negatives are never removed.
    assert widths == [2, 1, 3, 2, 1, 0]
    assert "loss 1.250" in fig.get_suptitle()
    assert fig.photo
