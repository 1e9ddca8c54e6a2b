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
    ModelConfig,
    config_from_dict,
    load_config,
    quote,
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


def test_save_config__keeps_the_schema_order() -> None:
    """config.yaml lists the sections and keys in the order of the dataclasses (name first,
    then data, model, ...), as a reader expects, not sorted."""
    saved = yaml.safe_load(save_config(load_config("toy")))
    assert list(saved) == ["name", "data", "model", "train", "method", "eval"]
    assert list(saved["data"])[:3] == ["source", "source_root", "target_root"]


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
        ("nosuch.key=1", r": nosuch: unknown key; valid keys in the top level: data, eval, "),
        ("train.nosuch.deeper=1", r": train\.nosuch: unknown key; valid keys in 'train': "),
        (
            "model.pretrained=[1]",
            r"^override model\.pretrained=\[1\]: model\.pretrained: "
            r"expected a string or null, got \[1\]$",
        ),
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


def _alias_bomb(levels: int = 7) -> str:
    """A few hundred bytes of YAML: ``train.lr`` is a list whose aliases expand to 9**levels
    strings."""
    anchors = ['&a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    anchors += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return f"train: {{lr: [{', '.join(anchors)}]}}\n"


@pytest.mark.parametrize("where", ["config file", "override", "run's config.yaml"])
def test_yaml__alias_bomb_is_refused_in_one_short_line(tmp_path: Path, where: str) -> None:
    import time

    from rccr.runs import load_run

    text = _alias_bomb()
    assert len(text) < 600
    start = time.perf_counter()
    if where == "config file":
        (tmp_path / "bomb.yaml").write_text(text)
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path / "bomb.yaml")
        message = str(info.value)
    elif where == "override":
        with pytest.raises(ConfigError) as info:
            load_config("toy", [f"train={text[len('train: ') :]}"])
        message = str(info.value)
    else:
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "config.yaml").write_text(text)
        run = load_run(tmp_path / "run")
        assert run.config is None
        message = next(p for p in run.problems if "config.yaml" in p)
    assert time.perf_counter() - start < 5
    said = message.replace(str(tmp_path), "")  # the folder's name holds "alias" too
    assert "aliases expand to more than" in said and len(said) < 300 and "\n" not in said


def test_yaml__a_few_aliases_are_fine(tmp_path: Path) -> None:
    text = "data:\n  source_size: &size [256, 128]\n  target_size: *size\n  val_size: *size\n"
    (tmp_path / "c.yaml").write_text(text + "  crop: [64, 64]\n")
    assert load_config(tmp_path / "c.yaml").data.val_size == (256, 128)


def _values(obj: object) -> int:
    """Values of a loaded document with every alias expanded (a container counts itself)."""
    if isinstance(obj, dict):
        return 1 + sum(_values(k) + _values(v) for k, v in obj.items())
    if isinstance(obj, list):
        return 1 + sum(_values(v) for v in obj)
    return 1


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [1, 2, {b: 3}]\nc: *x\nd: [*x, *x, {e: *x}]\n",  # one anchor, reused after it closed
        "a: &x {k: &y [1, 2]}\nb: [*y, *x, *y]\nc: {d: *x, e: [*y]}\n",  # nested anchors
        "[" + ", ".join(["&a [1, [2, 3]]"] + ["*a"] * 40) + "]\n",
        "plain: [1, 2, 3]\n",
    ],
)
def test_expanded_size__counts_every_value_of_the_expanded_document(text: str) -> None:
    from rccr.config import _expanded_size

    node = yaml.SafeLoader(text).get_single_node()
    assert _expanded_size(node) == _values(yaml.safe_load(text))


def test_parse_yaml__refuses_past_10000_values_and_not_at_them() -> None:
    from rccr.config import parse_yaml

    at_limit = "[" + ", ".join(["0"] * 9_999) + "]"  # the list and 9999 items
    assert len(parse_yaml(at_limit)) == 9_999
    with pytest.raises(yaml.YAMLError, match="more than 10000 values"):
        parse_yaml("[" + ", ".join(["0"] * 10_000) + "]")


def test_yaml__recursive_alias_and_deep_nesting_are_refused(tmp_path: Path) -> None:
    for name, text in (("loop.yaml", "train: &t {lr: *t}\n"), ("list.yaml", "&t [1, *t]\n")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path / name)
        assert str(info.value) == (
            f"{tmp_path / name}: not valid YAML: a recursive alias (an anchor used inside itself)"
        )
    (tmp_path / "deep.yaml").write_text("train: " + "[" * 20000 + "]" * 20000 + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "deep.yaml")
    assert str(info.value) == f"{tmp_path / 'deep.yaml'}: not valid YAML: nested too deeply to read"


