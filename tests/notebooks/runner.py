"""Execute tutorial notebooks with nbclient, on this interpreter's kernel.

Used by the notebook test (a copy of each notebook, tiny under ``RCCR_NOTEBOOK_SMOKE=1``,
in a temporary folder) and by ``make notebooks`` (in place, full length)::

    python tests/notebooks/runner.py notebooks/*.ipynb

The kernel is always the Python running this module (a kernelspec named "rccr" is written
to a temporary ``JUPYTER_PATH``), so the notebooks import the project's ``rccr`` whatever
kernels are installed elsewhere. Each notebook runs with its folder as the working
directory, so the ``../data`` and ``../runs`` paths of the notebooks resolve next to it.
"""

from __future__ import annotations

import html
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

KERNEL = "rccr"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@contextmanager
def project_kernel() -> Iterator[None]:
    """Within the block, the kernel "rccr" is ``sys.executable -m ipykernel_launcher``."""
    previous = os.environ.get("JUPYTER_PATH")
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "kernels" / KERNEL
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": "Python (rccr)", "language": "python"})
        )
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [folder, previous]))
        try:
            yield
        finally:
            if previous is None:
                del os.environ["JUPYTER_PATH"]
            else:
                os.environ["JUPYTER_PATH"] = previous


def _progress_text(state: dict[str, Any], model_id: str) -> str | None:
    """The final text of a tqdm notebook bar (an HBox of HTML, FloatProgress, HTML)."""
    box = state.get(model_id, {})
    if box.get("model_name") != "HBoxModel":
        return None
    children = [state.get(c.removeprefix("IPY_MODEL_"), {}) for c in box["state"]["children"]]
    if [c.get("model_name") for c in children] != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, bar, right = (c["state"] for c in children)
    filled = round(10 * bar["value"] / bar["max"]) if bar.get("max") else 0
    text = f"{left['value']}|{'#' * filled}{' ' * (10 - filled)}| {right['value']}"
    return html.unescape(text).replace("\xa0", " ")


CONTROLS_NOTE = "(interactive controls: they need a live kernel; run this cell in Jupyter)"
"""The plain-text fallback of a widget that is not a progress bar."""


def widget_fallbacks(nb: nbformat.NotebookNode) -> None:
    """Give each widget a plain-text fallback that reads without widget support.

    A widget's ``text/plain`` is its repr, taken when it is first displayed (``VBox(...)``,
    or a progress bar at 0%); viewers without widget support (code-hosting sites) show that
    text. A progress bar's is replaced by its last state, read from the saved widget state;
    any other widget's (controls) by :data:`CONTROLS_NOTE`.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view:
                text = _progress_text(state, view["model_id"])
                output["data"]["text/plain"] = CONTROLS_NOTE if text is None else text


def execute(source: Path, target: Path, cwd: Path, timeout: int = 3600) -> float:
    """Run ``source`` top to bottom with ``cwd`` as working directory, write it to ``target``.

    Returns:
        Seconds taken.

    Raises:
        nbclient.exceptions.CellExecutionError: on the first failing cell (``target`` is
            still written, with the outputs up to the failure).
    """
    nb = nbformat.read(source, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL, record_timing=False,
                            resources={"metadata": {"path": str(cwd)}})  # fmt: skip
    start = time.perf_counter()
    try:
        with project_kernel():
            client.execute()
    finally:
        widget_fallbacks(nb)
        nbformat.write(nb, target)
    return time.perf_counter() - start


def main(paths: Sequence[str]) -> int:
    """Execute each notebook in place; print the time each took."""
    total = 0.0
    for name in paths:
        path = Path(name).resolve()
        seconds = execute(path, path, path.parent)
        total += seconds
        size = path.stat().st_size / 1e6
        print(f"{path.name}: {seconds:.0f} s, {size:.2f} MB", flush=True)
    print(f"all notebooks: {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
