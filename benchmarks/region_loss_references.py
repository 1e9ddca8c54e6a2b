"""Reference implementations of RCCR's region-wise contrastive loss, to compare ours with.

- ``naive_region_contrastive_loss``: slow and obviously correct (loops, no tricks).
- ``release_region_contrastive_loss``: the authors' released algorithm (chunks of the bank
  under activation checkpointing), re-implemented.

The tests (``tests/method/test_region_contrast.py``, ``tests/analysis/test_regions.py``)
check ``rccr.method.region_contrast.region_contrastive_loss`` against them, and
``bench_region_loss.py`` times it against the release. Pytest finds this module because
``benchmarks/`` is on its ``pythonpath`` (pyproject.toml); a benchmark run as a script
finds it beside itself.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

__all__ = ["naive_region_contrastive_loss", "release_region_contrastive_loss"]


def naive_region_contrastive_loss(
    anchors: Tensor,
    positives: Tensor,
    anchor_labels: Tensor,
    anchor_confidence: Tensor,
    negatives: Tensor,
    negative_labels: Tensor,
    temperature: float = 0.1,
    confidence_threshold: float | None = 0.75,
    class_aware: bool = True,
    anchor_locations: Tensor | None = None,
    negative_locations: Tensor | None = None,
) -> Tensor:
    """Per anchor: -log(exp(q.k+/t) / (exp(q.k+/t) + sum of exp(q.k-/t) over kept negatives)).

    anchors, positives: (N, D); anchor_labels, anchor_confidence: (N,); negatives: (M, D);
    negative_labels: (M,). A negative is skipped if ``class_aware`` and its label is the
    anchor's, or if it has the anchor's location (``anchor_locations`` (N,),
    ``negative_locations`` (M,); a negative location of -1 matches no anchor). Mean over
    anchors with confidence > threshold (all if None).
    """
    losses = []
    for i in range(anchors.shape[0]):
        if confidence_threshold is not None and not anchor_confidence[i] > confidence_threshold:
            continue
        q = anchors[i]
        positive = torch.exp(torch.dot(q, positives[i].detach()) / temperature)
        denominator = positive
        for n in range(negatives.shape[0]):
            if class_aware and negative_labels[n] == anchor_labels[i]:
                continue
            if (
                anchor_locations is not None
                and negative_locations is not None
                and negative_locations[n] != -1
                and negative_locations[n] == anchor_locations[i]
            ):
                continue
            denominator = denominator + torch.exp(torch.dot(q, negatives[n].detach()) / temperature)
        losses.append(-torch.log(positive / denominator))
    if not losses:
        return anchors.sum() * 0
    return torch.stack(losses).mean()


def release_region_contrastive_loss(
    anchors: Tensor,
    positives: Tensor,
    anchor_labels: Tensor,
    anchor_confidence: Tensor,
    negatives: Tensor,
    negative_labels: Tensor,
    temperature: float = 0.1,
    confidence_threshold: float = 0.75,
    chunk_size: int = 2000,
    eps: bool = True,
) -> Tensor:
    """The authors' released contrastive loss, re-implemented from a description of it.

    Source: github.com/qianyuzqy/RCCR, ``train_spasr_gtav.py``, commit
    a71fbc07d095fcfa89f4cad2ecc0b88b4482d00c. This is our own code following the released
    algorithm, not a copy of it:

    - ``pos = q.k+ / t`` (N, 1);
    - the negatives are walked in chunks of ``chunk_size`` rows, each chunk under activation
      checkpointing (its similarities are recomputed in backward). Chunk 0 puts the positive
      in front of its similarities, takes the row maximum ``neg_max`` and returns
      ``sum exp(logit - neg_max) * mask`` with the positive's mask 1; later chunks return
      the same sum against chunk 0's ``neg_max``. ``mask`` is ``label_n != anchor_label``:
      the class mask is always on;
    - ``loss_i = -log(exp(pos - neg_max) / (sum + 1e-8) + 1e-8)``, computed for every anchor,
      then averaged with weights ``confidence > threshold`` over ``(kept + 1e-12)``.

    ``eps=False`` drops the three eps terms; the loss then equals ours (0/0 with no anchor
    kept). ``torch.utils.checkpoint`` runs non-reentrant here (the release used the default
    of its day, reentrant); both recompute each chunk in backward.

    Args:
        anchors: (N, D); positives: (N, D), detached; anchor_labels, anchor_confidence: (N,);
        negatives: (M, D), detached; negative_labels: (M,).

    Returns:
        Scalar loss.
    """
    tiny = 1e-8 if eps else 0.0
    positives, negatives = positives.detach(), negatives.detach()
    pos = (anchors * positives).sum(-1, keepdim=True) / temperature  # (N, 1)

    def first_chunk(q: Tensor, pos: Tensor, chunk: Tensor, labels: Tensor) -> tuple[Tensor, ...]:
        mask = (labels[None] != anchor_labels[:, None]).to(q.dtype)  # (N, b)
        logits = torch.cat([pos, q @ chunk.T / temperature], dim=1)  # (N, 1 + b)
        mask = torch.cat([torch.ones_like(pos), mask], dim=1)  # (N, 1 + b)
        neg_max = logits.max(dim=1, keepdim=True)[0]  # (N, 1)
        return (torch.exp(logits - neg_max) * mask).sum(-1), neg_max

    def later_chunk(q: Tensor, neg_max: Tensor, chunk: Tensor, labels: Tensor) -> Tensor:
        mask = (labels[None] != anchor_labels[:, None]).to(q.dtype)  # (N, b)
        logits = q @ chunk.T / temperature  # (N, b)
        return (torch.exp(logits - neg_max) * mask).sum(-1)

    first = slice(0, chunk_size)
    down, neg_max = checkpoint(
        first_chunk, anchors, pos, negatives[first], negative_labels[first], use_reentrant=False
    )
    for start in range(chunk_size, negatives.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        down = down + checkpoint(
            later_chunk, anchors, neg_max, negatives[rows], negative_labels[rows],
            use_reentrant=False,
        )  # fmt: skip
    logits = torch.exp(pos - neg_max).squeeze(-1) / (down + tiny)  # (N,)
    loss = -torch.log(logits + tiny)  # (N,)
    kept = (anchor_confidence > confidence_threshold).to(loss.dtype)  # (N,)
    return (loss * kept).sum() / (kept.sum() + (1e-12 if eps else 0.0))
