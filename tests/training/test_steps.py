"""The training steps, driven for real: what each step feeds where."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_toy import tiny_config, train_steps

from rccr.config import MethodConfig
from rccr.data.dataset import Sample
from rccr.data.labels import IGNORE_INDEX
from rccr.models import DeepLabV2
from rccr.training import steps
from rccr.training.method_parts import MethodParts


def _loss_inputs(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *overrides: str
) -> list[dict[str, Any]]:
    """The arguments of every region_contrastive_loss call of three RCCR steps."""
    calls: list[dict[str, Any]] = []
    original = steps.region_contrastive_loss

    def recorder(*args: Any, **kwargs: Any) -> torch.Tensor:
        names = ["anchors", "positives", "anchor_labels", "anchor_confidence", "negatives",
                 "negative_labels"]  # fmt: skip
        calls.append({**dict(zip(names, args, strict=False)), **kwargs})
        return original(*args, **kwargs)

    monkeypatch.setattr(steps, "region_contrastive_loss", recorder)
    train_steps(tiny_config(toy, "train.mode=rccr", "train.iterations=3", *overrides),
                tmp_path / "run", 3)  # fmt: skip
    return calls


@pytest.mark.parametrize("bank", [True, False])
def test_rccr_step__random_negatives_never_hold_an_anchors_own_features(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bank: bool
) -> None:
    """method.negative_sampling=random removes only the class filter: an anchor's own
    current-step features (its detached student feature, its positive) are in the bank
    but never among the negatives that count for it."""
    random = ["method.negative_sampling=random", "method.bank_per_step=10000"]  # every cell
    calls = _loss_inputs(toy, tmp_path, monkeypatch, *random, f"method.bank={str(bank).lower()}")
    met = 0
    for call in calls:
        assert call["class_aware"] is False
        anchors, positives, negatives = call["anchors"], call["positives"], call["negatives"]
        counted = call["anchor_locations"][:, None] != call["negative_locations"][None, :]
        own = (negatives[None] == anchors.detach()[:, None]).all(-1)  # (N, M) bitwise equal
        own |= (negatives[None] == positives[:, None]).all(-1)
        assert not (own & counted).any(), "an anchor met its own feature among its negatives"
        met += int(own.sum())
    assert met >= 2 * sum(len(c["anchors"]) for c in calls)  # all drawn, so all were there


# ---------------------------------------------------------------------------------------
# The DACS and RCCR steps on synthetic batches: the source image is 1 in its first channel
# and the target image 0, so every mixed pixel tells which image it came from.

SIZE, STRIDE = 32, 8


def _batches(seed: int = 0) -> tuple[Sample, Sample]:
    g = torch.Generator().manual_seed(seed)
    src_image = torch.rand(2, 3, SIZE, SIZE, generator=g)
    src_image[:, 0] = 1.0  # "from the source"
    tgt_image = torch.rand(2, 3, SIZE, SIZE, generator=g)
    tgt_image[:, 0] = 0.0  # "from the target"
    src_label = torch.randint(0, 6, (2, SIZE, SIZE), generator=g)
    src_label[:, :4] = IGNORE_INDEX
    tgt_label = torch.full((2, SIZE, SIZE), IGNORE_INDEX)
    return Sample(src_image, src_label, "s"), Sample(tgt_image, tgt_label, "t")


class _Recorder(torch.nn.Module):
    """The student, recording each image batch it is given."""

    def __init__(self, student: torch.nn.Module) -> None:
        super().__init__()
        self.student, self.inputs = student, []

    def forward(self, images: torch.Tensor) -> Any:
        self.inputs.append(images.detach().clone())
        return self.student(images)


def _parts(config: MethodConfig, seed: int = 0) -> tuple[_Recorder, MethodParts]:
    torch.manual_seed(seed)
    student = DeepLabV2(backbone="resnet18", width=8, freeze_bn=False)
    parts = MethodParts.build(student, config, rccr=True, seed=seed)
    return _Recorder(student), parts


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple[tuple, dict, Any]]:
    calls: list[tuple[tuple, dict, Any]] = []
    original = getattr(steps, name)

    def recorder(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        calls.append((args, kwargs, result))
        return result

    monkeypatch.setattr(steps, name, recorder)
    return calls


@pytest.fixture
def no_photometric(monkeypatch: pytest.MonkeyPatch) -> None:
    """Colour jitter and blur off, so pixels keep the channel that tells their origin."""
    monkeypatch.setattr(steps, "photometric", lambda images, generator, **kwargs: images)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dacs_step__mixed_labels_and_weights_follow_the_mixed_pixels(
    monkeypatch: pytest.MonkeyPatch, no_photometric: None, seed: int
) -> None:
    """Where the ClassMix image shows a source pixel, its label is the source label and its
    weight 1; where it shows a target pixel, the teacher's pseudo-label and the DACS weight
    of the batch (the share of target pixels whose confidence reaches the threshold)."""
    config = MethodConfig(pseudo_label_threshold=0.05)
    student, parts = _parts(config, seed)
    source, target = _batches(seed)
    pseudo = _spy(monkeypatch, "pseudo_label")
    losses = _spy(monkeypatch, "weighted_cross_entropy")
    steps.dacs_step(student, parts, source, target, config)
    mix_image = student.inputs[1]  # source, then the ClassMix image
    from_source = mix_image[:, 0] == 1.0  # (B, H, W)
    assert 0 < int(from_source.sum()) < from_source.numel()
    ((_, _, (tgt_pseudo, confidence)),) = pseudo
    (((_, mix_label, mix_weight), _, _),) = losses
    assert torch.equal(mix_label[from_source], source.label[from_source])
    assert torch.equal(mix_label[~from_source], tgt_pseudo[~from_source])
    share = float((confidence >= 0.05).float().mean())
    assert bool((mix_weight[from_source] == 1.0).all())
    torch.testing.assert_close(
        mix_weight[~from_source], torch.full_like(mix_weight[~from_source], share)
    )
    assert 0.0 < share < 1.0 or share == 1.0


def _constant_teacher_head(parts: MethodParts) -> torch.Tensor:
    """Make the teacher's head embed every cell as the first unit vector; return it."""
    assert parts.teacher_head is not None
    last = parts.teacher_head.proj[2]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[0] = 3.0
    unit = torch.zeros(last.bias.shape[0])
    unit[0] = 1.0
    return unit


