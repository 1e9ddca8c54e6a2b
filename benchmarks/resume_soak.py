"""Resume soak: a toy run SIGKILLed at random moments and resumed each time must end
bit-identical to the same run left alone.

Not part of CI (a few minutes on 2 cores). It trains ``--iterations`` steps twice through
``python -m rccr train``: once uninterrupted, once killed with SIGKILL at ``--kills``
random moments (seeded), relaunching the same command after each kill. Then it checks:

- every ``iter_<N>.pt`` on disk after each kill loads and holds iteration N (a partial
  write is never taken for a checkpoint);
- the final checkpoints are equal tensor for tensor: student, optimiser, RNG, and in the
  DACS/RCCR modes teacher, projection heads, memory bank and the method's generator;
- metrics.jsonl has one record per logged iteration, none missing, none repeated, and the
  same loss values as the uninterrupted run;
- the final evaluation is the same.

    nice -n 10 python benchmarks/resume_soak.py [--mode rccr] [--iterations 2000]
        [--kills 5] [--seed 0] [--work DIR]

Prints each kill (when, what was on disk) and the result; exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from rccr.config import load_config, save_config
from rccr.data.toycity import ToyCitySpec, make_toy_city
from rccr.runs import iteration_files, load_checkpoint, load_run

LOG_EVERY = 10
CHECKPOINT_EVERY = 100
SPEC = ToyCitySpec(num_source=16, num_target_train=16, num_target_val=4, width=64, height=32)


def _config_file(work: Path, data: Path, mode: str, iterations: int) -> Path:
    config = load_config(
        "toy",
        [
            f"name=soak-{mode}",
            f"data.source_root={data / 'gta5'}",
            f"data.target_root={data / 'cityscapes'}",
            *(f"data.{k}=[64, 32]" for k in ("source_size", "target_size", "val_size")),
            "data.crop=[32, 32]",
            "model.width=8",
            f"train.mode={mode}",
            f"train.iterations={iterations}",
            "train.batch_size=2",
            f"train.log_every={LOG_EVERY}",
            "train.eval_every=0",
            f"train.checkpoint_every={CHECKPOINT_EVERY}",
            "train.threads=1",
            "method.bank_per_step=64",
        ],
    )
    path = work / "config.yaml"
    path.write_text(save_config(config))
    return path


def _train_command(config: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rccr",
        "train",
        "--config",
        str(config),
        "--out",
        str(out),
        "--no-progress",
    ]


def _last_logged(out: Path) -> int:
    path = out / "metrics.jsonl"
    if not path.exists():
        return 0
    for line in reversed(path.read_text().splitlines()):
        try:
            return int(json.loads(line)["iteration"])
        except (ValueError, KeyError):
            continue  # a line being written
    return 0


def _check_checkpoints(out: Path) -> list[str]:
    problems = []
    for iteration, path in iteration_files(out / "checkpoints", ".pt").items():
        try:
            if load_checkpoint(path)["iteration"] != iteration:
                problems.append(f"{path}: holds another iteration")
        except ValueError as exc:
            problems.append(f"a partial or bad file taken for a checkpoint: {exc}")
    return problems


def _kill_at(config: Path, out: Path, target: int, delay: float) -> dict[str, Any]:
    """Run until ``target`` is logged, wait ``delay`` s more, SIGKILL; say what was seen."""
    before = max(iteration_files(out / "checkpoints", ".pt"), default=0)
    proc = subprocess.Popen(
        _train_command(config, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    while proc.poll() is None and _last_logged(out) < target:
        time.sleep(0.01)
    time.sleep(delay)
    finished = proc.poll() is not None
    proc.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate()
    if finished and proc.returncode != 0:
        raise RuntimeError(f"training failed before the kill:\n{stderr}")
    return {
        "target": target,
        "resumed_from": before,
        "logged_at_kill": _last_logged(out),
        "checkpoints": sorted(iteration_files(out / "checkpoints", ".pt")),
        "temporaries": len(list((out / "checkpoints").glob(".iter_*.tmp"))),
        "finished_before_kill": finished,
        "problems": _check_checkpoints(out),
    }


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Paths at which two checkpoint states differ (tensors compared exactly)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        same = a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
        return [] if same else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where} (keys differ)"]
        return [d for k in a for d in _differences(a[k], b[k], f"{where}/{k}")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return [f"{where} (lengths differ)"]
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in _differences(x, y, f"{where}/{i}")]
    return [] if a == b else [where]


def _compare_runs(straight: Path, soaked: Path, iterations: int) -> list[str]:
    problems = []
    a, b = load_run(straight), load_run(soaked)
    if b.status != "finished" or b.iteration != iterations:
        problems.append(f"soaked run ended {b.status} at iteration {b.iteration}")
    logged = [r["iteration"] for r in b.records]
    expected = list(range(LOG_EVERY, iterations + 1, LOG_EVERY))
    if logged != expected:
        missing = sorted(set(expected) - set(logged))
        repeated = sorted({i for i in logged if logged.count(i) > 1})
        problems.append(f"metrics.jsonl: missing {missing[:10]}, repeated {repeated[:10]}")
    timing = {"time", "sec_per_iter"}
    for ra, rb in zip(a.records, b.records, strict=False):
        values_a = {k: v for k, v in ra.items() if k not in timing}
        values_b = {k: v for k, v in rb.items() if k not in timing}
        if values_a != values_b:
            problems.append(f"metrics at iteration {ra['iteration']} differ: {values_a} {values_b}")
            break
    state_a = load_checkpoint(a.checkpoints[iterations])
    state_b = load_checkpoint(b.checkpoints[iterations])
    problems += [f"final checkpoint differs at {d}" for d in _differences(state_a, state_b)]
    if a.evals[iterations].miou != b.evals[iterations].miou:
        problems.append("final evaluations differ")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", default="rccr", choices=["source_only", "dacs", "rccr"])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="resume_soak_"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "toy"
    if not (data / "toycity.json").exists():
        make_toy_city(data, SPEC, workers=1, progress=False)
    config = _config_file(work, data, args.mode, args.iterations)
    print(
        f"resume soak: {args.mode}, {args.iterations} iterations, {args.kills} SIGKILLs "
        f"(seed {args.seed}), in {work}"
    )

    tick = time.perf_counter()
    subprocess.run(_train_command(config, work / "straight"), check=True, stdout=subprocess.DEVNULL)
    straight_seconds = time.perf_counter() - tick

    rng = random.Random(args.seed)
    targets = sorted(rng.sample(range(1, args.iterations), args.kills))
    soaked = work / "soaked"
    tick = time.perf_counter()
    problems = []
    for number, target in enumerate(targets, start=1):
        kill = _kill_at(config, soaked, target, rng.uniform(0.0, 0.5))
        problems += kill["problems"]
        late = ", FINISHED before the kill" if kill["finished_before_kill"] else ""
        print(
            f"kill {number}: aimed after iteration {target}, resumed from "
            f"iter_{kill['resumed_from']}, last logged {kill['logged_at_kill']}, "
            f"checkpoints on disk {kill['checkpoints'][-3:]}, temporary files "
            f"{kill['temporaries']}{late}"
        )
    subprocess.run(_train_command(config, soaked), check=True, stdout=subprocess.DEVNULL)
    soaked_seconds = time.perf_counter() - tick
    problems += _compare_runs(work / "straight", soaked, args.iterations)

    print(
        f"uninterrupted run: {straight_seconds:.0f} s; killed {args.kills} times and "
        f"resumed: {soaked_seconds:.0f} s"
    )
    if problems:
        print("FAILED:\n" + "\n".join(f"  {p}" for p in problems))
        return 1
    print(
        "PASSED: final checkpoints equal tensor for tensor (student, optimiser, RNG"
        + (", teacher, heads, bank, generator" if args.mode != "source_only" else "")
        + f"); metrics.jsonl complete ({args.iterations // LOG_EVERY} records, no gaps or "
        "duplicates) with identical losses; same final evaluation"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
