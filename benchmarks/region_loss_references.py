"""Reference implementations of RCCR's region-wise contrastive loss, to compare ours with.

- ``naive_region_contrastive_loss``: slow and obviously correct (loops, no tricks).

The tests (``tests/method/test_region_contrast.py``, ``tests/analysis/test_regions.py``)
check ``rccr.method.region_contrast.region_contrastive_loss`` against them, and
``bench_region_loss.py`` times it against them. Pytest finds this module because
``benchmarks/`` is on its ``pythonpath`` (pyproject.toml); a benchmark run as a script
finds it beside itself.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["naive_region_contrastive_loss"]


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
) -> Tensor:
    """Per anchor: -log(exp(q.k+/t) / (exp(q.k+/t) + sum of exp(q.k-/t) over kept negatives)).

    anchors, positives: (N, D); anchor_labels, anchor_confidence: (N,); negatives: (M, D);
    negative_labels: (M,). Mean over anchors with confidence > threshold (all if None).
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
            denominator = denominator + torch.exp(torch.dot(q, negatives[n].detach()) / temperature)
        losses.append(-torch.log(positive / denominator))
    if not losses:
        return anchors.sum() * 0
    return torch.stack(losses).mean()
