"""What the three datasets share: image/label pairs, label formats, and the Dataset class.

A dataset module (``cityscapes``, ``gta5``, ``synthia``) only says where its files are and
which ids its labels hold. This module turns that into a ``torch`` dataset whose items are
``Sample(image, label, name)``: a (3, H, W) float image in [0, 1] and an (H, W) int64
label in train ids with ``IGNORE_INDEX = 255``.

Labels are read from the prepared ``*_labelTrainIds.png`` files when every pair has one
(``rccr data prepare`` writes them), and otherwise mapped from the raw ids on the fly.
A raw label modified after its train-id file was written is mapped from the raw file too,
with a warning to run ``rccr data prepare`` again (which refreshes it), so an edited label
is never silently read from a stale file. Either way, a value the format does not know is
an error that names the file.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from rccr.data.files import DataError, MissingData, read_image, read_label
from rccr.data.labels import IGNORE_INDEX, NUM_CLASSES
from rccr.data.transforms import JointTransform

__all__ = [
    "TRAIN_IDS",
    "TRAIN_IDS_SUFFIX",
    "LabelFormat",
    "LabelSource",
    "Pair",
    "Sample",
    "SegmentationDataset",
    "describe_paths",
    "list_files",
    "pairs_by_name",
    "require_dir",
    "select_pairs",
]

LabelSource = Literal["auto", "raw", "train_ids"]
TRAIN_IDS_SUFFIX = "_labelTrainIds.png"
_MAX_LISTED = 10
_MAX_LIST_BYTES = 64 << 20  # a list of every Cityscapes and GTA5 image is about 2 MiB


class Sample(NamedTuple):
    """One dataset item. ``DataLoader`` collates these field by field."""

    image: torch.Tensor
    """(3, H, W) float32 RGB in [0, 1]."""
    label: torch.Tensor
    """(H, W) int64 train ids, 255 = ignore."""
    name: str
    """The image's path relative to the dataset's image folder."""


@dataclass(frozen=True)
class Pair:
    """An image, its raw label file, and where its prepared train-id label goes."""

    image: Path
    label: Path
    train_ids: Path
    name: str


@dataclass(frozen=True, eq=False)
class LabelFormat:
    """How the raw values of a dataset's label files map to train ids.

    Attributes:
        description: what the raw values are, for error messages.
        lut: (N,) uint8 raw value -> train id (or 255).
        known: (N,) bool, which raw values may occur.
    """

    description: str
    lut: np.ndarray
    known: np.ndarray

    def to_train_ids(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Map an (H, W) array of raw values to uint8 train ids.

        Raises:
            DataError: naming ``path`` and the unknown values, if any.
        """
        values = np.unique(raw)
        unknown = [int(v) for v in values if v >= len(self.known) or not self.known[v]]
        if unknown:
            shown = ", ".join(map(str, unknown[:_MAX_LISTED]))
            raise DataError(f"{path}: label values {shown} are not {self.description}")
        return self.lut[raw]


def _train_id_format() -> LabelFormat:
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    lut[:NUM_CLASSES] = np.arange(NUM_CLASSES)
    known = np.zeros(256, dtype=bool)
    known[:NUM_CLASSES] = known[IGNORE_INDEX] = True
    return LabelFormat(f"train ids (0..{NUM_CLASSES - 1}, or {IGNORE_INDEX} = ignore)", lut, known)


TRAIN_IDS = _train_id_format()
"""The format of prepared ``*_labelTrainIds.png`` files."""


