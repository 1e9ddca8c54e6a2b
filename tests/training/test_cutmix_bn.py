"""method.cutmix_updates_bn: RCCR's CutMix forward and the BatchNorm running statistics
(the toy benchmark's BatchNorm-confound control)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from rccr.config import MethodConfig, load_config
from rccr.data.dataset import Sample
from rccr.models import DeepLabV2, frozen_bn_statistics
from rccr.training.method_parts import MethodParts
from rccr.training.steps import dacs_step, rccr_step


def _bn_buffers(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()
            if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}  # fmt: skip


def _batch(seed: int) -> Sample:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, 32, 32, generator=g)
    label = torch.randint(0, 19, (2, 32, 32), generator=g)
    label[:, :4] = 255
    return Sample(image, label, "x")


def _one_step(mode: str, updates_bn: bool) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
    """First step from the same weights and generator: loss, gradients, student BN buffers."""
    torch.manual_seed(0)
    student = DeepLabV2(19, backbone="resnet18", width=8, freeze_bn=False)
    config = MethodConfig(embed_dim=16, bank_per_step=32, cutmix_updates_bn=updates_bn)
    parts = MethodParts.build(student, config, rccr=True, seed=0)
    source, target = _batch(1), _batch(2)
    if mode == "rccr":
        loss = rccr_step(student, parts, source, target, config, 0, 10).loss
    else:
        loss = dacs_step(student, parts, source, target, config).loss
    assert parts.student_head is not None
    loss.backward()
    named = [*student.named_parameters(), *parts.student_head.named_parameters(prefix="head")]
    grads = {k: p.grad.clone() for k, p in named if p.grad is not None}
    return loss.detach(), grads, _bn_buffers(student)


def test_rccr_step__cutmix_forward_leaves_bn_statistics_when_off() -> None:
    _, _, after_dacs = _one_step("dacs", True)  # the source and ClassMix forwards only
    _, _, off = _one_step("rccr", False)
    _, _, on = _one_step("rccr", True)
    for key, value in after_dacs.items():
        assert torch.equal(off[key], value), key  # the CutMix forward changed nothing
    counts = [k for k in on if k.endswith("num_batches_tracked")]
    assert all(on[k].item() == after_dacs[k].item() + 1 == 3 for k in counts)
    means = [k for k in on if k.endswith("running_mean")]
    assert all(not torch.equal(on[k], after_dacs[k]) for k in means)


def test_rccr_step__same_loss_and_gradients_either_way() -> None:
    loss_on, grads_on, _ = _one_step("rccr", True)
    loss_off, grads_off, _ = _one_step("rccr", False)
    assert torch.equal(loss_on, loss_off)
    assert grads_on.keys() == grads_off.keys() and any(k.startswith("head") for k in grads_on)
    for key, grad in grads_on.items():
        assert torch.equal(grad, grads_off[key]), key


def test_frozen_bn_statistics__batch_normalisation_unchanged_buffers_kept() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.BatchNorm2d(4).eval())
    x = torch.randn(2, 3, 8, 8)
    before = _bn_buffers(net)
    with frozen_bn_statistics(net):
        inside = net(x)
    assert all(torch.equal(v, _bn_buffers(net)[k]) for k, v in before.items())
    assert all(m.track_running_stats for m in net if isinstance(m, nn.BatchNorm2d))
    assert torch.equal(inside, net(x))  # same output as a forward that updates the stats
    assert net[1].num_batches_tracked.item() == 1 and net[2].num_batches_tracked.item() == 0
    with pytest.raises(RuntimeError), frozen_bn_statistics(net):
        raise RuntimeError
    assert net[1].track_running_stats  # restored on an exception too


def test_config__cutmix_updates_bn_override() -> None:
    assert load_config("toy", []).method.cutmix_updates_bn is True
    assert load_config("toy", ["method.cutmix_updates_bn=false"]).method.cutmix_updates_bn is False
