"""DeepLab-v2: a dilated ResNet with an ASPP classifier, output stride 8.

The segmentation network of AdaptSegNet, DACS and RCCR. layer3 and layer4 trade their stride
for dilation 2 and 4 (in every block, as the lineage does; torchvision's
``replace_stride_with_dilation`` leaves a stage's first block at the previous dilation), so
features and logits come out at 1/8 of the input. The classifier (ASPP) sums four 3x3
convolutions with dilation 6, 12, 18, 24. ``forward_features`` gives the layer4 features
that RCCR's projection head reads, ``forward_head`` the logits.

Deliberate differences from the lineage's code:

- torchvision's Bottleneck puts its stride on the 3x3 conv2, the lineage's (from Caffe) on
  the 1x1 conv1. Shapes agree and both kinds of weights load, but ``layer2.0`` computes a
  slightly different function than in DACS; ``stride_in_1x1=True`` reproduces the lineage.
- The stem's max-pool defaults to torchvision's ``ceil_mode=False``: an HxW input gives
  ``ceil(H/8) x ceil(W/8)`` outputs. The lineage's ``ceil_mode=True`` gives ``H/8 + 1``
  for H divisible by 8 (65x65 for a 512x512 crop).
- Frozen BatchNorm uses running statistics and stays in eval mode under ``train()``; the
  lineage's model code only stops its affine gradients, so in training it normalises with
  batch statistics (``bn_batch_stats=True``). ``legacy_aspp=True`` reproduces its
  classifier, which returns inside its summing loop after the first two branches.

Pretrained weights load from a local file through ``rccr.models.pretrained``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

__all__ = ["ASPP", "DeepLabV2", "InputNorm", "SegmentationOutput", "frozen_bn_statistics"]

InputNorm = Literal["imagenet", "caffe"]

_Block = type[BasicBlock] | type[Bottleneck]
_BACKBONES: dict[str, tuple[_Block, tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
}
# Per input convention: channel means and stds in the order the backbone sees the channels.
_INPUT_NORMS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # RGB in [0, 1]
    "caffe": ((104.00698793, 116.66876762, 122.67891434), (1.0, 1.0, 1.0)),  # BGR in [0, 255]
}
_RATES = (6, 12, 18, 24)  # ASPP dilations
_HEAD_LR_MULT = 10.0


@dataclass
class SegmentationOutput:
    """What ``DeepLabV2.forward`` returns."""

    logits: Tensor  # (B, num_classes, H/8, W/8)
    features: Tensor  # (B, C_feat, H/8, W/8) backbone layer4 features


def _dilate(block: nn.Module, dilation: int) -> None:
    """Set dilation and padding of a block's 3x3 convs (BasicBlock's constructor refuses it)."""
    for module in block.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
            module.dilation = (dilation, dilation)
            module.padding = (dilation, dilation)


class _ResNet(nn.Module):
    """ResNet stem and four stages, no pooling/fc; ``width`` channels after the stem.

    At ``width=64`` parameter names and shapes equal torchvision's ResNet (minus ``fc``).
    Stage strides are 1, 2, 1, 1 and dilations 1, 1, 2, 4: output stride 8.
    """

    def __init__(
        self,
        block: _Block,
        depths: Sequence[int],
        width: int,
        ceil_mode: bool,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        self.stride_in_1x1 = stride_in_1x1
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=ceil_mode)
        self.layer1 = self._make_layer(block, width, depths[0], stride=1, dil=1)
        self.layer2 = self._make_layer(block, 2 * width, depths[1], stride=2, dil=1)
        self.layer3 = self._make_layer(block, 4 * width, depths[2], stride=1, dil=2)
        self.layer4 = self._make_layer(block, 8 * width, depths[3], stride=1, dil=4)
        self.out_channels = self.inplanes
        for module in self.modules():  # torchvision's initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _make_layer(
        self, block: _Block, planes: int, depth: int, stride: int, dil: int
    ) -> nn.Sequential:
        out_channels = planes * block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        blocks = [block(self.inplanes, planes, stride, downsample)]
        if self.stride_in_1x1 and isinstance(blocks[0], Bottleneck):  # Caffe's placement
            blocks[0].conv1.stride, blocks[0].conv2.stride = (stride, stride), (1, 1)
        self.inplanes = out_channels
        blocks += [block(self.inplanes, planes) for _ in range(1, depth)]
        for b in blocks:
            _dilate(b, dil)
        return nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) normalised image -> (B, out_channels, ceil(H/8), ceil(W/8))."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, width, H/4, W/4)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ASPP(nn.Module):
    """DeepLab-v2's classifier: parallel dilated 3x3 convolutions whose logits are summed.

    Branch weights start from N(0, 0.01) as in the lineage; padding equals dilation, so the
    size is kept. ``legacy`` sums only the first two branches, as AdaptSegNet/DACS do.
    """

    def __init__(self, in_channels: int, num_classes: int, legacy: bool = False) -> None:
        super().__init__()
        self.legacy = legacy
        convs = [nn.Conv2d(in_channels, num_classes, 3, padding=d, dilation=d) for d in _RATES]
        for conv in convs:
            nn.init.normal_(conv.weight, mean=0.0, std=0.01)
        self.branches = nn.ModuleList(convs)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, h, w) -> (B, num_classes, h, w)."""
        branches = self.branches[:2] if self.legacy else self.branches
        out = branches[0](x)
        for conv in branches[1:]:
            out = out + conv(x)
        return out


