"""benchmarks/gpu_check.py runs end to end (on CPU, at smoke-test sizes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu_check.py"


def test_gpu_check__smoke_run_prints_every_figure() -> None:
    command = [sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--steps", "2",
               "--warmup", "1"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for mode in ("source_only", "dacs", "rccr"):
        assert f"{mode:12s} fp32:" in out
    assert "fp32 step time = " in out
    for kind in ("sampling", "bank", "loss"):
        assert f"share of the RCCR step in {kind}" in out
    assert "evaluation: " in out and "images/s at 64x32 labels (8 images" in out


def test_gpu_check__without_cuda_says_how_to_smoke_test() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    if torch.cuda.is_available():
        return
    assert result.returncode != 0
    assert "no CUDA device here (use --tiny --device cpu" in result.stderr
