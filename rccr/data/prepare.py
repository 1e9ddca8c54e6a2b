"""Prepare a dataset: check every file, write train-id labels and per-image class statistics.

``rccr data prepare {cityscapes,gta5,synthia} --root DIR`` runs :func:`prepare_dataset`:

1. Check the layout and pair every image with its label (both directions: an image
   without a label and a label without an image are problems).
2. Decode every image and label in full (a truncated file is a problem), check that the
   sizes agree and that every label value is an id the dataset defines.
3. Map labels to train ids and stage each ``*_labelTrainIds.png`` as a hidden temporary
   file beside its target; a file whose content would not change is left alone (only its
   modification time is brought past its raw label's, which datasets compare to notice a
   label edited after preparing).
4. Only if no file had a problem: rename the staged files into place and write
   ``<root>/class_stats.json`` (atomically). Otherwise delete the staged files and raise
   :class:`PrepareError` listing every problem by path, so a failed run leaves nothing
   half-written and a repeated run is idempotent.

``class_stats.json`` holds, per image (keyed by its path under the image folder, with the
split first for Cityscapes), its size, the pixel count of each of the 19 train ids and
of ignored pixels, plus dataset totals.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rccr.data import cityscapes, gta5, synthia
from rccr.data.dataset import (
    TRAIN_IDS_SUFFIX,
    LabelFormat,
    Pair,
    describe_paths,
    list_files,
    select_pairs,
)
from rccr.data.files import DataError, encode_png, read_image, read_label, write_atomic
from rccr.data.labels import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES

__all__ = ["DATASETS", "STATS_FILE", "PrepareError", "PrepareSummary", "prepare_dataset"]

STATS_FILE = "class_stats.json"
_STAGE_SUFFIX = ".rccr-stage"
_STATS_VERSION = 1


class PrepareError(DataError):
    """Preparation found problems; ``problems`` lists each one, starting with its path."""

    def __init__(self, root: Path, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"{root}: {len(problems)} problems found, nothing was written:\n"
            + describe_paths(problems)
        )


@dataclass(frozen=True)
class _Layout:
    """Where a dataset's pairs are, how its labels are encoded, and its raw label files."""

    pairs: Callable[[Path], list[Pair]]
    label_format: LabelFormat
    label_files: Callable[[Path], list[Path]]


def _cityscapes_splits(root: Path) -> list[str]:
    """The splits whose images are there (someone scoring a checkpoint may have only val);
    with none, all of them, so that the error names what is missing."""
    present = [s for s in cityscapes.SPLITS if (root / "leftImg8bit" / s).is_dir()]
    return present or list(cityscapes.SPLITS)


def _cityscapes_pairs(root: Path) -> list[Pair]:
    # Keys carry the split, so train and val share one stats file and one list file.
    return [
        dataclasses.replace(pair, name=f"{split}/{pair.name}")
        for split in _cityscapes_splits(root)
        for pair in cityscapes.cityscapes_pairs(root, split)
    ]


def _cityscapes_labels(root: Path) -> list[Path]:
    # gtFine comes as one archive of every split: only the splits prepared are looked at.
    splits = _cityscapes_splits(root)
    return [p for s in splits for p in list_files(root / "gtFine" / s, "_gtFine_labelIds.png")]


DATASETS: dict[str, _Layout] = {
    "cityscapes": _Layout(
        _cityscapes_pairs,
        cityscapes.LABEL_FORMAT,
        _cityscapes_labels,
    ),
    "gta5": _Layout(
        gta5.gta5_pairs,
        gta5.LABEL_FORMAT,
        lambda root: list_files(root / "labels", ".png", exclude_suffix=TRAIN_IDS_SUFFIX),
    ),
    "synthia": _Layout(
        synthia.synthia_pairs,
        synthia.LABEL_FORMAT,
        lambda root: list_files(root / "GT" / "LABELS", ".png", exclude_suffix=TRAIN_IDS_SUFFIX),
    ),
}


@dataclass(frozen=True)
class _ImageStats:
    width: int
    height: int
    pixels: list[int]
    """Pixel count of each of the 19 train ids."""
    ignored: int


@dataclass(frozen=True)
class _Checked:
    """What checking one pair found: its statistics and staged file, or a problem."""

    pair: Pair
    problem: str | None = None
    stats: _ImageStats | None = None
    staged: Path | None = None


def _stage_path(target: Path) -> Path:
    return target.with_name(f".{target.name}{_STAGE_SUFFIX}")


def _check_pair(pair: Pair, label_format: LabelFormat) -> _Checked:
    if not pair.image.is_file():
        return _Checked(pair, f"{pair.image}: image not found")
    if not pair.label.is_file():
        return _Checked(pair, f"{pair.label}: label not found (expected for image {pair.image})")
    try:
        image = read_image(pair.image)
        train_ids = label_format.to_train_ids(read_label(pair.label), pair.label)
    except DataError as exc:
        return _Checked(pair, str(exc))
    height, width = train_ids.shape
    if image.shape[:2] != (height, width):
        return _Checked(
            pair,
            f"{pair.label}: label is {width}x{height} but its image {pair.image} is "
            f"{image.shape[1]}x{image.shape[0]}; expected equal sizes",
        )
    counts = np.bincount(train_ids.ravel(), minlength=256)
    stats = _ImageStats(width, height, counts[:NUM_CLASSES].tolist(), int(counts[IGNORE_INDEX]))
    data = encode_png(train_ids)
    if pair.train_ids.is_file() and pair.train_ids.read_bytes() == data:
        return _Checked(pair, stats=stats)
    staged = _stage_path(pair.train_ids)
    staged.write_bytes(data)
    return _Checked(pair, stats=stats, staged=staged)


