"""Semantic-segmentation scores: confusion matrix, per-class IoU, mIoU, full-resolution eval.

IoU of class c is ``TP / (TP + FP + FN)`` over all pixels of a split (one confusion matrix
accumulated over the split, not a mean of per-image scores). ``iou_from_confusion`` returns
it as a fraction; everything *reported* (``mean_iou``, ``EvalResult.iou``,
``EvalResult.miou``, the table) is a percentage in 0..100, as papers quote it.

Protocol: the image is fed at the inference size (e.g. Cityscapes 1024x512), the logits
are upsampled bilinearly to the label's own size (2048x1024) and scored there, the
standard full-resolution protocol. DACS instead scored labels resized to 1024x512 and
upsampled with ``align_corners=True``; we use ``align_corners=False``, which treats pixels
as areas and matches how the images themselves were resized.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from rccr.config import quote
from rccr.data.dataset import Sample
from rccr.data.labels import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES, class_subset

__all__ = [
    "EvalResult",
    "confusion_matrix",
    "evaluate",
    "iou_from_confusion",
    "mean_iou",
    "predict",
]

_MAX_LISTED = 10


def confusion_matrix(
    pred: Tensor, label: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Count (ground truth, prediction) pairs with one ``bincount`` on the inputs' device.

    Args:
        pred: integer class ids, any shape (e.g. (B, H, W)).
        label: integer train ids of the same shape; ``ignore_index`` pixels are skipped.
        num_classes: C.
        ignore_index: label value that marks unlabelled pixels.

    Returns:
        (C, C) int64, rows = ground truth, columns = prediction.

    Raises:
        ValueError: if the shapes differ, a tensor is not integer, or a scored pixel has a
            value outside 0..C-1 (the message lists the offending values).
    """
    if pred.shape != label.shape:
        raise ValueError(
            f"pred has shape {tuple(pred.shape)} but label has shape {tuple(label.shape)}; "
            "expected equal shapes"
        )
    if pred.is_floating_point() or label.is_floating_point():
        raise ValueError(f"pred ({pred.dtype}) and label ({label.dtype}) must be integer tensors")
    keep = label != ignore_index
    gt, pr = label[keep].long(), pred[keep].long()  # (N,) scored pixels
    for name, values in (("label", gt), ("pred", pr)):
        bad = (values < 0) | (values >= num_classes)
        if bad.any():
            shown = values[bad].unique()[:_MAX_LISTED].tolist()
            raise ValueError(
                f"{name} values {shown} are outside 0..{num_classes - 1}"
                + (f" and are not the ignore index {ignore_index}" if name == "label" else "")
            )
    counts = torch.bincount(gt * num_classes + pr, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)  # (C*C,) -> (C, C)


def iou_from_confusion(cm: Tensor) -> Tensor:
    """Per-class intersection over union, ``TP / (TP + FP + FN)``.

    Args:
        cm: (C, C) confusion matrix, rows = ground truth, columns = prediction.

    Returns:
        (C,) float64 fractions in [0, 1]; NaN for a class absent from both label and
        prediction (its union is empty).
    """
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix has shape {tuple(cm.shape)}; expected (C, C)")
    cm = cm.double()
    tp = cm.diagonal()
    union = cm.sum(dim=0) + cm.sum(dim=1) - tp  # TP + FP + FN
    return tp / union  # 0 / 0 = NaN


def mean_iou(iou: Tensor, subset: Sequence[int] | None = None) -> float:
    """Mean IoU in percent (0..100) over ``subset`` (all classes if None), skipping NaN.

    Args:
        iou: (C,) per-class IoU fractions, as from ``iou_from_confusion``.
        subset: class ids to average, e.g. ``class_subset(16)``.

    Returns:
        The mean in percent; NaN if every class in the subset is NaN.
    """
    if subset is not None:
        iou = iou[list(subset)]
    return 100.0 * float(torch.nanmean(iou.double()))


def _none_to_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _matches(value: object, spec: object) -> bool:
    """Whether a JSON value has the shape ``spec``: ``str``, ``int``, ``float`` (a score:
    a number, or null for NaN), ``[item_spec]`` or ``{str: item_spec}``."""
    if isinstance(spec, list):
        return isinstance(value, list) and all(_matches(x, spec[0]) for x in value)
    if isinstance(spec, dict):
        return isinstance(value, dict) and all(
            isinstance(k, str) and _matches(x, spec[str]) for k, x in value.items()
        )
    if spec is float:
        return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
    if spec is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


