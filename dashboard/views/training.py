"""Training: loss terms, learning rate, contrastive weight, throughput and time left of
chosen runs side by side, refreshed on its own while a run is live."""

import datetime

import altair as alt
import loaders
import streamlit as st

from rccr.analysis.results import miou_curves
from rccr.analysis.training_curves import QUANTITIES, progress_table, training_long

REFRESH_S = 10

st.title("Training")
found = loaders.runs_or_stop()
logged = loaders.kept_or_stop(
    [run for run in found.runs if run.records],
    "No run has logged a step yet: metrics.jsonl gets a record every `train.log_every` iterations.",
)
names = [run.name for run in logged]
live = [run.name for run in logged if run.status == "running"]
wanted = [name for name in loaders.query_names(found) if name in names]
chosen = st.multiselect("Runs", names, default=wanted or live or names[:4], key="train.runs")
follow = st.toggle(
    f"Refresh every {REFRESH_S} s while a chosen run is running",
    value=bool(set(chosen) & set(live)),
    key="train.follow",
)
if not chosen:
    st.info("Pick at least one run.")
    st.stop()


@st.fragment(run_every=REFRESH_S if follow else None)
def _show() -> None:
    """The page's content; re-run on its own every REFRESH_S seconds when following."""
    fresh = loaders.runs_or_stop()  # cached for 5 s: a refresh reads the files again
    runs = [run for run in fresh.runs if run.name in chosen]
    colours = loaders.run_colours(fresh)
    when = datetime.datetime.now().strftime("%H:%M:%S")
    st.caption(
        f"Read at {when}."
        + (" Following: refreshed on its own." if follow else " Press R to read again.")
    )
    st.dataframe(
        progress_table(runs),
        hide_index=True,
        column_config={
            "run": st.column_config.TextColumn(width="large"),
            "it/s": st.column_config.NumberColumn(format="%.2f"),
            "time left (min)": st.column_config.NumberColumn(format="%.0f"),
        },
    )
    st.caption(
        "it/s: training steps per second over the last logged interval (evaluations not "
        "counted). Time left: from the pace of the last ten records, evaluations included; "
        "only while a run is running."
    )
    curves = training_long(runs)
    scores = miou_curves(runs)
    if len(scores):
        st.header("Target val mIoU")
        st.altair_chart(
            alt.Chart(scores)
            .mark_line(point=True)
            .encode(
                x=alt.X("iteration:Q", axis=alt.Axis(format="d")),
                y=alt.Y("mIoU:Q", title="mIoU (%)"),
                color=alt.Color("run:N", scale=colours),
                tooltip=["run", "iteration", "metric", alt.Tooltip("mIoU:Q", format=".2f")],
            ),
        )
    st.header("Losses, schedule and speed")
    order = [label for label in QUANTITIES.values() if label in set(curves["quantity"])]
    st.altair_chart(
        alt.Chart(curves)
        .mark_line()
        .encode(
            x=alt.X("iteration:Q", axis=alt.Axis(format="d")),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("run:N", scale=colours),
            tooltip=["run", "iteration", "quantity", alt.Tooltip("value:Q", format=".4g")],
        )
        .properties(width=330, height=190)
        .facet(facet=alt.Facet("quantity:N", title=None, sort=order), columns=2)
        .resolve_scale(y="independent")
    )
    st.caption(
        "Each loss point is the mean over the steps since the previous record; the learning "
        "rate and lambda(t) are those of the last of these steps. The contrastive loss is "
        "shown before its weight lambda(t) multiplies it."
    )


_show()
