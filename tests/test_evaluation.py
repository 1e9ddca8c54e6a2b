"""Scores against slow references, and the full-resolution evaluation protocol."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from torch import Tensor, nn
from torch.utils.data import Dataset

from rccr.data.dataset import Sample
from rccr.data.labels import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES, class_subset
from rccr.evaluation import (
    EvalResult,
    confusion_matrix,
    evaluate,
    iou_from_confusion,
    mean_iou,
    predict,
)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# --- references and fixtures -------------------------------------------------------------


def random_pair(seed: int, shape: tuple[int, ...], num_classes: int) -> tuple[Tensor, Tensor]:
    """Random predictions and labels of ``shape``, about a fifth of the labels ignored."""
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randint(0, num_classes, shape, generator=gen)
    label = torch.randint(0, num_classes, shape, generator=gen)
    label[torch.rand(shape, generator=gen) < 0.2] = IGNORE_INDEX
    return pred, label


def naive_confusion(pred: Tensor, label: Tensor, num_classes: int) -> list[list[int]]:
    cm = [[0] * num_classes for _ in range(num_classes)]
    for p, t in zip(pred.flatten().tolist(), label.flatten().tolist(), strict=True):
        if t != IGNORE_INDEX:
            cm[t][p] += 1
    return cm


def naive_iou(pred: Tensor, label: Tensor, num_classes: int) -> list[float]:
    scored = label != IGNORE_INDEX
    iou = []
    for c in range(num_classes):
        inter = int(((pred == c) & (label == c) & scored).sum())
        union = int((((pred == c) | (label == c)) & scored).sum())
        iou.append(inter / union if union else math.nan)
    return iou


@dataclass(frozen=True)
class Output:
    logits: Tensor


class LinearModel(nn.Module):
    """Logits at stride 8: a seeded 1x1 convolution of the 8x8-average-pooled image."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.head = nn.Conv2d(3, NUM_CLASSES, 1)
        self.norm = nn.BatchNorm2d(3)
        self.saw_training: list[bool] = []

    def low_res_logits(self, x: Tensor) -> Tensor:
        return self.head(F.avg_pool2d(x, 8))  # (B, 3, h, w) -> (B, C, h/8, w/8)

    def forward(self, x: Tensor) -> Output:
        self.saw_training.append(self.training)
        return Output(self.low_res_logits(x))


class OracleModel(nn.Module):
    """Reads the class map that ``class_map_sample`` hid in the red channel: a perfect model."""

    def forward(self, x: Tensor) -> Output:
        classes = (x[:, 0, ::8, ::8] * 255).round().long()  # (B, h/8, w/8)
        return Output(F.one_hot(classes, NUM_CLASSES).permute(0, 3, 1, 2).float())


def class_map_sample(seed: int, cells: tuple[int, int], name: str) -> Sample:
    """A (3, 8h, 8w) image hiding an (h, w) class map; its label is that map at 16x (larger).

    Classes come in vertical stripes: bilinear upsampling of one-hot logits then reproduces
    the map exactly (in 2-D, two diagonal cells of one class could outvote the nearest).
    """
    gen = torch.Generator().manual_seed(seed)
    classes = torch.randint(0, NUM_CLASSES, (1, cells[1]), generator=gen).expand(cells)
    image = torch.rand(3, 8 * cells[0], 8 * cells[1], generator=gen)
    image[0] = classes.repeat_interleave(8, 0).repeat_interleave(8, 1) / 255
    label = classes.repeat_interleave(16, 0).repeat_interleave(16, 1)  # (16h, 16w)
    label[torch.rand(label.shape, generator=gen) < 0.1] = IGNORE_INDEX
    return Sample(image, label, name)


class ListDataset(Dataset[Sample]):
    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]


def tiny_dataset(
    label_cells: tuple[tuple[int, int], ...] = ((2, 3), (2, 3), (3, 2)),
) -> ListDataset:
    return ListDataset([class_map_sample(i, c, f"img{i}.png") for i, c in enumerate(label_cells)])


