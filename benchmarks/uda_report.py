"""Aggregates the UDA benchmark's run directories into a CSV, a markdown table and a plot.

Used by ``uda_benchmark.py``. Everything is read from the runs' ``eval/iter_N.json``
files: the headline number of a run is its **last** checkpoint (``train.iterations``) on
target val; the best checkpoint on target val is reported only as an oracle choice.
A run that has not reached its last iteration appears in the curves but not in the table.

Comparisons are paired over seeds (a seed gives every method the same initial weights and
data order): the mean of the per-seed differences with a 95% t-interval
(``paired.csv``). The self-training diagnostics the runs logged (``diag/*``, analysis only)
are summarised per method over the last quarter of training (``diagnostics.csv``).
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

import pandas as pd

from rccr.analysis.benchmark import COMPARISONS
from rccr.analysis.benchmark import METHOD_LABELS as LABELS
from rccr.analysis.feature_space import FEATURE_DIAGNOSTICS
from rccr.data.files import write_atomic
from rccr.data.labels import CLASS_NAMES
from rccr.evaluation import EvalResult
from rccr.method.diagnostics import DIAGNOSTICS as DIAGNOSTIC_GROUPS
from rccr.runs import load_run
from rccr.viz.benchmark_charts import seed_band_figure

# The diagnostics summarised (all analysis only), with what each says.
DIAGNOSTICS = {f"diag/{name}": meaning
               for group in (*DIAGNOSTIC_GROUPS.values(), FEATURE_DIAGNOSTICS)
               for name, meaning in group.items() if name != "anchors"}  # fmt: skip


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
    diagnostics: dict[str, float] = field(default_factory=dict)

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
    late = [r for r in run.records if r["iteration"] > 0.75 * scores.last_iteration]
    for key in DIAGNOSTICS:
        values = [float(r[key]) for r in late if isinstance(r.get(key), (int, float))]
        values = [v for v in values if math.isfinite(v)]
        if values:
            scores.diagnostics[key] = statistics.fmean(values)
    return scores


# Two-sided 95% quantiles of Student's t by degrees of freedom (1..30); above, the normal's.
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042]  # fmt: skip


def paired_difference(scores: Sequence[RunScores], method: str, against: str) -> dict[str, Any]:
    """``method - against`` over the seeds both finished: per seed, mean and 95% CI.

    The interval is ``mean ± t_{0.975, n-1} * sd / sqrt(n)`` of the per-seed differences
    (NaN for fewer than two seeds).
    """
    by = {(s.method, s.seed): s for s in scores if s.finished}
    seeds = sorted(seed for (m, seed) in by if m == method and (against, seed) in by)
    diffs = [by[method, s].last.miou[by[method, s].metric] - by[against, s].last.miou[
        by[against, s].metric] for s in seeds]  # fmt: skip
    n = len(diffs)
    mean = statistics.fmean(diffs) if diffs else math.nan
    half = math.nan
    if n > 1:
        t = _T975[n - 2] if n - 1 <= len(_T975) else 1.960
        half = t * statistics.stdev(diffs) / math.sqrt(n)
    return {"method": method, "against": against, "seeds": n, "mean": mean,
            "ci_low": mean - half, "ci_high": mean + half, "half_width": half,
            "per_seed": diffs}  # fmt: skip


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
    methods = list(dict.fromkeys(s.method for s in scores))
    paired = []
    for method, against in COMPARISONS:
        if method in methods and against in methods:
            d = paired_difference(scores, method, against)
            paired.append({k: _fmt(v, 2) if isinstance(v, float) else v for k, v in d.items()
                           if k != "per_seed"} | {"per_seed": " ".join(
                               _fmt(x, 2) for x in d["per_seed"])})  # fmt: skip
    diagnostics = []
    for s in scores:
        if s.finished and s.diagnostics:
            diagnostics.append({"method": s.method, "seed": s.seed} | {
                k.removeprefix("diag/"): _fmt(s.diagnostics.get(k, math.nan), 4)
                for k in DIAGNOSTICS})  # fmt: skip
    written = []
    for name, table in (("results.csv", rows), ("curves.csv", curves), ("paired.csv", paired),
                        ("diagnostics.csv", diagnostics)):  # fmt: skip
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
             notes: Sequence[str] = (), scored_on: str = "target val",
             suite: str = "") -> str:  # fmt: skip
    """The results table: mean ± std over seeds of the last checkpoint, gap closed, per class.
    ``scored_on`` names what the runs were evaluated on ("dev set" for ``--dev``), ``suite``
    the benchmark (the title)."""
    methods = list(dict.fromkeys(s.method for s in scores))
    metric = scores[0].metric
    done = {m: [s for s in scores if s.method == m and s.finished] for m in methods}
    means = {m: _mean_std([s.last.miou[metric] for s in done[m]])[0] for m in methods}
    so, oracle = means.get("source_only", math.nan), means.get("oracle", math.nan)
    iterations = scores[0].last_iteration
    lines = [
        f"# UDA benchmark: {suite or scores[0].run_dir.parent.name}",
        "",
        f"{scored_on.capitalize()} {metric} of the **last** checkpoint (iteration "
        f"{iterations}), mean ± "
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
    lines += [
        "",
        f"Paired differences of the last-checkpoint {metric} (per seed, then the mean "
        "and its 95% t-interval over seeds):",
        "",
        "| comparison | seeds | mean difference | 95% CI | per seed |",
        "|---|---|---|---|---|",
    ]
    for method, against in COMPARISONS:
        if method in methods and against in methods:
            d = paired_difference(scores, method, against)
            interval = (f"[{_fmt(d['ci_low'])}, {_fmt(d['ci_high'])}]"
                        if not math.isnan(d["half_width"]) else "–")  # fmt: skip
            lines.append(f"| {LABELS[method]} − {LABELS[against]} | {d['seeds']} | "
                         f"{_fmt(d['mean'])} | {interval} | "
                         f"{' / '.join(f'{x:+.1f}' for x in d['per_seed']) or '–'} |")  # fmt: skip
    logged = [m for m in methods if any(s.diagnostics for s in done[m])]
    if logged:
        lines += ["", "Self-training diagnostics over the last quarter of training, mean over "
                  "seeds (analysis only: measured with target labels, never used for training "
                  "or checkpoint choice):", "",
                  "| diagnostic | " + " | ".join(LABELS[m] for m in logged) + " |",
                  "|---|" + "---|" * len(logged)]  # fmt: skip
        for key, meaning in DIAGNOSTICS.items():
            cells = []
            for m in logged:
                values = [s.diagnostics[key] for s in done[m] if key in s.diagnostics]
                cells.append(_fmt(statistics.fmean(values), 3) if values else "–")
            lines.append(f"| {meaning} | " + " | ".join(cells) + " |")
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


def plot(curves: list[dict[str, str]], metric: str, path: Path,
         scored_on: str = "target val") -> Path:  # fmt: skip
    """mIoU against iteration: the mean over seeds per method, a band from min to max.

    Only finished runs are drawn, so every point of a line averages the same seeds.
    """
    table = pd.DataFrame(curves, columns=["method", "seed", "finished", "iteration", metric])
    table = table[table["finished"].astype(str) == "True"]
    table[metric] = pd.to_numeric(table[metric], errors="coerce")  # "" where not scored
    fig = seed_band_figure(table, metric, LABELS, f"{scored_on} {metric} (%)",
                           "Finished runs: mean over seeds, band = min to max")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
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


def write_results(
    jobs: Sequence[JobLike], out: Path, root: Path, command: str,
    notes: Sequence[str] = (), scored_on: str = "target val",
) -> list[Path]:  # fmt: skip
    """Write results.csv, curves.csv, results.md and miou_curves.png into ``out``;
    ``scored_on`` names the evaluation split in them ("dev set" for ``--dev``). ``root``
    holds the log of the invocations that trained (their wall time)."""
    scores = [read_scores(job) for job in jobs]
    out.mkdir(parents=True, exist_ok=True)
    written = write_csvs(scores, out)
    if not any(s.evals for s in scores):
        return written
    seeds = list(dict.fromkeys(s.seed for s in scores))
    trained = [f"Trained by: `{c}`." for c in training_commands(root) if c != command]
    text = markdown(
        scores, seeds, command, wall_time(root), [*trained, *notes], scored_on, out.name
    )
    write_atomic(out / "results.md", text.encode())
    written.append(out / "results.md")
    written.append(plot(read_curves(out / "curves.csv"), scores[0].metric,
                        out / "miou_curves.png", scored_on))  # fmt: skip
    return written