_JSON_FIELDS: dict[str, tuple[object, str]] = {
    "dataset": (str, "a string"),
    "split": (str, "a string"),
    "resolution": (str, "a string"),
    "num_images": (int, "an integer"),
    "confusion": ([[int]], "a list of lists of integers"),
    "iou": ([float], "a list of numbers or nulls"),
    "miou": ({str: float}, "an object of numbers or nulls"),
    "checkpoint_choice": (str, "a string"),
}
"""Every key of the JSON form: the shape of its value, and that shape in words."""


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Scores of one model on one split, as written to ``runs/<run>/eval/iter_<N>.json``.

    Attributes:
        dataset: e.g. "cityscapes".
        split: e.g. "val".
        resolution: how it was scored, e.g. "infer 1024x512, scored at label size 2048x1024".
        num_images: images scored.
        confusion: (C, C) pixel counts, rows = ground truth, columns = prediction.
        iou: per-class IoU in percent; NaN for a class absent from labels and predictions.
        miou: "mIoU19" and any requested subsets ("mIoU16", "mIoU13"), in percent.
        checkpoint_choice: how the checkpoint was picked: "last", or "best on target val
            (oracle choice)", which peeks at target labels and must be labelled so.
    """

    dataset: str
    split: str
    resolution: str
    num_images: int
    confusion: list[list[int]]
    iou: list[float]
    miou: dict[str, float]
    checkpoint_choice: str = "last"

    def __post_init__(self) -> None:
        size = len(self.confusion)
        if any(len(row) != size for row in self.confusion):
            raise ValueError(
                f"confusion: has {size} rows of unequal lengths; expected {size}x{size}"
            )
        if len(self.iou) != size:
            raise ValueError(f"iou: {len(self.iou)} classes but confusion is {size}x{size}")
        if f"mIoU{NUM_CLASSES}" not in self.miou:
            raise ValueError(f"miou: missing key 'mIoU{NUM_CLASSES}'")
        if self.num_images < 0:
            raise ValueError(f"num_images: {self.num_images} is negative")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; NaN scores become ``null`` (strict JSON has no NaN)."""
        data = dataclasses.asdict(self)  # deep-copies the confusion lists
        data["iou"] = [_nan_to_none(x) for x in self.iou]
        data["miou"] = {k: _nan_to_none(v) for k, v in self.miou.items()}
        return data

    @classmethod
    def from_json(cls, data: object) -> EvalResult:
        """Rebuild a result from ``to_json`` output (``null`` scores become NaN).

        Raises:
            ValueError: naming the first missing, unknown or malformed key.
        """
        if not isinstance(data, dict):
            raise ValueError(f"eval result: expected a JSON object, got {type(data).__name__}")
        for key in data:
            if key not in _JSON_FIELDS:
                raise ValueError(f"eval result: unknown key {quote(key)}")
        for key, (spec, expected) in _JSON_FIELDS.items():
            if key not in data:
                raise ValueError(f"eval result: missing key {key!r}")
            if not _matches(data[key], spec):
                raise ValueError(f"eval result: key {key!r} must be {expected}")
        iou = [_none_to_nan(x) for x in data["iou"]]
        miou = {k: _none_to_nan(v) for k, v in data["miou"].items()}
        confusion = [list(row) for row in data["confusion"]]
        return cls(**{**data, "confusion": confusion, "iou": iou, "miou": miou})

    def format_table(self) -> str:
        """Per-class IoU and the mIoU lines, as a plain-text table for a terminal."""
        names = CLASS_NAMES if len(self.iou) == len(CLASS_NAMES) else range(len(self.iou))
        width = max(len(str(n)) for n in (*names, *self.miou))
        lines = [
            f"{self.dataset} {self.split}: {self.num_images} images, {self.resolution}",
            f"checkpoint: {self.checkpoint_choice}",
            f"{'class':<{width}}  {'IoU %':>6}",
        ]
        lines += [
            f"{name!s:<{width}}  {_percent(v)}" for name, v in zip(names, self.iou, strict=True)
        ]
        lines.append("-" * (width + 8))
        lines += [f"{key:<{width}}  {_percent(v)}" for key, v in self.miou.items()]
        return "\n".join(lines)


def _percent(value: float) -> str:
    return f"{'-':>6}" if math.isnan(value) else f"{value:6.2f}"


def _logits(model: nn.Module, image: Tensor) -> Tensor:
    """(B, 3, h, w) -> the model's (B, C, h', w') logits, as float32."""
    output = model(image)  # rccr.models.SegmentationOutput, or anything with .logits
    logits = getattr(output, "logits", None)
    if not isinstance(logits, Tensor) or logits.ndim != 4:
        raise TypeError(
            f"model(x) returned {type(output).__name__}; expected an object whose .logits "
            "is a (B, C, h, w) tensor"
        )
    return logits.float()  # under autocast: upsample and argmax in full precision


