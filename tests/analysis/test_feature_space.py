"""The bank's feature scores against loops written for clarity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rccr.analysis.feature_space import centroid_alignment, feature_diagnostics, knn_accuracy
from rccr.data.labels import IGNORE_INDEX


def _knn_reference(features: np.ndarray, classes: np.ndarray, k: int) -> float:
    """Row by row: the k most similar other known rows (cosine, ties by row order), the
    class with most votes, a tie to the class of the nearest neighbour among the tied."""
    known = [i for i in range(len(classes)) if classes[i] != IGNORE_INDEX]
    right = 0
    for i in known:
        sims = []
        for j in known:
            if j != i:
                a, b = features[i].astype(float), features[j].astype(float)
                sims.append((-(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)), j))
        nearest = [classes[j] for _, j in sorted(sims)[: min(k, len(known) - 1)]]
        counts = {c: nearest.count(c) for c in nearest}
        top = max(counts.values())
        vote = next(c for c in nearest if counts[c] == top)  # the nearest among the tied
        right += vote == classes[i]
    return right / len(known)


@pytest.mark.parametrize(("seed", "k"), [(0, 1), (1, 3), (2, 4), (3, 10)])
def test_knn_accuracy__equals_the_loop_reference(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(40, 5)).astype(np.float32)
    classes = rng.integers(0, 4, size=40)
    classes[rng.random(40) < 0.2] = IGNORE_INDEX
    centres = rng.normal(size=(4, 5))  # some structure, so votes are not all ties
    features[classes != IGNORE_INDEX] += 1.5 * centres[classes[classes != IGNORE_INDEX]]
    assert knn_accuracy(features, classes, k=k) == pytest.approx(
        _knn_reference(features, classes, k)
    )


def test_knn_accuracy__a_tie_goes_to_the_nearer_neighbour() -> None:
    # Row 0's two neighbours: class 1 at cosine 0.99, class 2 at 0.9: one vote each.
    features = np.array([[1.0, 0.0], [0.99, 0.141], [0.9, 0.436], [-1.0, 0.0]])
    classes = np.array([1, 1, 2, 0])
    # Rows 0 and 1 tie 1-1 and go to their nearer neighbour's class 1 (right); row 2's
    # neighbours are both class 1 (wrong). The farther neighbour would make all three wrong.
    assert knn_accuracy(features[:3], classes[:3], k=2) == pytest.approx(2 / 3)
    assert _knn_reference(features[:3], classes[:3], 2) == pytest.approx(2 / 3)
    assert knn_accuracy(features[[0, 2, 1]], np.array([1, 2, 1]), k=2) == pytest.approx(2 / 3)


def test_knn_accuracy__separated_classes_score_one_and_unknown_rows_nan() -> None:
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(5, 0.1, (20, 3)), rng.normal(-5, 0.1, (20, 3))])
    classes = np.repeat([3, 7], 20)
    assert knn_accuracy(features, classes) == 1.0
    assert math.isnan(knn_accuracy(features, np.full(40, IGNORE_INDEX)))
    assert math.isnan(knn_accuracy(features[:1], classes[:1]))


def test_knn_accuracy__draws_at_most_max_rows_with_a_fixed_seed() -> None:
    rng = np.random.default_rng(1)
    features, classes = rng.normal(size=(300, 4)), rng.integers(0, 3, 300)
    a = knn_accuracy(features, classes, max_rows=50)
    assert a == knn_accuracy(features, classes, max_rows=50)  # same seed, same rows
    assert a * 50 == pytest.approx(round(a * 50))  # a share of 50 rows
    assert knn_accuracy(features, classes, max_rows=300) == pytest.approx(
        _knn_reference(features, classes, 10)
    )


@pytest.mark.parametrize(
    ("features", "classes", "message"),
    [
        (np.zeros((4, 2)), np.zeros(3, dtype=int), r"features \(N, D\) and classes \(N,\)"),
        (np.zeros(4), np.zeros(4, dtype=int), r"got \(4,\) and \(4,\)"),
    ],
)
def test_knn_accuracy__names_mismatched_shapes(
    features: np.ndarray, classes: np.ndarray, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        knn_accuracy(features, classes)


def test_knn_accuracy__refuses_k_and_max_rows_below_their_minimum() -> None:
    with pytest.raises(ValueError, match="k=0, max_rows=10"):
        knn_accuracy(np.zeros((3, 2)), np.zeros(3, dtype=int), k=0, max_rows=10)
    with pytest.raises(ValueError, match="k=1, max_rows=1"):
        knn_accuracy(np.zeros((3, 2)), np.zeros(3, dtype=int), k=1, max_rows=1)


def _alignment_reference(features, classes, domain) -> dict[int, float]:
    out = {}
    units = [f / np.linalg.norm(f) for f in features]
    mean = np.sum(units, axis=0) / len(units)  # of every row, known class or not
    for c in sorted(set(classes.tolist()) - {IGNORE_INDEX}):
        groups = []
        for d in (0, 1):
            rows = [u - mean for u, k, e in zip(units, classes, domain, strict=True)
                    if k == c and e == d]  # fmt: skip
            groups.append(np.mean(rows, axis=0) if rows else None)
        a, t = groups
        if a is not None and t is not None:
            out[c] = float(a @ t / (np.linalg.norm(a) * np.linalg.norm(t)))
    return out


def test_centroid_alignment__equals_the_loop_reference() -> None:
    rng = np.random.default_rng(4)
    features = rng.normal(size=(60, 6)) * rng.uniform(0.1, 3, (60, 1))  # unequal norms
    classes = rng.integers(0, 5, 60)
    classes[:5] = IGNORE_INDEX
    domain = rng.integers(0, 2, 60).astype(np.int8)
    domain[classes == 3] = 0  # class 3 only in the augmented images: not scored
    got = centroid_alignment(features, classes, domain)
    expected = _alignment_reference(features, classes, domain)
    assert set(got) == set(expected) and 3 not in got
    for c in expected:
        assert got[c] == pytest.approx(expected[c])


def test_centroid_alignment__same_direction_one_opposite_minus_one() -> None:
    # Every feature shares a large first component: uncentred, class 1's target rows (which
    # look like class 0) would still score cos = 99/101 = 0.98 against its augmented rows.
    features = np.array([[10.0, 1.0], [20.0, 2.0], [10.0, -1.0], [10.0, 1.0]])
    classes, domain = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    assert centroid_alignment(features, classes, domain) == pytest.approx({0: 1.0, 1: -1.0})
    with pytest.raises(ValueError, match=r"classes \(N,\) and domain \(N,\)"):
        centroid_alignment(features, classes, domain[:3])


def test_feature_diagnostics__summary_and_per_class_keys() -> None:
    rng = np.random.default_rng(5)
    features = rng.normal(size=(80, 8)).astype(np.float16)
    truth = rng.integers(5, 8, 80)  # pole, traffic light, traffic sign
    domain = np.tile([0, 1], 40).astype(np.int8)
    snapshot = {"features": features, "truth": truth, "domain": domain,
                "labels": truth, "step": np.zeros(80, dtype=np.int64)}  # fmt: skip
    scores = feature_diagnostics(snapshot)
    per_class = centroid_alignment(features, truth, domain)
    assert scores["feat_knn_acc"] == knn_accuracy(features, truth)
    assert scores["feat_align"] == pytest.approx(np.mean(list(per_class.values())))
    assert scores["feat_align_traffic_light"] == per_class[6]
    assert set(scores) == {"feat_knn_acc", "feat_align", "feat_align_pole",
                           "feat_align_traffic_light", "feat_align_traffic_sign"}  # fmt: skip
    snapshot["truth"] = np.full(80, IGNORE_INDEX)
    assert feature_diagnostics(snapshot) == {}  # nothing known: nothing logged
