"""The UDA accuracy benchmark: source-only, DACS, RCCR, each RCCR ablation and the oracle.

Trains every method for every seed with the package's trainer, one run directory each
(``<runs-dir>/<preset>/<method>_seed<k>``, so the dashboard can show them), each from the
preset's shared warm start (``WARM_START``, trained first, in ``<runs-dir>/<preset>/
warm_start``), then scores the **last** checkpoint of each on target val and writes
``<out>/<preset>/``:

- ``results.csv``: one row per run (method, seed, iteration, mIoU, per-class IoU, and the
  best-on-val checkpoint, an oracle choice that peeks at target labels);
- ``curves.csv``: one row per run and evaluated checkpoint (what the plot draws);
- ``results.md``: mean ± std over seeds of the last-checkpoint mIoU, the share of the
  source-only-to-oracle gap closed, the paired differences with their 95% intervals, the
  self-training diagnostics, and per-class IoU;
- ``paired.csv``, ``diagnostics.csv``: those two tables;
- ``miou_curves.png``: mIoU against iteration, one line per method, a band across seeds.

::

    python benchmarks/uda_benchmark.py --preset toy [--seeds 0 1 2 3 4] [--methods ...]
        [--out benchmarks/results] [--runs-dir runs/bench] [--data DIR] [--jobs N]
        [--dev] [--aggregate-only] [-- key=value ...]

``--dev`` (toy preset) scores on a labelled dev set of target-style images instead of
target val (suite ``toy-dev``): where the benchmark's schedule was chosen. Its runs start
from the same warm start as the target-val suite's (source labels only; its own
evaluations are on target val, and nothing is chosen from them).

It resumes: finished runs are skipped, interrupted ones continue from their newest
checkpoint (the trainer's own resume). Each finished run is also **recorded** in
``<out>/<preset>/runs/<method>_seed<k>`` (its config, status, metrics and evaluations: what
the report reads, no checkpoints), and the report reads the records: committed with the
results, they let a benchmark longer than one machine's life go on where it stopped on
another. The warm start's record also keeps its network (``weights.pt``), from which its
run directory is rebuilt there instead of training it again. A run directory or a record
that holds another config is refused, naming the keys that differ.

``key=value`` overrides apply to every run, after the preset's benchmark schedule
(``SCHEDULES``) and before the method's own settings. On the toy preset the toy city is
generated into ``--data`` (default ``data/toy``) if that folder is missing. Paper presets
run unchanged; point them at your prepared data with ``data.source_root=...
data.target_root=...`` and at weights with ``model.pretrained=...``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

import torch

# The report is a sibling module: on the path when this file runs as a script, and on
# pytest's (pyproject.toml).
import uda_report

from rccr.analysis.benchmark import run_name
from rccr.cli import EXIT_INTERRUPTED
from rccr.config import Config, ConfigError, absolute_paths, load_config
from rccr.data.files import DataError
from rccr.data.toycity import ToyCitySpec, make_toy_city
from rccr.runs import RunError, load_run
from rccr.training import trainer

# Each method is a set of overrides on the preset. The ablations each remove one component
# of RCCR (README, "Training and evaluation"); the control runs every part of RCCR (the
# CutMix forward pass, the bank, the heads) but gives the contrastive loss zero weight, so
# that RCCR - control measures the loss term itself.
METHODS: dict[str, tuple[str, ...]] = {
    "source_only": ("train.mode=source_only",),
    "dacs": ("train.mode=dacs",),
    "rccr": ("train.mode=rccr",),
    "rccr_no_contrast": ("train.mode=rccr", "method.contrast_weight=0"),
    "rccr_no_bank": ("train.mode=rccr", "method.bank=false"),
    "rccr_no_momentum_head": ("train.mode=rccr", "method.momentum_head=false"),
    "rccr_positive_all": ("train.mode=rccr", "method.positive_sampling=all"),
    "rccr_negative_random": ("train.mode=rccr", "method.negative_sampling=random"),
    "oracle": ("train.mode=oracle",),
    # The BatchNorm-confound check of benchmark v1 (dev set): the control, and RCCR, whose
    # CutMix forward leaves the running statistics alone. Only meaningful where BatchNorm
    # trains (v1); v2 freezes it, so they are outside the default set.
    "rccr_no_contrast_no_cutmix_bn": (
        "train.mode=rccr",
        "method.contrast_weight=0",
        "method.cutmix_updates_bn=false",
    ),
    "rccr_no_cutmix_bn": ("train.mode=rccr", "method.cutmix_updates_bn=false"),
}
_CONFOUND_CHECKS = ("rccr_no_contrast_no_cutmix_bn", "rccr_no_cutmix_bn")
DEFAULT_METHODS = [m for m in METHODS if m not in _CONFOUND_CHECKS]

# A stand-in for ImageNet pretraining, per preset: one source-only model trained from
# scratch (BatchNorm training), shared by every method and seed. Every benchmark run then
# starts from its last checkpoint with BatchNorm frozen at its statistics, as the paper
# presets start from pretrained weights with frozen BatchNorm. It uses source labels only,
# never target labels. Its folder is ``<runs-dir>/<suite>/warm_start``.
WARM_START: dict[str, tuple[str, ...]] = {
    "toy": (
        "train.mode=source_only",
        "train.iterations=3000",
        "train.batch_size=8",
        "train.eval_every=1000",
        "train.checkpoint_every=1000",
        "train.threads=1",
        "train.seed=0",
    ),
}

# The benchmark's schedule per preset, applied before the user's overrides and the method's
# own settings. Every run starts from the warm start with BatchNorm frozen. The toy values
# are chosen on the dev set (``--dev``), never on target val: benchmarks/results/toy-dev/
# schedule_choice.md holds those runs and their numbers.
SCHEDULES: dict[str, tuple[str, ...]] = {
    "toy": (
        "train.iterations=1000",
        "train.batch_size=8",
        "train.lr=0.005",  # half the preset's: from the warm start DACS diverges at 0.01
        "train.eval_every=250",
        "train.checkpoint_every=250",
        "train.threads=1",
        "model.freeze_bn=true",
    ),
}
JOBS = {"toy": 2}


@dataclass(frozen=True)
class Job:
    """One run of the benchmark: a method, a seed, its overrides and run directory."""

    method: str
    seed: int
    overrides: tuple[str, ...]
    config: Config
    run_dir: Path


def plan(
    preset: str, methods: Sequence[str], seeds: Sequence[int], overrides: Sequence[str],
    runs_dir: Path, suite: str | None = None, warm_overrides: Sequence[str] | None = None,
) -> list[Job]:  # fmt: skip
    """Every (method, seed) run, seed by seed so partial results cover whole seeds first.

    Runs go to ``runs_dir/<suite>/<method>_seed<k>``; the suite defaults to the preset's
    name (``toy-dev`` for the dev set). Every run starts from the preset's warm start, whose
    data overrides are ``warm_overrides`` (default: ``overrides``): the dev suite's runs
    start from the target-val suite's warm start.

    Raises:
        ConfigError: naming the key, if an override is invalid.
    """
    jobs = []
    stem = suite or Path(preset).stem
    warm = warm_start(preset, overrides if warm_overrides is None else warm_overrides, runs_dir)
    start = () if warm is None else (f"model.pretrained={warm_start_weights(warm)}",)
    for seed in seeds:
        for method in methods:
            name = run_name(method, seed)
            items = (*SCHEDULES.get(preset, ()), *start, *overrides, *METHODS[method],
                     f"train.seed={seed}", f"name={stem}-{name}")  # fmt: skip
            config = load_config(preset, list(items))
            jobs.append(Job(method, seed, items, config, runs_dir / stem / name))
    return jobs


def warm_start(preset: str, overrides: Sequence[str], runs_dir: Path) -> Job | None:
    """The preset's shared warm-start run (``WARM_START``), or None if it has none.

    Of the command's overrides it takes the ``data.*``, ``model.*`` and ``eval.*`` ones (the
    data roots, the network): its schedule is its own, so that runs with other schedules and
    method settings share it. Its folder is ``<runs_dir>/<preset>/warm_start`` for every
    suite of the preset: it trains on source labels only, so the dev suite starts from the
    same network as the target-val suite.
    """
    stem = Path(preset).stem
    if stem not in WARM_START:
        return None
    shared = [item for item in overrides if item.startswith(("data.", "model.", "eval."))]
    items = (*shared, *WARM_START[stem], f"name={stem}-warm_start")
    config = load_config(preset, list(items))
    return Job("warm_start", config.train.seed, items, config, runs_dir / stem / "warm_start")


def warm_start_weights(job: Job) -> Path:
    """The checkpoint every benchmark run starts from: the warm start's last (absolute)."""
    return (job.run_dir / "checkpoints" / f"iter_{job.config.train.iterations}.pt").absolute()


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts."""
    keys = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            keys += _differences(left, right, f"{prefix}{key}.")
        elif left != right:
            keys.append(f"{prefix}{key} ({left!r} there, {right!r} here)")
    return keys


def portable(config: Config) -> dict[str, Any]:
    """The config as a nested dict with every path relative to the working directory where
    it lies under it: what identifies a run, whichever folder the checkout is in and whether
    the command named its paths relative (``--data data/toy``) or absolute (config.yaml).

    Weights from a warm start (``.../warm_start/checkpoints/iter_N.pt``) become
    ``<warm start>/iter_N.pt`` wherever the runs directory is: the warm start is identified
    by its own config, checked against its record.
    """
    here = Path.cwd()
    pretrained = config.model.pretrained
    if pretrained is not None and Path(pretrained).parts[-3:-1] == ("warm_start", "checkpoints"):
        config = replace(config, model=replace(config.model, pretrained="<warm start>/"
                                                + Path(pretrained).name))  # fmt: skip

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: walk(inner) for key, inner in value.items()}
        if isinstance(value, str) and os.path.isabs(value) and Path(value).is_relative_to(here):
            return Path(value).relative_to(here).as_posix()
        return value

    result: dict[str, Any] = walk(absolute_paths(config).to_dict())
    return result


def is_finished(job: Job) -> bool:
    """Whether the job's folder (a run directory or its record) holds this run, trained to
    its last iteration and scored.

    The saved config is compared by value (paths by :func:`portable`), so a run written
    before a new config key (with its default) was added still counts as the same run.

    Raises:
        RunError: if the folder holds a different run (another config) or an unreadable
            config.yaml.
    """
    if not (job.run_dir / "config.yaml").exists():
        return False  # never started (or stopped before its first write)
    run = load_run(job.run_dir)
    if run.config is None:
        raise RunError("; ".join(run.problems) or f"{job.run_dir}: no usable config.yaml")
    saved, wanted = portable(run.config), portable(job.config)
    if saved != wanted:
        differ = _differences(saved, wanted)
        raise RunError(
            f"{job.run_dir}: holds a run with a different config ({', '.join(differ)}); "
            "move that folder away, or use another --runs-dir (for a run directory) or "
            "--out (for a record)"
        )
    last = job.config.train.iterations
    return run.status == "finished" and run.iteration == last and last in run.evals


# What a record keeps of a finished run: every file the report reads, none of the
# checkpoints or bank snapshots (megabytes each).
RECORD_FILES = ("config.yaml", "status.json", "metrics.jsonl", "skipped.jsonl")


def record_of(job: Job, records: Path) -> Job:
    """The job with its folder moved to its record, ``records/<method>_seed<k>``."""
    return replace(job, run_dir=records / job.run_dir.name)


def write_record(job: Job, records: Path, weights: bool = False) -> Path:
    """Copy a finished run's small files (config, status, metrics, evaluations) to its record;
    with ``weights``, also its last checkpoint's network (``weights.pt``: the ``student``
    and the ``config``, which ``model.pretrained`` loads; for the warm start).

    Records live beside the results (``<out>/<suite>/runs``) and are committed with them, so
    a benchmark longer than one machine's life resumes from what earlier machines finished.
    The old record, if any, is replaced only once the new one is complete.
    """
    record = record_of(job, records).run_dir
    records.mkdir(parents=True, exist_ok=True)
    partial = record.with_name(f".{record.name}.partial")
    old = record.with_name(f".{record.name}.old")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for name in RECORD_FILES:
        if (job.run_dir / name).is_file():
            shutil.copy2(job.run_dir / name, partial / name)
    shutil.copytree(job.run_dir / "eval", partial / "eval")
    if weights:
        last = job.config.train.iterations
        state = torch.load(job.run_dir / "checkpoints" / f"iter_{last}.pt", map_location="cpu",
                           weights_only=True)  # fmt: skip
        network = {"student": state["student"], "config": state["config"], "iteration": last}
        torch.save(network, partial / WEIGHTS)
    shutil.rmtree(old, ignore_errors=True)
    if record.exists():
        record.rename(old)
    partial.rename(record)
    shutil.rmtree(old, ignore_errors=True)
    return record


WEIGHTS = "weights.pt"  # the warm start's network in its record


def record_warm_start(warm: Job | None, records: Path) -> None:
    """Record the warm start with its network once it is finished, if it is not yet.

    Raises:
        RunError: if the record holds another warm start (every record was trained from
            it), or the run directory an unreadable or different one.
    """
    if warm is None or not is_finished(warm):
        return
    recorded = record_of(warm, records)
    if not is_finished(recorded) or not (recorded.run_dir / WEIGHTS).is_file():
        write_record(warm, records, weights=True)


def restore_warm_start(warm: Job, records: Path) -> bool:
    """Rebuild the warm start's run directory from its record (its files, and its network as
    the last checkpoint) if the directory is missing; True if it did.

    Training it again would give the same network (deterministic on CPU) after about 20
    minutes on the toy preset (3000 steps at 0.41 s here); the record's ``weights.pt`` is
    that network.
    """
    recorded = record_of(warm, records)
    weights = recorded.run_dir / WEIGHTS
    if warm.run_dir.exists() or not weights.is_file() or not is_finished(recorded):
        return False
    partial = warm.run_dir.with_name(f".{warm.run_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(recorded.run_dir, partial, ignore=shutil.ignore_patterns(WEIGHTS))
    (partial / "checkpoints").mkdir()
    shutil.copy2(weights, partial / "checkpoints" / f"iter_{warm.config.train.iterations}.pt")
    partial.rename(warm.run_dir)
    return True


def settle(job: Job, records: Path) -> Job:
    """Where the job's finished run is: its record, else its run directory (recorded now);
    the job unchanged when neither holds it finished.

    Raises:
        RunError: if the record or the run directory holds a different run (another
            config), or an unreadable config.yaml.
    """
    recorded = record_of(job, records)
    if is_finished(recorded):
        return recorded
    if is_finished(job):
        write_record(job, records)
        return recorded
    return job


def train_in_process(job: Job) -> bool:
    """Train (or resume) one run here; False if it was interrupted (Ctrl-C, SIGTERM)."""
    run = trainer.Trainer(job.config, job.run_dir).run(progress=sys.stderr.isatty())
    return run.status == "finished"


def _command(preset: str, job: Job) -> list[str]:
    return [sys.executable, "-m", "rccr", "train", "--config", preset, "--out",
            str(job.run_dir), "--no-progress", *job.overrides]  # fmt: skip


def train_in_subprocesses(
    preset: str, jobs: Sequence[Job], workers: int, logs: Path, records: Path
) -> int:
    """Run ``rccr train`` for each job, ``workers`` at a time; returns how many did not finish.

    Each run's output goes to ``logs/<method>_seed<k>.log``; each finished run is recorded
    in ``records`` as soon as it finishes. SIGTERM or Ctrl-C stops the children (each saves
    a checkpoint first) and re-raises KeyboardInterrupt.
    """
    logs.mkdir(parents=True, exist_ok=True)
    queue, running, failed = list(jobs), {}, 0

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while queue or running:
            while queue and len(running) < workers:
                job = queue.pop(0)
                log = logs / f"{job.run_dir.name}.log"
                print(f"start {job.run_dir} (log: {log})", flush=True)
                with open(log, "a") as handle:
                    child = subprocess.Popen(_command(preset, job), stdout=handle,
                                             stderr=subprocess.STDOUT)  # fmt: skip
                running[child] = (job, log)
            time.sleep(1.0)
            for child in [c for c in running if c.poll() is not None]:
                job, log = running.pop(child)
                if child.returncode not in (0, EXIT_INTERRUPTED):
                    failed += 1
                    tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
                    print(f"FAILED {job.run_dir}: {tail[0]} (see {log})", flush=True)
                elif not is_finished(job):  # stopped by a signal: saved, resumes next time
                    failed += 1
                    print(f"stopped before the end: {job.run_dir} (run again to resume)")
                else:
                    write_record(job, records)
                    print(f"done {job.run_dir}", flush=True)
    except KeyboardInterrupt:
        for child in running:
            child.send_signal(signal.SIGTERM)  # the trainer saves a checkpoint, then exits
        for child in running:
            child.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    return failed


def ensure_toy_data(data: Path, spec: ToyCitySpec | None = None) -> list[str]:
    """Generate the toy city into ``data`` if the folder is missing; its data overrides."""
    if not data.exists():
        print(f"generating the toy city in {data} ...", flush=True)
        print(make_toy_city(data, spec or ToyCitySpec(), progress=False), flush=True)
    return [f"data.source_root={data / 'gta5'}", f"data.target_root={data / 'cityscapes'}"]


# The dev set: target-style images no other split shares (their own seed), with labels, to
# choose the benchmark's schedule and settings without looking at target val.
DEV_SEED = 1000


def ensure_dev_target(data: Path) -> list[str]:
    """A dev target set beside the toy city ``data``; the overrides that score on it.

    ``<data>-dev/generated`` holds target val images of the toy city's size and count drawn
    with ``DEV_SEED``; ``<data>-dev/cityscapes`` links its ``val`` to them and its
    ``train`` to the toy city's unlabelled target train split, so training is unchanged
    and only the images scored differ.

    Raises:
        DataError: if ``data`` has no readable toycity.json.
    """
    manifest = data / "toycity.json"
    try:
        spec = ToyCitySpec(**json.loads(manifest.read_text())["spec"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{manifest}: not a toy city manifest ({exc})") from exc
    dev = data.parent / f"{data.name}-dev"
    dev_spec = replace(spec, num_source=1, num_target_train=1, seed=DEV_SEED)
    make_toy_city(dev / "generated", dev_spec, progress=False)
    for kind in ("leftImg8bit", "gtFine"):
        links = dev / "cityscapes" / kind
        links.mkdir(parents=True, exist_ok=True)
        train = data / "cityscapes" / kind / "train"
        val = dev / "generated" / "cityscapes" / kind / "val"
        for split, target in (("train", train), ("val", val)):
            if not (links / split).is_symlink():
                (links / split).symlink_to(target.resolve(), target_is_directory=True)
    return [f"data.source_root={data / 'gta5'}", f"data.target_root={dev / 'cityscapes'}"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--preset", default="toy", help="preset name or YAML file (default toy)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--methods", nargs="+", choices=list(METHODS), default=DEFAULT_METHODS,
                   help=f"default: all but {', '.join(_CONFOUND_CHECKS)}")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--runs-dir", type=Path, default=Path("runs/bench"))
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="toy preset: toy-city folder, generated if missing (default data/toy)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="runs trained side by side (default: 2 for toy, else 1)",
    )
    p.add_argument(
        "--dev",
        action="store_true",
        help=f"toy preset: score on a labelled dev set of target-style images (seed "
        f"{DEV_SEED}) instead of target val, into the suite toy-dev",
    )
    p.add_argument(
        "--aggregate-only",
        action="store_true",
        help="train nothing; rewrite the results from the run directories",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides for every run, e.g. train.iterations=100 (after "
                   "`--` when they follow --seeds or --methods)")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Train what is missing, then aggregate; returns the exit status."""
    args = _parser().parse_args(argv)
    start = time.time()
    command = shlex.join(["python", "benchmarks/uda_benchmark.py", *(argv or sys.argv[1:])])
    try:
        overrides = list(args.overrides)
        stem = Path(args.preset).stem
        suite = f"{stem}-dev" if args.dev else stem
        warm_overrides = overrides  # the warm start is scored on target val in every suite
        if stem == "toy":
            data = args.data or Path("data/toy")
            found = ensure_toy_data(data)
            warm_overrides = found + overrides
            overrides = (ensure_dev_target(data) if args.dev else found) + overrides
        elif args.data is not None or args.dev:
            raise ConfigError("--data and --dev: only for the toy preset; use "
                              "data.source_root=... and data.target_root=... for real "
                              "datasets")  # fmt: skip
        jobs = plan(args.preset, args.methods, args.seeds, overrides, args.runs_dir, suite,
                    warm_overrides)  # fmt: skip
        warm = warm_start(args.preset, warm_overrides, args.runs_dir)
        records = args.out / suite / "runs"
        warm_records = args.out / stem / "runs"  # the warm start's, shared by the suites
        record_warm_start(warm, warm_records)
        jobs = [settle(job, records) for job in jobs]
        todo = [] if args.aggregate_only else [j for j in jobs if not is_finished(j)]
        todo.sort(key=lambda j: not (j.run_dir / "config.yaml").exists())  # resume started first
        if warm is not None and todo and restore_warm_start(warm, warm_records):
            print(f"restored the shared warm start {warm.run_dir} from its record", flush=True)
        if warm is not None and is_finished(warm):
            warm = None  # trained (and recorded) already
    except (ConfigError, RunError, DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.aggregate_only:
        print(f"{len(jobs)} runs: aggregating what their directories hold, training nothing")
    else:
        print(f"{len(jobs)} runs, {len(jobs) - len(todo)} already finished, {len(todo)} to train")
    failed, interrupted = 0, False
    workers = args.jobs or JOBS.get(stem, 1)
    try:
        if warm is not None and todo:  # every run starts from it: train it first
            print(f"train the shared warm start {warm.run_dir}", flush=True)
            if not train_in_process(warm):
                raise KeyboardInterrupt
            record_warm_start(warm, warm_records)
        if workers > 1 and len(todo) > 1:
            logs = args.runs_dir / suite / "logs"
            failed = train_in_subprocesses(args.preset, todo, workers, logs, records)
        else:
            for job in todo:
                print(f"train {job.run_dir}", flush=True)
                try:
                    if not train_in_process(job):
                        interrupted = True
                        break
                    write_record(job, records)
                except (trainer.TrainingError, RunError, DataError) as exc:
                    failed += 1
                    print(f"FAILED {job.run_dir}: {exc}", flush=True)
    except KeyboardInterrupt:
        interrupted = True
    jobs = [settle(job, records) for job in jobs]  # the runs finished now: their records
    if todo:
        uda_report.log_invocation(records, start, time.time(), len(todo), command)
    schedule = SCHEDULES.get(stem)
    notes = [f"Benchmark schedule of this preset, applied before the command's overrides: "
             f"`{' '.join(schedule)}`."] if schedule else []  # fmt: skip
    out = args.out / suite
    scored_on = "dev set" if args.dev else "target val"
    written = uda_report.write_results(jobs, out, records, command, notes, scored_on)
    for path in written:
        print(f"wrote {path}")
    if interrupted:
        print("interrupted: run the same command again to resume")
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
