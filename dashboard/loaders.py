"""What every page shares: the runs root, cached loading, safe query parameters, and
text shown as typed.

The runs root comes from ``RCCR_RUNS_ROOT`` (set by ``rccr dashboard --runs DIR``).
Every run name a page accepts, from a menu or from the URL (``?run=NAME``), is checked
with :func:`rccr.runs.resolve_inside`: a name with ``..``, an absolute path, or a link
out of the root is refused with a message. Besides the runs root, a page reads only the
data roots a run's config names: a list file (``data.*_list``) must lie inside one of
those roots, and an image size (``data.val_size``, or an image file) is capped at
:data:`MAX_PIXELS`.

Streamlit renders messages, captions and labels as Markdown, where a run name, a path, a
URL parameter or an error message could be an image fetched from anywhere or a link.
Such text goes through :func:`plain` (or :func:`code`), so it is shown as typed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import altair as alt
import streamlit as st

from rccr.analysis.bank_embedding import BankEmbedding, embed_bank
from rccr.analysis.checkpoints import CheckpointModels, load_models
from rccr.analysis.regions import RegionSample, explain_regions
from rccr.analysis.results import RunsFound, discover_runs
from rccr.build import DatasetKind, open_dataset
from rccr.config import Config, quote
from rccr.data import DataError, JointTransform, SegmentationDataset, Size
from rccr.data.files import image_size
from rccr.data.labels import CLASS_NAMES, PALETTE
from rccr.method.memory_bank import DOMAIN_NAMES
from rccr.runs import PathError, Run, RunError, resolve_inside
from rccr.viz import canvas as viz

RUNS_ENV = "RCCR_RUNS_ROOT"
CLASS_COLOURS = {
    name: "#{:02x}{:02x}{:02x}".format(*rgb) for name, rgb in zip(CLASS_NAMES, PALETTE, strict=True)
}
CLASS_COLOURS["ignore"] = "#7f7f7f"
DOMAIN_COLOURS = {DOMAIN_NAMES[domain]: colour for domain, colour in viz.DOMAIN_COLOURS.items()}
MAX_PIXELS = 4096 * 4096
"""The largest image the dashboard reads or draws (Cityscapes is 2048x1024)."""
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")  # ASCII punctuation: all of Markdown's syntax
# Where GitHub Markdown turns bare text into a link ("http://", "www.", "a@b.c"), whatever
# the escapes: a zero-width space after ":", "www" or "@" stops it, and shows nothing.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)


def plain(text: object) -> str:
    """``text`` for a Streamlit message, caption or label, shown as typed: every ASCII
    punctuation character is backslash-escaped and bare URLs are broken by an invisible
    space, so no part of it is Markdown (an image, a link, emphasis, a colour directive)."""
    text = _AUTOLINK.sub("\u200b", str(text))
    return _PUNCTUATION.sub(lambda match: "\\" + match.group(), text)


def code(text: object) -> str:
    """``text`` as a Markdown code span: shown as typed, in a code font."""
    text = " ".join(str(text).splitlines())
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{text}{pad}{fence}" if text.strip() else plain(text)


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
            f"{plain(exc)}. Start the dashboard with `rccr dashboard --runs DIR`, DIR a folder "
            "of runs."
        )
        st.stop()
    for line in found.skipped:
        st.warning(plain(line))
    if not found.runs:
        command = code(f"rccr train --config toy --out {root / 'toy'}")
        st.info(
            f"No runs under {plain(root)} yet. Train one, for example {command}, then press "
            "**Reload runs**."
        )
        st.stop()
    troubled = [run for run in found.runs if run.problems]
    if troubled:
        names = ", ".join(run.name for run in troubled)
        with st.expander(plain(f"Missing or malformed files in {names}")):
            for run in troubled:
                st.markdown("\n".join(f"- {plain(problem)}" for problem in run.problems))
    return found


def run_colours(found: RunsFound) -> alt.Scale:
    """One colour per run of the root, in name order: a run keeps its colour in every chart
    whichever runs are shown beside it (``rccr.viz.RUN_COLOURS``, repeated past ten)."""
    names = sorted(run.name for run in found.runs)
    colours = [viz.RUN_COLOURS[i % len(viz.RUN_COLOURS)] for i in range(len(names))]
    return alt.Scale(domain=names, range=colours)


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
            st.error(f"URL parameter {code(key)} refused: {plain(exc)}")
            continue
        if path.parent != found.root or path.name not in known:
            st.warning(
                f"URL parameter {code(key)}: {plain(f'no run named {quote(value)} under')} "
                f"{plain(found.root)}"
            )
            continue
        names.append(path.name)
    return names


def query_int(key: str) -> int | None:
    """An integer URL parameter, or None (with a message) if it is not one."""
    value = st.query_params.get(key)
    if value is None:
        return None
    if not value.isdigit():
        st.error(f"URL parameter {code(key)}={plain(quote(value))} refused: expected a "
                 "non-negative integer")  # fmt: skip
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


def check_data(config: Config, root: Path, split: str) -> None:
    """Refuse what a run's config would have a page read beyond its bounds: a list file
    outside the runs root and the run's data roots, or images larger than
    :data:`MAX_PIXELS` (``data.val_size``).

    Raises:
        PathError, DataError: naming the key and the value.
    """
    data = config.data
    width, height = data.val_size
    if width * height > MAX_PIXELS:
        raise DataError(
            f"data.val_size {width}x{height}: more pixels than the dashboard draws (at most "
            f"{MAX_PIXELS} pixels, e.g. 4096x4096)"
        )
    roots = [root.resolve(), Path(data.source_root).resolve(), Path(data.target_root).resolve()]
    target_list = (
        ("target_list", data.target_list) if split == "train" else ("val_list", data.val_list)
    )
    for key, value in (("source_list", data.source_list), target_list):
        if value is not None and not any(Path(value).resolve().is_relative_to(r) for r in roots):
            raise PathError(
                f"data.{key} {quote(value)}: outside the runs root and the run's data roots "
                "(data.source_root, data.target_root); the dashboard does not read it"
            )


def _require_small(path: Path) -> None:
    """Refuse an image file of more than :data:`MAX_PIXELS`, from its header alone."""
    width, height = image_size(path)
    if width * height > MAX_PIXELS:
        raise DataError(
            f"{path}: {width}x{height} pixels; the dashboard reads images of at most "
            f"{MAX_PIXELS} pixels (e.g. 4096x4096)"
        )


DatasetArgs = tuple[DatasetKind, str, str, tuple[int, int], str | None]
"""The arguments of :func:`dataset`: kind, root, split, (width, height), list file."""


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
    source: tuple[DatasetArgs, int],
    target: tuple[DatasetArgs, int],
    **options: object,
) -> RegionSample:
    """:func:`rccr.analysis.regions.explain_regions` for one image pair, each given as the
    arguments of :func:`dataset` and an index."""
    models = checkpoint_models(run_name, root, iteration)
    images = []
    for args, index in (source, target):
        chosen = dataset(*args)
        pair = chosen.pairs[index]
        _require_small(pair.image)
        _require_small(pair.label)
        images.append(chosen[index])
    src, tgt = images
    return explain_regions(models, src.image, src.label, tgt.image, **options)  # type: ignore[arg-type]


def palette_domain(labels: list[str]) -> tuple[list[str], list[str]]:
    """Altair colour scale (domain, range) for the class names in ``labels``."""
    ordered = [name for name in CLASS_COLOURS if name in set(labels)]
    return ordered, [CLASS_COLOURS[name] for name in ordered]
