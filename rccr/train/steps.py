"""One training step per mode. Each reads like the method section it implements.

A step takes the student and this iteration's batches, returns the total loss (to
backpropagate) and a dict of named loss terms as floats (logged, and checked for NaN by
name). Optimiser steps and the teacher update stay in the trainer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rccr.data.dataset import Sample
from rccr.data.labels import IGNORE_INDEX

__all__ = ["StepOutput", "oracle_step", "segmentation_loss", "source_only_step"]

StepOutput = tuple[torch.Tensor, dict[str, torch.Tensor]]


def segmentation_loss(
    student: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of the student on labelled images, logits upsampled to the labels.

    Args:
        images: (B, 3, H, W) in [0, 1].
        labels: (B, H, W) train ids, 255 ignored.
    """
    logits = student(images).logits  # (B, C, H/8, W/8)
    logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)


def source_only_step(student: nn.Module, source: Sample) -> StepOutput:
    """Supervised on source labels only: the lower bound of adaptation."""
    loss = segmentation_loss(student, source.image, source.label)
    return loss, {"loss_source": loss}


def oracle_step(student: nn.Module, target: Sample) -> StepOutput:
    """Supervised on target labels: the upper bound (uses labels UDA may not)."""
    loss = segmentation_loss(student, target.image, target.label)
    return loss, {"loss_target_oracle": loss}
