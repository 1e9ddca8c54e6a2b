"""Charts: class frequencies, IoU and mIoU, losses (also live), curves, the bank, t-SNE."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from rccr.data.labels import CLASS_NAMES, NUM_CLASSES
from rccr.evaluation import EvalResult
from rccr.method.memory_bank import DOMAIN_NAMES
from rccr.viz.canvas import DOMAIN_COLOURS, add_class_legend, class_colors, new_figure, to_numpy

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis

    from rccr.runs import Run

__all__ = [
    "LiveLossPlot",
    "bank_fill_figure",
    "bar_figure",
    "class_frequency_figure",
    "histogram_figure",
    "iou_figure",
    "iou_table",
    "line_figure",
    "loss_figure",
    "miou_figure",
    "tsne_figure",
]


def class_frequency_figure(pixels: Mapping[str, Sequence[int]]) -> Figure:
    """Share of labelled pixels per class, one bar per dataset (log scale).

    Args:
        pixels: dataset name -> 19 pixel counts (e.g. ``PrepareSummary.class_pixels``).
    """
    fig = new_figure(10, 3.4)
    ax = fig.subplots()
    width = 0.8 / max(1, len(pixels))
    x = np.arange(NUM_CLASSES)
    for k, (name, counts) in enumerate(pixels.items()):
        share = 100 * np.asarray(counts, dtype=np.float64) / max(1, int(np.sum(counts)))
        ax.bar(x + k * width, share, width, label=name)
    _log_scale(ax, "y")
    ax.set_xticks(x + width * (len(pixels) - 1) / 2, CLASS_NAMES, rotation=60, ha="right")
    ax.set_ylabel("% of labelled pixels (log scale)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return fig


def _log_scale(ax: Axes, which: str) -> None:
    """A log scale on ``ax``'s ``which`` ("x" or "y") axis, labelled in plain numbers at 1,
    2 and 5 of each decade (0.2, 0.5, 1, 2, ...), not only at the powers of ten, which a
    short range may not even contain."""
    if which == "x":
        ax.set_xscale("log")
    else:
        ax.set_yscale("log")
    axis: Axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def iou_table(results: Mapping[str, EvalResult]) -> pd.DataFrame:
    """Per-class IoU (rows) of each result (columns), then the mIoU rows; in percent."""
    import pandas as pd

    columns = {}
    for name, result in results.items():
        values = dict(zip(CLASS_NAMES, result.iou, strict=True)) | dict(result.miou)
        columns[name] = values
    return pd.DataFrame(columns).round(1)


def iou_figure(results: Mapping[str, EvalResult]) -> Figure:
    """Per-class IoU of each result as grouped bars, with each result's mIoU19 in the legend."""
    fig = new_figure(10, 3.4)
    ax = fig.subplots()
    width = 0.8 / max(1, len(results))
    x = np.arange(NUM_CLASSES)
    for k, (name, result) in enumerate(results.items()):
        label = f"{name} (mIoU19 {result.miou.get('mIoU19', float('nan')):.1f})"
        ax.bar(x + k * width, np.nan_to_num(result.iou), width, label=label)
    ax.set_xticks(x + width * (len(results) - 1) / 2, CLASS_NAMES, rotation=60, ha="right")
    ax.set_ylabel("IoU (%)")
    ax.legend(fontsize="small")
    return fig


def miou_figure(runs: Mapping[str, Run], key: str = "mIoU19") -> Figure:
    """``key`` on target val at every evaluated checkpoint of each run (legend at the side)."""
    fig = new_figure(7.5, 3.4)
    ax = fig.subplots()
    for name, run in runs.items():
        points = sorted((i, r.miou[key]) for i, r in run.evals.items() if key in r.miou)
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"target val {key} (%)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(alpha=0.3)
    return fig


def loss_figure(records: Sequence[Mapping[str, Any]], title: str = "") -> Figure:
    """The loss terms of ``metrics.jsonl`` records against iteration, and val mIoU if logged."""
    evals = [(r["iteration"], v) for r in records for k, v in r.items() if k.startswith("val/")]
    fig = new_figure(9 if evals else 6, 3.2)
    axes = fig.subplots(1, 2 if evals else 1, squeeze=False)[0]
    keys = sorted({k for r in records for k in r if k.startswith("loss")})
    for key in keys:
        points = [(r["iteration"], r[key]) for r in records if key in r]
        axes[0].plot(*zip(*points, strict=True), label=key, marker="." if len(points) < 3 else "")
    axes[0].set(xlabel="iteration", ylabel="loss (mean since last log)", title=title)
    if keys:
        _log_scale(axes[0], "y")
        axes[0].legend(fontsize="small")
    if evals:
        axes[1].plot(*zip(*evals, strict=True), marker="o")
        axes[1].set(xlabel="iteration", ylabel="target val mIoU (%)")
        axes[1].grid(alpha=0.3)
    return fig


class LiveLossPlot:
    """A loss plot that redraws in place in a notebook as records arrive.

    Pass it as ``on_log`` to ``rccr.train``; it shows itself on the first record and then
    updates the same output. Outside IPython it just collects the records.

    Args:
        records: records to start from (e.g. ``run.records`` of a run being resumed).
        title: the plot's title.
    """

    def __init__(self, records: Iterable[Mapping[str, Any]] = (), title: str = "") -> None:
        self.records: list[Mapping[str, Any]] = list(records)
        self.title = title
        self._handle: Any = None

    def __call__(self, record: Mapping[str, Any]) -> None:
        self.records.append(dict(record))
        try:
            from IPython.display import display
        except ImportError:
            return
        figure = loss_figure(self.records, self.title)
        if self._handle is None:
            self._handle = display(figure, display_id=True)
        else:
            self._handle.update(figure)


