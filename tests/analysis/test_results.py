"""rccr.analysis.results: path safety, run discovery, and the tables the dashboard shows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rccr.analysis.results import (
    BEST_LABEL,
    PathError,
    common_iterations,
    config_diff,
    diagnostics_long,
    discover_runs,
    flatten_config,
    headline_metric,
    iou_at,
    iou_by_checkpoint,
    iou_long,
    miou_curves,
    resolve_inside,
    runs_table,
    skipped_table,
)
from rccr.config import Config, load_config
from rccr.data.labels import CLASS_NAMES, NUM_CLASSES
from rccr.evaluation import EvalResult
from rccr.runs import Run, RunError, RunWriter, load_run


def _result(seed: int, subsets: tuple[str, ...] = ("mIoU19",)) -> EvalResult:
    """An evaluation with random per-class IoUs (class 4 undefined) and their mean."""
    iou = list(np.random.default_rng(seed).uniform(0, 100, NUM_CLASSES))
    iou[4] = math.nan
    miou = {key: float(np.nanmean(iou)) + k for k, key in enumerate(subsets)}
    confusion = [[0] * NUM_CLASSES for _ in range(NUM_CLASSES)]
    return EvalResult("cityscapes", "val", "test", 1, confusion, iou, miou)


def _run(name: str, evals: dict[int, EvalResult], config: Config | None = None) -> Run:
    return Run(path=Path("/runs") / name, config=config, status="finished", evals=evals)


@pytest.mark.parametrize("name", ["toy", "toy-rccr.2", "group/run", "a b", "..a", "a.."])
def test_resolve_inside__accepts_names_inside(tmp_path: Path, name: str) -> None:
    assert resolve_inside(tmp_path, name) == tmp_path.resolve() / name


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("..", "'..' is refused"),
        ("../other", "'..' is refused"),
        ("run/../../other", "'..' is refused"),
        ("run\\..\\..\\other", "'..' is refused"),
        ("/etc/passwd", "absolute paths are refused"),
        ("\\\\server\\share", "absolute paths are refused"),
        ("C:\\runs", "absolute paths are refused"),
        ("", "expected a non-empty name"),
        ("   ", "expected a non-empty name"),
        ("run\x00", "expected a non-empty name"),
    ],
)
def test_resolve_inside__refuses_names_leading_out(tmp_path: Path, name: str, says: str) -> None:
    with pytest.raises(PathError, match=says) as info:
        resolve_inside(tmp_path, name)
    assert repr(name) in str(info.value)


def test_resolve_inside__refuses_an_absolute_path_into_the_root(tmp_path: Path) -> None:
    with pytest.raises(PathError, match="absolute"):
        resolve_inside(tmp_path, str(tmp_path / "run"))


@pytest.mark.parametrize(("target", "refused"), [("outside", True), ("root/real", False)])
def test_resolve_inside__follows_symlinks(tmp_path: Path, target: str, refused: bool) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / target)
    if refused:
        with pytest.raises(PathError, match="outside"):
            resolve_inside(root, "link")
    else:
        assert resolve_inside(root, "link") == root / "link"


def _write_run(path: Path, mode: str = "source_only") -> None:
    writer = RunWriter(path)
    writer.write_config(load_config("toy", [f"train.mode={mode}"]))
    writer.set_status("finished", 10)
    writer.log({"iteration": 10, "loss": 1.0})
    writer.save_eval(10, _result(0))


def test_discover_runs__reads_runs_and_says_what_it_skipped(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    for name in ("b", "a"):
        _write_run(root / name)
    (root / ".cache").mkdir()  # hidden: the dashboard's own files
    (root / "notes").mkdir()
    (root / "readme.txt").write_text("a file, not a run")
    _write_run(outside)
    (root / "escaped").symlink_to(outside)
    _write_run(root / "linked")
    (root / "linked" / "checkpoints" / "iter_5.pt").symlink_to(outside / "config.yaml")

    found = discover_runs(root)

    assert [run.name for run in found.runs] == ["a", "b"]
    assert len(found.skipped) == 3
    assert any("notes" in line and "not a run directory" in line for line in found.skipped)
    assert any("escaped" in line and "outside" in line for line in found.skipped)
    assert any("iter_5.pt" in line and "outside" in line for line in found.skipped)


BROKEN_FILES = {
    "status.json": '{"state": "running", "iteration": 1e400}',
    "config.yaml": b"name: \xff\xfe\n",
    "metrics.jsonl": b"\xff\xfe\n",
    "skipped.jsonl": '{"iteration": "3", "kind": "batch"}\n',
    "eval/iter_10.json": "[" * 100_000,
}


@pytest.mark.parametrize("name", list(BROKEN_FILES))
def test_discover_runs__a_broken_file_is_a_problem_of_a_listed_run(
    tmp_path: Path, name: str
) -> None:
    _write_run(tmp_path / "good")
    _write_run(tmp_path / "broken")
    content = BROKEN_FILES[name]
    (tmp_path / "broken" / name).write_bytes(content if isinstance(content, bytes) else
                                             content.encode())  # fmt: skip
    found = discover_runs(tmp_path)
    assert [run.name for run in found.runs] == ["broken", "good"] and found.skipped == []
    assert any(name in problem for problem in found.by_name()["broken"].problems)
    assert runs_table(found.runs)["problems"].tolist() == [1, 0]


@pytest.mark.parametrize("error", [MemoryError, RecursionError, OverflowError, KeyError, TypeError])
def test_discover_runs__never_raises_for_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    from rccr.analysis import results

    _write_run(tmp_path / "a")
    _write_run(tmp_path / "b")

    def load(path: Path) -> Run:
        if path.name == "a":
            raise error("something no reader foresaw")
        return load_run(path)

    monkeypatch.setattr(results, "load_run", load)
    found = discover_runs(tmp_path)
    assert [run.name for run in found.runs] == ["b"]
    assert len(found.skipped) == 1 and "something no reader foresaw" in found.skipped[0]
    assert found.skipped[0].startswith(f"skipped: {tmp_path / 'a'}: unreadable ({error.__name__}")


def test_runs_table__a_stale_run_says_when_it_was_last_seen() -> None:
    import time

    run = Run(path=Path("/runs/x"), status="stale", updated=time.time() - 7300)
    assert runs_table([run])["status"].tolist() == ["stale (last seen 2 h ago)"]


def test_discover_runs__missing_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="runs folder not found"):
        discover_runs(tmp_path / "nope")


@pytest.mark.parametrize(
    ("subsets", "expected"), [(("mIoU19",), "mIoU19"), (("mIoU19", "mIoU16", "mIoU13"), "mIoU16")]
)
def test_headline_metric__synthia_is_judged_by_miou16(subsets: tuple, expected: str) -> None:
    assert headline_metric(_result(0, subsets)) == expected


@pytest.mark.parametrize("iterations", [[5], [5, 10, 15], [20, 5, 10]])
def test_runs_table__last_and_best_match_a_naive_pick(iterations: list[int]) -> None:
    evals = {i: _result(i) for i in iterations}
    config = load_config("toy", ["train.mode=dacs", "train.iterations=40"])
    row = runs_table([_run("r", evals, config)]).iloc[0]
    scores = {i: r.miou["mIoU19"] for i, r in evals.items()}
    last = max(iterations)
    best = max(iterations, key=lambda i: scores[i])
    assert (row["run"], row["mode"], row["preset"], row["of"]) == ("r", "dacs", "toy", 40)
    assert (row["last at"], row["last mIoU"]) == (last, scores[last])
    assert (row["best at"], row[BEST_LABEL]) == (best, scores[best])
    assert BEST_LABEL == "best mIoU, chosen on target val"


def test_runs_table__run_without_config_or_evals_has_gaps_not_errors() -> None:
    row = runs_table([_run("new", {})]).iloc[0]
    assert row["mode"] == "?" and row["preset"] == "?"
    assert math.isnan(row["last mIoU"]) and math.isnan(row[BEST_LABEL])


def test_skipped_table__one_row_per_record_of_either_kind() -> None:
    run = _run("r", {})
    run.skipped = [
        {"iteration": 4, "kind": "sample", "stream": "target", "name": "a.png", "error": "bad"},
        {"iteration": 9, "kind": "batch", "batch": 3, "error": "loss_source is inf"},
    ]
    table = skipped_table(run)
    assert table.to_dict("records") == [
        {"iteration": 4, "what": "sample target a.png", "error": "bad"},
        {"iteration": 9, "what": "batch 3", "error": "loss_source is inf"},
    ]
    assert runs_table([run]).iloc[0]["skipped"] == 2
    assert skipped_table(_run("clean", {})).empty


def test_flatten_config__every_leaf_once() -> None:
    config = load_config("toy", [])
    flat = flatten_config(config)
    leaves = sum(
        len(section) if isinstance(section, dict) else 1 for section in config.to_dict().values()
    )
    assert len(flat) == leaves
    assert flat["train.lr"] == config.train.lr and flat["data.crop"] == list(config.data.crop)


@pytest.mark.parametrize(
    "overrides",
    [[], ["train.lr=0.5"], ["train.mode=rccr", "method.bank=false", "data.crop=[64,64]"]],
)
def test_config_diff__lists_exactly_the_changed_keys(overrides: list[str]) -> None:
    a = _run("a", {}, load_config("toy", []))
    b = _run("b", {}, load_config("toy", overrides))
    diff = config_diff(a, b)
    assert sorted(diff["key"]) == sorted(o.split("=")[0] for o in overrides)
    assert list(diff.columns) == ["key", "a", "b"]


def test_config_diff__needs_both_configs() -> None:
    with pytest.raises(RunError, match=r"config\.yaml"):
        config_diff(_run("a", {}, load_config("toy", [])), _run("b", {}))


def test_miou_curves__one_row_per_evaluation_in_order() -> None:
    runs = [_run("a", {10: _result(1), 5: _result(2)}), _run("b", {7: _result(3)})]
    curves = miou_curves(runs)
    expected = [(r.name, i, e.miou["mIoU19"]) for r in runs for i, e in sorted(r.evals.items())]
    assert list(curves[["run", "iteration", "mIoU"]].itertuples(index=False)) == expected


def test_iou_by_checkpoint__classes_by_iterations() -> None:
    evals = {10: _result(1), 5: _result(2)}
    table = iou_by_checkpoint(_run("a", evals))
    assert list(table.index) == list(CLASS_NAMES) and list(table.columns) == [5, 10]
    for i, result in evals.items():
        np.testing.assert_array_equal(table[i].to_numpy(), np.array(result.iou))


@pytest.mark.parametrize("iteration", [None, 5, 10])
def test_iou_at__each_run_at_the_chosen_checkpoint(iteration: int | None) -> None:
    runs = [_run("a", {5: _result(1), 10: _result(2)}), _run("b", {5: _result(3)})]
    table = iou_at(runs, iteration)
    for run in runs:
        chosen = max(run.evals) if iteration is None else iteration
        if chosen in run.evals:
            np.testing.assert_array_equal(table[run.name].to_numpy(), run.evals[chosen].iou)
        else:
            assert run.name not in table.columns
    assert common_iterations(runs) == [5]


def test_iou_long__every_class_and_miou_of_every_checkpoint() -> None:
    runs = [
        _run("a", {5: _result(1), 10: _result(2)}),
        _run("b", {5: _result(3, ("mIoU19", "mIoU16"))}),
    ]
    table = iou_long(runs)
    assert len(table) == 3 * NUM_CLASSES + 4
    row = table[(table["run"] == "b") & (table["name"] == "mIoU16")].iloc[0]
    assert row["IoU"] == runs[1].evals[5].miou["mIoU16"]


def test_diagnostics_long__every_logged_diagnostic_with_its_group(tmp_path: Path) -> None:
    """diag/* records become rows (finite values only, known names only, with their group)."""
    records = [
        {"iteration": 10, "loss_source": 1.0, "diag/pl_acc": 0.5, "diag/neg_false_kept": 0.1},
        {
            "iteration": 20,
            "diag/pl_acc": float("nan"),
            "diag/unknown": 3.0,
            "diag/feat_knn_acc": 0.75,
            "diag/feat_align_road": 0.9,
        },
    ]
    run = Run(path=tmp_path / "a", records=records)
    table = diagnostics_long([run])
    assert list(table["iteration"]) == [10, 10, 20] and set(table["run"]) == {"a"}
    assert list(table["group"]) == ["teacher pseudo-labels", "negatives (negative sampling)",
                                    "bank features (at checkpoints)"]  # fmt: skip
    assert sorted(table["value"]) == [0.1, 0.5, 0.75]  # per-class scores left out


def test_confusion_long__rows_are_shares_of_each_true_class() -> None:
    from rccr.analysis.results import confusion_long

    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=int)
    confusion[0, 0], confusion[0, 1], confusion[13, 13] = 30, 10, 5  # road half right-ish
    result = EvalResult("cityscapes", "val", "test", 1, confusion.tolist(),
                        [math.nan] * NUM_CLASSES, {"mIoU19": 1.0})  # fmt: skip
    table = confusion_long(result).set_index(["truth", "prediction"])
    assert len(table) == NUM_CLASSES**2
    assert table.loc[("road", "road"), "share"] == 75.0
    assert table.loc[("road", "sidewalk"), "pixels"] == 10
    assert table.loc[("road", "sidewalk"), "share"] == 25.0
    assert table.loc[("car", "car"), "share"] == 100.0
    assert math.isnan(table.loc[("sky", "sky"), "share"])  # no sky pixels
    shares = table["share"].groupby(level="truth").sum()
    assert shares[["road", "car"]].tolist() == [100.0, 100.0]