def _upsample(logits: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, C, h, w) -> (B, C, H, W), bilinear, ``align_corners=False``."""
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def predict(model: nn.Module, image: Tensor, out_size: tuple[int, int]) -> Tensor:
    """Logits of ``model`` on ``image``, upsampled bilinearly to ``out_size``.

    Uses ``align_corners=False`` (DACS used True; see the module docstring). Grad mode and
    train/eval mode are the caller's, as for any module call.

    Args:
        model: returns an object with (B, C, h', w') ``.logits``, such as
            :class:`rccr.models.SegmentationOutput`.
        image: (B, 3, h, w).
        out_size: (H, W), the label's size.

    Returns:
        (B, C, H, W) float32 logits.
    """
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image has shape {tuple(image.shape)}; expected (B, 3, h, w)")
    return _upsample(_logits(model, image), out_size)


def _resolution(sample: Sample) -> str:
    (h, w), (label_h, label_w) = sample.image.shape[-2:], sample.label.shape
    return f"infer {w}x{h}, scored at label size {label_w}x{label_h}"


def evaluate(
    model: nn.Module,
    dataset: Dataset[Sample],
    *,
    dataset_name: str,
    split: str,
    subsets: Sequence[int] = (NUM_CLASSES,),
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    num_workers: int = 0,
    progress: bool = True,
    autocast_dtype: torch.dtype | None = None,
    checkpoint_choice: str = "last",
) -> EvalResult:
    """Score ``model`` on every sample of ``dataset`` at each label's full resolution.

    The model runs in eval mode under ``torch.inference_mode``; its logits are upsampled to
    the label's size (see ``predict``) and one confusion matrix is accumulated on
    ``device``. Afterwards every submodule gets back its own train/eval flag (so a frozen
    BatchNorm inside a training model stays frozen).

    Args:
        model: on ``device``; ``model(x).logits`` is (B, 19, h', w').
        dataset: ``Sample``s; labels may be larger than images (``resize_label=False``).
        dataset_name: recorded in the result, e.g. "cityscapes".
        split: recorded in the result, e.g. "val".
        subsets: class subsets to average besides all 19 (16 and 13 for SYNTHIA).
        device: where the model runs and the confusion matrix accumulates.
        batch_size: images per forward pass; images in a batch must share a size.
        num_workers: ``DataLoader`` worker processes for decoding.
        progress: show a tqdm bar (a widget in notebooks).
        autocast_dtype: e.g. ``torch.bfloat16`` to run the model under autocast.
        checkpoint_choice: how the checkpoint was chosen, recorded in the result.

    Returns:
        The scores, in percent.
    """
    subset_ids = {f"mIoU{n}": class_subset(n) for n in (NUM_CLASSES, *subsets)}  # fails early
    total = len(dataset)  # type: ignore[arg-type]  # map-style datasets are sized
    if total == 0:
        raise ValueError(f"{dataset_name} {split}: the dataset is empty; nothing to evaluate")
    device = torch.device(device)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=list,  # labels differ in size, so no stacking
    )
    modes = {module: module.training for module in model.modules()}
    model.eval()
    cm = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.int64, device=device)
    resolution = ""
    bar = tqdm(total=total, desc=f"eval {dataset_name} {split}", unit="img", disable=not progress)
    try:
        with torch.inference_mode():
            for batch in loader:
                resolution = resolution or _resolution(batch[0])
                if len({s.image.shape for s in batch}) > 1:
                    raise ValueError("images in a batch differ in size; use batch_size=1")
                images = torch.stack([s.image for s in batch]).to(device)  # (B, 3, h, w)
                with torch.autocast(
                    device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
                ):
                    logits = _logits(model, images)  # (B, C, h', w')
                if logits.shape[1] != NUM_CLASSES:
                    raise ValueError(
                        f"model gives {logits.shape[1]} classes; expected {NUM_CLASSES}"
                    )
                for logit, sample in zip(logits, batch, strict=True):
                    label = sample.label.to(device)  # (H, W)
                    up = _upsample(logit[None], (label.shape[0], label.shape[1]))  # (1, C, H, W)
                    cm += confusion_matrix(up[0].argmax(dim=0), label, NUM_CLASSES)
                bar.update(len(batch))
    finally:
        bar.close()
        for module, training in modes.items():
            module.training = training
    iou = iou_from_confusion(cm)
    return EvalResult(
        dataset=dataset_name,
        split=split,
        resolution=resolution,
        num_images=total,
        confusion=cm.cpu().tolist(),
        iou=[100.0 * x for x in iou.tolist()],
        miou={key: mean_iou(iou, ids) for key, ids in subset_ids.items()},
        checkpoint_choice=checkpoint_choice,
    )
