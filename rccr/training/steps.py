"""One training step per mode, in the order of the method (docs/method.md#iteration).

A step takes the student and this iteration's batches and returns a :class:`StepOutput`:
the total loss (to backpropagate), a dict of named loss terms (logged, and checked for NaN
by name) and the self-training diagnostics of DACS and RCCR (analysis only: never used
for training or checkpoint choice; docs/method.md#diagnostics). Optimiser steps and the
teacher's EMA update stay in the trainer.

- ``source_only_step``: supervised on source labels (the lower bound);
- ``oracle_step``: supervised on target labels (the upper bound; not adaptation);
- ``dacs_step``: source cross-entropy plus weighted cross-entropy on ClassMix images;
- ``rccr_step``: DACS plus the region-wise contrastive loss on a CutMix image.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rccr.config import MethodConfig
from rccr.data.dataset import Sample
from rccr.data.labels import IGNORE_INDEX
from rccr.method.diagnostics import anchor_quality, negative_quality, pseudo_label_quality
from rccr.method.memory_bank import (
    DOMAIN_AUGMENTED,
    DOMAIN_TARGET,
    BankEntries,
    augmented_labels,
    downsample_labels,
    sample_entries,
)
from rccr.method.mixing import (
    class_mix_masks,
    cut_mix,
    cut_mix_box,
    mix,
    photometric,
    release_cut_mix_box,
)
from rccr.method.pseudo_label import (
    dacs_weight,
    mixed_pixel_weight,
    pseudo_label,
    weighted_cross_entropy,
)
from rccr.method.region_contrast import (
    box_cells,
    contrast_weight,
    gather_cells,
    region_contrastive_loss,
)
from rccr.models import frozen_bn_statistics
from rccr.training.distributed import all_gather_rows, rank
from rccr.training.method_parts import MethodParts

__all__ = [
    "StepOutput",
    "dacs_step",
    "oracle_step",
    "rccr_step",
    "segmentation_loss",
    "source_only_step",
]


class StepOutput(NamedTuple):
    """What a step returns.

    Attributes:
        loss: the total loss, to backpropagate.
        terms: its named terms (logged, and checked for NaN by name).
        diagnostics: measured against the target images' labels where they have some;
            analysis only (docs/method.md#diagnostics). Empty for the supervised modes.
    """

    loss: Tensor
    terms: dict[str, Tensor]
    diagnostics: dict[str, float]


class _TeacherPass(NamedTuple):
    """The teacher on the clean target images, kept for RCCR and the diagnostics."""

    logits: Tensor  # (B, C, h, w)
    features: Tensor  # (B, F, h, w)
    pseudo: Tensor  # (B, H, W) at crop size
    confidence: Tensor  # (B, H, W)


def segmentation_loss(
    student: nn.Module, images: Tensor, labels: Tensor, align_corners: bool = False
) -> Tensor:
    """Cross-entropy of the student on labelled images, logits upsampled to the labels.

    Args:
        images: (B, 3, H, W) in [0, 1].
        labels: (B, H, W) train ids, 255 ignored.
        align_corners: of the bilinear upsampling (``method.align_corners``).
    """
    logits = student(images).logits  # (B, C, H/8, W/8)
    logits = _upsample(logits, labels.shape[-2:], align_corners)  # (B, C, H, W)
    return F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)


def _upsample(logits: Tensor, size: tuple[int, ...], align_corners: bool) -> Tensor:
    """(B, C, h, w) -> (B, C, H, W), bilinear."""
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=align_corners)


def source_only_step(student: nn.Module, source: Sample) -> StepOutput:
    """Supervised on source labels only: the lower bound of adaptation."""
    loss = segmentation_loss(student, source.image, source.label)
    return StepOutput(loss, {"loss_source": loss}, {})


def oracle_step(student: nn.Module, target: Sample) -> StepOutput:
    """Supervised on target labels: the upper bound (uses labels UDA may not)."""
    loss = segmentation_loss(student, target.image, target.label)
    return StepOutput(loss, {"loss_target_oracle": loss}, {})


def dacs_step(
    student: nn.Module, parts: MethodParts, source: Sample, target: Sample, config: MethodConfig
) -> StepOutput:
    """DACS: source cross-entropy plus weighted cross-entropy on ClassMix images."""
    terms, teacher = _dacs_terms(student, parts, source, target, config)
    diagnostics = _teacher_diagnostics(teacher, target.label, config)
    return StepOutput(terms["loss_source"] + terms["loss_mix"], terms, diagnostics)


def _dacs_terms(
    student: nn.Module, parts: MethodParts, source: Sample, target: Sample, config: MethodConfig
) -> tuple[dict[str, Tensor], _TeacherPass]:
    """The two DACS losses, and the teacher's clean-target pass for RCCR to reuse."""
    size, corners = source.image.shape[-2:], config.align_corners
    loss_source = segmentation_loss(student, source.image, source.label, corners)
    # 1. Teacher pass on the clean target image: pseudo-labels and confidence.
    with torch.no_grad():
        teacher_out = parts.teacher(target.image)
        tgt_pseudo, tgt_confidence = pseudo_label(teacher_out.logits, (size[0], size[1]), corners)
    # 3. ClassMix: half of the source classes pasted onto the target, then photometric.
    mask = class_mix_masks(source.label, parts.generator, config.class_mix == "per_image",
                           ignore_is_a_class=config.class_mix_ignore)  # fmt: skip
    mix_image = _photometric(mix(mask, source.image, target.image), parts.generator, config)
    mix_label = mix(mask, source.label, tgt_pseudo)
    tgt_weight = dacs_weight(tgt_confidence, config.pseudo_label_threshold)
    mix_weight = mixed_pixel_weight(mask, tgt_weight)
    logits = _upsample(student(mix_image).logits, size, corners)  # (B, C, H, W)
    loss_mix = weighted_cross_entropy(logits, mix_label, mix_weight)
    terms = {"loss_source": loss_source, "loss_mix": loss_mix}
    teacher = _TeacherPass(teacher_out.logits, teacher_out.features, tgt_pseudo, tgt_confidence)
    return terms, teacher


def rccr_step(
    student: nn.Module,
    parts: MethodParts,
    source: Sample,
    target: Sample,
    config: MethodConfig,
    iteration: int,
    total: int,
) -> StepOutput:
    """RCCR: DACS plus the region-wise contrastive consistency loss on a CutMix image."""
    assert parts.student_head is not None
    terms, teacher = _dacs_terms(student, parts, source, target, config)
    batch, _, height, width = source.image.shape
    stride = parts.teacher.output_stride  # the student's too (it may be wrapped in DDP)
    # 4. CutMix: a stride-aligned target box pasted into the source image, then photometric.
    draw_boxes = release_cut_mix_box if config.cutmix_box == "release" else cut_mix_box
    boxes = draw_boxes(height, width, batch, stride, parts.generator)
    aug_image = _photometric(cut_mix(source.image, target.image, boxes), parts.generator, config)
    with contextlib.nullcontext() if config.cutmix_updates_bn else frozen_bn_statistics(student):
        z_m = parts.student_head(student(aug_image).features)  # (B, D, h, w) student embeddings
    feat_size = (z_m.shape[-2], z_m.shape[-1])
    with torch.no_grad():
        head = parts.teacher_head if config.momentum_head else parts.student_head
        assert head is not None
        z_t = head(teacher.features)  # (B, D, h, w) positives: teacher embedding, clean target
        tgt_pseudo, tgt_confidence = pseudo_label(teacher.logits)  # (B, h, w) at feature size
    inside = box_cells(boxes, stride, *feat_size)  # (B, h, w)
    anchors = gather_cells(z_m, inside)  # (N, D)
    positives = gather_cells(z_t, inside)  # (N, D)
    anchor_labels = gather_cells(tgt_pseudo, inside)  # (N,)
    anchor_confidence = gather_cells(tgt_confidence, inside)  # (N,)
    # 6. This step's bank entries: augmented-image student features (source labels outside
    # the box, pseudo-labels inside) and clean-target teacher features (pseudo-labels).
    per_step, keep_ignore = config.bank_per_step, config.bank_ignore
    aug_labels = augmented_labels(inside, tgt_pseudo, source.label)  # (B, h, w)
    tgt_truth = downsample_labels(target.label, feat_size)  # (B, h, w) for diagnostics only
    aug_truth = augmented_labels(inside, tgt_truth, source.label)  # (B, h, w) likewise
    new = [
        (domain, sample_entries(feats, labels, per_step, parts.generator, keep_ignore, truth))
        for domain, feats, labels, truth in (
            (DOMAIN_AUGMENTED, z_m.detach(), aug_labels, aug_truth),
            (DOMAIN_TARGET, z_t, tgt_pseudo, tgt_truth),
        )
    ]
    # Where anchors and entries come from (a cell of this rank's batch), so that no anchor
    # meets its own features among its negatives, whatever the negative sampling.
    offset = rank() * inside.numel()
    anchor_locations = inside.flatten().nonzero()[:, 0] + offset  # (N,) as gather_cells
    negatives = _negatives(parts, new, iteration, offset)
    threshold = config.confidence_threshold if config.positive_sampling == "confident" else 0.0
    loss_contrast = region_contrastive_loss(
        anchors,
        positives,
        anchor_labels,
        anchor_confidence,
        negatives.features,
        negatives.labels,
        temperature=config.temperature,
        confidence_threshold=threshold,
        class_aware=config.negative_sampling == "class_aware",
        anchor_locations=anchor_locations,
        negative_locations=negatives.locations,
    )
    weight = contrast_weight(iteration, total, config.contrast_weight, config.contrast_start_iter)
    terms["loss_contrast"] = loss_contrast
    loss = terms["loss_source"] + terms["loss_mix"] + weight * loss_contrast
    diagnostics = _teacher_diagnostics(teacher, target.label, config)
    if diagnostics:  # the target images have labels: how right anchors and negatives are
        kept = anchor_confidence > threshold  # (N,) as the loss keeps them
        anchor_truth = gather_cells(tgt_truth, inside)  # (N,)
        diagnostics |= anchor_quality(anchor_labels, anchor_truth, kept)
        diagnostics |= negative_quality(
            anchor_labels[kept], anchor_truth[kept], negatives.labels, negatives.truth,
            class_aware=config.negative_sampling == "class_aware",
        )  # fmt: skip
    return StepOutput(loss, terms, diagnostics)


class _Negatives(NamedTuple):
    """The negatives of a step, row by row: (M, D) features, (M,) labels, (M,) locations
    (-1 for rows of earlier steps) and (M,) true classes (255: unknown; diagnostics)."""

    features: Tensor
    labels: Tensor
    locations: Tensor
    truth: Tensor


def _negatives(
    parts: MethodParts, new: list[tuple[int, BankEntries]], iteration: int, offset: int
) -> _Negatives:
    """This step's entries enqueued into the bank, then the whole bank; without a bank,
    this step's entries alone. Under DDP every rank's entries, in rank order."""
    if parts.bank is None:
        rows = [entries for _, entries in new]
        return _Negatives(
            torch.cat([e.features for e in rows]), torch.cat([e.labels for e in rows]),
            torch.cat([e.cells for e in rows]) + offset, torch.cat([e.truth for e in rows]),
        )  # fmt: skip
    for domain, entries in new:
        features, labels = all_gather_rows(entries.features), all_gather_rows(entries.labels)
        locations = all_gather_rows(entries.cells + offset)
        truths = all_gather_rows(entries.truth)
        parts.bank.enqueue(features, labels, domain, iteration, locations, truths)
    features, labels, _, _ = parts.bank.contents()
    return _Negatives(features, labels, parts.bank.locations(iteration), parts.bank.truths())


def _teacher_diagnostics(
    teacher: _TeacherPass, target_label: Tensor, config: MethodConfig
) -> dict[str, float]:
    """How right the teacher's pseudo-labels are (analysis only); none if the target images
    have no labels or ``method.diagnostics`` is off."""
    if not config.diagnostics or bool((target_label == IGNORE_INDEX).all()):
        return {}
    return pseudo_label_quality(
        teacher.pseudo, teacher.confidence, target_label, config.pseudo_label_threshold
    )


def _photometric(images: Tensor, generator: torch.Generator, config: MethodConfig) -> Tensor:
    """DACS's colour jitter and blur, per image or as the release (``method.photometric``)."""
    release = config.photometric == "release"
    return photometric(images, generator, per_batch=release, bgr=release)
