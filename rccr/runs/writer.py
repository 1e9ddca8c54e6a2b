"""Writing a run directory: :class:`RunWriter`, every file atomically (temporary file,
then rename), the JSON-lines logs by appending one line at a time."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rccr.config import Config, save_config
from rccr.data.files import write_atomic
from rccr.evaluation import EvalResult
from rccr.runs.paths import SKIPPED_LOG
from rccr.runs.status import Status, this_host
from rccr.runs.untrusted import check_metrics, check_skipped, read_records

__all__ = ["RunWriter"]


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

    def set_status(
        self,
        state: Status,
        iteration: int,
        *,
        iterations: int | None = None,
        interval_s: float | None = None,
        eta_s: float | None = None,
    ) -> None:
        """Write status.json: the state and iteration, when (``updated``), by which process
        (``pid``, ``host``), and, while running, the seconds the last log interval took and
        the estimated seconds to the end."""
        record: dict[str, Any] = {"state": state, "iteration": iteration, "updated": time.time()}
        extra = {"iterations": iterations, "interval_s": interval_s, "eta_s": eta_s}
        record |= {key: value for key, value in extra.items() if value is not None}
        record |= {"pid": os.getpid(), **this_host()}
        _write(self.root / "status.json", json.dumps(record).encode(), "status")

    def truncate_metrics(self, iteration: int) -> list[str]:
        """Drop metrics.jsonl and skipped.jsonl records after ``iteration``.

        A resumed (or rolled-back) run re-logs them, so they are never duplicated. A
        malformed line is dropped too.

        Returns:
            One line per malformed line dropped, naming the file and line; a last line cut
            short by a kill (no newline) is dropped without one.
        """
        problems: list[str] = []
        for name, check in (("metrics.jsonl", check_metrics), (SKIPPED_LOG, check_skipped)):
            path = self.root / name
            if not path.exists():
                continue
            kept = []
            for line, record in read_records(path.read_bytes(), path, check, problems, False):
                if record["iteration"] <= iteration:
                    kept.append(line)
            _write(path, "".join(f"{line}\n" for line in kept).encode(), "log")
        return problems

    def logged(self, iteration: int) -> bool:
        """Whether metrics.jsonl holds a record of ``iteration``."""
        path = self.root / "metrics.jsonl"
        if not path.exists():
            return False
        found = read_records(path.read_bytes(), path, check_metrics, [], cut_short=False)
        return any(record["iteration"] == iteration for _, record in found)

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
