"""Mixing and strong augmentation: DACS ClassMix, RCCR's CutMix box, photometric noise.

- **ClassMix** (DACS, Tranheden et al., WACV 2021, Sec. 3.2): half of the classes present in
  a source label (rounded up) are pasted from the source image onto the target image;
  labels, pseudo-labels and pixel weights are mixed with the same mask.
- **CutMix box** (RCCR, Sec. 3.3): a rectangle whose sides are multiples of the feature
  stride, area ratio ~ Beta(1, 1), cut from the target image and pasted into the source
  image at the same place, so every feature cell is either wholly inside or wholly outside.
- **Photometric** (DACS ``transformsgpu.py``): colour jitter and Gaussian blur.

Randomness: every function takes a ``torch.Generator``; draws happen on the generator's
device (a CPU generator is simplest and bit-for-bit reproducible) and the results are moved
to the tensors' device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from rccr.data.labels import IGNORE_INDEX

__all__ = [
    "box_mask",
    "class_mix_masks",
    "cut_mix",
    "cut_mix_box",
    "dacs_blur_kernel_size",
    "mix",
    "photometric",
    "release_cut_mix_box",
]


def _choose_half(classes: Tensor, generator: torch.Generator) -> Tensor:
    """ceil(n/2) of the n ``classes``, uniformly without replacement."""
    n = classes.numel()
    order = torch.randperm(n, generator=generator, device=generator.device)
    return classes[order[: (n + 1) // 2].to(classes.device)]


def class_mix_masks(
    labels: Tensor,
    generator: torch.Generator,
    per_image: bool = True,
    ignore_is_a_class: bool = False,
) -> Tensor:
    """DACS ClassMix masks: pixels of a random half of the classes present in each label.

    For every image, the classes present in its source label are drawn without replacement,
    ``ceil(n / 2)`` of them, as DACS's ``(nclasses + nclasses % 2) / 2``. By default
    ``IGNORE_INDEX`` is not a candidate, so ignored pixels are never pasted (this project's
    choice); DACS's and the release's code draw from ``torch.unique(label)``, 255 included
    (``ignore_is_a_class=True``, ``method.class_mix_ignore``), so in about half the draws
    of an image with ignored pixels those are pasted too. An image with no candidate class
    gets an all-False mask.

    ``per_image=False`` reproduces DAFormer's ``get_class_masks``, which calls
    ``torch.unique(labels)`` on the whole batch: the candidate classes are those present
    anywhere in the batch, and each image still draws its own half of them (so a chosen
    class may be absent from that image).

    Args:
        labels: (B, H, W) int64 source labels, train ids with ``IGNORE_INDEX``.
        generator: source of randomness.
        per_image: DACS (True) or DAFormer's batch-level candidate set (False).
        ignore_is_a_class: whether ``IGNORE_INDEX`` is a candidate like any class.

    Returns:
        (B, H, W) bool, True where the source pixel is pasted.
    """

    def candidates(present: Tensor) -> Tensor:
        return present if ignore_is_a_class else present[present != IGNORE_INDEX]

    masks = torch.zeros_like(labels, dtype=torch.bool)  # (B, H, W)
    batch_classes = candidates(labels.unique())  # (n,)
    for b in range(labels.shape[0]):
        classes = candidates(labels[b].unique()) if per_image else batch_classes  # (n_b,)
        masks[b] = torch.isin(labels[b], _choose_half(classes, generator))
    return masks


def mix(mask: Tensor, inside: Tensor, outside: Tensor) -> Tensor:
    """Take ``inside`` where ``mask`` is True, ``outside`` elsewhere.

    The same mask mixes images, labels and pixel weights alike.

    Args:
        mask: (B, H, W) bool.
        inside: (B, C, H, W) or (B, H, W), taken where ``mask``.
        outside: same shape and dtype as ``inside``.

    Returns:
        Tensor shaped like ``inside``.
    """
    if inside.shape != outside.shape:
        raise ValueError(f"inside {tuple(inside.shape)} != outside {tuple(outside.shape)}")
    if inside.dim() == 4:
        mask = mask.unsqueeze(1)  # (B, 1, H, W), broadcast over channels
    return torch.where(mask, inside, outside)


def cut_mix_box(
    height: int,
    width: int,
    batch: int,
    stride: int,
    generator: torch.Generator,
    area: float | None = None,
) -> Tensor:
    """RCCR's CutMix boxes, one per image, aligned to the feature grid.

    The area ratio is r ~ Beta(1, 1) = Uniform(0, 1); the sides are ``sqrt(r) * H`` and
    ``sqrt(r) * W`` rounded to the nearest multiple of ``stride`` and clamped to
    ``[stride, H]`` (resp. W). The top-left corner is a uniformly random multiple of
    ``stride`` such that the box fits.

    Args:
        height: image height H, a multiple of ``stride``.
        width: image width W, a multiple of ``stride``.
        batch: number of boxes B.
        stride: the feature stride (8 for DeepLab-v2).
        generator: source of randomness; the boxes live on its device.
        area: a fixed area ratio r in (0, 1] instead of the random draw (for inspection);
            the draw still happens, so the corners do not depend on ``area``.

    Returns:
        (B, 4) int64 ``[top, left, box_h, box_w]`` in pixels.

    Raises:
        ValueError: if H or W is not a positive multiple of ``stride``.
    """
    if stride < 1 or height < stride or width < stride or height % stride or width % stride:
        raise ValueError(f"image {height}x{width} is not a multiple of stride {stride}")
    if area is not None and not 0 < area <= 1:
        raise ValueError(f"area must be in (0, 1], got {area}")
    cells = torch.tensor([height // stride, width // stride], device=generator.device)  # (2,)
    ratio = torch.rand(batch, 1, generator=generator, device=generator.device)  # (B, 1)
    if area is not None:
        ratio = torch.full_like(ratio, area)
    sides = torch.round(ratio.sqrt() * cells).long().clamp(min=1)  # (B, 2) in cells
    sides = torch.minimum(sides, cells)
    room = cells - sides + 1  # (B, 2) number of valid corner cells
    u = torch.rand(batch, 2, generator=generator, device=generator.device)  # (B, 2)
    corners = (u * room).long().clamp(max=room - 1)  # (B, 2) in cells
    return torch.cat([corners, sides], dim=1) * stride  # (B, 4)


def release_cut_mix_box(
    height: int, width: int, batch: int, stride: int, generator: torch.Generator
) -> Tensor:
    """The release's CutMix box: one box for the whole batch (``method.cutmix_box:
    release``, docs/method.md#paper-release-and-this-project).

    Area ratio r ~ U(0, 1); each side ``floor(side * sqrt(r) / stride) * stride``, at least
    ``stride``; the corner cell uniform in ``[0, cells - box_cells)``, so the box never
    reaches the last row or column of cells (the release draws ``randint(n - k)``).

    Args:
        height, width: image size, multiples of ``stride``.
        batch: rows to return (all the same box).
        stride: the feature stride.
        generator: source of randomness.

    Returns:
        (B, 4) int64 ``[top, left, box_h, box_w]`` in pixels, the same box in every row.

    Raises:
        ValueError: if H or W is not a positive multiple of ``stride`` of at least two cells.
    """
    if stride < 1 or height < 2 * stride or width < 2 * stride or height % stride or width % stride:
        raise ValueError(f"image {height}x{width}: expected multiples of {stride}, >= 2 cells")
    cells = torch.tensor([height // stride, width // stride])  # (2,)
    ratio = torch.rand((), generator=generator, device=generator.device).item()
    sides = (cells * stride * math.sqrt(ratio)).long() // stride  # (2,) in cells, floor
    sides = torch.minimum(sides.clamp(min=1), cells - 1)  # (2,) a corner must fit below
    u = torch.rand(2, generator=generator, device=generator.device).cpu()  # (2,)
    corners = (u * (cells - sides)).long().clamp(max=cells - sides - 1)  # (2,)
    box = torch.cat([corners, sides]) * stride  # (4,)
    return box.to(generator.device).expand(batch, 4).clone()  # (B, 4)


def box_mask(boxes: Tensor, height: int, width: int) -> Tensor:
    """Boolean masks of ``[top, left, box_h, box_w]`` boxes.

    Args:
        boxes: (B, 4) int64 from :func:`cut_mix_box`.
        height: H.
        width: W.

    Returns:
        (B, H, W) bool on ``boxes.device``, True inside the box.
    """
    rows = torch.arange(height, device=boxes.device)[None, :, None]  # (1, H, 1)
    cols = torch.arange(width, device=boxes.device)[None, None, :]  # (1, 1, W)
    top, left, box_h, box_w = (boxes[:, i, None, None] for i in range(4))  # each (B, 1, 1)
    return (rows >= top) & (rows < top + box_h) & (cols >= left) & (cols < left + box_w)


def cut_mix(source_image: Tensor, target_image: Tensor, boxes: Tensor) -> Tensor:
    """Paste the target patch inside each box into the source image, at the same place.

    Args:
        source_image: (B, 3, H, W), kept outside the box.
        target_image: (B, 3, H, W), taken inside the box.
        boxes: (B, 4) int64 ``[top, left, box_h, box_w]``.

    Returns:
        (B, 3, H, W) mixed image.
    """
    height, width = source_image.shape[-2:]
    inside = box_mask(boxes.to(source_image.device), height, width)  # (B, H, W)
    return mix(inside, target_image, source_image)


def dacs_blur_kernel_size(side: int, frac: float = 0.1) -> int:
    """DACS's blur kernel size for an image side: the odd number near ``frac`` of it.

    Reproduces ``int(np.floor(np.ceil(0.1 * s) - 0.5 + np.ceil(0.1 * s) % 2))`` from DACS
    ``transformsgpu.gaussian_blur`` (512 -> 51, 128 -> 13, 64 -> 7): ``ceil(0.1 * s)`` if
    odd, else one less.
    """
    c = math.ceil(frac * side)
    return math.floor(c - 0.5 + c % 2)


def _gaussian_blur(images: Tensor, sigma: Tensor, frac: float) -> Tensor:
    """Separable Gaussian blur with one sigma per image, reflect padding as in kornia.

    Args:
        images: (B, C, H, W).
        sigma: (B,) standard deviations in pixels.
        frac: kernel size as a fraction of each side, see :func:`dacs_blur_kernel_size`.
    """
    b, c, h, w = images.shape
    out = images.reshape(1, b * c, h, w)  # (1, B*C, H, W): one conv group per channel
    for dim, k in ((2, dacs_blur_kernel_size(h, frac)), (3, dacs_blur_kernel_size(w, frac))):
        x = torch.arange(k, device=images.device, dtype=images.dtype) - (k - 1) / 2  # (k,)
        kernel = torch.exp(-(x[None] ** 2) / (2 * sigma[:, None] ** 2))  # (B, k)
        kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B*C, k)
        if dim == 2:
            weight, pad = kernel[:, None, :, None], (0, 0, k // 2, k // 2)  # (B*C, 1, k, 1)
        else:
            weight, pad = kernel[:, None, None, :], (k // 2, k // 2, 0, 0)  # (B*C, 1, 1, k)
        out = F.conv2d(F.pad(out, pad, mode="reflect"), weight, groups=b * c)
    return out.reshape(b, c, h, w)


def photometric(
    images: Tensor,
    generator: torch.Generator,
    jitter_strength: float = 0.25,
    jitter_prob: float = 0.8,
    blur_prob: float = 0.5,
    blur_sigma: tuple[float, float] = (0.15, 1.15),
    blur_kernel_frac: float = 0.1,
    per_batch: bool = False,
    bgr: bool = False,
) -> Tensor:
    """DACS's strong photometric augmentation: colour jitter, then Gaussian blur.

    Per image, with probability ``jitter_prob``: brightness, contrast, saturation
    (factors ~ U(1-s, 1+s)) and hue (shift ~ U(-s, s) hue turns), applied in that fixed
    order with torchvision's ``adjust_*`` semantics. Then, per image with probability
    ``blur_prob``, a Gaussian blur with sigma ~ U(``blur_sigma``) and the kernel size of
    :func:`dacs_blur_kernel_size` for each side. All random numbers are drawn up front, in
    a fixed order, so the result depends only on the generator's state.

    The release (``method.photometric: release``) decides once per batch whether to jitter
    and whether to blur, with one blur sigma for the batch (``per_batch``), and jitters
    its caffe-style BGR images, so saturation and hue act on the channels in BGR order
    (``bgr``); the jitter factors stay per image, as kornia draws them.

    Args:
        images: (B, 3, H, W) float in [0, 1].
        generator: source of randomness.
        jitter_strength: s, as in DACS ``ColorJitter(s, s, s, s)`` with s = 0.25.
        jitter_prob: probability of colour jitter per image.
        blur_prob: probability of blur per image.
        blur_sigma: range of the blur's standard deviation in pixels.
        blur_kernel_frac: kernel size as a fraction of each side (DACS: 0.1).
        per_batch: decide jitter and blur, and draw the blur's sigma, once for the batch.
        bgr: jitter the images with their channels in BGR order.

    Returns:
        (B, 3, H, W) float in [0, 1].
    """
    b, s = images.shape[0], jitter_strength
    u = torch.rand(b, 7, generator=generator, device=generator.device).to(images.device)
    if per_batch:  # the first image's draws decide for all
        u[:, 4:] = u[:1, 4:]
    factors = 1 - s + 2 * s * u[:, :3]  # (B, 3) brightness, contrast, saturation
    hue = (2 * u[:, 3] - 1) * s  # (B,)
    sigma = blur_sigma[0] + (blur_sigma[1] - blur_sigma[0]) * u[:, 4]  # (B,)
    jitter, blur = u[:, 5] < jitter_prob, u[:, 6] < blur_prob  # (B,) each

    out = images.flip(1) if bgr else images.clone()  # (B, 3, H, W) in the jitter's order
    for i in torch.nonzero(jitter).flatten().tolist():
        img = TF.adjust_brightness(out[i], float(factors[i, 0]))
        img = TF.adjust_contrast(img, float(factors[i, 1]))
        img = TF.adjust_saturation(img, float(factors[i, 2]))
        out[i] = TF.adjust_hue(img, float(hue[i]))
    if bgr:
        out = out.flip(1)  # back to RGB
    if bool(blur.any()):
        out = torch.where(
            blur[:, None, None, None], _gaussian_blur(out, sigma, blur_kernel_frac), out
        )
    return out.clamp(0, 1)
