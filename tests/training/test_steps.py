"""The training steps, driven for real: what each step feeds where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_toy import tiny_config

from rccr.training import Trainer, steps


def _loss_inputs(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *overrides: str
) -> list[dict[str, Any]]:
    """The arguments of every region_contrastive_loss call of three RCCR steps."""
    calls: list[dict[str, Any]] = []
    original = steps.region_contrastive_loss

    def recorder(*args: Any, **kwargs: Any) -> torch.Tensor:
        names = ["anchors", "positives", "anchor_labels", "anchor_confidence", "negatives",
                 "negative_labels"]  # fmt: skip
        calls.append({**dict(zip(names, args, strict=False)), **kwargs})
        return original(*args, **kwargs)

    monkeypatch.setattr(steps, "region_contrastive_loss", recorder)
    config = tiny_config(toy, "train.mode=rccr", "train.iterations=3", *overrides)
    trainer = Trainer(config, tmp_path / "run")
    source = trainer._stream(trainer.source_set, 0)
    target = trainer._stream(trainer.target_set, 1)
    trainer.student.train()
    for _ in range(3):
        trainer._train_step(source, target)
    return calls


@pytest.mark.parametrize("bank", [True, False])
def test_rccr_step__random_negatives_never_hold_an_anchors_own_features(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bank: bool
) -> None:
    """method.negative_sampling=random removes only the class filter: an anchor's own
    current-step features (its detached student feature, its positive) are in the bank
    but never among the negatives that count for it."""
    random = ["method.negative_sampling=random", "method.bank_per_step=10000"]  # every cell
    calls = _loss_inputs(toy, tmp_path, monkeypatch, *random, f"method.bank={str(bank).lower()}")
    met = 0
    for call in calls:
        assert call["class_aware"] is False
        anchors, positives, negatives = call["anchors"], call["positives"], call["negatives"]
        counted = call["anchor_locations"][:, None] != call["negative_locations"][None, :]
        own = (negatives[None] == anchors.detach()[:, None]).all(-1)  # (N, M) bitwise equal
        own |= (negatives[None] == positives[:, None]).all(-1)
        assert not (own & counted).any(), "an anchor met its own feature among its negatives"
        met += int(own.sum())
    assert met >= 2 * sum(len(c["anchors"]) for c in calls)  # all drawn, so all were there
