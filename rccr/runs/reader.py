"""Reading a run directory: :func:`load_run` into a :class:`Run`, tolerating a run that
is still being written and any content of its files (see :mod:`rccr.runs`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rccr.config import (
    MAX_CONFIG_BYTES,
    Config,
    ConfigError,
    config_from_dict,
    parse_yaml,
    quote,
)
from rccr.evaluation import EvalResult
from rccr.runs.paths import SKIPPED_LOG, RunError, iteration_files
from rccr.runs.status import Status, ago, finite, staleness
from rccr.runs.untrusted import (
    MiB,
    check_metrics,
    check_skipped,
    count_field,
    parse_json,
    read_bounded,
    read_records,
    read_text,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Run", "load_run", "read_skipped", "saved_config"]

# The most a reader takes of each file; a larger one is a problem, not read. metrics.jsonl
# logged at every step of a 250k-iteration run is about 50 MiB.
_LIMITS = {"status": MiB, "metrics": 64 * MiB, "skipped": 64 * MiB, "eval": 16 * MiB}


@dataclass
class Run:
    """What a run directory holds, read by :func:`load_run`.

    Attributes:
        path: the run directory.
        config: the resolved config, or None if config.yaml is missing or malformed.
        status: running, finished, interrupted, stale, or unknown (no usable status.json).
            Stale: status.json says running, but its trainer is gone: its PID no longer
            exists on this host (same host name and PID namespace), or status.json (which
            a running trainer rewrites at every log step) was last updated more than
            :data:`STALE_AFTER_S` (an hour) and 10 of its log intervals ago.
        iteration: last iteration reported in status.json (or the last checkpoint).
        updated: when status.json was last written (seconds since the epoch), if known.
        records: metrics.jsonl records, in order.
        skipped: skipped.jsonl records, in order: each sample training skipped
            (``kind`` "sample": stream, name, error) and each batch it rolled back over
            (``kind`` "batch": batch, error).
        checkpoints: iteration -> checkpoint path.
        evals: iteration -> evaluation result.
        features: iteration -> memory-bank snapshot path.
        problems: one line per missing or malformed file, naming it.
    """

    path: Path
    config: Config | None = None
    status: Status = "unknown"
    iteration: int = 0
    updated: float | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: dict[int, Path] = field(default_factory=dict)
    evals: dict[int, EvalResult] = field(default_factory=dict)
    features: dict[int, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status_text(self) -> str:
        """The status as the dashboard shows it: "stale (last seen 2 h ago)" for a stale run."""
        if self.status == "stale" and self.updated is not None:
            return f"stale (last seen {ago(time.time() - self.updated)} ago)"
        return self.status

    @property
    def metrics(self) -> pd.DataFrame:
        """metrics.jsonl as a DataFrame (needs pandas: ``pip install rccr[dashboard]``)."""
        import pandas as pd

        return pd.DataFrame.from_records(self.records)

    @property
    def last_checkpoint(self) -> Path | None:
        return self.checkpoints[max(self.checkpoints)] if self.checkpoints else None

    def checkpoint(self, iteration: int | None = None) -> tuple[int, Path]:
        """The iteration and path of a checkpoint (the last one if ``iteration`` is None).

        Raises:
            RunError: if the run has no checkpoints, or none at ``iteration``.
        """
        if not self.checkpoints:
            raise RunError(f"{self.path / 'checkpoints'}: no checkpoints yet")
        if iteration is None:
            iteration = max(self.checkpoints)
        if iteration not in self.checkpoints:
            available = ", ".join(map(str, self.checkpoints))
            raise RunError(f"{self.path}: no checkpoint at iteration {iteration}; have {available}")
        return iteration, self.checkpoints[iteration]

    def require_config(self) -> Config:
        """The run's config.

        Raises:
            RunError: if config.yaml is missing or malformed (the run cannot be rebuilt).
        """
        if self.config is None:
            raise RunError(f"{self.path / 'config.yaml'}: missing or malformed; cannot rebuild")
        return self.config


def _read_log(
    path: Path, kind: str, check: Callable[[dict[str, Any]], None], problems: list[str]
) -> list[dict[str, Any]]:
    try:
        data = read_bounded(path, _LIMITS[kind])
    except (RunError, OSError) as exc:
        problems.append(str(exc) if isinstance(exc, RunError) else f"{path}: unreadable: {exc}")
        return []
    return [record for _, record in read_records(data, path, check, problems)]


def _present(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def saved_config(run_dir: str | os.PathLike) -> Config | None:
    """The config a run directory holds in config.yaml, or None if it holds none yet.

    Raises:
        RunError: naming config.yaml if it cannot be read or parsed, or naming the folder
            if it holds checkpoints but no config.yaml (whose run they are is unknown).
    """
    root = Path(run_dir)
    path = root / "config.yaml"
    if not _present(path):
        if iteration_files(root / "checkpoints", ".pt"):
            raise RunError(
                f"{root}: holds checkpoints but no config.yaml, so whose run they are is "
                "unknown; restore config.yaml, or choose another output folder"
            )
        return None
    try:
        data = parse_yaml(read_text(path, MAX_CONFIG_BYTES))
        return config_from_dict(data if isinstance(data, dict) else {"": data})
    except RunError:
        raise
    except (OSError, yaml.YAMLError, ConfigError) as exc:
        raise RunError(
            f"{path}: unreadable, so this folder cannot be resumed: {_one_line(exc)}"
        ) from exc


def _read_config(run: Run) -> None:
    path = run.path / "config.yaml"
    if not _present(path):
        run.problems.append(f"{path}: missing (the run has not started writing yet?)")
        return
    try:
        data = parse_yaml(read_text(path, MAX_CONFIG_BYTES))
        run.config = config_from_dict(data if isinstance(data, dict) else {"": data})
    except RunError as exc:
        run.problems.append(str(exc))
    except Exception as exc:  # a run file may hold anything; the reader must not fail
        run.problems.append(f"{path}: malformed: {_one_line(exc)}")


def _one_line(exc: BaseException) -> str:
    """An error's message on one line of at most 300 characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _read_status(run: Run) -> None:
    path = run.path / "status.json"
    if not _present(path):
        run.problems.append(f"{path}: missing; the run's state is unknown")
        return
    try:
        data = parse_json(read_text(path, _LIMITS["status"]))
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("state") not in ("running", "finished", "interrupted"):
            raise ValueError(f"unknown state {quote(data.get('state'))}")
        run.status, run.iteration = data["state"], count_field(data, "iteration")
    except RunError as exc:
        run.problems.append(str(exc))
        return
    except Exception as exc:  # a run file may hold anything; the reader must not fail
        run.problems.append(f"{path}: malformed: {_one_line(exc)}")
        return
    run.updated = finite(data.get("updated"))
    stale = staleness(data, time.time()) if run.status == "running" else None
    if stale is not None:
        run.status = "stale"
        seen = f"; last seen {ago(time.time() - run.updated)} ago" if run.updated else ""
        run.problems.append(f"{path}: says running, but {stale}{seen}")