def describe_paths(paths: Sequence[object], limit: int = _MAX_LISTED) -> str:
    """A bulleted list of at most ``limit`` paths, with a count of the rest."""
    lines = [f"  {p}" for p in paths[:limit]]
    if len(paths) > limit:
        lines.append(f"  ... and {len(paths) - limit} more")
    return "\n".join(lines)


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder, else raise a DataError saying what belongs there."""
    if not path.is_dir():
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        raise MissingData(f"{path}: folder not found{where}; expected {what}")
    return path


def list_files(folder: Path, suffix: str, exclude_suffix: str | None = None) -> list[Path]:
    """Files under ``folder`` (recursively) ending in ``suffix``, sorted; hidden ones skipped."""
    return sorted(
        p
        for p in folder.rglob(f"*{suffix}")
        if p.is_file()
        and not p.name.startswith(".")
        and not (exclude_suffix and p.name.endswith(exclude_suffix))
    )


def pairs_by_name(image_dir: Path, label_dir: Path, example: str) -> list[Pair]:
    """Pair each ``image_dir/X.png`` with ``label_dir/X.png`` (the GTA5 and SYNTHIA layouts).

    The prepared label goes beside the raw one as ``X_labelTrainIds.png``.

    Raises:
        DataError: if either folder is missing or there are no images.
    """
    require_dir(image_dir, f"images ({example}, ...)")
    require_dir(label_dir, f"labels ({example}, ...)")
    images = list_files(image_dir, ".png")
    if not images:
        raise DataError(f"{image_dir}: no .png images found; expected {example}, ...")
    pairs = []
    for image in images:
        rel = image.relative_to(image_dir)
        label = label_dir / rel
        pairs.append(
            Pair(image, label, label.with_name(label.stem + TRAIN_IDS_SUFFIX), rel.as_posix())
        )
    return pairs


def _read_list(list_path: Path) -> list[str]:
    try:
        with list_path.open("rb") as f:
            data = f.read(_MAX_LIST_BYTES + 1)
    except OSError as exc:
        raise DataError(f"{list_path}: cannot read list file: {exc}") from exc
    if len(data) > _MAX_LIST_BYTES:
        raise DataError(f"{list_path}: larger than {_MAX_LIST_BYTES >> 20} MiB; not a list file")
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{list_path}: not a list file (not UTF-8 text at byte {exc.start})"
        ) from None


def select_pairs(pairs: Sequence[Pair], list_file: str | os.PathLike | None) -> list[Pair]:
    """Keep the pairs named in ``list_file`` (one image name per line, in that order).

    Names are image paths relative to the image folder, as in the list files of the
    AdaptSegNet/DACS lineage (``00001.png``, ``frankfurt/frankfurt_000000_000294_leftImg8bit.png``).
    Blank lines and lines starting with '#' are skipped.

    Raises:
        DataError: if the list file is missing, larger than 64 MiB or not text, names an
            image that is not there, or names one twice (which would weigh it twice).
    """
    if list_file is None:
        return list(pairs)
    list_path = Path(list_file)
    by_name = {p.name: p for p in pairs}
    selected, unknown, repeated = [], [], []
    first_line: dict[str, int] = {}
    for number, line in enumerate(_read_list(list_path), start=1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        shown = name if len(name) <= 200 else name[:197] + "..."
        if name not in by_name:
            unknown.append(f"line {number}: {shown}")
        elif name in first_line:
            repeated.append(f"line {number}: {shown} (as line {first_line[name]})")
        else:
            first_line[name] = number
            selected.append(by_name[name])
    if unknown:
        raise DataError(
            f"{list_path}: {len(unknown)} entries name no image in the dataset:\n"
            + describe_paths(unknown)
        )
    if repeated:
        raise DataError(
            f"{list_path}: {len(repeated)} entries repeat an earlier line:\n"
            + describe_paths(repeated)
        )
    if not selected:
        raise DataError(f"{list_path}: list file selects no images")
    return selected


def _edited_since(pair: Pair) -> bool:
    """Whether ``pair``'s raw label was modified after its train-id file was written."""
    try:
        return pair.label.stat().st_mtime_ns > pair.train_ids.stat().st_mtime_ns
    except OSError:  # either is missing: reported as such
        return False


class SegmentationDataset(Dataset[Sample]):
    """Image/label pairs decoded to train ids and passed through a joint transform.

    Args:
        pairs: the files, in a fixed order.
        label_format: how the raw label files are encoded.
        transform: joint transform (resize, crop, flip).
        labels: "train_ids" reads prepared ``*_labelTrainIds.png`` files, "raw" maps the
            original label files, "auto" uses the prepared files when all exist.

    Raises:
        DataError: if there are no pairs, or a label file is missing.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        label_format: LabelFormat,
        transform: JointTransform,
        labels: LabelSource = "auto",
    ) -> None:
        if labels not in ("auto", "raw", "train_ids"):
            raise ValueError(f"labels={labels!r}: expected 'auto', 'raw' or 'train_ids'")
        self.pairs = list(pairs)
        self.transform = transform
        auto = labels == "auto"
        if labels == "auto":
            labels = "train_ids" if all(p.train_ids.is_file() for p in self.pairs) else "raw"
        self.label_source: LabelSource = labels
        self.label_format = TRAIN_IDS if labels == "train_ids" else label_format
        self._raw_format = label_format
        # Pairs read from the raw label although prepared: edited since their train ids.
        check = auto and labels == "train_ids"
        self._from_raw = {i for i, p in enumerate(self.pairs) if check and _edited_since(p)}
        expected = [self._label(i)[0] for i in range(len(self.pairs))]
        missing = [path for path in expected if not path.is_file()]
        if missing:
            raise DataError(
                f"{len(missing)} label files are missing (expected one per image):\n"
                + describe_paths(missing)
            )
        if self._from_raw:
            stale = [self.pairs[i].label for i in sorted(self._from_raw)]
            count = "1 raw label is" if len(stale) == 1 else f"{len(stale)} raw labels are"
            its = "its train-id file" if len(stale) == 1 else "their train-id files"
            warnings.warn(
                f"{count} newer than {its} (e.g. {stale[0]}); mapped from the raw file "
                "instead. Run `rccr data prepare` on the dataset again to refresh them.",
                stacklevel=3,
            )

    def _label(self, index: int) -> tuple[Path, LabelFormat]:
        """Where pair ``index``'s label is read from, and how its values map to train ids."""
        pair = self.pairs[index]
        if self.label_source == "train_ids" and index not in self._from_raw:
            return pair.train_ids, TRAIN_IDS
        return pair.label, self._raw_format

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Decode pair ``index`` without transforming it.

        Returns:
            (H, W, 3) uint8 RGB image and (H, W) uint8 train-id label.

        Raises:
            DataError: naming the file, for an unreadable file, a size mismatch, or
                unknown label values.
        """
        pair = self.pairs[index]
        label_path, label_format = self._label(index)
        image = read_image(pair.image)
        label = label_format.to_train_ids(read_label(label_path), label_path)
        if image.shape[:2] != label.shape:
            raise DataError(
                f"{label_path}: label is {label.shape[1]}x{label.shape[0]} but its image "
                f"{pair.image} is {image.shape[1]}x{image.shape[0]}; expected equal sizes"
            )
        return image, label

    def __getitem__(self, index: int) -> Sample:
        image, label = self.load(index)
        image_tensor, label_tensor = self.transform(image, label)
        return Sample(image_tensor, label_tensor, self.pairs[index].name)
