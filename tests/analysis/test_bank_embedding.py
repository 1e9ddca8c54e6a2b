"""rccr.analysis.bank_embedding: reading bank snapshots, the t-SNE map, its content-keyed
cache."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from rccr.analysis.bank_embedding import TSNESettings, embed_bank, load_bank_snapshot
from rccr.method.memory_bank import MemoryBank
from rccr.runs import RunError

FAST = TSNESettings(early_iterations=60, iterations=60, perplexity=10)


def _clusters(n_per: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three well-separated unit-norm clusters in 16-d: (3 * n_per, 16) and labels."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.eye(16)[:3] * 4
    labels = torch.arange(3).repeat_interleave(n_per)
    features = centres[labels] + 0.3 * torch.randn(3 * n_per, 16, generator=generator)
    return torch.nn.functional.normalize(features, dim=1), labels


def _snapshot(path: Path, n_per: int = 40, seed: int = 0) -> Path:
    """A real MemoryBank's snapshot, written as the trainer writes it."""
    features, labels = _clusters(n_per, seed)
    bank = MemoryBank(capacity=len(labels), dim=16)
    bank.enqueue(features, labels, domain=labels % 2, step=7)
    buffer = io.BytesIO()
    np.savez(buffer, **bank.snapshot())
    path.write_bytes(buffer.getvalue())
    return path


def test_load_bank_snapshot__reads_what_the_bank_wrote(tmp_path: Path) -> None:
    snapshot = load_bank_snapshot(_snapshot(tmp_path / "iter_7.npz"))
    features, labels = _clusters(40)
    np.testing.assert_allclose(snapshot.features, features.numpy(), atol=1e-3)  # float16 file
    np.testing.assert_array_equal(snapshot.labels, labels.numpy())
    np.testing.assert_array_equal(snapshot.domain, labels.numpy() % 2)
    assert snapshot.features.dtype == np.float32 and (snapshot.step == 7).all()


def _arrays(**changes: object) -> dict[str, object]:
    arrays: dict[str, object] = {
        "features": np.ones((4, 3), np.float16),
        "labels": np.zeros(4, np.int64),
        "domain": np.zeros(4, np.int8),
        "step": np.zeros(4, np.int64),
    }
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


@pytest.mark.parametrize(
    ("arrays", "says"),
    [
        (_arrays(step=None), "missing arrays \\['step'\\]"),
        (_arrays(labels=np.zeros(3, np.int64)), "labels must have shape \\(4,\\)"),
        (_arrays(features=np.ones(4, np.float16)), "non-empty \\(N, D\\)"),
        (_arrays(features=np.ones((0, 3), np.float16)), "non-empty \\(N, D\\)"),
        (_arrays(features=np.full((4, 3), np.nan, np.float16)), "NaN or Inf"),
        (_arrays(labels=np.array([object()] * 4)), "not a memory-bank snapshot"),
    ],
    ids=["missing", "shape", "not-2d", "empty", "nan", "pickled"],
)
def test_load_bank_snapshot__malformed_names_the_file(
    tmp_path: Path, arrays: dict, says: str
) -> None:
    path = tmp_path / "iter_1.npz"
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(RunError, match=says) as info:
        load_bank_snapshot(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 cut", b"not a zip at all"])
def test_load_bank_snapshot__corrupt_file_names_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "iter_1.npz"
    path.write_bytes(content)
    with pytest.raises(RunError, match="not a memory-bank snapshot"):
        load_bank_snapshot(path)
    with pytest.raises(RunError, match="cannot read"):
        load_bank_snapshot(tmp_path / "missing.npz")


def _neighbour_accuracy(points: np.ndarray, labels: np.ndarray) -> float:
    """Share of points whose nearest other point (naive O(n^2)) has the same label."""
    distances = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    return float((labels[distances.argmin(1)] == labels).mean())


def test_embed_bank__keeps_separate_clusters_apart(tmp_path: Path) -> None:
    embedding = embed_bank(_snapshot(tmp_path / "iter_1.npz"), tmp_path / "cache", FAST)
    assert embedding.points.shape == (120, 2) and embedding.points.dtype == np.float32
    assert _neighbour_accuracy(embedding.points, embedding.labels) > 0.95
    np.testing.assert_array_equal(embedding.rows, np.arange(120))


def test_embed_bank__second_call_reads_the_cache(tmp_path: Path) -> None:
    path, cache = _snapshot(tmp_path / "iter_1.npz"), tmp_path / "cache"
    first = embed_bank(path, cache, FAST)
    again = embed_bank(path, cache, FAST)
    assert not first.cached and again.cached
    np.testing.assert_array_equal(first.points, again.points)
    assert len(list(cache.iterdir())) == 1
    copy = tmp_path / "renamed.npz"
    copy.write_bytes(path.read_bytes())
    assert embed_bank(copy, cache, FAST).cached  # keyed by content, not by name


@pytest.mark.parametrize(
    "change", ["content", "settings"], ids=["rewritten-file", "other-settings"]
)
def test_embed_bank__changed_content_or_settings_recompute(tmp_path: Path, change: str) -> None:
    path, cache = _snapshot(tmp_path / "iter_1.npz"), tmp_path / "cache"
    embed_bank(path, cache, FAST)
    settings = FAST
    if change == "content":
        _snapshot(path, seed=1)
    else:
        settings = TSNESettings(early_iterations=60, iterations=61, perplexity=10)
    assert not embed_bank(path, cache, settings).cached
    assert len(list(cache.iterdir())) == 2


def test_embed_bank__corrupt_cache_file_is_recomputed_and_replaced(tmp_path: Path) -> None:
    path, cache = _snapshot(tmp_path / "iter_1.npz"), tmp_path / "cache"
    first = embed_bank(path, cache, FAST)
    (cached_file,) = cache.iterdir()
    cached_file.write_bytes(b"garbage")
    again = embed_bank(path, cache, FAST)
    assert not again.cached
    np.testing.assert_allclose(again.points, first.points, rtol=1e-4, atol=1e-3)
    assert embed_bank(path, cache, FAST).cached


def test_embed_bank__unwritable_cache_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    embedding = embed_bank(_snapshot(tmp_path / "iter_1.npz"), blocker, FAST)
    assert not embedding.cached
    assert embedding.cache_note is not None and "could not cache" in embedding.cache_note


@pytest.mark.parametrize("max_points", [30, 119])
def test_embed_bank__large_banks_are_sampled(tmp_path: Path, max_points: int) -> None:
    path = _snapshot(tmp_path / "iter_1.npz")
    settings = TSNESettings(max_points=max_points, early_iterations=30, iterations=30)
    embedding = embed_bank(path, tmp_path / "cache", settings)
    snapshot = load_bank_snapshot(path)
    assert len(embedding.rows) == max_points == len(set(embedding.rows.tolist()))
    assert (np.diff(embedding.rows) > 0).all()
    np.testing.assert_array_equal(embedding.labels, snapshot.labels[embedding.rows])
    np.testing.assert_array_equal(embedding.domain, snapshot.domain[embedding.rows])
