"""Per-class IoU: mIoU against iteration, classes x checkpoints, runs compared, the table."""

import altair as alt
import loaders
import pandas as pd
import streamlit as st

from rccr.analysis.results import (
    common_iterations,
    iou_at,
    iou_by_checkpoint,
    iou_long,
    miou_at,
    miou_curves,
)
from rccr.data.labels import CLASS_NAMES

CLASSES = list(CLASS_NAMES)

st.title("Per-class IoU")
found = loaders.runs_or_stop()
evaluated = loaders.kept_or_stop(
    [run for run in found.runs if run.evals],
    "No run has an evaluation yet: `eval/iter_N.json` is written every "
    "`train.eval_every` iterations, at the end of training, and by `rccr eval --run DIR`.",
)

names = [run.name for run in evaluated]
wanted = [name for name in loaders.query_names(found) if name in names]
chosen = st.multiselect("Runs", names, default=wanted or names, key="iou.runs")
if not chosen:
    st.info("Pick at least one run.")
    st.stop()
runs = [run for run in evaluated if run.name in chosen]

st.header("mIoU against iteration")
curves = miou_curves(runs)
st.altair_chart(
    alt.Chart(curves)
    .mark_line(point=True)
    .encode(
        x=alt.X("iteration:Q", title="iteration", axis=alt.Axis(format="d", tickMinStep=1)),
        y=alt.Y("mIoU:Q", title="target val mIoU (%)"),
        color=alt.Color("run:N", scale=loaders.run_colours(found)),
        tooltip=["run", "iteration", "metric", alt.Tooltip("mIoU:Q", format=".2f")],
    ),
)

st.header("Classes x checkpoints")
heat_run = loaders.pick_run(found, runs, "Run", key="iou.heatmap_run", query="heatmap")
heat = iou_by_checkpoint(heat_run).reset_index().melt("class", value_name="IoU")
st.altair_chart(
    alt.Chart(heat)
    .mark_rect()
    .encode(
        x=alt.X("iteration:O", title="checkpoint (iteration)", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("class:N", sort=CLASSES, scale=alt.Scale(domain=CLASSES), title=None),
        color=alt.Color("IoU:Q", scale=alt.Scale(scheme="viridis", domain=[0, 100])),
        tooltip=["class", "iteration", alt.Tooltip("IoU:Q", format=".1f")],
    ),
)
st.caption("Blank cells: the class is absent from both labels and predictions (IoU undefined).")

st.header("Runs compared at one checkpoint")
options: list[int | None] = [None, *common_iterations(runs)]
at = st.selectbox(
    "Checkpoint",
    options,
    format_func=lambda i: "each run's last evaluation" if i is None else f"iter_{i}",
    key="iou.checkpoint",
)
table = iou_at(runs, at)
bars = table.reset_index().melt("class", var_name="run", value_name="IoU")
st.altair_chart(
    alt.Chart(bars)
    .mark_bar()
    .encode(
        y=alt.Y("class:N", sort=CLASSES, scale=alt.Scale(domain=CLASSES), title=None),
        yOffset="run:N",
        x=alt.X(
            "IoU:Q", title="IoU (%)", scale=alt.Scale(domain=[0, 100]), axis=alt.Axis(tickCount=5)
        ),
        color=alt.Color("run:N", scale=loaders.run_colours(found)),
        tooltip=["run", "class", alt.Tooltip("IoU:Q", format=".1f")],
    )
    .properties(height=26 * len(CLASSES)),
)

st.header("Per-class IoU at " + ("each run's last evaluation" if at is None else f"iter_{at}"))
scores = miou_at(runs, at)
full = pd.concat([scores.drop(index="iteration"), table])
st.dataframe(
    full,
    height=35 * (len(full) + 1) + 3,  # every class without scrolling
    column_config={name: st.column_config.NumberColumn(format="%.1f") for name in full.columns},
)
iterations = scores.loc["iteration"].astype(int) if len(scores.columns) else pd.Series()
if at is None and iterations.nunique() > 1:
    st.warning(
        "The runs are compared at different iterations: "
        + ", ".join(loaders.plain(f"{name} at {i}") for name, i in iterations.items())
        + ". Pick a checkpoint they share above to compare like with like."
    )
elif len(iterations):
    st.caption(f"Every run at iteration {int(iterations.iloc[0])}.")
st.caption("None: the class is absent from both labels and predictions (IoU undefined).")
st.download_button(
    "Download every checkpoint's IoU (CSV)",
    iou_long(runs).to_csv(index=False),
    file_name="per_class_iou.csv",
    mime="text/csv",
    key="iou.download",
)
