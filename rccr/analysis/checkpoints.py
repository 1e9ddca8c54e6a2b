"""A run's checkpoint, rebuilt for looking at: its networks, and its score on target val.

::

    models = load_models("runs/toy-rccr")          # last checkpoint: student, teacher, heads
    iteration, result = evaluate_checkpoint("runs/toy-rccr", 2000)

The networks are rebuilt from the run's config.yaml (``rccr.build``) and loaded from the
checkpoint with ``weights_only=True`` (``rccr.runs.load_checkpoint``), frozen and in eval
mode. Nothing here trains.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch

from rccr.build import build_model, validation_set
from rccr.config import Config
from rccr.evaluation import EvalResult, evaluate
from rccr.method.ema import freeze
from rccr.models import DeepLabV2
from rccr.models.heads import ProjectionHead
from rccr.runs import RunError, load_checkpoint, load_run

__all__ = ["CheckpointModels", "evaluate_checkpoint", "load_models"]


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


def _network(config: Config, weights: object, device: str) -> DeepLabV2:
    # The checkpoint replaces every weight: no need to read the pretrained file again.
    model = build_model(dataclasses.replace(config.model, pretrained=None), verbose=False)
    model.load_state_dict(weights)  # type: ignore[arg-type]
    return freeze(model).eval().to(torch.device(device))


def load_models(
    run_dir: str | os.PathLike, iteration: int | None = None, device: str = "cpu"
) -> CheckpointModels:
    """Rebuild a run's networks from its config and load one checkpoint (the last by default).

    Raises:
        RunError: naming the file, if the config or the checkpoint is missing or malformed.
    """
    run = load_run(run_dir)
    config = run.require_config()
    iteration, path = run.checkpoint(iteration)
    state = load_checkpoint(path)
    try:
        student = _network(config, state["student"], device)
        method = state.get("method", {})
        teacher = _network(config, method["teacher"], device) if "teacher" in method else student
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
    """Score one checkpoint's student on target val (the last checkpoint by default).

    Returns:
        The checkpoint's iteration and its result (not yet saved).

    Raises:
        RunError: if the run has no usable config or no such checkpoint.
    """
    run = load_run(run_dir)
    config = run.require_config()
    iteration, path = run.checkpoint(iteration)
    choice = "last, " if iteration == max(run.checkpoints) else ""
    try:
        model = _network(config, load_checkpoint(path)["student"], device)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise RunError(f"{path}: does not fit the run's config.yaml: {exc}") from exc
    result = evaluate(
        model,
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
