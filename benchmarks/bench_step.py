"""Training-step benchmark on the toy preset: what DACS and RCCR cost over source-only.

Prints, measured in one run on the same data and machine:

- seconds per step of the source-only, DACS and RCCR modes, and the RCCR/DACS ratio;
- the share of the RCCR step spent in RCCR's own machinery: region sampling (box cells,
  gathers, row sampling), the memory bank (enqueue, contents), and the contrastive loss
  (forward and backward); and in the self-training diagnostics (analysis only). The
  extra forward pass of the CutMix image is not counted: it is the method, not its
  bookkeeping.

    python benchmarks/bench_step.py [--steps 30] [--data data/toy]

Without ``--data`` a small toy city (the default image size) is generated in a temporary
folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from step_timing import StepTimer

from rccr.config import load_config
from rccr.data.toycity import ToyCitySpec, make_toy_city
from rccr.training import Trainer


def _seconds_per_step(
    data: Path, mode: str, steps_count: int, out: Path, timer: StepTimer
) -> float:
    config = load_config(
        "toy",
        [
            f"data.source_root={data / 'gta5'}",
            f"data.target_root={data / 'cityscapes'}",
            f"train.mode={mode}",
            f"train.iterations={100 * (steps_count + 5)}",  # timed near the base lr
        ],
    )
    trainer = Trainer(config, out / mode)
    source = trainer._stream(trainer.source_set, 0)
    target = trainer._stream(trainer.target_set, 1)
    trainer.student.train()
    for _ in range(5):  # warm-up: allocator, first-call costs
        trainer._train_step(source, target)
    timer.reset()
    start = time.perf_counter()
    for _ in range(steps_count):
        trainer._train_step(source, target)
    return (time.perf_counter() - start) / steps_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per mode")
    parser.add_argument("--data", type=Path, default=None, help="an existing toy city")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, StepTimer() as timer:
        data = args.data
        if data is None:
            data = Path(tmp) / "toy"
            make_toy_city(data, ToyCitySpec(num_source=64, num_target_train=64,
                                            num_target_val=8), progress=False)  # fmt: skip
        times = {}
        for mode in ("source_only", "dacs", "rccr"):
            times[mode] = _seconds_per_step(data, mode, args.steps, Path(tmp) / "runs", timer)
            print(f"{mode:12s} {times[mode]:.4f} s/step")
        rccr_total = times["rccr"] * args.steps
        print(f"RCCR / DACS step time:        {times['rccr'] / times['dacs']:.2f}")
        print(f"DACS / source-only step time: {times['dacs'] / times['source_only']:.2f}")
        for kind in ("sampling", "bank", "loss", "diagnostics"):
            share = 100 * timer.spent.get(kind, 0.0) / rccr_total
            print(f"share of the RCCR step in {kind:11s} {share:5.2f}%")
        share = 100 * (timer.total - timer.spent.get("diagnostics", 0.0)) / rccr_total
        print(f"share in sampling + bank + loss: {share:.2f}%  (target: at most 5%)")
        share = 100 * timer.spent.get("diagnostics", 0.0) / rccr_total
        print(f"diagnostics (analysis only):     {share:.2f}%  (target: at most 3%)")


if __name__ == "__main__":
    main()
