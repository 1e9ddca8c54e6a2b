"""Runs: one row per run, a run's config, and the difference between two configs."""

import loaders
import streamlit as st

from rccr.analysis.results import BEST_LABEL, config_diff, runs_table, skipped_table
from rccr.config import save_config
from rccr.runs import RunError

st.title("Runs")
found = loaders.runs_or_stop()

st.dataframe(
    runs_table(found.runs),
    hide_index=True,
    column_config={  # short labels (help on hover), so every column fits at 1400 px
        "run": st.column_config.TextColumn(width=130),
        "mode": st.column_config.TextColumn(width=90),
        "preset": st.column_config.TextColumn(width=80),
        "status": st.column_config.TextColumn(width=90),
        "iterations": st.column_config.NumberColumn("done", width=55, help="iterations done"),
        "of": st.column_config.NumberColumn(width=50, help="iterations in the schedule"),
        "metric": st.column_config.TextColumn(width=65),
        "last mIoU": st.column_config.NumberColumn("last", format="%.1f", width=60,
                                                   help="mIoU of the last evaluation"),
        "last at": st.column_config.NumberColumn(width=60),
        BEST_LABEL: st.column_config.NumberColumn("best*", format="%.1f", width=60,
                                                  help=BEST_LABEL + ": an oracle choice"),
        "best at": st.column_config.NumberColumn(width=60),
        "skipped": st.column_config.NumberColumn(width=65),
        "problems": st.column_config.NumberColumn(width=70),
    },
)  # fmt: skip
st.caption(
    "**last** is the headline number: target-val mIoU at the last evaluated checkpoint. "
    "**best\\*** picks the checkpoint with the highest target-val mIoU, which looks at "
    "target labels: an oracle choice, shown for reference only. **skipped** counts what "
    "training skipped: unreadable samples (`data.skip_bad`) and batches rolled back over "
    "(`train.nan_retries`), listed under the run's config below."
)

st.header("Config")
left, right = st.columns(2)
with left:
    first = loaders.pick_run(found, found.runs, "Run", key="runs.first", query="run")
with right:
    others = [run for run in found.runs if run is not first] or found.runs
    second = loaders.pick_run(found, others, "Compare with", key="runs.second", query="compare")

try:
    diff = config_diff(first, second)
except RunError as exc:
    st.error(loaders.plain(exc))
else:
    if first is second:
        st.info("Only one run: nothing to compare with.")
    elif diff.empty:
        names = f"{loaders.code(first.name)} and {loaders.code(second.name)}"
        st.success(f"{names} have identical configs.")
    else:
        st.subheader(f"{len(diff)} key differs" if len(diff) == 1 else f"{len(diff)} keys differ")
        st.dataframe(diff, hide_index=True)
for column, run in zip((left, right), (first, second), strict=True):
    with column:
        if run.config is None:
            st.error(loaders.plain(f"{run.path / 'config.yaml'}: missing or malformed"))
        else:
            with st.expander(loaders.plain(f"{run.name}/config.yaml")):
                st.code(save_config(run.config), language="yaml")
        if run.skipped:
            label = f"{run.name}/skipped.jsonl: {len(run.skipped)} skipped"
            with st.expander(loaders.plain(label)):
                st.dataframe(skipped_table(run), hide_index=True)
