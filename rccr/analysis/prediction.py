"""Predictions of a checkpoint on any image: the class map, drawn over the image.

::

    models = load_models("runs/toy-rccr")               # rccr.analysis.checkpoints
    labels = predict_labels(models.student, image, models.config.data.val_size)

The image is resized to the run's inference size (``data.val_size``) as its evaluation
resizes val images, and the logits are upsampled to the image's own size, so the class map
lines up with the image pixel for pixel. ``rccr predict`` uses this.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from rccr.data.files import DataError, image_size, read_image
from rccr.data.transforms import Size, resize_image, to_tensor
from rccr.evaluation import predict

__all__ = ["MAX_PIXELS", "decode_image", "load_image", "predict_labels"]

MAX_PIXELS = 4096 * 4096
"""Largest image (in pixels) a prediction reads: decoding alone would need gigabytes more."""


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB, its size checked from the header first.

    Raises:
        DataError: naming the file, if it is missing, not an image, or larger than
            ``MAX_PIXELS``.
    """
    width, height = image_size(path)
    if width * height > MAX_PIXELS:
        raise DataError(f"{Path(path)}: {width}x{height} pixels; at most {MAX_PIXELS} are read")
    return read_image(path)


def decode_image(data: bytes, name: str) -> np.ndarray:
    """An image given as bytes (an upload) as (H, W, 3) uint8 RGB, its size checked from
    the header before it is decoded.

    Raises:
        DataError: naming ``name``, if the bytes are not an image, or it is larger than
            ``MAX_PIXELS``.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise DataError(f"{name}: {width}x{height} pixels; at most {MAX_PIXELS} are read")
            img.load()
            return np.asarray(img.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{name}: cannot read image: {exc}") from exc


@torch.no_grad()
def predict_labels(model: nn.Module, image: np.ndarray, size: tuple[int, int]) -> Tensor:
    """The class map of one image.

    Args:
        model: a segmentation network in eval mode (e.g. ``CheckpointModels.student``).
        image: (H, W, 3) uint8 RGB.
        size: (width, height) the network sees the image at (a run's ``data.val_size``).

    Returns:
        (H, W) int64 train ids, at the image's own size.
    """
    height, width = image.shape[:2]
    device = next(model.parameters()).device
    pixels = to_tensor(resize_image(image, Size(*size)))[None].to(device)  # (1, 3, h, w)
    logits = predict(model, pixels, (height, width))  # (1, C, H, W), as evaluation scores
    return logits.argmax(dim=1)[0].cpu()
