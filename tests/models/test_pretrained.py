"""Loading pretrained weights: torchvision ImageNet ResNets and the DeepLab-v2 init checkpoint."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from tiny_toy import assert_same_tensors, tiny_config
from torch import Tensor

from rccr.build import build_model
from rccr.models import DeepLabV2, LoadReport, load_pretrained
from rccr.runs import load_checkpoint
from rccr.training import train

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


def test_load_pretrained__a_workbench_checkpoint_as_warm_start(toy: Path, tmp_path: Path) -> None:
    """A run's checkpoint (its student) loads whole, classifier included, and warns when the
    new model normalises its input differently from the run."""
    run = train(tiny_config(toy, "train.iterations=1"), tmp_path / "run", progress=False)
    model = build_model(tiny_config(toy).model, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = load_pretrained(model, run.checkpoints[1])
    student = load_checkpoint(run.checkpoints[1])["student"]
    assert report.format == "rccr" and report.missing == [] and report.unexpected == []
    assert report.loaded == len(student)
    assert_same_tensors(model.state_dict(), student)
    other = build_model(tiny_config(toy, "model.input_norm=caffe").model, verbose=False)
    with pytest.warns(UserWarning, match="input_norm='imagenet', not 'caffe'"):
        load_pretrained(other, run.checkpoints[1])


@pytest.mark.parametrize("given", ["file", "none", None])
def test_build_model__loads_the_weights_model_pretrained_names(
    toy: Path, tmp_path: Path, given: str | None
) -> None:
    """``model.pretrained``: a file is loaded into the built model; ``none`` and null leave
    the random initialisation (the same for the same seed)."""
    run = train(tiny_config(toy, "train.iterations=1"), tmp_path / "run", progress=False)
    student = load_checkpoint(run.checkpoints[1])["student"]
    value = {"file": str(run.checkpoints[1]), "none": "none", None: "null"}[given]
    torch.manual_seed(3)
    model = build_model(tiny_config(toy, f"model.pretrained={value}").model, verbose=False)
    torch.manual_seed(3)
    fresh = build_model(tiny_config(toy).model, verbose=False)
    if given == "file":
        assert_same_tensors(model.state_dict(), student)
    else:
        assert_same_tensors(model.state_dict(), fresh.state_dict())


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
