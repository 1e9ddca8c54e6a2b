"""Joint image/label transforms: resize, random crop, random horizontal flip.

The image and its label go through the same geometry: bilinear resampling for the image,
nearest for the label (so no new label values appear). Randomness comes from torch's
global generator, which a ``DataLoader`` seeds per worker from its own generator, so a
seeded loader gives the same crops every run.

For evaluation at full resolution (``resize_label=False``) the image is resized to the
inference size and the label keeps its original size; the evaluator upsamples the logits
to the label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

__all__ = ["JointTransform", "Size", "resize_image", "to_tensor"]


class Size(NamedTuple):
    """An image size, written width x height as datasets quote it ("1280x720")."""

    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> Size:
        """Parse ``"WxH"``, e.g. ``"1280x720"``.

        Raises:
            ValueError: if ``text`` is not two positive integers joined by 'x'.
        """
        parts = text.lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"size {text!r}: expected WIDTHxHEIGHT, e.g. 1280x720")
        size = cls(int(parts[0]), int(parts[1]))
        if size.width <= 0 or size.height <= 0:
            raise ValueError(f"size {text!r}: width and height must be positive")
        return size

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 in [0, 1]."""
    # np.array copies: decoded images are read-only views, which torch will not wrap.
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div_(255.0)


def _resize(array: np.ndarray, size: Size, resample: Image.Resampling) -> np.ndarray:
    return np.asarray(Image.fromarray(array).resize(size, resample))


def resize_image(image: np.ndarray, size: Size) -> np.ndarray:
    """(H, W, 3) uint8 RGB resized to ``size`` as every transform resizes images (bilinear)."""
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return _resize(image, size, Image.Resampling.BILINEAR)


@dataclass(frozen=True)
class JointTransform:
    """Resize, then random crop, then random flip, applied to an image and its label.

    Attributes:
        resize: size to resize to first, or None to keep the file's size.
        crop: size of a random crop taken after resizing, or None for no crop.
        flip: flip image and label horizontally with probability 0.5.
        resize_label: resize the label with the image (training); False keeps the label
            at its original size (full-resolution evaluation, where cropping and
            flipping must be off).
    """

    resize: Size | None = None
    crop: Size | None = None
    flip: bool = False
    resize_label: bool = True

    def __post_init__(self) -> None:
        if not self.resize_label and (self.crop is not None or self.flip):
            raise ValueError("resize_label=False (evaluation) cannot be combined with crop or flip")
        if (
            self.resize is not None
            and self.crop is not None
            and (self.crop.width > self.resize.width or self.crop.height > self.resize.height)
        ):
            raise ValueError(f"crop {self.crop} is larger than the resized image {self.resize}")

    def __call__(self, image: np.ndarray, label: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform one pair.

        Args:
            image: (H, W, 3) uint8 RGB.
            label: (H, W) uint8 train ids.

        Returns:
            (3, h, w) float32 image in [0, 1] and (h', w') int64 label.

        Raises:
            ValueError: if the crop is larger than the (resized) image.
        """
        if self.resize is not None and (image.shape[1], image.shape[0]) != tuple(self.resize):
            image = resize_image(image, self.resize)
            if self.resize_label:
                label = _resize(label, self.resize, Image.Resampling.NEAREST)
        if self.crop is not None:
            image, label = self._random_crop(image, label)
        if self.flip and torch.rand(()).item() < 0.5:
            image = image[:, ::-1]
            label = label[:, ::-1]
        return to_tensor(image), torch.from_numpy(label.astype(np.int64))

    def _random_crop(self, image: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.crop is not None
        height, width = image.shape[:2]
        if self.crop.width > width or self.crop.height > height:
            raise ValueError(f"crop {self.crop} is larger than the image {width}x{height}")
        top = int(torch.randint(0, height - self.crop.height + 1, ()).item())
        left = int(torch.randint(0, width - self.crop.width + 1, ()).item())
        rows = slice(top, top + self.crop.height)
        cols = slice(left, left + self.crop.width)
        return image[rows, cols], label[rows, cols]