class DeepLabV2(nn.Module):
    """DeepLab-v2 for semantic segmentation; takes RGB in [0, 1], normalises inside.

    Args:
        num_classes: number of output classes.
        backbone: ``"resnet101"`` (the paper's), ``"resnet50"`` or ``"resnet18"``.
        width: channels after the stem; stages have width x (1, 2, 4, 8) planes. 64 is the
            standard ResNet (and the only width pretrained weights fit); 16 or 32 give the
            narrow networks of the CPU toy preset.
        legacy_aspp: reproduce the lineage's ASPP that sums only two branches.
        freeze_bn: BatchNorm uses running statistics, its affine parameters are frozen, and
            it stays in eval mode under ``train()`` (DACS). False: ordinary BatchNorm.
        bn_batch_stats: with ``freeze_bn``, BatchNorm follows ``train()``/``eval()`` (batch
            statistics in training, running statistics updated) while its affine
            parameters stay frozen: the lineage's and the release's behaviour.
        stride_in_1x1: Bottleneck blocks put their stride on the first 1x1 conv (Caffe).
        input_norm: ``"imagenet"``: ``(x - mean) / std`` with torchvision's statistics (for
            torchvision weights). ``"caffe"``: ``x * 255``, RGB -> BGR, minus the BGR mean
            (104.008, 116.669, 122.679) (for the DeepLab-v2 init checkpoint).
        ceil_mode: ceil mode of the stem's max-pool; True as in the lineage gives
            ``H/8 + 1`` outputs instead of ``ceil(H/8)``.

    Raises:
        ValueError: on an unknown backbone or input_norm, width < 8 or num_classes < 1.
    """

    output_stride = 8
    input_mean: Tensor
    input_std: Tensor

    def __init__(
        self,
        num_classes: int = 19,
        backbone: str = "resnet101",
        width: int = 64,
        legacy_aspp: bool = False,
        freeze_bn: bool = True,
        input_norm: InputNorm = "imagenet",
        ceil_mode: bool = False,
        bn_batch_stats: bool = False,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        if backbone not in _BACKBONES:
            raise ValueError(f"backbone {backbone!r}: expected one of {sorted(_BACKBONES)}")
        if width < 8:
            raise ValueError(f"width {width}: expected at least 8 channels")
        if num_classes < 1:
            raise ValueError(f"num_classes {num_classes}: expected at least 1")
        if input_norm not in _INPUT_NORMS:
            raise ValueError(f"input_norm {input_norm!r}: expected one of {sorted(_INPUT_NORMS)}")
        self.num_classes = num_classes
        self.backbone_name = backbone
        self.width = width
        self.freeze_bn = freeze_bn
        self.bn_batch_stats = bn_batch_stats
        self.input_norm = input_norm
        self.backbone = _ResNet(*_BACKBONES[backbone], width=width, ceil_mode=ceil_mode,
                                stride_in_1x1=stride_in_1x1)  # fmt: skip
        self.feature_channels: int = self.backbone.out_channels
        self.classifier = ASPP(self.feature_channels, num_classes, legacy=legacy_aspp)
        mean, std = _INPUT_NORMS[input_norm]
        self.register_buffer("input_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        if freeze_bn:
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.requires_grad_(False)
        self.train()

    def train(self, mode: bool = True) -> DeepLabV2:
        """Set train/eval mode; frozen BatchNorm stays in eval mode either way (unless it
        normalises with batch statistics, ``bn_batch_stats``)."""
        super().train(mode)
        if self.freeze_bn and not self.bn_batch_stats:
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def normalize(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, 3, H, W) in the backbone's input convention."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
        if self.input_norm == "caffe":
            x = x.flip(1) * 255.0  # RGB in [0, 1] -> BGR in [0, 255]
        return (x - self.input_mean) / self.input_std

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, feature_channels, ceil(H/8), ceil(W/8))."""
        return self.backbone(self.normalize(x))

    def forward_head(self, features: Tensor) -> Tensor:
        """(B, feature_channels, h, w) -> (B, num_classes, h, w) logits."""
        return self.classifier(features)

    def forward(self, x: Tensor) -> SegmentationOutput:
        """(B, 3, H, W) RGB in [0, 1] -> logits and features at output stride 8."""
        features = self.forward_features(x)
        return SegmentationOutput(logits=self.forward_head(features), features=features)

    def param_groups(self, lr: float, heads: Sequence[nn.Module] = ()) -> list[dict[str, Any]]:
        """SGD parameter groups: backbone at ``lr``, classifier and ``heads`` at 10 x ``lr``.

        Only parameters with ``requires_grad`` are included (frozen BatchNorm is not). Each
        group carries ``name`` and ``lr_mult`` so a scheduler can set ``lr = base * lr_mult``.

        Raises:
            ValueError: if a module in ``heads`` holds backbone parameters.
        """
        backbone_ids = {id(p) for p in self.backbone.parameters()}
        head: dict[int, nn.Parameter] = {}  # by id: a head passed twice is counted once
        for module in (self.classifier, *heads):
            for p in module.parameters():
                if id(p) in backbone_ids:
                    raise ValueError(
                        f"param_groups: {type(module).__name__} in heads holds "
                        "backbone parameters; pass only modules outside it"
                    )
                if p.requires_grad:
                    head[id(p)] = p
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        groups = (("backbone", 1.0, backbone), ("head", _HEAD_LR_MULT, list(head.values())))
        return [{"name": n, "params": ps, "lr": lr * m, "lr_mult": m} for n, m, ps in groups]


@contextmanager
def frozen_bn_statistics(module: nn.Module) -> Iterator[None]:
    """Forward passes inside leave every BatchNorm's running statistics untouched.

    A BatchNorm in train mode still normalises with the batch's statistics (outputs and
    gradients are as without this), but ``running_mean``, ``running_var`` and
    ``num_batches_tracked`` are neither updated nor counted: ``track_running_stats`` is off
    for the duration, so torch passes no running buffers to the train-mode batch norm. A
    BatchNorm in eval mode (frozen) normalises with its running statistics as before.
    """
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    layers = [m for m in layers if m.track_running_stats]
    for layer in layers:
        layer.track_running_stats = False
    try:
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True
