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

The package, one concept per module: :mod:`~rccr.runs.paths` (the names: where a run goes,
which files count, user names confined to a root), :mod:`~rccr.runs.status` (status.json's
states, and telling a stale run), :mod:`~rccr.runs.lock`, :mod:`~rccr.runs.writer`,
:mod:`~rccr.runs.untrusted` (bounded reads of files that may hold anything, and checkpoints)
and :mod:`~rccr.runs.reader`.
"""

from __future__ import annotations

from rccr.runs.lock import LOCK_FILE as LOCK_FILE
from rccr.runs.lock import RunLock
from rccr.runs.paths import (
    SKIPPED_LOG,
    PathError,
    RunError,
    default_run_dir,
    iteration_files,
    resolve_inside,
)
from rccr.runs.reader import Run, load_run, read_skipped, saved_config
from rccr.runs.status import STALE_AFTER_S
from rccr.runs.status import Status as Status
from rccr.runs.untrusted import load_checkpoint, read_bounded
from rccr.runs.writer import RunWriter

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
