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


def _npz(path: Path, compressed: bool = False, **arrays: object) -> Path:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)  # type: ignore[operator]
    path.write_bytes(buffer.getvalue())
    return path


def _declaring(path: Path, shape: tuple[int, ...]) -> Path:
    """An npz whose features.npy header declares ``shape`` float32 but holds no data."""
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("features.npy", header.getvalue())
        for name in ("labels", "domain", "step"):
            member = io.BytesIO()
            np.save(member, np.zeros(shape[0] if shape[0] < 10 else 1, np.int64))
            archive.writestr(f"{name}.npy", member.getvalue())
    return path


def test_load_bank_snapshot__declared_size_over_the_bound_is_refused_unread(
    tmp_path: Path,
) -> None:
    path = _declaring(tmp_path / "iter_1.npz", (10_000_000, 1000))  # 37 GiB declared
    with pytest.raises(RunError, match=r"iter_1\.npz: declares 37\.3 GiB of arrays; a bank"):
        load_bank_snapshot(path)


def test_load_bank_snapshot__compressed_bomb_is_refused_unexpanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rccr.analysis import bank_embedding

    monkeypatch.setattr(bank_embedding, "MAX_SNAPSHOT_BYTES", 1 << 20)
    zeros = np.zeros((4096, 128), np.float32)  # 2 MiB of zeros: a few KiB compressed
    path = _npz(tmp_path / "iter_1.npz", compressed=True, features=zeros,
                labels=np.zeros(4096, np.int64), domain=np.zeros(4096, np.int8),
                step=np.zeros(4096, np.int64))  # fmt: skip
    assert path.stat().st_size < 100_000
    with pytest.raises(RunError, match=r"iter_1\.npz: declares 2\.\d MiB of arrays; a bank"):
        load_bank_snapshot(path)


@pytest.mark.parametrize(
    ("arrays", "says"),
    [
        (_arrays(labels=np.array(["car", "bus", "car", "sky"])), "labels must be integers"),
        (_arrays(domain=np.zeros(4, np.float32)), "domain must be integers"),
        (_arrays(step=np.array([b"a", b"b", b"c", b"d"])), "step must be integers"),
        (_arrays(features=np.zeros((4, 0), np.float16)), "at least one column"),
        (_arrays(features=np.full((4, 3), 3e38, np.float32)), "values up to 3e\\+38"),
        (_arrays(features=np.ones((4, 3), np.complex64)), "features must be floating point"),
        (_arrays(features=np.array([["a", "b", "c"]] * 4)), "features must be floating point"),
    ],
    ids=["string labels", "float domain", "bytes step", "zero width", "huge", "complex", "text"],
)
def test_load_bank_snapshot__wrong_types_and_values_are_named(
    tmp_path: Path, arrays: dict, says: str
) -> None:
    path = _npz(tmp_path / "iter_1.npz", **arrays)
    with pytest.raises(RunError, match=says) as info:
        load_bank_snapshot(path)
    assert str(info.value).startswith(str(path)) and len(str(info.value)) < 300


@pytest.mark.parametrize("spread", [0.0, 1e-30, 1e-8], ids=["identical", "1e-30", "1e-8"])
def test_embed_bank__degenerate_snapshot_is_refused_before_tsne(
    tmp_path: Path, spread: float
) -> None:
    """A collapsed head writes (nearly) identical rows: t-SNE would give NaN, or (from 5000
    rows) crash the process. The snapshot is refused with a message instead."""
    n = 1200
    noise = np.random.default_rng(0).normal(size=(n, 16))
    features = (np.full((n, 16), 0.25) + spread * noise).astype(np.float32)
    path = _npz(tmp_path / "iter_1.npz", features=features, labels=np.arange(n) % 19,
                domain=np.arange(n) % 2, step=np.zeros(n, np.int64))  # fmt: skip
    with pytest.raises(RunError, match=r"iter_1\.npz: .*identical"):
        embed_bank(path, tmp_path / "cache", FAST)
    assert not (tmp_path / "cache").exists()  # nothing was computed or cached


def test_embed_bank__a_few_distinct_rows_among_many_map(tmp_path: Path) -> None:
    n = 300
    features = np.zeros((n, 16), np.float32)
    features[:3] = np.eye(16, dtype=np.float32)[:3]
    path = _npz(tmp_path / "iter_1.npz", features=features, labels=np.arange(n) % 19,
                domain=np.arange(n) % 2, step=np.zeros(n, np.int64))  # fmt: skip
    assert np.isfinite(embed_bank(path, tmp_path / "cache", FAST).points).all()


def test_load_bank_snapshot__not_a_regular_file_is_refused(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "iter_1.npz")  # reading it would wait for a writer
    with pytest.raises(RunError, match="not a regular file"):
        load_bank_snapshot(tmp_path / "iter_1.npz")


def test_load_bank_snapshot__true_classes_read_or_unknown(tmp_path: Path) -> None:
    """Snapshots carry each row's true class (for the t-SNE colouring); one written before
    they did reads as unknown (255) rather than failing."""
    from rccr.analysis.bank_embedding import load_bank_snapshot

    rng = np.random.default_rng(0)
    arrays = {
        "features": rng.normal(size=(5, 4)).astype(np.float16),
        "labels": np.arange(5, dtype=np.int64),
        "domain": np.zeros(5, dtype=np.int8),
        "step": np.ones(5, dtype=np.int64),
    }
    np.savez(tmp_path / "old.npz", **arrays)
    assert load_bank_snapshot(tmp_path / "old.npz").truth.tolist() == [255] * 5
    np.savez(tmp_path / "new.npz", **arrays, truth=np.array([3, 3, 255, 0, 1]))
    assert load_bank_snapshot(tmp_path / "new.npz").truth.tolist() == [3, 3, 255, 0, 1]
    np.savez(tmp_path / "bad.npz", **arrays, truth=np.array([0.5] * 5))
    with pytest.raises(RunError, match=r"bad\.npz: truth must be integers"):
        load_bank_snapshot(tmp_path / "bad.npz")
