"""Figures for the notebooks (and anyone else): images, label maps, curves, tables.

Every function takes arrays or results and returns a new ``matplotlib.figure.Figure``
(or a ``pandas.DataFrame``); none reads files, trains or runs a network. Figures are made
without pyplot, so a notebook shows one exactly when a cell returns it, at a modest dpi
that keeps executed notebooks small. Label maps are drawn in the Cityscapes palette
(``rccr.data.labels.PALETTE``), with a legend of the classes present.

Accepted image-like inputs (numpy arrays or tensors): ``(3, H, W)`` or ``(H, W, 3)`` RGB
in [0, 1] (or uint8); ``(H, W)`` integer train ids (255 = ignore, drawn black); ``(H, W)``
float maps (confidence, similarity), drawn with a colour bar.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from rccr.data.labels import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES, PALETTE, colorize
from rccr.evaluate import EvalResult

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from rccr.regions import RegionSample
    from rccr.runs import Run

__all__ = [
    "DPI",
    "LiveLossPlot",
    "NotebookFigure",
    "bank_fill_figure",
    "bar_figure",
    "class_colors",
    "class_frequency_figure",
    "histogram_figure",
    "image_grid",
    "iou_figure",
    "iou_table",
    "line_figure",
    "loss_figure",
    "miou_figure",
    "palette_figure",
    "region_figure",
    "to_numpy",
    "tsne_figure",
]

DPI = 80
"""Dots per inch of every figure: sharp enough to read, small enough to commit."""
Box = tuple[int, int, int, int]  # (top, left, height, width) in pixels


class NotebookFigure(Figure):
    """A figure that IPython shows when a cell returns it, with or without pyplot.

    Charts are shown as PNG; figures of photographs (``photo=True``) as JPEG, which keeps a
    grid of textured images several times smaller in a saved notebook.
    """

    def __init__(self, *args: Any, photo: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.photo = photo

    def _encode(self, fmt: str) -> bytes:
        buffer = io.BytesIO()
        extra = {"pil_kwargs": {"quality": 75}} if fmt == "jpeg" else {}
        self.savefig(buffer, format=fmt, bbox_inches="tight", **extra)
        return buffer.getvalue()

    def _repr_png_(self) -> bytes | None:
        return None if self.photo else self._encode("png")

    def _repr_jpeg_(self) -> bytes | None:
        return self._encode("jpeg") if self.photo else None


def _figure(width: float, height: float, photo: bool = False) -> NotebookFigure:
    return NotebookFigure(figsize=(width, height), dpi=DPI, layout="constrained", photo=photo)


def to_numpy(x: Any) -> np.ndarray:
    """A numpy copy of an array or tensor (detached, on the CPU, float32 for half types)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.is_floating_point():
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def class_colors(classes: Iterable[int]) -> list[tuple[float, float, float]]:
    """Palette colours (RGB in [0, 1]) of train ids; 255 and unknown ids are black."""
    return [tuple(PALETTE[c] / 255.0) if 0 <= c < NUM_CLASSES else (0.0, 0.0, 0.0) for c in classes]


def _legend(fig: Figure, classes: Iterable[int], ncol: int = 7) -> None:
    present = sorted({int(c) for c in classes if 0 <= int(c) < NUM_CLASSES})
    handles = [
        Patch(color=color, label=CLASS_NAMES[c])
        for c, color in zip(present, class_colors(present), strict=True)
    ]
    if handles:
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncol=min(ncol, len(handles)),
            fontsize="small",
            frameon=False,
        )


