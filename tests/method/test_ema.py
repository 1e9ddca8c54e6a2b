"""Tests for the momentum teacher: freeze, schedule, update."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from rccr.method.ema import ema_momentum, freeze, update_ema


def _pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    student = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))
    teacher = freeze(copy.deepcopy(student))
    with torch.no_grad():
        for p in student.parameters():
            p.add_(torch.randn_like(p))
    student.train()
    student(torch.randn(2, 3, 8, 8))  # moves BN running stats and num_batches_tracked
    return teacher, student


def test_update_ema__zero_momentum_copies_student() -> None:
    teacher, student = _pair()
    update_ema(teacher, student, 0.0)
    for (name, t), s in zip(
        teacher.state_dict().items(), student.state_dict().values(), strict=True
    ):
        assert torch.equal(t, s), name


def test_update_ema__unit_momentum_keeps_teacher() -> None:
    teacher, student = _pair()
    before = copy.deepcopy(teacher.state_dict())
    update_ema(teacher, student, 1.0)
    for name, t in teacher.state_dict().items():
        if name.endswith("num_batches_tracked"):
            assert torch.equal(t, student.state_dict()[name])  # integer buffers are copied
        else:
            assert torch.equal(t, before[name]), name


@pytest.mark.parametrize("momentum", [0.25, 0.9, 0.99])
def test_update_ema__matches_formula(momentum: float) -> None:
    teacher, student = _pair()
    before = copy.deepcopy(teacher.state_dict())
    update_ema(teacher, student, momentum)
    for name, t in teacher.state_dict().items():
        s = student.state_dict()[name]
        if t.is_floating_point():  # weights, biases, BN running mean and var
            assert torch.allclose(t, momentum * before[name] + (1 - momentum) * s), name
        else:
            assert torch.equal(t, s), name
    assert teacher[1].num_batches_tracked.item() == 1


def test_update_ema__rejects_different_modules() -> None:
    teacher, _ = _pair()
    with pytest.raises(ValueError, match="names differ"):
        update_ema(teacher, nn.Sequential(nn.Conv2d(3, 4, 3)), 0.5)


def test_freeze__no_parameter_requires_grad() -> None:
    teacher, student = _pair()
    update_ema(teacher, student, 0.5)
    assert all(not p.requires_grad for p in teacher.parameters())
    image = torch.randn(1, 3, 8, 8, requires_grad=True)
    (teacher(image).sum() + student(image).sum()).backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None for p in student.parameters())


@pytest.mark.parametrize(("iteration", "expected"), [(0, 0.0), (1, 0.5), (99, 0.99), (1000, 0.99)])
def test_ema_momentum__schedule(iteration: int, expected: float) -> None:
    assert ema_momentum(iteration) == pytest.approx(expected)


def test_update_ema__leaves_non_persistent_buffers_alone() -> None:
    """Constants outside the state dict must not drift by rounding (resume would differ)."""
    teacher, student = nn.Module(), nn.Module()
    for module in (teacher, student):
        module.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]), persistent=False)
    teacher.mean.add_(1.0)  # make any averaging visible
    before = teacher.mean.clone()
    update_ema(teacher, student, 0.3)
    assert torch.equal(teacher.mean, before)