def _check_all(
    pairs: list[Pair], label_format: LabelFormat, workers: int, progress: bool
) -> Iterator[_Checked]:
    def bar(results: Iterator[_Checked]) -> Iterator[_Checked]:
        return iter(
            tqdm(results, total=len(pairs), desc="checking", unit="img", disable=not progress)
        )

    if workers <= 1:
        yield from bar(_check_pair(p, label_format) for p in pairs)
        return
    with ProcessPoolExecutor(workers) as pool:
        chunk = max(1, min(64, len(pairs) // (4 * workers)))
        yield from bar(pool.map(_check_pair, pairs, [label_format] * len(pairs), chunksize=chunk))


@dataclass(frozen=True)
class PrepareSummary:
    """The outcome of a successful preparation."""

    dataset: str
    root: Path
    images: int
    written: int
    unchanged: int
    seconds: float
    class_pixels: tuple[int, ...]
    splits: tuple[str, ...] = ()
    """Cityscapes: the splits prepared (those whose images are there)."""

    def __str__(self) -> str:
        total = max(1, sum(self.class_pixels))
        present = [
            f"{name} {100 * n / total:.1f}%"
            for name, n in zip(CLASS_NAMES, self.class_pixels, strict=True)
            if n
        ]
        splits = f" ({', '.join(self.splits)} only)" if self.splits else ""
        return (
            f"{self.dataset} at {self.root}{splits}: {self.images} images checked, "
            f"{self.written} train-id labels written, {self.unchanged} already up to date, "
            f"{self.seconds:.1f} s\nclass pixel shares: " + ", ".join(present)
        )


def _mark_current(pair: Pair) -> None:
    """Give a train-id file a modification time no earlier than its raw label's: datasets
    read a raw label modified after its train-id file from the raw file."""
    raw = pair.label.stat().st_mtime_ns
    if pair.train_ids.stat().st_mtime_ns < raw:
        os.utime(pair.train_ids, ns=(raw, raw))


def _remove_stale_stages(pairs: list[Pair]) -> None:
    """Delete staged files left by an earlier run that was killed before it finished."""
    for folder in {p.train_ids.parent for p in pairs}:
        if folder.is_dir():
            for stale in folder.glob(f".*{_STAGE_SUFFIX}"):
                stale.unlink(missing_ok=True)


def prepare_dataset(
    dataset: str,
    root: str | os.PathLike,
    workers: int | None = None,
    list_file: str | os.PathLike | None = None,
    progress: bool = True,
) -> PrepareSummary:
    """Check a dataset and write its train-id labels and class statistics.

    Args:
        dataset: "cityscapes", "gta5" or "synthia".
        root: the dataset's root folder, in its own layout.
        workers: processes decoding files (default: all cores).
        list_file: optional file of image keys to prepare (see module docstring); labels
            without an image are then not looked for.
        progress: show a progress bar.

    Raises:
        ValueError: for an unknown dataset name.
        DataError: if the layout is wrong (a folder is missing or empty).
        PrepareError: listing every problem file; nothing is written.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset {dataset!r}: expected one of {sorted(DATASETS)}")
    start = time.perf_counter()
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset root not found; expected a {dataset} folder")
    layout = DATASETS[dataset]
    pairs = select_pairs(layout.pairs(root), list_file)
    _remove_stale_stages(pairs)

    problems = []
    if list_file is None:
        paired = {p.label for p in pairs}
        problems += [
            f"{label}: label has no image"
            for label in layout.label_files(root)
            if label not in paired
        ]
    checked = list(_check_all(pairs, layout.label_format, workers or os.cpu_count() or 1, progress))
    problems += [c.problem for c in checked if c.problem is not None]
    if problems:
        for c in checked:
            if c.staged is not None:
                c.staged.unlink(missing_ok=True)
        raise PrepareError(root, problems)

    for c in checked:
        if c.staged is not None:
            os.replace(c.staged, c.pair.train_ids)
        _mark_current(c.pair)
    images = {c.pair.name: dataclasses.asdict(c.stats) for c in checked if c.stats is not None}
    totals = np.zeros(NUM_CLASSES, dtype=np.int64)
    for entry in images.values():
        totals += entry["pixels"]
    stats = {
        "format_version": _STATS_VERSION,
        "dataset": dataset,
        "class_names": list(CLASS_NAMES),
        "ignore_index": IGNORE_INDEX,
        "total_pixels": totals.tolist(),
        "images": images,
    }
    write_atomic(root / STATS_FILE, json.dumps(stats, indent=1).encode())
    written = sum(c.staged is not None for c in checked)
    return PrepareSummary(
        dataset,
        root,
        images=len(checked),
        written=written,
        unchanged=len(checked) - written,
        seconds=time.perf_counter() - start,
        class_pixels=tuple(int(n) for n in totals),
        splits=_prepared_splits(dataset, root),
    )


def _prepared_splits(dataset: str, root: Path) -> tuple[str, ...]:
    """The Cityscapes splits prepared, when some are not there (else empty)."""
    if dataset != "cityscapes":
        return ()
    splits = _cityscapes_splits(root)
    return tuple(splits) if len(splits) < len(cityscapes.SPLITS) else ()
