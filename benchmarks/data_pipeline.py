"""Data-pipeline benchmark: what preparation and loader workers buy, measured in one run.

Generates a small toy city (or uses ``--data``), then times, over the same images:

1. toy-city generation throughput (images per second);
2. reading raw labels and mapping them on the fly, against reading the prepared
   ``*_labelTrainIds.png`` files;
3. a ``DataLoader`` with 0 workers against one with ``--workers`` workers, at the toy
   preset's crop.

It prints absolute rates and the ratios between them. The ratios are what to compare
across machines; this machine is shared, so read single numbers with care.

    python benchmarks/data_pipeline.py [--images 300] [--workers 2] [--data DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from rccr.data import GTA5, JointTransform, Size
from rccr.data.prepare import prepare_dataset
from rccr.data.toycity import ToyCitySpec, make_toy_city


def _rate(count: int, fn: Callable[[], object]) -> float:
    """Items per second of ``fn``, which processes ``count`` items."""
    start = time.perf_counter()
    fn()
    return count / (time.perf_counter() - start)


def _read_all(dataset: GTA5) -> None:
    for i in range(len(dataset)):
        dataset.load(i)


def _iterate(loader: DataLoader) -> None:
    for _ in loader:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="source images to generate")
    parser.add_argument("--workers", type=int, default=2, help="loader and generator workers")
    parser.add_argument("--data", type=Path, default=None, help="an existing toy city")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "toy"
        if args.data is None:
            spec = ToyCitySpec(num_source=args.images, num_target_train=1, num_target_val=1)
            total = spec.num_source + spec.num_target_train + spec.num_target_val
            gen = _rate(
                total,
                lambda: make_toy_city(data, spec, workers=args.workers, progress=False),
            )
            print(f"toy generation:        {gen:8.1f} img/s with {args.workers} workers")
        root = data / "gta5"

        raw = GTA5(root, transform=JointTransform(), labels="raw")
        prepare_dataset("gta5", root, workers=args.workers, progress=False)
        prepared = GTA5(root, transform=JointTransform(), labels="train_ids")
        raw_rate = _rate(len(raw), lambda: _read_all(raw))
        prepared_rate = _rate(len(prepared), lambda: _read_all(prepared))
        print(f"raw labels, mapped:    {raw_rate:8.1f} pairs/s")
        print(f"prepared train ids:    {prepared_rate:8.1f} pairs/s")
        print(f"  ratio prepared/raw:  {prepared_rate / raw_rate:8.2f}")

        train = GTA5(root, transform=JointTransform(crop=Size(128, 128), flip=True))
        rates = {}
        for workers in (0, args.workers):
            loader = DataLoader(
                train,
                batch_size=2,
                shuffle=True,
                num_workers=workers,
                generator=torch.Generator().manual_seed(0),
            )
            rates[workers] = _rate(len(train), lambda loader=loader: _iterate(loader))
            print(f"loader, {workers} workers:     {rates[workers]:8.1f} img/s")
        print(f"  ratio {args.workers} workers/0:   {rates[args.workers] / rates[0]:8.2f}")


if __name__ == "__main__":
    main()
