"""How every figure of ``rccr.viz`` is made, and how one panel is drawn.

Figures are :class:`NotebookFigure` objects made without pyplot: a notebook shows one
exactly when a cell returns it (no duplicate from pyplot's auto-display), at a modest dpi,
as PNG for charts and JPEG for photographs, which keeps executed notebooks small.

A *panel* (:func:`draw_panel`) may be a numpy array or a tensor: ``(3, H, W)`` or
``(H, W, 3)`` RGB in [0, 1] (or uint8); ``(H, W)`` integer train ids, drawn in the
Cityscapes palette (255 = ignore, black); ``(H, W)`` bool, a mask; ``(H, W)`` float, a map
(confidence, similarity) with a colour bar.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from rccr.data.labels import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES, PALETTE, colorize
from rccr.method.memory_bank import DOMAIN_AUGMENTED, DOMAIN_TARGET

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "DOMAIN_COLOURS",
    "DPI",
    "RUN_COLOURS",
    "Box",
    "NotebookFigure",
    "add_class_legend",
    "class_colors",
    "draw_box",
    "draw_panel",
    "new_figure",
    "to_numpy",
]

DPI = 80
"""Dots per inch of every figure: sharp enough to read, small enough to commit."""
DOMAIN_COLOURS = {DOMAIN_AUGMENTED: "#e45756", DOMAIN_TARGET: "#4c78a8"}
"""The bank's two domains, the same in every figure and dashboard page: red for the
student's features of the augmented image, blue for the teacher's of the clean target."""
RUN_COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
               "#ff9da7", "#9c755f", "#bab0ac")  # fmt: skip
"""Colours for runs compared in one chart (Tableau 10), given to runs in name order over
all the runs shown, so a run keeps its colour whichever others are picked beside it."""
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
        extra: dict[str, Any] = {"pil_kwargs": {"quality": 75}} if fmt == "jpeg" else {}
        self.savefig(buffer, format=fmt, bbox_inches="tight", **extra)
        return buffer.getvalue()

    def _repr_png_(self) -> bytes | None:
        return None if self.photo else self._encode("png")

    def _repr_jpeg_(self) -> bytes | None:
        return self._encode("jpeg") if self.photo else None


def new_figure(width: float, height: float, photo: bool = False) -> NotebookFigure:
    """An empty figure of ``width`` x ``height`` inches at ``DPI``, constrained layout."""
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


def add_class_legend(fig: Figure, classes: Iterable[int], ncol: int = 7) -> None:
    """A legend below the figure of the train ids in ``classes`` (255 and others skipped)."""
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


def draw_panel(ax: Axes, x: Any, value_range: tuple[float, float] | None = None) -> set[int]:
    """Draw one panel (see the module docstring); returns the train ids it shows.

    Args:
        ax: where to draw.
        x: the panel.
        value_range: the colour scale of a float map; by default 0..1 when every value
            lies there, else the values' own range. A map whose values differ little (a
            cosine similarity near 1 everywhere) needs a narrower scale to show anything.

    Raises:
        ValueError: for an array that is neither an image nor a 2-d map.
    """
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
    low, high = value_range if value_range is not None else (0, 1) if unit else (None, None)
    image = ax.imshow(a, cmap="viridis", interpolation="nearest", vmin=low, vmax=high)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    return set()


def draw_box(ax: Axes, box: Box, scale: float, color: str = "white") -> None:
    """Outline ``box`` (pixels), scaled by ``scale`` for a smaller map (1/stride: features)."""
    top, left, height, width = (v * scale for v in box)
    ax.add_patch(
        Rectangle(
            (left - 0.5, top - 0.5), width, height, fill=False, edgecolor=color, linewidth=1.5
        )
    )
