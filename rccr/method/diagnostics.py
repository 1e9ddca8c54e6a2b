"""Self-training diagnostics: how right the teacher, the anchors and the negatives are.

**Analysis only: never used for training or for choosing a checkpoint.** Where the target
images of a step have labels (always on the toy city; on Cityscapes train from gtFine), the
training step measures, against those labels (docs/method.md#diagnostics):

- the teacher's pseudo-labels: pixel accuracy and mIoU on the step's target images, the
  share of pixels whose confidence reaches the DACS threshold, and their accuracy;
- the anchors: how many, the share positive sampling keeps, and the pseudo-label accuracy
  of the kept and of the rejected ones;
- the negatives: the share of (anchor, negative) pairs whose true classes are equal (false
  negatives) as drawn; after class-aware filtering, the share of the pairs still counted
  that are false negatives, and the share of the removed pairs that were true negatives
  (removed because a pseudo-label was wrong).

Every function takes tensors and returns a dict of floats, NaN where a share has no
denominator (no labelled pixel, no rejected anchor, ...). Pairs are counted from class
histograms, so the cost is linear in anchors plus negatives, not their product.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rccr.data.labels import IGNORE_INDEX, NUM_CLASSES

__all__ = ["DIAGNOSTICS", "anchor_quality", "negative_quality", "pseudo_label_quality"]

# Every diagnostic, by the group of the method it measures, with what it says.
DIAGNOSTICS: dict[str, dict[str, str]] = {
    "teacher pseudo-labels": {
        "pl_acc": "pixel accuracy of the teacher's pseudo-labels",
        "pl_miou": "mIoU of the teacher's pseudo-labels (%)",
        "pl_confident_share": "share of target pixels above the DACS threshold",
        "pl_confident_acc": "accuracy of the pixels above the DACS threshold",
    },
    "anchors (positive sampling)": {
        "anchors": "anchors in the CutMix box",
        "anchors_kept_share": "share of anchors kept by positive sampling",
        "anchors_kept_acc": "pseudo-label accuracy of the kept anchors",
        "anchors_rejected_acc": "pseudo-label accuracy of the rejected anchors",
    },
    "negatives (negative sampling)": {
        "neg_false_drawn": "false negatives among the pairs drawn",
        "neg_false_kept": "false negatives among the pairs the loss counts",
        "neg_true_removed": "true negatives among the pairs removed",
    },
}

_BINS = 256  # label values are train ids or 255


def _share(part: Tensor | float, whole: Tensor | float) -> float:
    whole = float(whole)
    return float(part) / whole if whole > 0 else math.nan


@torch.no_grad()
def pseudo_label_quality(
    pseudo: Tensor, confidence: Tensor, truth: Tensor, threshold: float
) -> dict[str, float]:
    """The teacher's pseudo-labels against the true labels of the same pixels.

    Args:
        pseudo: (B, H, W) pseudo-labels.
        confidence: (B, H, W) their confidence.
        truth: (B, H, W) true train ids, 255 where unknown (those pixels are not scored).
        threshold: the DACS confidence threshold.

    Returns:
        ``pl_acc`` (pixel accuracy), ``pl_miou`` (mean IoU in percent over the classes
        present in the labels or the pseudo-labels of the scored pixels),
        ``pl_confident_share`` (share of scored pixels at or above ``threshold``) and
        ``pl_confident_acc`` (their accuracy).
    """
    known = truth != IGNORE_INDEX  # (B, H, W)
    right = (pseudo == truth) & known
    confident = (confidence >= threshold) & known
    pairs = truth[known] * NUM_CLASSES + pseudo[known]  # (P,) flat confusion index
    confusion = torch.bincount(pairs, minlength=NUM_CLASSES**2).view(NUM_CLASSES, NUM_CLASSES)
    hits = confusion.diagonal().double()
    union = confusion.sum(0).double() + confusion.sum(1).double() - hits  # (C,)
    present = union > 0
    miou = float((hits[present] / union[present]).mean()) * 100 if bool(present.any()) else math.nan
    return {
        "pl_acc": _share(right.sum(), known.sum()),
        "pl_miou": miou,
        "pl_confident_share": _share(confident.sum(), known.sum()),
        "pl_confident_acc": _share((right & confident).sum(), confident.sum()),
    }


@torch.no_grad()
def anchor_quality(anchor_pseudo: Tensor, anchor_truth: Tensor, kept: Tensor) -> dict[str, float]:
    """Positive sampling against the anchors' true classes.

    Args:
        anchor_pseudo: (N,) the anchors' pseudo-labels.
        anchor_truth: (N,) their true train ids (255: unknown, not scored for accuracy).
        kept: (N,) bool, the anchors positive sampling keeps.

    Returns:
        ``anchors`` (N), ``anchors_kept_share``, ``anchors_kept_acc`` and
        ``anchors_rejected_acc`` (pseudo-label accuracy of kept and rejected anchors).
    """
    known = anchor_truth != IGNORE_INDEX
    right = (anchor_pseudo == anchor_truth) & known
    return {
        "anchors": float(anchor_pseudo.numel()),
        "anchors_kept_share": _share(kept.sum(), kept.numel()),
        "anchors_kept_acc": _share((right & kept).sum(), (known & kept).sum()),
        "anchors_rejected_acc": _share((right & ~kept).sum(), (known & ~kept).sum()),
    }


def _histogram(classes: Tensor) -> Tensor:
    return torch.bincount(classes, minlength=_BINS).double()  # (256,)


@torch.no_grad()
def negative_quality(
    anchor_pseudo: Tensor,
    anchor_truth: Tensor,
    negative_labels: Tensor,
    negative_truth: Tensor,
    class_aware: bool,
) -> dict[str, float]:
    """Negative sampling against true classes, over all (kept anchor, negative) pairs whose
    true classes are both known.

    A pair is a *false negative* when anchor and negative share their true class. With
    ``class_aware`` a pair is *removed* when the negative's label equals the anchor's
    pseudo-label. (An anchor's own cell, which the loss also leaves out, is not singled out
    here: at most two of its thousands of pairs.)

    Args:
        anchor_pseudo: (K,) pseudo-labels of the kept anchors.
        anchor_truth: (K,) their true train ids (255: unknown).
        negative_labels: (M,) the negatives' labels, as the loss sees them.
        negative_truth: (M,) their true train ids (255: unknown).
        class_aware: whether the loss removes same-label negatives.

    Returns:
        ``neg_false_drawn`` (false negatives among all pairs), ``neg_false_kept`` (among
        the pairs the loss counts) and ``neg_true_removed`` (true negatives among the
        removed pairs; NaN without class-aware filtering).
    """
    a_known, n_known = anchor_truth != IGNORE_INDEX, negative_truth != IGNORE_INDEX
    a_pseudo, a_truth = anchor_pseudo[a_known], anchor_truth[a_known]
    n_label, n_truth = negative_labels[n_known], negative_truth[n_known]
    pairs = float(a_truth.numel()) * float(n_truth.numel())
    same_truth = float((_histogram(a_truth) * _histogram(n_truth)).sum())
    removed = removed_same = 0.0
    if class_aware:  # pairs with anchor pseudo-label c = negative label c, by true classes
        removed = float((_histogram(a_pseudo) * _histogram(n_label)).sum())
        a_joint = torch.bincount(a_pseudo * _BINS + a_truth, minlength=_BINS * _BINS)
        n_joint = torch.bincount(n_label * _BINS + n_truth, minlength=_BINS * _BINS)
        removed_same = float((a_joint.double() * n_joint.double()).sum())
    return {
        "neg_false_drawn": _share(same_truth, pairs),
        "neg_false_kept": _share(same_truth - removed_same, pairs - removed),
        "neg_true_removed": _share(removed - removed_same, removed) if class_aware else math.nan,
    }
