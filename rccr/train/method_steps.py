"""The DACS and RCCR training steps, in the order of the method section (DESIGN.md §3).

``MethodParts`` holds what these modes add to a plain student: the EMA teacher, the
projection heads, the memory bank and the method's random generator. The trainer owns it,
checkpoints it, and updates the teacher after each SGD step.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rccr.config import MethodConfig
from rccr.data.dataset import Sample
from rccr.data.labels import IGNORE_INDEX
from rccr.method.ema import ema_momentum, freeze, update_ema
from rccr.method.memory_bank import MemoryBank
from rccr.method.mixing import class_mix_masks, cut_mix, cut_mix_box, mix, photometric
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
    sample_rows,
)
from rccr.models import DeepLabV2
from rccr.models.heads import ProjectionHead
from rccr.train.distributed import all_gather_rows
from rccr.train.steps import StepOutput, segmentation_loss

__all__ = ["MethodParts", "dacs_step", "downsample_labels", "rccr_step"]

SOURCE, TARGET = 0, 1  # the bank's domain codes: augmented student / clean-target teacher


@dataclass
class MethodParts:
    """Teacher, heads, bank and generator of the DACS and RCCR modes."""

    teacher: DeepLabV2
    student_head: ProjectionHead | None
    teacher_head: ProjectionHead | None
    bank: MemoryBank | None
    generator: torch.Generator

    @classmethod
    def build(
        cls, student: DeepLabV2, config: MethodConfig, rccr: bool, seed: int, world_size: int = 1
    ) -> MethodParts:
        """The teacher starts as a frozen copy of the student (and of its head).

        Under DDP every rank enqueues its features into every rank's bank, so the bank holds
        ``world_size`` times as many rows per step.
        """
        student_head = teacher_head = bank = None
        if rccr:
            student_head = ProjectionHead(student.feature_channels, out_dim=config.embed_dim)
            teacher_head = freeze(copy.deepcopy(student_head))
            if config.bank:
                bank = MemoryBank.for_steps(config.bank_per_step * world_size, 2,
                                            config.bank_steps, config.embed_dim)  # fmt: skip
        generator = torch.Generator().manual_seed(seed)
        teacher = freeze(copy.deepcopy(student)).eval()  # eval: BatchNorm uses its EMA stats
        return cls(teacher, student_head, teacher_head, bank, generator)

    def to(self, device: torch.device) -> MethodParts:
        self.teacher.to(device)
        for module in (self.student_head, self.teacher_head, self.bank):
            if module is not None:
                module.to(device)
        return self

    def update_teacher(self, student: DeepLabV2, iteration: int, max_momentum: float) -> None:
        """EMA step after the student's SGD step: alpha_t = min(1 - 1/(t+1), max)."""
        momentum = ema_momentum(iteration, max_momentum)
        update_ema(self.teacher, student, momentum)
        if self.teacher_head is not None and self.student_head is not None:
            update_ema(self.teacher_head, self.student_head, momentum)

    def state_dict(self) -> dict[str, object]:
        state: dict[str, object] = {"teacher": self.teacher.state_dict(),
                                    "generator": self.generator.get_state()}  # fmt: skip
        for name in ("student_head", "teacher_head", "bank"):
            module = getattr(self, name)
            if module is not None:
                state[name] = module.state_dict()
        return state

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.teacher.load_state_dict(state["teacher"])  # type: ignore[arg-type]
        self.generator.set_state(state["generator"])  # type: ignore[arg-type]
        for name in ("student_head", "teacher_head", "bank"):
            module = getattr(self, name)
            if module is not None:
                module.load_state_dict(state[name])


