"""The run directory: the contract between trainer, notebooks and dashboard.

::

    runs/<run>/.lock                       held by the trainer writing the run (never deleted)
    runs/<run>/config.yaml                 resolved config (everything needed to re-run)
    runs/<run>/status.json                 state (running/finished/interrupted), iteration,
                                           updated at every log step (PID, host, ETA)
    runs/<run>/metrics.jsonl               one JSON object per logged step
    runs/<run>/skipped.jsonl               what training skipped: unreadable samples
                                           (data.skip_bad) and rolled-back batches
                                           (train.nan_retries), one JSON object each
    runs/<run>/checkpoints/iter_<N>.pt     student, optimiser, RNG, step (+ method state)
    runs/<run>/eval/iter_<N>.json          an EvalResult
    runs/<run>/features/iter_<N>.npz       memory-bank snapshot (written by the method)

:class:`RunWriter` writes it (every file atomically: temporary file, then rename), while
:class:`RunLock` keeps a second trainer out; :func:`load_run` reads it. The reader
tolerates a run that is still being written, and any file at all: every read is bounded in
size and nesting depth, and a missing, oversized, malformed or misnamed file becomes a line
in ``Run.problems`` naming the file and what is wrong, never an exception, except when the
folder is not a run at all. Only files named ``iter_<N>`` with N in ASCII digits and no
leading zero count as a checkpoint, evaluation or snapshot.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import math
import os
import re
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import yaml

from rccr.config import (
    MAX_CONFIG_BYTES,
    Config,
    ConfigError,
    config_from_dict,
    parse_yaml,
    quote,
    save_config,
)
from rccr.data.files import write_atomic
from rccr.evaluation import EvalResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SKIPPED_LOG",
    "STALE_AFTER_S",
    "PathError",
    "Run",
    "RunError",
    "RunLock",
    "RunWriter",
    "default_run_dir",
    "iteration_files",
    "load_checkpoint",
    "load_run",
    "read_bounded",
    "read_skipped",
    "resolve_inside",
    "saved_config",
]

Status = Literal["running", "finished", "interrupted", "stale", "unknown"]
# ASCII digits only (``\d`` takes any script's digits), and no leading zero, so that one
# iteration has exactly one name.
_ITER_FILE = re.compile(r"iter_(0|[1-9][0-9]*)\.(pt|json|npz)")
SKIPPED_LOG = "skipped.jsonl"
LOCK_FILE = ".lock"

STALE_AFTER_S = 3600.0
"""A "running" run whose status.json is older than this, and than 10 of its log intervals,
is stale (its trainer is gone); on the trainer's own host a vanished PID says so at once."""
_STALE_INTERVALS = 10

_MiB = 1 << 20
# The most a reader takes of each file; a larger one is a problem, not read. metrics.jsonl
# logged at every step of a 250k-iteration run is about 50 MiB.
_LIMITS = {"status": _MiB, "metrics": 64 * _MiB, "skipped": 64 * _MiB, "eval": 16 * _MiB}
_JSON_DEPTH = 32  # run files are flat records; deeper nesting is not ours
_LISTED = 10  # misnamed files listed per folder


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
        raise PathError(f"{quote(name)}: expected a non-empty name inside {base}")
    if name.startswith(("/", "\\")) or Path(name).is_absolute() or ":" in name:
        raise PathError(f"{quote(name)}: absolute paths are refused; give a name inside {base}")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise PathError(f"{quote(name)}: '..' is refused; give a name inside {base}")
    path = base / name
    resolved = path.resolve()
    if resolved != base and not resolved.is_relative_to(base):
        raise PathError(f"{quote(name)}: leads to {resolved}, outside {base} (through a symlink)")
    return path


def default_run_dir(config: Config) -> Path:
    """Where a run goes when no folder is given: ``runs/<name>-<mode>`` (``runs/toy-rccr``,
    ``runs/toy-source-only``), so the same preset trained in two modes never collides."""
    return Path("runs") / f"{config.name}-{config.train.mode.replace('_', '-')}"


def iteration_files(
    folder: Path, suffix: str, problems: list[str] | None = None
) -> dict[int, Path]:
    """``iter_<N><suffix>`` files in ``folder`` by N.

    Hidden files (the temporaries of atomic writes) are passed over; any other entry not
    named ``iter_<N><suffix>`` (``iter_0006.pt``, ``iter_٩.pt``, ``iter_6.pt.bak``) is
    ignored, with a line in ``problems`` if given.
    """
    if not folder.is_dir():
        return {}
    found, misnamed = {}, []
    for path in sorted(folder.iterdir()):
        match = _ITER_FILE.fullmatch(path.name)
        if match and path.suffix == suffix:
            found[int(match.group(1))] = path
        elif not path.name.startswith("."):
            misnamed.append(path)
    if problems is not None:
        problems += [f"{path}: not named iter_<N>{suffix}; ignored" for path in misnamed[:_LISTED]]
        if len(misnamed) > _LISTED:
            problems.append(f"{folder}: {len(misnamed) - _LISTED} more files not named "
                            f"iter_<N>{suffix}; ignored")  # fmt: skip
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


