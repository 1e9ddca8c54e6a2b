"""Training on several processes with PyTorch DDP, launched by ``torchrun``.

``torchrun --nproc_per_node=N -m rccr train ...`` starts N copies of the trainer and sets
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`init_world` reads them and joins the
process group (NCCL on CUDA, gloo on CPU). A plain ``rccr train`` is a world of one, and
every function here is then a no-op, so the single-process path is unchanged; one that
finds ``WORLD_SIZE`` left in its environment without torchrun stops with an error rather
than wait for peers that will never come.

What DDP itself does not cover, and this module provides:

- each rank draws its own batches (the data streams shard every global batch by rank);
- the memory bank receives the features of every rank (:func:`all_gather_rows`);
- the EMA teacher stays identical across ranks: DDP keeps the student's weights equal, and
  :func:`broadcast_buffers` makes its BatchNorm statistics equal before each EMA step;
- loss terms and stop requests are averaged / OR-ed across ranks (:func:`all_reduce_mean`),
  so every rank logs the same numbers and stops at the same iteration;
- each rank's augmentation generator is seeded differently (:func:`rank_seed`).
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "World",
    "all_gather_objects",
    "all_gather_rows",
    "all_reduce_mean",
    "barrier",
    "broadcast_buffers",
    "close_world",
    "init_world",
    "rank",
    "rank_seed",
    "wrap",
]


@dataclass(frozen=True)
class World:
    """This process's place among the training processes.

    Attributes:
        rank: global rank (0 writes the run directory).
        size: number of processes.
        local_rank: rank on this node (selects the GPU).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init_world(device_type: str) -> World:
    """Join torchrun's process group if there is one; a world of one otherwise.

    Args:
        device_type: "cuda" (NCCL backend, one GPU per local rank) or "cpu" (gloo).

    Raises:
        RuntimeError: if torchrun asks for CUDA ranks beyond this node's GPUs, or
            ``WORLD_SIZE`` asks for several processes without torchrun (which sets
            ``TORCHELASTIC_RUN_ID``) having started them.
    """
    text = os.environ.get("WORLD_SIZE", "1")
    size = int(text) if text.strip().isdigit() else -1
    if size == -1 or (size > 1 and "TORCHELASTIC_RUN_ID" not in os.environ):
        raise RuntimeError(
            f"WORLD_SIZE={text[:50]!r} is set, but this process was not started by torchrun, "
            "so no other process will join it: unset WORLD_SIZE, RANK and MASTER_ADDR to "
            "train in one process, or start it with torchrun --nproc_per_node=N -m rccr train"
        )
    if size <= 1:
        return World()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s) here; "
                "use --nproc_per_node <= the number of GPUs"
            )
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), local_rank)


def close_world() -> None:
    """Leave the process group (after training) if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in DDP, which averages its gradients across ranks during backward.

    DDP's own buffer broadcast at every forward is turned off: the step runs the student
    several times before one backward, and re-broadcasting would modify frozen-BatchNorm
    statistics that autograd saved. :func:`broadcast_buffers` runs after the step instead.
    """
    ids = [device.index] if device.type == "cuda" else None
    parameters = inspect.signature(DistributedDataParallel.__init__).parameters
    no_sync = (
        "forward_sync_buffers" if "forward_sync_buffers" in parameters else "broadcast_buffers"
    )
    options: dict[str, Any] = {no_sync: False}
    return DistributedDataParallel(module, device_ids=ids, **options)


def rank() -> int:
    """This process's rank (0 in a world of one)."""
    return dist.get_rank() if _active() else 0


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s random generator; rank 0 keeps ``seed`` itself."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


def all_gather_rows(rows: Tensor) -> Tensor:
    """Concatenate every rank's rows in rank order; ranks may hold different counts.

    Args:
        rows: (n_r, ...) this rank's rows.

    Returns:
        (sum_r n_r, ...), identical on every rank; ``rows`` itself in a world of one.
    """
    if not _active():
        return rows
    size = dist.get_world_size()
    count = torch.tensor([rows.shape[0]], device=rows.device)
    counts = [torch.zeros_like(count) for _ in range(size)]
    dist.all_gather(counts, count)
    longest = int(max(int(c) for c in counts))
    padded = rows.new_zeros((longest, *rows.shape[1:]))  # all_gather needs equal shapes
    padded[: rows.shape[0]] = rows
    gathered = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(gathered, padded)
    return torch.cat([g[: int(c)] for g, c in zip(gathered, counts, strict=True)])


def all_gather_objects(items: list[Any]) -> list[Any]:
    """Concatenate every rank's list of picklable objects in rank order (``items`` itself in
    a world of one)."""
    if not _active():
        return items
    everyone: list[list[Any]] = [[] for _ in range(dist.get_world_size())]
    dist.all_gather_object(everyone, items)
    return [item for rank_items in everyone for item in rank_items]


def all_reduce_mean(values: Tensor) -> Tensor:
    """Mean over ranks of a float tensor (``values`` itself in a world of one)."""
    if not _active():
        return values
    total = values.clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def broadcast_buffers(module: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) into ``module`` on every rank."""
    if not _active():
        return
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)


def barrier() -> None:
    """Wait for every rank (no-op in a world of one)."""
    if _active():
        dist.barrier()