def test_load_config__huge_file_is_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "huge.yaml").write_text("name: x\n" + "#" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match=r"huge\.yaml: larger than 1 MiB"):
        load_config(tmp_path / "huge.yaml")


@pytest.mark.parametrize(
    "value",
    ["x" * 100_000, [[["y" * 1000] * 1000] * 1000], {"k" * 5000: ["v"] * 10_000}],
    ids=["long string", "nested lists", "large mapping"],
)
def test_config_error__quotes_at_most_200_characters_of_a_value(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"train": {"lr": value}})
    message = str(info.value)
    assert message.startswith("train.lr: expected a number, got ") and len(message) < 300


def test_quote__a_repr_of_200_characters_whole_a_longer_one_cut_to_200() -> None:
    assert quote("x" * 198) == repr("x" * 198)  # 200 characters with its quotes
    cut = quote(["x" * 150] * 8)  # each item short enough for reprlib, the list is not
    assert len(cut) == 200 and cut == repr(["x" * 150] * 8)[:197] + "..."


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "eval.subsets: expected a list of integers, got 'abc'"),
        ([1.5], "eval.subsets: expected an integer, got 1.5"),  # the item is named
    ],
)
def test_config_error__a_list_of_any_length_is_named_so(value: object, message: str) -> None:
    """eval.subsets takes any number of class counts: its message says no length."""
    with pytest.raises(ConfigError) as info:
        config_from_dict({"eval": {"subsets": value}})
    assert str(info.value) == message


def test_config_error__long_unknown_key_is_shortened() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"train": {"k" * 100_000: 1}})
    assert str(info.value).startswith("train.kkk") and len(str(info.value)) < 600


FLOAT_KEYS = [
    "train.lr", "train.momentum", "train.weight_decay", "train.poly_power",
    "method.pseudo_label_threshold", "method.ema_max_momentum", "method.contrast_weight",
    "method.temperature", "method.confidence_threshold",
]  # fmt: skip


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", ".inf", ".nan", "1e400"])
@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_overrides__non_finite_numbers_are_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"{key}: expected a finite number, got "):
        load_config("toy", [f"{key}={value}"])


def test_config__every_float_key_is_checked_for_finiteness() -> None:
    flat = {f"{section}.{k}" for section, keys in Config().to_dict().items()
            if isinstance(keys, dict) for k, v in keys.items() if isinstance(v, float)}  # fmt: skip
    assert flat == set(FLOAT_KEYS)


def test_key_meanings__every_key_of_every_preset_is_documented() -> None:
    """`rccr config show` reads the meanings from the sections' docstrings: a key added
    without its Attributes entry fails here."""
    from rccr.config import PRESETS, flatten_config, load_config
    from rccr.config_help import key_meanings

    meanings = key_meanings()
    for preset in PRESETS:
        keys = flatten_config(load_config(preset))
        assert sorted(keys) == sorted(meanings), preset
    assert all(len(text) > 10 for text in meanings.values())
    assert meanings["train.poly_power"] == "lr(t) = lr * (1 - t / iterations) ** poly_power."
    assert meanings["train.momentum"] == meanings["train.weight_decay"] == "SGD settings."
    assert meanings["data.flip"].endswith("trained from scratch.")  # continuation lines joined


def test_absolute_paths__relative_paths_become_absolute_against_the_base(tmp_path) -> None:
    from rccr.config import absolute_paths, load_config

    config = load_config("toy", ["data.val_list=lists/val.txt", "model.pretrained=w/../w.pth",
                                 "data.target_root=/abs/cs"])  # fmt: skip
    done = absolute_paths(config, tmp_path)
    assert done.data.source_root == str(tmp_path / "data/toy/gta5")
    assert done.data.target_root == "/abs/cs" and done.data.source_list is None
    assert done.data.val_list == str(tmp_path / "lists/val.txt")
    assert done.model.pretrained == str(tmp_path / "w.pth")
    assert absolute_paths(done, "/elsewhere") == done  # idempotent
    assert absolute_paths(load_config("toy", ["model.pretrained=none"])).model.pretrained == "none"
    assert done.train == config.train and done.method == config.method


