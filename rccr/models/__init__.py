"""Segmentation networks: DeepLab-v2 and its pretrained-weight loader."""

from rccr.models.deeplabv2 import (
    DeepLabV2,
    LoadReport,
    SegmentationOutput,
    build_deeplabv2,
    load_pretrained,
)

__all__ = ["DeepLabV2", "LoadReport", "SegmentationOutput", "build_deeplabv2", "load_pretrained"]
