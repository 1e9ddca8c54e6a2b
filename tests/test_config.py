"""Config: presets, overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rccr.config import (
    MODES,
    NEGATIVE_SAMPLING,
    POSITIVE_SAMPLING,
    PRESETS,
    Config,
    ConfigError,
    config_from_dict,
    load_config,
    save_config,
)


@pytest.mark.parametrize("preset", ["toy", "gta2cityscapes", "synthia2cityscapes"])
def test_presets__load_and_round_trip(preset: str, tmp_path: Path) -> None:
    assert preset in PRESETS
    config = load_config(preset)
    assert config.name == preset
    (tmp_path / "c.yaml").write_text(save_config(config))
    assert load_config(tmp_path / "c.yaml") == config


def test_paper_presets__match_design() -> None:
    gta, syn = load_config("gta2cityscapes"), load_config("synthia2cityscapes")
    for c in (gta, syn):
        assert (c.model.backbone, c.model.freeze_bn, c.model.legacy_aspp) == (
            "resnet101",
            True,
            False,
        )
        assert (c.train.lr, c.train.momentum, c.train.weight_decay) == (2.5e-4, 0.9, 5e-4)
        assert (c.train.poly_power, c.train.iterations, c.train.batch_size) == (0.9, 250_000, 2)
        assert c.data.crop == (512, 512) and c.data.target_size == (1024, 512)
    assert gta.data.source_size == (1280, 720) and gta.eval.subsets == (19,)
    assert syn.data.source == "synthia" and syn.data.source_size == (1280, 760)
    assert syn.eval.subsets == (16, 13)


def test_overrides__dotted_keys_and_yaml_values() -> None:
    config = load_config("toy", ["train.lr=1e-3", "data.crop=[64, 64]", "model.pretrained=null",
                                 "train.seed=7", "data.flip=false", "name=other"])  # fmt: skip
    assert config.train.lr == 1e-3 and config.data.crop == (64, 64)
    assert config.train.seed == 7 and config.data.flip is False and config.name == "other"
    assert config.replace(["train.iterations=5"]).train.iterations == 5


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lrr=1", r"train\.lrr: unknown key; valid keys in 'train': batch_size, .*lr,"),
        (
            "bogus=1",
            r"bogus: unknown key; valid keys in the top level: data, eval, method, model, name",
        ),
        ("train.lr=-1", r"train\.lr: expected > 0, got -1"),
        ("train.iterations=0", r"train\.iterations: expected >= 1"),
        ("train.iterations=1.5", r"train\.iterations: expected an integer, got 1\.5"),
        ("train.mode=fancy", r"train\.mode: expected one of 'source_only', 'dacs', 'rccr', "),
        ("method.temperature=0", r"method\.temperature: expected > 0"),
        ("method.negative_sampling=all", r"method\.negative_sampling: expected one of"),
        ("data.crop=[1024, 1024]", r"data\.crop: expected at most data\.source_size"),
        ("data.crop=[-4, 4]", r"data\.crop: expected \[width, height\] > 0"),
        ("data.crop=512", r"data\.crop: expected a list of 2 integers"),
        ("model.width=2", r"model\.width: expected >= 8"),
        ("data.flip=maybe", r"data\.flip: expected true or false"),
        ("eval.subsets=[19, 12]", r"eval\.subsets: expected a list drawn from 19, 16, 13"),
        ("train.lr", r"expected key=value"),
        ("train.lr.x=1", r"train\.lr: is a value, not a section"),
        ("name=a/b", r"name: expected a non-empty name without '/'"),
    ],
)
def test_overrides__bad_key_or_value_is_named(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("toy", [override])


def test_load_config__missing_preset_lists_presets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such preset or config file; presets: gta2"):
        load_config("nope")
    (tmp_path / "bad.yaml").write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a mapping"):
        load_config(tmp_path / "list.yaml")


def test_config__frozen_and_defaults() -> None:
    config = config_from_dict({})
    assert config == Config()
    with pytest.raises(AttributeError):
        config.name = "x"  # type: ignore[misc]
    assert yaml.safe_load(save_config(config))["data"]["crop"] == [512, 512]


def test_option_lists__are_the_configs_literal_values() -> None:
    assert POSITIVE_SAMPLING == ("confident", "all")
    assert NEGATIVE_SAMPLING == ("class_aware", "random")
    assert MODES == ("source_only", "dacs", "rccr", "oracle")
    with pytest.raises(ConfigError, match=r"method\.negative_sampling.*class_aware.*random"):
        load_config("toy", ["method.negative_sampling=classaware"])
