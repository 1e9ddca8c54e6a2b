"""load_models and explain_regions on a few-iteration RCCR run of a tiny toy city."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from region_loss_references import naive_region_contrastive_loss
from tiny_toy import tiny_config

from rccr.analysis.checkpoints import CheckpointModels, load_models
from rccr.analysis.regions import explain_regions
from rccr.build import validation_set
from rccr.data import GTA5, JointTransform, Size
from rccr.data.labels import IGNORE_INDEX
from rccr.method.memory_bank import DOMAIN_AUGMENTED, DOMAIN_TARGET
from rccr.runs import RunError
from rccr.training import Trainer


@pytest.fixture(scope="module")
def runs(toy: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("regions")
    schedule = ["train.iterations=4", "train.eval_every=0", "train.checkpoint_every=2"]
    for mode in ("rccr", "source_only"):
        Trainer(tiny_config(toy, f"train.mode={mode}", *schedule), root / mode).run(progress=False)
    return {mode: root / mode for mode in ("rccr", "source_only")}


@pytest.fixture(scope="module")
def rccr_models(runs: dict[str, Path]) -> CheckpointModels:
    return load_models(runs["rccr"])


def _pair(models: CheckpointModels) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A source image and a target val image at the same (uncropped) size."""
    data = models.config.data
    source = GTA5(data.source_root, transform=JointTransform(Size(*data.val_size)))
    target = validation_set(data)[0]
    return source[0].image, source[0].label, target.image


def test_load_models__rccr_run_has_teacher_and_heads(rccr_models: CheckpointModels) -> None:
    assert rccr_models.iteration == 4
    assert rccr_models.student_head is not None and rccr_models.teacher_head is not None
    assert rccr_models.teacher is not rccr_models.student
    assert not rccr_models.student.training
    assert all(not p.requires_grad for p in rccr_models.teacher.parameters())


def test_load_models__source_only_teacher_is_student(runs: dict[str, Path]) -> None:
    models = load_models(runs["source_only"], iteration=2)
    assert models.iteration == 2
    assert models.teacher is models.student and models.student_head is None


def test_load_models__unknown_iteration_names_the_run(runs: dict[str, Path]) -> None:
    with pytest.raises(RunError, match="no checkpoint at iteration 3; have 2, 4"):
        load_models(runs["rccr"], iteration=3)


def test_load_models__checkpoint_of_another_shape_names_the_file(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    path = runs["rccr"] / "checkpoints" / "iter_2.pt"
    state = torch.load(path, weights_only=True)
    state["student"] = {"conv.weight": torch.zeros(1)}
    torch.save(state, tmp_path / "iter_2.pt")
    broken = tmp_path / "run"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "config.yaml").write_text((runs["rccr"] / "config.yaml").read_text())
    (tmp_path / "iter_2.pt").rename(broken / "checkpoints" / "iter_2.pt")
    with pytest.raises(RunError, match=r"iter_2\.pt: does not fit"):
        load_models(broken)


