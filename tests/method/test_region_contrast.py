"""Tests for the region-wise contrastive loss, its weight schedule and region sampling."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from region_loss_references import (
    naive_region_contrastive_loss,
    release_region_contrastive_loss,
)
from torch import Tensor
from torch.nn import functional as F

from rccr.method.region_contrast import (
    box_cells,
    contrast_weight,
    gather_cells,
    region_contrastive_loss,
    sample_rows,
)


def _inputs(
    n: int = 12, m: int = 30, d: int = 8, classes: int = 4, seed: int = 0, dtype=torch.float64
) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "anchors": F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=1),
        "positives": F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=1),
        "anchor_labels": torch.randint(0, classes, (n,), generator=g),
        "anchor_confidence": torch.rand(n, generator=g, dtype=dtype),
        "negatives": F.normalize(torch.randn(m, d, generator=g, dtype=dtype), dim=1),
        "negative_labels": torch.randint(0, classes, (m,), generator=g),
    }


def _value_and_grad(loss_fn, inputs: dict[str, Tensor], **kwargs) -> tuple[Tensor, Tensor]:
    anchors = inputs["anchors"].clone().requires_grad_(True)
    loss = loss_fn(**{**inputs, "anchors": anchors}, **kwargs)
    loss.backward()
    assert anchors.grad is not None
    return loss.detach(), anchors.grad


@pytest.mark.parametrize("class_aware", [True, False])
@pytest.mark.parametrize("threshold", [None, 0.0, 0.5, 0.75])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
@pytest.mark.parametrize("tile", [(3, 5), None])
def test_region_contrastive_loss__matches_naive(
    class_aware: bool, threshold: float | None, temperature: float, tile: tuple[int, int] | None
) -> None:
    inputs = _inputs(seed=int(temperature * 10 + (threshold or 0) * 100))
    common = {
        "temperature": temperature,
        "confidence_threshold": threshold,
        "class_aware": class_aware,
    }
    loss, grad = _value_and_grad(region_contrastive_loss, inputs, tile=tile, **common)
    ref_loss, ref_grad = _value_and_grad(naive_region_contrastive_loss, inputs, **common)
    assert loss.dtype == torch.float64
    assert torch.allclose(loss, ref_loss, rtol=1e-10, atol=1e-12)
    assert torch.allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("class_aware", [True, False])
def test_region_contrastive_loss__gradcheck(class_aware: bool) -> None:
    inputs = _inputs(n=7, m=20, seed=11)
    rest = {key: value for key, value in inputs.items() if key != "anchors"}
    anchors = inputs["anchors"].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda q: region_contrastive_loss(q, **rest, class_aware=class_aware, tile=(3, 5)),
        (anchors,),
    )


def test_region_contrastive_loss__tiled_equals_untiled() -> None:
    inputs = _inputs(n=17, m=40, seed=3)
    for class_aware in (True, False):
        whole, whole_grad = _value_and_grad(
            region_contrastive_loss, inputs, class_aware=class_aware, tile=(64, 64)
        )
        for tile in ((1, 1), (3, 5), (16, 2), (2, 16)):
            loss, grad = _value_and_grad(
                region_contrastive_loss, inputs, class_aware=class_aware, tile=tile
            )
            assert torch.allclose(loss, whole, rtol=1e-12)
            assert torch.allclose(grad, whole_grad, rtol=1e-12, atol=1e-14)


def test_region_contrastive_loss__some_anchors_filtered() -> None:
    inputs = _inputs(seed=4)
    inputs["anchor_confidence"] = torch.tensor([0.9, 0.1] * 6, dtype=torch.float64)
    loss, grad = _value_and_grad(region_contrastive_loss, inputs)
    assert torch.all(grad[1::2] == 0)
    assert torch.all(grad[0::2].abs().sum(dim=1) > 0)
    ref = naive_region_contrastive_loss(
        **{
            k: v[0::2] if k.startswith("anchor") or k == "positives" else v
            for k, v in inputs.items()
        },
        confidence_threshold=None,
    )
    assert torch.allclose(loss, ref, rtol=1e-10)


def test_region_contrastive_loss__threshold_is_strict() -> None:
    inputs = _inputs(n=4)
    inputs["anchor_confidence"] = torch.full((4,), 0.75, dtype=torch.float64)
    assert region_contrastive_loss(**inputs, confidence_threshold=0.75).item() == 0.0
    assert region_contrastive_loss(**inputs, confidence_threshold=0.7499).item() > 0.0


def test_region_contrastive_loss__no_kept_anchor_gives_zero_and_zero_grad() -> None:
    inputs = _inputs()
    inputs["anchor_confidence"] = torch.zeros(12, dtype=torch.float64)
    loss, grad = _value_and_grad(region_contrastive_loss, inputs)
    assert loss.item() == 0.0
    assert torch.all(grad == 0)


def test_region_contrastive_loss__no_kept_anchor_in_bf16_gives_a_float32_zero() -> None:
    """The empty case keeps the loss's dtype rule: bf16 anchors give a float32 loss."""
    inputs = {k: v.bfloat16() if v.is_floating_point() else v for k, v in _inputs().items()}
    inputs["anchor_confidence"] = torch.zeros(12, dtype=torch.bfloat16)
    loss, grad = _value_and_grad(region_contrastive_loss, inputs)
    assert loss.dtype == torch.float32 and loss.item() == 0.0
    assert grad.dtype == torch.bfloat16 and torch.all(grad == 0)


