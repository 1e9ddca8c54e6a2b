"""Memory-bank t-SNE: one or two checkpoints' bank snapshots side by side."""

import altair as alt
import loaders
import pandas as pd
import streamlit as st

from rccr.analysis.results import PathError
from rccr.runs import RunError

st.title("Memory-bank t-SNE")
st.caption(
    "The bank holds projected features of augmented images (student) and of clean target "
    "images (teacher), labelled by (pseudo-)labels. Classes that form clusters, with the "
    "two domains mixed inside each, are what the contrastive loss works towards."
)
found = loaders.runs_or_stop()
with_bank = loaders.kept_or_stop(
    [run for run in found.runs if run.features],
    "No run has memory-bank snapshots: RCCR runs (`train.mode=rccr`) write "
    "`features/iter_N.npz` at each checkpoint.",
)

run = loaders.pick_run(found, with_bank, "Run", key="tsne.run")
iterations = list(run.features)
default = sorted({iterations[0], iterations[-1]})
chosen = st.multiselect(
    "Checkpoints (one or two: early and late side by side)",
    iterations,
    default=default,
    max_selections=2,
    format_func=lambda i: f"iter_{i}",
    key="tsne.checkpoints",
)
COLOURINGS = {"class": "(pseudo-)label", "truth": "true class", "domain": "domain"}
colour_by = st.radio("Colour by", list(COLOURINGS), horizontal=True, key="tsne.colour",
                     format_func=COLOURINGS.__getitem__)  # fmt: skip
if not chosen:
    st.info("Pick a checkpoint.")
    st.stop()

frames = {}
for iteration in sorted(chosen):
    try:
        with st.spinner(f"t-SNE of iter_{iteration} (cached on disk after the first time)"):
            embedding = loaders.bank_embedding(run.features[iteration], found.root)
    except (RunError, PathError) as exc:
        st.error(loaders.plain(exc))
        continue
    frames[iteration] = (
        pd.DataFrame(
            {
                "x": embedding.points[:, 0],
                "y": embedding.points[:, 1],
                "class": [loaders.class_name(int(k)) for k in embedding.labels],
                "truth": [loaders.class_name(int(k)) for k in embedding.truth],
                "domain": [loaders.DOMAIN_NAMES.get(int(d), "?") for d in embedding.domain],
                "step": embedding.step,
            }
        ),
        embedding,
    )
if not frames:
    st.stop()

present = sorted({name for frame, _ in frames.values() for name in frame["class"]})
shown = st.multiselect("Classes", present, default=present, key="tsne.classes")
# The legend lists what the class filter leaves on the maps (the palette fixes the colours).
visible_rows = [frame[frame["class"].isin(shown)] for frame, _ in frames.values()]
if colour_by == "truth":
    known = sorted({name for frame in visible_rows for name in frame["truth"]})
    if set(known) <= {"ignore"}:
        st.info("These snapshots hold no true classes (the images had no labels, or the run "
                "predates them): coloured by (pseudo-)label instead.")  # fmt: skip
        colour_by = "class"
    domain, colours = loaders.palette_domain(known)
if colour_by == "class":
    domain, colours = loaders.palette_domain(shown)
elif colour_by == "domain":
    domain, colours = list(loaders.DOMAIN_COLOURS), list(loaders.DOMAIN_COLOURS.values())

columns = st.columns(len(frames))
for column, (iteration, (frame, embedding)) in zip(columns, frames.items(), strict=True):
    with column:
        st.subheader(f"iter_{iteration}")
        visible = frame[frame["class"].isin(shown)]
        st.altair_chart(
            alt.Chart(visible)
            .mark_circle(size=14, opacity=0.7)
            .encode(
                x=alt.X("x:Q", axis=None, scale=alt.Scale(zero=False)),
                y=alt.Y("y:Q", axis=None, scale=alt.Scale(zero=False)),
                color=alt.Color(
                    f"{colour_by}:N",
                    scale=alt.Scale(domain=domain, range=colours),
                    legend=alt.Legend(orient="bottom", columns=3, labelLimit=0, title=None),
                ),
                tooltip=["class", "truth", "domain", "step"],
            )
            .properties(height=440),  # about as tall as the column is wide: t-SNE has no axes
        )
        how = "read from the cache" if embedding.cached else "computed"
        st.caption(
            f"{loaders.code(f'{run.name}/features/iter_{iteration}.npz')}: {len(visible)} of "
            f"{len(frame)} features shown, coloured by {COLOURINGS[colour_by]}; map {how} in "
            f"{embedding.seconds:.1f} s."
        )
        if embedding.cache_note:
            st.warning(loaders.plain(embedding.cache_note))