def downsample_labels(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, H, W) train ids -> (B, h, w), nearest neighbour (no new values appear)."""
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()


def dacs_step(
    student: nn.Module, parts: MethodParts, source: Sample, target: Sample, config: MethodConfig
) -> StepOutput:
    """DACS: source cross-entropy plus weighted cross-entropy on ClassMix images."""
    terms, _ = _dacs_terms(student, parts, source, target, config)
    return terms["loss_source"] + terms["loss_mix"], terms


def _dacs_terms(
    student: nn.Module, parts: MethodParts, source: Sample, target: Sample, config: MethodConfig
) -> tuple[dict[str, Tensor], tuple[Tensor, Tensor, Tensor]]:
    """The two DACS losses, and the teacher's clean-target pass for RCCR to reuse."""
    size = source.image.shape[-2:]
    loss_source = segmentation_loss(student, source.image, source.label)
    # 1. Teacher pass on the clean target image: pseudo-labels and confidence.
    with torch.no_grad():
        teacher_out = parts.teacher(target.image)
        tgt_pseudo, tgt_confidence = pseudo_label(teacher_out.logits, size=(size[0], size[1]))
    # 3. ClassMix: half of the source classes pasted onto the target, then photometric.
    mask = class_mix_masks(source.label, parts.generator, per_image=config.class_mix == "per_image")
    mix_image = photometric(mix(mask, source.image, target.image), parts.generator)
    mix_label = mix(mask, source.label, tgt_pseudo)
    tgt_weight = dacs_weight(tgt_confidence, config.pseudo_label_threshold)
    mix_weight = mixed_pixel_weight(mask, tgt_weight)
    logits = student(mix_image).logits  # (B, C, H/8, W/8)
    logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    loss_mix = weighted_cross_entropy(logits, mix_label, mix_weight)
    terms = {"loss_source": loss_source, "loss_mix": loss_mix}
    return terms, (teacher_out.logits, teacher_out.features, tgt_weight)


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
    terms, (tgt_logits, tgt_features, _) = _dacs_terms(student, parts, source, target, config)
    batch, _, height, width = source.image.shape
    stride = parts.teacher.output_stride  # the student's too (it may be wrapped in DDP)
    # 4. CutMix: a stride-aligned target box pasted into the source image, then photometric.
    boxes = cut_mix_box(height, width, batch, stride, parts.generator)
    aug_image = photometric(cut_mix(source.image, target.image, boxes), parts.generator)
    z_m = parts.student_head(student(aug_image).features)  # (B, D, h, w) student embeddings
    feat_size = (z_m.shape[-2], z_m.shape[-1])
    with torch.no_grad():
        head = parts.teacher_head if config.momentum_head else parts.student_head
        assert head is not None
        z_t = head(tgt_features)  # (B, D, h, w) positives: teacher embedding, clean target
        tgt_pseudo, tgt_confidence = pseudo_label(tgt_logits)  # (B, h, w) at feature size
    inside = box_cells(boxes, stride, *feat_size)  # (B, h, w)
    anchors = gather_cells(z_m, inside)  # (N, D)
    positives = gather_cells(z_t, inside)  # (N, D)
    anchor_labels = gather_cells(tgt_pseudo, inside)  # (N,)
    anchor_confidence = gather_cells(tgt_confidence, inside)  # (N,)
    # 6. This step's bank entries: augmented-image student features (source labels outside
    # the box, pseudo-labels inside) and clean-target teacher features (pseudo-labels).
    src_labels = downsample_labels(source.label, feat_size)
    aug_labels = torch.where(inside, tgt_pseudo, src_labels)  # (B, h, w)
    everywhere = torch.ones_like(inside)
    new = []
    for domain, feats, labels in ((SOURCE, z_m.detach(), aug_labels), (TARGET, z_t, tgt_pseudo)):
        flat, flat_labels = gather_cells(feats, everywhere), gather_cells(labels, everywhere)
        valid = (flat_labels != IGNORE_INDEX).nonzero()[:, 0]  # ignored cells have no class
        chosen = sample_rows(valid.numel(), config.bank_per_step, parts.generator)
        keep = valid[chosen.to(valid.device)]  # (n,) rows of this step's features
        new.append((domain, flat[keep], flat_labels[keep]))
    if parts.bank is not None:
        for domain, feats, labels in new:  # every rank's entries, in rank order, under DDP
            parts.bank.enqueue(all_gather_rows(feats), all_gather_rows(labels), domain, iteration)
        negatives, negative_labels, _, _ = parts.bank.contents()
    else:
        negatives = torch.cat([feats for _, feats, _ in new])
        negative_labels = torch.cat([labels for _, _, labels in new])
    threshold = config.confidence_threshold if config.positive_sampling == "confident" else 0.0
    loss_contrast = region_contrastive_loss(
        anchors,
        positives,
        anchor_labels,
        anchor_confidence,
        negatives,
        negative_labels,
        temperature=config.temperature,
        confidence_threshold=threshold,
        class_aware=config.negative_sampling == "class_aware",
    )
    weight = contrast_weight(iteration, total, config.contrast_weight, config.contrast_start_iter)
    terms["loss_contrast"] = loss_contrast
    loss = terms["loss_source"] + terms["loss_mix"] + weight * loss_contrast
    return loss, terms
