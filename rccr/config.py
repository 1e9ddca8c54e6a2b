"""Configuration: one frozen dataclass per component, YAML presets, dotted overrides.

A run is fully described by a :class:`Config`; its resolved form is written to the run
directory as ``config.yaml`` and re-running from that file gives the same run.

    config = load_config("toy", ["train.lr=1e-3", "train.iterations=200"])

``load_config`` takes a preset name (``toy``, ``gta2cityscapes``, ``synthia2cityscapes``,
shipped in ``rccr/configs/``) or a path to a YAML file. Every section and key is checked:
an unknown key, a value of the wrong type or out of range raises :class:`ConfigError`
naming the dotted key and what was expected (for an unknown key, the valid ones).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = [
    "MODES",
    "NEGATIVE_SAMPLING",
    "POSITIVE_SAMPLING",
    "PRESETS",
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "MethodConfig",
    "Mode",
    "ModelConfig",
    "NegativeSampling",
    "PositiveSampling",
    "TrainConfig",
    "absolute_paths",
    "config_from_dict",
    "describe_differences",
    "flatten_config",
    "load_config",
    "parse_yaml",
    "quote",
    "read_yaml_file",
    "save_config",
]

PRESET_DIR = Path(__file__).parent / "configs"
PRESETS = tuple(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))

Mode = Literal["source_only", "dacs", "rccr", "oracle"]
"""Training modes. source_only: source labels only; dacs: + ClassMix self-training;
rccr: + regional contrastive consistency; oracle: target labels (an upper bound)."""

PositiveSampling = Literal["confident", "all"]
"""confident: anchors whose teacher confidence exceeds the threshold; all: every anchor
(the ablation with positive sampling off)."""

NegativeSampling = Literal["class_aware", "random"]
"""class_aware: per anchor, drop negatives that share its pseudo-label; random: keep every
negative drawn (the ablation with negative sampling off)."""

MODES: tuple[str, ...] = typing.get_args(Mode)
POSITIVE_SAMPLING: tuple[str, ...] = typing.get_args(PositiveSampling)
NEGATIVE_SAMPLING: tuple[str, ...] = typing.get_args(NegativeSampling)


class ConfigError(ValueError):
    """A configuration key is unknown, or its value has the wrong type or range."""


_QUOTED = 200  # characters of a value an error message shows
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _QUOTED
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8
_REPR.maxlevel = 3


def quote(value: object) -> str:
    """``repr(value)`` cut to at most 200 characters, without building the whole repr (a
    value from a file may be a huge or deeply nested structure)."""
    text = _REPR.repr(value)
    return text if len(text) <= _QUOTED else text[: _QUOTED - 3] + "..."


def _cut(text: str) -> str:
    """``text`` as typed, cut to at most 200 characters."""
    return text if len(text) <= _QUOTED else text[: _QUOTED - 3] + "..."


def _check(condition: bool, key: str, expected: str, value: object) -> None:
    if not condition:
        raise ConfigError(f"{key}: expected {expected}, got {quote(value)}")


@dataclass(frozen=True)
class DataConfig:
    """Datasets and their geometry. Sizes are [width, height].

    Attributes:
        source: source dataset ("gta5" or "synthia").
        source_root: its root folder (real layout, see ``rccr data prepare``).
        target_root: Cityscapes-layout root of the target domain.
        source_size: size source images are resized to (GTA5 1280x720, SYNTHIA 1280x760).
        target_size: size target training images are resized to before cropping. 1024x512
            (default) halves Cityscapes as DACS does; [2048, 1024] keeps its full resolution
            (no resize), as the authors' release does (it disables DACS's half-resize in
            ``RandomCrop_city``; docs/method.md#paper-release-and-this-project).
        crop: random training crop taken after resizing (512x512).
        flip: random horizontal flips in training. Off by default: neither the paper's
            release nor DACS flips (their configs set ``"flip": false``); the toy preset
            flips, a choice of its own for a small dataset trained from scratch.
        val_size: inference size for evaluation; labels are scored at full size.
        source_list, target_list, val_list: optional list files selecting images.
        num_workers: DataLoader worker processes.
        skip_bad: when a training sample cannot be read (corrupt or truncated image, label
            of the wrong size, unknown label values), take the next readable one instead of
            stopping, and log each skipped file with its error to the run directory
            (skipped.jsonl) and the running count to metrics.jsonl (``data/skipped``).
            False (default): stop with an error naming the file.
    """

    source: Literal["gta5", "synthia"] = "gta5"
    source_root: str = "data/gta5"
    target_root: str = "data/cityscapes"
    source_size: tuple[int, int] = (1280, 720)
    target_size: tuple[int, int] = (1024, 512)
    crop: tuple[int, int] = (512, 512)
    flip: bool = False
    val_size: tuple[int, int] = (1024, 512)
    source_list: str | None = None
    target_list: str | None = None
    val_list: str | None = None
    num_workers: int = 2
    skip_bad: bool = False

    def __post_init__(self) -> None:
        for name in ("source_size", "target_size", "crop", "val_size"):
            size = getattr(self, name)
            _check(min(size) > 0, f"data.{name}", "[width, height] > 0", list(size))
        for name in ("source_size", "target_size"):
            size = getattr(self, name)
            fits = self.crop[0] <= size[0] and self.crop[1] <= size[1]
            _check(fits, "data.crop", f"at most data.{name} {list(size)}", list(self.crop))
        _check(self.num_workers >= 0, "data.num_workers", ">= 0", self.num_workers)


@dataclass(frozen=True)
class ModelConfig:
    """The segmentation network (DeepLab-v2).

    Attributes:
        backbone: "resnet101" (paper), "resnet50" or "resnet18".
        width: base channel width of the backbone (64 = standard; smaller for CPU).
        legacy_aspp: reproduce the lineage's ASPP that sums only two of four branches.
        freeze_bn: keep BatchNorm frozen (DACS): affine parameters not trained and, unless
            ``bn_batch_stats``, normalisation with the running statistics (eval mode).
        bn_batch_stats: with ``freeze_bn``, normalise every training forward pass (student
            and teacher) with the batch's own statistics, updating the running statistics
            that evaluation uses, while the affine parameters stay frozen. This is what the
            release does (its model only stops the affine gradients; student and teacher run
            in train mode). Default False: frozen statistics, as DACS intends (the
            pretrained statistics are better estimates than a batch of 2).
        stem_ceil_mode: ceil mode of the stem's max-pool. True (the lineage and the release)
            gives an ``H/8 + 1`` feature grid, 65x65 for a 512 crop; False (default,
            torchvision) gives ``H/8``, so feature cells tile the image exactly.
        stride_in_1x1: in ResNet-50/101, put a block's stride on its first 1x1 conv (Caffe,
            the lineage and the release) instead of the 3x3 conv (torchvision, default).
        input_norm: "caffe" for the DeepLab-v2 init checkpoint, "imagenet" otherwise.
        pretrained: local weights file: the DeepLab-v2 init checkpoint of the
            AdaptSegNet/DACS lineage (with ``input_norm: caffe``), torchvision ImageNet
            ResNet weights (``input_norm: imagenet``) or a workbench checkpoint. ``none``:
            random initialisation, on purpose. ResNet-50/101 refuse to train without one
            of the two (``null``, the presets' value, means "not given yet"); the toy
            ResNet-18 trains from scratch.
    """

    backbone: Literal["resnet101", "resnet50", "resnet18"] = "resnet101"
    width: int = 64
    legacy_aspp: bool = False
    freeze_bn: bool = True
    bn_batch_stats: bool = False
    stem_ceil_mode: bool = False
    stride_in_1x1: bool = False
    input_norm: Literal["caffe", "imagenet"] = "caffe"
    pretrained: str | None = None

    def weights(self) -> str | None:
        """The weights file to load, or None (``null`` or ``none``: random initialisation)."""
        return None if self.pretrained in (None, "none") else self.pretrained

    def require_weights(self) -> None:
        """Refuse to train a ResNet-50/101 DeepLab-v2 without ``model.pretrained`` given.

        Raises:
            ConfigError: naming the key, the files to pass, and ``none`` for random weights.
        """
        if self.pretrained is None and self.backbone != "resnet18":
            raise ConfigError(
                f"model.pretrained: a {self.backbone} DeepLab-v2 trains from pretrained "
                "weights; pass model.pretrained=FILE (the DeepLab-v2 init of the "
                "AdaptSegNet/DACS lineage, DeepLab_resnet_pretrained_init-f81d91e8.pth, with "
                "model.input_norm=caffe; or torchvision ImageNet ResNet weights with "
                "model.input_norm=imagenet; README 'Pretrained weights'), or "
                "model.pretrained=none to train from random weights on purpose"
            )

    def __post_init__(self) -> None:
        _check(self.width >= 8, "model.width", ">= 8", self.width)
        _check(not self.bn_batch_stats or self.freeze_bn, "model.bn_batch_stats",
               "false unless model.freeze_bn is true", self.bn_batch_stats)  # fmt: skip
        bottleneck = self.backbone != "resnet18"
        _check(not self.stride_in_1x1 or bottleneck, "model.stride_in_1x1",
               "false for resnet18 (its blocks have no 1x1 conv)", self.stride_in_1x1)  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and the training schedule (DACS defaults).

    Attributes:
        mode: what is trained: source_only (source labels only), dacs (+ ClassMix
            self-training), rccr (+ regional contrastive consistency) or oracle (target
            labels: an upper bound).
        iterations: total SGD steps.
        batch_size: images per domain per step (source and target each) on each process;
            under DDP (torchrun) the effective batch is ``batch_size x world_size``.
        lr: base learning rate (backbone); heads use 10x.
        lr_scaling: "none" keeps ``lr`` whatever the number of processes; "linear"
            multiplies it by ``world_size`` (the linear scaling rule for the larger
            effective batch).
        momentum, weight_decay: SGD settings.
        poly_power: lr(t) = lr * (1 - t / iterations) ** poly_power.
        seed: seeds data order, augmentation and initialisation.
        log_every: steps between metrics.jsonl records.
        eval_every: steps between evaluations on target val (0: only at the end).
        checkpoint_every: steps between checkpoints (0: only at the end).
        device: "auto" (CUDA if available), "cpu" or "cuda".
        threads: CPU threads for torch (0: torch's default).
        precision: "auto" (bf16 autocast on CUDA, fp32 on CPU), "fp32", "bf16" (autocast),
            or "fp16" (autocast with a gradient scaler).
        channels_last: keep the network and its inputs in channels-last memory format
            (faster convolutions on recent GPUs).
        compile: run the student through ``torch.compile``.
        tensorboard: also write every metrics.jsonl record as TensorBoard scalars to
            ``<run>/tensorboard/`` (``tensorboard --logdir runs``; needs the tensorboard
            package, ``pip install 'rccr[tensorboard]'``).
        nan_retries: when a loss term is NaN or infinite, roll back to the newest checkpoint
            (reloaded from disk), skip the offending batch and go on, at most this many
            times in the run; each roll-back is logged to skipped.jsonl and counted in
            metrics.jsonl (``train/rollbacks``). 0 (default): stop with an error naming the
            term and the iteration.
    """

    mode: Mode = "source_only"
    iterations: int = 250_000
    batch_size: int = 2
    lr: float = 2.5e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    poly_power: float = 0.9
    seed: int = 0
    log_every: int = 50
    eval_every: int = 5000
    checkpoint_every: int = 5000
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool = False
    compile: bool = False
    lr_scaling: Literal["none", "linear"] = "none"
    nan_retries: int = 0
    tensorboard: bool = False

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_size", "log_every"):
            _check(getattr(self, name) >= 1, f"train.{name}", ">= 1", getattr(self, name))
        for name in ("eval_every", "checkpoint_every", "threads", "seed", "nan_retries"):
            _check(getattr(self, name) >= 0, f"train.{name}", ">= 0", getattr(self, name))
        _check(self.lr > 0, "train.lr", "> 0", self.lr)
        _check(0 <= self.momentum < 1, "train.momentum", "in [0, 1)", self.momentum)
        _check(self.weight_decay >= 0, "train.weight_decay", ">= 0", self.weight_decay)
        _check(self.poly_power >= 0, "train.poly_power", ">= 0", self.poly_power)


@dataclass(frozen=True)
class MethodConfig:
    """DACS self-training and RCCR's regional contrast (docs/method.md#constants).

    Six keys (train_head to bank_ignore) switch between this project and the authors'
    release, where they differ; each default is the better-founded choice, with its reason
    (docs/method.md#paper-release-and-this-project).

    Attributes:
        pseudo_label_threshold: DACS weight: share of target pixels with confidence >= this.
        class_mix: "per_image" (DACS) or "per_batch" (DAFormer) choice of pasted classes.
        ema_max_momentum: teacher EMA momentum cap, alpha_t = min(1 - 1/(t+1), cap).
        contrast_weight: lambda's base in 0.01 * exp(-5 * (1 - sqrt(t / T))).
        contrast_start_iter: iteration the contrastive loss starts at (0; the authors'
            GTA5 script uses 300000 of 250000, so as released it never runs; their SYNTHIA
            script starts at 0). At or past ``train.iterations`` the loss never runs.
        temperature: of the contrastive loss.
        confidence_threshold: anchors count when the teacher's confidence exceeds this.
        embed_dim: projection-head output size.
        positive_sampling: "confident" (filter anchors by confidence) or "all".
        negative_sampling: "class_aware" (drop same-class negatives) or "random".
        bank: keep negatives in a memory bank (false: this step's features only).
        momentum_head: positives from the teacher's EMA head (false: the student's head,
            detached).
        bank_per_step: features each of the two sources enqueues per step (N).
        bank_steps: steps the bank holds.
        train_head: optimise the projection head (10x lr, like the classifier). The
            release's optimiser never receives the head's parameters
            (``proj_head.parameters(())`` passes the empty tuple as ``recurse``), so its
            head stays at its random init and the "momentum head" equals it: False.
        class_mix_ignore: ClassMix may draw the ignore label 255 as one of the classes to
            paste, as the release does (it draws from ``torch.unique(label)``). Default
            False: ignored pixels carry no class, and pasting them only adds ignored area.
        cutmix_box: "per_image" (default) draws one box per image, sides rounded to the
            stride; "release" draws one box for the whole batch, sides
            ``floor(side * sqrt(r) / 8) * 8`` (at least 8), its corner never in the last
            row or column of cells, as the release does.
        photometric: "per_image" (default) decides jitter and blur (and draws the blur's
            sigma) per image; "release" decides them once per batch and jitters the images
            in BGR channel order, as the release (kornia on caffe-style BGR images) does.
        align_corners: upsample logits to the crop with ``align_corners=True`` in the
            training losses and for the teacher's pseudo-labels, as the release does.
            Default False: pixels are areas, as the images themselves were resized.
        diagnostics: measure, where the target images have labels, how right the teacher's
            pseudo-labels, the anchors and the negatives are, and log it to metrics.jsonl
            (``diag/*``). Analysis only: never used for training or checkpoint choice.
        bank_ignore: the bank also takes feature cells labelled 255 (source pixels ignored
            outside the box), as the release does; they then count as negatives of every
            anchor. Default False: a cell without a class cannot be filtered by class.
        cutmix_updates_bn: the student's forward pass of RCCR's CutMix image updates
            BatchNorm running statistics, as every training forward does (default). False:
            that forward normalises with the batch's statistics as before but leaves the
            running statistics alone, so only the source and ClassMix images set them. A
            control for the toy benchmark, where BatchNorm trains; with frozen BatchNorm
            (the paper presets) it changes nothing.
    """

    pseudo_label_threshold: float = 0.968
    class_mix: Literal["per_image", "per_batch"] = "per_image"
    ema_max_momentum: float = 0.99
    contrast_weight: float = 0.01
    contrast_start_iter: int = 0
    temperature: float = 0.1
    confidence_threshold: float = 0.75
    embed_dim: int = 128
    positive_sampling: PositiveSampling = "confident"
    negative_sampling: NegativeSampling = "class_aware"
    bank: bool = True
    momentum_head: bool = True
    bank_per_step: int = 4000
    bank_steps: int = 3
    train_head: bool = True
    class_mix_ignore: bool = False
    cutmix_box: Literal["per_image", "release"] = "per_image"
    photometric: Literal["per_image", "release"] = "per_image"
    align_corners: bool = False
    bank_ignore: bool = False
    diagnostics: bool = True
    cutmix_updates_bn: bool = True

    def __post_init__(self) -> None:
        for name in ("pseudo_label_threshold", "confidence_threshold"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, f"method.{name}", "in [0, 1]", value)
        _check(0.0 <= self.ema_max_momentum <= 1.0, "method.ema_max_momentum", "in [0, 1]",
               self.ema_max_momentum)  # fmt: skip
        _check(self.contrast_weight >= 0, "method.contrast_weight", ">= 0", self.contrast_weight)
        _check(self.contrast_start_iter >= 0, "method.contrast_start_iter", ">= 0",
               self.contrast_start_iter)  # fmt: skip
        _check(self.temperature > 0, "method.temperature", "> 0", self.temperature)
        for name in ("embed_dim", "bank_per_step", "bank_steps"):
            _check(getattr(self, name) >= 1, f"method.{name}", ">= 1", getattr(self, name))


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation on target val.

    Attributes:
        subsets: which mIoUs to report: 19, and 16 and 13 for SYNTHIA.
        batch_size: images per forward pass.
    """

    subsets: tuple[int, ...] = (19,)
    batch_size: int = 1

    def __post_init__(self) -> None:
        _check(set(self.subsets) <= {19, 16, 13} and len(self.subsets) > 0,
               "eval.subsets", "a list drawn from 19, 16, 13", list(self.subsets))  # fmt: skip
        _check(self.batch_size >= 1, "eval.batch_size", ">= 1", self.batch_size)


@dataclass(frozen=True)
class Config:
    """Everything a run needs. ``name`` names the run directory by default."""

    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        ok = bool(self.name) and "/" not in self.name and self.name not in (".", "..")
        _check(ok, "name", "a non-empty name without '/'", self.name)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), as written to config.yaml."""
        return _plain(dataclasses.asdict(self))

    def replace(self, overrides: list[str]) -> Config:
        """A copy with dotted ``key=value`` overrides applied (see :func:`load_config`)."""
        return config_from_dict(_apply_overrides(self.to_dict(), overrides))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        return "a list of integers" if args[-1] is Ellipsis else f"a list of {len(args)} integers"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            type(None): "null"}.get(tp, str(tp))  # fmt: skip


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """``value`` as type ``tp``, or ConfigError naming ``key``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(option, value, key)
            except ConfigError:
                pass
    elif origin is Literal:
        if value in args:
            return value
    elif origin is tuple:
        if isinstance(value, list | tuple) and (args[-1] is Ellipsis or len(value) == len(args)):
            return tuple(_coerce(int, v, key) for v in value)
    elif tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        number = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an integer past the largest float (400 digits, say)
                number = math.inf
        elif isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            with contextlib.suppress(ValueError):
                number = float(value)
        if number is not None:
            # No number of the config means anything when infinite or NaN (inf poly_power
            # would train at lr 0 from the second step and "finish").
            _check(math.isfinite(number), key, "a finite number", value)
            return number
    elif tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"{key}: expected {_describe(tp)}, got {quote(value)}")


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {quote(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted((set(data) - fields), key=str)
    if unknown:
        where = f"'{prefix}'" if prefix else "the top level"
        name = str(unknown[0])
        name = name if len(name) <= _QUOTED else name[: _QUOTED - 3] + "..."
        key = f"{prefix}.{name}" if prefix else name
        raise ConfigError(f"{key}: unknown key; valid keys in {where}: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, key)  # type: ignore[arg-type]
        else:
            kwargs[name] = _coerce(tp, value, key)
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a Config from a nested dict; missing keys take defaults.

    Raises:
        ConfigError: naming the first unknown, mistyped or out-of-range key.
    """
    config: Config = _build(Config, data, "")
    return config


