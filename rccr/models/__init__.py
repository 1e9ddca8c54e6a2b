"""Segmentation networks: DeepLab-v2 and its pretrained-weight loader."""

from rccr.models.deeplabv2 import DeepLabV2, SegmentationOutput, frozen_bn_statistics
from rccr.models.pretrained import LoadReport, load_pretrained

__all__ = [
    "DeepLabV2",
    "LoadReport",
    "SegmentationOutput",
    "frozen_bn_statistics",
    "load_pretrained",
]
