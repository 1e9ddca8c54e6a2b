"""Tests for the ring-buffer memory bank."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rccr.data.labels import IGNORE_INDEX
from rccr.method.memory_bank import DOMAIN_AUGMENTED, DOMAIN_TARGET, MemoryBank, sample_entries


def _rows(start: int, n: int, dim: int = 3) -> torch.Tensor:
    """Rows whose first column is their global index, so order is visible: (n, dim)."""
    return torch.arange(start, start + n, dtype=torch.float32)[:, None].expand(n, dim).clone()


def test_memory_bank__fills_in_order() -> None:
    bank = MemoryBank(capacity=10, dim=3)
    assert len(bank) == 0
    bank.enqueue(_rows(0, 4), torch.arange(4), DOMAIN_TARGET, step=7)
    features, labels, domain, step = bank.contents()
    assert features.shape == (4, 3)
    assert torch.equal(features[:, 0], torch.arange(4.0))
    assert torch.equal(labels, torch.arange(4))
    assert torch.all(domain == DOMAIN_TARGET) and torch.all(step == 7)


@pytest.mark.parametrize(("capacity", "n", "times"), [(10, 4, 4), (10, 3, 7), (6, 6, 3), (7, 1, 9)])
def test_memory_bank__wrap_around_keeps_last_rows_in_order(
    capacity: int, n: int, times: int
) -> None:
    bank = MemoryBank(capacity=capacity, dim=3)
    for t in range(times):
        domain = DOMAIN_AUGMENTED if t % 2 == 0 else DOMAIN_TARGET
        bank.enqueue(_rows(t * n, n), torch.arange(t * n, (t + 1) * n), domain, step=t)
    total = n * times
    kept = torch.arange(max(total - capacity, 0), total)
    features, labels, domain, step = bank.contents()
    assert len(bank) == kept.numel()
    assert torch.equal(features[:, 0], kept.float())
    assert torch.equal(labels, kept)
    assert torch.equal(step, kept // n)
    assert torch.equal(domain, ((kept // n) % 2).to(torch.int8))


def test_memory_bank__more_rows_than_capacity_keeps_last() -> None:
    bank = MemoryBank(capacity=5, dim=3)
    bank.enqueue(_rows(0, 2), torch.zeros(2, dtype=torch.long), DOMAIN_TARGET, step=0)
    bank.enqueue(_rows(100, 12), torch.arange(12), torch.arange(12) % 2, step=1)
    features, labels, domain, step = bank.contents()
    assert torch.equal(features[:, 0], torch.arange(107.0, 112.0))
    assert torch.equal(labels, torch.arange(7, 12))
    assert torch.equal(domain, (torch.arange(7, 12) % 2).to(torch.int8))
    assert torch.all(step == 1)


def test_memory_bank__stores_detached() -> None:
    bank = MemoryBank(capacity=4, dim=3)
    features = torch.randn(2, 3, requires_grad=True)
    bank.enqueue(features * 2, torch.zeros(2, dtype=torch.long), DOMAIN_AUGMENTED, step=0)
    assert not bank.contents()[0].requires_grad


def test_memory_bank__state_dict_round_trip() -> None:
    bank = MemoryBank(capacity=10, dim=3)
    for t in range(4):
        bank.enqueue(torch.randn(4, 3), torch.randint(0, 19, (4,)), t % 2, step=t)
    copy = MemoryBank(capacity=10, dim=3)
    copy.load_state_dict(bank.state_dict())
    for a, b in zip(bank.contents(), copy.contents(), strict=True):
        assert torch.equal(a, b)
    bank.enqueue(torch.ones(3, 3), torch.zeros(3, dtype=torch.long), 0, step=9)
    copy.enqueue(torch.ones(3, 3), torch.zeros(3, dtype=torch.long), 0, step=9)
    for a, b in zip(bank.contents(), copy.contents(), strict=True):
        assert torch.equal(a, b)


def test_memory_bank__state_without_truth_loads_as_unknown() -> None:
    """A checkpoint written before banks kept true classes resumes; its rows' truth is 255."""
    bank = MemoryBank(capacity=6, dim=3)
    bank.enqueue(torch.randn(4, 3), torch.arange(4), 0, step=0, truth=torch.arange(4))
    old = {k: v for k, v in bank.state_dict().items() if k != "truth"}
    copy = MemoryBank(capacity=6, dim=3)
    copy.truth.fill_(7)
    copy.load_state_dict(old)
    assert copy.truths().tolist() == [IGNORE_INDEX] * 4
    assert torch.equal(copy.contents()[0], bank.contents()[0])
    whole = MemoryBank(capacity=6, dim=3)
    whole.load_state_dict(bank.state_dict())
    assert whole.truths().tolist() == [0, 1, 2, 3]