def make_result(**changes: object) -> EvalResult:
    iou = [float(10 * (c % 10)) for c in range(NUM_CLASSES)]
    iou[3] = math.nan
    fields: dict = dict(
        dataset="toycity",
        split="val",
        resolution="infer 48x32, scored at label size 96x64",
        num_images=3,
        confusion=[[c + 19 * r for c in range(NUM_CLASSES)] for r in range(NUM_CLASSES)],
        iou=iou,
        miou={"mIoU19": 41.25, "mIoU16": math.nan, "mIoU13": 50.0},
        checkpoint_choice="best on target val (oracle choice)",
    )
    return EvalResult(**{**fields, **changes})


def assert_same_result(a: EvalResult, b: EvalResult) -> None:
    np.testing.assert_equal(a.iou, b.iou)  # NaN == NaN here
    np.testing.assert_equal(a.miou, b.miou)
    assert a.confusion == b.confusion
    assert (a.dataset, a.split, a.resolution, a.num_images, a.checkpoint_choice) == (
        b.dataset,
        b.split,
        b.resolution,
        b.num_images,
        b.checkpoint_choice,
    )


# --- confusion_matrix ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(3,), (37,), (5, 9), (2, 6, 11)])
@pytest.mark.parametrize("num_classes", [2, NUM_CLASSES])
def test_confusion_matrix__matches_loop_and_sklearn(
    seed: int, shape: tuple[int, ...], num_classes: int
) -> None:
    pred, label = random_pair(seed, shape, num_classes)
    cm = confusion_matrix(pred, label, num_classes)
    assert cm.dtype == torch.int64 and cm.shape == (num_classes, num_classes)
    assert cm.tolist() == naive_confusion(pred, label, num_classes)
    keep = label != IGNORE_INDEX
    expected = sk_confusion_matrix(label[keep], pred[keep], labels=range(num_classes))
    np.testing.assert_array_equal(cm.numpy(), expected)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.int64])
def test_confusion_matrix__any_integer_dtype_and_ignore_index(dtype: torch.dtype) -> None:
    label = torch.tensor([[0, 1], [2, 250]], dtype=dtype)
    pred = torch.tensor([[0, 2], [2, 7]], dtype=dtype)
    cm = confusion_matrix(pred, label, 3, ignore_index=250)
    assert cm.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]


def test_confusion_matrix__all_ignored_is_zero() -> None:
    label = torch.full((4, 4), IGNORE_INDEX)
    assert confusion_matrix(torch.zeros(4, 4, dtype=torch.long), label, 5).sum() == 0


@pytest.mark.parametrize(("pred_shape", "label_shape"), [((4, 5), (5, 4)), ((1, 4, 5), (4, 5))])
def test_confusion_matrix__shape_mismatch_names_both_shapes(
    pred_shape: tuple[int, ...], label_shape: tuple[int, ...]
) -> None:
    pred, label = torch.zeros(pred_shape, dtype=torch.long), torch.zeros(label_shape).long()
    with pytest.raises(ValueError, match="shape") as info:
        confusion_matrix(pred, label, 3)
    assert str(info.value) == (f"pred has shape {pred_shape} but label has shape "
                               f"{label_shape}; expected equal shapes")  # fmt: skip


@pytest.mark.parametrize("bad", [3, 19, 254, -1])
def test_confusion_matrix__bad_label_values_are_named(bad: int) -> None:
    label = torch.tensor([0, 1, bad, IGNORE_INDEX, bad])
    with pytest.raises(ValueError, match=rf"^label values \[{bad}\] are outside 0\.\.2 and are "
                       rf"not the ignore index {IGNORE_INDEX}$"):  # fmt: skip
        confusion_matrix(torch.zeros(5, dtype=torch.long), label, 3)


def test_confusion_matrix__bad_pred_values_are_named() -> None:
    with pytest.raises(ValueError, match=r"^pred values \[5, 9\] are outside 0\.\.2$"):
        confusion_matrix(torch.tensor([9, 5, 0, 9]), torch.tensor([0, 1, 2, 2]), 3)


