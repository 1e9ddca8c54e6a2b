"""rccr.analysis.benchmark: a benchmark folder read back, and what a broken one says."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd
import pytest

from rccr.analysis.benchmark import (
    COMPARISONS,
    METHOD_LABELS,
    method_of,
    read_benchmark,
    run_name,
)

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "benchmarks" / "results" / "toy"
HEADER = ["method", "seed", "run", "status", "finished", "iteration", "mIoU19", "iou_road"]


def _write(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """results.csv with a finished DACS and an unfinished RCCR run; their records, and a
    warm start, under runs/ (copies of committed records)."""
    _write(tmp_path / "results.csv", [
        ["dacs", 0, "x", "finished", True, 1000, 22.9, 87.0],
        ["rccr", 0, "y", "interrupted", False, 500, 21.0, 86.0],
    ])  # fmt: skip
    _write(tmp_path / "curves.csv", [
        ["dacs", 0, "", "", True, 500, 21.5, ""],
        ["dacs", 0, "", "", True, 1000, 22.9, ""],
        ["rccr", 0, "", "", False, 500, 21.0, ""],
    ])  # fmt: skip
    _write(tmp_path / "paired.csv", [["rccr", "dacs", 5, 0.5]],
           ["method", "against", "seeds", "mean"])  # fmt: skip
    for name, source in (("dacs_seed0", "dacs_seed0"), ("rccr_seed0", "rccr_seed0"),
                         ("warm_start", "source_only_seed0")):  # fmt: skip
        shutil.copytree(COMMITTED / "runs" / source, tmp_path / "runs" / name)
    return tmp_path


def test_read_benchmark__keeps_finished_runs_and_their_records_only(folder: Path) -> None:
    bench = read_benchmark(folder)
    assert bench.metric == "mIoU19"
    assert bench.results[["method", "seed", "mIoU19"]].values.tolist() == [["dacs", 0, 22.9]]
    assert bench.curves["iteration"].tolist() == [500, 1000]
    assert bench.paired["mean"].tolist() == [0.5]
    assert [run.name for run in bench.runs] == ["dacs_seed0"]  # no warm start, no unfinished
    assert bench.skipped == []


def test_read_benchmark__without_curves_paired_or_runs(folder: Path) -> None:
    for name in ("curves.csv", "paired.csv"):
        (folder / name).unlink()
    shutil.rmtree(folder / "runs")
    bench = read_benchmark(folder)
    assert bench.curves.empty and bench.paired.empty and bench.runs == []
    assert len(bench.results) == 1


def test_read_benchmark__a_record_leading_outside_is_skipped_and_named(folder: Path) -> None:
    metrics = folder / "runs" / "dacs_seed0" / "metrics.jsonl"
    metrics.unlink()
    metrics.symlink_to(folder / "results.csv")  # outside runs/: never read
    bench = read_benchmark(folder)
    assert bench.runs == []
    assert len(bench.skipped) == 1 and "dacs_seed0" in bench.skipped[0]


def test_read_benchmark__no_results_names_the_file_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"results\.csv: no benchmark results.*bench-uda"):
        read_benchmark(tmp_path)


@pytest.mark.parametrize(
    ("file", "content", "says"),
    [
        ("results.csv", "method,seed\ndacs,0\n", r"results\.csv: missing column\(s\) finished, "
                                                 "iteration"),
        ("results.csv", "method,seed,finished,iteration\ndacs,0,True,5\n",
         r"results\.csv: no mIoU19 or mIoU16 column"),
        ("results.csv", "", r"results\.csv: not a readable CSV table"),
        ("results.csv", "method,seed,finished,iteration,mIoU19\ndacs,0,True,5,1\n"
                        "dacs,0,True,5,2\n", r"results\.csv: dacs seed 0 is listed twice"),
        ("results.csv", "method,seed,finished,iteration,mIoU19\ndacs,3,True,5,abc\n",
         r"results\.csv: dacs seed 3 has no number in mIoU19 \('abc'\)"),
        ("results.csv", b"\xff\xfe\x00garbage\x81", r"results\.csv: not a readable CSV table"),
        ("curves.csv", "method,seed\n", r"curves\.csv: missing column\(s\) finished, iteration"),
        ("paired.csv", "a,b\n1,2\n", r"paired\.csv: missing column\(s\) method, against"),
    ],
)  # fmt: skip
def test_read_benchmark__a_broken_table_names_its_file(
    folder: Path, file: str, content: str | bytes, says: str
) -> None:
    path = folder / file
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=says):
        read_benchmark(folder)


@pytest.mark.parametrize(
    ("name", "method"),
    [("rccr_no_bank_seed3", "rccr_no_bank"), ("dacs_seed12", "dacs"),
     ("warm_start", "warm_start"), ("rccr_seedx", "rccr_seedx"), ("_seed1", "")],
)  # fmt: skip
def test_method_of__strips_the_seed_suffix(name: str, method: str) -> None:
    assert method_of(name) == method


def test_read_benchmark__the_committed_benchmark() -> None:
    """Every committed run is finished, recorded and labelled; comparisons name methods."""
    bench = read_benchmark(COMMITTED)
    methods = set(bench.results["method"])
    assert methods <= set(METHOD_LABELS)
    assert {m for pair in COMPARISONS for m in pair} <= methods
    names = {f"{m}_seed{s}" for m, s in bench.results[["method", "seed"]].values}
    assert {run.name for run in bench.runs} == names
    assert isinstance(bench.results, pd.DataFrame) and bench.results["finished"].all()


@pytest.mark.parametrize("method", list(METHOD_LABELS))
def test_run_name__method_of_reads_it_back(method: str) -> None:
    assert run_name(method, 7) == f"{method}_seed7" and method_of(run_name(method, 7)) == method
