"""Aggregates the UDA benchmark's run directories into a CSV, a markdown table and a plot.

Used by ``uda_benchmark.py``. Everything is read from the runs' ``eval/iter_N.json``
files: the headline number of a run is its **last** checkpoint (``train.iterations``) on
target val; the best checkpoint on target val is reported only as an oracle choice.
A run that has not reached its last iteration appears in the curves but not in the table.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rccr.data.files import write_atomic
from rccr.data.labels import CLASS_NAMES
from rccr.evaluation import EvalResult
from rccr.runs import load_run

LABELS = {
    "source_only": "source-only",
    "dacs": "DACS",
    "rccr": "RCCR",
    "rccr_no_bank": "RCCR, no memory bank",
    "rccr_no_momentum_head": "RCCR, no momentum head",
    "rccr_positive_all": "RCCR, positive sampling: all",
    "rccr_negative_random": "RCCR, negative sampling: random",
    "oracle": "target-label oracle",
    "rccr_no_contrast": "RCCR, contrastive weight 0 (control)",
}


class JobLike(Protocol):
    method: str
    seed: int
    run_dir: Path

    @property
    def config(self) -> Any: ...


@dataclass
class RunScores:
    """What one run directory holds, for the report."""

    method: str
    seed: int
    run_dir: Path
    last_iteration: int
    metric: str
    status: str = "missing"
    evals: dict[int, EvalResult] = field(default_factory=dict)
    train_seconds: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status == "finished" and self.last_iteration in self.evals

    @property
    def last(self) -> EvalResult:
        return self.evals[self.last_iteration]


def read_scores(job: JobLike) -> RunScores:
    """The evaluations and logged step time of one job's run directory (if it exists)."""
    subsets = job.config.eval.subsets
    scores = RunScores(job.method, job.seed, job.run_dir, job.config.train.iterations,
                       f"mIoU{subsets[0]}")  # fmt: skip
    if not job.run_dir.is_dir():
        return scores
    run = load_run(job.run_dir)
    scores.status, scores.evals = run.status, run.evals
    previous = 0
    for record in run.records:  # sec_per_iter is a mean over the steps since the last record
        if "sec_per_iter" in record:
            scores.train_seconds += record["sec_per_iter"] * (record["iteration"] - previous)
            previous = record["iteration"]
    return scores


def _fmt(value: float, digits: int = 1) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return statistics.fmean(values), std


def write_csvs(scores: Sequence[RunScores], out: Path) -> list[Path]:
    """results.csv (one row per run that has an evaluation) and curves.csv."""
    metric_keys = sorted({k for s in scores for r in s.evals.values() for k in r.miou},
                         reverse=True)  # fmt: skip
    rows, curves = [], []
    for s in scores:
        if not s.evals:
            continue
        iteration = s.last_iteration if s.finished else max(s.evals)
        result = s.evals[iteration]
        best = max(s.evals, key=lambda i: s.evals[i].miou[s.metric])
        row: dict[str, Any] = {"method": s.method, "seed": s.seed, "run": str(s.run_dir),
                               "status": s.status, "finished": s.finished,
                               "iteration": iteration}  # fmt: skip
        row |= {k: _fmt(result.miou.get(k, math.nan), 2) for k in metric_keys}
        row |= {"best_iteration_oracle_choice": best,
                "best_miou_oracle_choice": _fmt(s.evals[best].miou[s.metric], 2),
                "train_seconds": _fmt(s.train_seconds, 0)}  # fmt: skip
        row |= {f"iou_{name}": _fmt(v, 2) for name, v in zip(CLASS_NAMES, result.iou, strict=True)}
        rows.append(row)
        for it, res in s.evals.items():
            scored = {k: _fmt(res.miou.get(k, math.nan), 2) for k in metric_keys}
            curves.append({"method": s.method, "seed": s.seed, "finished": s.finished,
                           "iteration": it} | scored)  # fmt: skip
    written = []
    for name, table in (("results.csv", rows), ("curves.csv", curves)):
        if table:
            written.append(_write_csv(out / name, table))
    return written


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, text.getvalue().encode())
    return path


