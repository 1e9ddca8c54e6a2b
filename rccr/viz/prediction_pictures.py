"""Pictures of predictions, pixel by pixel: a class map over its image, panels side by side.

Plain numpy and PIL, (H, W, 3) uint8 RGB in and out, for ``rccr predict`` and the
dashboard. Class colours are the Cityscapes palette (``rccr.data.labels.colorize``);
:func:`rccr.viz.region_pictures.class_legend` draws the legend of the classes shown.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rccr.data.labels import colorize
from rccr.viz.region_pictures import class_legend, display_scale, enlarge

__all__ = ["overlay", "prediction_picture", "side_by_side"]

_TITLE_HEIGHT = 26


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """The class map's colours blended over the image (ignored pixels left as they are).

    Args:
        image: (H, W, 3) uint8 RGB.
        labels: (H, W) train ids (255: ignore).
        alpha: weight of the class colour.

    Returns:
        (H, W, 3) uint8.
    """
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and labels {labels.shape} differ in size")
    colours = colorize(labels).astype(np.float32)  # (H, W, 3)
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colours
    known = (labels != 255)[..., None]  # (H, W, 1)
    return np.where(known, blended + 0.5, image).astype(np.uint8)


def side_by_side(panels: list[np.ndarray], titles: list[str], gap: int = 8) -> np.ndarray:
    """Panels of one height in a row, each with its title above it, on white.

    Args:
        panels: (H, W_i, 3) uint8 RGB, all of the same height H.
        titles: one per panel.
        gap: pixels between panels.

    Returns:
        (H + title height, sum W_i + gaps, 3) uint8.
    """
    if len(panels) != len(titles) or not panels:
        raise ValueError(f"{len(panels)} panels and {len(titles)} titles")
    height = panels[0].shape[0]
    if any(panel.shape[0] != height for panel in panels):
        raise ValueError(f"panels differ in height: {[p.shape[0] for p in panels]}")
    width = sum(panel.shape[1] for panel in panels) + gap * (len(panels) - 1)
    canvas = Image.new("RGB", (width, height + _TITLE_HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=15)
    x = 0
    for panel, title in zip(panels, titles, strict=True):
        canvas.paste(Image.fromarray(panel), (x, _TITLE_HEIGHT))
        draw.text((x + 2, 4), _fit(title, panel.shape[1] - 4, font), fill=(49, 51, 63), font=font)
        x += panel.shape[1] + gap
    return np.array(canvas)


def prediction_picture(
    image: np.ndarray,
    title: str,
    predictions: list[tuple[str, np.ndarray]],
    truth: np.ndarray | None = None,
) -> np.ndarray:
    """The image, each prediction drawn over it, and the ground truth where there is one,
    side by side with their titles, small images enlarged, and a legend of the classes
    shown (what ``rccr predict`` writes and the dashboard's Predictions page shows).

    Args:
        image: (H, W, 3) uint8 RGB.
        title: the image's title (its file name).
        predictions: (title, (H, W) train ids) per model.
        truth: (H, W) train ids (255: ignore), or None.

    Returns:
        (H', W', 3) uint8.
    """
    panels, titles, shown = [image], [title], set()
    maps = [*predictions, *([("ground truth", truth)] if truth is not None else [])]
    for name, labels in maps:
        panels.append(overlay(image, labels))
        titles.append(name)
        shown |= set(np.unique(labels).tolist())
    factor = display_scale(image.shape[1])  # small images enlarged by a whole factor
    picture = side_by_side([enlarge(panel, factor) for panel in panels], titles)
    legend = class_legend(sorted(shown - {255}), width=picture.shape[1])
    return np.concatenate([picture, legend])


def _fit(text: str, width: int, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> str:
    """``text``, shortened in the middle with an ellipsis until it is at most ``width`` wide."""
    if font.getlength(text) <= width:
        return text
    keep = len(text)
    while keep > 2:
        keep -= 1
        short = f"{text[: keep // 2]}…{text[len(text) - (keep - keep // 2) :]}"
        if font.getlength(short) <= width:
            return short
    return "…"
