"""The UDA benchmark script, end to end on a tiny toy city (CI smoke: 1 seed, 4 iterations)."""

from __future__ import annotations

import csv
import json
import math
import shutil
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import uda_benchmark as bench
import yaml
from tiny_toy import TINY, tiny_overrides

from rccr.config import absolute_paths, load_config
from rccr.data.files import DataError
from rccr.evaluation import EvalResult
from rccr.training import Trainer

REPO = Path(__file__).resolve().parents[2]


def _overrides(toy: Path) -> list[str]:
    """The tiny city and network, 4 iterations, evaluated and checkpointed every 2."""
    return tiny_overrides(toy, "train.iterations=4", "train.eval_every=2",
                          "train.checkpoint_every=2")  # fmt: skip


def _args(toy: Path, root: Path, *flags: str, override: str | None = None) -> list[str]:
    """Command-line arguments for seed 0; ``override`` comes after the tiny schedule."""
    return ["--preset", "toy", "--seeds", "0", "--data", str(toy), "--out", str(root / "out"),
            "--runs-dir", str(root / "runs"), *flags, "--", *_overrides(toy),
            *([override] if override else [])]  # fmt: skip


# A warm start of 4 iterations for the tiny runs (its schedule is its own, not overridable).
TINY_WARM_START = ("train.mode=source_only", "train.iterations=4", "train.batch_size=2",
                   "train.eval_every=2", "train.checkpoint_every=2", "train.threads=1",
                   "train.seed=0")  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def tiny_warm_start() -> Iterator[None]:
    real = bench.WARM_START["toy"]
    bench.WARM_START["toy"] = TINY_WARM_START
    yield
    bench.WARM_START["toy"] = real


