"""rccr.viz.charts: every chart shows the numbers it is given (checked on the artists)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from rccr import viz
from rccr.data.labels import CLASS_NAMES, NUM_CLASSES, PALETTE
from rccr.evaluation import EvalResult, confusion_matrix, iou_from_confusion, mean_iou
from rccr.runs import Run


def _result(seed: int) -> EvalResult:
    """An EvalResult of a random prediction against a random label."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, NUM_CLASSES, (40, 40), generator=g)
    pred = torch.where(torch.rand(40, 40, generator=g) < 0.6, label, torch.zeros_like(label))
    cm = confusion_matrix(pred, label, NUM_CLASSES)
    iou = iou_from_confusion(cm)
    return EvalResult("cityscapes", "val", "test", 1, cm.tolist(), (100 * iou).tolist(),
                      {"mIoU19": mean_iou(iou)})  # fmt: skip


def test_class_frequency_figure__shares_sum_to_100() -> None:
    counts = {"source": np.arange(NUM_CLASSES) + 1, "target": np.ones(NUM_CLASSES, int)}
    bars = viz.class_frequency_figure(counts).axes[0].patches
    heights = np.array([b.get_height() for b in bars]).reshape(2, NUM_CLASSES)
    np.testing.assert_allclose(heights.sum(axis=1), [100, 100])
    np.testing.assert_allclose(heights[0], 100 * counts["source"] / counts["source"].sum())


def _log_labels(ax: Any, which: str) -> tuple[list[str], list[str]]:
    """The tick labels shown on a log axis, and the 1-2-5 steps expected in its range."""
    ax.figure.canvas.draw()
    low, high = sorted(ax.get_ylim() if which == "y" else ax.get_xlim())
    ticks = ax.get_yticklabels() if which == "y" else ax.get_xticklabels()
    k = 1 if which == "y" else 0
    labels = [t.get_text() for t in ticks if low <= t.get_position()[k] <= high]
    steps = [m * 10.0**e for e in range(-4, 4) for m in (1, 2, 5)]
    return labels, [f"{v:g}" for v in steps if low <= v <= high]


def test_log_axes__labelled_at_1_2_5_steps_in_plain_numbers() -> None:
    counts = {"a": np.r_[np.ones(NUM_CLASSES - 1, int), 10_000]}  # shares 0.01 % .. 99.8 %
    labels, expected = _log_labels(viz.class_frequency_figure(counts).axes[0], "y")
    assert labels == expected and "0.01" in labels and "50" in labels
    records = [{"iteration": i, "loss_source": 6.0 / i} for i in range(1, 21)]  # 6 .. 0.3
    labels, expected = _log_labels(viz.loss_figure(records).axes[0], "y")
    assert labels == expected and {"0.5", "1", "2", "5"} <= set(labels)
    line = viz.line_figure([0.02, 1.0], {"a": [3.0, 40.0]}, "t", "n", logx=True, logy=True)
    for which, shown in (("x", {"0.05", "0.1", "0.2", "0.5"}), ("y", {"5", "10", "20"})):
        labels, expected = _log_labels(line.axes[0], which)
        assert labels == expected and shown <= set(labels)


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
    fig = lines[0].figure
    assert fig.axes[0].get_legend().get_bbox_to_anchor().x0 > fig.axes[0].bbox.x1  # at the side
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


def test_histogram_figure__series_share_their_bins() -> None:
    """One repeated value per series: bars on the values, over the range of all of them."""
    values = {"road": np.full(8, 0.4), "building": np.full(3, 0.45), "car": np.full(2, 0.1)}
    ax = viz.histogram_figure(values, "x", bins=7).axes[0]
    bars = [(round(p.get_x(), 6), round(p.get_width(), 6), p.get_height()) for p in ax.patches]
    full = [b for b in bars if b[2] > 0]
    assert {b[1] for b in bars} == {round(0.35 / 7, 6)}  # 7 bins from 0.1 to 0.45
    assert sorted(b[2] for b in full) == [2, 3, 8]
    assert min(b[0] for b in bars) == 0.1 and max(b[0] + b[1] for b in bars) == 0.45


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
