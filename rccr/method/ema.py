"""The momentum (EMA) teacher: freeze, the DACS momentum schedule, and the update.

After each SGD step the teacher moves towards the student (docs/method.md#teacher) with
``alpha_t = min(1 - 1/(t+1), 0.99)`` (docs/method.md#schedule).
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import Tensor, nn

__all__ = ["ema_momentum", "freeze", "update_ema"]

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def freeze(module: ModuleT) -> ModuleT:
    """Stop gradients to every parameter of ``module``; returns it (same type) for chaining."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def ema_momentum(iteration: int, max_momentum: float = 0.99) -> float:
    """DACS's momentum ``alpha_t = min(1 - 1/(t+1), max_momentum)``.

    0 at the first iteration (the teacher becomes the student), then rising to the cap,
    which a 0.99 cap reaches at ``t = 99``.
    """
    return min(1.0 - 1.0 / (iteration + 1), max_momentum)


def _persistent(module: nn.Module) -> list[tuple[str, Tensor]]:
    """The module's buffers that its state dict holds."""
    keys = module.state_dict().keys()
    return [(name, buffer) for name, buffer in module.named_buffers() if name in keys]


@torch.no_grad()
def update_ema(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """``teacher = momentum * teacher + (1 - momentum) * student``, in place.

    Buffers (stated, as timm's ModelEmaV2 does): floating-point buffers such as BatchNorm
    running statistics are averaged with the same momentum; integer buffers such as
    ``num_batches_tracked`` are copied from the student. Non-floating parameters are copied.
    Non-persistent buffers (constants outside the state dict, such as the input
    normalisation) are left alone: averaging two equal constants can still move them by a
    rounding error, and as they are not checkpointed a resumed run would then differ.
    ``momentum = 0`` copies the student exactly; ``momentum = 1`` leaves the teacher as is.

    Raises:
        ValueError: if the two modules' parameter or buffer names differ, or the momentum
            is outside [0, 1].
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    pairs: list[tuple[Tensor, Tensor]] = []
    for kind, t_named, s_named in (
        ("parameter", teacher.named_parameters(), student.named_parameters()),
        ("buffer", _persistent(teacher), _persistent(student)),
    ):
        t_dict, s_dict = dict(t_named), dict(s_named)
        if t_dict.keys() != s_dict.keys():
            missing = sorted(s_dict.keys() - t_dict.keys())
            extra = sorted(t_dict.keys() - s_dict.keys())
            raise ValueError(
                f"teacher and student {kind} names differ: missing in teacher {missing}, "
                f"extra in teacher {extra}"
            )
        pairs.extend((t_dict[name], s_dict[name]) for name in t_dict)
    for t_value, s_value in pairs:
        if t_value.is_floating_point():
            t_value.mul_(momentum).add_(s_value.detach(), alpha=1.0 - momentum)
        else:
            t_value.copy_(s_value)
