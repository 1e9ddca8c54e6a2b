"""Pseudo-labels, DACS weights and the pixel-weighted cross-entropy against naive loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from rccr.data.labels import IGNORE_INDEX
from rccr.method.pseudo_label import (
    dacs_weight,
    mixed_pixel_weight,
    pseudo_label,
    weighted_cross_entropy,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", [(2, 5, 4, 6), (1, 19, 8, 8)])
def test_pseudo_label__argmax_and_max_of_softmax(shape: tuple[int, int, int, int]) -> None:
    logits = torch.randn(*shape, generator=_gen(0), requires_grad=True)
    labels, confidence = pseudo_label(logits)
    b, c, h, w = shape
    for i in range(b):
        for y in range(h):
            for x in range(w):
                probs = [math.exp(v) for v in logits[i, :, y, x].tolist()]
                best = max(range(c), key=lambda k: probs[k])
                assert labels[i, y, x].item() == best
                assert confidence[i, y, x].item() == pytest.approx(probs[best] / sum(probs))
    assert labels.dtype == torch.int64 and not confidence.requires_grad


@pytest.mark.parametrize("size", [(8, 12), (5, 7)])
def test_pseudo_label__upsamples_logits_first(size: tuple[int, int]) -> None:
    logits = torch.randn(2, 4, 4, 6, generator=_gen(1))
    labels, confidence = pseudo_label(logits, size=size)
    assert labels.shape == (2, *size) and confidence.shape == (2, *size)
    up = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    assert torch.equal(labels, up.argmax(1))
    assert torch.allclose(confidence, up.softmax(1).amax(1))


@pytest.mark.parametrize("align_corners", [True, False])
def test_pseudo_label__align_corners_switch(align_corners: bool) -> None:
    """method.align_corners: the release upsamples the teacher's logits with corners aligned."""
    logits = torch.randn(2, 4, 9, 9, generator=_gen(2))
    labels, confidence = pseudo_label(logits, size=(64, 64), align_corners=align_corners)
    up = F.interpolate(logits, size=(64, 64), mode="bilinear", align_corners=align_corners)
    assert torch.equal(labels, up.argmax(1))
    other = F.interpolate(logits, size=(64, 64), mode="bilinear", align_corners=not align_corners)
    assert not torch.allclose(confidence, other.softmax(1).amax(1))


@pytest.mark.parametrize("threshold", [0.5, 0.968])
@pytest.mark.parametrize("per_image", [True, False])
def test_dacs_weight__matches_naive_count(threshold: float, per_image: bool) -> None:
    confidence = torch.rand(3, 5, 7, generator=_gen(2)) ** 0.1
    weight = dacs_weight(confidence, threshold, per_image=per_image)
    counts = [sum(v >= threshold for v in c.flatten().tolist()) for c in confidence]
    expected = [n / 35 for n in counts] if per_image else [sum(counts) / (3 * 35)] * 3
    assert weight.shape == (3,)
    assert weight.tolist() == pytest.approx(expected)


def test_dacs_weight__a_confidence_at_the_threshold_counts() -> None:
    """DACS: ``max_probs.ge(0.968)``, so a pixel exactly at the threshold is confident."""
    confidence = torch.tensor([[[0.5, 0.25], [0.5, 0.75]]])
    assert dacs_weight(confidence, 0.5).tolist() == [0.75]


def test_dacs_weight__by_default_one_share_for_the_whole_batch() -> None:
    """As the training step calls it: one share over the batch for every image (3 of 4
    pixels confident in the first image, 1 of 4 in the second: 0.5 for both)."""
    confidence = torch.tensor([[[0.99, 0.97], [0.98, 0.1]], [[0.99, 0.2], [0.3, 0.4]]])
    assert dacs_weight(confidence, 0.968).tolist() == [0.5, 0.5]


def test_mixed_pixel_weight__one_on_source_target_weight_elsewhere() -> None:
    mask = torch.rand(3, 4, 5, generator=_gen(3)) < 0.5
    target_weight = torch.tensor([0.1, 0.5, 0.9])
    weight = mixed_pixel_weight(mask, target_weight)
    for b, y, x in torch.cartesian_prod(torch.arange(3), torch.arange(4), torch.arange(5)):
        expected = 1.0 if mask[b, y, x] else target_weight[b].item()
        assert weight[b, y, x].item() == pytest.approx(expected)


def _naive_weighted_ce(logits: Tensor, labels: Tensor, weight: Tensor) -> Tensor:
    b, _, h, w = logits.shape
    total = logits.new_zeros(())
    for i in range(b):
        for y in range(h):
            for x in range(w):
                label = int(labels[i, y, x])
                if label != IGNORE_INDEX:
                    log_p = logits[i, :, y, x].log_softmax(0)[label]
                    total = total - weight[i, y, x] * log_p
    return total / (b * h * w)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("ignore_frac", [0.0, 0.3])
def test_weighted_cross_entropy__matches_naive_loop(seed: int, ignore_frac: float) -> None:
    g = _gen(seed)
    logits = torch.randn(2, 4, 3, 5, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (2, 3, 5), generator=g)
    labels[torch.rand(2, 3, 5, generator=g) < ignore_frac] = IGNORE_INDEX
    weight = torch.rand(2, 3, 5, generator=g, dtype=torch.float64)
    fast_logits = logits.clone().requires_grad_(True)
    slow_logits = logits.clone().requires_grad_(True)
    fast = weighted_cross_entropy(fast_logits, labels, weight)
    slow = _naive_weighted_ce(slow_logits, labels, weight)
    fast.backward()
    slow.backward()
    assert torch.allclose(fast, slow)
    assert fast_logits.grad is not None and slow_logits.grad is not None
    assert torch.allclose(fast_logits.grad, slow_logits.grad)


def test_weighted_cross_entropy__ignored_pixels_contribute_nothing() -> None:
    g = _gen(4)
    logits = torch.randn(2, 4, 3, 5, generator=g, requires_grad=True)
    labels = torch.randint(0, 4, (2, 3, 5), generator=g)
    labels[0] = IGNORE_INDEX
    weight = torch.ones(2, 3, 5)
    loss = weighted_cross_entropy(logits, labels, weight)
    loss.backward()
    assert logits.grad is not None
    assert (logits.grad[0] == 0).all()
    # the denominator still counts ignored pixels: half the pixels, half the loss
    only_valid = weighted_cross_entropy(logits[1:], labels[1:], weight[1:])
    assert torch.allclose(loss, only_valid / 2)
