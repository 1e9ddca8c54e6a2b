"""How the memory bank's features sit by true class: separability and cross-domain alignment.

**Analysis only: never used for training or for choosing a checkpoint.** At each checkpoint
the trainer scores the bank it snapshots (``features/iter_<N>.npz``) against the rows' true
classes, where the images have labels (always on the toy city; on Cityscapes train from
gtFine), and logs (docs/method.md#diagnostics):

- ``feat_knn_acc``, separability: leave-one-out k-nearest-neighbour accuracy of the true
  class, by cosine similarity, over the rows with a known class (at most ``max_rows`` of
  them, drawn with a fixed seed). Near 1: classes form clusters a nearest-neighbour rule
  can read; near the largest class's share: they do not.
- ``feat_align``, alignment: per class, the cosine between the centroid of its rows from the
  augmented images (student features; mostly source pixels, the CutMix box is target) and
  the centroid of its rows from the clean target images (teacher features), both measured
  from the bank's mean feature; the mean over the classes both domains hold.
  ``feat_align_<class>`` (``feat_align_traffic_light``) holds each class's value. Near 1: a
  class sits in the same direction from the mean in both domains; near 0 or below: it does
  not. Centring matters: unit features after a ReLU projection share a large common
  component, and the cosine of uncentred centroids sits near 1 for every class whatever
  the classes do (a 60-step toy RCCR run from the benchmark's warm start, checkpoints at
  20 / 40 / 60: mean uncentred 0.962 / 0.970 / 0.970; centred 0.60 / 0.62 / 0.64, single
  classes from -0.16 to 0.98).

Every function takes numpy arrays and returns floats, NaN where there is nothing to score.
"""

from __future__ import annotations

import math

import numpy as np

from rccr.data.labels import CLASS_NAMES, IGNORE_INDEX
from rccr.method.memory_bank import DOMAIN_AUGMENTED, DOMAIN_TARGET

__all__ = ["FEATURE_DIAGNOSTICS", "centroid_alignment", "feature_diagnostics", "knn_accuracy"]

FEATURE_DIAGNOSTICS: dict[str, str] = {
    "feat_knn_acc": "bank features: leave-one-out 10-NN accuracy of the true class",
    "feat_align": "bank features: cosine of augmented- and target-image class centroids (centred)",
}
"""The summary scores (the per-class ``feat_align_<class>`` come with ``feat_align``)."""


def _unit(features: np.ndarray) -> np.ndarray:
    x = features.astype(np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def knn_accuracy(
    features: np.ndarray, classes: np.ndarray, k: int = 10, max_rows: int = 4000, seed: int = 0
) -> float:
    """Leave-one-out k-NN accuracy of ``classes`` (cosine similarity, majority vote; a tie
    goes to the tied class with the nearer neighbour).

    Args:
        features: (N, D) float.
        classes: (N,) int; ``IGNORE_INDEX`` rows (class unknown) are left out.
        k: neighbours per row (fewer if fewer other rows are known).
        max_rows: rows scored at most, drawn without replacement with ``seed``.

    Returns:
        The share of rows whose vote is their class; NaN with fewer than two known rows.
    """
    if features.ndim != 2 or classes.shape != (features.shape[0],):
        raise ValueError(f"features (N, D) and classes (N,) expected, got "
                         f"{features.shape} and {classes.shape}")  # fmt: skip
    if k < 1 or max_rows < 2:
        raise ValueError(f"k must be >= 1 and max_rows >= 2, got k={k}, max_rows={max_rows}")
    known = np.flatnonzero(classes != IGNORE_INDEX)
    if known.size > max_rows:
        known = np.sort(np.random.default_rng(seed).choice(known, max_rows, replace=False))
    if known.size < 2:
        return math.nan
    x, y = _unit(features[known]), classes[known].astype(np.int64)
    k = min(k, known.size - 1)
    similarity = x @ x.T  # (n, n)
    np.fill_diagonal(similarity, -np.inf)  # leave each row out of its own vote
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]  # (n, k), nearest first
    votes = y[nearest]  # (n, k)
    n_classes = int(y.max()) + 1
    onehot = votes[:, :, None] == np.arange(n_classes)  # (n, k, C)
    counts = onehot.sum(axis=1)  # (n, C)
    # Tie-break: + up to 0.5 for the class of the nearest neighbour among the tied.
    closeness = np.where(onehot, (k - np.arange(k))[None, :, None] / (2 * k), 0).max(axis=1)
    predicted = np.argmax(counts + closeness, axis=1)
    return float(np.mean(predicted == y))


def centroid_alignment(
    features: np.ndarray, classes: np.ndarray, domain: np.ndarray
) -> dict[int, float]:
    """Per class held by both domains: the cosine between its augmented-image centroid and
    its clean-target centroid, each the mean of unit features minus the mean of every row's
    unit feature (known class or not, both domains)."""
    if domain.shape != classes.shape or classes.shape != (features.shape[0],):
        raise ValueError(f"features (N, D), classes (N,) and domain (N,) expected, got "
                         f"{features.shape}, {classes.shape} and {domain.shape}")  # fmt: skip
    x = _unit(features)
    if len(x):
        x = x - x.mean(axis=0)
    scores = {}
    for c in np.unique(classes[classes != IGNORE_INDEX]):
        a = x[(classes == c) & (domain == DOMAIN_AUGMENTED)]
        t = x[(classes == c) & (domain == DOMAIN_TARGET)]
        if len(a) and len(t):
            ca, ct = a.mean(axis=0), t.mean(axis=0)
            denominator = np.linalg.norm(ca) * np.linalg.norm(ct)
            if denominator > 0:
                scores[int(c)] = float(ca @ ct / denominator)
    return scores


def feature_diagnostics(snapshot: dict[str, np.ndarray]) -> dict[str, float]:
    """``feat_knn_acc``, ``feat_align`` and ``feat_align_<class>`` of a bank snapshot (the
    arrays of ``MemoryBank.snapshot``); empty when no row's true class is known."""
    features, truth, domain = snapshot["features"], snapshot["truth"], snapshot["domain"]
    if not np.any(truth != IGNORE_INDEX):
        return {}
    per_class = centroid_alignment(features, truth, domain)
    scores = {
        "feat_knn_acc": knn_accuracy(features, truth),
        "feat_align": float(np.mean(list(per_class.values()))) if per_class else math.nan,
    }
    return scores | {f"feat_align_{_key(c)}": v for c, v in sorted(per_class.items())}


def _key(train_id: int) -> str:
    """A class's name as a metrics key: ``traffic_light``; an unnamed id as its number."""
    return CLASS_NAMES[train_id].replace(" ", "_") if train_id < len(CLASS_NAMES) else str(train_id)
