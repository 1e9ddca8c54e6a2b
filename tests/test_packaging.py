"""The package definition, the conda environment and the pinned versions agree."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    """Normalised project name of a requirement string ('openTSNE>=1' -> 'opentsne')."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _pyproject_requirements() -> dict[str, str]:
    project = PYPROJECT["project"]
    reqs = list(project["dependencies"])
    for items in project["optional-dependencies"].values():
        reqs += [r for r in items if not r.startswith("rccr[")]
    return {_name(r): r.replace(" ", "") for r in reqs}


def test_pyproject__extras_and_console_script() -> None:
    project = PYPROJECT["project"]
    assert project["name"] == "rccr"
    assert project["requires-python"] == ">=3.10"
    extras = {"notebooks", "dashboard", "dev", "tensorboard", "all"}
    assert set(project["optional-dependencies"]) == extras
    assert project["optional-dependencies"]["all"] == ["rccr[notebooks,dashboard,dev,tensorboard]"]
    assert project["scripts"]["rccr"] == "rccr.cli:main"
    for requirement in project["dependencies"]:
        assert re.search(r">=|<", requirement), f"{requirement} should be a range, not a pin"


def test_environment_yml__lists_the_same_packages_as_pyproject() -> None:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip_section[-1] == "-e ."
    listed = {_name(r): r.replace(" ", "") for r in pip_section[:-1]}
    assert listed == _pyproject_requirements()


def test_constraints__pin_every_dependency_exactly() -> None:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[_name(name)] = version
    assert pins["torch"] == "2.14.1"
    assert pins["torchvision"] == "0.29.1"
    missing = set(_pyproject_requirements()) - set(pins)
    assert not missing, f"constraints.txt has no pin for {sorted(missing)}"


def test_console_script__is_installed() -> None:
    script = Path(sys.executable).parent / "rccr"
    assert script.exists() or shutil.which("rccr"), "the 'rccr' console script is not installed"