def _draw(ax: Axes, x: Any) -> set[int]:
    """Draw one panel; returns the train ids it shows (for the legend)."""
    ax.set_xticks([])
    ax.set_yticks([])
    if x is None:
        ax.set_axis_off()
        return set()
    a = to_numpy(x)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[2] != 3:
        a = a.transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
    if a.ndim == 3:
        ax.imshow(a if a.dtype == np.uint8 else np.clip(a, 0, 1), interpolation="nearest")
        return set()
    if a.ndim != 2:
        raise ValueError(f"cannot draw an array of shape {a.shape}; expected an image or a map")
    if np.issubdtype(a.dtype, np.integer):
        ax.imshow(colorize(a), interpolation="nearest")
        return {int(c) for c in np.unique(a) if c != IGNORE_INDEX}
    if a.dtype == bool:  # a mask: yellow where set, no colour bar needed
        ax.imshow(a, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        return set()
    a = a.astype(np.float32)  # a float map
    finite = a[np.isfinite(a)]
    unit = finite.size == 0 or (finite.min() >= 0 and finite.max() <= 1)
    image = ax.imshow(
        a,
        cmap="viridis",
        interpolation="nearest",
        vmin=0 if unit else None,
        vmax=1 if unit else None,
    )
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    return set()


def _box(ax: Axes, box: Box, scale: float, color: str = "white") -> None:
    top, left, height, width = (v * scale for v in box)
    ax.add_patch(
        Rectangle(
            (left - 0.5, top - 0.5), width, height, fill=False, edgecolor=color, linewidth=1.5
        )
    )


def image_grid(
    rows: Sequence[Sequence[Any]],
    col_titles: Sequence[str] | None = None,
    row_titles: Sequence[str] | None = None,
    boxes: Sequence[Box | None] | None = None,
    legend: bool = True,
    panel_width: float = 2.6,
) -> Figure:
    """A grid of images, label maps and float maps, with a legend of the classes shown.

    Args:
        rows: rows of panels (see the module docstring for what a panel may be; None
            leaves a blank).
        col_titles: a title per column.
        row_titles: a label per row.
        boxes: per row, a ``(top, left, height, width)`` box in pixels of the row's widest
            panel, drawn on every panel of the row (scaled to smaller maps), or None.
        legend: add a legend of the classes in the label maps.
        panel_width: inches per panel.
    """
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    first = next(to_numpy(x) for r in rows for x in r if x is not None)
    h, w = first.shape[1:] if first.ndim == 3 and first.shape[0] == 3 else first.shape[:2]
    fig = _figure(panel_width * n_cols, panel_width * n_rows * h / w + 0.6 * legend, photo=True)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    shown: set[int] = set()
    for i, row in enumerate(rows):
        widths = [
            to_numpy(x).shape[-1] if to_numpy(x).ndim == 2 else w for x in row if x is not None
        ]
        widest = max(widths, default=w)
        for j in range(n_cols):
            x = row[j] if j < len(row) else None
            shown |= _draw(axes[i, j], x)
            if boxes is not None and boxes[i] is not None and x is not None:
                a = to_numpy(x)
                width = a.shape[-1] if a.ndim == 2 else w
                _box(axes[i, j], boxes[i], width / widest)  # type: ignore[arg-type]
            if i == 0 and col_titles is not None and j < len(col_titles):
                axes[i, j].set_title(col_titles[j], fontsize="medium")
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i])
    if legend:
        _legend(fig, shown)
    return fig


def palette_figure() -> Figure:
    """The 19 training classes: train id, name and colour."""
    fig = _figure(8, 2.6)
    ax = fig.subplots()
    for c, (name, color) in enumerate(
        zip(CLASS_NAMES, class_colors(range(NUM_CLASSES)), strict=True)
    ):
        row, col = divmod(c, 5)
        ax.add_patch(Rectangle((col * 2, -row), 0.4, 0.8, color=color))
        ax.text(col * 2 + 0.5, -row + 0.4, f"{c} {name}", va="center", fontsize="small")
    ax.set_xlim(0, 10)
    ax.set_ylim(-3.2, 1)
    ax.set_axis_off()
    ax.set_title(f"the 19 train ids ({IGNORE_INDEX} = ignored, drawn black)")
    return fig


