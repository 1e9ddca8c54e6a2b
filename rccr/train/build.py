"""Objects built from a config: the student network and the three datasets of a run.

Shared by the trainer and by ``rccr eval``, which rebuilds a run's model and validation
set from its ``config.yaml`` to score one of its checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import NamedTuple

import torch

from rccr.config import Config, DataConfig, ModelConfig
from rccr.data import GTA5, Cityscapes, JointTransform, Size, Synthia
from rccr.data.dataset import SegmentationDataset
from rccr.data.labels import NUM_CLASSES
from rccr.evaluate import EvalResult, evaluate
from rccr.models import DeepLabV2, load_pretrained
from rccr.runs import RunError, load_checkpoint, load_run

__all__ = ["Datasets", "build_datasets", "build_model", "evaluate_checkpoint", "validation_set"]


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
    )
    if config.pretrained:
        report = load_pretrained(model, config.pretrained)
        if verbose:
            print(report)
    return model


def validation_set(config: DataConfig) -> SegmentationDataset:
    """Target val, images resized to ``val_size``, labels kept at full resolution."""
    transform = JointTransform(Size(*config.val_size), resize_label=False)
    return Cityscapes(config.target_root, "val", transform, list_file=config.val_list)


def build_datasets(config: DataConfig) -> Datasets:
    """Source and target training sets (resize, crop, flip) and target val."""
    crop = Size(*config.crop)
    source_cls = GTA5 if config.source == "gta5" else Synthia
    source = source_cls(
        config.source_root,
        transform=JointTransform(Size(*config.source_size), crop, config.flip),
        list_file=config.source_list,
    )
    target = Cityscapes(
        config.target_root,
        "train",
        JointTransform(Size(*config.target_size), crop, config.flip),
        list_file=config.target_list,
    )
    return Datasets(source, target, validation_set(config))


def evaluate_checkpoint(
    run_dir: str | os.PathLike,
    iteration: int | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[int, EvalResult]:
    """Score one checkpoint of a run on target val (the last one by default).

    Returns:
        The checkpoint's iteration and its result (not yet saved).

    Raises:
        RunError: if the run has no usable config or no such checkpoint.
    """
    run = load_run(run_dir)
    if run.config is None:
        raise RunError(f"{Path(run_dir) / 'config.yaml'}: missing or malformed; cannot rebuild")
    if not run.checkpoints:
        raise RunError(f"{Path(run_dir) / 'checkpoints'}: no checkpoints yet")
    choice = "last, " if iteration is None or iteration == max(run.checkpoints) else ""
    if iteration is None:
        iteration = max(run.checkpoints)
    if iteration not in run.checkpoints:
        available = ", ".join(map(str, run.checkpoints))
        raise RunError(f"{run_dir}: no checkpoint at iteration {iteration}; have {available}")
    config: Config = run.config
    # The checkpoint replaces every weight: no need to read the pretrained file again.
    model = build_model(dataclasses.replace(config.model, pretrained=None))
    model.load_state_dict(load_checkpoint(run.checkpoints[iteration])["student"])
    result = evaluate(
        model.to(torch.device(device)),
        validation_set(config.data),
        dataset_name="cityscapes",
        split="val",
        subsets=config.eval.subsets,
        device=device,
        batch_size=config.eval.batch_size,
        progress=progress,
        checkpoint_choice=f"{choice}iter_{iteration}",
    )
    return iteration, result
