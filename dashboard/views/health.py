"""Self-training health: how right the teacher, the anchors and the negatives are, over time.

Analysis only: the runs measured these against the target images' labels; training never
reads them, and no checkpoint is chosen by them.
"""

import altair as alt
import loaders
import streamlit as st

from rccr.analysis.results import diagnostics_long

st.title("Self-training health")
st.caption(
    "Analysis only: measured with the target images' labels (the toy city has them; "
    "Cityscapes train has gtFine), never used for training or to choose a checkpoint. "
    "Each point is the mean over the steps since the previous log line."
)
found = loaders.runs_or_stop()
table = diagnostics_long(found.runs)
logged = loaders.kept_or_stop(
    [run for run in found.runs if run.name in set(table["run"])],
    "No run has logged diagnostics yet: DACS and RCCR runs log them (`diag/*` in "
    "metrics.jsonl) when their target images have labels and `method.diagnostics` is on.",
)
names = [run.name for run in logged]
wanted = [name for name in loaders.query_names(found) if name in names]
chosen = st.multiselect("Runs", names, default=wanted or names[:4], key="health.runs")
if not chosen:
    st.info("Pick at least one run.")
    st.stop()
shown = table[table["run"].isin(chosen)]
for group, rows in shown.groupby("group", sort=False):
    st.header(str(group).capitalize())
    st.altair_chart(
        alt.Chart(rows)
        .mark_line(point=True)
        .encode(
            x=alt.X("iteration:Q", title="iteration", axis=alt.Axis(format="d")),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("run:N", scale=loaders.run_colours(found)),
            tooltip=["run", "iteration", "diagnostic", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(width=320, height=200)
        .facet(facet=alt.Facet("diagnostic:N", title=None), columns=2)
        .resolve_scale(y="independent")
    )
with st.expander("What each diagnostic measures"):
    st.markdown(
        "- **Teacher pseudo-labels**: pixel accuracy and mIoU of the teacher's pseudo-labels "
        "on the step's target images; the share of pixels confident enough for DACS's weight "
        "(0.968) and how right those are.\n"
        "- **Anchors**: how many cells of the CutMix box there are, the share positive "
        "sampling keeps, and how right the pseudo-labels of the kept and the rejected ones "
        "are (a good filter keeps the right ones).\n"
        "- **Negatives**: the share of (anchor, negative) pairs whose true classes are equal "
        "(false negatives) as drawn and among the pairs the loss counts after class-aware "
        "filtering; and the share of removed pairs that were true negatives (removed because "
        "a pseudo-label was wrong).\n"
        "- **Bank features** (RCCR, at each checkpoint): how well a 10-nearest-neighbour vote "
        "in the memory bank's features finds each row's true class (separability), and the "
        "cosine between each class's centroid in the augmented images and in the clean "
        "target images, both measured from the bank's mean feature, averaged over classes "
        "(cross-domain alignment; 1: a class sits the same way in both domains). "
        "docs/method.md#diagnostics has the definitions."
    )
