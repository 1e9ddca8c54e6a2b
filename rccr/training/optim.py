"""SGD with the poly learning-rate schedule of DeepLab and DACS.

``lr(t) = base_lr * (1 - t / T) ** power`` for the backbone, times each parameter group's
``lr_mult`` (10 for the classifier and heads).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from rccr.config import TrainConfig

__all__ = ["build_optimizer", "poly_lr", "set_lr"]


def poly_lr(base_lr: float, iteration: int, total: int, power: float) -> float:
    """The poly schedule at ``iteration`` (0-based) of ``total``: ``base_lr * (1 - t/T)^power``,
    and 0 from ``total`` on (a negative base would make the power complex)."""
    return base_lr * max(0.0, 1.0 - iteration / total) ** power


def build_optimizer(groups: Iterable[dict[str, Any]], config: TrainConfig) -> torch.optim.SGD:
    """SGD over parameter groups that carry an ``lr_mult``."""
    return torch.optim.SGD(
        list(groups),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate to ``lr * lr_mult`` (every group carries one)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_mult"]
