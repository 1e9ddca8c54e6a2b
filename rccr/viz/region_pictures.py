"""Pictures of one region-sampling step (a :class:`rccr.analysis.regions.RegionSample`),
drawn pixel by pixel for the dashboard's Region page.

Plain numpy and PIL: images in, (H, W, 3) uint8 RGB arrays out, shown with ``st.image``.
(``rccr.viz.images.region_figure`` draws the same step as a matplotlib figure for the
notebooks.)
Images are enlarged by whole pixels (``scale``) so that the feature cells of a small toy
image stay visible; cell ``(row, col)`` covers pixels ``[row * stride, (row + 1) * stride)``.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from rccr.data.labels import CLASS_NAMES, PALETTE, colorize
from rccr.viz.canvas import Box

__all__ = [
    "class_legend",
    "confidence_image",
    "display_scale",
    "enlarge",
    "grid_to_image",
    "labels_rgb",
    "mark_cells",
    "outline_box",
    "outline_cell",
    "shade_cells",
    "similarity_colours",
    "to_rgb",
]

KEPT, DROPPED = (40, 200, 80), (230, 40, 40)  # anchors passing / failing the filter
BOX = (255, 220, 0)


def display_scale(width: int, target: int = 512) -> int:
    """Whole-pixel enlargement that brings ``width`` close to ``target`` pixels."""
    return max(1, target // max(width, 1))


def to_rgb(image: Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8."""
    return (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def enlarge(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of an (H, W, C) or (H, W) array by ``factor``."""
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def grid_to_image(grid: np.ndarray, stride: int, scale: int) -> np.ndarray:
    """A feature-grid map (h, w[, 3]) shown at display size (h * stride * scale, ...)."""
    return enlarge(grid, stride * scale)


def labels_rgb(labels: Tensor) -> np.ndarray:
    """(h, w) train ids -> (h, w, 3) Cityscapes colours (ignore is black)."""
    return colorize(labels.numpy())


def confidence_image(confidence: Tensor, threshold: float, stride: int, scale: int) -> np.ndarray:
    """(h, w) confidence in viridis at display size; cells above ``threshold`` outlined white."""
    rgb = (colormaps["viridis"](confidence.numpy())[..., :3] * 255 + 0.5).astype(np.uint8)
    image = Image.fromarray(grid_to_image(rgb, stride, scale))
    draw = ImageDraw.Draw(image)
    for cell in (confidence > threshold).nonzero():
        draw.rectangle(_cell_rect(cell, stride, scale), outline=(255, 255, 255), width=2)
    return np.array(image)


def outline_cell(
    rgb: np.ndarray, cell: Tensor, stride: int, scale: int, colour: tuple[int, int, int] = BOX
) -> np.ndarray:
    """One feature cell ``(row, col)`` outlined thickly (the anchor being inspected)."""
    image = Image.fromarray(rgb)
    ImageDraw.Draw(image).rectangle(_cell_rect(cell, stride, scale), outline=colour, width=3)
    return np.array(image)


def class_legend(labels: list[int], width: int) -> np.ndarray:
    """Swatches of the Cityscapes colours of ``labels`` (train ids), with names, wrapped."""
    font = ImageFont.load_default(size=15)
    entries = [(PALETTE[k], CLASS_NAMES[k]) for k in sorted(set(labels)) if 0 <= k < len(PALETTE)]
    row_height, x, y, placed = 24, 0, 0, []
    for colour, name in entries:
        item = 22 + int(font.getlength(name)) + 18
        if x and x + item > width:
            x, y = 0, y + row_height
        placed.append((x, y, colour, name))
        x += item
    image = Image.new("RGB", (width, y + row_height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for x, y, colour, name in placed:
        draw.rectangle((x, y + 4, x + 15, y + 19), fill=tuple(int(c) for c in colour))
        draw.text((x + 22, y + 3), name, fill=(49, 51, 63), font=font)
    return np.array(image)


def _cell_rect(cell: Tensor | np.ndarray, stride: int, scale: int) -> tuple[int, int, int, int]:
    row, col = int(cell[0]), int(cell[1])
    size = stride * scale
    return col * size, row * size, (col + 1) * size - 1, (row + 1) * size - 1


def outline_box(rgb: np.ndarray, box: Box, scale: int) -> np.ndarray:
    """The CutMix box ``(top, left, height, width)`` (pixels) outlined on a display image."""
    top, left, height, width = (v * scale for v in box)
    image = Image.fromarray(rgb)
    ImageDraw.Draw(image).rectangle(
        (left, top, left + width - 1, top + height - 1), outline=BOX, width=max(2, scale // 2)
    )
    return np.array(image)


def shade_cells(
    rgb: np.ndarray,
    cells: Tensor,
    colours: list[tuple[int, int, int]],
    stride: int,
    scale: int,
    alpha: float = 0.45,
) -> np.ndarray:
    """Fill feature cells (N, 2) with translucent colours (one per cell), outlined."""
    base = Image.fromarray(rgb).convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for cell, colour in zip(cells, colours, strict=True):
        draw.rectangle(
            _cell_rect(cell, stride, scale), fill=(*colour, int(255 * alpha)), outline=colour
        )
    return np.array(Image.alpha_composite(base, layer).convert("RGB"))


def similarity_colours(similarity: Tensor) -> list[tuple[int, int, int]]:
    """Cosine similarities in [-1, 1] as colours (magma: dark = dissimilar)."""
    values = ((similarity.numpy() + 1) / 2).clip(0, 1)
    rgb = colormaps["magma"](values)[:, :3]
    return [tuple(int(c * 255) for c in colour) for colour in rgb]  # type: ignore[misc]


def mark_cells(
    rgb: np.ndarray,
    cells: Tensor,
    labels: Tensor,
    removed: Tensor,
    stride: int,
    scale: int,
) -> np.ndarray:
    """Negatives as dots in their class colour; removed ones hollow and crossed out.

    Args:
        rgb: display image.
        cells: (M, 2) feature cells.
        labels: (M,) train ids.
        removed: (M,) True where class-aware sampling removes the negative.
    """
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    radius = max(3, stride * scale // 3)
    for cell, label, gone in zip(cells, labels.tolist(), removed.tolist(), strict=True):
        x0, y0, x1, y1 = _cell_rect(cell, stride, scale)
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        colour = tuple(int(c) for c in PALETTE[label]) if 0 <= label < len(PALETTE) else (0, 0, 0)
        dot = (cx - radius, cy - radius, cx + radius, cy + radius)
        if gone:
            draw.ellipse(dot, outline=colour, width=2)
            draw.line((dot[0], dot[1], dot[2], dot[3]), fill=(0, 0, 0), width=2)
            draw.line((dot[0], dot[3], dot[2], dot[1]), fill=(0, 0, 0), width=2)
        else:
            draw.ellipse(dot, fill=colour, outline=(255, 255, 255))
    return np.array(image)