def test_confusion_matrix__float_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="integer"):
        confusion_matrix(torch.zeros(3), torch.zeros(3, dtype=torch.long), 3)


@needs_cuda
def test_confusion_matrix__cuda_matches_cpu() -> None:
    pred, label = random_pair(0, (3, 64, 64), NUM_CLASSES)
    cm = confusion_matrix(pred.cuda(), label.cuda(), NUM_CLASSES)
    assert cm.device.type == "cuda"
    assert torch.equal(cm.cpu(), confusion_matrix(pred, label, NUM_CLASSES))


# --- iou_from_confusion and mean_iou -----------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("num_classes", [2, 5, NUM_CLASSES])
def test_iou_from_confusion__matches_per_class_loop(seed: int, num_classes: int) -> None:
    pred, label = random_pair(seed, (6, 7), num_classes)
    iou = iou_from_confusion(confusion_matrix(pred, label, num_classes))
    assert iou.dtype == torch.float64
    expected = torch.tensor(naive_iou(pred, label, num_classes), dtype=torch.float64)
    torch.testing.assert_close(iou, expected, equal_nan=True)


def test_iou_from_confusion__hand_example() -> None:
    # class 0: TP 2, FN 1; class 1: TP 1, FP 1; class 2 absent from both
    cm = torch.tensor([[2, 1, 0], [0, 1, 0], [0, 0, 0]])
    torch.testing.assert_close(
        iou_from_confusion(cm), torch.tensor([2 / 3, 1 / 2, math.nan]).double(), equal_nan=True
    )


def test_iou_from_confusion__rejects_non_square() -> None:
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        iou_from_confusion(torch.zeros(3, 4))


@st.composite
def labelled_pixels(draw: st.DrawFn) -> tuple[int, Tensor, Tensor, list[int]]:
    num_classes = draw(st.integers(2, 8))
    n = draw(st.integers(1, 40))
    values = st.integers(0, num_classes - 1)
    pred = draw(st.lists(values, min_size=n, max_size=n))
    label = draw(st.lists(values | st.just(IGNORE_INDEX), min_size=n, max_size=n))
    perm = draw(st.permutations(range(num_classes)))
    return num_classes, torch.tensor(pred), torch.tensor(label), perm


@settings(max_examples=60, deadline=None)
@given(labelled_pixels())
def test_iou_from_confusion__nan_exactly_for_absent_classes(
    case: tuple[int, Tensor, Tensor, list[int]],
) -> None:
    num_classes, pred, label, _ = case
    iou = iou_from_confusion(confusion_matrix(pred, label, num_classes))
    scored = label != IGNORE_INDEX
    present = set(pred[scored].tolist()) | set(label[scored].tolist())
    assert {c for c in range(num_classes) if math.isnan(iou[c])} == set(
        range(num_classes)
    ) - present


@settings(max_examples=60, deadline=None)
@given(labelled_pixels())
def test_iou_from_confusion__invariant_to_permuting_class_ids(
    case: tuple[int, Tensor, Tensor, list[int]],
) -> None:
    num_classes, pred, label, perm = case
    lut = torch.full((256,), IGNORE_INDEX)
    lut[:num_classes] = torch.tensor(perm)  # class c becomes perm[c]; 255 stays 255
    iou = iou_from_confusion(confusion_matrix(pred, label, num_classes))
    permuted = iou_from_confusion(confusion_matrix(lut[pred], lut[label], num_classes))
    torch.testing.assert_close(permuted[perm], iou, equal_nan=True)


@pytest.mark.parametrize("n", [19, 16, 13])
def test_mean_iou__percent_nanmean_over_subset(n: int) -> None:
    iou = torch.rand(NUM_CLASSES, generator=torch.Generator().manual_seed(n)).double()
    iou[[0, 9, 14]] = math.nan  # road (in every subset), terrain and truck (only in 19)
    subset = class_subset(n)
    expected = 100 * np.nanmean(iou.numpy()[list(subset)])
    assert mean_iou(iou, subset) == pytest.approx(expected)
    if n == NUM_CLASSES:
        assert mean_iou(iou) == pytest.approx(expected)