@pytest.mark.parametrize("momentum_head", [True, False])
def test_rccr_step__positives_come_from_the_configured_head(
    monkeypatch: pytest.MonkeyPatch, no_photometric: None, momentum_head: bool
) -> None:
    """Positives are the teacher head's embeddings of the clean target (momentum head), or
    the student head's of the same teacher features, detached (the ablation)."""
    config = MethodConfig(momentum_head=momentum_head, bank_per_step=50)
    student, parts = _parts(config)
    unit = _constant_teacher_head(parts)
    source, target = _batches()
    losses = _spy(monkeypatch, "region_contrastive_loss")
    steps.rccr_step(student, parts, source, target, config, iteration=10, total=100)
    (((_, positives, *_), _, _),) = losses
    assert not positives.requires_grad
    inside = student.inputs[2][:, 0, ::STRIDE, ::STRIDE] == 0.0  # (B, h, w) the box's cells
    if momentum_head:
        torch.testing.assert_close(positives, unit.expand_as(positives))
    else:
        assert parts.student_head is not None
        with torch.no_grad():
            z = parts.student_head(parts.teacher(target.image).features)  # (B, D, h, w)
        torch.testing.assert_close(positives, z.permute(0, 2, 3, 1)[inside])  # (N, D)
        assert not torch.allclose(positives, unit.expand_as(positives))


