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

Positives and negatives are constants, so the loss and its gradient with respect to the
anchors are computed together, in one pass over tiles of anchors x negatives with a running
log-sum-exp per anchor (as flash attention does); backward only scales that gradient.
Anchors and negatives are first sorted by label, so the pairs that class-aware sampling
removes form blocks that are skipped rather than computed and masked.
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

# (anchors, negatives) per tile. On CPU a tile's float32 similarities take 512 KiB, a core's
# L2 cache; on a GPU wide tiles keep the number of kernel launches small.
_CPU_TILE = (256, 512)
_GPU_TILE = (256, 65536)


class _TiledInfoNCE(torch.autograd.Function):
    """Sum over anchors of the masked InfoNCE loss; gradient w.r.t. the anchors only.

    Forward computes the anchors' gradient along with the value (``_info_nce``): positives
    and negatives are constants, so nothing else needs one. Backward scales it by
    ``grad_output``. Double backward is not supported.
    """

    @staticmethod
    def forward(
        ctx: Any,
        anchors: Tensor,
        positives: Tensor,
        anchor_labels: Tensor,
        negatives: Tensor,
        negative_labels: Tensor,
        anchor_locations: Tensor | None,
        negative_locations: Tensor | None,
        temperature: float,
        class_aware: bool,
        tile: tuple[int, int],
    ) -> Tensor:
        total, grad = _info_nce(
            anchors, positives, anchor_labels, negatives, negative_labels, anchor_locations,
            negative_locations, temperature, class_aware, tile, with_grad=True,
        )  # fmt: skip
        ctx.save_for_backward(grad)
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        (grad,) = ctx.saved_tensors
        return (grad * grad_output,) + (None,) * 9


def _info_nce(
    anchors: Tensor,
    positives: Tensor,
    anchor_labels: Tensor,
    negatives: Tensor,
    negative_labels: Tensor,
    anchor_locations: Tensor | None,
    negative_locations: Tensor | None,
    temperature: float,
    class_aware: bool,
    tile: tuple[int, int],
    with_grad: bool,
) -> tuple[Tensor, Tensor | None]:
    """Sum over anchors of ``loss_i`` and, if ``with_grad``, its gradient w.r.t. the anchors.

    Each anchor keeps a running log-sum-exp over the tiles of ``_tiles`` (as flash attention
    does), with ``s_n = q.k-_n / t`` the logits of its negatives:

    - ``top``: the largest logit so far, the positive's ``q.k+/t`` to begin with;
    - ``z = exp(q.k+/t - top) + sum_n exp(s_n - top)``;
    - ``pulled = sum_n exp(s_n - top) k-_n``;

    both sums are rescaled by ``exp(old top - new top)`` when ``top`` grows. At the end
    ``loss_i = top + log z - q.k+/t`` and, with ``p`` the softmax over the positive and the
    negatives, ``d loss_i / d q_i = (sum_n p_n k-_n + (p_+ - 1) k+) / t`` where
    ``sum_n p_n k-_n = pulled / z``. Memory: one tile of logits, (K, D) for the gradient.

    Args:
        anchors: (K, D) kept anchors; positives: (K, D).
        anchor_labels: (K,), sorted if ``class_aware``.
        negatives: (M, D); negative_labels: (M,), sorted if ``class_aware``.
        anchor_locations: None, or (K,); negative_locations: None, or (M,). A pair at the
            same location is left out (the caller has moved -1 out of the anchors' range).
        temperature: ``t``.
        class_aware: leave out pairs with the same label.
        tile: (anchors, negatives) per tile.
        with_grad: also compute the gradient.

    Returns:
        The scalar sum and the (K, D) gradient (None without ``with_grad``).
    """
    scaled = anchors / temperature  # (K, D): 1/t once, not on every logit
    positive_logits = (scaled * positives).sum(dim=1)  # (K,)
    located: list[bool] = []  # per anchor: a negative at its own location to remove
    if anchor_locations is not None and negative_locations is not None:
        located = _meets_own_location(
            anchor_locations, negative_locations, anchor_labels, negative_labels, class_aware
        ).tolist()
    total = anchors.new_zeros(())
    grad = torch.empty_like(anchors) if with_grad else None  # (K, D)
    for rows, columns in _tiles(anchor_labels, negative_labels, class_aware, tile):
        q, positive = scaled[rows], positive_logits[rows]  # (R, D), (R,)
        top = positive.clone()  # (R,)
        z = torch.ones_like(positive)  # (R,) the positive's term is exp(0)
        pulled = torch.zeros_like(q) if with_grad else None  # (R, D)
        mask_locations = any(located[rows])  # never without locations (an empty list)
        for cols in columns:
            keys = negatives[cols]  # (C, D)
            logits = q @ keys.T  # (R, D) @ (D, C) -> (R, C)
            if mask_locations:
                assert anchor_locations is not None and negative_locations is not None
                same = anchor_locations[rows, None] == negative_locations[None, cols]  # (R, C)
                logits.masked_fill_(same, float("-inf"))
            new_top = torch.maximum(top, logits.amax(dim=1))  # (R,)
            rescale = (top - new_top).exp_()  # (R,) takes the sums so far to the new maximum
            weights = logits.sub_(new_top[:, None]).exp_()  # (R, C), in place
            z.mul_(rescale).add_(weights.sum(dim=1))
            if pulled is not None:
                pulled.mul_(rescale[:, None]).addmm_(weights, keys)  # + (R, C) @ (C, D)
            top = new_top
        total += (top + z.log() - positive).sum()
        if grad is not None and pulled is not None:
            p_positive = (positive - top).exp_().div_(z)  # (R,)
            pulled_mean = pulled / z[:, None]  # (R, D) sum_n p_n k-_n
            grad[rows] = (pulled_mean + (p_positive - 1.0)[:, None] * positives[rows]) / temperature
    return total, grad