def read_skipped(
    run_dir: str | os.PathLike, problems: list[str] | None = None
) -> list[dict[str, Any]]:
    """The well-formed records of a run's skipped.jsonl (none if it is missing).

    Args:
        problems: gets a line for each malformed record, naming the line (a last line cut
            short by a crash is one too).
    """
    path = Path(run_dir) / SKIPPED_LOG
    if not _present(path):
        return []
    return _read_log(path, "skipped", check_skipped, [] if problems is None else problems)


def _read_metrics(run: Run) -> None:
    path = run.path / "metrics.jsonl"
    if not _present(path):
        run.problems.append(f"{path}: missing (no step has been logged yet)")
        return
    run.records = _read_log(path, "metrics", check_metrics, run.problems)


def _read_evals(run: Run) -> None:
    for iteration, path in iteration_files(run.path / "eval", ".json", run.problems).items():
        try:
            data = parse_json(read_text(path, _LIMITS["eval"]))
            run.evals[iteration] = EvalResult.from_json(data)
        except RunError as exc:
            run.problems.append(str(exc))
        except Exception as exc:  # a run file may hold anything; the reader must not fail
            run.problems.append(f"{path}: malformed evaluation: {_one_line(exc)}")


def load_run(path: str | os.PathLike) -> Run:
    """Read a run directory, tolerating one that is still being written, and any content
    of its files (see the docstring of :mod:`rccr.runs`).

    Raises:
        RunError: if ``path`` is not a folder, or holds none of a run's files.
    """
    root = Path(path)
    if not root.is_dir():
        raise RunError(f"{root}: run directory not found")
    if not any(_present(root / name) for name in ("config.yaml", "metrics.jsonl", "checkpoints")):
        raise RunError(
            f"{root}: not a run directory (no config.yaml, metrics.jsonl or checkpoints/)"
        )
    run = Run(path=root)
    _read_config(run)
    _read_status(run)
    _read_metrics(run)
    run.skipped = read_skipped(root, run.problems)  # absent: nothing skipped
    run.checkpoints = iteration_files(root / "checkpoints", ".pt", run.problems)
    run.features = iteration_files(root / "features", ".npz", run.problems)
    _read_evals(run)
    if run.status == "unknown" and run.checkpoints:
        run.iteration = max(run.checkpoints)
    return run