def _this_host() -> dict[str, str]:
    """Where this process runs: the host name, and the PID namespace where there is one
    (two containers may share a host name, never a PID namespace)."""
    host = {"host": socket.gethostname()}
    with contextlib.suppress(OSError):
        host["pid_ns"] = os.readlink("/proc/self/ns/pid")
    return host


class RunLock:
    """An exclusive hold on a run directory: one trainer writes a run at a time.

    An ``flock`` on ``<run>/.lock``, a file that is never deleted (a deleted lock file lets
    two trainers lock two different files). The holder writes its PID and host into it.
    :meth:`close` releases it; the OS releases it when the process dies, also on
    ``kill -9``. A forked child (a DataLoader worker) closes its copy of the lock file at
    once, so a worker outliving a killed trainer does not keep the run locked.

    Args:
        root: the run directory (created if needed).

    Raises:
        RunError: in one line, naming the holder's PID and host, if another process holds
            the run; naming ``root`` if it is a file.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise RunError(f"{self.root}: not a folder; choose another output folder")
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise RunError(
                f"{self.root}: in use by another trainer ({holder}); wait for it to finish "
                "or stop it, or choose another output folder"
            ) from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), **_this_host()}).encode(), 0)
        self._fd: int | None = fd
        _HELD.add(fd)

    def close(self) -> None:
        """Release the run (a no-op once released)."""
        if self._fd is not None:
            _HELD.discard(self._fd)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_HELD: set[int] = set()  # this process's lock files


def _forget_locks() -> None:
    """In a forked child: close the lock files, which stay locked by the parent alone."""
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_locks)


def _lock_holder(fd: int) -> str:
    """The holder of a lock file, "PID <pid> on <host>", as it wrote itself in."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0))
        return f"PID {int(holder['pid'])} on {str(holder['host'])[:100]}"
    except (OSError, ValueError, KeyError, TypeError):
        return "PID unknown: it is starting or stopping"


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
        record |= {"pid": os.getpid(), **_this_host()}
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
        for name, check in (("metrics.jsonl", _check_metrics), (SKIPPED_LOG, _check_skipped)):
            path = self.root / name
            if not path.exists():
                continue
            kept = []
            for line, record in _records(path.read_bytes(), path, check, problems, False):
                if record["iteration"] <= iteration:
                    kept.append(line)
            _write(path, "".join(f"{line}\n" for line in kept).encode(), "log")
        return problems

    def logged(self, iteration: int) -> bool:
        """Whether metrics.jsonl holds a record of ``iteration``."""
        path = self.root / "metrics.jsonl"
        if not path.exists():
            return False
        found = _records(path.read_bytes(), path, _check_metrics, [], cut_short=False)
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
            return f"stale (last seen {_ago(time.time() - self.updated)} ago)"
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


# Reading: every file is bounded in size and depth, and any error becomes a problem line.


def read_bounded(path: Path, limit: int) -> bytes:
    """The content of a regular file of at most ``limit`` bytes (any run file is read so).

    Raises:
        RunError: naming the file if it is not a regular file (a FIFO would block, a device
            never end) or is larger than ``limit``.
        OSError: if it cannot be read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO must not wait
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise RunError(f"{path}: not a regular file; not read")
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1) if info.st_size <= limit else b""
    if info.st_size > limit or len(data) > limit:
        raise RunError(f"{path}: larger than {limit / _MiB:g} MiB; not read")
    return data


def _read_text(path: Path, limit: int) -> str:
    """:func:`read_bounded`, decoded as UTF-8 (RunError naming the file if it is not)."""
    try:
        return read_bounded(path, limit).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _parse_json(text: str) -> Any:
    """``json.loads``, refusing nesting deeper than a run file has.

    Raises:
        ValueError: for malformed JSON or too deep nesting.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"nested more than {_JSON_DEPTH} deep") from None
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            if depth > _JSON_DEPTH:
                raise ValueError(f"nested more than {_JSON_DEPTH} deep")
            pending += [(child, depth + 1) for child in children]
    return value


def _count(record: dict[str, Any], key: str) -> int:
    """``record[key]`` if it is a non-negative integer (not a bool, a float or a string)."""
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError(f"{key} must be a non-negative integer, got {quote(value)}")
    return value


def _check_metrics(record: dict[str, Any]) -> None:
    _count(record, "iteration")


def _check_skipped(record: dict[str, Any]) -> None:
    _count(record, "iteration")
    kind = record.get("kind")
    if kind not in ("sample", "batch"):
        raise ValueError(f"kind must be 'sample' or 'batch', got {quote(kind)}")
    if kind == "batch":
        _count(record, "batch")


