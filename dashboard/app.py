"""The RCCR dashboard. Start it with ``rccr dashboard --runs DIR`` (or ``make dashboard``).

Four pages over a folder of run directories: the runs and their configs, region sampling
computed live from a checkpoint, a t-SNE of memory-bank snapshots, and per-class IoU
across checkpoints and runs. Pages are thin: loading lives in ``loaders.py`` (cached),
everything else in ``rccr``.
"""

import sys
from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the pages import loaders.py from this folder
    sys.path.insert(0, str(HERE))

import loaders  # noqa: E402

st.set_page_config(page_title="RCCR dashboard", layout="wide")
page = st.navigation(
    [
        st.Page(HERE / "views" / "runs.py", title="Runs", url_path="runs", default=True),
        st.Page(HERE / "views" / "regions.py", title="Region sampling", url_path="regions"),
        st.Page(HERE / "views" / "tsne.py", title="Memory-bank t-SNE", url_path="tsne"),
        st.Page(HERE / "views" / "iou.py", title="Per-class IoU", url_path="iou"),
    ]
)
with st.sidebar:
    st.caption(f"Runs root: `{loaders.runs_root()}`")
    if st.button("Reload runs", key="reload"):
        st.cache_data.clear()
page.run()