def test_region_contrastive_loss__no_grad_to_positives_or_negatives() -> None:
    inputs = _inputs()
    inputs["positives"].requires_grad_(True)
    inputs["negatives"].requires_grad_(True)
    anchors = inputs["anchors"].clone().requires_grad_(True)
    region_contrastive_loss(**{**inputs, "anchors": anchors}, confidence_threshold=None).backward()
    assert inputs["positives"].grad is None
    assert inputs["negatives"].grad is None
    assert anchors.grad is not None


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), class_aware=st.booleans())
def test_region_contrastive_loss__invariant_to_negative_order(seed: int, class_aware: bool) -> None:
    inputs = _inputs(seed=seed)
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(seed + 1))
    permuted = {
        **inputs,
        "negatives": inputs["negatives"][perm],
        "negative_labels": inputs["negative_labels"][perm],
    }
    kwargs = {"class_aware": class_aware, "confidence_threshold": None, "tile": (5, 7)}
    loss, grad = _value_and_grad(region_contrastive_loss, inputs, **kwargs)
    loss_p, grad_p = _value_and_grad(region_contrastive_loss, permuted, **kwargs)
    assert torch.allclose(loss, loss_p, rtol=1e-12)
    assert torch.allclose(grad, grad_p, rtol=1e-12, atol=1e-14)


def test_region_contrastive_loss__stable_for_large_logits() -> None:
    inputs = _inputs(dtype=torch.float32)
    inputs["negatives"][0] = inputs["anchors"][0]  # q.k- / t = 100: exp overflows in fp32
    loss, grad = _value_and_grad(
        region_contrastive_loss, inputs, temperature=0.01, confidence_threshold=None
    )
    assert torch.isfinite(loss)
    assert torch.isfinite(grad).all()


def test_region_contrastive_loss__all_negatives_masked_gives_zero_loss() -> None:
    inputs = _inputs(n=3, m=5)
    inputs["anchor_labels"] = torch.zeros(3, dtype=torch.long)
    inputs["negative_labels"] = torch.zeros(5, dtype=torch.long)
    loss = region_contrastive_loss(**inputs, confidence_threshold=None)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)


def test_region_contrastive_loss__bf16_close_to_fp32() -> None:
    inputs = _inputs(n=64, m=200, d=32, dtype=torch.float32)
    low = {k: v.bfloat16() if v.is_floating_point() else v for k, v in inputs.items()}
    loss, grad = _value_and_grad(region_contrastive_loss, low, confidence_threshold=None)
    ref = region_contrastive_loss(**inputs, confidence_threshold=None)
    assert loss.dtype == torch.float32
    assert grad.dtype == torch.bfloat16
    assert torch.allclose(loss, ref, rtol=2e-2)


