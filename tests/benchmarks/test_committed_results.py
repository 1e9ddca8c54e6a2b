"""The README's results table is the committed results.csv that uda_benchmark.py wrote."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest
import uda_report

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results" / "toy"


def _csv_rows() -> list[dict[str, str]]:
    with open(RESULTS / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


# README label -> method, for the methods the committed results hold
LABELS = {uda_report.LABELS[m]: m for m in dict.fromkeys(r["method"] for r in _csv_rows())}


def _readme_table() -> dict[str, list[str]]:
    """Rows of the table in the README's Results section: label -> cells."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Results\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def _csv_scores() -> dict[str, list[float]]:
    """method -> last-checkpoint mIoU19 of each finished seed, from results.csv."""
    rows = _csv_rows()
    scores: dict[str, list[float]] = {}
    for row in rows:
        assert row["finished"] == "True", f"{row['run']} is not finished"
        assert row["iteration"] == rows[0]["iteration"], f"{row['run']}: another schedule"
        scores.setdefault(row["method"], []).append(float(row["mIoU19"]))
    return scores


# The README shows 1 decimal of numbers the CSV holds to 2 (both rounded from the runs).
ROUNDING = 0.05 + 0.005 + 1e-9


@pytest.mark.parametrize("label", list(LABELS))
def test_readme_table__each_method_is_the_csv_mean_and_std_over_its_seeds(label: str) -> None:
    cells = _readme_table()[label]
    values = _csv_scores()[LABELS[label]]
    assert len(values) >= 3 and cells[1] == f"{len(values)} of {len(values)}"
    mean, std = (float(x) for x in cells[0].split(" ± "))
    assert mean == pytest.approx(statistics.fmean(values), abs=ROUNDING)
    assert std == pytest.approx(statistics.stdev(values), abs=2 * ROUNDING)
    per_seed = [float(x) for x in cells[2].split(" / ")]
    assert per_seed == pytest.approx(values, abs=ROUNDING)


def test_readme_table__gap_closed_is_computed_from_the_means() -> None:
    table, scores = _readme_table(), _csv_scores()
    means = {m: statistics.fmean(v) for m, v in scores.items()}
    for label, method in LABELS.items():
        gap = (means[method] - means["source_only"]) / (means["oracle"] - means["source_only"])
        assert float(table[label][3].removesuffix(" %")) == pytest.approx(gap * 100, abs=0.6)


def test_readme__shows_the_committed_plot_and_results() -> None:
    text = (REPO / "README.md").read_text()
    assert "benchmarks/results/toy/miou_curves.png" in text
    assert (RESULTS / "miou_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (RESULTS / "results.md").read_text()
    for label in LABELS:
        line = next(x for x in markdown.splitlines() if x.startswith(f"| {label} |"))
        assert line.strip("|").split(" | ")[1].strip() == _readme_table()[label][0]


def test_readme__paired_differences_are_the_committed_ones() -> None:
    """Each row of results.md's paired-difference table appears, as written, in the README."""
    markdown = (RESULTS / "results.md").read_text().splitlines()
    start = markdown.index("| comparison | seeds | mean difference | 95% CI | per seed |")
    rows = [line for line in markdown[start + 2 :] if line.startswith("| ")]
    rows = rows[: next((i for i, r in enumerate(rows) if "diagnostic" in r), len(rows))]
    section = (REPO / "README.md").read_text().split("\n## Results\n", 1)[1].split("\n## ", 1)[0]
    assert len(rows) >= 3
    for row in rows:
        assert row in section.splitlines(), f"README Results lacks the paired row {row!r}"
