"""Joint transforms keep image and label aligned."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rccr.data.transforms import JointTransform, Size


def _pair(width: int = 40, height: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """An image whose red channel equals its label, so alignment is checkable."""
    label = (np.arange(width)[None, :] + 7 * np.arange(height)[:, None]) % 19
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[..., 0] = label
    return image, label.astype(np.uint8)


def test_size__parse_and_format() -> None:
    assert Size.parse("1280x720") == Size(1280, 720)
    assert str(Size(256, 128)) == "256x128"


@pytest.mark.parametrize("text", ["1280", "0x5", "axb", "12x-3", ""])
def test_size__parse_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match=r"WIDTHxHEIGHT|positive"):
        Size.parse(text)


def test_transform__no_op_gives_tensors() -> None:
    image, label = _pair()
    x, y = JointTransform()(image, label)
    assert x.shape == (3, 30, 40) and x.dtype == torch.float32
    assert float(x.max()) <= 1.0
    assert y.dtype == torch.int64
    np.testing.assert_array_equal(y.numpy(), label)


def test_transform__resize_keeps_label_values() -> None:
    image, label = _pair()
    x, y = JointTransform(resize=Size(80, 60))(image, label)
    assert x.shape == (3, 60, 80) and y.shape == (60, 80)
    assert set(np.unique(y.numpy())) <= set(np.unique(label))


def test_transform__evaluation_keeps_label_size() -> None:
    image, label = _pair()
    x, y = JointTransform(resize=Size(20, 15), resize_label=False)(image, label)
    assert x.shape == (3, 15, 20) and y.shape == (30, 40)


@pytest.mark.parametrize("seed", range(5))
def test_transform__crop_and_flip_keep_alignment(seed: int) -> None:
    torch.manual_seed(seed)
    image, label = _pair()
    x, y = JointTransform(crop=Size(16, 12), flip=True)(image, label)
    assert x.shape == (3, 12, 16) and y.shape == (12, 16)
    np.testing.assert_array_equal((x[0] * 255).round().long().numpy(), y.numpy())


def test_transform__same_seed_same_crop() -> None:
    image, label = _pair()
    t = JointTransform(crop=Size(16, 12), flip=True)
    torch.manual_seed(3)
    a = t(image, label)
    torch.manual_seed(3)
    b = t(image, label)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_transform__crop_larger_than_image_raises() -> None:
    image, label = _pair()
    with pytest.raises(ValueError, match="larger than the image 40x30"):
        JointTransform(crop=Size(64, 12))(image, label)
    with pytest.raises(ValueError, match="larger than the resized image"):
        JointTransform(resize=Size(32, 32), crop=Size(64, 12))


def test_transform__evaluation_mode_refuses_crop() -> None:
    with pytest.raises(ValueError, match="resize_label=False"):
        JointTransform(crop=Size(4, 4), resize_label=False)
