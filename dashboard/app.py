"""The RCCR dashboard. Start it with ``rccr dashboard --runs DIR`` (or ``make dashboard``).

Five pages over a folder of run directories: the runs and their configs, region sampling
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
page = st.navigation(
    [
        st.Page(HERE / "views" / "runs.py", title="Runs", url_path="runs", default=True),
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