def _records(
    data: bytes,
    path: Path,
    check: Callable[[dict[str, Any]], None],
    problems: list[str],
    cut_short: bool = True,
) -> list[tuple[str, dict[str, Any]]]:
    """(line, record) for each well-formed line of a JSON-lines log; each malformed line
    becomes a problem naming it.

    Args:
        cut_short: report a last line without a newline (one cut short by a kill, or being
            written) too, as "probably being written".
    """
    lines = data.split(b"\n")
    complete = lines[-1] == b""
    if complete:
        lines.pop()
    found = []
    for number, raw in enumerate(lines, start=1):
        last = number == len(lines) and not complete
        try:
            line = raw.decode("utf-8")
            record = _parse_json(line)
            if not isinstance(record, dict) or "iteration" not in record:
                raise ValueError("expected an object with 'iteration'")
            check(record)
            found.append((line, record))
        except (UnicodeDecodeError, ValueError) as exc:
            if last and not cut_short:
                continue
            note = " (the last line: probably being written)" if last else ""
            problems.append(f"{path}: line {number} malformed{note}: {exc}")
    return found


def _read_log(
    path: Path, kind: str, check: Callable[[dict[str, Any]], None], problems: list[str]
) -> list[dict[str, Any]]:
    try:
        data = read_bounded(path, _LIMITS[kind])
    except (RunError, OSError) as exc:
        problems.append(str(exc) if isinstance(exc, RunError) else f"{path}: unreadable: {exc}")
        return []
    return [record for _, record in _records(data, path, check, problems)]


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
        data = parse_yaml(_read_text(path, MAX_CONFIG_BYTES))
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
        data = parse_yaml(_read_text(path, MAX_CONFIG_BYTES))
        run.config = config_from_dict(data if isinstance(data, dict) else {"": data})
    except RunError as exc:
        run.problems.append(str(exc))
    except Exception as exc:  # a run file may hold anything; the reader must not fail
        run.problems.append(f"{path}: malformed: {_one_line(exc)}")


def _one_line(exc: BaseException) -> str:
    """An error's message on one line of at most 300 characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _ago(seconds: float) -> str:
    """A duration as a person says it: "40 s", "5 min", "3 h", "2 days"."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{max(int(seconds), 0)} s"


def _finite(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _gone(pid: int) -> bool:
    """Whether no process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # PermissionError: it exists, and is another user's
        return False
    return False


def _staleness(status: dict[str, Any], now: float) -> str | None:
    """Why a status.json that says "running" no longer describes a live trainer, if it
    does not: its process is gone (on this host), or it has not been updated for more than
    :data:`STALE_AFTER_S` and 10 log intervals."""
    pid, host = status.get("pid"), status.get("host")
    here = _this_host()
    same_host = host == here["host"] and status.get("pid_ns") == here.get("pid_ns")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        pid = None
    if same_host and pid is not None and _gone(pid):
        return f"process {pid} on {host} is gone"
    updated = _finite(status.get("updated"))
    interval = _finite(status.get("interval_s")) or 0.0
    limit = max(STALE_AFTER_S, _STALE_INTERVALS * interval)
    if updated is not None and now - updated > limit:
        return f"it was not updated for more than {_ago(limit)}"
    return None


def _read_status(run: Run) -> None:
    path = run.path / "status.json"
    if not _present(path):
        run.problems.append(f"{path}: missing; the run's state is unknown")
        return
    try:
        data = _parse_json(_read_text(path, _LIMITS["status"]))
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("state") not in ("running", "finished", "interrupted"):
            raise ValueError(f"unknown state {quote(data.get('state'))}")
        run.status, run.iteration = data["state"], _count(data, "iteration")
    except RunError as exc:
        run.problems.append(str(exc))
        return
    except Exception as exc:  # a run file may hold anything; the reader must not fail
        run.problems.append(f"{path}: malformed: {_one_line(exc)}")
        return
    run.updated = _finite(data.get("updated"))
    stale = _staleness(data, time.time()) if run.status == "running" else None
    if stale is not None:
        run.status = "stale"
        seen = f"; last seen {_ago(time.time() - run.updated)} ago" if run.updated else ""
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
    return _read_log(path, "skipped", _check_skipped, [] if problems is None else problems)


def _read_metrics(run: Run) -> None:
    path = run.path / "metrics.jsonl"
    if not _present(path):
        run.problems.append(f"{path}: missing (no step has been logged yet)")
        return
    run.records = _read_log(path, "metrics", _check_metrics, run.problems)


def _read_evals(run: Run) -> None:
    for iteration, path in iteration_files(run.path / "eval", ".json", run.problems).items():
        try:
            data = _parse_json(_read_text(path, _LIMITS["eval"]))
            run.evals[iteration] = EvalResult.from_json(data)
        except RunError as exc:
            run.problems.append(str(exc))
        except Exception as exc:  # a run file may hold anything; the reader must not fail
            run.problems.append(f"{path}: malformed evaluation: {_one_line(exc)}")


def load_run(path: str | os.PathLike) -> Run:
    """Read a run directory, tolerating one that is still being written, and any content
    of its files (see the module docstring).

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
