"""What every page shares: the runs root, cached loading, and safe query parameters.

The runs root comes from ``RCCR_RUNS_ROOT`` (set by ``rccr dashboard --runs DIR``).
Every run name a page accepts, from a menu or from the URL (``?run=NAME``), is checked
with :func:`rccr.runs.resolve_inside`: a name with ``..``, an absolute path, or a link
out of the root is refused with a message, and nothing outside the root is read.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from rccr.analysis.bank_embedding import BankEmbedding, embed_bank
from rccr.analysis.checkpoints import CheckpointModels, load_models
from rccr.analysis.regions import RegionSample, explain_regions
from rccr.analysis.results import RunsFound, discover_runs
from rccr.build import DatasetKind, open_dataset
from rccr.data import JointTransform, SegmentationDataset, Size
from rccr.data.labels import CLASS_NAMES, PALETTE
from rccr.method.memory_bank import DOMAIN_AUGMENTED, DOMAIN_NAMES, DOMAIN_TARGET
from rccr.runs import PathError, Run, RunError, resolve_inside

RUNS_ENV = "RCCR_RUNS_ROOT"
CLASS_COLOURS = {
    name: "#{:02x}{:02x}{:02x}".format(*rgb) for name, rgb in zip(CLASS_NAMES, PALETTE, strict=True)
}
CLASS_COLOURS["ignore"] = "#7f7f7f"
DOMAIN_COLOURS = {DOMAIN_NAMES[DOMAIN_AUGMENTED]: "#e45756", DOMAIN_NAMES[DOMAIN_TARGET]: "#4c78a8"}


def runs_root() -> Path:
    """The folder of runs this dashboard shows (absolute)."""
    return Path(os.environ.get(RUNS_ENV, "runs")).absolute()


@st.cache_data(ttl=5, show_spinner=False)
def _discover(root: str) -> RunsFound:
    return discover_runs(root)


def kept_or_stop(runs: list[Run], message: str) -> list[Run]:
    """``runs``; if there are none, ``message`` on the page and the page stops."""
    if not runs:
        st.info(message)
        st.stop()
    return runs


def runs_or_stop() -> RunsFound:
    """The runs under the root; a clear message (and the page stops) if there are none."""
    root = runs_root()
    try:
        found = _discover(str(root))
    except RunError as exc:
        st.error(
            f"{exc}. Start the dashboard with `rccr dashboard --runs DIR`, DIR a folder of runs."
        )
        st.stop()
    for line in found.skipped:
        st.warning(line)
    if not found.runs:
        st.info(
            f"No runs under {root} yet. Train one, for example "
            f"`rccr train --config toy --out {root / 'toy'}`, then press **Reload runs**."
        )
        st.stop()
    troubled = [run for run in found.runs if run.problems]
    if troubled:
        names = ", ".join(run.name for run in troubled)
        with st.expander(f"Missing or malformed files in {names}"):
            for run in troubled:
                st.markdown("\n".join(f"- `{problem}`" for problem in run.problems))
    return found


def class_name(label: int) -> str:
    return CLASS_NAMES[label] if 0 <= label < len(CLASS_NAMES) else "ignore"


def query_names(found: RunsFound, key: str = "run") -> list[str]:
    """Run names given in the URL (``?key=NAME``, repeatable) that are safe and exist.

    Unsafe names (``..``, absolute paths, links out of the root) and unknown runs are
    reported on the page and dropped.
    """
    names = []
    known = found.by_name()
    for value in st.query_params.get_all(key):
        try:
            path = resolve_inside(found.root, value)
        except PathError as exc:
            st.error(f"URL parameter `{key}` refused: {exc}")
            continue
        if path.parent != found.root or path.name not in known:
            st.warning(f"URL parameter `{key}`: no run named {value!r} under {found.root}")
            continue
        names.append(path.name)
    return names


def query_int(key: str) -> int | None:
    """An integer URL parameter, or None (with a message) if it is not one."""
    value = st.query_params.get(key)
    if value is None:
        return None
    if not value.isdigit():
        st.error(f"URL parameter `{key}`={value!r} refused: expected a non-negative integer")
        return None
    return int(value)


def pick_run(found: RunsFound, runs: list[Run], label: str, key: str, query: str = "run") -> Run:
    """A select box over ``runs``, starting at the URL's ``?query=NAME`` if it is one of them."""
    names = [run.name for run in runs]
    wanted = [name for name in query_names(found, query) if name in names]
    index = names.index(wanted[0]) if wanted else 0
    chosen = st.selectbox(label, names, index=index, key=key)
    st.query_params[query] = chosen
    return runs[names.index(chosen)]


def bank_embedding(path: Path, root: Path) -> BankEmbedding:
    """The t-SNE map of a snapshot inside the runs root, cached under ``root/.cache/tsne``."""
    inside = resolve_inside(root, str(path.relative_to(root)))
    stat = inside.stat()  # part of the key: a rewritten file is mapped again
    return _bank_embedding(str(inside), str(root), stat.st_mtime_ns, stat.st_size)


@st.cache_data(show_spinner=False, max_entries=16)
def _bank_embedding(path: str, root: str, mtime_ns: int, size: int) -> BankEmbedding:
    return embed_bank(path, Path(root) / ".cache" / "tsne")


@st.cache_resource(show_spinner=False, max_entries=4)
def checkpoint_models(run_name: str, root: str, iteration: int) -> CheckpointModels:
    """A checkpoint's networks (loaded with ``weights_only=True``), kept across reruns."""
    return load_models(resolve_inside(root, run_name), iteration)


@st.cache_resource(show_spinner=False, max_entries=8)
def dataset(
    kind: DatasetKind, root: str, split: str, size: tuple[int, int], list_file: str | None
) -> SegmentationDataset:
    """A run's source (gta5, synthia) or target (cityscapes) images, resized to ``size``."""
    return open_dataset(kind, root, JointTransform(Size(*size)), split, list_file)


@st.cache_data(show_spinner=False, max_entries=32)
def region_sample(
    run_name: str,
    root: str,
    iteration: int,
    source: tuple[str, str, str, tuple[int, int], str | None, int],
    target: tuple[str, str, str, tuple[int, int], str | None, int],
    **options: object,
) -> RegionSample:
    """:func:`rccr.analysis.regions.explain_regions` for one image pair, each given as the
    arguments of :func:`dataset` plus an index."""
    models = checkpoint_models(run_name, root, iteration)
    src = dataset(*source[:5])[source[5]]
    tgt = dataset(*target[:5])[target[5]]
    return explain_regions(models, src.image, src.label, tgt.image, **options)  # type: ignore[arg-type]


def palette_domain(labels: list[str]) -> tuple[list[str], list[str]]:
    """Altair colour scale (domain, range) for the class names in ``labels``."""
    ordered = [name for name in CLASS_COLOURS if name in set(labels)]
    return ordered, [CLASS_COLOURS[name] for name in ordered]
