"""DeepLab-v2: shapes, ASPP, frozen BatchNorm, parameter groups, input norms, weight loading."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from rccr.models import DeepLabV2, LoadReport, SegmentationOutput, load_pretrained

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)
# Key names of the lineage's DeepLab-v2 init checkpoint: AdaptSegNet's model wraps its ResNet
# in ``Scale`` and calls the ASPP ``layer5.conv2d_list``.
REAL_LINEAGE_KEYS = [
    "Scale.conv1.weight",
    "Scale.bn1.running_mean",
    "Scale.layer1.0.downsample.0.weight",
    "Scale.layer1.0.downsample.1.running_var",
    "Scale.layer2.0.conv1.weight",
    "Scale.layer3.22.bn3.weight",
    "Scale.layer4.2.conv3.weight",
    "Scale.layer5.conv2d_list.0.weight",
    "Scale.layer5.conv2d_list.3.bias",
]


def _small(**kwargs: Any) -> DeepLabV2:
    torch.manual_seed(0)
    return DeepLabV2(backbone="resnet18", width=16, **kwargs)


def _bn_modules(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def _lineage_state_dict(model: DeepLabV2, prefix: str, num_classes: int) -> dict[str, Tensor]:
    """The lineage's key names for ``model`` (a resnet101), with random tensors of its shapes.

    Like the real file (saved by PyTorch 0.3), it has no ``num_batches_tracked`` entries.
    """
    gen = torch.Generator().manual_seed(1)
    state = {}
    for name, tensor in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        shape = tuple(tensor.shape)
        if name.startswith("classifier.branches."):
            key = "layer5.conv2d_list." + name.removeprefix("classifier.branches.")
            shape = (num_classes, *shape[1:])
        else:
            key = name.removeprefix("backbone.")
        state[prefix + key] = torch.randn(shape, generator=gen)
    return state


@pytest.mark.parametrize(("backbone", "width"), [("resnet18", 16), ("resnet18", 64)])
def test_deeplabv2__output_stride_8(backbone: str, width: int) -> None:
    model = DeepLabV2(num_classes=7, backbone=backbone, width=width)
    out = model(torch.rand(2, 3, 64, 96))
    assert isinstance(out, SegmentationOutput)
    assert model.output_stride == 8 and model.feature_channels == 8 * width
    assert out.logits.shape == (2, 7, 8, 12)
    assert out.features.shape == (2, 8 * width, 8, 12)


@pytest.fixture(scope="module")
def resnet101() -> DeepLabV2:
    """The paper's network (built once: it takes a second on CPU)."""
    return DeepLabV2(backbone="resnet101", input_norm="caffe")


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