def _apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {quote(item)}: expected key=value, e.g. train.lr=1e-3")
        try:
            value = parse_yaml(text)
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"{key}: cannot parse value {quote(text)}: {_yaml_problem(exc)}"
            ) from exc
        node = data
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(parts[: depth + 1])}: is a value, not a section")
            node = child
        node[parts[-1]] = value
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: where, and what (PyYAML's own message spans several)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem is None:
        return " ".join(str(exc).split())
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


_YAML_VALUES = 10_000  # values a config may hold once its aliases are expanded
MAX_CONFIG_BYTES = 1 << 20


def _expanded_size(root: yaml.Node) -> int:
    """How many values ``root`` holds with every alias expanded (at most just past
    ``_YAML_VALUES``).

    Raises:
        yaml.YAMLError: for an alias inside itself.
    """
    sizes: dict[int, int] = {}
    pending: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while pending:
        node, children_done = pending.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if children_done:
            open_nodes.discard(id(node))
            total = 1 + sum(sizes[id(child)] for child in children)
            sizes[id(node)] = min(total, _YAML_VALUES + 1)
            continue
        if id(node) in open_nodes:
            raise yaml.YAMLError("a recursive alias (an anchor used inside itself)")
        open_nodes.add(id(node))
        pending.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise yaml.YAMLError("a recursive alias (an anchor used inside itself)")
            pending.append((child, False))
    return sizes[id(root)]


def parse_yaml(text: str) -> Any:
    """YAML text as plain values, as ``yaml.safe_load`` reads it, refusing alias bombs.

    PyYAML shares an aliased value instead of copying it, so a few hundred bytes of anchors
    can stand for billions of values, which anything walking the result (an error message,
    ``repr``, a comparison) then expands. Configs are small: a document whose aliases expand
    to more than 10,000 values, an alias inside itself, or nesting too deep to parse is
    refused.

    Raises:
        yaml.YAMLError: for text that is not YAML, or is refused as above.
    """
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise yaml.YAMLError("nested too deeply to read") from None
        if node is None:
            return None
        if _expanded_size(node) > _YAML_VALUES:
            raise yaml.YAMLError(
                f"its aliases expand to more than {_YAML_VALUES} values; a config is small"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml_file(path: Path, limit: int = MAX_CONFIG_BYTES) -> Any:
    """:func:`parse_yaml` of a file of at most ``limit`` bytes of UTF-8 text.

    Raises:
        OSError: if the file cannot be read.
        ValueError: naming the file, if it is larger than ``limit`` or not UTF-8.
        yaml.YAMLError: as :func:`parse_yaml`.
    """
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path}: larger than {limit >> 20} MiB; a config is small")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_yaml(text)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = read_yaml_file(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def load_config(preset_or_path: str | os.PathLike, overrides: list[str] | None = None) -> Config:
    """Load a preset by name or a YAML file by path, then apply dotted overrides.

    Args:
        preset_or_path: a name in ``PRESETS`` or a path to a YAML file.
        overrides: ``key=value`` strings; values are parsed as YAML (``1e-3``, ``true``,
            ``[512, 256]``, ``null``).

    Raises:
        ConfigError: for a missing preset or file, bad YAML, or a bad key or value.
    """
    text = str(preset_or_path)
    path = Path(text)
    if text in PRESETS:
        path = PRESET_DIR / f"{text}.yaml"
    elif not path.is_file():
        raise ConfigError(f"{text}: no such preset or config file; presets: {', '.join(PRESETS)}")
    data = _read_yaml(path)
    try:
        config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    overrides = list(overrides or [])
    data = _apply_overrides(data, overrides)
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(_blame(str(exc), overrides, path)) from None


def _blame(problem: str, overrides: list[str], path: Path) -> str:
    """The error of a config whose file alone is valid: it comes from the overrides, so
    name the one it is about (or, for a rule between two keys, all of them)."""
    for item in reversed(overrides):  # the last override of a key is the one that counts
        key = item.partition("=")[0]
        if problem.startswith((f"{key}:", f"{key}.")):
            return f"override {_cut(item)}: {problem}"
    given = ", ".join(_cut(item) for item in overrides)
    return f"{path} with overrides {given}: {problem}"


_PATH_KEYS = {
    "data": ("source_root", "target_root", "source_list", "target_list", "val_list"),
    "model": ("pretrained",),
}


def absolute_paths(config: Config, base: str | os.PathLike | None = None) -> Config:
    """``config`` with every relative path (dataset roots, list files, pretrained weights)
    made absolute against ``base`` (default: the working directory), so that a run's
    config.yaml names the same files from wherever it is read. ``null`` and ``none``
    stay as they are."""
    root = Path(base) if base is not None else Path.cwd()
    sections = {}
    for section, keys in _PATH_KEYS.items():
        current = getattr(config, section)
        changes = {}
        for key in keys:
            value = getattr(current, key)
            if value is not None and value != "none" and not Path(value).is_absolute():
                changes[key] = os.path.normpath(root / value)
        sections[section] = dataclasses.replace(current, **changes)
    return dataclasses.replace(config, **sections)


def flatten_config(config: Config) -> dict[str, Any]:
    """The config as dotted keys (``train.lr``), lists kept as lists."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        else:
            flat[prefix] = value

    walk("", config.to_dict())
    return flat


def describe_differences(a: Config, b: Config, a_name: str, b_name: str, shown: int = 3) -> str:
    """The keys where two configs differ, with both values, e.g. "train.lr (0.01 in the
    checkpoint, 0.05 in config.yaml)"; past ``shown`` keys, "and N more"."""
    left, right = flatten_config(a), flatten_config(b)
    keys = sorted(key for key in left.keys() | right.keys() if left.get(key) != right.get(key))
    parts = [f"{key} ({quote(left.get(key))} in {a_name}, {quote(right.get(key))} in {b_name})"
             for key in keys[:shown]]  # fmt: skip
    if len(keys) > shown:
        parts.append(f"and {len(keys) - shown} more")
    return ", ".join(parts)


def save_config(config: Config) -> str:
    """The YAML text of a resolved config (what ``config.yaml`` holds)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
