"""RCCR's memory bank of negatives: a fixed-size ring buffer (docs/method.md#bank).

Each step the trainer enqueues N random student features of the augmented (CutMix) images,
labelled by source ground truth outside the box and pseudo-labels inside, and N random
teacher features of the clean target images, labelled by pseudo-labels. The authors use
N = 4000 and keep 3 steps, so the bank holds ``4000 * 2 * 3`` features by default.

The bank lives on the model's device as buffers, so ``.to(device)`` moves it and
``state_dict`` checkpoints it. Writes happen under ``no_grad`` and store detached copies.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rccr.data.labels import IGNORE_INDEX
from rccr.method.region_contrast import sample_rows

__all__ = [
    "DOMAIN_AUGMENTED",
    "DOMAIN_NAMES",
    "DOMAIN_TARGET",
    "BankEntries",
    "MemoryBank",
    "augmented_labels",
    "downsample_labels",
    "sample_entries",
]

DOMAIN_AUGMENTED = 0  # student features of the augmented (source with target box) image
DOMAIN_TARGET = 1  # teacher features of the clean target image
DOMAIN_NAMES = {
    DOMAIN_AUGMENTED: "augmented image (student)",
    DOMAIN_TARGET: "clean target (teacher)",
}


class MemoryBank(nn.Module):
    """Ring buffer of ``features``, ``labels``, ``domain`` and ``step`` rows.

    Buffers: ``features (capacity, D) float32``, ``labels (capacity,) int64``,
    ``domain (capacity,) int8`` (``DOMAIN_AUGMENTED`` or ``DOMAIN_TARGET``),
    ``step (capacity,) int64`` (training iteration of the write), ``ptr`` (next row to
    write) and ``size`` (rows filled), both 0-d int64. Features are stored in float32 so
    that the loss never sees a bank rounded below the precision it computes in.

    ``location (capacity,) int64`` says where each row was sampled (a feature cell of the
    step's batch, -1 if unknown); only the current step's locations are used (to keep an
    anchor's own features out of its negatives), so it is not checkpointed.
    """

    features: Tensor
    labels: Tensor
    domain: Tensor
    step: Tensor
    location: Tensor
    ptr: Tensor
    size: Tensor

    def __init__(self, capacity: int, dim: int) -> None:
        super().__init__()
        if capacity < 1 or dim < 1:
            raise ValueError(f"capacity and dim must be >= 1, got {capacity} and {dim}")
        self.capacity = capacity
        self.dim = dim
        self.register_buffer("features", torch.zeros(capacity, dim))
        self.register_buffer("labels", torch.zeros(capacity, dtype=torch.int64))
        self.register_buffer("domain", torch.zeros(capacity, dtype=torch.int8))
        self.register_buffer("step", torch.zeros(capacity, dtype=torch.int64))
        self.register_buffer("location", torch.full((capacity,), -1), persistent=False)
        self.register_buffer("ptr", torch.zeros((), dtype=torch.int64))
        self.register_buffer("size", torch.zeros((), dtype=torch.int64))

    @classmethod
    def for_steps(
        cls, per_step: int = 4000, sources: int = 2, steps: int = 3, dim: int = 128
    ) -> MemoryBank:
        """A bank holding ``steps`` steps of ``per_step`` features from each of ``sources``."""
        return cls(capacity=per_step * sources * steps, dim=dim)

    def __len__(self) -> int:
        return int(self.size)

    @torch.no_grad()
    def enqueue(
        self,
        features: Tensor,
        labels: Tensor,
        domain: int | Tensor,
        step: int,
        location: Tensor | None = None,
    ) -> None:
        """Write rows at ``ptr``, wrapping around and overwriting the oldest.

        Args:
            features: (n, D) features; stored detached, in float32.
            labels: (n,) integer labels.
            domain: ``DOMAIN_AUGMENTED``/``DOMAIN_TARGET`` for all rows, or an (n,) tensor.
            step: training iteration recorded with every row.
            location: (n,) where each row was sampled (see the class docstring); -1 if None.

        If ``n > capacity`` only the last ``capacity`` rows are kept.
        """
        n = features.shape[0]
        if features.dim() != 2 or features.shape[1] != self.dim:
            raise ValueError(f"features must be (n, {self.dim}), got {tuple(features.shape)}")
        if labels.shape != (n,):
            raise ValueError(f"labels must be ({n},), got {tuple(labels.shape)}")
        domains = torch.as_tensor(domain, device=self.domain.device).to(torch.int8)
        domains = domains.expand(n) if domains.dim() == 0 else domains  # (n,)
        if domains.shape != (n,):
            raise ValueError(f"domain must be an int or ({n},), got {tuple(domains.shape)}")
        locations = torch.full_like(labels, -1) if location is None else location
        if locations.shape != (n,):
            raise ValueError(f"location must be ({n},), got {tuple(locations.shape)}")
        if n == 0:
            return
        if n > self.capacity:  # older rows would be overwritten within this same write
            features, labels, domains, locations = (
                features[-self.capacity :],
                labels[-self.capacity :],
                domains[-self.capacity :],
                locations[-self.capacity :],
            )
            n = self.capacity
        rows = (self.ptr + torch.arange(n, device=self.ptr.device)) % self.capacity  # (n,)
        self.features[rows] = features.detach().to(self.features)
        self.labels[rows] = labels.to(self.labels)
        self.domain[rows] = domains
        self.step[rows] = step
        self.location[rows] = locations.to(self.location)
        self.ptr.copy_((self.ptr + n) % self.capacity)
        self.size.copy_(torch.clamp(self.size + n, max=self.capacity))

    def _order(self) -> Tensor:
        """Storage rows of the filled part, oldest first, shape (size,)."""
        size = int(self.size)
        start = (self.ptr - size) % self.capacity
        return (start + torch.arange(size, device=self.ptr.device)) % self.capacity  # (size,)

    def contents(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The filled rows in insertion order (oldest first).

        Returns:
            ``features (size, D)``, ``labels (size,)``, ``domain (size,)``, ``step (size,)``.
        """
        rows = self._order()
        return self.features[rows], self.labels[rows], self.domain[rows], self.step[rows]

    def locations(self, step: int) -> Tensor:
        """(size,) in :meth:`contents` order: where each row written at ``step`` was sampled,
        -1 for rows of other steps."""
        rows = self._order()
        return torch.where(self.step[rows] == step, self.location[rows], -1)

    def snapshot(self) -> dict[str, np.ndarray]:
        """The filled rows as numpy arrays for ``features/iter_<N>.npz``.

        Features are float16 (half the file); labels int64, domain int8, step int64. The
        file is one of the run directory's (docs/method.md#run-directory).
        """
        features, labels, domain, step = self.contents()
        return {
            "features": features.detach().cpu().to(torch.float16).numpy(),
            "labels": labels.cpu().numpy(),
            "domain": domain.cpu().numpy(),
            "step": step.cpu().numpy(),
        }

    def extra_repr(self) -> str:
        return f"capacity={self.capacity}, dim={self.dim}"


def downsample_labels(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, H, W) train ids -> (B, h, w), nearest neighbour (no new values appear)."""
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()


def augmented_labels(inside: Tensor, tgt_pseudo: Tensor, src_label: Tensor) -> Tensor:
    """Labels of the augmented image's feature cells: the teacher's pseudo-labels of the
    target inside the CutMix box, the source ground truth outside it.

    Args:
        inside: (B, h, w) bool, True on cells inside the box.
        tgt_pseudo: (B, h, w) pseudo-labels of the clean target at feature size.
        src_label: (B, H, W) source train ids at image size (downsampled here).

    Returns:
        (B, h, w) train ids (255 where the source is ignored outside the box).
    """
    src_labels = downsample_labels(src_label, (inside.shape[-2], inside.shape[-1]))  # (B, h, w)
    return torch.where(inside, tgt_pseudo, src_labels)


class BankEntries(NamedTuple):
    """One domain's new bank rows of a step.

    Attributes:
        features: (n, D) embeddings.
        labels: (n,) their labels.
        cells: (n,) where each came from: a flat index into the (B, h, w) feature grid,
            row-major (``divmod(cell % (h * w), w)`` is its row and column).
    """

    features: Tensor
    labels: Tensor
    cells: Tensor


def sample_entries(
    features: Tensor,
    labels: Tensor,
    n: int,
    generator: torch.Generator,
    keep_ignore: bool = False,
) -> BankEntries:
    """``n`` random feature cells that have a class: one domain's new bank rows of a step.

    Cells labelled 255 are not drawn (they have no class for class-aware sampling), unless
    ``keep_ignore`` (``method.bank_ignore``): the release draws from every cell, and a 255
    entry then counts as a negative of every anchor.

    Args:
        features: (B, D, h, w) embeddings.
        labels: (B, h, w) their labels.
        n: how many to draw (all candidate cells if there are fewer).
        generator: draws the cells (a CPU generator).
        keep_ignore: whether cells labelled 255 are candidates.

    Returns:
        ``min(n, candidate cells)`` entries, in random order.
    """
    flat = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])  # (B*h*w, D)
    flat_labels = labels.reshape(-1)  # (B*h*w,)
    candidate = torch.ones_like(flat_labels, dtype=torch.bool)
    if not keep_ignore:
        candidate = flat_labels != IGNORE_INDEX
    valid = candidate.nonzero()[:, 0]  # (V,) candidate cells
    cells = valid[sample_rows(valid.numel(), n, generator).to(valid.device)]  # (m,)
    return BankEntries(flat[cells], flat_labels[cells], cells)
