"""Property tests (hypothesis) of invariants the rest of the suite relies on.

Covered here: label maps are total over every 8- and 16-bit input; CutMix keeps the image
(pixels) and the labels (feature cells) on the same side of the box; the region
contrastive loss and its gradient do not depend on the order of the negatives, for any
shapes, chunking and sampling settings.

Covered next to the code they test (not repeated here): ClassMix mixes images and labels
with the same mask (tests/method/test_mixing.py), IoU is invariant to permuting class ids
(tests/test_evaluation.py), and the loss for a fixed shape under negative permutation
(tests/method/test_region_contrast.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rccr.data import cityscapes, synthia
from rccr.data.dataset import TRAIN_IDS, LabelFormat
from rccr.data.files import DataError
from rccr.data.labels import IGNORE_INDEX, NUM_CLASSES
from rccr.method.memory_bank import augmented_labels
from rccr.method.mixing import box_mask, cut_mix, cut_mix_box
from rccr.method.region_contrast import box_cells, region_contrastive_loss

FORMATS: dict[str, LabelFormat] = {
    "cityscapes/gta5": cityscapes.LABEL_FORMAT,
    "synthia": synthia.LABEL_FORMAT,
    "train ids": TRAIN_IDS,
}
TRAIN_ID_VALUES = set(range(NUM_CLASSES)) | {IGNORE_INDEX}
FEW = settings(max_examples=30, deadline=None)


def _label_arrays(fmt: LabelFormat, known_only: bool) -> st.SearchStrategy[np.ndarray]:
    """8- or 16-bit arrays of any values, or of values the format knows (so both outcomes
    are exercised: random 8-bit arrays almost always hold some unknown value)."""
    shapes = hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=9)
    known = np.flatnonzero(fmt.known).tolist()
    return st.sampled_from([np.uint8, np.uint16]).flatmap(
        lambda dtype: hnp.arrays(
            dtype, shapes, elements=st.sampled_from(known) if known_only else None
        )
    )


@pytest.mark.parametrize("name", list(FORMATS))
@FEW
@given(data=st.data(), known_only=st.booleans())
def test_label_format__total_over_8_and_16_bit_inputs(
    name: str, data: st.DataObject, known_only: bool
) -> None:
    """Every input either maps to train ids (0..18 or 255) or is refused naming the values."""
    fmt = FORMATS[name]
    raw = data.draw(_label_arrays(fmt, known_only))
    path = Path("labels/x.png")
    unknown = sorted({int(v) for v in raw.ravel() if v >= len(fmt.known) or not fmt.known[v]})
    assert not (known_only and unknown)
    if unknown:
        with pytest.raises(DataError, match=rf"^labels/x\.png: label values {unknown[0]}\b"):
            fmt.to_train_ids(raw, path)
        return
    out = fmt.to_train_ids(raw, path)
    assert out.shape == raw.shape and out.dtype == np.uint8
    assert set(np.unique(out).tolist()) <= TRAIN_ID_VALUES
    for value in np.unique(raw):  # each raw value maps through the format's table
        assert (out[raw == value] == fmt.lut[value]).all()


@pytest.mark.parametrize("name", list(FORMATS))
def test_label_format__every_8_bit_value_has_an_outcome(name: str) -> None:
    """Exhaustive over 0..255: the table is total and "known" decides acceptance alone."""
    fmt = FORMATS[name]
    for value in range(256):
        raw = np.full((1, 1), value, dtype=np.uint8)
        if fmt.known[value]:
            assert int(fmt.to_train_ids(raw, Path("x"))[0, 0]) in TRAIN_ID_VALUES
        else:
            with pytest.raises(DataError):
                fmt.to_train_ids(raw, Path("x"))


@FEW
@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 3),
    cells_h=st.integers(1, 6),
    cells_w=st.integers(1, 6),
    stride=st.sampled_from([1, 4, 8]),
    area=st.one_of(st.none(), st.floats(0.01, 1.0)),
)
def test_cut_mix__pixels_and_label_cells_agree_on_the_box(
    seed: int, batch: int, cells_h: int, cells_w: int, stride: int, area: float | None
) -> None:
    """A pixel comes from the target exactly when its feature cell takes the target's label."""
    g = torch.Generator().manual_seed(seed)
    height, width = cells_h * stride, cells_w * stride
    src_image = torch.zeros(batch, 3, height, width)
    tgt_image = torch.ones(batch, 3, height, width)
    boxes = cut_mix_box(height, width, batch, stride, g, area=area)
    from_target = cut_mix(src_image, tgt_image, boxes)  # 1 where the pixel is the target's
    assert torch.equal(
        from_target.bool(), box_mask(boxes, height, width)[:, None].expand_as(tgt_image)
    )

    cells = box_cells(boxes, stride, cells_h, cells_w)  # (B, h, w)
    src_label = torch.zeros(batch, height, width, dtype=torch.long)  # source: class 0
    tgt_pseudo = torch.ones(batch, cells_h, cells_w, dtype=torch.long)  # target: class 1
    aug_labels = augmented_labels(cells, tgt_pseudo, src_label)  # the bank's labels
    # every stride x stride block of pixels is wholly inside or outside the box ...
    blocks = from_target[:, 0].reshape(batch, cells_h, stride, cells_w, stride)
    assert torch.equal(blocks.amin(dim=(2, 4)), blocks.amax(dim=(2, 4)))
    # ... and its cell's label comes from the same image
    assert torch.equal(blocks.amin(dim=(2, 4)).long(), aug_labels)


@FEW
@given(
    seed=st.integers(0, 2**31 - 1),
    anchors=st.integers(1, 12),
    negatives=st.integers(1, 40),
    dim=st.integers(1, 8),
    tile=st.tuples(st.integers(1, 16), st.integers(1, 16)),
    class_aware=st.booleans(),
    threshold=st.one_of(st.none(), st.floats(0.0, 0.9)),
)
def test_region_contrastive_loss__invariant_to_permuting_negatives(
    seed: int,
    anchors: int,
    negatives: int,
    dim: int,
    tile: tuple[int, int],
    class_aware: bool,
    threshold: float | None,
) -> None:
    g = torch.Generator().manual_seed(seed)

    def unit(n: int) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.randn(n, dim, generator=g, dtype=torch.float64))

    q, k_pos, k_neg = unit(anchors), unit(anchors), unit(negatives)
    labels = torch.randint(0, 4, (anchors,), generator=g)
    confidence = torch.rand(anchors, generator=g, dtype=torch.float64)
    neg_labels = torch.randint(0, 4, (negatives,), generator=g)
    perm = torch.randperm(negatives, generator=g)

    def loss_and_grad(k: torch.Tensor, k_labels: torch.Tensor) -> tuple[float, torch.Tensor]:
        a = q.clone().requires_grad_(True)
        loss = region_contrastive_loss(a, k_pos, labels, confidence, k, k_labels,
                                       confidence_threshold=threshold, class_aware=class_aware,
                                       tile=tile)  # fmt: skip
        loss.backward()
        assert a.grad is not None
        return float(loss.detach()), a.grad

    loss, grad = loss_and_grad(k_neg, neg_labels)
    loss_p, grad_p = loss_and_grad(k_neg[perm], neg_labels[perm])
    assert loss == pytest.approx(loss_p, rel=1e-12, abs=1e-12)
    torch.testing.assert_close(grad, grad_p, rtol=1e-10, atol=1e-12)
