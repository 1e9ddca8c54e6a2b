"""Seeded, resumable, endless streams of training batches.

Training draws batches forever (epochs are an implementation detail), and a resumed run
must see exactly the batches and augmentations an uninterrupted run would have seen. So
everything random about batch number ``k`` is a function of ``(seed, stream, k)``:

- the order of epoch ``e`` is a permutation seeded by ``(seed, stream, e)``;
- the random crop and flip of the sample at stream position ``p`` run under torch's RNG
  seeded by ``(seed, stream, p)``, inside ``fork_rng`` so the trainer's own RNG is
  untouched (and worker processes make no difference).

A stream started at batch ``k`` therefore continues an interrupted one bit for bit.

Under DDP the stream is also the distributed sampler: global batch ``k`` holds
``batch_size x world_size`` positions and rank ``r`` takes the ``r``-th slice of
``batch_size``, so the ranks' shards are disjoint and together are exactly the batch a
single process with the effective batch size would draw. (torch's ``DistributedSampler``
cannot start in the middle of an epoch, which a bit-exact resume needs.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["DataStream"]

Item = TypeVar("Item")  # a Sample, or a wrapper collated the same way (rccr.data.skipping)


def _seed(*words: int) -> int:
    return int(np.random.SeedSequence(list(words)).generate_state(1, dtype=np.uint64)[0] >> 1)


class _Positions(Sampler[list[tuple[int, int]]]):
    """Endless batches of (stream position, dataset index), starting at a given batch.

    Each global batch has ``batch_size * world_size`` positions; this rank yields its slice.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        stream: int,
        start: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.size, self.batch_size = size, batch_size
        self.seed, self.stream, self.start = seed, stream, start
        self.rank, self.world_size = rank, world_size

    def _order(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(_seed(self.seed, self.stream, epoch))
        return torch.randperm(self.size, generator=generator)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        global_batch = self.batch_size * self.world_size
        position = self.start * global_batch
        epoch, order = -1, torch.empty(0, dtype=torch.long)
        while True:
            batch = []
            for _ in range(global_batch):
                if position // self.size != epoch:
                    epoch = position // self.size
                    order = self._order(epoch)
                batch.append((position, int(order[position % self.size])))
                position += 1
            yield batch[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]


class _Seeded(Dataset[Item]):
    """Runs each item's augmentation under an RNG seeded by its stream position."""

    def __init__(self, dataset: Dataset[Item], seed: int, stream: int) -> None:
        self.dataset, self.seed, self.stream = dataset, seed, stream

    def __getitem__(self, key: tuple[int, int]) -> Item:
        position, index = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed(self.seed, self.stream, 1 << 20, position))
            return self.dataset[index]


class DataStream(Generic[Item]):
    """An endless iterator of collated batches (``Sample`` of stacked tensors).

    Args:
        dataset: the training dataset.
        batch_size: samples per batch (per rank under DDP).
        seed: the run's seed.
        stream: a different number for each stream of a run (source 0, target 1, ...).
        start: index of the first batch to produce (the iteration to resume at).
        num_workers: DataLoader worker processes.
        pin_memory: pin batches for faster host-to-GPU copies.
        rank: this process's rank under DDP.
        world_size: number of DDP processes.
    """

    def __init__(
        self,
        dataset: Dataset[Item],
        batch_size: int,
        seed: int,
        stream: int,
        start: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        size = len(dataset)  # type: ignore[arg-type]
        self._loader: DataLoader[Any] = DataLoader(
            _Seeded(dataset, seed, stream),
            batch_sampler=_Positions(size, batch_size, seed, stream, start, rank, world_size),
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=num_workers > 0,
            # Its own generator: creating workers must not draw from torch's global RNG.
            generator=torch.Generator().manual_seed(_seed(seed, stream, start)),
        )
        self._iterator: Iterator[Item] | None = None

    def __iter__(self) -> DataStream[Item]:
        return self

    def __next__(self) -> Item:
        if self._iterator is None:
            self._iterator = iter(self._loader)
        return next(self._iterator)
