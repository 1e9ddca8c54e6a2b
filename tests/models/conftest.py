"""Shared fixtures for the model tests."""

from __future__ import annotations

import pytest

from rccr.models import DeepLabV2


@pytest.fixture(scope="module")
def resnet101() -> DeepLabV2:
    """The paper's network (built once: it takes a second on CPU)."""
    return DeepLabV2(backbone="resnet101", input_norm="caffe")