def test_describe_differences__counts_the_keys_past_those_shown() -> None:
    from rccr.config import describe_differences, load_config

    a = load_config("toy")
    three = load_config("toy", ["train.lr=0.5", "train.seed=3", "train.momentum=0.5"])
    text = describe_differences(a, three, "A", "B")
    assert text.count(" in A, ") == 3 and "more" not in text
    four = load_config("toy", ["train.lr=0.5", "train.seed=3", "train.momentum=0.5", "name=x"])
    assert describe_differences(a, four, "A", "B").endswith(", and 1 more")
    assert describe_differences(a, four, "A", "B", shown=4).count(" in A, ") == 4


def test_require_weights__names_the_files_to_pass_and_none() -> None:
    """The whole message: a user starting a paper preset reads what to pass from it."""
    with pytest.raises(ConfigError) as info:
        ModelConfig(backbone="resnet101").require_weights()
    assert str(info.value) == (
        "model.pretrained: a resnet101 DeepLab-v2 trains from pretrained weights; pass "
        "model.pretrained=FILE (the DeepLab-v2 init of the AdaptSegNet/DACS lineage, "
        "DeepLab_resnet_pretrained_init-f81d91e8.pth, with model.input_norm=caffe; or "
        "torchvision ImageNet ResNet weights with model.input_norm=imagenet; README "
        "'Pretrained weights'), or model.pretrained=none to train from random weights on "
        "purpose"
    )
    ModelConfig(backbone="resnet18").require_weights()  # the toy network: random init is fine
    ModelConfig(backbone="resnet101", pretrained="none").require_weights()


# Every range check of the config, each with a value just outside its range and the whole
# message a user reads (the key, what it expects, the value given).
RANGE_MESSAGES = [
    ({"data": {"crop": [0, 64]}}, "data.crop: expected [width, height] > 0, got [0, 64]"),
    ({"data": {"val_size": [64, -1]}}, "data.val_size: expected [width, height] > 0, got [64, -1]"),
    (
        {"data": {"crop": [2000, 64]}},
        "data.crop: expected at most data.source_size [1280, 720], got [2000, 64]",
    ),
    ({"data": {"num_workers": -1}}, "data.num_workers: expected >= 0, got -1"),
    ({"model": {"width": 7}}, "model.width: expected >= 8, got 7"),
    (
        {"model": {"bn_batch_stats": True, "freeze_bn": False}},
        "model.bn_batch_stats: expected false unless model.freeze_bn is true, got True",
    ),
    (
        {"model": {"backbone": "resnet18", "stride_in_1x1": True}},
        "model.stride_in_1x1: expected false for resnet18 (its blocks have no 1x1 conv), got True",
    ),
    ({"train": {"log_every": 0}}, "train.log_every: expected >= 1, got 0"),
    ({"train": {"nan_retries": -1}}, "train.nan_retries: expected >= 0, got -1"),
    ({"train": {"lr": 0.0}}, "train.lr: expected > 0, got 0.0"),
    ({"train": {"momentum": 1.0}}, "train.momentum: expected in [0, 1), got 1.0"),
    ({"train": {"weight_decay": -0.1}}, "train.weight_decay: expected >= 0, got -0.1"),
    ({"train": {"poly_power": -1.0}}, "train.poly_power: expected >= 0, got -1.0"),
    (
        {"method": {"confidence_threshold": 1.5}},
        "method.confidence_threshold: expected in [0, 1], got 1.5",
    ),
    (
        {"method": {"ema_max_momentum": -0.5}},
        "method.ema_max_momentum: expected in [0, 1], got -0.5",
    ),
    ({"method": {"contrast_weight": -1.0}}, "method.contrast_weight: expected >= 0, got -1.0"),
    ({"method": {"ema_max_momentum": 1.5}}, "method.ema_max_momentum: expected in [0, 1], got 1.5"),
    (
        {"method": {"pseudo_label_threshold": -0.1}},
        "method.pseudo_label_threshold: expected in [0, 1], got -0.1",
    ),
    ({"method": {"embed_dim": 0}}, "method.embed_dim: expected >= 1, got 0"),
    ({"method": {"contrast_start_iter": -1}}, "method.contrast_start_iter: expected >= 0, got -1"),
    ({"method": {"temperature": 0.0}}, "method.temperature: expected > 0, got 0.0"),
    ({"method": {"bank_steps": 0}}, "method.bank_steps: expected >= 1, got 0"),
    (
        {"eval": {"subsets": [19, 15]}},
        "eval.subsets: expected a list drawn from 19, 16, 13, got [19, 15]",
    ),
    ({"eval": {"subsets": []}}, "eval.subsets: expected a list drawn from 19, 16, 13, got []"),
    ({"eval": {"batch_size": 0}}, "eval.batch_size: expected >= 1, got 0"),
    ({"name": ".."}, "name: expected a non-empty name without '/', got '..'"),
    ({"name": "."}, "name: expected a non-empty name without '/', got '.'"),
]


