"""Region-loss benchmark: the vectorised, chunked loss against the naive per-anchor loop.

The paper's setting on one GPU's worth of anchors, on CPU: 2 x (32 x 32) = 2048 anchors,
a 24000-entry bank (4000 per source per step, 2 sources, 3 steps), D = 128, class-aware
negatives, every anchor kept. The naive reference (``region_loss_references.py``,
the one the tests compare against) loops in Python over anchors and negatives, so it is
timed on a subset of anchors and scaled linearly to 2048; the output says so.

    python benchmarks/bench_region_loss.py [--naive-anchors 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from region_loss_references import naive_region_contrastive_loss
from torch.nn import functional as F

from rccr.method.region_contrast import region_contrastive_loss

ANCHORS, BANK, DIM, CLASSES = 2 * 32 * 32, 24000, 128, 19


def _best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` runs of ``fn`` (this machine is shared)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--naive-anchors", type=int, default=4, help="anchors the loop times")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (best kept)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    inputs = {
        "anchors": F.normalize(torch.randn(ANCHORS, DIM, generator=g), dim=1),
        "positives": F.normalize(torch.randn(ANCHORS, DIM, generator=g), dim=1),
        "anchor_labels": torch.randint(0, CLASSES, (ANCHORS,), generator=g),
        "anchor_confidence": torch.rand(ANCHORS, generator=g),
        "negatives": F.normalize(torch.randn(BANK, DIM, generator=g), dim=1),
        "negative_labels": torch.randint(0, CLASSES, (BANK,), generator=g),
    }
    kwargs = {"confidence_threshold": None, "class_aware": True}

    def forward() -> None:
        with torch.no_grad():
            region_contrastive_loss(**inputs, **kwargs)

    def forward_backward() -> None:
        anchors = inputs["anchors"].clone().requires_grad_(True)
        region_contrastive_loss(**{**inputs, "anchors": anchors}, **kwargs).backward()

    k = args.naive_anchors
    subset = {
        key: value[:k] if key in ("anchors", "positives", "anchor_labels", "anchor_confidence")
        else value
        for key, value in inputs.items()
    }  # fmt: skip

    def naive() -> None:
        with torch.no_grad():
            naive_region_contrastive_loss(**subset, **kwargs)

    fwd = _best_seconds(forward, args.repeats)
    fwd_bwd = _best_seconds(forward_backward, args.repeats)
    naive_k = _best_seconds(naive, 1)
    naive_full = naive_k * ANCHORS / k
    print(f"{ANCHORS} anchors x {BANK} negatives, D={DIM}, CPU, 2 threads")
    print(f"vectorised forward:            {fwd * 1e3:10.1f} ms")
    print(f"vectorised forward + backward: {fwd_bwd * 1e3:10.1f} ms")
    print(
        f"naive loop forward:            {naive_full * 1e3:10.1f} ms "
        f"(timed on {k} anchors: {naive_k * 1e3:.1f} ms, scaled linearly to {ANCHORS})"
    )
    print(f"speed-up, forward:             {naive_full / fwd:10.0f}x")
    print(f"speed-up, naive forward vs vectorised forward + backward: {naive_full / fwd_bwd:.0f}x")


if __name__ == "__main__":
    main()