def test_mean_iou__hand_example_and_all_nan() -> None:
    assert mean_iou(torch.tensor([1.0, 0.5, math.nan])) == pytest.approx(75.0)
    assert math.isnan(mean_iou(torch.tensor([math.nan, 0.5]), subset=[0]))


def test_eval_result__table_layout_line_by_line() -> None:
    """The exact layout: header, one line per class, a rule as wide as the lines, mIoUs."""
    lines = make_result().format_table().splitlines()
    width = len("traffic light")  # the longest class name
    assert lines[2] == f"{'class':<{width}}  {'IoU %':>6}"
    assert lines[3] == f"{'road':<{width}}  {'0.00':>6}" and lines[4].startswith("sidewalk ")
    assert lines[3 + 19] == "-" * (width + 8) and len(lines[3 + 19]) == len(lines[2])
    assert lines[-3:] == [f"{'mIoU19':<{width}}  {'41.25':>6}", f"{'mIoU16':<{width}}  "
                          f"{'-':>6}", f"{'mIoU13':<{width}}  {'50.00':>6}"]  # fmt: skip


def test_eval_result__table_of_another_class_count_numbers_the_classes() -> None:
    result = make_result(confusion=[[1, 0], [0, 1]], iou=[100.0, 50.0], miou={"mIoU19": 75.0})
    lines = result.format_table().splitlines()
    assert lines[3:5] == ["0       100.00", "1        50.00"]  # width of "mIoU19"


# --- predict and evaluate: the full-resolution protocol -----------------------------------


@pytest.mark.parametrize("out_size", [(64, 96), (70, 101), (16, 24)])
def test_predict__bilinear_without_corner_alignment_to_label_size(
    out_size: tuple[int, int],
) -> None:
    model = LinearModel()
    image = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    logits = predict(model, image, out_size)
    assert logits.shape == (2, NUM_CLASSES, *out_size)
    low = model.low_res_logits(image)  # (2, C, 4, 6)
    expected = F.interpolate(low, size=out_size, mode="bilinear", align_corners=False)
    torch.testing.assert_close(logits, expected)
    corners = F.interpolate(low, size=out_size, mode="bilinear", align_corners=True)
    assert not torch.allclose(logits, corners)


@pytest.mark.parametrize("shape", [(3, 8, 8), (1, 1, 8, 8), (2, 4, 8, 8)])
def test_predict__image_not_b3hw_is_named(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=rf"^image has shape \({', '.join(map(str, shape))},?\); "
                       r"expected \(B, 3, h, w\)$"):  # fmt: skip
        predict(LinearModel(), torch.rand(*shape), (8, 8))


def test_predict__model_without_logits_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"^model\(x\) returned Tensor; expected an object whose "
                       r"\.logits is a \(B, C, h, w\) tensor$"):  # fmt: skip
        predict(nn.Identity(), torch.rand(1, 3, 8, 8), (8, 8))


@pytest.mark.parametrize("batch_size", [1, 2])
def test_evaluate__confusion_equals_scoring_by_hand(batch_size: int) -> None:
    dataset, model = tiny_dataset(), LinearModel(seed=3)
    result = evaluate(
        model, dataset, dataset_name="toy", split="val", batch_size=batch_size, progress=False
    )
    expected = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.long)
    with torch.no_grad():
        for sample in dataset.samples:
            low = model.low_res_logits(sample.image[None])
            up = F.interpolate(low, size=sample.label.shape, mode="bilinear", align_corners=False)
            expected += torch.tensor(naive_confusion(up.argmax(1)[0], sample.label, NUM_CLASSES))
    assert result.confusion == expected.tolist()
    iou = iou_from_confusion(expected)
    np.testing.assert_allclose(result.iou, 100 * iou.numpy())
    assert result.miou == {"mIoU19": pytest.approx(mean_iou(iou))}
    assert result.num_images == 3 and (result.dataset, result.split) == ("toy", "val")
    assert result.resolution == "infer 24x16, scored at label size 48x32"
    assert result.checkpoint_choice == "last"