def test_memory_bank__snapshot_dtypes() -> None:
    bank = MemoryBank(capacity=10, dim=3)
    bank.enqueue(torch.randn(6, 3), torch.arange(6), DOMAIN_TARGET, step=2)
    snap = bank.snapshot()
    assert snap["features"].dtype == np.float16 and snap["features"].shape == (6, 3)
    assert snap["labels"].dtype == np.int64
    assert snap["domain"].dtype == np.int8
    assert snap["step"].dtype == np.int64


def test_memory_bank__for_steps_capacity() -> None:
    bank = MemoryBank.for_steps()
    assert bank.capacity == 4000 * 2 * 3 and bank.features.shape == (24000, 128)


def test_memory_bank__rejects_wrong_dim() -> None:
    bank = MemoryBank(capacity=4, dim=3)
    with pytest.raises(ValueError, match="features"):
        bank.enqueue(torch.randn(2, 5), torch.zeros(2, dtype=torch.long), 0, step=0)


@pytest.mark.parametrize("keep_ignore", [False, True])
def test_sample_entries__ignore_cells_only_with_the_release_switch(keep_ignore: bool) -> None:
    """method.bank_ignore: the release draws cells labelled 255 too; by default they are never
    drawn. Entries are the features and labels of the cells they name."""
    features = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(30).reshape(2, 3, 5) % 4
    labels[0, :2] = IGNORE_INDEX  # 10 of 30 cells
    entries = sample_entries(features, labels, 30, torch.Generator().manual_seed(1), keep_ignore)
    assert len(entries.cells) == (30 if keep_ignore else 20)
    flat = features.permute(0, 2, 3, 1).reshape(30, 4)
    assert torch.equal(entries.features, flat[entries.cells])
    assert torch.equal(entries.labels, labels.reshape(30)[entries.cells])
    assert (IGNORE_INDEX in entries.labels.tolist()) is keep_ignore


def test_sample_entries__by_default_never_draws_an_ignored_cell() -> None:
    """The default the trainer and the region explainer rely on (they never pass it)."""
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, 1:] = IGNORE_INDEX  # 12 of 16 cells ignored
    entries = sample_entries(torch.randn(1, 2, 4, 4), labels, 16, torch.Generator())
    assert sorted(entries.cells.tolist()) == [0, 1, 2, 3]


def test_memory_bank__pointer_and_size_are_int64_counters() -> None:
    bank = MemoryBank(capacity=5, dim=2)
    for n in (3, 4):  # the second write wraps around
        bank.enqueue(torch.randn(n, 2), torch.zeros(n, dtype=torch.long), 0, step=n)
    state = bank.state_dict()
    assert state["size"].dtype == state["ptr"].dtype == torch.int64
    assert (int(state["size"]), int(state["ptr"])) == (5, 2)


def test_memory_bank__sizes_checked() -> None:
    MemoryBank(capacity=1, dim=1)  # the smallest bank
    for capacity, dim in ((0, 3), (3, 0), (-1, -1)):
        with pytest.raises(ValueError, match=rf"^capacity and dim must be >= 1, got {capacity} "):
            MemoryBank(capacity=capacity, dim=dim)


def test_memory_bank__locations_of_other_steps_are_minus_one() -> None:
    """-1 is no location (locations are cell indices >= 0), so an earlier step's entry is
    never taken for one at the anchor's own cell, whatever cell it came from."""
    bank = MemoryBank(capacity=8, dim=2)
    bank.enqueue(torch.randn(3, 2), torch.zeros(3, dtype=torch.long), 0, step=4,
                 location=torch.tensor([1, 0, 5]))  # fmt: skip
    bank.enqueue(torch.randn(2, 2), torch.zeros(2, dtype=torch.long), 1, step=5,
                 location=torch.tensor([1, 2]))  # fmt: skip
    assert bank.locations(5).tolist() == [-1, -1, -1, 1, 2]
    assert bank.locations(4).tolist() == [1, 0, 5, -1, -1]