def test_rccr_step__bank_labels_source_truth_outside_the_box_pseudo_labels_inside(
    monkeypatch: pytest.MonkeyPatch, no_photometric: None
) -> None:
    config = MethodConfig(bank_per_step=10_000)  # every cell with a class
    student, parts = _parts(config)
    source, target = _batches(3)
    pseudo = _spy(monkeypatch, "pseudo_label")
    entries = _spy(monkeypatch, "sample_entries")
    steps.rccr_step(student, parts, source, target, config, iteration=0, total=10)
    aug_image = student.inputs[2]  # source, ClassMix, then the CutMix image
    inside = aug_image[:, 0, ::STRIDE, ::STRIDE] == 0.0  # (B, h, w) cells from the target
    assert 0 < int(inside.sum()) < inside.numel()
    (_, _, (cell_pseudo, _)) = pseudo[1]  # the second call: at feature size
    (aug_args, _, aug_entries), (tgt_args, _, _) = entries
    labels = aug_args[1]  # (B, h, w) the augmented image's cell labels
    source_cells = source.label[:, ::STRIDE, ::STRIDE]  # nearest-neighbour, as the step
    assert torch.equal(labels[inside], cell_pseudo[inside])
    assert torch.equal(labels[~inside], source_cells[~inside])
    assert torch.equal(tgt_args[1], cell_pseudo)
    flat = labels.reshape(-1)
    assert torch.equal(aug_entries.labels, flat[aug_entries.cells])
    assert IGNORE_INDEX not in aug_entries.labels.tolist()


@pytest.mark.parametrize(
    ("iteration", "total", "start"), [(0, 100, 0), (50, 100, 0), (99, 100, 0), (40, 100, 50)]
)
def test_rccr_step__total_loss_weighs_the_contrast_by_the_schedule(
    no_photometric: None, iteration: int, total: int, start: int
) -> None:
    config = MethodConfig(contrast_start_iter=start, bank_per_step=50, confidence_threshold=0.0)
    student, parts = _parts(config)
    source, target = _batches()
    loss, terms, _ = steps.rccr_step(student, parts, source, target, config, iteration, total)
    weight = 0.0 if iteration < start else 0.01 * math.exp(-5 * (1 - math.sqrt(
        (iteration - start) / (total - start))))  # fmt: skip
    expected = terms["loss_source"] + terms["loss_mix"] + weight * terms["loss_contrast"]
    torch.testing.assert_close(loss, expected)
    assert float(terms["loss_contrast"].detach()) > 0  # anchors were kept


def test_rccr_step__diagnostics_use_the_target_labels_where_they_are(
    monkeypatch: pytest.MonkeyPatch, no_photometric: None
) -> None:
    """Diagnostics (analysis only) score against the target's true labels: target cells and
    the box's cells carry the target's class, the rest of the augmented image the source's."""
    config = MethodConfig(bank_per_step=10_000, confidence_threshold=0.0)
    student, parts = _parts(config)
    source, target = _batches(4)
    target = Sample(target.image, torch.full_like(target.label, 7), "t")  # all class 7
    entries = _spy(monkeypatch, "sample_entries")
    out = steps.rccr_step(student, parts, source, target, config, iteration=0, total=10)
    inside = student.inputs[2][:, 0, ::STRIDE, ::STRIDE] == 0.0  # (B, h, w) the box's cells
    (_, _, aug), (_, _, tgt) = entries
    assert bool((tgt.truth == 7).all())
    source_cells = source.label[:, ::STRIDE, ::STRIDE].reshape(-1)
    expected = torch.where(inside.reshape(-1), 7, source_cells)[aug.cells]
    assert torch.equal(aug.truth, expected)
    d = out.diagnostics
    assert d["anchors"] == int(inside.sum()) and d["anchors_kept_share"] == 1.0
    assert 0.0 <= d["neg_false_drawn"] <= 1.0 and 0.0 <= d["neg_false_kept"] <= 1.0
    assert set(d) == {"pl_acc", "pl_miou", "pl_confident_share", "pl_confident_acc", "anchors",
                      "anchors_kept_share", "anchors_kept_acc", "anchors_rejected_acc",
                      "neg_false_drawn", "neg_false_kept", "neg_true_removed"}  # fmt: skip
    off = MethodConfig(bank_per_step=50, diagnostics=False)
    student, parts = _parts(off)
    assert steps.rccr_step(student, parts, source, target, off, 0, 10).diagnostics == {}
    unlabelled = Sample(target.image, torch.full_like(target.label, IGNORE_INDEX), "t")
    student, parts = _parts(config)
    assert steps.dacs_step(student, parts, source, unlabelled, config).diagnostics == {}
