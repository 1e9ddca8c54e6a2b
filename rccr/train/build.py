"""Objects built from a config: the student network and the three datasets of a run.

Shared by the trainer and by ``rccr eval``, which rebuilds a run's model and validation
set from its ``config.yaml`` to score one of its checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from rccr.config import Config, DataConfig, ModelConfig
from rccr.data import GTA5, Cityscapes, JointTransform, Size, Synthia
from rccr.data.dataset import SegmentationDataset
from rccr.data.labels import NUM_CLASSES
from rccr.evaluate import EvalResult, evaluate
from rccr.method.ema import freeze
from rccr.models import DeepLabV2, load_pretrained
from rccr.models.heads import ProjectionHead
from rccr.runs import Run, RunError, load_checkpoint, load_run

__all__ = [
    "CheckpointModels",
    "Datasets",
    "build_datasets",
    "build_model",
    "evaluate_checkpoint",
    "load_models",
    "validation_set",
]


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


@dataclass
class CheckpointModels:
    """The networks of one checkpoint, in eval mode and frozen, for inspection.

    Attributes:
        iteration: the checkpoint's iteration.
        config: the run's config.
        student: the trained network.
        teacher: the EMA teacher of DACS and RCCR runs; the student itself otherwise.
        student_head: RCCR's projection head (None for other modes).
        teacher_head: its EMA copy (None for other modes).
    """

    iteration: int
    config: Config
    student: DeepLabV2
    teacher: DeepLabV2
    student_head: ProjectionHead | None
    teacher_head: ProjectionHead | None


def _checkpoint_path(run: Run, iteration: int | None) -> tuple[int, Path]:
    if not run.checkpoints:
        raise RunError(f"{run.path / 'checkpoints'}: no checkpoints yet")
    if iteration is None:
        iteration = max(run.checkpoints)
    if iteration not in run.checkpoints:
        available = ", ".join(map(str, run.checkpoints))
        raise RunError(f"{run.path}: no checkpoint at iteration {iteration}; have {available}")
    return iteration, run.checkpoints[iteration]


def _run_config(run: Run) -> Config:
    if run.config is None:
        raise RunError(f"{run.path / 'config.yaml'}: missing or malformed; cannot rebuild")
    return run.config


def load_models(
    run_dir: str | os.PathLike, iteration: int | None = None, device: str = "cpu"
) -> CheckpointModels:
    """Rebuild a run's networks from its config and load one checkpoint (the last by default).

    Raises:
        RunError: naming the file, if the config or the checkpoint is missing or malformed.
    """
    run = load_run(run_dir)
    config = _run_config(run)
    iteration, path = _checkpoint_path(run, iteration)
    state = load_checkpoint(path)

    def network(weights: object) -> DeepLabV2:
        model = build_model(dataclasses.replace(config.model, pretrained=None), verbose=False)
        model.load_state_dict(weights)  # type: ignore[arg-type]
        return freeze(model).eval().to(torch.device(device))

    try:
        student = network(state["student"])
        method = state.get("method", {})
        teacher = network(method["teacher"]) if "teacher" in method else student
        heads: list[ProjectionHead | None] = []
        for name in ("student_head", "teacher_head"):
            head = None
            if name in method:
                head = ProjectionHead(student.feature_channels, out_dim=config.method.embed_dim)
                head.load_state_dict(method[name])
                head = freeze(head).eval().to(torch.device(device))
            heads.append(head)
    except (KeyError, RuntimeError, TypeError, AttributeError) as exc:
        raise RunError(f"{path}: does not fit the run's config.yaml: {exc}") from exc
    return CheckpointModels(iteration, config, student, teacher, heads[0], heads[1])


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
    config = _run_config(run)
    iteration, path = _checkpoint_path(run, iteration)
    choice = "last, " if iteration == max(run.checkpoints) else ""
    # The checkpoint replaces every weight: no need to read the pretrained file again.
    model = build_model(dataclasses.replace(config.model, pretrained=None))
    model.load_state_dict(load_checkpoint(path)["student"])
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