def test_region_contrastive_loss__rejects_bad_shapes() -> None:
    inputs = _inputs()
    with pytest.raises(ValueError, match="negatives"):
        region_contrastive_loss(**{**inputs, "negatives": inputs["negatives"][:, :3]})
    with pytest.raises(ValueError, match="positives"):
        region_contrastive_loss(**{**inputs, "positives": inputs["positives"][:3]})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"anchor_labels": torch.zeros(11, dtype=torch.long)},
            r"^anchor_labels and anchor_confidence must be \(12,\), got \(11,\) and \(12,\)$",
        ),
        (
            {"anchor_confidence": torch.ones(12, 1, dtype=torch.float64)},
            r"^anchor_labels and anchor_confidence must be \(12,\), got \(12,\) and \(12, 1\)$",
        ),
        (
            {"negative_labels": torch.zeros(29, dtype=torch.long)},
            r"^negative_labels must be \(30,\), got \(29,\)$",
        ),
        (
            {"negative_locations": torch.arange(30)},
            r"^anchor_locations and negative_locations must be given together$",
        ),
        ({"temperature": 0.0}, r"^temperature must be > 0, got 0.0$"),
        ({"temperature": -0.1}, r"^temperature must be > 0, got -0.1$"),
        ({"tile": (0, 4)}, r"^tile must be \(anchors >= 1, negatives >= 1\), got \(0, 4\)$"),
        ({"tile": (4, 0)}, r"^tile must be \(anchors >= 1, negatives >= 1\), got \(4, 0\)$"),
    ],
)
def test_region_contrastive_loss__names_the_bad_input(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        region_contrastive_loss(**{**_inputs(), **change})  # type: ignore[arg-type]


def _near_positives(inputs: dict[str, Tensor], seed: int) -> dict[str, Tensor]:
    """Positives close to their anchors, as student and teacher features of a cell are."""
    anchors = inputs["anchors"]
    noise = torch.randn(anchors.shape, generator=torch.Generator().manual_seed(seed))
    return {**inputs, "positives": F.normalize(anchors + 0.5 * noise.to(anchors.dtype), dim=1)}


def _filtered(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Every third anchor's confidence at or below 0.75, the rest above."""
    n = inputs["anchors"].shape[0]
    confidence = torch.where(torch.arange(n) % 3 == 0, 0.5, 0.9).to(inputs["anchors"].dtype)
    return {**inputs, "anchor_confidence": confidence}


@pytest.mark.parametrize("tile", [(3, 5), None])
@pytest.mark.parametrize("seed", [0, 1])
def test_region_contrastive_loss__equals_release_without_eps(
    tile: tuple[int, int] | None, seed: int
) -> None:
    inputs = _filtered(_inputs(n=15, m=50, seed=seed))
    loss, grad = _value_and_grad(region_contrastive_loss, inputs, tile=tile)
    ref_loss, ref_grad = _value_and_grad(release_region_contrastive_loss, inputs, eps=False)
    assert torch.allclose(loss, ref_loss, rtol=0, atol=1e-10)
    assert torch.allclose(grad, ref_grad, rtol=0, atol=1e-10)
    assert torch.all(grad[0::3] == 0)


def test_region_contrastive_loss__close_to_release_with_eps() -> None:
    """The release's eps terms move each loss_i by about 1e-8 / p_i, p_i the positive's
    softmax weight: negligible when positives resemble their anchors."""
    inputs = _filtered(_near_positives(_inputs(n=15, m=50, seed=5), seed=6))
    loss, grad = _value_and_grad(region_contrastive_loss, inputs)
    ref_loss, ref_grad = _value_and_grad(release_region_contrastive_loss, inputs, eps=True)
    assert not torch.equal(loss, ref_loss)
    assert torch.allclose(loss, ref_loss, rtol=1e-6, atol=0)
    assert (grad - ref_grad).abs().max() < 1e-6 * grad.abs().max()


def _locations(n: int, m: int, seed: int) -> tuple[Tensor, Tensor]:
    """Anchor locations in [0, 6) and negative locations in [-1, 6): many pairs collide."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 6, (n,), generator=g), torch.randint(-1, 6, (m,), generator=g)


@pytest.mark.parametrize("class_aware", [True, False])
@pytest.mark.parametrize("tile", [(2, 3), None])
@pytest.mark.parametrize("threshold", [None, 0.5])
def test_region_contrastive_loss__location_exclusion_matches_naive(
    class_aware: bool, tile: tuple[int, int] | None, threshold: float | None
) -> None:
    inputs = _inputs(seed=7)
    anchor_locations, negative_locations = _locations(12, 30, seed=8)
    common = {
        "class_aware": class_aware,
        "confidence_threshold": threshold,
        "anchor_locations": anchor_locations,
        "negative_locations": negative_locations,
    }
    loss, grad = _value_and_grad(region_contrastive_loss, inputs, tile=tile, **common)
    ref_loss, ref_grad = _value_and_grad(naive_region_contrastive_loss, inputs, **common)
    assert torch.allclose(loss, ref_loss, rtol=1e-10, atol=1e-12)
    assert torch.allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)
    unmasked = region_contrastive_loss(**inputs, class_aware=class_aware, tile=tile,
                                       confidence_threshold=threshold)  # fmt: skip
    assert not torch.allclose(loss, unmasked)


@pytest.mark.parametrize("class_aware", [True, False])
def test_region_contrastive_loss__an_anchor_at_location_minus_one_meets_no_negative_there(
    class_aware: bool,
) -> None:
    """-1 matches no anchor, also an anchor whose own location is -1 (unknown)."""
    inputs = _inputs(seed=11)
    g = torch.Generator().manual_seed(12)
    anchor_locations = torch.randint(-1, 3, (12,), generator=g)
    negative_locations = torch.randint(-1, 3, (30,), generator=g)
    assert (anchor_locations == -1).any() and (negative_locations == -1).any()
    common = {
        "class_aware": class_aware,
        "confidence_threshold": None,
        "anchor_locations": anchor_locations,
        "negative_locations": negative_locations,
    }
    loss, grad = _value_and_grad(region_contrastive_loss, inputs, tile=(2, 3), **common)
    ref_loss, ref_grad = _value_and_grad(naive_region_contrastive_loss, inputs, **common)
    assert torch.allclose(loss, ref_loss, rtol=1e-10, atol=1e-12)
    assert torch.allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)


def test_region_contrastive_loss__own_feature_at_own_location_is_left_out() -> None:
    """Random negatives that include the anchors themselves: the locations remove them."""
    inputs = _inputs(n=6, m=10, seed=9)
    with_self = {
        **inputs,
        "negatives": torch.cat([inputs["anchors"], inputs["negatives"]]),
        "negative_labels": torch.cat([inputs["anchor_labels"], inputs["negative_labels"]]),
    }
    locations = torch.arange(6)
    loss = region_contrastive_loss(
        **with_self, class_aware=False, confidence_threshold=None, anchor_locations=locations,
        negative_locations=torch.cat([locations, torch.full((10,), -1)]),
    )  # fmt: skip
    # Each anchor still meets the other anchors, but not itself.
    others = naive_region_contrastive_loss(
        **with_self, class_aware=False, confidence_threshold=None, anchor_locations=locations,
        negative_locations=torch.cat([locations, torch.full((10,), -1)]),
    )  # fmt: skip
    assert torch.allclose(loss, others, rtol=1e-12)
    plain = region_contrastive_loss(**with_self, class_aware=False, confidence_threshold=None)
    assert plain > loss


def test_region_contrastive_loss__own_cell_entries_with_the_anchor_label() -> None:
    """As in training: this step's entries at an anchor's cell carry its pseudo-label, so
    under class-aware sampling the locations remove nothing the class filter keeps."""
    inputs = _inputs(n=8, m=20, seed=12)
    own = torch.tensor([1, 4, 6])  # anchors whose cells were drawn into the bank
    with_own = {
        **inputs,
        "negatives": torch.cat([inputs["negatives"], inputs["anchors"][own]]),
        "negative_labels": torch.cat([inputs["negative_labels"], inputs["anchor_labels"][own]]),
    }
    locations = {
        "anchor_locations": torch.arange(8) + 100,
        "negative_locations": torch.cat([torch.full((20,), -1), own + 100]),
    }
    common = {"confidence_threshold": None, "tile": (3, 5)}
    loss, grad = _value_and_grad(region_contrastive_loss, with_own, **common, **locations)
    plain, plain_grad = _value_and_grad(region_contrastive_loss, with_own, **common)
    assert torch.allclose(loss, plain, rtol=1e-12) and torch.allclose(grad, plain_grad)
    random, _ = _value_and_grad(region_contrastive_loss, with_own, class_aware=False, **common)
    located, _ = _value_and_grad(
        region_contrastive_loss, with_own, class_aware=False, **common, **locations
    )
    expected = naive_region_contrastive_loss(
        **with_own, class_aware=False, confidence_threshold=None, **locations
    )
    assert torch.allclose(located, expected, rtol=1e-10) and located < random


def test_region_contrastive_loss__locations_come_together() -> None:
    inputs = _inputs()
    with pytest.raises(ValueError, match="together"):
        region_contrastive_loss(**inputs, anchor_locations=torch.arange(12))
    with pytest.raises(ValueError, match="locations"):
        region_contrastive_loss(
            **inputs, anchor_locations=torch.arange(12), negative_locations=torch.arange(3)
        )


def test_region_contrastive_loss__float32_under_bf16_autocast() -> None:
    inputs = _inputs(n=64, m=200, d=32, dtype=torch.float32)
    ref, ref_grad = _value_and_grad(region_contrastive_loss, inputs, confidence_threshold=None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, grad = _value_and_grad(region_contrastive_loss, inputs, confidence_threshold=None)
    assert loss.dtype == torch.float32 and grad.dtype == torch.float32
    assert torch.allclose(loss, ref, rtol=1e-6, atol=0)
    assert torch.allclose(grad, ref_grad, rtol=1e-6, atol=1e-9)
    # bf16 anchors (as a bf16 head would give them) are upcast, not computed in bf16.
    low = {**inputs, "anchors": inputs["anchors"].bfloat16()}
    upcast = {**inputs, "anchors": low["anchors"].float()}
    expected, expected_grad = _value_and_grad(
        region_contrastive_loss, upcast, confidence_threshold=None
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, grad = _value_and_grad(region_contrastive_loss, low, confidence_threshold=None)
    assert loss.dtype == torch.float32 and grad.dtype == torch.bfloat16
    assert torch.allclose(loss, expected, rtol=1e-6, atol=0)
    assert torch.allclose(grad.float(), expected_grad.bfloat16().float(), rtol=0, atol=0)


def test_region_contrastive_loss__no_grad_gives_the_same_value() -> None:
    inputs = _inputs(n=20, m=40, seed=10)
    anchors = inputs["anchors"].clone().requires_grad_(True)
    with_grad = region_contrastive_loss(**{**inputs, "anchors": anchors}, tile=(3, 5))
    with torch.no_grad():
        value = region_contrastive_loss(**{**inputs, "anchors": anchors}, tile=(3, 5))
    assert with_grad.requires_grad and not value.requires_grad
    assert torch.equal(value, with_grad.detach())


@pytest.mark.parametrize(
    ("iteration", "expected"),
    [(0, 0.01 * math.exp(-5)), (100, 0.01), (25, 0.01 * math.exp(-2.5)), (200, 0.01)],
)
def test_contrast_weight__schedule(iteration: int, expected: float) -> None:
    assert contrast_weight(iteration, 100) == pytest.approx(expected)


def test_contrast_weight__zero_before_start() -> None:
    assert contrast_weight(49, 150, start=50) == 0.0
    assert contrast_weight(50, 150, start=50) == pytest.approx(0.01 * math.exp(-5))
    assert contrast_weight(75, 150, start=50) == pytest.approx(0.01 * math.exp(-2.5))
    # a start past the end, as the release's GTA5 script: never on during training
    assert all(contrast_weight(i, 250_000, start=300_000) == 0.0 for i in (0, 249_999))


def test_box_cells__matches_loop() -> None:
    boxes = torch.tensor([[8, 16, 16, 8], [0, 0, 32, 32], [24, 8, 0, 8]])
    mask = box_cells(boxes, stride=8, feat_h=4, feat_w=5)
    assert mask.shape == (3, 4, 5)
    for b, (top, left, h, w) in enumerate(boxes.tolist()):
        for r in range(4):
            for c in range(5):
                inside = top <= r * 8 < top + h and left <= c * 8 < left + w
                assert bool(mask[b, r, c]) == inside
    with pytest.raises(ValueError, match="stride"):
        box_cells(torch.tensor([[3, 0, 8, 8]]), stride=8, feat_h=4, feat_w=4)
    for bad in (torch.zeros(2, 5, dtype=torch.long), torch.zeros(4, dtype=torch.long)):
        shape = ", ".join(map(str, bad.shape)) + ("," if bad.dim() == 1 else "")
        with pytest.raises(
            ValueError, match=rf"^boxes must be \(B, 4\) \[top, left, h, w\], got \({shape}\)$"
        ):
            box_cells(bad, stride=8, feat_h=4, feat_w=4)


def test_gather_cells__row_major_and_aligned() -> None:
    features = torch.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)  # (B, D, h, w)
    labels = torch.arange(2 * 4 * 5).reshape(2, 4, 5)  # (B, h, w)
    mask = torch.rand(2, 4, 5, generator=torch.Generator().manual_seed(0)) > 0.5
    rows, cells = gather_cells(features, mask), gather_cells(labels, mask)
    expected = [(b, r, c) for b in range(2) for r in range(4) for c in range(5) if mask[b, r, c]]
    assert rows.shape == (len(expected), 3) and cells.shape == (len(expected),)
    for i, (b, r, c) in enumerate(expected):
        assert torch.equal(rows[i], features[b, :, r, c])
        assert cells[i] == labels[b, r, c]


def test_gather_cells__names_both_shapes_when_the_mask_does_not_fit() -> None:
    mask = torch.ones(2, 4, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"^mask \(2, 4, 5\) does not fit maps \(2, 3, 4, 6\)$"):
        gather_cells(torch.zeros(2, 3, 4, 6), mask)
    with pytest.raises(ValueError, match=r"^mask \(2, 4, 5\) does not fit maps \(3, 4, 5\)$"):
        gather_cells(torch.zeros(3, 4, 5), mask)


@pytest.mark.parametrize(("n_total", "n"), [(10, 4), (10, 10), (5, 9), (0, 3)])
def test_sample_rows__subset_without_replacement(n_total: int, n: int) -> None:
    rows = sample_rows(n_total, n, torch.Generator().manual_seed(0))
    assert rows.shape == (min(n, n_total),)
    assert len(set(rows.tolist())) == rows.numel()
    assert all(0 <= i < n_total for i in rows.tolist())


@pytest.mark.parametrize("class_aware", [True, False])
@pytest.mark.parametrize("seed", range(12))
def test_meets_own_location__equals_a_pairwise_reference(seed: int, class_aware: bool) -> None:
    """Which anchors have a negative at their own location left to remove, found by sorting,
    against the K x M comparison written out: several negatives share a location, with
    labels that agree and disagree, and locations no anchor has (-1: an earlier step)."""
    from rccr.method.region_contrast import _meets_own_location

    g = torch.Generator().manual_seed(seed)
    anchor_locations = torch.randint(0, 12, (20,), generator=g)
    negative_locations = torch.randint(-1, 12, (40,), generator=g)
    anchor_labels = torch.randint(0, 3, (20,), generator=g)
    negative_labels = torch.randint(0, 3, (40,), generator=g)
    marked = _meets_own_location(anchor_locations, negative_locations, anchor_labels,
                                 negative_labels, class_aware)  # fmt: skip
    same = anchor_locations[:, None] == negative_locations[None, :]  # (K, M)
    if class_aware:
        same &= anchor_labels[:, None] != negative_labels[None, :]
    assert marked.tolist() == same.any(dim=1).tolist()


def test_contrast_weight__start_at_the_end_is_the_base_weight_past_it() -> None:
    """contrast_start_iter == iterations: the loss never runs in training (every step is
    before the start), and asking past it gives the base weight, not a division by zero."""
    from rccr.method.region_contrast import contrast_weight

    assert contrast_weight(9, 10, base=0.01, start=10) == 0.0
    assert contrast_weight(10, 10, base=0.01, start=10) == 0.01
    assert contrast_weight(12, 10, base=0.01, start=20) == 0.0


def test_sample_rows__all_rows_in_order_when_n_reaches_the_total() -> None:
    from rccr.method.region_contrast import sample_rows

    assert sample_rows(5, 5, torch.Generator().manual_seed(0)).tolist() == [0, 1, 2, 3, 4]
    assert sample_rows(5, 9).tolist() == [0, 1, 2, 3, 4]
    drawn = sample_rows(50, 5, torch.Generator().manual_seed(0))
    assert len(set(drawn.tolist())) == 5 and drawn.tolist() != [0, 1, 2, 3, 4]
