"""Objects built from a config: the segmentation network and the datasets of a run.

Shared by training (``rccr.training``) and by looking at runs (``rccr.analysis``, the
dashboard, the notebooks), which rebuild a run's network and data from its config.yaml.
:func:`open_dataset` is the one place that maps a dataset kind to its reader.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from rccr.config import DataConfig, ModelConfig
from rccr.data import GTA5, Cityscapes, JointTransform, Size, Synthia
from rccr.data.dataset import SegmentationDataset
from rccr.data.labels import NUM_CLASSES
from rccr.models import DeepLabV2, load_pretrained

__all__ = [
    "DatasetKind",
    "Datasets",
    "build_datasets",
    "build_model",
    "open_dataset",
    "validation_set",
]

DatasetKind = Literal["gta5", "synthia", "cityscapes"]
"""The datasets a run can name: the two sources (``data.source``) and the target."""


class Datasets(NamedTuple):
    source: SegmentationDataset
    target: SegmentationDataset
    val: SegmentationDataset


def build_model(config: ModelConfig, verbose: bool = True) -> DeepLabV2:
    """DeepLab-v2 as configured, with pretrained weights loaded if a file is given."""
    model = DeepLabV2(
        num_classes=NUM_CLASSES,
        backbone=config.backbone,
        width=config.width,
        legacy_aspp=config.legacy_aspp,
        freeze_bn=config.freeze_bn,
        input_norm=config.input_norm,
        ceil_mode=config.stem_ceil_mode,
        bn_batch_stats=config.bn_batch_stats,
        stride_in_1x1=config.stride_in_1x1,
    )
    weights = config.weights()
    if weights is not None:
        report = load_pretrained(model, weights)
        if verbose:
            print(report)
    return model


def open_dataset(
    kind: DatasetKind,
    root: str,
    transform: JointTransform,
    split: str = "train",
    list_file: str | None = None,
) -> SegmentationDataset:
    """The reader of a dataset kind over ``root``; ``split`` is used by Cityscapes only
    (GTA5 and SYNTHIA have no splits)."""
    if kind == "cityscapes":
        return Cityscapes(root, split, transform, list_file=list_file)
    reader = GTA5 if kind == "gta5" else Synthia
    return reader(root, transform=transform, list_file=list_file)


def validation_set(config: DataConfig) -> SegmentationDataset:
    """Target val, images resized to ``val_size``, labels kept at full resolution."""
    transform = JointTransform(Size(*config.val_size), resize_label=False)
    return open_dataset("cityscapes", config.target_root, transform, "val", config.val_list)


def build_datasets(config: DataConfig) -> Datasets:
    """Source and target training sets (resize, crop, flip) and target val."""
    crop = Size(*config.crop)
    source = open_dataset(
        config.source,
        config.source_root,
        JointTransform(Size(*config.source_size), crop, config.flip),
        list_file=config.source_list,
    )
    target = open_dataset(
        "cityscapes",
        config.target_root,
        JointTransform(Size(*config.target_size), crop, config.flip),
        split="train",
        list_file=config.target_list,
    )
    return Datasets(source, target, validation_set(config))
