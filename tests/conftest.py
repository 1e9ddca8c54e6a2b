"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_toy import TINY

from rccr.data.toycity import make_toy_city


@pytest.fixture(scope="session")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny toy city (tests/tiny_toy.py), generated once per session."""
    out = tmp_path_factory.mktemp("tiny") / "toy"
    make_toy_city(out, TINY, workers=1, progress=False)
    return out