@pytest.mark.parametrize(
    ("prefix", "ckpt_classes", "width"),
    [("Scale.", 19, 64), ("Scale.", 19, 16), ("", 19, 16), ("Scale.", 21, 16)],
)
def test_load_pretrained__deeplabv2_lineage(
    request: pytest.FixtureRequest, tmp_path: Path, prefix: str, ckpt_classes: int, width: int
) -> None:
    if width == 64:
        model = request.getfixturevalue("resnet101")
    else:
        model = DeepLabV2(backbone="resnet101", width=width, input_norm="caffe")
    state = _lineage_state_dict(model, prefix, ckpt_classes)
    assert {k.removeprefix("Scale.") for k in REAL_LINEAGE_KEYS} <= {
        k.removeprefix("Scale.") for k in state
    }
    classifier_before = {k: v.clone() for k, v in model.classifier.state_dict().items()}
    torch.save(state, tmp_path / "init.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = load_pretrained(model, tmp_path / "init.pth")
    own = model.state_dict()
    layer5 = [k for k in state if ".layer5." in f".{k}"]
    assert len(layer5) == 8
    for key, tensor in state.items():
        if key not in layer5:
            assert torch.equal(own["backbone." + key.removeprefix("Scale.")], tensor), key
    assert report.format == "deeplabv2" and report.missing == [] and report.unexpected == []
    if ckpt_classes == 19:
        for i in range(4):
            for p in ("weight", "bias"):
                loaded = own[f"classifier.branches.{i}.{p}"]
                assert torch.equal(loaded, state[f"{prefix}layer5.conv2d_list.{i}.{p}"])
        assert report.skipped == [] and report.loaded == len(state)
    else:
        assert sorted(report.skipped) == sorted(layer5)
        assert report.loaded == len(state) - 8
        for k, v in model.classifier.state_dict().items():
            assert torch.equal(v, classifier_before[k])


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model"])
def test_load_pretrained__torchvision(tmp_path: Path, wrapper: str | None) -> None:
    reference = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(reference if wrapper is None else {wrapper: reference, "epoch": 3}, tmp_path / "w")
    model = DeepLabV2(backbone="resnet18")
    classifier_before = {k: v.clone() for k, v in model.classifier.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = load_pretrained(model, tmp_path / "w")
    assert report.format == "torchvision"
    assert report.skipped == ["fc.weight", "fc.bias"]
    assert report.missing == [] and report.unexpected == []
    assert report.loaded == len(reference) - 2
    own = model.state_dict()
    for key, tensor in reference.items():
        if not key.startswith("fc."):
            assert torch.equal(own["backbone." + key], tensor), key
    for k, v in model.classifier.state_dict().items():
        assert torch.equal(v, classifier_before[k])


def test_load_pretrained__warns_on_input_norm_mismatch(tmp_path: Path) -> None:
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "w.pth")
    with pytest.warns(UserWarning, match="input_norm='imagenet', not 'caffe'"):
        load_pretrained(DeepLabV2(backbone="resnet18", input_norm="caffe"), tmp_path / "w.pth")


def test_load_pretrained__missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pth"):
        load_pretrained(_small(), tmp_path / "nowhere.pth")


class _Payload:
    """Unpickling it touches ``marker``: a stand-in for a malicious checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return Path.touch, (self.marker,)


def test_load_pretrained__refuses_code_payload(tmp_path: Path) -> None:
    marker = tmp_path / "payload_ran"
    torch.save({"state_dict": {"conv1.weight": _Payload(marker)}}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "evil.pth"))):
        load_pretrained(_small(), tmp_path / "evil.pth")
    assert not marker.exists()
    torch.load(tmp_path / "evil.pth", weights_only=False)  # the payload is live...
    assert marker.exists()  # ...so its absence above means it was refused


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00garbage, not a checkpoint" * 10, "not a weights-only PyTorch checkpoint"),
        ([1, 2, 3], "expected a state dict of tensors, got list"),
        ({"conv1.weight": "text"}, "not tensors: \\['conv1.weight'\\]"),
        ({"encoder.weight": torch.ones(1), "decoder.bias": torch.ones(1)}, "encoder.weight"),
    ],
    ids=["garbage", "list", "strings", "unrelated-keys"],
)
def test_load_pretrained__rejects_bad_files(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "bad.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + message):
        load_pretrained(_small(), path)


def test_load_pretrained__rejects_wrong_width(tmp_path: Path) -> None:
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "w.pth")
    with pytest.raises(ValueError, match=r"conv1.weight has shape \(64, 3, 7, 7\).*width 16"):
        load_pretrained(_small(), tmp_path / "w.pth")


def test_load_report__str() -> None:
    names = [f"layer{i}.weight" for i in range(13)]
    text = str(LoadReport("deeplabv2", 5, missing=names, unexpected=[], skipped=["fc.bias"]))
    assert text.splitlines()[0] == "loaded 5 tensors from a deeplabv2 checkpoint"
    assert "missing (left at initial values): 13" in text and "... and 3 more" in text
    assert "layer9.weight" in text and "layer10.weight" not in text
    assert "unexpected (no place in the model): 0" in text and "  fc.bias" in text
