"""Datasets in their real on-disk layouts, their label maps, and the toy-city benchmark."""

from rccr.data.cityscapes import Cityscapes
from rccr.data.dataset import Sample, SegmentationDataset
from rccr.data.files import DataError
from rccr.data.gta5 import GTA5
from rccr.data.synthia import Synthia
from rccr.data.transforms import JointTransform, Size

__all__ = [
    "GTA5",
    "Cityscapes",
    "DataError",
    "JointTransform",
    "Sample",
    "SegmentationDataset",
    "Size",
    "Synthia",
]
