"""rccr.viz.benchmark_charts: each line is the mean over seeds, each band their range, and a
method keeps its colour whichever others a figure shows (checked on the artists)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from rccr.viz.benchmark_charts import diagnostics_figure, method_colours, seed_band_figure

LABELS = {"source_only": "source-only", "dacs": "DACS", "rccr": "RCCR",
          "rccr_no_bank": "RCCR, no memory bank"}  # fmt: skip


def _curves() -> pd.DataFrame:
    """3 seeds of dacs and rccr_no_bank, 1 of source_only; iterations as the CSV has them."""
    rng = np.random.default_rng(0)
    rows = [
        {"method": m, "seed": s, "iteration": str(i), "mIoU19": float(rng.uniform(10, 30))}
        for m, seeds in (("dacs", 3), ("rccr_no_bank", 3), ("source_only", 1))
        for s in range(seeds)
        for i in (1000, 250, 500)
    ]
    return pd.DataFrame(rows)


def _naive_stats(curves: pd.DataFrame, method: str) -> list[tuple[int, float, float, float]]:
    """(iteration, mean, min, max) over seeds, by loops."""
    out = []
    for it in sorted({int(i) for i in curves["iteration"]}):
        v = [r.mIoU19 for r in curves.itertuples() if r.method == method and int(r.iteration) == it]
        out.append((it, sum(v) / len(v), min(v), max(v)))
    return out


def test_seed_band_figure__line_is_the_mean_band_the_range_in_numeric_order() -> None:
    curves = _curves()
    ax = seed_band_figure(curves, "mIoU19", LABELS, "mIoU19 (%)").axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    assert list(lines) == [
        "source-only (1 seed)",
        "DACS (3 seeds)",
        "RCCR, no memory bank (3 seeds)",
    ]
    for label, method in (("DACS (3 seeds)", "dacs"), ("source-only (1 seed)", "source_only")):
        expected = _naive_stats(curves, method)
        np.testing.assert_allclose(lines[label].get_xdata(), [e[0] for e in expected])
        np.testing.assert_allclose(lines[label].get_ydata(), [e[1] for e in expected])
    bands = ax.collections
    dacs_band = bands[1].get_paths()[0].vertices  # the polygon along min, back along max
    expected = _naive_stats(curves, "dacs")
    assert dacs_band[:, 1].min() == pytest.approx(min(e[2] for e in expected))
    assert dacs_band[:, 1].max() == pytest.approx(max(e[3] for e in expected))
    assert lines["RCCR, no memory bank (3 seeds)"].get_linestyle() == "--"
    assert lines["DACS (3 seeds)"].get_linestyle() == "-"


def test_seed_band_figure__a_method_keeps_its_colour_without_the_others() -> None:
    curves = _curves()
    full = seed_band_figure(curves, "mIoU19", LABELS, "y").axes[0].lines
    alone = seed_band_figure(curves[curves["method"] == "rccr_no_bank"], "mIoU19", LABELS,
                             "y").axes[0].lines  # fmt: skip
    assert to_hex(alone[0].get_color()) == to_hex(full[2].get_color())
    colours = method_colours(LABELS)
    assert to_hex(full[1].get_color()) == colours["dacs"] != colours["rccr"]


def test_seed_band_figure__missing_values_left_out_and_no_run_says_so() -> None:
    curves = _curves()
    curves.loc[0, "mIoU19"] = np.nan
    line = seed_band_figure(curves, "mIoU19", LABELS, "y").axes[0].lines[1]
    assert np.isfinite(line.get_ydata()).all()
    empty = seed_band_figure(curves.iloc[:0], "mIoU19", LABELS, "y").axes[0]
    assert not empty.lines and "no finished run yet" in empty.texts[0].get_text()


def test_method_colours__methods_outside_the_labels_get_the_next_colours() -> None:
    colours = method_colours(LABELS, ["dacs", "mine"])
    assert list(colours) == [*LABELS, "mine"] and len(set(colours.values())) == 5


def _diagnostics() -> pd.DataFrame:
    """Two runs each of dacs and rccr: a step-logged diagnostic (every 10 steps, 40 points)
    and a checkpoint one (rccr only, 4 points)."""
    rng = np.random.default_rng(1)
    rows = []
    for method in ("dacs", "rccr"):
        for run in range(2):
            rows += [{"method": method, "run": run, "diagnostic": "pseudo-label accuracy",
                      "iteration": i, "value": float(rng.uniform())}
                     for i in range(10, 410, 10)]  # fmt: skip
            if method == "rccr":
                rows += [{"method": method, "run": run, "diagnostic": "feature alignment",
                          "iteration": i, "value": float(rng.uniform())}
                         for i in (100, 200, 300, 400)]  # fmt: skip
    return pd.DataFrame(rows)


def test_diagnostics_figure__mean_over_runs_smoothed_only_when_logged_often() -> None:
    frame = _diagnostics()
    fig = diagnostics_figure(frame, LABELS, columns=3, smooth=5)
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in panels] == ["pseudo-label accuracy", "feature alignment"]
    assert len(fig.axes) == 3 and not fig.axes[2].axison  # one empty cell, switched off
    accuracy, alignment = panels
    dacs = accuracy.lines[0]
    rows = frame[(frame["method"] == "dacs") & (frame["diagnostic"] == "pseudo-label accuracy")]
    mean = [rows[rows["iteration"] == i]["value"].mean() for i in range(10, 410, 10)]
    smoothed = [np.mean(mean[max(0, k - 2) : k + 3]) for k in range(len(mean))]  # centred 5
    np.testing.assert_allclose(dacs.get_ydata(), smoothed)
    rows = frame[frame["diagnostic"] == "feature alignment"]
    checkpoints = [rows[rows["iteration"] == i]["value"].mean() for i in (100, 200, 300, 400)]
    np.testing.assert_allclose(alignment.lines[0].get_ydata(), checkpoints)  # as logged
    assert to_hex(alignment.lines[0].get_color()) == method_colours(LABELS)["rccr"]


def test_diagnostics_figure__one_legend_entry_per_method_and_x_labels_below() -> None:
    fig = diagnostics_figure(_diagnostics(), LABELS, columns=1)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["DACS", "RCCR"]
    assert [ax.get_xlabel() for ax in fig.axes] == ["", "iteration"]