@pytest.mark.parametrize(
    ("data", "message"), RANGE_MESSAGES, ids=[m.split(":")[0] for _, m in RANGE_MESSAGES]
)
def test_config_error__each_range_check_says_key_expectation_and_value(
    data: dict, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "data",
    [
        {"eval": {"subsets": [19, 16, 13]}},
        {"eval": {"subsets": [13]}},
        {"name": "..."},
        {"method": {"confidence_threshold": 1.0, "pseudo_label_threshold": 0.0}},
        {"train": {"momentum": 0.0, "poly_power": 0.0, "weight_decay": 0.0}},
        {"model": {"width": 8}},
        {"data": {"crop": [1, 1], "val_size": [1, 1]}},
        {"method": {"ema_max_momentum": 0.0}},
        {"method": {"ema_max_momentum": 1.0}},
        {"method": {"contrast_weight": 0.0, "contrast_start_iter": 0}},
        {"method": {"embed_dim": 1, "bank_per_step": 1, "bank_steps": 1}},
    ],
)
def test_config__the_edges_of_each_range_are_accepted(data: dict) -> None:
    config_from_dict(data)


def test_config_error__the_whole_config_not_a_mapping_is_named_config() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict("text")  # type: ignore[arg-type]
    assert str(info.value) == "config: expected a mapping, got 'text'"


def test_config_error__unknown_keys_of_mixed_types_name_the_first() -> None:
    """YAML keys may be numbers: unknown ones are sorted as text, not compared (1 < 'zz')."""
    with pytest.raises(ConfigError) as info:
        config_from_dict({"eval": {"zz": 0, 1: 0}})
    assert str(info.value) == "eval.1: unknown key; valid keys in 'eval': batch_size, subsets"


@pytest.mark.parametrize(("length", "shown"), [(200, 200), (201, 200), (500, 200)])
def test_config_error__an_unknown_key_is_shown_to_200_characters(length: int, shown: int) -> None:
    name = "k" * length
    with pytest.raises(ConfigError) as info:
        config_from_dict({name: 1})
    key = str(info.value).split(": unknown key;")[0]
    assert len(key) == shown
    assert key == (name if length <= 200 else name[:197] + "...")


def test_coerce__an_integer_for_a_number_is_its_float_while_a_float_holds_it() -> None:
    config = config_from_dict({"train": {"lr": 10**308}, "method": {"temperature": 3000}})
    assert config.train.lr == 1e308 and config.method.temperature == 3000.0
    with pytest.raises(ConfigError) as info:
        config_from_dict({"train": {"lr": 2**1024}})  # past the largest float
    assert str(info.value) == f"train.lr: expected a finite number, got {quote(2**1024)}"
    with pytest.raises(ConfigError) as info:
        config_from_dict({"train": {"lr": float("inf")}})
    assert str(info.value) == "train.lr: expected a finite number, got inf"


def test_load_config__unreadable_file_and_unknown_name_messages_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rccr.config

    path = tmp_path / "c.yaml"
    path.write_text("name: x\n")

    def unreadable(file: Path) -> None:
        raise PermissionError(13, "Permission denied", str(file))

    with monkeypatch.context() as patch:  # root reads any file: the error is simulated
        patch.setattr(rccr.config, "read_yaml_file", unreadable)
        with pytest.raises(ConfigError) as info:
            load_config(path)
    assert str(info.value) == f"{path}: cannot read config: [Errno 13] Permission denied: '{path}'"
    with pytest.raises(ConfigError) as info:
        load_config("nope")
    assert str(info.value) == f"nope: no such preset or config file; presets: {', '.join(PRESETS)}"
    assert len(PRESETS) > 1  # the names are joined with ", "
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "latin1.yaml")
    assert str(info.value) == f"{tmp_path / 'latin1.yaml'}: not UTF-8 text (byte 9)"


def test_read_yaml_file__a_file_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    from rccr.config import read_yaml_file

    path = tmp_path / "c.yaml"
    path.write_text("name: abcdefghi\n")  # 16 bytes
    assert read_yaml_file(path, limit=16) == {"name": "abcdefghi"}
    with pytest.raises(ValueError, match=r"c\.yaml: larger than 0 MiB"):
        read_yaml_file(path, limit=15)
