"""What a checkpoint holds, and resuming from the newest one that loads.

A checkpoint is written atomically by ``RunWriter.save_checkpoint`` (temporary file, then
rename), so a crash can leave a stray temporary file but never a partial
``iter_<N>.pt``. It holds only tensors and plain containers, so it loads with
``torch.load(weights_only=True)``: student weights, optimiser state, torch's RNG state,
the iteration and the resolved config; in the DACS and RCCR modes also the teacher, the
projection heads, the memory bank and the method's random generator.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rccr.runs import RunError, iteration_files, load_checkpoint
from rccr.train.method_steps import MethodParts

__all__ = ["capture", "latest_checkpoint", "restore"]


def capture(
    student: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: dict[str, Any],
    method: MethodParts | None = None,
) -> dict[str, Any]:
    """The training state to save (the iteration is added by the writer)."""
    state = {
        "student": student.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(),
        "config": config,
    }
    if method is not None:
        state["method"] = method.state_dict()
    return state


def restore(
    state: dict[str, Any],
    student: nn.Module,
    optimizer: torch.optim.Optimizer,
    method: MethodParts | None = None,
) -> int:
    """Load a captured state; return the iteration it was taken at."""
    student.load_state_dict(state["student"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    if method is not None:
        method.load_state_dict(state["method"])
    return int(state["iteration"])


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