def line_figure(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    vlines: Mapping[str, float] | None = None,
) -> Figure:
    """One line per series against ``x``, with optional labelled vertical lines."""
    fig = new_figure(6, 3.2)
    ax = fig.subplots()
    for name, ys in series.items():
        ax.plot(x, to_numpy(ys), label=name)
    for k, (name, value) in enumerate((vlines or {}).items()):
        ax.axvline(value, color=f"C{k + len(series)}", linestyle="--", label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    for which, log in (("x", logx), ("y", logy)):
        if log:
            _log_scale(ax, which)
    ax.grid(alpha=0.3)
    if len(series) > 1 or vlines:
        ax.legend(fontsize="small")
    return fig


def histogram_figure(
    values: Mapping[str, Any],
    xlabel: str,
    bins: int = 40,
    vlines: Mapping[str, float] | None = None,
    title: str = "",
) -> Figure:
    """Overlaid histograms of each array in ``values``, with optional vertical lines.

    Every series is counted in the same ``bins`` bins, spanning all the values together,
    so that bars of one value line up across series (a series of one repeated value would
    otherwise get bins of its own around it).
    """
    fig = new_figure(6, 3.2)
    ax = fig.subplots()
    arrays = {name: to_numpy(v).ravel().astype(np.float64) for name, v in values.items()}
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays.values()] or [np.zeros(0)])
    edges = np.histogram_bin_edges(finite if finite.size else np.zeros(1), bins=bins)
    for name, a in arrays.items():
        ax.hist(a, bins=edges.tolist(), alpha=0.6, label=name)
    for k, (name, value) in enumerate((vlines or {}).items()):
        ax.axvline(value, color=f"C{k + len(values)}", linestyle="--", label=name)
    ax.set(xlabel=xlabel, ylabel="count", title=title)
    ax.legend(fontsize="small")
    return fig


def bar_figure(values: Mapping[str, float], xlabel: str, title: str = "") -> Figure:
    """Horizontal bars, one per named value."""
    fig = new_figure(6, 0.8 + 0.2 * len(values))
    ax = fig.subplots()
    names = list(values)
    ax.barh(names, [values[n] for n in names])
    ax.invert_yaxis()
    ax.set(xlabel=xlabel, title=title)
    return fig


def bank_fill_figure(steps: Sequence[Any], capacity: int) -> Figure:
    """How a memory bank fills: after each write, its rows stacked by the step that wrote them.

    Args:
        steps: per write, the ``step`` column of the bank's contents after it (the last
            element of ``MemoryBank.contents()``), each (size,).
        capacity: the bank's capacity, drawn as a line.
    """
    fig = new_figure(6, 3.2)
    ax = fig.subplots()
    arrays = [to_numpy(s).astype(np.int64) for s in steps]
    written = sorted({int(v) for a in arrays for v in np.unique(a)})
    bottom = np.zeros(len(arrays))
    for k, step in enumerate(written):
        counts = np.array([(a == step).sum() for a in arrays], dtype=np.float64)
        ax.bar(
            range(len(arrays)),
            counts,
            bottom=bottom,
            color=f"C{k % 10}",
            label=f"rows from step {step}",
        )
        bottom += counts
    ax.axhline(capacity, color="black", linestyle="--", label="capacity")
    ax.set_ylim(0, capacity * 1.15)
    ax.set(xlabel="after write #", ylabel="rows in the bank")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    return fig


def tsne_figure(
    points: Any,
    labels: Any,
    domain: Any,
    domain_names: Mapping[int, str] = DOMAIN_NAMES,
    title: str = "",
) -> Figure:
    """A 2-d embedding of bank features, coloured by class (left) and by domain (right).

    What to look for: features of one class should gather (left: patches of one colour),
    and the two domains should mix within them (right: red and blue interleaved, not two
    separate clouds). Points carry a thin grey edge so that the palette's dark classes
    (building, car, truck, bus) stay apart.

    Args:
        points: (N, 2) embedded coordinates.
        labels: (N,) train ids.
        domain: (N,) domain codes, indexing ``domain_names``.
        domain_names: what each domain code means (the bank's, by default).
        title: the figure's title.
    """
    xy, lab, dom = to_numpy(points), to_numpy(labels).astype(int), to_numpy(domain).astype(int)
    fig = new_figure(10, 4.6)
    by_class, by_domain = fig.subplots(1, 2)
    by_class.scatter(xy[:, 0], xy[:, 1], c=class_colors(lab), s=12, linewidths=0.3,
                     edgecolors="#bbbbbb")  # fmt: skip
    by_class.set_title("by (pseudo-)label")
    for d in np.unique(dom):
        keep = dom == d
        by_domain.scatter(
            xy[keep, 0],
            xy[keep, 1],
            s=10,
            alpha=0.6,
            linewidths=0,
            color=DOMAIN_COLOURS.get(int(d), "#888888"),
            label=domain_names.get(int(d), str(d)),
        )
    by_domain.set_title("by domain")
    by_domain.legend(markerscale=2, fontsize="small")
    for ax in (by_class, by_domain):
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    add_class_legend(fig, lab)
    return fig
