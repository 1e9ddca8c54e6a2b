"""The tiny toy city and config shared by the tests that train (64x32 images, few steps).

``tests/conftest.py`` generates the city once per session (the ``toy`` fixture);
:func:`tiny_config` points the toy preset at it with a network and batch small enough
that a step takes milliseconds. Each test adds the schedule it needs as overrides.
"""

from __future__ import annotations

from pathlib import Path

from rccr.config import Config, load_config
from rccr.data.toycity import ToyCitySpec

TINY = ToyCitySpec(num_source=8, num_target_train=8, num_target_val=3, width=64, height=32)


def tiny_overrides(toy: Path, *extra: str) -> list[str]:
    """Overrides of the toy preset for the tiny city at ``toy``, then ``extra``."""
    return [
        f"data.source_root={toy / 'gta5'}",
        f"data.target_root={toy / 'cityscapes'}",
        *(f"data.{k}=[64, 32]" for k in ("source_size", "target_size", "val_size")),
        "data.crop=[32, 32]",
        "model.width=8",
        "train.batch_size=2",
        "train.log_every=1",
        "train.threads=1",
        "method.bank_per_step=16",
        *extra,
    ]


def tiny_config(toy: Path, *extra: str) -> Config:
    """The toy preset on the tiny city, with ``extra`` overrides (``"train.mode=rccr"``)."""
    return load_config("toy", tiny_overrides(toy, *extra))
