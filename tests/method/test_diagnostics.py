"""Self-training diagnostics against slow loops over pixels and pairs."""

from __future__ import annotations

import math

import pytest
import torch

from rccr.data.labels import IGNORE_INDEX
from rccr.method.diagnostics import anchor_quality, negative_quality, pseudo_label_quality


def _labels(seed: int, shape: tuple[int, ...], classes: int, unknown: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, shape, generator=g)
    return labels.masked_fill(torch.rand(shape, generator=g) < unknown, IGNORE_INDEX)


@pytest.mark.parametrize("seed", range(4))
def test_pseudo_label_quality__matches_loops(seed: int) -> None:
    g = torch.Generator().manual_seed(100 + seed)
    truth = _labels(seed, (2, 6, 7), 5, 0.3)
    pseudo = torch.randint(0, 6, (2, 6, 7), generator=g)
    confidence = torch.rand(2, 6, 7, generator=g)
    got = pseudo_label_quality(pseudo, confidence, truth, threshold=0.6)
    scored = [(int(p), int(t), float(c)) for p, t, c in
              zip(pseudo.flatten(), truth.flatten(), confidence.flatten(), strict=True)
              if t != IGNORE_INDEX]  # fmt: skip
    assert got["pl_acc"] == pytest.approx(sum(p == t for p, t, _ in scored) / len(scored))
    confident = [(p, t) for p, t, c in scored if c >= 0.6]
    assert got["pl_confident_share"] == pytest.approx(len(confident) / len(scored))
    assert got["pl_confident_acc"] == pytest.approx(
        sum(p == t for p, t in confident) / len(confident)
    )
    ious = []
    for c in range(19):
        inter = sum(p == c and t == c for p, t, _ in scored)
        union = sum(p == c or t == c for p, t, _ in scored)
        if union:
            ious.append(inter / union)
    assert got["pl_miou"] == pytest.approx(100 * sum(ious) / len(ious))


def test_pseudo_label_quality__no_known_pixel_is_nan() -> None:
    truth = torch.full((1, 2, 2), IGNORE_INDEX)
    got = pseudo_label_quality(
        torch.zeros(1, 2, 2, dtype=torch.long), torch.ones(1, 2, 2), truth, 0.5
    )
    assert all(math.isnan(v) for v in got.values())


def test_pseudo_label_quality__one_known_pixel_is_a_share_of_one() -> None:
    """A single scored pixel is a whole of one, not an empty one."""
    truth = torch.tensor([[[2, IGNORE_INDEX]]])
    got = pseudo_label_quality(torch.tensor([[[2, 0]]]), torch.tensor([[[0.9, 0.9]]]), truth, 0.5)
    assert got["pl_acc"] == 1.0 and got["pl_confident_share"] == 1.0
    assert got["pl_confident_acc"] == 1.0 and got["pl_miou"] == 100.0


def test_anchor_quality__matches_loops() -> None:
    pseudo = torch.tensor([0, 1, 2, 2, 3, 1])
    truth = torch.tensor([0, 2, 2, IGNORE_INDEX, 3, 1])
    kept = torch.tensor([True, True, False, True, False, False])
    got = anchor_quality(pseudo, truth, kept)
    assert got["anchors"] == 6 and got["anchors_kept_share"] == pytest.approx(0.5)
    assert got["anchors_kept_acc"] == pytest.approx(1 / 2)  # kept and known: 0 right, 1 wrong
    assert got["anchors_rejected_acc"] == pytest.approx(3 / 3)


@pytest.mark.parametrize("class_aware", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_negative_quality__matches_a_loop_over_pairs(seed: int, class_aware: bool) -> None:
    a_pseudo = _labels(seed, (30,), 4, 0.0)
    a_truth = _labels(seed + 10, (30,), 4, 0.2)
    n_label = _labels(seed + 20, (50,), 4, 0.1)  # a 255 label, as with method.bank_ignore
    n_truth = _labels(seed + 30, (50,), 4, 0.2)
    got = negative_quality(a_pseudo, a_truth, n_label, n_truth, class_aware)
    drawn = same = counted = counted_same = removed = removed_other = 0
    for ap, at in zip(a_pseudo.tolist(), a_truth.tolist(), strict=True):
        for nl, nt in zip(n_label.tolist(), n_truth.tolist(), strict=True):
            if IGNORE_INDEX in (at, nt):
                continue
            drawn += 1
            same += at == nt
            if class_aware and ap == nl:
                removed += 1
                removed_other += at != nt
            else:
                counted += 1
                counted_same += at == nt
    assert got["neg_false_drawn"] == pytest.approx(same / drawn)
    assert got["neg_false_kept"] == pytest.approx(counted_same / counted)
    if class_aware:
        assert got["neg_true_removed"] == pytest.approx(removed_other / removed)
    else:
        assert math.isnan(got["neg_true_removed"])
