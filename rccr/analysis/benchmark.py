"""A UDA benchmark's results folder, read back: what ``benchmarks/uda_benchmark.py`` wrote.

The benchmark trains every method with the same seeds and writes, into one folder::

    results.csv       one row per run: method, seed, finished, iteration, mIoU19, iou_<class>
    curves.csv        one row per run and evaluated checkpoint
    paired.csv        per comparison: mean difference over seeds and its 95% interval
    runs/<method>_seed<k>/   each finished run's record (config, metrics, evaluations)

:func:`read_benchmark` reads that folder for notebook 07 and anyone comparing methods::

    bench = read_benchmark("benchmarks/results/toy")
    bench.results.groupby("method")["mIoU19"].mean()
    bench.runs                       # the records, for diagnostics_long / miou_curves

Seed k is the same initial network and data order for every method, so methods are
compared seed by seed; :data:`COMPARISONS` lists the comparisons the benchmark reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rccr.analysis.results import discover_runs
from rccr.runs import Run

__all__ = [
    "COMPARISONS",
    "METHOD_LABELS",
    "BenchmarkResults",
    "method_of",
    "read_benchmark",
    "run_name",
]

METHOD_LABELS = {
    "source_only": "source-only",
    "dacs": "DACS",
    "rccr": "RCCR",
    "rccr_no_contrast": "RCCR, contrastive weight 0 (control)",
    "rccr_no_bank": "RCCR, no memory bank",
    "rccr_no_momentum_head": "RCCR, no momentum head",
    "rccr_positive_all": "RCCR, positive sampling: all",
    "rccr_negative_random": "RCCR, negative sampling: random",
    "oracle": "target-label oracle",
    "rccr_no_contrast_no_cutmix_bn": "control, CutMix forward off the BN statistics",
    "rccr_no_cutmix_bn": "RCCR, CutMix forward off the BN statistics",
}
"""What each benchmark method is called in tables and legends, in the order they are shown."""

COMPARISONS = [
    ("dacs", "source_only"),
    ("rccr", "dacs"),
    ("rccr", "rccr_no_contrast"),  # the contrastive term alone: all else is the same
    ("rccr_no_bank", "rccr"),
    ("rccr_no_momentum_head", "rccr"),
    ("rccr_positive_all", "rccr"),
    ("rccr_negative_random", "rccr"),
]
"""The paired comparisons ``(method, against)`` the benchmark reports."""

_RESULTS_COLUMNS = ("method", "seed", "finished", "iteration")


@dataclass
class BenchmarkResults:
    """One benchmark folder.

    Attributes:
        folder: the folder read.
        metric: the headline mIoU column (``mIoU16`` for SYNTHIA, else ``mIoU19``).
        results: one row per **finished** run (a run cut short is not scored).
        curves: every evaluated checkpoint of the finished runs (empty without curves.csv).
        paired: the benchmark's paired differences (empty without paired.csv).
        runs: the finished runs' records under ``runs/``, the warm start left out.
        skipped: one line per record that could not be read, naming it and why.
    """

    folder: Path
    metric: str
    results: pd.DataFrame
    curves: pd.DataFrame
    paired: pd.DataFrame
    runs: list[Run] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def run_name(method: str, seed: int | str) -> str:
    """A benchmark run's folder name: ``run_name("rccr_no_bank", 3)`` is ``rccr_no_bank_seed3``."""
    return f"{method}_seed{seed}"


def method_of(name: str) -> str:
    """The method of a benchmark run's folder name: ``rccr_no_bank_seed3`` -> ``rccr_no_bank``."""
    method, sep, seed = name.rpartition("_seed")
    return method if sep and seed.isdigit() else name


def _read_csv(path: Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """A CSV the benchmark wrote, or a ValueError naming the file and what is wrong."""
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable CSV table ({exc})") from exc
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; "
                         f"expected at least {', '.join(required)}")  # fmt: skip
    return table


def _finished(table: pd.DataFrame) -> pd.DataFrame:
    if "finished" not in table.columns:
        return table
    return table[table["finished"].astype(str) == "True"].reset_index(drop=True)


def read_benchmark(folder: str | os.PathLike) -> BenchmarkResults:
    """Read a benchmark's results folder (see the module docstring).

    Raises:
        FileNotFoundError: if the folder has no results.csv.
        ValueError: if results.csv, curves.csv or paired.csv is not a table of the
            benchmark's columns, or results.csv has no mIoU column, a finished run without
            a score, or one method and seed twice; the message names the file.
    """
    folder = Path(folder)
    path = folder / "results.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no benchmark results here; `make bench-uda` "
                                "(benchmarks/uda_benchmark.py) writes them")  # fmt: skip
    results = _finished(_read_csv(path, _RESULTS_COLUMNS))
    metric = "mIoU16" if "mIoU16" in results.columns else "mIoU19"
    if metric not in results.columns:
        raise ValueError(f"{path}: no mIoU19 or mIoU16 column")
    scores = pd.to_numeric(results[metric], errors="coerce")
    if scores.isna().any():
        row = results[scores.isna()].iloc[0]
        raise ValueError(f"{path}: {row['method']} seed {row['seed']} has no number in "
                         f"{metric} ({row[metric]!r}); a finished run is scored")  # fmt: skip
    twice = results[results.duplicated(["method", "seed"])]
    if len(twice):  # comparisons are per seed: one finished run per method and seed
        first = twice.iloc[0]
        raise ValueError(f"{path}: {first['method']} seed {first['seed']} is listed twice; "
                         "expected one finished run per method and seed")  # fmt: skip
    curves, paired = (
        _finished(_read_csv(folder / name, required)) if (folder / name).is_file()
        else pd.DataFrame()
        for name, required in (("curves.csv", _RESULTS_COLUMNS),
                               ("paired.csv", ("method", "against")))
    )  # fmt: skip
    bench = BenchmarkResults(folder, metric, results, curves, paired)
    if (folder / "runs").is_dir():  # the warm start's record is no method's run: left out
        found = discover_runs(folder / "runs")
        finished = {run_name(m, s) for m, s in zip(results["method"], results["seed"], strict=True)}
        bench.runs = [run for run in found.runs if run.name in finished]
        bench.skipped = found.skipped
    return bench
