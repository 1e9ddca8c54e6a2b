"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from tiny_toy import TINY

from rccr.data.toycity import make_toy_city

if "MUTANT_UNDER_TEST" in os.environ:
    # Under mutmut (`make mutate`) every test runs on one thread. mutmut forks a worker per
    # mutant from a process that has already run the tests, and OpenMP cannot start a
    # parallel region in a child forked after its parent had a team of threads: the child
    # waits forever (a futex wait inside the first convolution) for threads that were not
    # copied. The trainer's `train.threads` would make that team, so it is held at one.
    # Results do not depend on the thread count.
    torch.set_num_threads(1)
    torch.set_num_threads = lambda threads: None  # type: ignore[assignment]


@pytest.fixture(scope="session")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny toy city (tests/tiny_toy.py), generated once per session."""
    out = tmp_path_factory.mktemp("tiny") / "toy"
    make_toy_city(out, TINY, workers=1, progress=False)
    return out
