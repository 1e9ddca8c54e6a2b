"""Region-loss benchmark: our loss against the authors' release (re-implemented), on CPU.

Forward + backward (gradient w.r.t. the anchors), 1 thread, float32, D = 128, 19 classes,
class-aware negatives, confidence threshold 0.75, for three cases:

- (a) 4096 anchors x 24000 negatives, every anchor kept (confidence 1): the paper's step;
- (b) 1000 x 24000, every anchor kept;
- (c) 4096 x 24000, every other anchor below the threshold: ours drops those before any
  product, the release computes them and weights them 0.

The release is ``release_region_contrastive_loss`` (``region_loss_references.py``): chunks
of 2000 negatives under activation checkpointing, every anchor computed.

Time: the best of ``--repeats`` wall-clock runs, ours and the release's interleaved so that
the machine's load falls on both alike.

Peak memory: each (case, loss) runs in a fresh subprocess in which glibc serves every block
of 64 KiB or more with its own mmap (``MALLOC_MMAP_THRESHOLD_=65536``), so that a freed
tensor leaves the resident set at once and the resident set follows what is allocated. The
subprocess builds the inputs, runs forward + backward once (the first call also leaves
behind a few MiB of buffers that later calls reuse: the table is the steady state of a
training loop), resets the kernel's high-water mark of its resident set
(``/proc/self/clear_refs``), runs forward + backward again and reports the high-water mark
(``VmHWM``) minus the resident set just before. That counts everything the call holds at its
peak (tensors, autograd's saved tensors, BLAS workspace, the anchors' ``.grad``) but not its
inputs; the resolution is a 4 KiB page, plus up to about 1 MiB of allocator noise. Linux
only: elsewhere the memory columns read n/a.

    python benchmarks/bench_region_loss.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from region_loss_references import release_region_contrastive_loss
from torch import Tensor
from torch.nn import functional as F

from rccr.method.region_contrast import region_contrastive_loss

BANK, DIM, CLASSES, THRESHOLD = 24000, 128, 19, 0.75
CASES = {  # name -> (label, anchors, every other anchor filtered out)
    "a": ("(a) 4096 x 24000, all kept", 4096, False),
    "b": ("(b) 1000 x 24000, all kept", 1000, False),
    "c": ("(c) 4096 x 24000, half filtered out", 4096, True),
}
LOSSES: dict[str, Callable[..., Tensor]] = {
    "ours": lambda **inputs: region_contrastive_loss(**inputs, confidence_threshold=THRESHOLD),
    "release": lambda **inputs: release_region_contrastive_loss(
        **inputs, confidence_threshold=THRESHOLD
    ),
}
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _inputs(anchors: int, filtered: bool) -> dict[str, Tensor]:
    """Unit-norm random features, random labels; confidence 1, or 0.5 on every other anchor."""
    g = torch.Generator().manual_seed(0)
    confidence = torch.ones(anchors)
    if filtered:
        confidence[1::2] = 0.5
    return {
        "anchors": F.normalize(torch.randn(anchors, DIM, generator=g), dim=1),
        "positives": F.normalize(torch.randn(anchors, DIM, generator=g), dim=1),
        "anchor_labels": torch.randint(0, CLASSES, (anchors,), generator=g),
        "anchor_confidence": confidence,
        "negatives": F.normalize(torch.randn(BANK, DIM, generator=g), dim=1),
        "negative_labels": torch.randint(0, CLASSES, (BANK,), generator=g),
    }


def _forward_backward(loss: Callable[..., Tensor], inputs: dict[str, Tensor]) -> None:
    anchors = inputs["anchors"].clone().requires_grad_(True)
    loss(**{**inputs, "anchors": anchors}).backward()


def _status_kib(field: str) -> int:
    """A ``VmRSS``/``VmHWM``-like field of /proc/self/status, in KiB."""
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert match is not None, field
    return int(match.group(1))


def _measure_peak(case: str, loss: str) -> None:
    """In the subprocess: print the peak resident-set growth (KiB) of one forward + backward."""
    torch.set_num_threads(1)
    _, anchors, filtered = CASES[case]
    inputs = _inputs(anchors, filtered)
    _forward_backward(LOSSES[loss], inputs)  # buffers kept for later calls are not the peak
    _CLEAR_REFS.write_text("5")  # the high-water mark restarts at the current resident set
    before = _status_kib("VmRSS")
    _forward_backward(LOSSES[loss], inputs)
    print(_status_kib("VmHWM") - before)


def _peak_mib(case: str, loss: str) -> float | None:
    """Peak memory of one forward + backward, measured in a fresh subprocess."""
    if not _CLEAR_REFS.exists():
        return None
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, __file__, "--peak-of", case, loss],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(done.stdout.split()[-1]) / 1024


def _best_seconds(inputs: dict[str, Tensor], repeats: int) -> dict[str, float]:
    """Fastest forward + backward of each loss, the losses interleaved (the machine is shared)."""
    best = dict.fromkeys(LOSSES, float("inf"))
    for _ in range(repeats):
        for name, loss in LOSSES.items():
            start = time.perf_counter()
            _forward_backward(loss, inputs)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (best kept)")
    parser.add_argument("--peak-of", nargs=2, metavar=("CASE", "LOSS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_of:
        _measure_peak(*args.peak_of)
        return
    torch.set_num_threads(1)
    print(
        f"Region contrastive loss, forward + backward: CPU, 1 thread, float32, D={DIM}, "
        f"{CLASSES} classes, class-aware negatives; time: best of {args.repeats}"
    )
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    header = (
        f"{'case':<38}{'ours':>10}{'release':>10}{'speed-up':>10}"
        f"{'peak ours':>13}{'peak release':>14}{'ours/release':>14}"
    )
    print(header)
    for case, (label, anchors, filtered) in CASES.items():
        seconds = _best_seconds(_inputs(anchors, filtered), args.repeats)
        peaks = {name: _peak_mib(case, name) for name in LOSSES}
        ratio = (
            "n/a"
            if peaks["ours"] is None or peaks["release"] is None
            else f"{peaks['ours'] / peaks['release']:.2f}"
        )
        print(
            f"{label:<38}{seconds['ours'] * 1e3:>8.0f}ms{seconds['release'] * 1e3:>8.0f}ms"
            f"{seconds['release'] / seconds['ours']:>9.2f}x"
            f"{_mib(peaks['ours']):>13}{_mib(peaks['release']):>14}{ratio:>14}"
        )
    print(f"load average at end:   {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("speed-up: release time / ours; ours/release: ours' peak memory / the release's")


if __name__ == "__main__":
    main()
