"""What DACS and RCCR add to a plain student: the EMA teacher, the projection heads, the
memory bank and the method's random generator.

The trainer owns one ``MethodParts``, checkpoints it, and updates the teacher after each
SGD step (docs/method.md#teacher).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from rccr.config import MethodConfig
from rccr.method.ema import ema_momentum, freeze, update_ema
from rccr.method.memory_bank import MemoryBank
from rccr.models import DeepLabV2
from rccr.models.heads import ProjectionHead

__all__ = ["MethodParts"]


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

        The teacher runs in eval mode (BatchNorm with its EMA statistics), or in train mode
        when the student's BatchNorm normalises with batch statistics
        (``model.bn_batch_stats``, as the release's teacher does). With
        ``method.train_head`` false the student's head is frozen too, so it stays at its
        initialisation (as in the release). Under DDP every rank enqueues its features into
        every rank's bank, so the bank holds ``world_size`` times as many rows per step.
        """
        student_head = teacher_head = bank = None
        if rccr:
            student_head = ProjectionHead(student.feature_channels, out_dim=config.embed_dim)
            if not config.train_head:
                freeze(student_head)
            teacher_head = freeze(copy.deepcopy(student_head))
            if config.bank:
                bank = MemoryBank.for_steps(config.bank_per_step * world_size, 2,
                                            config.bank_steps, config.embed_dim)  # fmt: skip
        generator = torch.Generator().manual_seed(seed)
        teacher = freeze(copy.deepcopy(student)).train(student.bn_batch_stats)
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