def read_curves(path: Path) -> list[dict[str, str]]:
    """curves.csv back as dicts (the plot is drawn from the written file)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def markdown(scores: Sequence[RunScores], seeds: Sequence[int], command: str, wall: str,
             notes: Sequence[str] = ()) -> str:  # fmt: skip
    """The results table: mean ± std over seeds of the last checkpoint, gap closed, per class."""
    methods = list(dict.fromkeys(s.method for s in scores))
    metric = scores[0].metric
    done = {m: [s for s in scores if s.method == m and s.finished] for m in methods}
    means = {m: _mean_std([s.last.miou[metric] for s in done[m]])[0] for m in methods}
    so, oracle = means.get("source_only", math.nan), means.get("oracle", math.nan)
    iterations = scores[0].last_iteration
    lines = [
        f"# UDA benchmark: {scores[0].run_dir.parent.name}",
        "",
        f"Target-val {metric} of the **last** checkpoint (iteration {iterations}), mean ± "
        f"sample std over seeds {', '.join(map(str, seeds))}. Gap closed: (method − "
        "source-only) / (oracle − source-only), from the means. The best checkpoint on target "
        "val peeks at target labels: it is an **oracle choice**, shown only for reference.",
        "",
        f"Written by: `{command}`",
        "",
        *(line for note in notes for line in (note, "")),
        f"Wall time: {wall}",
        "",
        f"| method | {metric} (last) | seeds | per seed | gap closed | best on val (oracle "
        "choice) | train time / run |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        values = [s.last.miou[metric] for s in done[m]]
        mean, std = _mean_std(values)
        cell = f"{_fmt(mean)} ± {_fmt(std)}" if len(values) > 1 else _fmt(mean) or "–"
        gap = (mean - so) / (oracle - so) * 100 + 0.0 if oracle != so else math.nan  # no -0
        best = [max(r.miou[metric] for r in s.evals.values()) for s in done[m]]
        minutes = statistics.fmean([s.train_seconds for s in done[m]]) / 60 if values else 0
        lines.append(
            f"| {LABELS[m]} | {cell} | {len(values)} of {len(seeds)} | "
            f"{' / '.join(_fmt(v) for v in values) or '–'} | "
            f"{_fmt(gap, 0) + ' %' if not math.isnan(gap) else '–'} | "
            f"{_fmt(statistics.fmean(best)) if best else '–'} | "
            f"{f'{minutes:.1f} min' if values else '–'} |"
        )
    lines += ["", f"Per-class IoU (last checkpoint, mean over finished seeds), {metric}:", ""]
    lines.append("| class | " + " | ".join(LABELS[m] for m in methods) + " |")
    lines.append("|---|" + "---|" * len(methods))
    for c, name in enumerate(CLASS_NAMES):
        cells = []
        for m in methods:
            values = [s.last.iou[c] for s in done[m] if not math.isnan(s.last.iou[c])]
            cells.append(_fmt(statistics.fmean(values)) if values else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    missing = [f"{s.method} seed {s.seed} ({s.status})" for s in scores if not s.finished]
    if missing:
        lines += ["", "Not finished yet (not in the table): " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"


def plot(curves: list[dict[str, str]], metric: str, path: Path) -> Path:
    """mIoU against iteration: the mean over seeds per method, a band from min to max.

    Only finished runs are drawn, so every point of a line averages the same seeds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    methods = list(dict.fromkeys(row["method"] for row in curves))
    for index, method in enumerate(methods):
        rows = [r for r in curves if r["method"] == method and r["finished"] == "True"]
        if not rows:
            continue
        by_iter: dict[int, list[float]] = {}
        for row in rows:
            if row[metric]:
                by_iter.setdefault(int(row["iteration"]), []).append(float(row[metric]))
        seeds = len({row["seed"] for row in rows})
        xs = sorted(by_iter)
        mean = [statistics.fmean(by_iter[x]) for x in xs]
        style = "--" if method.startswith("rccr_") else "-"
        line = ax.plot(xs, mean, style, marker="o", ms=3, color=f"C{index}",
                       label=f"{LABELS.get(method, method)} ({seeds} seeds)")[0]  # fmt: skip
        low, high = [min(by_iter[x]) for x in xs], [max(by_iter[x]) for x in xs]
        ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"target-val {metric} (%)")
    ax.set_title("Finished runs: mean over seeds, band = min to max")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no finished run yet", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def log_invocation(root: Path, start: float, end: float, trained: int, command: str) -> None:
    """Append one line to ``<root>/invocations.jsonl``: an invocation that trained runs."""
    root.mkdir(parents=True, exist_ok=True)
    record = {"start": start, "end": end, "runs_to_train": trained, "command": command}
    with open(root / "invocations.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def training_commands(root: Path) -> list[str]:
    """The distinct commands of the invocations that trained runs, in order."""
    path = root / "invocations.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return list(dict.fromkeys(r["command"] for r in records))


def wall_time(root: Path) -> str:
    """Wall time of the invocations that trained runs: the union of their intervals.

    A benchmark resumed over several invocations adds up; overlapping ones count once.
    """
    path = root / "invocations.jsonl"
    if not path.exists():
        return "not recorded (no invocation of this script trained these runs)"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    spans = sorted((r["start"], r["end"]) for r in records)
    seconds, (begin, end) = 0.0, spans[0]
    for start, stop in spans[1:]:
        if start > end:
            seconds, begin = seconds + end - begin, start
        end = max(end, stop)
    seconds += end - begin
    first = time.strftime("%Y-%m-%d %H:%M", time.gmtime(spans[0][0]))
    return (f"{seconds / 60:.0f} min over {len(records)} invocation(s) of the script that "
            f"trained runs (first started {first} UTC)")  # fmt: skip


def write_results(jobs: Sequence[JobLike], out: Path, root: Path, command: str,
                  notes: Sequence[str] = ()) -> list[Path]:  # fmt: skip
    """Write results.csv, curves.csv, results.md and miou_curves.png into ``out``."""
    scores = [read_scores(job) for job in jobs]
    out.mkdir(parents=True, exist_ok=True)
    written = write_csvs(scores, out)
    if not any(s.evals for s in scores):
        return written
    seeds = list(dict.fromkeys(s.seed for s in scores))
    trained = [f"Trained by: `{c}`." for c in training_commands(root) if c != command]
    text = markdown(scores, seeds, command, wall_time(root), [*trained, *notes])
    write_atomic(out / "results.md", text.encode())
    written.append(out / "results.md")
    written.append(plot(read_curves(out / "curves.csv"), scores[0].metric,
                        out / "miou_curves.png"))  # fmt: skip
    return written
