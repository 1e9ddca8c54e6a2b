"""rccr.tutorial: the smoke switch, the tutorial configs and runs, notebook 06's choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import rccr.analysis.regions
import rccr.viz
from rccr import tutorial
from rccr.analysis.checkpoints import CheckpointModels
from rccr.build import build_model
from rccr.config import ConfigError, load_config
from rccr.data.dataset import Sample
from rccr.data.toycity import ToyCitySpec, ToyCitySummary
from rccr.models.heads import ProjectionHead


def _toy(root: Path) -> ToyCitySummary:
    return ToyCitySummary(root / "gta5", root / "cityscapes", 1, 1, 1, 0.0)


@pytest.mark.parametrize(("value", "on"), [(None, False), ("", False), ("0", False),
                                           ("1", True), ("yes", True)])  # fmt: skip
def test_smoke__read_from_the_environment(
    value: str | None, on: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv(tutorial.SMOKE_ENV, raising=False)
    else:
        monkeypatch.setenv(tutorial.SMOKE_ENV, value)
    assert tutorial.smoke() is on
    assert tutorial.tutorial_iterations(1000) == (tutorial.SMOKE_ITERATIONS if on else 1000)
    assert tutorial.tutorial_iterations(2) == 2
    assert tutorial.smoke_path("a/toy") == Path("a/toy-smoke" if on else "a/toy")
    assert tutorial.runs_folder("r") == Path("r-smoke" if on else "r")
    assert tutorial.toy_spec() == (
        ToyCitySpec(num_source=16, num_target_train=16, num_target_val=8) if on else ToyCitySpec()
    )


@pytest.mark.parametrize(("smoke", "iterations", "every"), [("0", 1000, 250), ("0", 300, 75),
                                                            ("1", 4, 2)])  # fmt: skip
def test_toy_config__toy_preset_on_the_toy_city(
    smoke: str, iterations: int, every: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(tutorial.SMOKE_ENV, smoke)
    config = tutorial.toy_config(_toy(Path("/t")), "dacs", 1000 if smoke == "1" else iterations,
                                 overrides=["method.bank=false"])  # fmt: skip
    expected = load_config("toy", [
        "data.source_root=/t/gta5", "data.target_root=/t/cityscapes", "train.mode=dacs",
        f"train.iterations={iterations}", f"train.eval_every={every}",
        f"train.checkpoint_every={every}", "method.bank=false",
    ])  # fmt: skip
    assert config == expected


def test_toy_config__bad_override_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"method\.no_such_key"):
        tutorial.toy_config(_toy(Path("/t")), "rccr", overrides=["method.no_such_key=1"])


@pytest.mark.parametrize("case", ["cpu", "cuda_toy", "cuda_no_weights", "cuda_paper"])
def test_training_setup__gpu_paper_preset_only_with_its_data(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(tutorial.SMOKE_ENV, raising=False)
    source, target = tmp_path / "gta5", tmp_path / "cityscapes"
    weights = tmp_path / "init.pth"
    if case in ("cuda_paper", "cuda_no_weights"):
        source.mkdir(), target.mkdir()
    if case == "cuda_paper":
        weights.write_bytes(b"")  # found: what it holds is read when training starts
    toy = _toy(tmp_path / "toy")
    setup = tutorial.training_setup(toy, tmp_path / "runs", paper_data=(source, target),
                                    overrides=["train.seed=3"], cuda=case != "cpu",
                                    paper_weights=weights)  # fmt: skip
    train = setup.config.train
    if case == "cpu":
        assert setup.config == tutorial.toy_config(toy, "rccr")
        assert setup.out == tmp_path / "runs" / "rccr"
        assert "CPU" in setup.reason
        return
    assert (train.device, train.precision, train.mode) == ("cuda", "auto", "rccr")
    if case == "cuda_toy":
        assert setup.config.name == "toy" and setup.out == tmp_path / "runs" / "rccr-cuda"
        assert str(source) in setup.reason
    elif case == "cuda_no_weights":  # the datasets alone are not enough for ResNet-101
        assert setup.config.name == "toy" and str(weights) in setup.reason
        assert str(source) not in setup.reason
    else:
        assert setup.config.name == "gta2cityscapes"
        assert setup.out == tmp_path / "runs" / "gta2cityscapes"
        assert setup.config.data.source_root == str(source)
        assert train.iterations == load_config("gta2cityscapes").train.iterations
        assert train.seed == 3 and setup.config.model.pretrained == str(weights)
        assert str(weights) in setup.reason


def test_batch__stacks_samples_like_the_loader() -> None:
    samples = [Sample(torch.full((3, 2, 4), float(i)), torch.full((2, 4), i), f"s{i}")
               for i in range(3)]  # fmt: skip
    batch = tutorial.batch(samples, [2, 0])
    assert batch.image.shape == (2, 3, 2, 4) and batch.label.shape == (2, 2, 4)
    assert batch.image[:, 0, 0, 0].tolist() == [2.0, 0.0]
    assert batch.name == "s2, s0"


@pytest.mark.slow
def test_toy_data_and_toy_run__generate_train_then_reuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(tutorial.SMOKE_ENV, "1")
    toy = tutorial.toy_data(tmp_path / "toy", progress=False)
    assert toy.gta5_root == tmp_path / "toy-smoke" / "gta5" and toy.num_target_val == 8
    runs = tutorial.runs_folder(tmp_path / "runs")
    run = tutorial.toy_run(toy, runs, "source_only", progress=False)
    assert (run.path, run.status, run.iteration) == (runs / "source_only", "finished", 4)
    assert sorted(run.checkpoints) == sorted(run.evals) == [2, 4]
    stamp = run.checkpoints[4].stat().st_mtime_ns
    again = tutorial.toy_run(toy, runs, "source_only", progress=False)
    assert again.records == run.records
    assert again.checkpoints[4].stat().st_mtime_ns == stamp  # not trained again


def test_region_explorer__controls_drive_explain_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config("toy", ["model.width=8", "train.mode=rccr"])
    torch.manual_seed(0)
    student = build_model(config.model, verbose=False).eval()
    head = ProjectionHead(student.feature_channels, out_dim=config.method.embed_dim).eval()
    models = CheckpointModels(0, config, student, student, head, head)
    image, label = torch.rand(3, 32, 64), torch.randint(0, 19, (32, 64))
    calls: list[dict[str, Any]] = []
    explain = rccr.analysis.regions.explain_regions

    def recording(*args: Any, **settings: Any) -> rccr.analysis.regions.RegionSample:
        calls.append(settings)
        return explain(*args, **settings)

    monkeypatch.setattr(rccr.analysis.regions, "explain_regions", recording)
    drawn: list[rccr.analysis.regions.RegionSample] = []
    monkeypatch.setattr(rccr.viz, "region_figure", lambda sample: drawn.append(sample))
    widget = tutorial.region_explorer(models, Sample(image, label, "s"), Sample(image, label, "t"))
    seed, box, threshold = widget.children[0].children
    positives, negatives = widget.children[1].children
    assert not calls  # nothing is drawn before a control moves
    seed.value, box.value, threshold.value = 3, 0.5, 0.6
    positives.value, negatives.value = "all", "random"
    assert len(calls) == len(drawn) == 5  # one redraw per change
    assert calls[-1] == {"seed": 3, "box_ratio": 0.5, "confidence_threshold": 0.6,
                         "positive_sampling": "all", "negative_sampling": "random"}  # fmt: skip
    box_h, box_w = drawn[-1].box[2:]
    assert box_h * box_w == pytest.approx(0.5 * 32 * 64, rel=0.3)
