"""A 2-D t-SNE map of a memory-bank snapshot, cached on disk by the file's content.

RCCR's bank (:mod:`rccr.method.memory_bank`) holds projected features of the augmented
images (student) and of the clean target images (teacher), with their (pseudo-)labels.
At every checkpoint the trainer writes it to ``features/iter_<N>.npz``. A t-SNE of those
features shows whether classes form clusters and whether the two domains mix::

    snapshot = load_bank_snapshot("runs/toy-rccr/features/iter_3000.npz")
    embedding = embed_bank(path, cache_dir="runs/.cache/tsne")   # seconds the first time
    embedding = embed_bank(path, cache_dir="runs/.cache/tsne")   # read back from the cache

The cache key is the SHA-256 of the snapshot file plus the t-SNE settings, so a rewritten
file is never matched with an old map, and renaming or copying a run keeps its maps.

A snapshot is a file anyone could have written, so it is checked before anything is
loaded or mapped: the sizes its .npy headers declare (at most :data:`MAX_SNAPSHOT_BYTES`
in all, so a small compressed file cannot expand to gigabytes), then dtypes (floating
features, integer labels, domains and steps), shapes, finite values of a normalised
feature's size; and before t-SNE, that the rows mapped are not all (nearly) identical,
which is what a collapsed projection head writes and what t-SNE cannot map (NaN, or a
crash from 5000 rows).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rccr.data.files import write_atomic
from rccr.runs import RunError, read_bounded

__all__ = [
    "MAX_SNAPSHOT_BYTES",
    "BankEmbedding",
    "BankSnapshot",
    "TSNESettings",
    "embed_bank",
    "load_bank_snapshot",
]

_CACHE_VERSION = 1  # bump when the computation changes, so old maps are not reused
_FFT_FROM = 5000  # points from which the FFT-accelerated gradient is used

MAX_SNAPSHOT_BYTES = 512 << 20
"""The most memory a snapshot's arrays may declare (and its file may take). The paper's
bank (2 x 4000 rows x 3 steps of 128 float16 features) is 6 MiB per process."""
_MAX_FEATURE = 1e4  # bank features are L2-normalised (|x| <= 1); far larger is not a bank
_MIN_SPREAD = 1e-6  # below this standard deviation in every column, t-SNE fails
_ARRAYS = ("features", "labels", "domain", "step")


def _size(n_bytes: float) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n_bytes >= 1 << shift:
            return f"{n_bytes / (1 << shift):.1f} {unit}"
    return f"{int(n_bytes)} bytes"


def _check_headers(data: bytes, path: Path, limit: int) -> None:
    """Refuse an npz whose .npy headers declare more than ``limit`` bytes in all, or
    objects, before any array is read.

    Raises:
        RunError: naming the file.
        ValueError, zipfile.BadZipFile: for a file that is not an npz.
    """
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        if len(members) > 2 * len(_ARRAYS):
            raise ValueError(f"{len(members)} arrays; a snapshot has {len(_ARRAYS)}")
        for member in members:
            with archive.open(member) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"{member.filename}: .npy format {version} not read")
            if dtype.hasobject:
                raise ValueError(f"{member.filename}: holds Python objects")
            total += math.prod(shape) * dtype.itemsize
    if total > limit:
        raise RunError(
            f"{path}: declares {_size(total)} of arrays; a bank snapshot is at most {_size(limit)}"
        )


@dataclass(frozen=True)
class BankSnapshot:
    """The rows of a memory-bank snapshot.

    Attributes:
        features: (N, D) float32 projected features.
        labels: (N,) int64 (pseudo-)labels (255 = ignore).
        domain: (N,) int8, 0 = augmented image (student), 1 = clean target (teacher).
        step: (N,) int64 iteration each row was written at.
        truth: (N,) int64 true class of each row where the images had labels (the toy
            city; Cityscapes train with gtFine), 255 where unknown or in snapshots written
            before banks stored it. For analysis only.
    """

    features: np.ndarray
    labels: np.ndarray
    domain: np.ndarray
    step: np.ndarray
    truth: np.ndarray


def _parse_snapshot(data: bytes, path: Path) -> BankSnapshot:
    try:
        _check_headers(data, path, MAX_SNAPSHOT_BYTES)
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            missing = set(_ARRAYS) - set(arrays.files)
            if missing:
                raise ValueError(f"missing arrays {sorted(missing)}")
            features, labels, domain, step = (arrays[name] for name in _ARRAYS)
            truth = arrays["truth"] if "truth" in arrays.files else None
    except RunError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise RunError(f"{path}: not a memory-bank snapshot: {exc}") from exc
    if features.dtype.kind != "f":
        raise RunError(f"{path}: features must be floating point, got {features.dtype}")
    if features.ndim != 2 or features.shape[0] == 0:
        raise RunError(f"{path}: features must be a non-empty (N, D) array, got {features.shape}")
    if features.shape[1] == 0:
        raise RunError(f"{path}: features must have at least one column, got {features.shape}")
    n = features.shape[0]
    if truth is None:
        truth = np.full(n, 255, dtype=np.int64)
    for name, array in (("labels", labels), ("domain", domain), ("step", step), ("truth", truth)):
        if array.dtype.kind not in "iu":
            raise RunError(f"{path}: {name} must be integers, got {array.dtype}")
        if array.shape != (n,):
            raise RunError(f"{path}: {name} must have shape ({n},), got {array.shape}")
    if not np.isfinite(features).all():
        raise RunError(f"{path}: features contain NaN or Inf")
    largest = float(np.abs(features).max())
    if largest > _MAX_FEATURE:
        raise RunError(f"{path}: features hold values up to {largest:.0e}; a bank's features "
                       "are L2-normalised")  # fmt: skip
    return BankSnapshot(features.astype(np.float32), labels.astype(np.int64),
                        domain.astype(np.int8), step.astype(np.int64),
                        truth.astype(np.int64))  # fmt: skip


def _read_snapshot(path: Path) -> bytes:
    try:
        return read_bounded(path, MAX_SNAPSHOT_BYTES)
    except OSError as exc:
        raise RunError(f"{path}: cannot read: {exc}") from exc


def load_bank_snapshot(path: str | os.PathLike) -> BankSnapshot:
    """Read ``features/iter_<N>.npz`` (no pickled objects are loaded; see the module
    docstring for what is checked).

    Raises:
        RunError: naming the file if it is missing, truncated, too large or not a bank
            snapshot.
    """
    path = Path(path)
    return _parse_snapshot(_read_snapshot(path), path)


def _require_spread(features: np.ndarray, path: Path) -> None:
    """Refuse to map rows that are all (nearly) identical.

    Args:
        features: (n, D) the rows to map.
    """
    spread = float(features.astype(np.float64).std(axis=0).max())
    if spread < _MIN_SPREAD:
        raise RunError(
            f"{path}: the {features.shape[0]} features to map are (nearly) identical (largest "
            f"standard deviation {spread:.1e}): a collapsed projection head; nothing to map"
        )


@dataclass(frozen=True)
class TSNESettings:
    """How the map is computed (part of the cache key).

    Defaults keep 10k points within about 15 s on two cores: FFT-accelerated gradients
    (Barnes-Hut on one thread below 5000 points, where that is faster), a PCA
    initialisation (stable across runs), and a shortened schedule (125 early-exaggeration
    plus 250 normal iterations) that has converged at this size.

    Attributes:
        max_points: rows drawn (without replacement, by ``seed``) from a larger bank.
        perplexity: t-SNE perplexity (lowered to fit very small banks).
        seed: seeds the row sample and the optimisation.
        early_iterations: iterations with early exaggeration.
        iterations: iterations after it.
        threads: worker threads.
    """

    max_points: int = 10_000
    perplexity: float = 30.0
    seed: int = 0
    early_iterations: int = 125
    iterations: int = 250
    threads: int = 2

    def key(self) -> str:
        return (
            f"n{self.max_points}-p{self.perplexity:g}-s{self.seed}"
            f"-e{self.early_iterations}-i{self.iterations}-v{_CACHE_VERSION}"
        )


@dataclass(frozen=True)
class BankEmbedding:
    """A t-SNE map of (a sample of) one snapshot.

    Attributes:
        points: (n, 2) float32 map coordinates.
        rows: (n,) int64 rows of the snapshot that were mapped.
        labels, domain, step, truth: (n,) the mapped rows' labels, domains, steps and
            true classes (255: unknown).
        digest: SHA-256 of the snapshot file.
        cached: whether the map was read from the cache.
        seconds: time to compute or read it.
        cache_note: why the map could not be cached, if it could not.
    """

    points: np.ndarray
    rows: np.ndarray
    labels: np.ndarray
    domain: np.ndarray
    step: np.ndarray
    truth: np.ndarray
    digest: str
    cached: bool
    seconds: float
    cache_note: str | None = None


def _tsne(features: np.ndarray, settings: TSNESettings) -> np.ndarray:
    # openTSNE's OpenMP threads spin while they wait unless told otherwise; on a busy machine
    # that doubled the CPU time of the gradient (benchmarks/bench_dashboard.py). Read once,
    # when openTSNE's own libgomp loads, so it must be set before the first import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from openTSNE import TSNE

    n = features.shape[0]
    if n < 4:
        return np.zeros((n, 2), dtype=np.float32)  # nothing to arrange
    # The FFT gradient has a fixed cost per iteration that only pays off on large maps;
    # below that, Barnes-Hut on one thread is fastest (threads only add synchronisation).
    large = n >= _FFT_FROM
    tsne = TSNE(
        perplexity=min(settings.perplexity, (n - 1) / 3),
        early_exaggeration_iter=settings.early_iterations,
        n_iter=settings.iterations,
        negative_gradient_method="fft" if large else "bh",
        initialization="pca",
        n_jobs=settings.threads if large else 1,
        random_state=settings.seed,
    )
    return np.asarray(tsne.fit(features), dtype=np.float32)


def _read_cache(path: Path, n_rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(points, rows) from a cache file, or None if it is absent or unusable."""
    try:
        data = read_bounded(path, 64 << 20)
        _check_headers(data, path, 64 << 20)
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            points, rows = arrays["points"], arrays["rows"]
    except (OSError, RunError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    usable = points.ndim == 2 and points.shape == (rows.shape[0], 2) and rows.ndim == 1
    if not usable or (rows.size and (rows.min() < 0 or rows.max() >= n_rows)):
        return None
    return points.astype(np.float32), rows.astype(np.int64)


def embed_bank(
    path: str | os.PathLike,
    cache_dir: str | os.PathLike,
    settings: TSNESettings | None = None,
) -> BankEmbedding:
    """The t-SNE map of a snapshot, from ``cache_dir`` if it was computed before.

    Args:
        path: ``features/iter_<N>.npz``.
        cache_dir: folder of cached maps (created). An unusable cache file is recomputed
            and replaced; a cache that cannot be written is reported in ``cache_note``.
        settings: t-SNE settings (part of the cache key).

    Raises:
        RunError: naming the file if it is not a readable bank snapshot, or its rows are
            (nearly) identical.
    """
    settings = settings or TSNESettings()
    start = time.perf_counter()
    path = Path(path)
    data = _read_snapshot(path)
    digest = hashlib.sha256(data).hexdigest()
    snapshot = _parse_snapshot(data, path)
    n_rows = snapshot.features.shape[0]
    cache_file = Path(cache_dir) / f"{digest}-{settings.key()}.npz"
    found = _read_cache(cache_file, n_rows)
    note = None
    if found is not None:
        points, rows = found
    else:
        rng = np.random.default_rng(settings.seed)
        rows = np.arange(n_rows, dtype=np.int64)
        if n_rows > settings.max_points:
            rows = np.sort(rng.choice(n_rows, settings.max_points, replace=False))
        _require_spread(snapshot.features[rows], path)
        points = _tsne(snapshot.features[rows], settings)
        if not np.isfinite(points).all():  # never cached: a later openTSNE may do better
            raise RunError(f"{path}: t-SNE gave no map (NaN coordinates) for these features")
        buffer = io.BytesIO()
        np.savez(buffer, points=points, rows=rows)
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cache_file, buffer.getvalue())
        except OSError as exc:
            note = f"{cache_file}: could not cache the map: {exc}"
    return BankEmbedding(
        points=points,
        rows=rows,
        labels=snapshot.labels[rows],
        domain=snapshot.domain[rows],
        step=snapshot.step[rows],
        truth=snapshot.truth[rows],
        digest=digest,
        cached=found is not None,
        seconds=time.perf_counter() - start,
        cache_note=note,
    )
