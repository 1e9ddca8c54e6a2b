"""Data streams: seeded, resumable at any batch, independent of workers."""

from __future__ import annotations

import pytest
import torch
from fake_datasets import make_gta5

from rccr.data import GTA5, JointTransform, Size
from rccr.training.data_stream import DataStream


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> GTA5:
    root = make_gta5(tmp_path_factory.mktemp("gta5"), count=5)
    return GTA5(root, transform=JointTransform(crop=Size(8, 8), flip=True))


def _take(stream: DataStream, n: int) -> list[tuple[torch.Tensor, list[str]]]:
    return [(b.image, list(b.name)) for b in (next(stream) for _ in range(n))]


def _same(a: list, b: list) -> bool:
    return all(torch.equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a, b, strict=True))


def test_stream__same_seed_same_batches(dataset: GTA5) -> None:
    assert _same(_take(DataStream(dataset, 2, 0, 0), 6), _take(DataStream(dataset, 2, 0, 0), 6))
    assert not _same(_take(DataStream(dataset, 2, 0, 0), 6), _take(DataStream(dataset, 2, 1, 0), 6))
    assert not _same(_take(DataStream(dataset, 2, 0, 0), 6), _take(DataStream(dataset, 2, 0, 1), 6))


@pytest.mark.parametrize("start", [1, 2, 5])
def test_stream__starting_at_k_continues_a_fresh_stream(dataset: GTA5, start: int) -> None:
    full = _take(DataStream(dataset, 2, 3, 0), start + 4)
    assert _same(full[start:], _take(DataStream(dataset, 2, 3, 0, start=start), 4))


def test_stream__workers_change_nothing(dataset: GTA5) -> None:
    serial = _take(DataStream(dataset, 2, 0, 0), 5)
    assert _same(serial, _take(DataStream(dataset, 2, 0, 0, num_workers=2), 5))


def test_stream__each_epoch_visits_every_image_once(dataset: GTA5) -> None:
    names = [n for _, batch in _take(DataStream(dataset, 5, 0, 0), 3) for n in batch]
    for epoch in range(3):
        assert sorted(names[5 * epoch : 5 * epoch + 5]) == [p.name for p in dataset.pairs]


def test_stream__leaves_the_global_rng_alone(dataset: GTA5) -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    _take(DataStream(dataset, 2, 0, 0), 3)
    assert torch.equal(torch.rand(3), expected)
