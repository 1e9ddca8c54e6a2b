"""Tests for the projection head."""

from __future__ import annotations

import pytest
import torch

from rccr.models.heads import ProjectionHead


@pytest.mark.parametrize(("hidden", "out_dim"), [(None, 128), (32, 16)])
def test_projection_head__shape_and_unit_norm(hidden: int | None, out_dim: int) -> None:
    head = ProjectionHead(64, hidden=hidden, out_dim=out_dim)
    z = head(torch.randn(2, 64, 5, 7))
    assert z.shape == (2, out_dim, 5, 7)
    assert torch.allclose(z.norm(dim=1), torch.ones(2, 5, 7), atol=1e-5)


def test_projection_head__gradients_flow() -> None:
    head = ProjectionHead(8, out_dim=4)
    features = torch.randn(1, 8, 3, 3, requires_grad=True)
    (head(features)[:, 0] ** 2).sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