@pytest.fixture(scope="module")
def smoke(toy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every method, seed 0, trained in this process."""
    root = tmp_path_factory.mktemp("bench")
    assert bench.main(_args(toy, root, "--jobs", "1")) == 0
    return root


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _eval(root: Path, method: str, iteration: int) -> dict[str, Any]:
    path = root / "runs" / "toy" / f"{method}_seed0" / "eval" / f"iter_{iteration}.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_main__one_row_per_run_with_the_last_checkpoint(smoke: Path) -> None:
    rows = _rows(smoke / "out" / "toy" / "results.csv")
    assert [r["method"] for r in rows] == bench.DEFAULT_METHODS
    assert "rccr_no_contrast" in bench.DEFAULT_METHODS  # the control is in the default set
    assert not {"rccr_no_cutmix_bn", "rccr_no_contrast_no_cutmix_bn"} & set(bench.DEFAULT_METHODS)
    for row in rows:
        assert row["finished"] == "True" and row["iteration"] == "4" and row["seed"] == "0"
        scored = _eval(smoke, row["method"], 4)
        assert float(row["mIoU19"]) == pytest.approx(scored["miou"]["mIoU19"], abs=0.005)
        road = float("nan") if scored["iou"][0] is None else scored["iou"][0]  # None: absent
        assert float(row["iou_road"]) == pytest.approx(road, abs=0.005, nan_ok=True)
        best = max((2, 4), key=lambda i: _eval(smoke, row["method"], i)["miou"]["mIoU19"])
        assert row["best_iteration_oracle_choice"] == str(best)


def test_main__curves_hold_every_evaluation(smoke: Path) -> None:
    rows = _rows(smoke / "out" / "toy" / "curves.csv")
    assert {(r["method"], r["iteration"]) for r in rows} == {
        (m, i) for m in bench.DEFAULT_METHODS for i in ("2", "4")
    }


def test_main__markdown_table_and_gap_closed(smoke: Path) -> None:
    text = (smoke / "out" / "toy" / "results.md").read_text()
    # The report's gap comes from unrounded means: take them from the scored evaluations.
    rows = {m: _eval(smoke, m, 4)["miou"]["mIoU19"] for m in bench.DEFAULT_METHODS}
    table = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in text.splitlines()
             if line.startswith("| ") and "1 of 1" in line}  # fmt: skip
    assert set(table) == {bench.uda_report.LABELS[m] for m in bench.DEFAULT_METHODS}
    gap = (rows["dacs"] - rows["source_only"]) / (rows["oracle"] - rows["source_only"]) * 100
    assert table["DACS"][4] == f"{gap:.0f} %"
    assert table["source-only"][4] == "0 %" and table["target-label oracle"][4] == "100 %"
    assert "oracle choice" in text and "--seeds 0" in text


def test_main__every_run_starts_from_the_shared_warm_start(smoke: Path) -> None:
    """The warm start trains source-only, once, with BatchNorm training; every run loads its
    last checkpoint and freezes BatchNorm at its statistics."""
    warm = load_config_yaml(smoke / "runs" / "toy" / "warm_start" / "config.yaml")
    assert warm["train"]["mode"] == "source_only" and warm["model"]["freeze_bn"] is False
    weights = smoke / "runs" / "toy" / "warm_start" / "checkpoints" / "iter_4.pt"
    for method in bench.DEFAULT_METHODS:
        config = load_config_yaml(smoke / "runs" / "toy" / f"{method}_seed0" / "config.yaml")
        assert config["model"]["pretrained"] == str(weights.absolute())
        assert config["model"]["freeze_bn"] is True


def test_main__paired_differences_with_intervals(smoke: Path) -> None:
    rows = {(r["method"], r["against"]): r for r in _rows(smoke / "out" / "toy" / "paired.csv")}
    assert set(rows) == set(bench.uda_report.COMPARISONS)
    row = rows["rccr", "rccr_no_contrast"]
    expected = _eval(smoke, "rccr", 4)["miou"]["mIoU19"] - _eval(
        smoke, "rccr_no_contrast", 4)["miou"]["mIoU19"]  # fmt: skip
    assert row["seeds"] == "1" and float(row["mean"]) == pytest.approx(expected, abs=0.005)
    assert row["half_width"] == ""  # one seed: no interval
    text = (smoke / "out" / "toy" / "results.md").read_text()
    assert "RCCR − RCCR, contrastive weight 0 (control)" in text and "95% CI" in text
    diagnostics = _rows(smoke / "out" / "toy" / "diagnostics.csv")
    assert {r["method"] for r in diagnostics} >= {"dacs", "rccr"}
    assert all(0 <= float(r["pl_acc"]) <= 1 for r in diagnostics)


def test_report__paired_interval_is_the_t_interval() -> None:
    scores = []
    for method, values in (("a", [3.0, 5.0, 4.0, 6.0, 2.0]), ("b", [1.0, 1.0, 2.0, 1.0, 1.0])):
        for seed, value in enumerate(values):
            result = EvalResult("cityscapes", "val", "64x32", 1, [[0] * 19] * 19,
                                [math.nan] * 19, {"mIoU19": value})  # fmt: skip
            scores.append(bench.uda_report.RunScores(method, seed, Path("x"), 4, "mIoU19",
                                                     "finished", {4: result}))  # fmt: skip
    d = bench.uda_report.paired_difference(scores, "a", "b")
    diffs = [2.0, 4.0, 2.0, 5.0, 1.0]
    half = 2.776 * statistics.stdev(diffs) / 5**0.5  # t(0.975, 4)
    assert d["per_seed"] == diffs and d["mean"] == pytest.approx(2.8)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((2.8 - half, 2.8 + half))


def test_main__plot_is_a_png(smoke: Path) -> None:
    assert (smoke / "out" / "toy" / "miou_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_main__rerun_skips_finished_runs(
    smoke: Path, toy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoints = sorted((smoke / "runs" / "toy").glob("*/checkpoints/*.pt"))
    assert len(checkpoints) == 2 * (len(bench.DEFAULT_METHODS) + 1)  # + the warm start
    before = {p: p.stat().st_mtime_ns for p in checkpoints}
    assert bench.main(_args(toy, smoke, "--jobs", "1")) == 0
    methods = len(bench.DEFAULT_METHODS)
    assert f"{methods} runs, {methods} already finished, 0 to train" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == before


def test_main__records_each_finished_run_without_its_checkpoints(smoke: Path) -> None:
    records = smoke / "out" / "toy" / "runs"
    assert sorted(p.name for p in records.iterdir()) == sorted(
        [f"{m}_seed0" for m in bench.DEFAULT_METHODS] + ["invocations.jsonl", "warm_start"]
    )
    for method in bench.DEFAULT_METHODS:
        run = smoke / "runs" / "toy" / f"{method}_seed0"
        record = records / f"{method}_seed0"
        assert sorted(p.name for p in record.iterdir()) == [
            "config.yaml", "eval", "metrics.jsonl", "status.json"]  # fmt: skip
        for name in ("config.yaml", "metrics.jsonl", "eval/iter_2.json", "eval/iter_4.json"):
            assert (record / name).read_bytes() == (run / name).read_bytes()
    rows = _rows(smoke / "out" / "toy" / "results.csv")
    assert {r["run"] for r in rows} == {str(records / f"{m}_seed0") for m in bench.DEFAULT_METHODS}


def test_main__resumes_from_the_records_on_a_machine_without_the_runs(
    smoke: Path, toy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The records committed with the results are enough: nothing trains again, not even
    the warm start, and the results are the same."""
    shutil.copytree(smoke / "out", tmp_path / "out")
    before = _rows(tmp_path / "out" / "toy" / "results.csv")
    assert bench.main(_args(toy, tmp_path, "--jobs", "1")) == 0
    methods = len(bench.DEFAULT_METHODS)
    assert f"{methods} runs, {methods} already finished, 0 to train" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()
    after = _rows(tmp_path / "out" / "toy" / "results.csv")
    key = [k for k in before[0] if k != "run"]
    assert [[r[k] for k in key] for r in after] == [[r[k] for k in key] for r in before]

    def wall(root: Path) -> list[str]:  # the training invocations' log came with the records
        text = (root / "out" / "toy" / "results.md").read_text()
        return [line for line in text.splitlines() if line.startswith("Wall time:")]

    assert wall(tmp_path) == wall(smoke) and "over 1 invocation(s)" in wall(smoke)[0]


def test_main__the_warm_start_record_keeps_its_network(smoke: Path) -> None:
    record = smoke / "out" / "toy" / "runs" / "warm_start"
    assert sorted(p.name for p in record.iterdir()) == [
        "config.yaml", "eval", "metrics.jsonl", "status.json", "weights.pt"]  # fmt: skip
    kept = torch.load(record / "weights.pt", weights_only=True)
    trained = torch.load(smoke / "runs/toy/warm_start/checkpoints/iter_4.pt", weights_only=True)
    assert kept["config"] == trained["config"] and kept["iteration"] == 4
    assert kept["student"].keys() == trained["student"].keys()
    assert all(torch.equal(kept["student"][k], trained["student"][k]) for k in kept["student"])


def test_main__a_missing_run_trains_from_the_recorded_warm_start(
    smoke: Path, toy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a machine without the runs, a run whose record is gone trains again from the warm
    start rebuilt from its record (not trained again), and gives the same numbers."""
    shutil.copytree(smoke / "out", tmp_path / "out")
    shutil.rmtree(tmp_path / "out" / "toy" / "runs" / "dacs_seed0")
    args = _args(toy, tmp_path, "--methods", "source_only", "dacs", "--jobs", "1")
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert "2 runs, 1 already finished, 1 to train" in out
    assert "restored the shared warm start" in out and "train the shared warm start" not in out
    warm = tmp_path / "runs" / "toy" / "warm_start"
    assert (warm / "metrics.jsonl").read_bytes() == (
        smoke / "runs/toy/warm_start/metrics.jsonl").read_bytes()  # fmt: skip
    rows = {r["method"]: r for r in _rows(tmp_path / "out" / "toy" / "results.csv")}
    before = {r["method"]: r for r in _rows(smoke / "out" / "toy" / "results.csv")}
    assert rows["dacs"]["mIoU19"] == before["dacs"]["mIoU19"]  # deterministic on CPU
    assert rows["dacs"]["run"] == str(tmp_path / "out" / "toy" / "runs" / "dacs_seed0")
    assert (tmp_path / "runs" / "toy" / "dacs_seed0" / "checkpoints").is_dir()


def test_main__refuses_a_record_with_another_config(
    smoke: Path, toy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(smoke / "out", tmp_path / "out")
    record = tmp_path / "out" / "toy" / "runs" / "dacs_seed0"
    config = load_config_yaml(record / "config.yaml")
    config["method"]["pseudo_label_threshold"] = 0.5
    (record / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert bench.main(_args(toy, tmp_path, "--methods", "dacs", "--jobs", "1")) == 2
    err = capsys.readouterr().err
    assert str(record) in err and "method.pseudo_label_threshold (0.5 there" in err
    assert not (tmp_path / "runs").exists()  # nothing trained, the record kept
    assert load_config_yaml(record / "config.yaml")["method"]["pseudo_label_threshold"] == 0.5


def test_portable__a_run_is_the_same_from_another_checkout_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """config.yaml holds absolute paths; a checkout elsewhere, or a command naming them
    relative, still means the same run (paths outside the checkout stay as they are)."""
    relative = load_config("toy", ["data.source_root=data/toy/gta5",
                                   "model.pretrained=runs/bench/toy/warm_start/x.pt",
                                   "data.target_root=/elsewhere/cityscapes"])  # fmt: skip
    seen = []
    for checkout in (tmp_path / "a", tmp_path / "b"):
        checkout.mkdir()
        monkeypatch.chdir(checkout)
        written = absolute_paths(relative)
        assert written.data.source_root == str(checkout / "data/toy/gta5")
        assert bench.portable(written) == bench.portable(relative)
        seen.append(bench.portable(written))
    assert seen[0] == seen[1]
    assert seen[0]["data"]["source_root"] == "data/toy/gta5"
    assert seen[0]["data"]["target_root"] == "/elsewhere/cityscapes"
    moved = absolute_paths(relative, base=tmp_path / "a")  # read from checkout b
    assert bench.portable(moved)["data"]["source_root"] != "data/toy/gta5"
    # The warm start's weights, from any runs directory: the warm start's record tells it.
    warm = [bench.portable(bench.plan("toy", ["dacs"], [0], [], runs)[0].config)
            for runs in (tmp_path / "a", Path("/scratch/runs"))]  # fmt: skip
    assert warm[0] == warm[1]
    assert warm[0]["model"]["pretrained"] == "<warm start>/iter_4.pt"


@pytest.mark.parametrize("override", ["train.iterations=6", "method.temperature=0.2"])
def test_main__refuses_a_run_directory_with_another_config(
    smoke: Path, toy: Path, override: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _args(toy, smoke, "--methods", "rccr", "--jobs", "1", override=override)
    assert bench.main(args) == 2
    err = capsys.readouterr().err
    assert "rccr_seed0" in err and override.split("=")[0] in err


def test_main__resumes_an_interrupted_run(toy: Path, tmp_path: Path) -> None:
    warm = bench.warm_start("toy", _overrides(toy), tmp_path / "runs")
    assert warm is not None and bench.train_in_process(warm)
    job = bench.plan("toy", ["source_only"], [0], _overrides(toy), tmp_path / "runs")[0]
    Trainer(job.config, job.run_dir).run(progress=False, until=2)
    args = _args(toy, tmp_path, "--methods", "source_only", "--aggregate-only")
    assert bench.main(args) == 0
    assert "source_only seed 0 (interrupted)" in (tmp_path / "out/toy/results.md").read_text()
    assert bench.main(_args(toy, tmp_path, "--methods", "source_only")) == 0
    metrics = (job.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in metrics] == [1, 2, 3, 4]
    assert _rows(tmp_path / "out/toy/results.csv")[0]["finished"] == "True"
    assert bench.main(args) == 0  # aggregating again names the command that trained
    text = (tmp_path / "out/toy/results.md").read_text()
    assert "Written by: `python benchmarks/uda_benchmark.py" in text
    assert "Trained by: `python benchmarks/uda_benchmark.py --preset toy" in text


@pytest.mark.slow
def test_main__trains_side_by_side_in_subprocesses(toy: Path, tmp_path: Path) -> None:
    args = _args(toy, tmp_path, "--methods", "source_only", "oracle", "--jobs", "2")
    assert bench.main(args) == 0
    for name in ("source_only_seed0", "oracle_seed0"):
        assert (tmp_path / "runs/toy/logs" / f"{name}.log").exists()
        assert json.loads((tmp_path / "runs/toy" / name / "status.json").read_text())["state"] == (
            "finished"
        )
    assert len(_rows(tmp_path / "out/toy/results.csv")) == 2


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("source_only", {"mode": "source_only"}),
        ("oracle", {"mode": "oracle"}),
        ("rccr", {"mode": "rccr", "bank": True, "momentum_head": True}),
        ("rccr_no_bank", {"mode": "rccr", "bank": False}),
        ("rccr_no_momentum_head", {"mode": "rccr", "momentum_head": False}),
        ("rccr_positive_all", {"mode": "rccr", "positive_sampling": "all"}),
        ("rccr_negative_random", {"mode": "rccr", "negative_sampling": "random"}),
        ("rccr_no_contrast", {"mode": "rccr", "contrast_weight": 0.0}),
        (
            "rccr_no_contrast_no_cutmix_bn",
            {"mode": "rccr", "contrast_weight": 0.0, "cutmix_updates_bn": False},
        ),
        (
            "rccr_no_cutmix_bn",
            {"mode": "rccr", "contrast_weight": 0.01, "cutmix_updates_bn": False},
        ),
    ],
)
def test_plan__each_method_is_its_overrides(
    tmp_path: Path, method: str, expected: dict[str, Any]
) -> None:
    jobs = bench.plan("toy", [method], [0, 2], ["train.mode=dacs"], tmp_path)
    assert [j.run_dir for j in jobs] == [tmp_path / "toy" / f"{method}_seed{s}" for s in (0, 2)]
    for job, seed in zip(jobs, (0, 2), strict=True):
        config = job.config
        assert config.train.seed == seed and config.train.iterations == 1000  # the schedule
        assert config.model.freeze_bn and config.model.pretrained == str(
            tmp_path / "toy" / "warm_start" / "checkpoints" / "iter_4.pt"
        )  # every run starts from the shared warm start, with BatchNorm frozen
        assert config.train.mode == expected["mode"]  # the method wins over user overrides
        for key, value in expected.items():
            if key != "mode":
                assert getattr(config.method, key) == value


def test_ensure_toy_data__generates_only_when_missing(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    overrides = bench.ensure_toy_data(out, TINY)
    assert overrides == [f"data.source_root={out / 'gta5'}",
                         f"data.target_root={out / 'cityscapes'}"]  # fmt: skip
    stamp = (out / "toycity.json").stat().st_mtime_ns
    bench.ensure_toy_data(out, TINY)
    assert (out / "toycity.json").stat().st_mtime_ns == stamp


def test_main__dev_scores_new_target_images_with_the_same_training_data(
    tmp_path: Path,
) -> None:
    data = tmp_path / "toy"
    bench.ensure_toy_data(data, TINY)
    schedule = [o for o in _overrides(data) if not o.startswith(("data.source_root",
                                                                 "data.target_root"))]  # fmt: skip
    args = ["--preset", "toy", "--seeds", "0", "--methods", "source_only", "--dev", "--data",
            str(data), "--out", str(tmp_path / "out"), "--runs-dir", str(tmp_path / "runs"),
            "--jobs", "1", "--", *schedule]  # fmt: skip
    assert bench.main(args) == 0
    dev = tmp_path / "toy-dev" / "cityscapes"
    run = tmp_path / "runs" / "toy-dev" / "source_only_seed0"
    config = load_config(str(run / "config.yaml"))
    assert config.data.target_root == str(dev)
    # It starts from the target-val suite's warm start (source labels only), recorded there.
    warm = tmp_path / "runs" / "toy" / "warm_start"
    assert config.model.pretrained == str((warm / "checkpoints" / "iter_4.pt").absolute())
    assert load_config(str(warm / "config.yaml")).data.target_root == str(data / "cityscapes")
    assert not (tmp_path / "runs" / "toy-dev" / "warm_start").exists()
    assert (tmp_path / "out" / "toy" / "runs" / "warm_start" / "weights.pt").is_file()
    assert not (tmp_path / "out" / "toy-dev" / "runs" / "warm_start").exists()
    assert _rows(tmp_path / "out" / "toy-dev" / "results.csv")[0]["finished"] == "True"
    report = (tmp_path / "out" / "toy-dev" / "results.md").read_text()
    assert "Dev set mIoU19 of the **last** checkpoint" in report  # never called target val
    assert "Target-val" not in report
    for kind in ("leftImg8bit", "gtFine"):
        assert (dev / kind / "train").resolve() == (data / "cityscapes" / kind / "train").resolve()
    dev_val = sorted((dev / "leftImg8bit" / "val").rglob("*.png"))
    toy_val = sorted((data / "cityscapes" / "leftImg8bit" / "val").rglob("*.png"))
    assert len(dev_val) == len(toy_val) == TINY.num_target_val
    assert not {p.read_bytes() for p in dev_val} & {p.read_bytes() for p in toy_val}
    assert bench.main(args) == 0  # the dev set is reused, the run skipped


def test_main__dev_is_only_for_the_toy_preset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--preset", "gta2cityscapes", "--dev", "--aggregate-only",
                       "--runs-dir", str(tmp_path)]) == 2  # fmt: skip
    assert "--dev" in capsys.readouterr().err


def test_ensure_dev_target__names_a_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"toycity\.json"):
        bench.ensure_dev_target(tmp_path / "nothing")


def test_report__mean_and_sample_std() -> None:
    mean, std = bench.uda_report._mean_std([20.0, 22.0, 27.0])
    assert mean == pytest.approx(23.0)
    assert std == pytest.approx(statistics.stdev([20.0, 22.0, 27.0]))


@pytest.mark.parametrize(
    ("spans", "minutes"),
    [([(0, 600)], 10), ([(0, 600), (1200, 1800)], 20), ([(0, 600), (300, 900)], 15),
     ([(0, 1800), (600, 900)], 30)],
)  # fmt: skip
def test_report__wall_time_is_the_union_of_invocations(
    tmp_path: Path, spans: list[tuple[int, int]], minutes: int
) -> None:
    for start, end in spans:
        bench.uda_report.log_invocation(tmp_path, start, end, 1, "cmd")
    assert bench.uda_report.wall_time(tmp_path).startswith(f"{minutes} min over {len(spans)} ")


def load_config_yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


@pytest.mark.parametrize(("status", "says"), [(3, "stopped before the end"), (2, "FAILED")])
def test_train_in_subprocesses__tells_interrupted_from_failed(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, status: int, says: str
) -> None:
    """``rccr train`` exits 3 when a signal stopped it after a checkpoint: not a failure."""
    import sys

    job = bench.plan("toy", ["source_only"], [0], _overrides(toy), tmp_path / "runs")[0]
    monkeypatch.setattr(bench, "_command", lambda preset, job: [
        sys.executable, "-c", f"print('stopped'); raise SystemExit({status})"])  # fmt: skip
    records = tmp_path / "records"
    assert bench.train_in_subprocesses("toy", [job], 1, tmp_path / "logs", records) == 1
    assert says in capsys.readouterr().out
    assert not records.exists()  # only a finished run is recorded