def class_frequency_figure(pixels: Mapping[str, Sequence[int]]) -> Figure:
    """Share of labelled pixels per class, one bar per dataset (log scale).

    Args:
        pixels: dataset name -> 19 pixel counts (e.g. ``PrepareSummary.class_pixels``).
    """
    fig = _figure(10, 3.4)
    ax = fig.subplots()
    width = 0.8 / max(1, len(pixels))
    x = np.arange(NUM_CLASSES)
    for k, (name, counts) in enumerate(pixels.items()):
        share = 100 * np.asarray(counts, dtype=np.float64) / max(1, int(np.sum(counts)))
        ax.bar(x + k * width, share, width, label=name)
    ax.set_yscale("log")
    ax.set_xticks(x + width * (len(pixels) - 1) / 2, CLASS_NAMES, rotation=60, ha="right")
    ax.set_ylabel("% of labelled pixels")
    ax.legend()
    return fig


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
    fig = _figure(10, 3.4)
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
    """``key`` on target val at every evaluated checkpoint of each run."""
    fig = _figure(6, 3.4)
    ax = fig.subplots()
    for name, run in runs.items():
        points = sorted((i, r.miou[key]) for i, r in run.evals.items() if key in r.miou)
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"target val {key} (%)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def loss_figure(records: Sequence[Mapping[str, Any]], title: str = "") -> Figure:
    """The loss terms of ``metrics.jsonl`` records against iteration, and val mIoU if logged."""
    evals = [(r["iteration"], v) for r in records for k, v in r.items() if k.startswith("val/")]
    fig = _figure(9 if evals else 6, 3.2)
    axes = fig.subplots(1, 2 if evals else 1, squeeze=False)[0]
    keys = sorted({k for r in records for k in r if k.startswith("loss")})
    for key in keys:
        points = [(r["iteration"], r[key]) for r in records if key in r]
        axes[0].plot(*zip(*points, strict=True), label=key, marker="." if len(points) < 3 else "")
    axes[0].set(xlabel="iteration", ylabel="loss (mean since last log)", title=title)
    if keys:
        axes[0].set_yscale("log")
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
    fig = _figure(6, 3.2)
    ax = fig.subplots()
    for name, ys in series.items():
        ax.plot(x, to_numpy(ys), label=name)
    for k, (name, value) in enumerate((vlines or {}).items()):
        ax.axvline(value, color=f"C{k + len(series)}", linestyle="--", label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.set_xscale("log" if logx else "linear")
    ax.set_yscale("log" if logy else "linear")
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
    """Overlaid histograms of each array in ``values``, with optional vertical lines."""
    fig = _figure(6, 3.2)
    ax = fig.subplots()
    for name, v in values.items():
        ax.hist(to_numpy(v).ravel(), bins=bins, alpha=0.6, label=name)
    for k, (name, value) in enumerate((vlines or {}).items()):
        ax.axvline(value, color=f"C{k + len(values)}", linestyle="--", label=name)
    ax.set(xlabel=xlabel, ylabel="count", title=title)
    ax.legend(fontsize="small")
    return fig


def bar_figure(values: Mapping[str, float], xlabel: str, title: str = "") -> Figure:
    """Horizontal bars, one per named value."""
    fig = _figure(6, 0.8 + 0.2 * len(values))
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
    fig = _figure(6, 3.2)
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
    domain_names: Sequence[str] = ("augmented image (student)", "clean target (teacher)"),
    title: str = "",
) -> Figure:
    """A 2-d embedding of bank features, coloured by class (left) and by domain (right).

    Args:
        points: (N, 2) embedded coordinates.
        labels: (N,) train ids.
        domain: (N,) domain codes, indexing ``domain_names``.
        domain_names: what each domain code means.
        title: the figure's title.
    """
    xy, lab, dom = to_numpy(points), to_numpy(labels).astype(int), to_numpy(domain).astype(int)
    fig = _figure(10, 4.6)
    by_class, by_domain = fig.subplots(1, 2)
    by_class.scatter(xy[:, 0], xy[:, 1], c=class_colors(lab), s=3, linewidths=0)
    by_class.set_title("by (pseudo-)label")
    for d in np.unique(dom):
        keep = dom == d
        by_domain.scatter(
            xy[keep, 0],
            xy[keep, 1],
            s=3,
            alpha=0.6,
            linewidths=0,
            label=domain_names[d] if d < len(domain_names) else str(d),
        )
    by_domain.set_title("by domain")
    by_domain.legend(markerscale=4, fontsize="small")
    for ax in (by_class, by_domain):
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    _legend(fig, lab)
    return fig


