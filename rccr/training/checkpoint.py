"""What a checkpoint holds, and resuming from the newest one that loads.

A checkpoint is written atomically by ``RunWriter.save_checkpoint`` (temporary file, then
rename), so a crash can leave a stray temporary file but never a partial
``iter_<N>.pt``. It holds only tensors and plain containers, so it loads with
``torch.load(weights_only=True)``: student weights, optimiser state, torch's RNG state,
the iteration, the resolved config and the metrics.jsonl record of its iteration so far
(the loss terms: the evaluation and the record are written after the checkpoint, so a
resume can complete them); in the DACS and RCCR modes also the teacher, the projection
heads, the memory bank and the method's random generator (under DDP, each rank's); with
fp16 precision also the gradient scaler.

A resume continues a checkpoint only under the config it was written with
(:func:`require_config`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rccr.config import (
    Config,
    ConfigError,
    absolute_paths,
    config_from_dict,
    describe_differences,
)
from rccr.runs import RunError, iteration_files, load_checkpoint
from rccr.training.distributed import World, all_gather_rows
from rccr.training.method_parts import MethodParts

__all__ = ["capture", "latest_checkpoint", "require_config", "restore"]


def capture(
    student: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: dict[str, Any],
    method: MethodParts | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, Any]:
    """The training state to save (the iteration is added by the writer).

    Under DDP this is collective: the ranks' method generators (each rank augments with
    its own) are gathered so that a resume gives every rank its own state back.
    """
    state = {
        "student": student.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(),
        "config": config,
    }
    if method is not None:
        state["method"] = method.state_dict()
        generators = all_gather_rows(method.generator.get_state()[None])  # (world, bytes)
        if generators.shape[0] > 1:
            state["rank_generators"] = generators
    if scaler is not None and scaler.is_enabled():
        state["scaler"] = scaler.state_dict()
    return state


def restore(
    state: dict[str, Any],
    student: nn.Module,
    optimizer: torch.optim.Optimizer,
    method: MethodParts | None = None,
    scaler: torch.amp.GradScaler | None = None,
    *,
    world: World,
) -> int:
    """Load a captured state; return the iteration it was taken at.

    Raises:
        RunError: if the state does not fit this run (e.g. a bank of another size after a
            change of the number of DDP processes).
    """
    try:
        student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        if method is not None:
            generators = state.get("rank_generators")
            written = 1 if generators is None else len(generators)
            if written != world.size:  # the bank's size and the generators depend on it
                raise RunError(
                    f"the checkpoint was written by {written} process(es); resume it "
                    f"with the same number ({world.size} now)"
                )
            method.load_state_dict(state["method"])
            if generators is not None:
                method.generator.set_state(generators[world.rank].clone())
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise RunError(f"checkpoint at iteration {state.get('iteration')} does not fit this "
                       f"run: {exc}") from exc  # fmt: skip
    return int(state["iteration"])


def require_config(state: dict[str, Any], config: Config, run_dir: str | os.PathLike) -> None:
    """Refuse to continue a checkpoint under another config than its own (config.yaml
    edited by hand, or another trainer's checkpoints in the folder).

    Raises:
        RunError: naming the checkpoint and the differing keys, with both values.
    """
    path = Path(run_dir) / "checkpoints" / f"iter_{state['iteration']}.pt"
    try:
        written = absolute_paths(config_from_dict(state["config"]))  # as the trainer's
    except (KeyError, TypeError, ConfigError) as exc:
        raise RunError(f"{path}: holds no readable config ({exc}); cannot check it fits "
                       "this run") from exc  # fmt: skip
    config = absolute_paths(config)  # paths compare as the files they name
    if written != config:
        keys = describe_differences(written, config, "the checkpoint", "config.yaml")
        raise RunError(
            f"{path}: written under another config than {Path(run_dir) / 'config.yaml'}: "
            f"{keys}; restore config.yaml, or choose another output folder"
        )


def latest_checkpoint(run_dir: str | os.PathLike) -> tuple[dict[str, Any] | None, list[str]]:
    """The newest checkpoint of a run that loads, and a note for each newer one that did not.

    Returns:
        (state or None if there is none, problems).
    """
    problems: list[str] = []
    for path in reversed(iteration_files(Path(run_dir) / "checkpoints", ".pt").values()):
        try:
            return load_checkpoint(path), problems
        except RunError as exc:
            problems.append(str(exc))
    return None, problems
