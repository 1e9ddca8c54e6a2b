"""ClassMix masks, CutMix boxes and photometric augmentation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor
from torchvision.transforms import functional as TF

from rccr.data.labels import IGNORE_INDEX, NUM_CLASSES
from rccr.method.mixing import (
    _gaussian_blur,
    box_mask,
    class_mix_masks,
    cut_mix,
    cut_mix_box,
    dacs_blur_kernel_size,
    mix,
    photometric,
    release_cut_mix_box,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _labels(seed: int, batch: int = 3, size: int = 16, ignore_frac: float = 0.2) -> Tensor:
    g = _gen(seed)
    labels = torch.randint(0, NUM_CLASSES, (batch, size, size), generator=g)
    ignore = torch.rand(batch, size, size, generator=g) < ignore_frac
    return labels.masked_fill(ignore, IGNORE_INDEX)


def _present(label: Tensor) -> set[int]:
    return set(label.unique().tolist()) - {IGNORE_INDEX}


def _chosen(label: Tensor, mask: Tensor) -> set[int]:
    return set(label[mask].unique().tolist())


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("num_classes", [1, 2, 3, 7])
def test_class_mix_masks__half_of_present_classes(seed: int, num_classes: int) -> None:
    labels = _labels(seed) % num_classes
    labels[:, 0, 0] = IGNORE_INDEX
    masks = class_mix_masks(labels, _gen(seed))
    for label, mask in zip(labels, masks, strict=True):
        present, chosen = _present(label), _chosen(label, mask)
        assert chosen <= present
        assert len(chosen) == math.ceil(len(present) / 2)
        # a class is pasted whole or not at all
        assert torch.equal(mask, torch.isin(label, torch.tensor(sorted(chosen))))


@pytest.mark.parametrize("per_image", [True, False])
def test_class_mix_masks__ignore_never_pasted(per_image: bool) -> None:
    labels = _labels(0, ignore_frac=0.5)
    masks = class_mix_masks(labels, _gen(1), per_image=per_image)
    assert not masks[labels == IGNORE_INDEX].any()
    mixed = mix(masks, labels, torch.zeros_like(labels))
    assert not (mixed == IGNORE_INDEX).any()


def test_class_mix_masks__release_draws_ignore_like_a_class() -> None:
    """method.class_mix_ignore: 255 is a candidate, so across draws it is pasted about half
    the time, and then wholly; the classes drawn are ceil(n/2) of the n values present."""
    labels = _labels(0, batch=1, ignore_frac=0.5)
    present = set(labels.unique().tolist())
    pasted_ignore = 0
    for seed in range(40):
        mask = class_mix_masks(labels, _gen(seed), ignore_is_a_class=True)[0]
        chosen = set(labels[0][mask].unique().tolist())
        assert len(chosen) == math.ceil(len(present) / 2)
        if IGNORE_INDEX in chosen:
            pasted_ignore += 1
            assert bool(mask[labels[0] == IGNORE_INDEX].all())
    assert 10 <= pasted_ignore <= 30


def test_class_mix_masks__no_valid_class_gives_empty_mask() -> None:
    labels = _labels(0)
    labels[1] = IGNORE_INDEX
    masks = class_mix_masks(labels, _gen(0))
    assert not masks[1].any()
    assert masks[0].any()


@pytest.mark.parametrize("per_image", [True, False])
def test_class_mix_masks__same_seed_same_masks(per_image: bool) -> None:
    labels = _labels(3)
    a = class_mix_masks(labels, _gen(7), per_image=per_image)
    b = class_mix_masks(labels, _gen(7), per_image=per_image)
    assert torch.equal(a, b)


def test_class_mix_masks__batch_level_draws_from_batch_classes() -> None:
    # DAFormer: candidates are the batch's classes; each image draws its own half of them
    labels = torch.zeros(2, 4, 4, dtype=torch.int64)
    labels[0, :2], labels[0, 2:], labels[1] = 1, 2, 5  # batch classes {1, 2, 5}
    draws = [class_mix_masks(labels, _gen(seed), per_image=False) for seed in range(40)]
    for masks in draws:
        # 2 of the 3 batch classes per image; pixels of unchosen classes are not pasted
        assert all(_chosen(lab, m) <= {1, 2, 5} for lab, m in zip(labels, masks, strict=True))
    # image 1 holds only class 5: with batch-level candidates it is sometimes not pasted
    pasted_1 = {bool(m[1].any()) for m in draws}
    assert pasted_1 == {True, False}
    # per image, an image with one class always pastes it
    assert all(class_mix_masks(labels, _gen(s))[1].all() for s in range(10))


@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 3),
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    num_classes=st.integers(1, NUM_CLASSES),
    per_image=st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_class_mix_masks__image_and_label_mixed_alike(
    seed: int, batch: int, height: int, width: int, num_classes: int, per_image: bool
) -> None:
    g = _gen(seed)
    src_label = torch.randint(0, num_classes + 1, (batch, height, width), generator=g)
    src_label[src_label == num_classes] = IGNORE_INDEX
    tgt_label = torch.randint(0, num_classes, (batch, height, width), generator=g)
    # channel 0 encodes the label, so the mixed image must carry the mixed label
    src_image = torch.stack([src_label.float(), torch.ones_like(src_label.float())], dim=1)
    tgt_image = torch.stack([tgt_label.float(), torch.zeros_like(tgt_label.float())], dim=1)
    mask = class_mix_masks(src_label, g, per_image=per_image)
    mix_label = mix(mask, src_label, tgt_label)
    mix_image = mix(mask, src_image, tgt_image)
    assert torch.equal(mix_image[:, 0].long(), mix_label)
    assert torch.equal(mix_image[:, 1].bool(), mask)
    assert not mask[src_label == IGNORE_INDEX].any()


@pytest.mark.parametrize(("height", "width", "stride"), [(64, 64, 8), (32, 96, 8), (16, 8, 4)])
def test_cut_mix_box__aligned_and_inside(height: int, width: int, stride: int) -> None:
    boxes = cut_mix_box(height, width, 200, stride, _gen(0))
    assert boxes.shape == (200, 4) and boxes.dtype == torch.int64
    assert (boxes % stride == 0).all()
    top, left, box_h, box_w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all()
    assert (box_h >= stride).all() and (box_w >= stride).all()
    assert (top + box_h <= height).all() and (left + box_w <= width).all()


def test_cut_mix_box__area_ratio_roughly_uniform() -> None:
    height, width = 512, 512
    boxes = cut_mix_box(height, width, 4000, 8, _gen(1)).double()
    ratio = boxes[:, 2] * boxes[:, 3] / (height * width)
    assert abs(ratio.mean().item() - 0.5) < 0.02
    assert abs((ratio < 0.25).double().mean().item() - 0.25) < 0.03


def test_cut_mix_box__same_seed_same_boxes() -> None:
    assert torch.equal(cut_mix_box(64, 64, 4, 8, _gen(3)), cut_mix_box(64, 64, 4, 8, _gen(3)))


@pytest.mark.parametrize(("height", "width"), [(60, 64), (64, 60), (4, 64)])
def test_cut_mix_box__not_multiple_of_stride_raises(height: int, width: int) -> None:
    with pytest.raises(ValueError, match="stride"):
        cut_mix_box(height, width, 2, 8, _gen(0))


@pytest.mark.parametrize("seed", range(20))
def test_release_cut_mix_box__one_box_floored_never_at_the_far_edge(seed: int) -> None:
    """method.cutmix_box=release: the same box for the batch; sides floor(512 sqrt(r) / 8) * 8
    with r the generator's first draw; the box never reaches the last row or column."""
    boxes = release_cut_mix_box(512, 512, 3, 8, _gen(seed))
    assert boxes.shape == (3, 4) and bool((boxes == boxes[0]).all())
    top, left, box_h, box_w = boxes[0].tolist()
    ratio = torch.rand((), generator=_gen(seed)).item()
    side = max(8, int(512 * math.sqrt(ratio)) // 8 * 8)
    assert (box_h, box_w) == (side, side)
    assert top % 8 == 0 and left % 8 == 0
    assert top + box_h <= 512 - 8 and left + box_w <= 512 - 8


def test_release_cut_mix_box__corners_cover_every_allowed_cell() -> None:
    corners = {
        tuple(release_cut_mix_box(64, 64, 1, 8, _gen(s))[0, :2].tolist()) for s in range(400)
    }
    sides = {int(release_cut_mix_box(64, 64, 1, 8, _gen(s))[0, 2]) for s in range(400)}
    assert sides <= {8, 16, 24, 32, 40, 48, 56} and 56 in sides
    assert (0, 0) in corners and max(max(c) for c in corners) == 48  # 64 - 8 - the smallest box


def _release_box_reference(height: int, width: int, stride: int, seed: int) -> list[int]:
    """The release's box, written out the slow way: r ~ U(0, 1), each side
    floor(side * sqrt(r) / stride) cells (at least one), each corner
    floor(u * (cells - side)) with u ~ U(0, 1) drawn after r from the same generator."""
    generator = _gen(seed)
    ratio = torch.rand((), generator=generator).item()
    u = torch.rand(2, generator=generator).tolist()
    box = []
    for k, size in enumerate((height, width)):
        cells = size // stride
        side = max(1, int(size * math.sqrt(ratio)) // stride)
        box.append((math.floor(u[k] * (cells - side)) * stride, side * stride))
    return [box[0][0], box[1][0], box[0][1], box[1][1]]


@pytest.mark.parametrize("seed", range(40))
def test_release_cut_mix_box__matches_a_loop_reference(seed: int) -> None:
    height, width = (512, 256) if seed % 2 else (64, 128)
    boxes = release_cut_mix_box(height, width, 2, 8, _gen(seed))
    assert boxes.dtype == torch.int64  # pixel indices, whatever arithmetic made them
    assert boxes.tolist() == [_release_box_reference(height, width, 8, seed)] * 2


def test_release_cut_mix_box__guards_hold_at_the_supremum_of_the_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Draws that round up to 1 (float32) would give a box of the whole side, or a corner
    one cell too far: the box still leaves the last row and column of cells free."""
    from rccr.method import mixing

    monkeypatch.setattr(mixing.torch, "rand", lambda *size, **kw: torch.ones(size[0]))
    assert release_cut_mix_box(64, 128, 1, 8, _gen(0)).tolist() == [[0, 0, 56, 120]]


@pytest.mark.parametrize(
    ("height", "width", "stride"),
    [(60, 64, 8), (64, 60, 8), (8, 64, 8), (64, 8, 8), (64, 64, 0)],
)
def test_release_cut_mix_box__not_two_cells_of_the_stride_raises(
    height: int, width: int, stride: int
) -> None:
    with pytest.raises(ValueError, match=rf"^image {height}x{width}: expected multiples of "):
        release_cut_mix_box(height, width, 2, stride, _gen(0))
    assert release_cut_mix_box(16, 16, 1, 8, _gen(0)).tolist() == [[0, 0, 8, 8]]  # 2 cells
    assert release_cut_mix_box(2, 2, 1, 1, _gen(0)).tolist() == [[0, 0, 1, 1]]  # stride 1


@pytest.mark.parametrize("seed", range(3))
def test_box_mask__area_and_placement(seed: int) -> None:
    boxes = cut_mix_box(32, 48, 5, 8, _gen(seed))
    masks = box_mask(boxes, 32, 48)
    assert masks.shape == (5, 32, 48)
    for (top, left, h, w), m in zip(boxes.tolist(), masks, strict=True):
        assert m.sum().item() == h * w
        assert m[top : top + h, left : left + w].all()


def test_cut_mix__target_inside_source_outside() -> None:
    g = _gen(0)
    src, tgt = torch.rand(3, 3, 32, 32, generator=g), torch.rand(3, 3, 32, 32, generator=g)
    boxes = cut_mix_box(32, 32, 3, 8, g)
    mixed = cut_mix(src, tgt, boxes)
    inside = box_mask(boxes, 32, 32)[:, None].expand_as(src)
    assert torch.equal(mixed[inside], tgt[inside])
    assert torch.equal(mixed[~inside], src[~inside])


def test_mix__names_both_shapes_when_they_differ() -> None:
    mask = torch.ones(2, 4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"^inside \(2, 3, 4, 4\) != outside \(2, 4, 4\)$"):
        mix(mask, torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4))


@pytest.mark.parametrize(("side", "kernel"), [(512, 51), (128, 13), (64, 7), (1024, 103), (8, 1)])
def test_dacs_blur_kernel_size__formula(side: int, kernel: int) -> None:
    assert dacs_blur_kernel_size(side) == kernel
    assert kernel % 2 == 1


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (3, 3, 24, 40)])
def test_photometric__shape_dtype_range(shape: tuple[int, int, int, int]) -> None:
    images = torch.rand(*shape, generator=_gen(0))
    out = photometric(images, _gen(1), jitter_prob=1.0, blur_prob=1.0)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0 and out.max() <= 1


def test_photometric__same_seed_same_output() -> None:
    images = torch.rand(4, 3, 32, 32, generator=_gen(0))
    assert torch.equal(photometric(images, _gen(5)), photometric(images, _gen(5)))


def test_photometric__probability_zero_is_identity() -> None:
    images = torch.rand(3, 3, 32, 32, generator=_gen(0))
    out = photometric(images, _gen(1), jitter_prob=0.0, blur_prob=0.0)
    assert torch.equal(out, images)


@pytest.mark.parametrize(("jitter_prob", "blur_prob"), [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)])
def test_photometric__probability_one_changes_every_image(
    jitter_prob: float, blur_prob: float
) -> None:
    images = torch.rand(3, 3, 32, 32, generator=_gen(0))
    out = photometric(images, _gen(2), jitter_prob=jitter_prob, blur_prob=blur_prob)
    assert all((o - i).abs().max() > 1e-3 for o, i in zip(out, images, strict=True))


def _naive_blur(images: np.ndarray, sigma: list[float], frac: float = 0.1) -> np.ndarray:
    """kornia's ``gaussian_blur2d`` as DACS calls it, pixel by pixel: the outer product of two
    normalised 1-d Gaussians of DACS's kernel size per side, over the image reflected at its
    border (the edge pixel not repeated)."""
    b, _, h, w = images.shape
    kh, kw = dacs_blur_kernel_size(h, frac), dacs_blur_kernel_size(w, frac)
    out = np.zeros_like(images)
    for i in range(b):
        gy = np.exp(-((np.arange(kh) - kh // 2) ** 2) / (2 * sigma[i] ** 2))
        gx = np.exp(-((np.arange(kw) - kw // 2) ** 2) / (2 * sigma[i] ** 2))
        gy, gx = gy / gy.sum(), gx / gx.sum()
        pad = ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2))
        padded = np.pad(images[i], pad, mode="reflect")
        for dy in range(kh):
            for dx in range(kw):
                out[i] += gy[dy] * gx[dx] * padded[:, dy : dy + h, dx : dx + w]
    return out


@pytest.mark.parametrize("frac", [0.1, 0.2])
def test_gaussian_blur__matches_a_pixel_loop_per_image_sigma(frac: float) -> None:
    """Height and width get their own kernel sizes (30 and 50: 3 and 5 at 0.1, 5 and 9 at
    0.2), each image its own sigma (float32, as ``photometric`` draws it), and float64
    images stay float64."""
    images = torch.rand(2, 3, 30, 50, generator=_gen(4), dtype=torch.float64)
    sigma = torch.tensor([0.6, 1.1])
    out = _gaussian_blur(images, sigma, frac)
    assert out.dtype == torch.float64
    expected = _naive_blur(images.numpy(), sigma.tolist(), frac)
    assert np.allclose(out.numpy(), expected, rtol=0, atol=1e-7)  # sigma squared in float32
    assert not np.allclose(expected, images.numpy(), atol=1e-2)  # it does blur


def _naive_photometric(
    images: Tensor, seed: int, jitter_prob: float, blur_prob: float, per_batch: bool
) -> Tensor:
    """docs/method.md#mixing, image by image: seven uniform draws per image, in the
    documented order (brightness, contrast, saturation, hue, sigma, jitter?, blur?); a
    jitter factor is U(0.75, 1.25), the hue shift U(-0.25, 0.25), sigma U(0.15, 1.15).
    ``per_batch``: the first image's sigma and decisions hold for all."""
    draws = torch.rand(len(images), 7, generator=_gen(seed)).tolist()
    out = []
    for image, d in zip(images, draws, strict=True):
        sigma, jitter, blur = draws[0][4:] if per_batch else d[4:]
        if jitter < jitter_prob:
            image = TF.adjust_brightness(image, 0.75 + 0.5 * d[0])
            image = TF.adjust_contrast(image, 0.75 + 0.5 * d[1])
            image = TF.adjust_saturation(image, 0.75 + 0.5 * d[2])
            image = TF.adjust_hue(image, -0.25 + 0.5 * d[3])
        if blur < blur_prob:
            blurred = _naive_blur(image[None].double().numpy(), [0.15 + sigma])[0]
            image = torch.from_numpy(blurred).float()
        out.append(image.clamp(0, 1))
    return torch.stack(out)


@pytest.mark.parametrize("per_batch", [False, True])
@pytest.mark.parametrize("seed", [3, 4])
def test_photometric__matches_the_documented_draws_image_by_image(
    per_batch: bool, seed: int
) -> None:
    images = torch.rand(8, 3, 30, 50, generator=_gen(seed + 10))
    out = photometric(images, _gen(seed), jitter_prob=0.5, blur_prob=0.5, per_batch=per_batch)
    expected = _naive_photometric(images, seed, 0.5, 0.5, per_batch)
    assert torch.allclose(out, expected, rtol=0, atol=1e-5)
    changed = [not torch.equal(o, i) for o, i in zip(out, images, strict=True)]
    assert per_batch or (any(changed) and not all(changed))  # both branches taken


@pytest.mark.parametrize("seed", [3, 5])
def test_photometric__its_defaults_are_dacs(seed: int) -> None:
    """Called as the training steps call it, with every default: jitter of strength 0.25 with
    probability 0.8, blur with probability 0.5, sigma ~ U(0.15, 1.15), kernel 0.1 of each
    side, decided per image, channels in RGB order (docs/method.md#mixing)."""
    images = torch.rand(16, 3, 30, 50, generator=_gen(seed + 10))
    out = photometric(images, _gen(seed))
    expected = _naive_photometric(images, seed, jitter_prob=0.8, blur_prob=0.5, per_batch=False)
    assert torch.allclose(out, expected, rtol=0, atol=1e-5)


def test_photometric__blur_preserves_constant_image() -> None:
    images = torch.full((2, 3, 20, 20), 0.3)
    out = photometric(images, _gen(0), jitter_prob=0.0, blur_prob=1.0)
    assert torch.allclose(out, images, atol=1e-6)


def test_photometric__release_decides_once_per_batch() -> None:
    """method.photometric=release: either every image of the batch is jittered or none."""
    images = torch.rand(6, 3, 16, 16, generator=_gen(0))
    for seed in range(12):
        out = photometric(images, _gen(seed), per_batch=True, blur_prob=0.0)
        changed = [not torch.allclose(o, i) for o, i in zip(out, images, strict=True)]
        assert len(set(changed)) == 1
    mixed = 0
    for seed in range(12):  # the default decides per image: some batches are mixed
        out = photometric(images, _gen(seed), blur_prob=0.0)
        mixed += len({not torch.allclose(o, i) for o, i in zip(out, images, strict=True)}) == 2
    assert mixed > 0


def test_photometric__release_jitters_in_bgr_order() -> None:
    images = torch.rand(4, 3, 16, 16, generator=_gen(0))
    bgr = photometric(images, _gen(3), jitter_prob=1.0, blur_prob=0.0, bgr=True)
    expected = photometric(images.flip(1), _gen(3), jitter_prob=1.0, blur_prob=0.0).flip(1)
    torch.testing.assert_close(bgr, expected)
    rgb = photometric(images, _gen(3), jitter_prob=1.0, blur_prob=0.0)
    assert not torch.allclose(bgr, rgb)  # hue and saturation act on other channels


def test_photometric__release_blurs_the_batch_with_one_sigma() -> None:
    """Identical images stay identical under the per-batch blur (one sigma), not per image."""
    images = torch.rand(1, 3, 32, 32, generator=_gen(0)).expand(4, 3, 32, 32)
    for seed in range(4):
        out = photometric(images, _gen(seed), jitter_prob=0.0, blur_prob=1.0, per_batch=True)
        assert all(torch.equal(out[0], o) for o in out)
    out = photometric(images, _gen(0), jitter_prob=0.0, blur_prob=1.0)
    assert not all(torch.equal(out[0], o) for o in out)


def test_cut_mix_box__each_image_its_own_corner_and_a_checked_area() -> None:
    """One box per image: over a batch the corners differ (a single draw broadcast over the
    batch would give one corner); a fixed area must lie in (0, 1]."""
    boxes = cut_mix_box(128, 128, 32, 8, _gen(3))
    assert len({tuple(b[:2]) for b in boxes.tolist()}) > 8
    assert cut_mix_box(64, 64, 2, 8, _gen(0), area=1.0)[:, 2:].tolist() == [[64, 64]] * 2
    for area in (0.0, 1.5, -0.2):
        with pytest.raises(ValueError, match=rf"^area must be in \(0, 1\], got {area}$"):
            cut_mix_box(64, 64, 2, 8, _gen(0), area=area)
    for height, width in ((4, 64), (64, 4)):  # one side under a cell
        with pytest.raises(ValueError, match="stride"):
            cut_mix_box(height, width, 2, 8, _gen(0))


@pytest.mark.parametrize(
    ("height", "width", "stride"),
    [(0, 64, 8), (64, 0, 8), (64, 64, 0), (64, 64, -8)],  # each is a multiple of the stride
)
def test_cut_mix_box__empty_sides_and_strides_below_one_raise(
    height: int, width: int, stride: int
) -> None:
    """Each guard on its own: a side of 0 is a multiple of any stride, and 64 of -8, so
    only the "at least one cell" and "stride >= 1" checks can refuse these."""
    with pytest.raises(ValueError, match="stride"):
        cut_mix_box(height, width, 2, stride, _gen(0))
