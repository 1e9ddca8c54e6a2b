"""GPU check of the paper preset: speed, memory, precision and evaluation throughput.

One short script (a few minutes on one GPU) that runs the paper-preset model (DeepLab-v2
ResNet-101, 512x512 crops, batch 2 source + 2 target) through the real trainer on a
synthetic street-scene set generated at full size (the toy city at 2048x1024), and prints:

- iterations per second and peak GPU memory for the source-only, DACS and RCCR steps;
- bf16 against fp32 RCCR step time;
- the share of the RCCR step spent in region sampling, the memory bank and the loss;
- evaluation throughput on 2048x1024 labels (1024x512 inference);
- whether batch 2+2 fits a 24 GB card.

    python benchmarks/gpu_check.py [--preset gta2cityscapes] [--steps 10]

``--tiny --device cpu`` runs the same code path on a narrow network and small images: a
smoke test of the script itself, not a measurement.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from step_timing import StepTimer

from rccr.config import Config, load_config
from rccr.data.toycity import ToyCitySpec, make_toy_city
from rccr.training import Trainer

GIB = 1024**3
CARD_GIB = 24.0


def _sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def _config(args: argparse.Namespace, data: Path, mode: str, precision: str) -> Config:
    overrides = [
        f"data.source_root={data / 'gta5'}",
        f"data.target_root={data / 'cityscapes'}",
        f"train.mode={mode}",
        f"train.precision={precision}",
        f"train.device={args.device}",
        # far beyond the steps timed (the RCCR trainer is timed twice), so every timed step
        # runs at about the base learning rate
        f"train.iterations={100 * (args.steps + args.warmup)}",
        "train.eval_every=0",
        "train.checkpoint_every=0",
        "model.pretrained=none",  # speed and memory only: random weights do as well
    ]
    if args.tiny:
        overrides += [
            *(f"data.{k}=[64, 32]" for k in ("source_size", "target_size", "val_size")),
            "data.crop=[32, 32]",
            "data.num_workers=0",
            "model.backbone=resnet18",
            "model.width=8",
            "method.bank_per_step=16",
        ]
    return load_config(args.preset, overrides)


def _steps_per_second(trainer: Trainer, steps: int, warmup: int, device: str) -> float:
    source = trainer._stream(trainer.source_set, 0)
    target = trainer._stream(trainer.target_set, 1) if trainer.method is not None else None
    trainer.student.train()
    for _ in range(warmup):  # allocator, cuDNN autotuning, first-call costs
        trainer._train_step(source, target)
    _sync(device)()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        trainer._train_step(source, target)
    _sync(device)()
    return steps / (time.perf_counter() - start)


def _peak_gib(device: str) -> float:
    return torch.cuda.max_memory_allocated() / GIB if device == "cuda" else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="gta2cityscapes")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes (CPU)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "gpu_check: no CUDA device here (use --tiny --device cpu for a smoke test)"
        )
    started = time.perf_counter()
    size = (64, 32) if args.tiny else (2048, 1024)
    spec = ToyCitySpec(num_source=8, num_target_train=8, num_target_val=8, width=size[0],
                       height=size[1])  # fmt: skip
    auto = "bf16" if args.device == "cuda" else "fp32"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_toy_city(data, spec, progress=False)
        print(f"synthetic data {size[0]}x{size[1]}: {time.perf_counter() - started:.0f} s")
        if args.device == "cuda":
            print(f"device: {torch.cuda.get_device_name()}")
        rates, peaks = {}, {}
        for mode in ("source_only", "dacs", "rccr"):
            trainer = Trainer(_config(args, data, mode, auto), Path(tmp) / "runs" / mode)
            rates[mode] = _steps_per_second(trainer, args.steps, args.warmup, args.device)
            peaks[mode] = _peak_gib(args.device)
            print(f"{mode:12s} {auto}: {rates[mode]:6.2f} it/s   peak {peaks[mode]:6.2f} GiB")
            if mode != "rccr":
                del trainer
        fp32 = Trainer(_config(args, data, "rccr", "fp32"), Path(tmp) / "runs" / "rccr_fp32")
        rate_fp32 = _steps_per_second(fp32, args.steps, args.warmup, args.device)
        del fp32
        print(f"rccr         fp32: {rate_fp32:6.2f} it/s   "
              f"{auto} step time / fp32 step time = {rate_fp32 / rates['rccr']:.2f}")  # fmt: skip
        with StepTimer(sync=_sync(args.device)) as timer:
            rate_timed = _steps_per_second(trainer, args.steps, 1, args.device)
            # The timer's synchronisation slows the step: shares are of the timed step.
            step_seconds = args.steps / rate_timed
            for kind in ("sampling", "bank", "loss"):
                share = 100 * timer.spent.get(kind, 0.0) / step_seconds
                print(f"share of the RCCR step in {kind:8s} {share:5.1f}%")
            print(f"share in sampling + bank + loss: {100 * timer.total / step_seconds:.1f}%")
        _sync(args.device)()
        start = time.perf_counter()
        trainer.evaluate(progress=False)
        _sync(args.device)()
        seconds = time.perf_counter() - start
        count = len(trainer.val_set)
        print(f"evaluation: {count / seconds:.2f} images/s at {size[0]}x{size[1]} labels "
              f"({count} images, {auto})")  # fmt: skip
        if args.device == "cuda":
            worst = max(peaks.values())
            verdict = "fits" if worst < CARD_GIB * 0.95 else "does NOT fit"
            print(f"batch 2+2 peak {worst:.2f} GiB: {verdict} a {CARD_GIB:.0f} GB card")
    print(f"total: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
