"""Results of many runs side by side: what the dashboard shows, without Streamlit.

The dashboard reads one folder of runs (the *runs root*). Every name it accepts from a
user (a run in a menu, a ``?run=`` query parameter) goes through
:func:`rccr.runs.resolve_inside`,
so nothing outside that folder is ever read::

    found = discover_runs("runs")               # every run under runs/, and what was skipped
    runs_table(found.runs)                      # one row per run: mode, status, mIoU, ...
    config_diff(found.runs[0], found.runs[1])   # the config keys where two runs differ
    miou_curves(found.runs)                     # mIoU against iteration, long form
    iou_by_checkpoint(found.runs[0])            # classes x checkpoints
    iou_at(found.runs, iteration=None)          # classes x runs at each run's last checkpoint
    miou_at(found.runs, iteration=None)         # their mIoUs and iterations

A run's *headline* number is the mIoU of its last evaluated checkpoint. The best
checkpoint's mIoU is shown too, labelled as chosen on target val: picking it looks at
target labels, which adaptation is not allowed to do.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rccr.analysis.feature_space import FEATURE_DIAGNOSTICS
from rccr.config import flatten_config
from rccr.data.labels import CLASS_NAMES
from rccr.evaluation import EvalResult
from rccr.method.diagnostics import DIAGNOSTICS
from rccr.runs import PathError, Run, RunError, load_run, resolve_inside

__all__ = [
    "BEST_LABEL",
    "RunsFound",
    "common_iterations",
    "config_diff",
    "confusion_long",
    "diagnostics_long",
    "discover_runs",
    "flatten_config",
    "headline_metric",
    "iou_at",
    "iou_by_checkpoint",
    "iou_long",
    "miou_at",
    "miou_curves",
    "runs_table",
    "skipped_table",
]

BEST_LABEL = "best mIoU, chosen on target val"
"""Column name that says how the best checkpoint was picked, wherever it is shown."""


@dataclass
class RunsFound:
    """The runs under a runs root.

    Attributes:
        root: the runs root.
        runs: the runs that could be read, sorted by name.
        skipped: one line per folder that is not a usable run, naming it and why.
    """

    root: Path
    runs: list[Run] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def by_name(self) -> dict[str, Run]:
        return {run.name: run for run in self.runs}


def _check_links(run_dir: Path, base: Path) -> None:
    """Raise PathError if a file a run reader would open leads outside ``base``."""
    entries = list(run_dir.iterdir())
    for sub in ("checkpoints", "eval", "features"):
        if (run_dir / sub).is_dir():
            entries += (run_dir / sub).iterdir()
    for entry in entries:
        resolved = entry.resolve()
        if not resolved.is_relative_to(base):
            raise PathError(f"{entry}: leads to {resolved}, outside {base} (through a symlink)")


def discover_runs(root: str | os.PathLike) -> RunsFound:
    """Read every run directory directly under ``root`` (hidden folders are ignored).

    A run with a file that links outside ``root`` is skipped, so that every path the
    returned runs hold stays inside ``root``. A broken run never stops the others: whatever
    goes wrong reading one is a line in ``skipped``.

    Raises:
        RunError: if ``root`` is not a folder.
    """
    base = Path(root).resolve()
    if not base.is_dir():
        raise RunError(f"{Path(root)}: runs folder not found")
    found = RunsFound(root=base)
    for child in sorted(base.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        try:
            run_dir = resolve_inside(base, child.name)
            _check_links(run_dir, base)
            found.runs.append(load_run(run_dir))
        except (PathError, RunError, OSError) as exc:
            found.skipped.append(f"skipped: {exc}")
        except Exception as exc:  # a run folder may hold anything; the others still show
            message = " ".join(str(exc).split())[:300]
            found.skipped.append(f"skipped: {child}: unreadable ({type(exc).__name__}: {message})")
    return found


def headline_metric(result: EvalResult) -> str:
    """The mIoU a run is judged by: mIoU16 where scored (SYNTHIA), else mIoU19."""
    return "mIoU16" if "mIoU16" in result.miou else "mIoU19"


def _score(result: EvalResult) -> float:
    return result.miou[headline_metric(result)]


def _mode(run: Run) -> str:
    return run.config.train.mode if run.config else "?"


def runs_table(runs: list[Run]) -> pd.DataFrame:
    """One row per run: name, mode, preset, progress, status, last and best target mIoU.

    The best is picked on target val and labelled so (:data:`BEST_LABEL`); NaN where a
    run has no evaluation yet.
    """
    rows = []
    for run in runs:
        evals = run.evals
        last = max(evals) if evals else None
        scored = {i: _score(r) for i, r in evals.items() if not math.isnan(_score(r))}
        best = max(scored, key=lambda i: scored[i]) if scored else None
        rows.append(
            {
                "run": run.name,
                "mode": _mode(run),
                "preset": run.config.name if run.config else "?",
                "iterations": run.iteration,
                "of": run.config.train.iterations if run.config else None,
                "status": run.status_text,
                "metric": headline_metric(evals[last]) if last is not None else "",
                "last mIoU": _score(evals[last]) if last is not None else math.nan,
                "last at": last,
                BEST_LABEL: scored[best] if best is not None else math.nan,
                "best at": best,
                "skipped": len(run.skipped),
                "problems": len(run.problems),
            }
        )
    return pd.DataFrame(rows, columns=_RUN_COLUMNS)


_RUN_COLUMNS = ["run", "mode", "preset", "status", "iterations", "of", "metric", "last mIoU"]
_RUN_COLUMNS += ["last at", BEST_LABEL, "best at", "skipped", "problems"]


def skipped_table(run: Run) -> pd.DataFrame:
    """What training skipped (skipped.jsonl), one row per record: iteration, what, error.

    *what* is "sample <stream> <name>" for an unreadable sample replaced by the next one
    (``data.skip_bad``) and "batch <k>" for a batch rolled back over
    (``train.nan_retries``).
    """
    rows = []
    for record in run.skipped:
        if record.get("kind") == "batch":
            what = f"batch {record.get('batch', '?')}"
        else:
            what = f"sample {record.get('stream', '?')} {record.get('name', '?')}"
        rows.append({"iteration": record.get("iteration"), "what": what,
                     "error": record.get("error", "")})  # fmt: skip
    return pd.DataFrame(rows, columns=["iteration", "what", "error"])


def config_diff(a: Run, b: Run) -> pd.DataFrame:
    """The config keys whose values differ between two runs: columns key, a's name, b's.

    Raises:
        RunError: naming config.yaml of a run without a readable config.
    """
    for run in (a, b):
        if run.config is None:
            raise RunError(f"{run.path / 'config.yaml'}: missing or malformed; nothing to compare")
    assert a.config is not None and b.config is not None
    left, right = flatten_config(a.config), flatten_config(b.config)
    names = (a.name, b.name) if a.name != b.name else (f"{a.name} (a)", f"{b.name} (b)")
    rows = [
        {"key": key, names[0]: str(left.get(key, "-")), names[1]: str(right.get(key, "-"))}
        for key in sorted(left.keys() | right.keys())
        if left.get(key) != right.get(key)
    ]
    return pd.DataFrame(rows, columns=["key", *names])


def diagnostics_long(runs: list[Run]) -> pd.DataFrame:
    """The self-training diagnostics the runs logged (``diag/*`` in metrics.jsonl; analysis
    only), long form: columns run, iteration, group, diagnostic, value (finite values). The
    bank's feature scores (:mod:`rccr.analysis.feature_space`) are one group; their
    per-class values are left out."""
    groups = DIAGNOSTICS | {"bank features (at checkpoints)": FEATURE_DIAGNOSTICS}
    meaning = {name: (group, text) for group, names in groups.items()
               for name, text in names.items()}  # fmt: skip
    rows = []
    for run in runs:
        for record in run.records:
            for key, value in record.items():
                name = key.removeprefix("diag/")
                known = key.startswith("diag/") and name in meaning
                if known and isinstance(value, int | float) and math.isfinite(value):
                    group, text = meaning[name]
                    row = {"run": run.name, "iteration": record["iteration"], "group": group}
                    rows.append(row | {"diagnostic": text, "value": value})
    return pd.DataFrame(rows, columns=["run", "iteration", "group", "diagnostic", "value"])


def miou_curves(runs: list[Run]) -> pd.DataFrame:
    """Headline mIoU at every evaluated checkpoint: columns run, iteration, metric, mIoU."""
    rows = [
        {"run": run.name, "iteration": i, "metric": headline_metric(r), "mIoU": _score(r)}
        for run in runs
        for i, r in sorted(run.evals.items())
    ]
    return pd.DataFrame(rows, columns=["run", "iteration", "metric", "mIoU"])


def _class_names(result: EvalResult) -> list[str]:
    if len(result.iou) == len(CLASS_NAMES):
        return list(CLASS_NAMES)
    return [f"class {k}" for k in range(len(result.iou))]


def _per_class(result: EvalResult) -> pd.Series:
    return pd.Series(result.iou, index=_class_names(result), dtype=float)


def iou_by_checkpoint(run: Run) -> pd.DataFrame:
    """Per-class IoU (percent) of one run: rows = classes, columns = evaluated iterations."""
    columns = {i: _per_class(r) for i, r in sorted(run.evals.items())}
    table = pd.DataFrame(columns, index=None if columns else list(CLASS_NAMES), dtype=float)
    table.index.name = "class"
    table.columns.name = "iteration"
    return table


def common_iterations(runs: list[Run]) -> list[int]:
    """Iterations evaluated in every one of ``runs``, ascending."""
    if not runs:
        return []
    shared = set.intersection(*(set(run.evals) for run in runs))
    return sorted(shared)


def iou_at(runs: list[Run], iteration: int | None = None) -> pd.DataFrame:
    """Per-class IoU of several runs at one checkpoint: rows = classes, columns = runs.

    Args:
        runs: the runs; those without an evaluation at ``iteration`` are left out.
        iteration: the checkpoint, or None for each run's last evaluated checkpoint.
    """
    columns = {}
    for run in runs:
        chosen = (max(run.evals) if run.evals else None) if iteration is None else iteration
        if chosen in run.evals:
            columns[run.name] = _per_class(run.evals[chosen])
    table = pd.DataFrame(columns, index=None if columns else list(CLASS_NAMES), dtype=float)
    table.index.name = "class"
    return table


def miou_at(runs: list[Run], iteration: int | None = None) -> pd.DataFrame:
    """The mIoUs (rows: mIoU19, and mIoU16/mIoU13 where scored) and the checkpoint's
    iteration (row "iteration") of several runs at one checkpoint, columns = runs; the
    companion of :func:`iou_at`, with the same runs and checkpoints."""
    columns = {}
    for run in runs:
        chosen = (max(run.evals) if run.evals else None) if iteration is None else iteration
        if chosen in run.evals:
            columns[run.name] = pd.Series({**run.evals[chosen].miou, "iteration": chosen})
    table = pd.DataFrame(columns, dtype=float)
    table.index.name = "class"
    return table


def confusion_long(result: EvalResult) -> pd.DataFrame:
    """An evaluation's confusion matrix, long form: columns truth, prediction (class
    names), pixels, and share: percent of the ground-truth class's pixels (a row sums to
    100; NaN for a class with no pixels). Row ``truth``, column ``prediction``."""
    names = _class_names(result)
    rows = []
    for t, counts in enumerate(result.confusion):
        total = sum(counts)
        for p, pixels in enumerate(counts):
            share = 100.0 * pixels / total if total else math.nan
            rows.append({"truth": names[t], "prediction": names[p], "pixels": pixels,
                         "share": share})  # fmt: skip
    return pd.DataFrame(rows, columns=["truth", "prediction", "pixels", "share"])


def iou_long(runs: list[Run]) -> pd.DataFrame:
    """Every per-class IoU and mIoU of every evaluated checkpoint, one row each (for CSV).

    Columns: run, iteration, checkpoint (how it was chosen), name (a class or an mIoU
    key), IoU (percent).
    """
    rows = []
    for run in runs:
        for iteration, result in sorted(run.evals.items()):
            scores = [*zip(_class_names(result), result.iou, strict=True), *result.miou.items()]
            rows += [
                {
                    "run": run.name,
                    "iteration": iteration,
                    "checkpoint": result.checkpoint_choice,
                    "name": name,
                    "IoU": value,
                }
                for name, value in scores
            ]
    return pd.DataFrame(rows, columns=["run", "iteration", "checkpoint", "name", "IoU"])
