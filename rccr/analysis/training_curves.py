"""How runs train, from their metrics.jsonl: loss terms, learning rate, contrastive weight,
throughput and time left, for watching runs live and comparing them::

    training_long(runs)      # long form: run, iteration, quantity, value
    progress_table(runs)     # one row per run: status, iteration, it/s, time left

A metrics.jsonl record holds the mean of each loss term over the steps since the previous
record, the learning rate and (RCCR) the contrastive weight lambda(t) of the last of those
steps, and ``sec_per_iter``, their mean duration (training only: an evaluation in the same
interval is not counted).
"""

from __future__ import annotations

import math
import time

import pandas as pd

from rccr.runs import Run

__all__ = ["QUANTITIES", "progress_table", "training_long"]

QUANTITIES: dict[str, str] = {
    "loss_source": "loss: source cross-entropy",
    "loss_mix": "loss: ClassMix cross-entropy (weighted)",
    "loss_contrast": "loss: regional contrast (before lambda)",
    "loss_target_oracle": "loss: target cross-entropy (oracle)",
    "lr": "learning rate (backbone)",
    "contrast_weight": "contrastive weight lambda(t)",
    "it_per_s": "throughput (iterations / s)",
}
"""What the Training page plots, by metrics.jsonl key (``it_per_s`` from ``sec_per_iter``),
each with the label it is shown under, in this order."""


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def training_long(runs: list[Run]) -> pd.DataFrame:
    """The logged training quantities of ``runs``, long form: columns run, iteration,
    quantity (the label in :data:`QUANTITIES`), value; finite values only."""
    rows = []
    for run in runs:
        for record in run.records:
            for key, label in QUANTITIES.items():
                if key == "it_per_s":
                    seconds = _number(record.get("sec_per_iter"))
                    value = 1.0 / seconds if seconds else None
                else:
                    value = _number(record.get(key))
                if value is not None:
                    row = {"run": run.name, "iteration": record["iteration"], "quantity": label}
                    rows.append(row | {"value": value})
    return pd.DataFrame(rows, columns=["run", "iteration", "quantity", "value"])


def _time_left(run: Run, now: float) -> float | None:
    """Seconds to the end of a running run, from its pace over its last records (steps and
    evaluations alike), or None if it is not running or has no pace yet."""
    total = run.config.train.iterations if run.config else None
    timed = [r for r in run.records if _number(r.get("time")) is not None]
    if run.status != "running" or total is None or len(timed) < 2:
        return None
    first, last = timed[max(0, len(timed) - 10)], timed[-1]
    steps = last["iteration"] - first["iteration"]
    if steps <= 0 or last["time"] <= first["time"]:
        return None
    per_step = (last["time"] - first["time"]) / steps
    left = per_step * max(total - last["iteration"], 0)
    return max(left - (now - last["time"]), 0.0)


def progress_table(runs: list[Run], now: float | None = None) -> pd.DataFrame:
    """One row per run: status, iteration of total, training throughput over the last
    logged interval (iterations per second), and the time left while it is running
    (NaN otherwise), from the pace of its last ten records, evaluations included."""
    now = time.time() if now is None else now
    rows = []
    for run in runs:
        seconds = next(
            (s for r in reversed(run.records) if (s := _number(r.get("sec_per_iter")))), None
        )
        left = _time_left(run, now)
        rows.append(
            {
                "run": run.name,
                "status": run.status_text,
                "iteration": run.iteration,
                "of": run.config.train.iterations if run.config else None,
                "it/s": 1.0 / seconds if seconds else math.nan,
                "time left (min)": left / 60 if left is not None else math.nan,
            }
        )
    columns = ["run", "status", "iteration", "of", "it/s", "time left (min)"]
    return pd.DataFrame(rows, columns=columns)
