"""Region sampling and RCCR's region-wise contrastive loss (docs/method.md#loss).

Every feature cell of the student embedding inside the CutMix box is an *anchor* ``q``; its
*positive* ``k+`` is the teacher embedding of the clean target image at the same cell; the
*negatives* ``k-`` come from the memory bank. Per anchor (the paper's InfoNCE form)::

    loss_i = -log( exp(q.k+/t) / (exp(q.k+/t) + sum_n m(n) exp(q.k-_n/t)) )

where ``m(n)`` removes negatives whose (pseudo-)label equals the anchor's pseudo-label
(class-aware negative sampling), and the loss is averaged over anchors whose teacher
confidence exceeds a threshold (confident positive sampling). The two sampling strategies
have named "off" settings (``rccr.config.POSITIVE_SAMPLING``, ``NEGATIVE_SAMPLING``) for the
ablations (docs/method.md#sampling).

The loss is computed in chunks of anchors by a custom autograd function that recomputes the
similarities in backward, so neither pass holds more than ``chunk_size x M`` similarities.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "box_cells",
    "contrast_weight",
    "gather_cells",
    "region_contrastive_loss",
    "sample_rows",
]


class _ChunkedInfoNCE(torch.autograd.Function):
    """Sum over anchors of the masked InfoNCE loss; gradient w.r.t. the anchors only.

    Works in the inputs' dtype (float32 or float64). Backward recomputes each chunk's
    softmax instead of storing the ``(N, 1 + M)`` logits, which keeps memory at
    ``chunk_size x M`` in both passes.
    Double backward is not supported.
    """

    @staticmethod
    def forward(
        ctx: Any,
        anchors: Tensor,
        positives: Tensor,
        anchor_labels: Tensor,
        negatives: Tensor,
        negative_labels: Tensor,
        anchor_locations: Tensor,
        negative_locations: Tensor,
        temperature: float,
        class_aware: bool,
        chunk_size: int,
    ) -> Tensor:
        tensors = (anchors, positives, anchor_labels, negatives, negative_labels,
                   anchor_locations, negative_locations)  # fmt: skip
        ctx.save_for_backward(*tensors)
        ctx.temperature, ctx.class_aware, ctx.chunk_size = temperature, class_aware, chunk_size
        total = anchors.new_zeros(())
        for _, pos, neg in _chunks(tensors, temperature, class_aware, chunk_size):
            total = total + (_log_denominator(pos, neg) - pos).sum()
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        tensors = ctx.saved_tensors
        anchors, positives, _, negatives, *_ = tensors
        grad = torch.empty_like(anchors)  # (N, D)
        for rows, pos, neg in _chunks(tensors, ctx.temperature, ctx.class_aware, ctx.chunk_size):
            log_z = _log_denominator(pos, neg)[:, None]  # (C, 1)
            p_pos = (pos[:, None] - log_z).exp_()  # (C, 1) softmax weight of the positive
            p_neg = neg.sub_(log_z).exp_()  # (C, M) in place; masked negatives get 0
            # d loss_i / d q_i = ((p_pos - 1) k+ + sum_n p_n k-_n) / t
            grad_chunk = (p_pos - 1.0) * positives[rows]  # (C, D)
            grad_chunk = grad_chunk.addmm_(p_neg, negatives)  # + (C, M) @ (M, D) -> (C, D)
            grad[rows] = grad_chunk / ctx.temperature
        return (grad * grad_output, *([None] * 9))


def _chunks(
    tensors: tuple[Tensor, ...], temperature: float, class_aware: bool, chunk_size: int
) -> Iterator[tuple[slice, Tensor, Tensor]]:
    """(rows, positive logits (C,), negative logits (C, M)) for each chunk of anchors.

    ``tensors`` is (anchors, positives, anchor_labels, negatives, negative_labels,
    anchor_locations, negative_locations). Forward and backward both walk the anchors this
    way: backward recomputes the logits rather than keeping (N, M) of them.
    """
    anchors, positives, anchor_labels, negatives, negative_labels, a_loc, n_loc = tensors
    for start in range(0, anchors.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        pos, neg = _chunk_logits(
            anchors[rows], positives[rows], anchor_labels[rows], negatives,
            negative_labels, temperature, class_aware,
        )  # (C,), (C, M)  # fmt: skip
        neg.masked_fill_(a_loc[rows, None] == n_loc[None, :], float("-inf"))  # its own cell
        yield rows, pos, neg


def _chunk_logits(
    anchors: Tensor,
    positives: Tensor,
    anchor_labels: Tensor,
    negatives: Tensor,
    negative_labels: Tensor,
    temperature: float,
    class_aware: bool,
) -> tuple[Tensor, Tensor]:
    """Logits ``q.k+ / t`` (C,) and ``q.k-_n / t`` (C, M) of a chunk of C anchors.

    ``anchors``/``positives`` are (C, D), ``anchor_labels`` (C,), ``negatives`` (M, D),
    ``negative_labels`` (M,). Masked negatives are ``-inf``. Scaling the (C, D) anchors by
    ``1/t`` before the products saves a pass over the (C, M) logits.
    """
    scaled = anchors / temperature  # (C, D)
    pos = (scaled * positives).sum(dim=1)  # (C,)
    neg = scaled @ negatives.T  # (C, D) @ (D, M) -> (C, M)
    if class_aware:
        same = anchor_labels[:, None] == negative_labels[None, :]  # (C, M)
        neg.masked_fill_(same, float("-inf"))
    return pos, neg


def _log_denominator(pos: Tensor, neg: Tensor) -> Tensor:
    """``log(exp(pos) + sum_n exp(neg_n))`` per row, stably; (C,), (C, M) -> (C,).

    The positive is never masked, so the result is finite even if every negative is.
    """
    return torch.logaddexp(pos, torch.logsumexp(neg, dim=1))


def region_contrastive_loss(
    anchors: Tensor,
    positives: Tensor,
    anchor_labels: Tensor,
    anchor_confidence: Tensor,
    negatives: Tensor,
    negative_labels: Tensor,
    temperature: float = 0.1,
    confidence_threshold: float | None = 0.75,
    class_aware: bool = True,
    chunk_size: int = 2048,
    anchor_locations: Tensor | None = None,
    negative_locations: Tensor | None = None,
) -> Tensor:
    """RCCR's region-wise contrastive consistency loss (InfoNCE form, docs/method.md#loss).

    ``loss_i = -log( exp(q.k+/t) / (exp(q.k+/t) + sum_n m(n) exp(q.k-_n/t)) )``, averaged
    over the kept anchors. Computed as a log-sum-exp over ``[positive, masked negatives]``
    (masked entries are ``-inf``) in float32 for bf16/fp16/fp32 inputs (float64 stays
    float64).

    Args:
        anchors: (N, D) student embeddings inside the box (L2-normalised upstream).
        positives: (N, D) teacher embeddings at the same cells; detached here.
        anchor_labels: (N,) int pseudo-labels of the anchors.
        anchor_confidence: (N,) teacher confidence of each anchor's pseudo-label.
        negatives: (M, D) bank features; detached here.
        negative_labels: (M,) int labels of the negatives. 255 (ignore) is treated like any
            other label: ignore-labelled features are expected to be kept out of the bank.
        temperature: ``t``.
        confidence_threshold: keep anchors whose confidence is strictly greater than this
            ("exceeds 0.75"). ``None`` keeps every anchor (positive sampling "all"); note
            that ``0`` still drops anchors with confidence exactly 0.
        class_aware: if True, ``m(n) = [negative_labels[n] != anchor_labels[i]]`` (negative
            sampling "class_aware"); if False every negative counts ("random").
        chunk_size: anchors processed at a time; bounds memory at ``chunk_size x M``.
        anchor_locations: (N,) int, where each anchor was taken (a feature cell).
        negative_locations: (M,) int, where each negative was taken, -1 if it matches no
            anchor. With both given, ``m(n)`` is also 0 where the locations are equal: an
            anchor never meets its own features, whatever ``class_aware``.

    Returns:
        Scalar loss (float32, or float64 for float64 anchors). If no anchor is kept it is a
        zero still connected to ``anchors``, so ``backward`` runs and gives zero gradients.
    """
    n, dim = anchors.shape
    if positives.shape != (n, dim):
        raise ValueError(f"positives must be {(n, dim)} like anchors, got {tuple(positives.shape)}")
    if anchor_labels.shape != (n,) or anchor_confidence.shape != (n,):
        raise ValueError(
            f"anchor_labels and anchor_confidence must be ({n},), got "
            f"{tuple(anchor_labels.shape)} and {tuple(anchor_confidence.shape)}"
        )
    if negatives.dim() != 2 or negatives.shape[1] != dim:
        raise ValueError(f"negatives must be (M, {dim}), got {tuple(negatives.shape)}")
    if negative_labels.shape != negatives.shape[:1]:
        raise ValueError(
            f"negative_labels must be ({negatives.shape[0]},), got {tuple(negative_labels.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")

    if confidence_threshold is None:
        keep = torch.ones(n, dtype=torch.bool, device=anchors.device)
    else:
        keep = anchor_confidence > confidence_threshold  # (N,)
    # float32 at least: bf16/fp16 similarities over thousands of negatives lose too much.
    dtype = torch.promote_types(anchors.dtype, torch.float32)
    kept = int(keep.sum())
    if kept == 0:
        return anchors.to(dtype).sum() * 0.0
    if anchor_locations is None or negative_locations is None:  # no anchor is excluded
        anchor_locations = torch.full_like(anchor_labels, -2)
        negative_locations = torch.full_like(negative_labels, -1)
    total = _ChunkedInfoNCE.apply(
        anchors[keep].to(dtype),  # (K, D)
        positives[keep].detach().to(dtype),  # (K, D)
        anchor_labels[keep],  # (K,)
        negatives.detach().to(dtype),  # (M, D)
        negative_labels,
        anchor_locations[keep],  # (K,)
        negative_locations,  # (M,)
        temperature,
        class_aware,
        chunk_size,
    )
    return total / kept


def contrast_weight(iteration: int, total: int, base: float = 0.01, start: int = 0) -> float:
    """Weight of the contrastive loss at ``iteration`` (docs/method.md#schedule).

    ``lambda(t) = base * exp(-5 * (1 - sqrt(t / T)))`` with ``t = iteration - start`` and
    ``T = total - start``; 0 before ``start``; ``t / T`` is clipped to 1 after ``total``.
    A start at or past ``total`` (the release's GTA5 script: 300000 of 250000) means the
    loss never runs in training. (The release ramps over ``iteration / total`` whatever
    the start; the two agree for its two scripts, which start at 0 or never.)
    """
    if iteration < start:
        return 0.0
    if total <= start:
        return base
    progress = min((iteration - start) / (total - start), 1.0)
    return base * math.exp(-5.0 * (1.0 - math.sqrt(progress)))


def box_cells(boxes: Tensor, stride: int, feat_h: int, feat_w: int) -> Tensor:
    """Feature cells inside each CutMix box.

    Args:
        boxes: (B, 4) integer ``[top, left, height, width]`` in pixels, multiples of
            ``stride``.
        stride: the feature map's output stride (8 for DeepLab-v2).
        feat_h: feature-map height.
        feat_w: feature-map width.

    Returns:
        (B, feat_h, feat_w) bool mask, True on cells inside the box.

    Raises:
        ValueError: on a box that is not ``(B, 4)`` or not aligned to ``stride``.
    """
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be (B, 4) [top, left, h, w], got {tuple(boxes.shape)}")
    if bool((boxes % stride != 0).any()):
        raise ValueError(f"boxes must be multiples of the stride {stride}, got {boxes.tolist()}")
    cells = boxes.long() // stride  # (B, 4) in feature cells
    rows = torch.arange(feat_h, device=boxes.device)  # (h,)
    cols = torch.arange(feat_w, device=boxes.device)  # (w,)
    top, left, height, width = (cells[:, i, None] for i in range(4))  # each (B, 1)
    in_rows = (rows >= top) & (rows < top + height)  # (B, h)
    in_cols = (cols >= left) & (cols < left + width)  # (B, w)
    return in_rows[:, :, None] & in_cols[:, None, :]  # (B, h, w)


def gather_cells(maps: Tensor, mask: Tensor) -> Tensor:
    """Values of a feature, label or confidence map at the masked cells.

    Order is row-major by batch, then row, then column, so anchors, positives, labels and
    confidences gathered with the same mask line up.

    Args:
        maps: (B, D, h, w) features or (B, h, w) labels / confidences.
        mask: (B, h, w) bool.

    Returns:
        (N, D) for features, (N,) for maps, with N = ``mask.sum()``.
    """
    if maps.dim() == 4:
        if maps.shape[:1] + maps.shape[2:] != mask.shape:
            raise ValueError(f"mask {tuple(mask.shape)} does not fit maps {tuple(maps.shape)}")
        return maps.permute(0, 2, 3, 1)[mask]  # (B, h, w, D)[mask] -> (N, D)
    if maps.shape != mask.shape:
        raise ValueError(f"mask {tuple(mask.shape)} does not fit maps {tuple(maps.shape)}")
    return maps[mask]  # (B, h, w)[mask] -> (N,)


def sample_rows(n_total: int, n: int, generator: torch.Generator | None = None) -> Tensor:
    """Indices of ``n`` of ``n_total`` rows, drawn without replacement, in random order.

    Returns all ``n_total`` indices (``arange``, in order) if ``n >= n_total``.
    """
    if n >= n_total:
        return torch.arange(n_total)
    return torch.randperm(n_total, generator=generator)[:n]  # (n,)