def region_figure(sample: RegionSample) -> Figure:
    """One region-sampling step (``rccr.regions.explain_regions``) in six panels.

    Top: the clean target image and the augmented image with the CutMix box, and the
    teacher's pseudo-labels. Bottom: the teacher's confidence with the anchors (kept: white
    circles; dropped by positive sampling: red crosses), each anchor's cosine similarity
    with its positive, and the negatives per class (the part removed for at least one
    kept anchor by class-aware sampling hatched).
    """
    s = sample
    stride, (h, w) = s.stride, s.pseudo_label.shape
    fig = _figure(11, 5.6, photo=True)
    axes = fig.subplots(2, 3)
    _draw(axes[0, 0], s.tgt_image)
    _draw(axes[0, 1], s.aug_image)
    shown = _draw(axes[0, 2], s.pseudo_label)
    _draw(axes[1, 0], s.confidence)
    for ax, scale in (
        (axes[0, 0], 1.0),
        (axes[0, 1], 1.0),
        (axes[0, 2], 1 / stride),
        (axes[1, 0], 1 / stride),
    ):
        _box(ax, s.box, scale, color="white")
    kept, cells = to_numpy(s.anchor_kept).astype(bool), to_numpy(s.anchor_cells)
    axes[1, 0].scatter(cells[kept, 1], cells[kept, 0], s=14, facecolors="none", edgecolors="white")
    axes[1, 0].scatter(cells[~kept, 1], cells[~kept, 0], s=14, marker="x", color="red")
    similarity = np.full((h, w), np.nan, dtype=np.float32)
    similarity[cells[:, 0], cells[:, 1]] = to_numpy(s.positive_similarity)
    image = axes[1, 1].imshow(similarity, cmap="magma", vmin=-1, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=axes[1, 1], fraction=0.046, pad=0.02)
    axes[1, 1].set_xticks([])
    axes[1, 1].set_yticks([])
    _negatives(axes[1, 2], s, kept)
    titles = [
        "clean target (teacher's input)",
        "augmented (student's input)",
        "teacher pseudo-labels",
        f"confidence; anchors kept {kept.sum()}/{kept.size}",
        "cos(anchor, positive)",
        "negatives by label",
    ]
    for ax, title in zip(axes.flat, titles, strict=True):
        ax.set_title(title, fontsize="medium")
    fig.suptitle(f"box {s.box[2]}x{s.box[3]} px at ({s.box[0]}, {s.box[1]}); loss {s.loss:.3f}")
    _legend(fig, shown | {int(c) for c in to_numpy(s.negative_labels)})
    return fig


def _negatives(ax: Axes, s: RegionSample, kept: np.ndarray) -> None:
    """Bars of negatives per label; hatched: removed for some kept anchor."""
    labels = to_numpy(s.negative_labels).astype(int)
    removed = to_numpy(s.negative_removed).astype(bool)[kept].any(axis=0)  # (M,)
    classes = sorted(set(labels.tolist()))
    colors = class_colors(classes)
    total = [int((labels == c).sum()) for c in classes]
    gone = [int(((labels == c) & removed).sum()) for c in classes]
    y = np.arange(len(classes))
    ax.barh(y, total, color=colors)
    ax.barh(y, gone, color="none", hatch="///", edgecolor="black")
    ax.set_yticks(y, [CLASS_NAMES[c] for c in classes], fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("negatives (hatched: removed for a kept anchor)", fontsize="small")
