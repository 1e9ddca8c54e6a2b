"""Teacher pseudo-labels, DACS confidence weights and the pixel-weighted cross-entropy.

DACS (Tranheden et al., WACV 2021, Sec. 3.3) trains the student on the mixed image with the
teacher's argmax as target, weighting target pixels by the fraction of teacher predictions
whose confidence reaches 0.968 and pasted source pixels (ground truth) by 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rccr.data.labels import IGNORE_INDEX

__all__ = ["dacs_weight", "mixed_pixel_weight", "pseudo_label", "weighted_cross_entropy"]


@torch.no_grad()
def pseudo_label(
    teacher_logits: Tensor, size: tuple[int, int] | None = None, align_corners: bool = False
) -> tuple[Tensor, Tensor]:
    """Teacher argmax and its softmax probability (the confidence), without gradients.

    The logits are first upsampled bilinearly to the label size, then softmaxed. DACS and
    the release upsample with ``align_corners=True`` (on the release's 65x65 grid for a 512
    crop); the default ``False`` treats pixels as areas, as the images were resized
    (``method.align_corners``, docs/method.md#paper-release-and-this-project).

    Args:
        teacher_logits: (B, C, h, w) teacher logits.
        size: (H, W) to upsample to, or None to keep (h, w).
        align_corners: of the bilinear upsampling.

    Returns:
        ``(pseudo_label, confidence)``: (B, H, W) int64 and (B, H, W) float.
    """
    if size is not None and tuple(teacher_logits.shape[-2:]) != tuple(size):
        teacher_logits = F.interpolate(
            teacher_logits, size=size, mode="bilinear", align_corners=align_corners
        )  # (B, C, H, W)
    confidence, labels = teacher_logits.detach().softmax(dim=1).max(dim=1)  # (B, H, W) each
    return labels, confidence


def dacs_weight(confidence: Tensor, threshold: float, per_image: bool = False) -> Tensor:
    """DACS's target weight: the fraction of pixels with confidence >= ``threshold``.

    DACS (and DAFormer) compute ONE fraction over the whole batch
    (``sum(max_probs.ge(0.968)) / numel``) and use it for every image: the default. With
    ``per_image=True`` each image gets its own fraction.

    Args:
        confidence: (B, H, W) teacher confidence.
        threshold: confidence threshold (DACS: 0.968, ``method.pseudo_label_threshold``).
        per_image: one fraction per image instead of one per batch.

    Returns:
        (B,) float weights in [0, 1], without gradients.
    """
    confident = (confidence.detach() >= threshold).float()  # (B, H, W)
    if per_image:
        return confident.flatten(1).mean(dim=1)  # (B,)
    return confident.mean().expand(confidence.shape[0]).clone()  # (B,)


def mixed_pixel_weight(mask: Tensor, target_weight: Tensor) -> Tensor:
    """Pixel weights of a ClassMix image: 1 on pasted source pixels, else the target weight.

    Args:
        mask: (B, H, W) bool, True on pixels pasted from the source image.
        target_weight: (B,) weight of each image's target pixels (:func:`dacs_weight`).

    Returns:
        (B, H, W) float.
    """
    target = target_weight[:, None, None].expand(mask.shape)  # (B, H, W)
    return torch.where(mask, torch.ones_like(target), target)


def weighted_cross_entropy(
    logits: Tensor, labels: Tensor, pixel_weight: Tensor, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Pixel-weighted cross-entropy, averaged over ALL pixels (DACS).

    ``mean_{b,i,j}( w_bij * CE_bij )`` where ignored pixels have CE = 0 but still count in
    the denominator B*H*W. This is DACS's ``CrossEntropyLoss2dPixelWiseWeighted``
    (``reduction='none'`` then ``torch.mean(loss * pixelWiseWeight)``); it keeps the loss
    scale independent of how many pixels are ignored or confident, so the DACS weight acts
    as a real down-weighting rather than being normalised away.

    Args:
        logits: (B, C, H, W) student logits.
        labels: (B, H, W) int64 targets with ``ignore_index``.
        pixel_weight: (B, H, W) float weights (detached by the caller if need be).
        ignore_index: label value that contributes zero loss.

    Returns:
        Scalar loss.
    """
    ce = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="none")  # (B, H, W)
    return (ce * pixel_weight).mean()
