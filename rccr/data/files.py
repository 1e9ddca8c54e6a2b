"""Reading and writing image and label files, with errors that name the file.

Every reader here either returns a fully decoded array or raises :class:`DataError`
whose message starts with the offending path and says what was expected. A truncated
PNG is an error, never a partially black image.

Label PNGs come in three real formats:

- 8-bit palette ("P", GTA5): the pixel values are palette indices, i.e. label ids;
- 8-bit grayscale ("L", Cityscapes ``*_labelIds.png`` and our ``*_labelTrainIds.png``);
- 16-bit, 3 or 4 channels (SYNTHIA ``GT/LABELS``): the class id is in the first channel.
  Pillow cannot decode 16-bit colour PNGs without losing the low byte, so these are read
  with OpenCV (which returns channels in BGR(A) order).
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

__all__ = [
    "DataError",
    "MissingData",
    "encode_png",
    "image_size",
    "read_image",
    "read_label",
    "write_atomic",
]

# A truncated file must raise, not decode to a partially grey image.
ImageFile.LOAD_TRUNCATED_IMAGES = False

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class DataError(ValueError):
    """A dataset file is missing, unreadable or holds values it should not."""


class MissingData(DataError):
    """A dataset folder is not there (not generated or prepared yet, or a wrong root)."""


def _open_error(path: Path, what: str, exc: BaseException) -> DataError:
    return DataError(f"{path}: cannot read {what}: {exc}")


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image, read from its header only.

    Raises:
        DataError: if the file is missing or is not an image.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, SyntaxError, ValueError) as exc:
        raise _open_error(path, "image", exc) from exc


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to RGB.

    Returns:
        (H, W, 3) uint8 array.

    Raises:
        DataError: if the file is missing, truncated or not an image.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _open_error(path, "image", exc) from exc


def _png_bit_depth(path: Path) -> int | None:
    """Bit depth from a PNG's IHDR chunk, or None if the file is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or not head.startswith(_PNG_SIGNATURE):
        return None
    return head[24]


def _read_16bit_png_first_channel(path: Path) -> np.ndarray:
    import cv2  # imported here: only SYNTHIA's 16-bit labels need it

    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise DataError(f"{path}: cannot read label: OpenCV could not decode this PNG")
    if array.ndim == 2:
        return array
    # OpenCV orders colour channels B, G, R(, A): the file's first channel is index 2.
    return array[:, :, 2]


def read_label(path: str | os.PathLike) -> np.ndarray:
    """Decode a label PNG to its raw values (label ids as stored, not yet mapped).

    Returns:
        (H, W) uint8 array for 8-bit files, uint16 for 16-bit ones.

    Raises:
        DataError: if the file is missing, truncated, or an 8-bit colour (RGB) image,
            which holds colours rather than ids.
    """
    path = Path(path)
    try:
        if _png_bit_depth(path) == 16:
            return _read_16bit_png_first_channel(path)
        with Image.open(path) as img:
            img.load()
            if img.mode in ("P", "L"):
                return np.asarray(img)
            if img.mode in ("I;16", "I;16B", "I"):
                return np.asarray(img).astype(np.uint16)
            raise DataError(
                f"{path}: label image has mode {img.mode!r}; expected a single-channel "
                "('L'), palette ('P') or 16-bit label PNG holding class ids"
            )
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _open_error(path, "label", exc) from exc


def encode_png(array: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """Encode a uint8 array as PNG bytes, deterministically (no metadata).

    Args:
        array: (H, W) or (H, W, 3) uint8 array.
        palette: optional (256, 3) uint8 palette; makes an (H, W) array a "P" image.
    """
    if array.dtype != np.uint8:
        raise TypeError(f"encode_png expects uint8, got {array.dtype}")
    if palette is None:
        img = Image.fromarray(array)
    else:
        if array.ndim != 2:
            raise ValueError(f"a palette image needs an (H, W) array, got shape {array.shape}")
        height, width = array.shape
        img = Image.frombytes("P", (width, height), np.ascontiguousarray(array).tobytes())
        img.putpalette(palette.astype(np.uint8).tobytes())
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A reader never sees a partial file, and a failed write (full disk, say) leaves any
    previous file at ``path`` intact.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
