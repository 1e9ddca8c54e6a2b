"""Every constant of the method and its optimisation, pinned for the default config and each
preset against the paper's, the release's or DACS's value (docs/method.md#constants; the
release's own values: docs/method.md#paper-release-and-this-project).

The table is the reference: a default or a preset that drifts from it fails here, naming
the key. Values that are the project's choice (the toy preset's schedule) are marked so.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch

from rccr.build import build_model
from rccr.config import PRESETS, Config, load_config
from rccr.method.mixing import photometric
from rccr.method.pseudo_label import dacs_weight
from rccr.training.method_parts import MethodParts

PAPER = ("gta2cityscapes", "synthia2cityscapes")
RELEASE = ("gta2cityscapes_release", "synthia2cityscapes_release")
# key -> {config name -> value}; "*" is every config not listed. Source in the comment.
TABLE: dict[str, dict[str, Any]] = {
    "method.pseudo_label_threshold": {"*": 0.968},  # DACS
    "method.confidence_threshold": {"*": 0.75},  # release: pos_thresh_value
    "method.temperature": {"*": 0.1},  # release: temp
    "method.embed_dim": {"*": 128},  # release: ProjectionHead(proj_dim=128)
    "method.contrast_weight": {"*": 0.01},  # release: 0.01 * exp(-5 (1 - sqrt(t/T)))
    "method.contrast_start_iter": {"*": 0, "gta2cityscapes_release": 300_000},  # release
    "method.bank_per_step": {"*": 4000, "toy": 1000},  # release: selected_num; toy: project
    "method.bank_steps": {"*": 3},  # release: step_save = 2, three steps held
    "method.ema_max_momentum": {"*": 0.99},  # DACS / release: alpha_teacher
    "method.class_mix": {"*": "per_image"},  # DACS
    "method.positive_sampling": {"*": "confident"},  # paper
    "method.negative_sampling": {"*": "class_aware"},  # paper
    "method.bank": {"*": True},  # paper
    "method.momentum_head": {"*": True},  # paper
    "train.lr": {"*": 2.5e-4, "toy": 0.01},  # DACS; toy: trained from scratch (project)
    "train.momentum": {"*": 0.9},  # DACS
    "train.weight_decay": {"*": 5e-4},  # DACS
    "train.poly_power": {"*": 0.9},  # DACS
    "train.iterations": {"*": 250_000, "toy": 3000},  # DACS; toy: project
    "train.batch_size": {"*": 2, "toy": 8},  # DACS (2 source + 2 target); toy: project
    "model.backbone": {"*": "resnet101", "toy": "resnet18"},  # DACS; toy: project
    "model.freeze_bn": {"*": True, "toy": False},  # DACS; toy: trained from scratch
    "data.crop": {"*": (512, 512), "toy": (128, 128)},  # DACS
    "data.source_size": {
        "*": (1280, 720),
        "synthia2cityscapes": (1280, 760),
        "synthia2cityscapes_release": (1280, 760),
        "toy": (256, 128),
    },
    "data.target_size": {
        "*": (1024, 512),
        "toy": (256, 128),
        **{name: (2048, 1024) for name in RELEASE},
    },
    "data.flip": {"*": False, "toy": True},  # release and DACS: "flip": false
    "eval.subsets": {
        "*": (19,),
        "synthia2cityscapes": (16, 13),
        "synthia2cityscapes_release": (16, 13),
    },
}
CONFIGS = ["default", *PRESETS]


def _config(name: str) -> Config:
    return Config() if name == "default" else load_config(name)


def _value(config: Config, key: str) -> Any:
    section, name = key.split(".")
    value = getattr(getattr(config, section), name)
    return tuple(value) if isinstance(value, list) else value


def test_constants__every_preset_is_covered() -> None:
    assert set(PRESETS) == {"toy", *PAPER, *RELEASE}


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("key", sorted(TABLE))
def test_constants__match_the_table(name: str, key: str) -> None:
    expected = TABLE[key].get(name, TABLE[key]["*"])
    assert _value(_config(name), key) == expected, f"{name}: {key}"


@pytest.mark.parametrize("name", ["toy", *PAPER])
def test_constants__classifier_and_head_at_ten_times_the_lr(name: str) -> None:
    """The x10 groups: ASPP classifier and projection head at 10 x lr, backbone at 1 x."""
    config = load_config(name, ["model.width=8", "model.backbone=resnet50"])
    student = build_model(config.model, verbose=False)
    parts = MethodParts.build(student, config.method, rccr=True, seed=0)
    assert parts.student_head is not None
    groups = {g["name"]: g for g in student.param_groups(1.0, heads=[parts.student_head])}
    assert groups["backbone"]["lr_mult"] == 1.0 and groups["head"]["lr_mult"] == 10.0
    head = {id(p) for p in groups["head"]["params"]}
    assert {id(p) for p in student.classifier.parameters()} <= head
    assert {id(p) for p in parts.student_head.parameters()} <= head
    backbone = {id(p) for p in groups["backbone"]["params"]}
    assert not backbone & head and backbone
    frozen = config.model.freeze_bn
    bn = [
        p for m in student.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()
    ]
    assert all((id(p) in backbone) is not frozen for p in bn)


# DACS's strong augmentation (docs/method.md#mixing), the defaults every training step uses:
# colour jitter of strength 0.25 with probability 0.8, then Gaussian blur with probability
# 0.5, sigma ~ U(0.15, 1.15), kernel 0.1 of each side.
PHOTOMETRIC = {
    "jitter_strength": 0.25,
    "jitter_prob": 0.8,
    "blur_prob": 0.5,
    "blur_sigma": (0.15, 1.15),
    "blur_kernel_frac": 0.1,
}


def test_constants__photometric_defaults_are_dacs() -> None:
    parameters = inspect.signature(photometric).parameters
    assert {key: parameters[key].default for key in PHOTOMETRIC} == PHOTOMETRIC


def test_constants__dacs_weight_defaults_are_dacs() -> None:
    """One weight for the batch (DACS's ``sum(max_probs.ge(0.968)) / numel``): the training
    step passes the threshold (``method.pseudo_label_threshold``, no default) and relies on
    the batch-wide default."""
    parameters = inspect.signature(dacs_weight).parameters
    assert parameters["threshold"].default is inspect.Parameter.empty
    assert parameters["per_image"].default is False
