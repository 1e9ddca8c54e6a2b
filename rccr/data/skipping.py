"""Training samples that cannot be read: replaced deterministically, and reported.

A long run should neither die on one corrupt file nor lose track of it. :class:`ReplaceBad`
wraps a training dataset so that reading item ``i`` never fails on a bad file: when it
raises :class:`DataError` (a corrupt or truncated image, a label of the wrong size, label
values the format does not know), the item is replaced by the next one that reads,
``i + 1, i + 2, ...`` (wrapping around). The replacement depends only on ``i`` and on which
files are bad, so a run stays reproducible, and it runs under the same seeded augmentation
RNG the data stream set for ``i``.

Each item carries the list of what it replaced, so the report reaches the main process
through a ``DataLoader``, worker processes included; there the trainer decides
(``rccr.training.faults``): stop with the first error, naming the file (the default), or log
every skipped file to the run directory and go on (``data.skip_bad``).

The validation set is never skipped over: :func:`require_readable` checks it whole before
training starts.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from torch.utils.data import Dataset

from rccr.data.dataset import Sample, SegmentationDataset
from rccr.data.files import DataError

__all__ = ["Checked", "ReplaceBad", "replaced_samples", "require_readable"]


class Checked(NamedTuple):
    """An item of :class:`ReplaceBad`; a ``DataLoader`` collates it field by field."""

    sample: Sample
    """The item, or the readable item that replaced it."""
    replaced: str
    """JSON list of ``{"name", "error"}``, one per unreadable item passed over ("[]": none).
    A string, so that default collation turns a batch of them into a list."""


class ReplaceBad(Dataset[Checked]):
    """A dataset whose items never fail on a bad file; each says what it replaced.

    Args:
        dataset: the training dataset (its ``pairs`` name the files in reports).

    Raises (from ``__getitem__``):
        DataError: only if no item of the dataset can be read at all.
    """

    def __init__(self, dataset: SegmentationDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Checked:
        size = len(self.dataset)
        replaced: list[dict[str, str]] = []
        for offset in range(size):
            candidate = (index + offset) % size
            try:
                sample = self.dataset[candidate]
            except DataError as exc:
                replaced.append({"name": self.dataset.pairs[candidate].name, "error": str(exc)})
                continue
            return Checked(sample, json.dumps(replaced))
        raise DataError(
            f"none of the {size} samples can be read; the first error: {replaced[0]['error']}"
        )


def replaced_samples(batch: Checked) -> list[dict[str, str]]:
    """The items a collated batch passed over, in batch order.

    Args:
        batch: a ``Checked`` collated by a ``DataLoader`` (``replaced`` is then a list of
            strings, one per item), or a single item.

    Returns:
        One ``{"name", "error"}`` per unreadable item; the error starts with the file's path.
    """
    texts = [batch.replaced] if isinstance(batch.replaced, str) else batch.replaced
    return [item for text in texts for item in json.loads(text)]


def require_readable(dataset: SegmentationDataset, threads: int = 8) -> None:
    """Decode every item of a dataset once, untransformed, and refuse it if any is bad.

    For the validation set: evaluation must score every file (skipping one would change the
    score), so a bad one is better found before training than at the first evaluation,
    hours later. Decoding runs in threads (image decoders release the GIL).

    Raises:
        DataError: naming the first bad file and how many more there are.
    """

    def error(index: int) -> str | None:
        try:
            dataset.load(index)
        except DataError as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(threads) as pool:
        errors = [e for e in pool.map(error, range(len(dataset))) if e is not None]
    if errors:
        more = f" (and {len(errors) - 1} more files)" if len(errors) > 1 else ""
        raise DataError(f"{errors[0]}{more}; evaluation needs every file of the validation set")
