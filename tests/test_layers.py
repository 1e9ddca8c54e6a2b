"""The package's layers: inspection never imports training, and no module is shadowed.

Looking at runs (the dashboard, the notebooks, ``rccr.viz``, ``rccr.analysis``) and the
layers training is built on never import the training package; only the CLI, the
tutorial helper, ``rccr/__init__.py`` (for ``rccr.train``), the benchmarks and the tests
do. A module's name never equals a public name of its parent package, so that
``import rccr.training.trainer`` and ``rccr.train()`` both work.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
from pathlib import Path

import pytest

import rccr

REPO = Path(__file__).resolve().parents[1]
MAY_IMPORT_TRAINING = {"rccr/cli.py", "rccr/tutorial.py", "rccr/__init__.py"}
TRAINING = ("rccr.training", "rccr.train")


def _sources() -> dict[str, str]:
    """Repository-relative path -> Python source, for every module and notebook that must
    not import training (notebooks: their code cells joined)."""
    found = {}
    for path in [*REPO.glob("rccr/**/*.py"), *REPO.glob("dashboard/**/*.py"),
                 *REPO.glob("data_scripts/*.py")]:  # fmt: skip
        name = path.relative_to(REPO).as_posix()
        if name.startswith("rccr/training/") or name in MAY_IMPORT_TRAINING:
            continue
        found[name] = path.read_text()
    for path in REPO.glob("notebooks/*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        # IPython magics are not Python; they never import anything of ours
        lines = [ln for ln in "\n".join(code).splitlines() if not ln.lstrip().startswith("%")]
        found[path.relative_to(REPO).as_posix()] = "\n".join(lines)
    return found


def _imported_modules(source: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` statement names (incl. lazy ones)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


SOURCES = _sources()


def test_layers__the_scan_covers_inspection() -> None:
    """The rule below checks the files it is about (so it cannot pass on an empty scan)."""
    assert {"dashboard/loaders.py", "rccr/analysis/regions.py", "rccr/viz/charts.py",
            "notebooks/06_train_rccr.ipynb", "rccr/runs/reader.py"} <= set(SOURCES)  # fmt: skip


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_layers__inspection_never_imports_training(name: str) -> None:
    leaks = sorted(
        module
        for module in _imported_modules(SOURCES[name])
        if module in TRAINING or module.startswith(tuple(f"{t}." for t in TRAINING))
    )
    assert not leaks, f"{name} imports the training package: {leaks}"


def test_layers__the_checker_sees_a_leak() -> None:
    assert _imported_modules("from rccr.training.steps import rccr_step\n") >= {
        "rccr.training.steps"
    }
    assert "rccr.training" in _imported_modules("def f():\n    import rccr.training\n")


def _packages() -> list[str]:
    names = ["rccr"]
    for info in pkgutil.walk_packages(rccr.__path__, "rccr."):
        if info.ispkg:
            names.append(info.name)
    return names


@pytest.mark.parametrize("package", _packages())
def test_layers__no_module_is_shadowed_by_a_public_name(package: str) -> None:
    module = importlib.import_module(package)
    submodules = {info.name for info in pkgutil.iter_modules(module.__path__)} - {"__main__"}
    public = set(getattr(module, "__all__", []))
    assert not submodules & public, f"{package}: {sorted(submodules & public)}"
    for name in submodules:
        assert importlib.import_module(f"{package}.{name}").__name__ == f"{package}.{name}"


def test_layers__training_module_and_train_function_both_reachable() -> None:
    trainer = importlib.import_module("rccr.training.trainer")
    assert rccr.train is trainer.train
    assert callable(rccr.evaluate) and importlib.import_module("rccr.evaluation")