@pytest.mark.parametrize("positive_sampling", ["confident", "all"])
@pytest.mark.parametrize("negative_sampling", ["class_aware", "random"])
def test_explain_regions__fields_agree(
    rccr_models: CheckpointModels, positive_sampling: str, negative_sampling: str
) -> None:
    src_image, src_label, tgt_image = _pair(rccr_models)
    sample = explain_regions(
        rccr_models, src_image, src_label, tgt_image, seed=3, confidence_threshold=0.1,
        positive_sampling=positive_sampling, negative_sampling=negative_sampling,
        negatives_per_domain=20,
    )  # fmt: skip
    top, left, box_h, box_w = sample.box
    stride = sample.stride
    rows, cols = sample.anchor_cells[:, 0], sample.anchor_cells[:, 1]
    assert len(rows) == (box_h // stride) * (box_w // stride)
    assert bool(((rows >= top // stride) & (rows < (top + box_h) // stride)).all())
    assert bool(((cols >= left // stride) & (cols < (left + box_w) // stride)).all())
    assert torch.equal(sample.anchor_labels, sample.pseudo_label[rows, cols])
    assert torch.equal(sample.anchor_confidence, sample.confidence[rows, cols])
    expected_kept = sample.anchor_confidence > 0.1
    if positive_sampling == "all":
        expected_kept = torch.ones_like(expected_kept)
    assert torch.equal(sample.anchor_kept, expected_kept)
    assert sample.negative_domains.tolist() == [DOMAIN_AUGMENTED] * 20 + [DOMAIN_TARGET] * 20
    assert bool((sample.negative_labels != IGNORE_INDEX).all())
    # clean-target negatives carry pseudo-labels; augmented-image ones too inside the box,
    # and the source label of their cell outside it
    on_target = sample.negative_domains == DOMAIN_TARGET
    cells = sample.negative_cells[on_target]
    assert torch.equal(
        sample.negative_labels[on_target], sample.pseudo_label[cells[:, 0], cells[:, 1]]
    )
    cells, labels = sample.negative_cells[~on_target], sample.negative_labels[~on_target]
    rows_in = (cells[:, 0] >= top // stride) & (cells[:, 0] < (top + box_h) // stride)
    cols_in = (cells[:, 1] >= left // stride) & (cells[:, 1] < (left + box_w) // stride)
    in_box = rows_in & cols_in
    assert torch.equal(labels[in_box], sample.pseudo_label[cells[in_box, 0], cells[in_box, 1]])
    source = src_label[::stride, ::stride]  # nearest-neighbour downsampling to the grid
    assert torch.equal(labels[~in_box], source[cells[~in_box, 0], cells[~in_box, 1]])
    same_label = sample.anchor_labels[:, None] == sample.negative_labels[None, :]
    own = (sample.anchor_cells[:, None, :] == sample.negative_cells[None, :, :]).all(-1)
    expected = own | same_label if negative_sampling == "class_aware" else own
    assert torch.equal(sample.negative_removed, expected)
    assert bool((sample.positive_similarity.abs() <= 1 + 1e-5).all())
    assert sample.aug_image.shape == tgt_image.shape and sample.loss >= 0


def test_explain_regions__full_box_pastes_the_whole_target(
    rccr_models: CheckpointModels,
) -> None:
    src_image, src_label, tgt_image = _pair(rccr_models)
    sample = explain_regions(rccr_models, src_image, src_label, tgt_image, box_ratio=1.0)
    assert sample.box == (0, 0, *tgt_image.shape[-2:])


def test_explain_regions__same_seed_same_sample(rccr_models: CheckpointModels) -> None:
    pair = _pair(rccr_models)
    first, second = (explain_regions(rccr_models, *pair, seed=7) for _ in range(2))
    assert first.box == second.box and torch.equal(first.aug_image, second.aug_image)
    assert torch.equal(first.negative_cells, second.negative_cells)


def test_explain_regions__loss_matches_naive_reference(rccr_models: CheckpointModels) -> None:
    """The reported loss is the training loss on the anchors and negatives it shows."""
    src_image, src_label, tgt_image = _pair(rccr_models)
    sample = explain_regions(rccr_models, src_image, src_label, tgt_image, seed=1,
                             confidence_threshold=0.0, negatives_per_domain=15)  # fmt: skip
    # Rebuild the embeddings the function used, from the same networks and images.
    models = rccr_models
    assert models.student_head is not None and models.teacher_head is not None
    with torch.no_grad():
        z_m = models.student_head(models.student(sample.aug_image[None]).features)[0]
        z_t = models.teacher_head(models.teacher(tgt_image[None]).features)[0]
    rows, cols = sample.anchor_cells[:, 0], sample.anchor_cells[:, 1]
    anchors, positives = z_m[:, rows, cols].T, z_t[:, rows, cols].T  # (N, D)
    n_rows, n_cols = sample.negative_cells[:, 0], sample.negative_cells[:, 1]
    negatives = torch.where((sample.negative_domains == DOMAIN_TARGET)[:, None],
                            z_t[:, n_rows, n_cols].T, z_m[:, n_rows, n_cols].T)  # fmt: skip
    expected = naive_region_contrastive_loss(
        anchors.double(), positives.double(), sample.anchor_labels, sample.anchor_confidence,
        negatives.double(), sample.negative_labels, temperature=0.1, confidence_threshold=0.0,
        class_aware=True,
    )  # fmt: skip
    assert sample.loss == pytest.approx(float(expected), rel=1e-4)


def test_explain_regions__needs_a_projection_head(runs: dict[str, Path]) -> None:
    models = load_models(runs["source_only"])
    with pytest.raises(ValueError, match=r"no projection head.*'source_only'"):
        explain_regions(models, *_pair(models))


def test_explain_regions__images_of_different_sizes_are_refused(
    rccr_models: CheckpointModels,
) -> None:
    src_image, src_label, tgt_image = _pair(rccr_models)
    with pytest.raises(ValueError, match="must have the same size"):
        explain_regions(rccr_models, src_image[:, :16], src_label[:16], tgt_image)
