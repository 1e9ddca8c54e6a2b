"""Every tutorial notebook runs top to bottom on the CPU, shrunk by RCCR_NOTEBOOK_SMOKE=1.

The notebooks are copied into a temporary folder (``<tmp>/notebooks/``), so the toy city
and the runs they make go to ``<tmp>/data`` and ``<tmp>/runs``, never into the repository.
They run in order and share that folder, as they share ``data/`` and ``runs/`` for a user:
a run trained by one notebook is reused by the next. ``<tmp>/benchmarks`` links to the
repository's, whose committed results notebook 07 reads.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from notebooks.runner import execute

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tutorials") / "notebooks"
    folder.mkdir()
    (folder.parent / "benchmarks").symlink_to(REPO / "benchmarks", target_is_directory=True)
    return folder


def _outputs(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]


def test_notebooks__found() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(8)]


@pytest.mark.slow
@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook__runs_top_to_bottom(
    source: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RCCR_NOTEBOOK_SMOKE", "1")
    copy = workspace / source.name
    shutil.copyfile(source, copy)
    seconds = execute(copy, copy, workspace, timeout=600)
    print(f"{source.name}: {seconds:.1f} s")
    outputs = _outputs(nbformat.read(copy, as_version=4))
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"{source.name} wrote to stderr:\n" + "\n".join(stderr)
    figures = [o for o in outputs if {"image/png", "image/jpeg"} & set(o.get("data", {}))]
    assert figures, f"{source.name} showed no figure"
    assert not (REPO / "runs" / "tutorial-smoke").exists()
    assert not (REPO / "data" / "toy-smoke").exists()
