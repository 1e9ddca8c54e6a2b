"""Figures of methods over seeds: a curve with its seed spread, and the diagnostics grid.

A benchmark trains every method with several seeds; these figures draw each method as the
mean over its seeds. A method keeps its colour in every figure: the colour of its position
in ``labels``, the ``method -> name`` mapping each function takes (the benchmark's is
:data:`rccr.analysis.benchmark.METHOD_LABELS`), whichever methods a figure shows.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping

import pandas as pd
from matplotlib.artist import Artist
from matplotlib.figure import Figure

from rccr.viz.canvas import RUN_COLOURS, new_figure

__all__ = ["diagnostics_figure", "method_colours", "seed_band_figure"]


def method_colours(labels: Mapping[str, str], extra: list[str] | None = None) -> dict[str, str]:
    """method -> colour: by position in ``labels``, then the ``extra`` methods it lacks."""
    methods = [*labels, *(m for m in extra or [] if m not in labels)]
    return {m: RUN_COLOURS[i % len(RUN_COLOURS)] for i, m in enumerate(methods)}


def _ordered(methods: pd.Series, labels: Mapping[str, str]) -> list[str]:
    """The methods present, in the order of ``labels``; any it lacks after, by name."""
    present = set(methods.astype(str))
    return [m for m in labels if m in present] + sorted(present - set(labels))


def seed_band_figure(
    curves: pd.DataFrame,
    value: str,
    labels: Mapping[str, str],
    ylabel: str,
    title: str = "Mean over seeds; the band spans the lowest to the highest seed",
) -> Figure:
    """One line per method: the mean over seeds of ``value`` at each iteration, and a band
    from the lowest to the highest seed. RCCR's variants (``rccr_*``) are dashed.

    Args:
        curves: one row per run and iteration; columns ``method``, ``seed``, ``iteration``
            and ``value`` (missing values are left out).
        labels: method -> its name in the legend; also the order and the colours.
    """
    fig = new_figure(8, 4.5)
    ax = fig.subplots()
    methods = _ordered(curves["method"], labels) if len(curves) else []
    colours = method_colours(labels, methods)
    for method in methods:
        rows = curves[curves["method"].astype(str) == method].dropna(subset=[value])
        by_iteration = rows.groupby(pd.to_numeric(rows["iteration"]))[value]  # 250 < 1000
        mean, seeds = by_iteration.mean(), rows["seed"].nunique()
        style = "--" if method.startswith("rccr_") else "-"
        name = f"{labels.get(method, method)} ({seeds} seed{'' if seeds == 1 else 's'})"
        ax.plot(mean.index, mean.values, style, marker="o", ms=3, color=colours[method],
                label=name)  # fmt: skip
        ax.fill_between(mean.index, by_iteration.min().values, by_iteration.max().values,
                        color=colours[method], alpha=0.15, linewidth=0)  # fmt: skip
    ax.set(xlabel="iteration", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if methods:
        ax.legend(fontsize=8, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no finished run yet", ha="center", transform=ax.transAxes)
    return fig


def diagnostics_figure(
    diagnostics: pd.DataFrame,
    labels: Mapping[str, str],
    columns: int = 3,
    smooth: int = 5,
    title: str = "Self-training diagnostics, mean over seeds (analysis only)",
) -> Figure:
    """One panel per diagnostic, one line per method: the mean over its runs at each
    logged iteration. A series logged at more than ``2 * smooth`` iterations (every few
    steps) is drawn as a centred rolling mean over ``smooth`` of them; one logged at a few
    checkpoints is drawn as it is.

    Args:
        diagnostics: long form, columns ``method``, ``diagnostic``, ``iteration``, ``value``
            (``rccr.analysis.results.diagnostics_long`` with a ``method`` column added).
        labels: method -> its name in the legend; also the order and the colours.
    """
    names = list(dict.fromkeys(diagnostics["diagnostic"]))
    rows = max(1, math.ceil(len(names) / columns))
    fig = new_figure(4.2 * columns, 2.5 * rows + 0.6)
    axes = list(fig.subplots(rows, columns, squeeze=False).flat)
    methods = _ordered(diagnostics["method"], labels) if len(diagnostics) else []
    colours = method_colours(labels, methods)
    for ax, name in zip(axes, names, strict=False):
        panel = diagnostics[diagnostics["diagnostic"] == name]
        for method in methods:
            mean = panel[panel["method"].astype(str) == method].groupby("iteration")["value"].mean()
            if len(mean) > 2 * smooth:
                mean = mean.rolling(smooth, min_periods=1, center=True).mean()
            if len(mean):
                ax.plot(mean.index, mean.values, color=colours[method],
                        marker="o" if len(mean) <= 2 * smooth else None, ms=3,
                        label=labels.get(method, method))  # fmt: skip
        ax.set_title(textwrap.fill(name, 48), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for k, ax in enumerate(axes):
        if k >= len(names):
            ax.axis("off")
        elif k + columns >= len(names):  # the lowest panel of its column
            ax.set_xlabel("iteration", fontsize=8)
    handles: dict[str, Artist] = {}  # one entry per method drawn, whichever panel drew it
    for ax in axes:
        found, names_drawn = ax.get_legend_handles_labels()
        handles |= dict(zip(names_drawn, found, strict=True))
    if handles:
        fig.legend(handles=list(handles.values()), labels=list(handles),
                   loc="outside lower center", ncol=min(len(handles), 4), fontsize=8)  # fmt: skip
    fig.suptitle(title, fontsize=10)
    return fig