@pytest.mark.parametrize("autocast_dtype", [None, torch.bfloat16])
@pytest.mark.parametrize("subsets", [(19,), (16, 13), (13, 19, 16)])
def test_evaluate__perfect_predictions_score_100(
    subsets: tuple[int, ...], autocast_dtype: torch.dtype | None
) -> None:
    result = evaluate(
        OracleModel(),
        tiny_dataset(((4, 6), (5, 3))),
        dataset_name="toy",
        split="val",
        subsets=subsets,
        autocast_dtype=autocast_dtype,
        progress=False,
    )
    assert list(result.miou) == ["mIoU19", *(f"mIoU{n}" for n in subsets if n != 19)]
    assert all(v == pytest.approx(100.0) for v in result.miou.values())
    assert all(math.isnan(v) or v == 100.0 for v in result.iou)
    off_diagonal = np.array(result.confusion) * (1 - np.eye(NUM_CLASSES, dtype=int))
    assert off_diagonal.sum() == 0


def test_evaluate__each_subset_averages_its_own_classes() -> None:
    """SYNTHIA's mIoU16 and mIoU13 average their class lists, not all 19 (a wrong model,
    so the three means differ)."""

    class EvenOracle(OracleModel):  # right on even classes, road (0) on odd ones
        def forward(self, x: Tensor) -> Output:
            logits = super().forward(x).logits
            classes = logits.argmax(1)
            classes = torch.where(classes % 2 == 0, classes, 0)
            return Output(F.one_hot(classes, NUM_CLASSES).permute(0, 3, 1, 2).float())

    result = evaluate(EvenOracle(), tiny_dataset(((2, 12), (3, 12))), dataset_name="toy",
                      split="val", subsets=(16, 13), progress=False)  # fmt: skip
    iou = iou_from_confusion(torch.tensor(result.confusion))
    for n in (19, 16, 13):
        ids = class_subset(n)
        scored = [100 * v for i, v in enumerate(iou.tolist()) if i in ids and not math.isnan(v)]
        assert result.miou[f"mIoU{n}"] == pytest.approx(sum(scored) / len(scored))
    assert len(set(result.miou.values())) == 3


@pytest.mark.parametrize("mode", ["train", "eval", "train, frozen norm"])
def test_evaluate__restores_each_modules_mode(mode: str) -> None:
    model = LinearModel()
    model.train(mode.startswith("train"))
    if mode.endswith("frozen norm"):
        model.norm.eval()
    before = {name: m.training for name, m in model.named_modules()}
    evaluate(model, tiny_dataset(), dataset_name="toy", split="val", progress=False)
    assert model.saw_training == [False] * 3
    assert {name: m.training for name, m in model.named_modules()} == before


def test_evaluate__restores_mode_when_the_model_fails() -> None:
    model = nn.Sequential(nn.Identity()).train()
    with pytest.raises(TypeError):
        evaluate(model, tiny_dataset(), dataset_name="toy", split="val", progress=False)
    assert model.training and model[0].training


def test_evaluate__bad_subset_and_empty_dataset_are_errors() -> None:
    with pytest.raises(ValueError, match="17"):
        evaluate(LinearModel(), tiny_dataset(), dataset_name="t", split="v", subsets=(17,))
    with pytest.raises(ValueError, match="empty"):
        evaluate(LinearModel(), ListDataset([]), dataset_name="t", split="v", progress=False)


