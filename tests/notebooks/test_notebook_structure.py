"""The committed notebooks: short cells, nothing defined in them, outputs included, small.

The notebooks teach by importing ``rccr``: a class, or a function longer than a few lines,
belongs in the package (``rccr.viz``, ``rccr.tutorial``), where it is tested.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]
MAX_FUNCTION_LINES = 10
MAX_CELL_LINES = 15
MAX_BYTES = 1_000_000


def _code(cell: nbformat.NotebookNode) -> str:
    """A code cell's source without IPython magics and shell escapes."""
    return "\n".join(
        line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))
    )


def definitions(nb: nbformat.NotebookNode) -> list[str]:
    """Each class, and each function or lambda longer than MAX_FUNCTION_LINES, by cell."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(_code(cell))):
            if isinstance(node, ast.ClassDef):
                found.append(f"cell {index}: class {node.name}")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    name = getattr(node, "name", "lambda")
                    found.append(f"cell {index}: function {name} ({lines} lines)")
    return found


def test_definitions__finds_classes_and_long_functions() -> None:
    long_body = "\n".join(f"    x{i} = {i}" for i in range(10))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%matplotlib inline\nclass Helper:\n    pass"),
        nbformat.v4.new_code_cell(f"def short():\n    return 1\n\ndef long():\n{long_body}"),
        nbformat.v4.new_markdown_cell("def not_code(): class X"),
        nbformat.v4.new_code_cell("square = lambda v: v * v"),
    ]
    assert definitions(nb) == ["cell 0: class Helper", "cell 1: function long (11 lines)"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook__defines_no_class_or_long_function(path: Path) -> None:
    assert definitions(nbformat.read(path, as_version=4)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook__under_1_mb(path: Path) -> None:
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size} bytes"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook__prose_first_short_cells_rccr_imported(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    long_cells = [
        (i, n) for i, c in enumerate(code)
        if (n := sum(1 for line in c.source.splitlines() if line.strip())) > MAX_CELL_LINES
    ]  # fmt: skip
    assert not long_cells, f"code cells (index, lines) over {MAX_CELL_LINES} lines: {long_cells}"
    assert re.search(r"^(from rccr|import rccr)", code[0].source, re.M)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook__committed_with_outputs_of_one_clean_run(path: Path) -> None:
    """Executed top to bottom in one kernel (by ``make notebooks``), with no error."""
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.kernelspec.name == "rccr"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    outputs = [o for cell in code for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    smoke = [o.text for o in outputs if o.output_type == "stream" and "-smoke" in o.text]
    assert not smoke, f"{path.name} holds outputs of a smoke run: {smoke}"
    reprs = [o.data["text/plain"] for o in outputs if "text/plain" in o.get("data", {})]
    widget_reprs = [t for t in reprs if re.match(r"(VBox|HBox|HTML|IntSlider)\(", t)]
    assert not widget_reprs, f"{path.name} shows widget reprs without a kernel: {widget_reprs}"


def test_smoke_switch__read_only_by_rccr_tutorial() -> None:
    readers = [
        str(p.relative_to(REPO))
        for p in [*(REPO / "rccr").rglob("*.py"), *NOTEBOOKS]
        if "RCCR_NOTEBOOK_SMOKE" in p.read_text()
    ]
    assert readers == ["rccr/tutorial.py"]


def test_runner__widget_fallbacks_read_without_a_kernel() -> None:
    """A progress bar's text is its final state; a box of controls gets a note, not a repr."""
    from notebooks.runner import CONTROLS_NOTE, WIDGET_STATE, WIDGET_VIEW, widget_fallbacks

    def model(name: str, **state: object) -> dict[str, object]:
        return {"model_name": name, "state": state}

    state = {
        "bar": model("HBoxModel", children=["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]),
        "l": model("HTMLModel", value="train"), "r": model("HTMLModel", value="4/4"),
        "p": model("FloatProgressModel", value=4, max=4),
        "box": model("VBoxModel", children=[]),
    }  # fmt: skip
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": state}}
    outputs = [
        nbformat.v4.new_output("display_data", {WIDGET_VIEW: {"model_id": m}, "text/plain": r})
        for m, r in (("bar", "HBox(children=(HTML(value='')...))"), ("box", "VBox(children=...)"))
    ]
    nb.cells.append(nbformat.v4.new_code_cell("", outputs=outputs))
    widget_fallbacks(nb)
    texts = [o["data"]["text/plain"] for o in nb.cells[0].outputs]
    assert texts == ["train|##########| 4/4", CONTROLS_NOTE]
