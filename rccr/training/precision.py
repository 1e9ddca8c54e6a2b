"""Mixed precision: bf16 autocast on CUDA by default, fp16 with a gradient scaler, fp32 on CPU.

Only the forward passes run under autocast. The losses stay numerically safe without
help from the caller: cross-entropy runs in float32 under autocast, and the region
contrastive loss casts anchors, positives and negatives to float32 before computing
similarities (``rccr.method.region_contrast``); the memory bank stores float32.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import Tensor

from rccr.config import ConfigError

__all__ = ["Precision"]

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Precision:
    """How a run computes: the autocast dtype (None for fp32) and the gradient scaler.

    Attributes:
        name: "fp32", "bf16" or "fp16".
        device_type: "cpu" or "cuda".
        scaler: scales the fp16 loss so small gradients do not flush to zero; disabled
            (a pass-through) for fp32 and bf16.
    """

    name: str
    device_type: str
    scaler: torch.amp.GradScaler

    @classmethod
    def from_config(cls, precision: str, device: torch.device) -> Precision:
        """``train.precision`` on ``device``; "auto" is bf16 on CUDA and fp32 on CPU.

        Raises:
            ConfigError: for fp16 on CPU, or bf16 on a GPU without bf16 support.
        """
        if precision == "auto":
            precision = "bf16" if device.type == "cuda" else "fp32"
        if precision not in _DTYPES:
            raise ConfigError(f"train.precision must be auto, fp32, bf16 or fp16, got {precision}")
        if precision == "fp16" and device.type != "cuda":
            raise ConfigError("train.precision=fp16 needs CUDA; use bf16 or fp32 on CPU")
        if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("train.precision=bf16: this GPU has no bf16; use fp16 or fp32")
        scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        return cls(precision, device.type, scaler)

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, None for fp32."""
        return _DTYPES[self.name]

    def autocast(self) -> AbstractContextManager[None]:
        """Context for the forward passes."""
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None)

    def backward_and_step(self, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backpropagate ``loss`` and take the optimiser step (skipped by the fp16 scaler
        when a gradient overflowed)."""
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()