class FiveClassModel(nn.Module):
    def forward(self, x: Tensor) -> Output:
        return Output(torch.zeros(x.shape[0], 5, x.shape[2] // 8, x.shape[3] // 8))


@pytest.mark.parametrize(
    ("model", "cells", "batch_size", "match"),
    [
        (FiveClassModel(), ((2, 3),), 1, "^model gives 5 classes; expected 19"),
        (
            OracleModel(),
            ((2, 3), (3, 2)),
            2,
            "^images in a batch differ in size; use batch_size=1$",
        ),
    ],
    ids=["class-count", "mixed-sizes"],
)
def test_evaluate__bad_model_or_batch_is_an_error(
    model: nn.Module, cells: tuple[tuple[int, int], ...], batch_size: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate(
            model,
            tiny_dataset(cells),
            dataset_name="t",
            split="v",
            batch_size=batch_size,
            progress=False,
        )


@needs_cuda
def test_evaluate__cuda_matches_cpu() -> None:
    dataset = tiny_dataset()
    kwargs: dict = dict(dataset_name="toy", split="val", progress=False)
    on_cpu = evaluate(LinearModel(seed=1), dataset, **kwargs)
    on_cuda = evaluate(LinearModel(seed=1).cuda(), dataset, device="cuda", **kwargs)
    assert on_cuda.confusion == on_cpu.confusion


# --- EvalResult ---------------------------------------------------------------------------


def test_eval_result__json_round_trip_with_nan_as_null() -> None:
    result = make_result()
    text = json.dumps(result.to_json(), allow_nan=False)
    data = json.loads(text)
    assert data["iou"][3] is None and data["miou"]["mIoU16"] is None
    assert_same_result(EvalResult.from_json(data), result)


def test_eval_result__evaluate_output_round_trips() -> None:
    result = evaluate(OracleModel(), tiny_dataset(), dataset_name="t", split="v", progress=False)
    assert_same_result(EvalResult.from_json(json.loads(json.dumps(result.to_json()))), result)


@pytest.mark.parametrize("key", list(make_result().to_json()))
def test_eval_result__from_json_names_a_missing_key(key: str) -> None:
    data = make_result().to_json()
    del data[key]
    with pytest.raises(ValueError, match=f"missing key '{key}'"):
        EvalResult.from_json(data)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("dataset", 3),
        ("num_images", "3"),
        ("num_images", True),
        ("confusion", [[1.5]]),
        ("confusion", [1, 2]),
        ("iou", ["high"]),
        ("iou", 0.5),
        ("miou", {"mIoU19": "41"}),
        ("miou", [41.0]),
        ("checkpoint_choice", None),
    ],
)
def test_eval_result__from_json_names_a_malformed_key(key: str, value: object) -> None:
    data = {**make_result().to_json(), key: value}
    with pytest.raises(ValueError, match=f"key '{key}' must be"):
        EvalResult.from_json(data)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([], "^eval result: expected a JSON object, got list$"),
        ({**make_result().to_json(), "miou": {}}, "mIoU19"),
        ({**make_result().to_json(), "iou": [1.0]}, "iou: 1 classes"),
        ({**make_result().to_json(), "extra": 1}, "unknown key 'extra'"),
    ],
)
def test_eval_result__from_json_rejects_inconsistent_input(data: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EvalResult.from_json(data)


def test_eval_result__counts_and_shapes_are_checked_with_their_values() -> None:
    assert make_result(num_images=0).num_images == 0  # an empty split is a valid result
    with pytest.raises(ValueError, match=r"^num_images: -1 is negative$"):
        make_result(num_images=-1)
    ragged = [[1, 2], [3]]
    with pytest.raises(ValueError, match=r"^confusion: has 2 rows of unequal lengths; "
                       r"expected 2x2$"):  # fmt: skip
        make_result(confusion=ragged, iou=[1.0, 2.0])


def test_eval_result__table_lists_every_class_and_the_mious() -> None:
    result = make_result()
    table = result.format_table()
    for name in CLASS_NAMES:
        assert name in table
    assert "41.25" in table and "50.00" in table and "90.00" in table
    assert "mIoU19" in table and "mIoU16" in table and "mIoU13" in table
    assert "best on target val (oracle choice)" in table and result.resolution in table
    wall_line = next(line for line in table.splitlines() if line.startswith("wall"))
    assert wall_line.split()[-1] == "-"  # a NaN class reads as '-'
