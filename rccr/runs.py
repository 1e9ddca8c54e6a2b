"""The run directory: the contract between trainer, notebooks and dashboard.

::

    runs/<run>/config.yaml                 resolved config (everything needed to re-run)
    runs/<run>/status.json                 state (running/finished/interrupted), iteration
    runs/<run>/metrics.jsonl               one JSON object per logged step
    runs/<run>/skipped.jsonl               what training skipped: unreadable samples
                                           (data.skip_bad) and rolled-back batches
                                           (train.nan_retries), one JSON object each
    runs/<run>/checkpoints/iter_<N>.pt     student, optimiser, RNG, step (+ method state)
    runs/<run>/eval/iter_<N>.json          an EvalResult
    runs/<run>/features/iter_<N>.npz       memory-bank snapshot (written by the method)

:class:`RunWriter` writes it (every file atomically: temporary file, then rename);
:func:`load_run` reads it. The reader tolerates a run that is still being written: a
missing or malformed file becomes a line in ``Run.problems`` naming the file and what is
wrong, never an exception, except when the folder is not a run at all.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import yaml

from rccr.config import Config, ConfigError, config_from_dict, save_config
from rccr.data.files import write_atomic
from rccr.evaluation import EvalResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SKIPPED_LOG",
    "PathError",
    "Run",
    "RunError",
    "RunWriter",
    "iteration_files",
    "load_checkpoint",
    "load_run",
    "read_skipped",
    "resolve_inside",
    "same_run",
]

Status = Literal["running", "finished", "interrupted", "unknown"]
_ITER_FILE = re.compile(r"^iter_(\d+)\.(pt|json|npz)$")
SKIPPED_LOG = "skipped.jsonl"


class RunError(ValueError):
    """A path is not a run directory, or a run file cannot be used."""


class PathError(ValueError):
    """A user-supplied name would lead outside the runs root."""


def resolve_inside(root: str | os.PathLike, name: str) -> Path:
    """``root / name``, refusing any name that would lead outside ``root``.

    Args:
        root: the folder everything must stay inside (the runs root).
        name: a relative name from the user, e.g. a run's folder name.

    Returns:
        ``root / name`` (absolute; symlinks inside the root are kept as named).

    Raises:
        PathError: naming ``name``, for an empty name, an absolute path, a ``..`` part,
            or a name that resolves (through a symlink) outside ``root``.
    """
    base = Path(root).resolve()
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise PathError(f"{name!r}: expected a non-empty name inside {base}")
    if name.startswith(("/", "\\")) or Path(name).is_absolute() or ":" in name:
        raise PathError(f"{name!r}: absolute paths are refused; give a name inside {base}")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise PathError(f"{name!r}: '..' is refused; give a name inside {base}")
    path = base / name
    resolved = path.resolve()
    if resolved != base and not resolved.is_relative_to(base):
        raise PathError(f"{name!r}: leads to {resolved}, outside {base} (through a symlink)")
    return path


def iteration_files(folder: Path, suffix: str) -> dict[int, Path]:
    """``iter_<N><suffix>`` files in ``folder`` by N; temporary files are not listed."""
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        match = _ITER_FILE.match(path.name)
        if match and path.suffix == suffix:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: no code in the file can run).

    Raises:
        RunError: naming the file if it is missing, truncated or not a checkpoint.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise RunError(f"{path}: checkpoint not found") from exc
    except Exception as exc:  # torch raises several types for bad or unsafe files
        raise RunError(f"{path}: not a loadable checkpoint: {_refusal(exc)}") from exc
    if not isinstance(state, dict) or "iteration" not in state or "student" not in state:
        raise RunError(f"{path}: not an rccr checkpoint (expected 'iteration' and 'student')")
    return state


def _refusal(exc: Exception) -> str:
    """One line on why ``torch.load(weights_only=True)`` refused a file.

    Torch's own message is several paragraphs and suggests ``weights_only=False``, which
    would run whatever code the file carries.
    """
    text = str(exc)
    code = re.search(r"GLOBAL ([\w.]+)", text)
    if code:
        return f"unpickling it would call {code.group(1)}; checkpoints hold only tensors"
    if isinstance(exc, EOFError):
        return "the file is empty or cut short"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    operand = next((line for line in lines if line.startswith("Unsupported operand")), None)
    if operand:
        return f"{operand} (not written by torch.save, or damaged)"
    return (lines[0] if lines else type(exc).__name__).split(". ")[0]


class RunWriter:
    """Writes one run directory. Only one process (rank 0) writes.

    Args:
        root: the run directory (created if needed).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        for sub in ("checkpoints", "eval", "features"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def write_config(self, config: Config) -> None:
        """Write the resolved config (config.yaml)."""
        _write(self.root / "config.yaml", save_config(config).encode(), "config")

    def set_status(self, state: Status, iteration: int) -> None:
        record = {"state": state, "iteration": iteration, "updated": time.time()}
        _write(self.root / "status.json", json.dumps(record).encode(), "status")

    def truncate_metrics(self, iteration: int) -> None:
        """Drop metrics.jsonl and skipped.jsonl records after ``iteration``.

        A resumed (or rolled-back) run re-logs them, so they are never duplicated.
        """
        for name in ("metrics.jsonl", SKIPPED_LOG):
            path = self.root / name
            if not path.exists():
                continue
            kept = []
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["iteration"] <= iteration:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash
            _write(path, "".join(f"{line}\n" for line in kept).encode(), "log")

    def log(self, record: dict[str, Any]) -> None:
        """Append one record (must hold "iteration") to metrics.jsonl, in a single write."""
        self._append("metrics.jsonl", record)

    def log_skipped(self, record: dict[str, Any]) -> None:
        """Append one record (must hold "iteration" and "kind") to skipped.jsonl."""
        self._append(SKIPPED_LOG, record)

    def _append(self, name: str, record: dict[str, Any]) -> None:
        line = json.dumps(record, allow_nan=True) + "\n"
        try:
            with open(self.root / name, "a") as f:
                f.write(line)
                f.flush()
        except OSError as exc:  # a line cut short is dropped on resume (truncate_metrics)
            cause = exc.strerror or str(exc)
            raise OSError(exc.errno, f"{self.root / name}: cannot append ({cause})") from exc

    def remove_temporaries(self) -> list[Path]:
        """Delete temporary files a killed writer left in checkpoints/ and features/.

        Only the trainer writes there, so call this when a run starts or resumes, never
        while another trainer may be writing the same run.
        """
        stale: list[Path] = []
        for sub in ("checkpoints", "features"):
            stale += (self.root / sub).glob(".iter_*.tmp")
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    def save_checkpoint(self, iteration: int, state: dict[str, Any]) -> Path:
        """Write checkpoints/iter_<N>.pt atomically; a failed write keeps older ones.

        Raises:
            OSError: naming the file and the cause (a full disk, say), with the original
                errno; the temporary file is removed and earlier checkpoints are intact.
        """
        buffer = io.BytesIO()
        torch.save({**state, "iteration": iteration}, buffer)
        path = self.root / "checkpoints" / f"iter_{iteration}.pt"
        _write(path, buffer.getvalue(), "checkpoint")
        return path

    def save_features(self, iteration: int, arrays: dict[str, np.ndarray]) -> Path:
        """Write features/iter_<N>.npz (a memory-bank snapshot) atomically."""
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub mistypes **kwds
        path = self.root / "features" / f"iter_{iteration}.npz"
        _write(path, buffer.getvalue(), "memory-bank snapshot")
        return path

    def save_eval(self, iteration: int, result: EvalResult) -> Path:
        path = self.root / "eval" / f"iter_{iteration}.json"
        _write(path, json.dumps(result.to_json(), indent=1).encode(), "evaluation")
        return path


def _write(path: Path, data: bytes, what: str) -> None:
    """``write_atomic``, with an error that names the file, the cause, and what is kept."""
    try:
        write_atomic(path, data)
    except OSError as exc:
        cause = exc.strerror or str(exc)
        kept = f"the files already in {path.parent} are intact"
        raise OSError(exc.errno, f"{path}: {what} not written ({cause}); {kept}") from exc


@dataclass
class Run:
    """What a run directory holds, read by :func:`load_run`.

    Attributes:
        path: the run directory.
        config: the resolved config, or None if config.yaml is missing or malformed.
        status: running, finished, interrupted, or unknown (no status.json).
        iteration: last iteration reported in status.json (or the last checkpoint).
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


def _read_config(run: Run) -> None:
    path = run.path / "config.yaml"
    if not path.exists():
        run.problems.append(f"{path}: missing (the run has not started writing yet?)")
        return
    try:
        data = yaml.safe_load(path.read_text())
        run.config = config_from_dict(data if isinstance(data, dict) else {"": data})
    except (OSError, yaml.YAMLError, ConfigError) as exc:
        run.problems.append(f"{path}: malformed: {exc}")


def _read_status(run: Run) -> None:
    path = run.path / "status.json"
    if not path.exists():
        run.problems.append(f"{path}: missing; the run's state is unknown")
        return
    try:
        data = json.loads(path.read_text())
        if data["state"] not in ("running", "finished", "interrupted"):
            raise ValueError(f"unknown state {data['state']!r}")
        run.status, run.iteration = data["state"], int(data["iteration"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        run.problems.append(f"{path}: malformed: {exc}")


def _read_jsonl(path: Path, problems: list[str]) -> list[dict[str, Any]]:
    """The records of a JSON-lines log; each malformed line becomes a problem naming it."""
    records = []
    lines = path.read_text().splitlines() if path.exists() else []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "iteration" not in record:
                raise ValueError("expected an object with 'iteration'")
            records.append(record)
        except ValueError as exc:
            last = number == len(lines)
            note = " (the last line: probably being written)" if last else ""
            problems.append(f"{path}: line {number} malformed{note}: {exc}")
    return records


def read_skipped(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a run's skipped.jsonl (none if it is missing; a line cut short by a
    crash is left out)."""
    return _read_jsonl(Path(run_dir) / SKIPPED_LOG, problems=[])


def _read_metrics(run: Run) -> None:
    path = run.path / "metrics.jsonl"
    if not path.exists():
        run.problems.append(f"{path}: missing (no step has been logged yet)")
        return
    run.records = _read_jsonl(path, run.problems)


def _read_evals(run: Run) -> None:
    for iteration, path in iteration_files(run.path / "eval", ".json").items():
        try:
            run.evals[iteration] = EvalResult.from_json(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            run.problems.append(f"{path}: malformed evaluation: {exc}")


def same_run(run_dir: str | os.PathLike, config: Config) -> bool:
    """Whether ``run_dir`` may hold a run of ``config``: it has no config.yaml yet, or one
    equal to ``config``. Configs are compared as parsed, so a run written before a config
    key was added (the key takes its default) still matches.

    Raises:
        RunError: naming config.yaml, if it exists but cannot be read or parsed.
    """
    saved = Path(run_dir) / "config.yaml"
    if not saved.exists():
        return True
    try:
        data = yaml.safe_load(saved.read_text())
        return config_from_dict(data if isinstance(data, dict) else {"": data}) == config
    except (OSError, yaml.YAMLError, ConfigError) as exc:
        raise RunError(f"{saved}: unreadable, so this folder cannot be resumed: {exc}") from exc


def load_run(path: str | os.PathLike) -> Run:
    """Read a run directory, tolerating one that is still being written.

    Raises:
        RunError: if ``path`` is not a folder, or holds none of a run's files.
    """
    root = Path(path)
    if not root.is_dir():
        raise RunError(f"{root}: run directory not found")
    if not any((root / name).exists() for name in ("config.yaml", "metrics.jsonl", "checkpoints")):
        raise RunError(
            f"{root}: not a run directory (no config.yaml, metrics.jsonl or checkpoints/)"
        )
    run = Run(path=root)
    _read_config(run)
    _read_status(run)
    _read_metrics(run)
    run.skipped = _read_jsonl(root / SKIPPED_LOG, run.problems)  # absent: nothing skipped
    run.checkpoints = iteration_files(root / "checkpoints", ".pt")
    run.features = iteration_files(root / "features", ".npz")
    _read_evals(run)
    if run.status == "unknown" and run.checkpoints:
        run.iteration = max(run.checkpoints)
    return run
