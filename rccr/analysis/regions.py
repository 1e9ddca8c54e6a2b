"""One RCCR region-sampling step on a single image pair, laid out for inspection.

The training step (``rccr_step`` in ``rccr.training.steps``) samples regions for a whole
batch and keeps only what the loss needs. The notebooks and the dashboard want to *see* that
sampling, so :func:`explain_regions` repeats it for one source and one target image with
the networks of a checkpoint and returns every intermediate in a :class:`RegionSample`:

1. a CutMix box (stride-aligned) pastes the target patch into the source image, then the
   photometric augmentation is applied: the *augmented image*;
2. the teacher labels the clean target image: *pseudo-labels* and *confidence*;
3. every student-embedding cell inside the box is an *anchor*; its *positive* is the
   teacher embedding of the clean target at the same cell; positive sampling keeps the
   anchors whose confidence exceeds the threshold;
4. the *negatives* are this step's bank entries, drawn as in training
   (``rccr.method.memory_bank.sample_entries``): student features of the augmented image
   and teacher features of the clean target; per anchor, those from its own cell never
   count, and class-aware sampling also removes those that share its pseudo-label.

With one image the bank holds only this step's features; in training it also holds the
previous steps'.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rccr.analysis.checkpoints import CheckpointModels
from rccr.config import NEGATIVE_SAMPLING, POSITIVE_SAMPLING
from rccr.method.memory_bank import (
    DOMAIN_AUGMENTED,
    DOMAIN_TARGET,
    augmented_labels,
    sample_entries,
)
from rccr.method.mixing import cut_mix, cut_mix_box, photometric
from rccr.method.pseudo_label import pseudo_label
from rccr.method.region_contrast import box_cells, gather_cells, region_contrastive_loss

__all__ = ["RegionSample", "explain_regions"]


@dataclass
class RegionSample:
    """Every intermediate of one region-sampling step (feature grid is ``h x w``).

    Attributes:
        tgt_image: (3, H, W) the clean target image, in [0, 1].
        aug_image: (3, H, W) the source image with the target box pasted in, after the
            photometric augmentation, in [0, 1].
        box: ``(top, left, height, width)`` of the CutMix box in pixels.
        stride: pixels per feature cell.
        pseudo_label: (h, w) the teacher's pseudo-labels of the clean target.
        confidence: (h, w) the teacher's confidence in them.
        anchor_cells: (N, 2) ``(row, col)`` of each anchor on the feature grid.
        anchor_labels: (N,) pseudo-label of each anchor.
        anchor_confidence: (N,) confidence of each anchor's pseudo-label.
        anchor_kept: (N,) whether positive sampling keeps the anchor.
        positive_similarity: (N,) cosine similarity of each anchor with its positive.
        negative_cells: (M, 2) ``(row, col)`` of each sampled negative.
        negative_domains: (M,) the bank's domain code: ``DOMAIN_AUGMENTED`` (student,
            augmented image) or ``DOMAIN_TARGET`` (teacher, clean target image).
        negative_labels: (M,) the negatives' labels (source labels outside the box,
            pseudo-labels inside it and on the clean target).
        negative_removed: (N, M) True where negative m does not count for anchor n: it
            comes from the anchor's own cell (always), or shares its pseudo-label
            (class-aware sampling).
        loss: the region contrastive loss on these anchors and negatives.
    """

    tgt_image: Tensor
    aug_image: Tensor
    box: tuple[int, int, int, int]
    stride: int
    pseudo_label: Tensor
    confidence: Tensor
    anchor_cells: Tensor
    anchor_labels: Tensor
    anchor_confidence: Tensor
    anchor_kept: Tensor
    positive_similarity: Tensor
    negative_cells: Tensor
    negative_domains: Tensor
    negative_labels: Tensor
    negative_removed: Tensor
    loss: float


def _check(models: CheckpointModels, positive_sampling: str, negative_sampling: str) -> None:
    if models.student_head is None:
        raise ValueError(
            f"the checkpoint at iteration {models.iteration} has no projection head (mode "
            f"{models.config.train.mode!r}); region sampling needs an RCCR run"
        )
    if positive_sampling not in POSITIVE_SAMPLING:
        raise ValueError(f"positive_sampling must be one of {POSITIVE_SAMPLING}")
    if negative_sampling not in NEGATIVE_SAMPLING:
        raise ValueError(f"negative_sampling must be one of {NEGATIVE_SAMPLING}")


@torch.no_grad()
def explain_regions(
    models: CheckpointModels,
    src_image: Tensor,
    src_label: Tensor,
    tgt_image: Tensor,
    *,
    seed: int = 0,
    box_ratio: float | None = None,
    confidence_threshold: float = 0.75,
    positive_sampling: str = "confident",
    negative_sampling: str = "class_aware",
    negatives_per_domain: int = 128,
    temperature: float = 0.1,
) -> RegionSample:
    """Sample RCCR's regions for one image pair with a checkpoint's networks.

    Args:
        models: networks of an RCCR checkpoint (``rccr.analysis.checkpoints.load_models``).
        src_image: (3, H, W) source image in [0, 1]; H and W multiples of the stride.
        src_label: (H, W) its train ids.
        tgt_image: (3, H, W) target image in [0, 1].
        seed: seeds the box and the augmentation and the negatives' draw.
        box_ratio: the box's area as a share of the image; random (as in training) if None.
        confidence_threshold: positive sampling's threshold.
        positive_sampling: "confident" or "all".
        negative_sampling: "class_aware" or "random".
        negatives_per_domain: bank entries drawn from each domain (``method.bank_per_step``
            in training).
        temperature: of the loss.

    Raises:
        ValueError: on a checkpoint without a projection head, an unknown strategy, or image
            sides that are not multiples of the stride.
    """
    _check(models, positive_sampling, negative_sampling)
    if src_image.shape != tgt_image.shape or src_label.shape != src_image.shape[1:]:
        raise ValueError(
            f"source image {tuple(src_image.shape)}, source label {tuple(src_label.shape)} "
            f"and target image {tuple(tgt_image.shape)} must have the same size"
        )
    assert models.student_head is not None and models.teacher_head is not None
    student, teacher = models.student, models.teacher
    device = next(student.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    src, tgt = src_image[None].to(device), tgt_image[None].to(device)  # (1, 3, H, W)
    height, width = tgt.shape[-2:]
    stride = student.output_stride
    boxes = cut_mix_box(height, width, 1, stride, generator, area=box_ratio)  # (1, 4)
    aug = photometric(cut_mix(src, tgt, boxes.to(device)), generator)  # (1, 3, H, W)

    z_m = models.student_head(student(aug).features)  # (1, D, h, w) anchors' embeddings
    teacher_out = teacher(tgt)
    head = models.teacher_head if models.config.method.momentum_head else models.student_head
    z_t = head(teacher_out.features)  # (1, D, h, w) positives' embeddings
    tgt_pseudo, tgt_confidence = pseudo_label(teacher_out.logits)  # (1, h, w) each
    feat_h, feat_w = z_m.shape[-2:]
    inside = box_cells(boxes, stride, feat_h, feat_w).to(device)  # (1, h, w)
    anchors, positives = gather_cells(z_m, inside), gather_cells(z_t, inside)  # (N, D)
    anchor_labels = gather_cells(tgt_pseudo, inside)  # (N,)
    anchor_confidence = gather_cells(tgt_confidence, inside)  # (N,)

    # This step's bank entries, as in training: augmented-image features labelled by the
    # source outside the box and by pseudo-labels inside it; clean-target features.
    aug_labels = augmented_labels(inside, tgt_pseudo, src_label[None].to(device))  # (1, h, w)
    drawn = {
        DOMAIN_AUGMENTED: sample_entries(z_m, aug_labels, negatives_per_domain, generator),
        DOMAIN_TARGET: sample_entries(z_t, tgt_pseudo, negatives_per_domain, generator),
    }
    negatives = torch.cat([entries.features for entries in drawn.values()])  # (M, D)
    negative_labels = torch.cat([entries.labels for entries in drawn.values()]).cpu()  # (M,)
    cells = torch.cat([entries.cells for entries in drawn.values()]).cpu()  # (M,) flat
    domains = torch.cat([torch.full_like(e.cells, d) for d, e in drawn.items()]).cpu()  # (M,)

    class_aware = negative_sampling == "class_aware"
    threshold = confidence_threshold if positive_sampling == "confident" else None
    kept = torch.ones_like(anchor_labels, dtype=torch.bool)
    if threshold is not None:
        kept = anchor_confidence > threshold
    anchor_locations = inside.flatten().nonzero()[:, 0]  # (N,) cells, as in training
    removed = anchor_locations.cpu()[:, None] == cells[None, :]  # (N, M) the anchor's own
    if class_aware:
        removed |= anchor_labels.cpu()[:, None] == negative_labels[None, :]  # (N, M)
    loss = region_contrastive_loss(
        anchors,
        positives,
        anchor_labels,
        anchor_confidence,
        negatives,
        negative_labels.to(device),
        temperature=temperature,
        confidence_threshold=threshold,
        class_aware=class_aware,
        anchor_locations=anchor_locations,
        negative_locations=cells.to(device),
    )
    top, left, box_h, box_w = (int(v) for v in boxes[0])
    return RegionSample(
        tgt_image=tgt_image.cpu(),
        aug_image=aug[0].cpu(),
        box=(top, left, box_h, box_w),
        stride=stride,
        pseudo_label=tgt_pseudo[0].cpu(),
        confidence=tgt_confidence[0].cpu(),
        anchor_cells=inside[0].nonzero().cpu(),  # row-major, as gather_cells orders anchors
        anchor_labels=anchor_labels.cpu(),
        anchor_confidence=anchor_confidence.cpu(),
        anchor_kept=kept.cpu(),
        positive_similarity=(anchors * positives).sum(dim=1).cpu(),
        negative_cells=torch.stack([cells // feat_w, cells % feat_w], dim=1),  # (M, 2)
        negative_domains=domains,
        negative_labels=negative_labels,
        negative_removed=removed if class_aware else torch.zeros_like(removed),
        loss=float(loss),
    )