def _meets_own_location(
    anchor_locations: Tensor,
    negative_locations: Tensor,
    anchor_labels: Tensor,
    negative_labels: Tensor,
    class_aware: bool,
) -> Tensor:
    """(K,) bool: anchors that have a negative at their own location left for it to remove.

    Locations are (K,) and (M,), labels (K,) and (M,). A same-location negative with the
    anchor's label is removed by class-aware sampling anyway (in training, this step's
    entries at the anchor's cell carry its pseudo-label), so only the tiles of anchors marked
    here need the dense location mask. Found by sorting, not by comparing all K x M pairs.
    """
    order = torch.argsort(negative_locations)  # (M,)
    sorted_locations = negative_locations[order]
    first = torch.searchsorted(sorted_locations, anchor_locations)  # (K,)
    counts = torch.searchsorted(sorted_locations, anchor_locations, right=True) - first  # (K,)
    anchor = torch.repeat_interleave(counts)  # 0, 0, 1, 1, 1, ...: the row of each pair
    # (P,) each same-location pair's place in its anchor's run: 0, 1, ..., counts[i] - 1
    place = torch.arange(anchor.numel(), device=counts.device) - (counts.cumsum(0) - counts)[anchor]
    negative = order[first[anchor] + place]  # (P,)
    if class_aware:
        anchor = anchor[anchor_labels[anchor] != negative_labels[negative]]
    marked = torch.zeros(counts.numel(), dtype=torch.bool, device=counts.device)
    marked[anchor] = True
    return marked


