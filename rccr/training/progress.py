"""What a run reports as it trains: the mean loss terms of each log interval
(:class:`LossMeter`), the heartbeat in status.json, and one line per evaluation with the
best score so far and the time left (:class:`Progress`)."""

from __future__ import annotations

import math
import time
from pathlib import Path

from rccr.runs import RunWriter, load_run

__all__ = ["LossMeter", "Progress", "duration"]


class LossMeter:
    """Mean of each logged value since the last flush, and seconds per iteration.

    A value that is NaN in a step (a diagnostic without a denominator there) is left out of
    its mean; a name with no finite value since the last flush is not reported.
    """

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.steps, self.tick = 0, time.perf_counter()

    def add(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            if math.isfinite(value):
                self.sums[name] = self.sums.get(name, 0.0) + value
                self.counts[name] = self.counts.get(name, 0) + 1
        self.steps += 1

    def flush(self) -> dict[str, float]:
        seconds = time.perf_counter() - self.tick
        means = {name: total / self.counts[name] for name, total in self.sums.items()}
        means["sec_per_iter"] = seconds / self.steps
        self.sums, self.counts, self.steps, self.tick = {}, {}, 0, time.perf_counter()
        return means


class Progress:
    """A run's pace since this process began training it, and its evaluations so far.

    Args:
        out: the run directory (its evaluations count towards the best score so far).
        iteration: the iteration this process begins at.
        iterations: the run's last iteration (``train.iterations``).
    """

    def __init__(self, out: Path, iteration: int, iterations: int) -> None:
        self.out, self.iterations = out, iterations
        # When and at which iteration this process began (the log line's time left).
        self.beat = self.started = (time.time(), iteration)
        self.scores: dict[int, dict[str, float]] | None = None  # evaluations, for the log

    def heartbeat(self, writer: RunWriter, iteration: int) -> None:
        """status.json: running at this iteration, with the log interval's duration and ETA."""
        now, iterations = time.time(), self.iterations
        then, start = self.beat
        interval = now - then
        per_step = interval / max(iteration - start, 1)
        writer.set_status("running", iteration, iterations=iterations, interval_s=interval,
                          eta_s=per_step * (iterations - iteration))  # fmt: skip
        self.beat = (now, iteration)

    def eval_line(self, iteration: int, miou: dict[str, float]) -> str:
        """One line for the log per evaluation: the scores, the best mIoU so far (target
        val, so for watching only, never a checkpoint choice), and the time left."""
        if self.scores is None:  # on resume, the evaluations already in the run count too
            self.scores = {i: r.miou for i, r in load_run(self.out).evals.items()}
        self.scores[iteration] = miou
        key = next(iter(miou))  # mIoU19
        history = {i: scores[key] for i, scores in self.scores.items() if key in scores}
        best = max(history, key=history.__getitem__)
        scores = ", ".join(f"{name} {value:.2f}" for name, value in miou.items())
        line = (
            f"iteration {iteration}/{self.iterations}: {scores} "
            f"(best {key} so far {history[best]:.2f} at iteration {best})"
        )
        left = self.iterations - iteration
        steps = iteration - self.started[1]
        if left and steps:
            eta = (time.time() - self.started[0]) / steps * left
            line += f"; about {duration(eta)} left"
        return line


def duration(seconds: float) -> str:
    """``3 h 05 min``, ``12 min``, ``40 s``."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"
