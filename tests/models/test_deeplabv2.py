"""DeepLab-v2: shapes, stride, ASPP, frozen BatchNorm, parameter groups, input norms."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from rccr.models import DeepLabV2, SegmentationOutput

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)


def _small(**kwargs: Any) -> DeepLabV2:
    torch.manual_seed(0)
    return DeepLabV2(backbone="resnet18", width=16, **kwargs)


def _bn_modules(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


@pytest.mark.parametrize(("backbone", "width"), [("resnet18", 16), ("resnet18", 64)])
def test_deeplabv2__output_stride_8(backbone: str, width: int) -> None:
    model = DeepLabV2(num_classes=7, backbone=backbone, width=width)
    out = model(torch.rand(2, 3, 64, 96))
    assert isinstance(out, SegmentationOutput)
    assert model.output_stride == 8 and model.feature_channels == 8 * width
    assert out.logits.shape == (2, 7, 8, 12)
    assert out.features.shape == (2, 8 * width, 8, 12)


@pytest.mark.parametrize("backbone", ["resnet50", "resnet101"])
def test_deeplabv2__bottleneck_backbones(request: pytest.FixtureRequest, backbone: str) -> None:
    if backbone == "resnet101":
        model = request.getfixturevalue("resnet101")
    else:
        model = DeepLabV2(backbone=backbone)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 32, 40))
    assert model.backbone_name == backbone and model.feature_channels == 2048
    assert out.logits.shape == (1, 19, 4, 5) and out.features.shape == (1, 2048, 4, 5)


@pytest.mark.parametrize(
    ("size", "ceil_mode", "expected"),
    [
        ((65, 49), False, (9, 7)),  # ceil(H/8), ceil(W/8)
        ((63, 57), False, (8, 8)),
        ((64, 48), True, (9, 7)),  # the lineage's max-pool: H/8 + 1 when divisible
        ((65, 49), True, (9, 7)),
    ],
)
def test_deeplabv2__output_size_rounds_up(
    size: tuple[int, int], ceil_mode: bool, expected: tuple[int, int]
) -> None:
    out = _small(ceil_mode=ceil_mode)(torch.rand(1, 3, *size))
    assert out.logits.shape[-2:] == expected and out.features.shape[-2:] == expected


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50"])
def test_deeplabv2__width_64_matches_torchvision_names(backbone: str) -> None:
    ours = {
        k.removeprefix("backbone."): tuple(v.shape)
        for k, v in DeepLabV2(backbone=backbone).state_dict().items()
        if k.startswith("backbone.")
    }
    reference = getattr(torchvision.models, backbone)(weights=None).state_dict()
    assert ours == {k: tuple(v.shape) for k, v in reference.items() if not k.startswith("fc.")}


@pytest.mark.parametrize(("layer", "dilation"), [(1, 1), (2, 1), (3, 2), (4, 4)])
def test_deeplabv2__dilated_stages(layer: int, dilation: int) -> None:
    convs = [
        m
        for m in getattr(_small().backbone, f"layer{layer}").modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)
    ]
    assert convs and all(c.dilation == (dilation, dilation) for c in convs)
    assert all(c.padding == (dilation, dilation) for c in convs)
    strided = [c for c in convs if c.stride != (1, 1)]
    assert len(strided) == (1 if layer == 2 else 0)


@pytest.mark.parametrize("kwargs", [{"backbone": "resnet34"}, {"backbone": "vgg16"}])
def test_deeplabv2__unknown_backbone_lists_names(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"resnet101.*resnet18.*resnet50|resnet18.*resnet50"):
        DeepLabV2(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 4}, "width 4"),
        ({"num_classes": 0}, "num_classes 0"),
        ({"input_norm": "bgr"}, "input_norm 'bgr'"),
    ],
)
def test_deeplabv2__rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeepLabV2(backbone="resnet18", **kwargs)


def test_deeplabv2__rejects_bad_input_shape() -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        _small()(torch.rand(3, 32, 32))


@pytest.mark.parametrize(("legacy", "n_branches"), [(False, 4), (True, 2)])
def test_aspp__sums_branches(legacy: bool, n_branches: int) -> None:
    model = _small(legacy_aspp=legacy)
    features = torch.randn(2, model.feature_channels, 9, 7)
    expected = torch.zeros(2, 19, 9, 7)
    rates = (6, 12, 18, 24)
    for conv, rate in list(zip(model.classifier.branches, rates, strict=True))[:n_branches]:
        assert isinstance(conv, nn.Conv2d)
        expected += F.conv2d(features, conv.weight, conv.bias, padding=rate, dilation=rate)
    torch.testing.assert_close(model.forward_head(features), expected)


def test_aspp__weights_start_small() -> None:
    for conv in _small().classifier.branches:
        assert isinstance(conv, nn.Conv2d)
        assert abs(float(conv.weight.detach().std()) - 0.01) < 0.001 and conv.bias is not None


@pytest.mark.parametrize("freeze_bn", [True, False])
def test_frozen_bn__survives_train(freeze_bn: bool) -> None:
    model = _small(freeze_bn=freeze_bn).train()
    bns = _bn_modules(model)
    before = [(bn.running_mean.clone(), bn.running_var.clone()) for bn in bns]
    model(torch.rand(2, 3, 24, 24)).logits.sum().backward()
    assert model.training and model.backbone.conv1.weight.grad is not None
    for bn, (mean, var) in zip(bns, before, strict=True):
        assert bn.training is not freeze_bn
        assert all(p.requires_grad is not freeze_bn for p in bn.parameters())
        stats_equal = torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
        assert stats_equal is freeze_bn


def test_bn_batch_stats__frozen_affine_but_batch_statistics() -> None:
    """model.bn_batch_stats (the release): in train mode BatchNorm normalises with the batch's
    statistics and updates its running ones; its affine parameters get no gradient."""
    model = _small(freeze_bn=True, bn_batch_stats=True).train()
    bns = _bn_modules(model)
    before = [bn.running_mean.clone() for bn in bns]
    x = torch.rand(2, 3, 32, 32)
    train_logits = model(x).logits
    train_logits.sum().backward()
    assert all(bn.training for bn in bns)
    assert all(p.grad is None and not p.requires_grad for bn in bns for p in bn.parameters())
    assert not any(torch.equal(bn.running_mean, m) for bn, m in zip(bns, before, strict=True))
    with torch.no_grad():
        eval_logits = model.eval()(x).logits
    assert not torch.allclose(train_logits.detach(), eval_logits)
    assert not any(bn.training for bn in bns)


def test_stem_ceil_mode__the_lineages_65_grid() -> None:
    """model.stem_ceil_mode: a 512 crop gives the release's 65x65 feature grid (else 64)."""
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert _small(ceil_mode=True)(x).logits.shape[-2:] == (9, 9)
        assert _small(ceil_mode=False)(x).logits.shape[-2:] == (8, 8)


