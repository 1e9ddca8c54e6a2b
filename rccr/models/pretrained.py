"""Pretrained weights for DeepLab-v2, from a local file only (nothing is downloaded).

Two formats are recognised by their keys:

- torchvision ImageNet ResNets (``conv1.weight``, ``layer1.0.conv1.weight``, ..., ``fc.*``):
  loaded into the backbone, ``fc`` skipped; use ``input_norm="imagenet"``.
- the DeepLab-v2 init checkpoint of the AdaptSegNet/DACS/RCCR lineage (``Scale.conv1.weight``,
  ..., ``Scale.layer5.conv2d_list.{0..3}.*`` for the ASPP, with or without the ``Scale.``
  prefix); use ``input_norm="caffe"``.
- a checkpoint of this workbench (``checkpoints/iter_<N>.pt``: its ``student``, keys
  ``backbone.*`` and ``classifier.*``), e.g. a source-only warm start; use the
  ``input_norm`` it was trained with (the checkpoint's config says which).

Files load with ``torch.load(weights_only=True)``: a file carrying code is refused.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from rccr.models.deeplabv2 import DeepLabV2

__all__ = ["LoadReport", "load_pretrained"]


@dataclass(frozen=True)
class LoadReport:
    """What ``load_pretrained`` did.

    Attributes:
        format: ``"torchvision"``, ``"deeplabv2"`` or ``"rccr"`` (a workbench checkpoint).
        loaded: number of tensors copied into the model.
        missing: model names the format provides but the file lacks (left at their initial
            values; BatchNorm's ``num_batches_tracked`` counters are never listed).
        unexpected: file keys with no place in the model.
        skipped: file keys deliberately not loaded: torchvision's ``fc.*``, or an ASPP
            classifier (``layer5.*``) for a different number of classes.
    """

    format: str
    loaded: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"loaded {self.loaded} tensors from a {self.format} checkpoint"]
        for title, names in (
            ("missing (left at initial values)", self.missing),
            ("unexpected (no place in the model)", self.unexpected),
            ("skipped (ImageNet fc, or a classifier for another class count)", self.skipped),
        ):
            lines.append(f"{title}: {len(names)}")
            lines += [f"  {name}" for name in names[:10]]
            if len(names) > 10:
                lines.append(f"  ... and {len(names) - 10} more")
        return "\n".join(lines)


def _read_state_dict(path: Path) -> tuple[dict[str, Tensor], str | None]:
    """A file's state dict, unwrapped from ``{"state_dict": ...}``, ``{"model": ...}`` or a
    workbench checkpoint's ``{"student": ...}``; and the input normalisation a workbench
    checkpoint's config names (None for other files)."""
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{path}: not a weights-only PyTorch checkpoint ({reason})") from exc
    norm = None
    if isinstance(obj, Mapping) and isinstance(obj.get("config"), Mapping):
        model_config = obj["config"].get("model")
        if isinstance(model_config, Mapping) and isinstance(model_config.get("input_norm"), str):
            norm = model_config["input_norm"]
    for wrapper in ("state_dict", "model", "student"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not (isinstance(k, str) and isinstance(v, Tensor))]
    if bad:
        raise ValueError(f"{path}: expected a state dict of tensors; not tensors: {bad[:5]}")
    return dict(obj), norm


def _detect_format(keys: Sequence[str]) -> str | None:
    if any(k.startswith("backbone.") for k in keys) and any(
        k.startswith("classifier.") for k in keys
    ):
        return "rccr"
    if any(k.startswith(("Scale.", "layer5.")) for k in keys):
        return "deeplabv2"
    if "conv1.weight" in keys and any(k.startswith("layer1.") for k in keys):
        return "torchvision"
    return None


def _model_name(key: str, fmt: str) -> str:
    """File key -> our name: ``[Scale.]layer5.conv2d_list.i.*`` is the ASPP, the rest backbone;
    a workbench checkpoint's names are ours already."""
    if fmt == "rccr":
        return key
    key = key.removeprefix("Scale.")
    if key.startswith("layer5.conv2d_list."):
        return "classifier.branches." + key.removeprefix("layer5.conv2d_list.")
    return "backbone." + key


def load_pretrained(model: DeepLabV2, path: str | os.PathLike[str]) -> LoadReport:
    """Load torchvision ImageNet, DeepLab-v2 init or workbench weights from a local file.

    The format is detected from the keys: ``backbone.*`` and ``classifier.*`` keys mean a
    checkpoint of this workbench (its student, loaded whole); ``Scale.*`` or ``layer5.*``
    keys mean the lineage's DeepLab-v2 checkpoint (with or without the ``Scale.`` prefix;
    its ``layer5`` ASPP loads only if its class count matches), otherwise ``conv1.weight``
    and ``layer1.*`` mean torchvision's ResNet (``fc.*`` skipped, classifier left
    initialised). A DeepLab-v2 file with neither ``Scale.`` nor ``layer5`` keys cannot be
    told from torchvision's by its keys; it loads the same way but is reported as
    ``torchvision``.
    Warns if the model's ``input_norm`` is not the one the weights were trained with.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not a weights-only checkpoint holding a state dict, its
            keys match no known format, or a backbone tensor has the wrong shape.
    """
    path = Path(path)
    state, trained_norm = _read_state_dict(path)
    keys = list(state)
    fmt = _detect_format(keys)
    if fmt is None:
        raise ValueError(f"{path}: not a ResNet/DeepLab-v2 checkpoint; first keys: {keys[:8]}")
    own = model.state_dict()
    to_load: dict[str, Tensor] = {}
    unexpected: list[str] = []
    skipped: list[str] = []
    skipped_names: set[str] = set()
    for key, tensor in state.items():
        name = _model_name(key, fmt)
        if fmt == "torchvision" and key.startswith("fc."):  # ImageNet's 1000-way classifier
            skipped.append(key)
        elif name not in own:
            unexpected.append(key)
        elif tensor.shape == own[name].shape:
            to_load[name] = tensor
        elif name.startswith("classifier."):
            skipped.append(key)
            skipped_names.add(name)
        else:
            shapes = f"{tuple(tensor.shape)}, the model's {name} {tuple(own[name].shape)}"
            arch = f"{model.backbone_name}, width {model.width}"
            raise ValueError(f"{path}: {key} has shape {shapes} (model: {arch})")
    provided = ("backbone.",) if fmt == "torchvision" else ("backbone.", "classifier.")
    done = to_load.keys() | skipped_names
    missing = [n for n in own if n.startswith(provided) and n not in done]
    missing = [n for n in missing if not n.endswith("num_batches_tracked")]
    model.load_state_dict(to_load, strict=False)
    expected_norm = {"deeplabv2": "caffe", "torchvision": "imagenet"}.get(fmt, trained_norm)
    if expected_norm is not None and model.input_norm != expected_norm:
        msg = f"{path}: {fmt} weights expect input_norm={expected_norm!r}, not {model.input_norm!r}"
        warnings.warn(msg, stacklevel=2)
    return LoadReport(fmt, len(to_load), missing, unexpected, skipped)