def _tiles(
    anchor_labels: Tensor, negative_labels: Tensor, class_aware: bool, tile: tuple[int, int]
) -> Iterator[tuple[slice, list[slice]]]:
    """Tiles (rows of anchors, columns of negatives) that cover every pair the loss sums.

    With ``class_aware`` both label tensors, (K,) and (M,), are sorted: the anchors of one
    label are a run of rows, and their negatives the columns before and after that label's
    run. Otherwise all anchors meet all negatives. A run of rows is cut into tiles of
    ``tile[0]`` anchors; a tile of fewer anchors takes proportionally more negatives, so each
    holds at most ``tile[0] x tile[1]`` logits.
    """
    n, m = anchor_labels.numel(), negative_labels.numel()
    if class_aware:
        labels, counts = torch.unique_consecutive(anchor_labels, return_counts=True)
        runs = counts.tolist()
        skip_from = torch.searchsorted(negative_labels, labels).tolist()
        skip_to = torch.searchsorted(negative_labels, labels, right=True).tolist()
    else:
        runs, skip_from, skip_to = [n], [0], [0]
    max_rows, max_cols = tile
    first = 0
    for run, start, stop in zip(runs, skip_from, skip_to, strict=True):
        for row in range(first, first + run, max_rows):
            rows = slice(row, min(row + max_rows, first + run))
            width = max_cols * max_rows // (rows.stop - rows.start)
            columns = [
                slice(col, min(col + width, end))
                for begin, end in ((0, start), (stop, m))
                for col in range(begin, end, width)
            ]
            yield rows, columns
        first += run


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
    anchor_locations: Tensor | None = None,
    negative_locations: Tensor | None = None,
    tile: tuple[int, int] | None = None,
) -> Tensor:
    """RCCR's region-wise contrastive consistency loss (InfoNCE form, docs/method.md#loss).

    ``loss_i = -log( exp(q.k+/t) / (exp(q.k+/t) + sum_n m_i(n) exp(q.k-_n/t)) )``, averaged
    over the kept anchors. Unkept anchors are dropped before any similarity is computed. The
    loss and its gradient w.r.t. the anchors are computed together, tile by tile, with a
    running log-sum-exp over [positive, negatives] per anchor; class-aware, anchors and
    negatives are sorted by label and same-label blocks are skipped. Memory beyond the
    inputs: a label-sorted copy of the negatives, one tile of logits and the (K, D) gradient
    of the K kept anchors. Under ``torch.no_grad`` (or for anchors that need no gradient)
    only the value is computed. Autocast is switched off inside: bf16/fp16 inputs are
    computed in float32, float32 stays float32 and float64 float64.

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
        class_aware: if True, ``m_i(n) = [negative_labels[n] != anchor_labels[i]]``
            (negative sampling "class_aware"); if False every negative counts ("random").
        anchor_locations: optional (N,) int locations of the anchors (e.g. flat cell
            indices), given together with ``negative_locations``.
        negative_locations: optional (M,) int locations of the negatives; ``m_i(n)`` is also
            0 where ``negative_locations[n] == anchor_locations[i]``, so that an anchor never
            meets its own step's feature at its own cell. -1 matches no anchor.
        tile: (anchors, negatives) per tile, which bounds the logits held at once; by
            default (256, 512) on CPU (cache-sized) and (256, 65536) elsewhere (few launches).

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
    m = negatives.shape[0]
    if negative_labels.shape != (m,):
        raise ValueError(f"negative_labels must be ({m},), got {tuple(negative_labels.shape)}")
    if (anchor_locations is None) != (negative_locations is None):
        raise ValueError("anchor_locations and negative_locations must be given together")
    if (
        anchor_locations is not None
        and negative_locations is not None
        and (anchor_locations.shape != (n,) or negative_locations.shape != (m,))
    ):
        raise ValueError(
            f"anchor_locations and negative_locations must be ({n},) and ({m},), got "
            f"{tuple(anchor_locations.shape)} and {tuple(negative_locations.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if tile is None:
        tile = _CPU_TILE if anchors.device.type == "cpu" else _GPU_TILE
    if min(tile) < 1:
        raise ValueError(f"tile must be (anchors >= 1, negatives >= 1), got {tile}")

    # float32 at least: bf16/fp16 similarities over thousands of negatives lose too much.
    dtype = torch.promote_types(anchors.dtype, torch.float32)
    with torch.autocast(device_type=anchors.device.type, enabled=False):
        if confidence_threshold is None:
            rows = torch.arange(n, device=anchors.device)  # (K,) kept anchors
        else:
            rows = (anchor_confidence > confidence_threshold).nonzero().squeeze(1)  # (K,)
        if rows.numel() == 0:
            return anchors.to(dtype).sum() * 0.0
        anchor_labels, negative_labels = anchor_labels.long(), negative_labels.long()
        negatives = negatives.detach().to(dtype)
        if class_aware:  # sorted by label, so that same-label pairs form blocks
            rows = rows[torch.argsort(anchor_labels[rows], stable=True)]
            order = torch.argsort(negative_labels, stable=True)  # (M,)
            negatives, negative_labels = negatives[order], negative_labels[order]
            if negative_locations is not None:
                negative_locations = negative_locations[order]
        if anchor_locations is not None and negative_locations is not None:
            anchor_locations, negative_locations = (
                anchor_locations.long(),
                negative_locations.long(),
            )
            anchor_locations = anchor_locations[rows]
            # -1 becomes a location below every anchor's, so it matches none.
            outside = int(anchor_locations.min()) - 1
            negative_locations = negative_locations.masked_fill(negative_locations == -1, outside)
        inputs = (
            anchors[rows].to(dtype),  # (K, D)
            positives[rows].detach().to(dtype),  # (K, D)
            anchor_labels[rows],  # (K,)
            negatives,  # (M, D)
            negative_labels,  # (M,)
            anchor_locations,
            negative_locations,
            temperature,
            class_aware,
            tile,
        )
        if torch.is_grad_enabled() and anchors.requires_grad:
            total = _TiledInfoNCE.apply(*inputs)
        else:
            total, _ = _info_nce(*inputs, with_grad=False)
    return total / rows.numel()


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