def test_stride_in_1x1__moves_the_stride_to_the_first_conv() -> None:
    """model.stride_in_1x1: Caffe's Bottleneck (the lineage) strides in conv1, not conv2."""
    caffe = DeepLabV2(backbone="resnet50", width=8, stride_in_1x1=True)
    torch_style = DeepLabV2(backbone="resnet50", width=8)
    block, reference = caffe.backbone.layer2[0], torch_style.backbone.layer2[0]
    assert (block.conv1.stride, block.conv2.stride) == ((2, 2), (1, 1))
    assert (reference.conv1.stride, reference.conv2.stride) == ((1, 1), (2, 2))
    assert all(b.conv1.stride == (1, 1) for b in caffe.backbone.layer2[1:])
    caffe.load_state_dict(torch_style.state_dict())  # the same weights fit
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a, b = caffe.eval()(x).logits, torch_style.eval()(x).logits
    assert a.shape == b.shape and not torch.allclose(a, b)


def test_frozen_bn__eval_and_train_agree() -> None:
    model = _small()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        train_logits = model.train()(x).logits
        eval_logits = model.eval()(x).logits
    torch.testing.assert_close(train_logits, eval_logits)


@pytest.mark.parametrize("freeze_bn", [True, False])
@pytest.mark.parametrize("n_heads", [0, 2])
def test_param_groups__partition(freeze_bn: bool, n_heads: int) -> None:
    model = _small(freeze_bn=freeze_bn)
    heads = [nn.Conv2d(model.feature_channels, 8, 1) for _ in range(n_heads)]
    groups = model.param_groups(0.01, heads=heads)
    assert [(g["name"], g["lr"], g["lr_mult"]) for g in groups] == [
        ("backbone", 0.01, 1.0),
        ("head", pytest.approx(0.1), 10.0),
    ]
    grouped = [id(p) for g in groups for p in g["params"]]
    trainable = [p for m in (model, *heads) for p in m.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(id(p) for p in trainable)  # each exactly once
    head_ids = {id(p) for p in groups[1]["params"]}
    assert head_ids == {id(p) for m in (model.classifier, *heads) for p in m.parameters()}
    bn_params = [id(p) for bn in _bn_modules(model) for p in bn.parameters()]
    assert all((i in grouped) is not freeze_bn for i in bn_params)
    torch.optim.SGD(groups, lr=0.01, momentum=0.9, weight_decay=5e-4)  # accepted as is


def test_param_groups__rejects_backbone_as_head() -> None:
    model = _small()
    with pytest.raises(ValueError, match="backbone parameters"):
        model.param_groups(0.01, heads=[model.backbone.layer4])


@pytest.mark.parametrize("input_norm", ["imagenet", "caffe"])
def test_input_norm__transform(input_norm: str) -> None:
    model = _small(input_norm=input_norm)
    seen: list[Tensor] = []
    model.backbone.conv1.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    x = torch.rand(2, 3, 16, 16)
    model(x)
    expected = torch.empty_like(x)
    for c in range(3):
        if input_norm == "imagenet":
            expected[:, c] = (x[:, c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        else:  # channel c of the backbone input is BGR channel c
            expected[:, c] = x[:, 2 - c] * 255.0 - CAFFE_MEAN_BGR[c]
    torch.testing.assert_close(seen[0], expected, rtol=1e-5, atol=1e-4)
    assert not any(k.startswith("input_") for k in model.state_dict())  # not persistent
