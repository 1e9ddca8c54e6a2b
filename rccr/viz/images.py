"""Figures of images and label maps: grids, the class palette, one region-sampling step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from rccr.data.labels import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES
from rccr.viz.canvas import (
    Box,
    add_class_legend,
    class_colors,
    draw_box,
    draw_panel,
    new_figure,
    to_numpy,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from rccr.analysis.regions import RegionSample

__all__ = ["image_grid", "palette_figure", "region_figure"]


def image_grid(
    rows: Sequence[Sequence[Any]],
    col_titles: Sequence[str] | None = None,
    row_titles: Sequence[str] | None = None,
    boxes: Sequence[Box | None] | None = None,
    legend: bool = True,
    panel_width: float = 2.6,
    ranges: Sequence[tuple[float, float] | None] | None = None,
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
        ranges: per column, the colour scale of its float maps (``draw_panel``'s
            ``value_range``), or None for the default.
    """
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    first = next(to_numpy(x) for r in rows for x in r if x is not None)
    h, w = first.shape[1:] if first.ndim == 3 and first.shape[0] == 3 else first.shape[:2]
    fig = new_figure(panel_width * n_cols, panel_width * n_rows * h / w + 0.6 * legend, photo=True)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    shown: set[int] = set()
    for i, row in enumerate(rows):
        widths = [
            to_numpy(x).shape[-1] if to_numpy(x).ndim == 2 else w for x in row if x is not None
        ]
        widest = max(widths, default=w)
        for j in range(n_cols):
            x = row[j] if j < len(row) else None
            value_range = ranges[j] if ranges is not None and j < len(ranges) else None
            shown |= draw_panel(axes[i, j], x, value_range)
            if boxes is not None and boxes[i] is not None and x is not None:
                a = to_numpy(x)
                width = a.shape[-1] if a.ndim == 2 else w
                draw_box(axes[i, j], boxes[i], width / widest)  # type: ignore[arg-type]
            if i == 0 and col_titles is not None and j < len(col_titles):
                axes[i, j].set_title(col_titles[j], fontsize="medium")
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i])
    if legend:
        add_class_legend(fig, shown)
    return fig


def palette_figure() -> Figure:
    """The 19 training classes: train id, name and colour."""
    fig = new_figure(8, 2.6)
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


def region_figure(sample: RegionSample) -> Figure:
    """One region-sampling step (``rccr.analysis.regions.explain_regions``) in six panels.

    Top: the clean target image and the augmented image with the CutMix box, and the
    teacher's pseudo-labels. Bottom: the teacher's confidence with the anchors (kept: white
    circles; dropped by positive sampling: red crosses), each anchor's cosine similarity
    with its positive, and the negatives per class (the part removed for at least one
    kept anchor by class-aware sampling hatched). The box is ``(top, left, height,
    width)`` in pixels, spelled out in the title.
    """
    s = sample
    stride, (h, w) = s.stride, s.pseudo_label.shape
    fig = new_figure(11, 5.6, photo=True)
    axes = fig.subplots(2, 3)
    draw_panel(axes[0, 0], s.tgt_image)
    draw_panel(axes[0, 1], s.aug_image)
    shown = draw_panel(axes[0, 2], s.pseudo_label)
    draw_panel(axes[1, 0], s.confidence)
    for ax, scale in (
        (axes[0, 0], 1.0),
        (axes[0, 1], 1.0),
        (axes[0, 2], 1 / stride),
        (axes[1, 0], 1 / stride),
    ):
        draw_box(ax, s.box, scale, color="white")
    kept, cells = to_numpy(s.anchor_kept).astype(bool), to_numpy(s.anchor_cells)
    axes[1, 0].scatter(cells[kept, 1], cells[kept, 0], s=14, facecolors="none", edgecolors="white")
    axes[1, 0].scatter(cells[~kept, 1], cells[~kept, 0], s=14, marker="x", color="red")
    _similarity(axes[1, 1], s, (h, w))
    _negatives(axes[1, 2], s, kept)
    titles = [
        "clean target (teacher's input)",
        "augmented (student's input)",
        "teacher pseudo-labels",
        f"confidence; anchors kept {kept.sum()}/{kept.size}",
        "cos(anchor, positive) per anchor",
        "negatives by label",
    ]
    for ax, title in zip(axes.flat, titles, strict=True):
        ax.set_title(title, fontsize="medium")
    top, left, height, width = s.box
    fig.suptitle(
        f"CutMix box {height} px high x {width} px wide, top-left corner at row {top}, "
        f"column {left}; loss {s.loss:.3f}"
    )
    add_class_legend(fig, shown | {int(c) for c in to_numpy(s.negative_labels)})
    return fig


def _similarity(ax: Axes, s: RegionSample, grid: tuple[int, int]) -> None:
    """Each anchor's cosine with its positive, on its cell over the dimmed clean image.

    The colour scale spans this step's values (rounded out to 0.05), not -1..1: the
    similarities of one step lie close together, and the full range would paint them one
    colour.
    """
    h, w = grid
    cells = to_numpy(s.anchor_cells)
    values = to_numpy(s.positive_similarity).astype(np.float32)
    grey = to_numpy(s.tgt_image).mean(axis=0)  # (H, W) in [0, 1]
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)  # the image under the feature grid
    ax.imshow(0.35 + 0.4 * grey, cmap="gray", vmin=0, vmax=1, extent=extent)
    similarity = np.full((h, w), np.nan, dtype=np.float32)
    similarity[cells[:, 0], cells[:, 1]] = values
    low, high = (float(values.min()), float(values.max())) if values.size else (-1.0, 1.0)
    low, high = max(-1.0, np.floor(low * 20) / 20), min(1.0, np.ceil(high * 20) / 20)
    if high - low < 0.05:
        low, high = max(-1.0, high - 0.05), min(1.0, low + 0.05)
    image = ax.imshow(similarity, cmap="magma", vmin=low, vmax=high, interpolation="nearest")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    draw_box(ax, s.box, 1 / s.stride, color="white")
    ax.set_xticks([])
    ax.set_yticks([])


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
