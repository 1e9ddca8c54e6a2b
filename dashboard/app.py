"""The RCCR dashboard. Start it with ``rccr dashboard --runs DIR`` (or ``make dashboard``).

Seven pages over a folder of run directories: the runs and their configs, training curves
(followed live), predictions on any image with confusion matrices, region sampling
computed live from a checkpoint, a t-SNE of memory-bank snapshots, per-class IoU across
checkpoints and runs, and the self-training diagnostics (analysis only). Pages are thin:
loading lives in ``loaders.py`` (cached), everything else in ``rccr``.
"""

from pathlib import Path

# Streamlit puts this script's folder first on the import path while the app runs, so
# this file and the pages import loaders.py from beside them.
import loaders
import streamlit as st

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="RCCR dashboard", layout="wide")
# The default page is served at the root URL; /runs reaches it too, through a hidden page
# (the default page's own pathname would answer "Page not found").
runs_page = st.Page(HERE / "views" / "runs.py", title="Runs", url_path="home", default=True)


def _to_runs() -> None:
    st.switch_page(runs_page)


page = st.navigation(
    [
        runs_page,
        st.Page(_to_runs, title="Runs", url_path="runs", visibility="hidden"),
        st.Page(HERE / "views" / "training.py", title="Training", url_path="training"),
        st.Page(HERE / "views" / "predictions.py", title="Predictions", url_path="predictions"),
        st.Page(HERE / "views" / "regions.py", title="Region sampling", url_path="regions"),
        st.Page(HERE / "views" / "tsne.py", title="Memory-bank t-SNE", url_path="tsne"),
        st.Page(HERE / "views" / "iou.py", title="Per-class IoU", url_path="iou"),
        st.Page(HERE / "views" / "health.py", title="Self-training health", url_path="health"),
    ]
)
with st.sidebar:
    st.caption(f"Runs root: {loaders.code(loaders.runs_root())}")
    if st.button("Reload runs", key="reload"):
        st.cache_data.clear()
page.run()
