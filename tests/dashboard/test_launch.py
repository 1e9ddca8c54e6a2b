"""``rccr dashboard``: the streamlit command line it runs, and its errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import rccr.cli
from rccr.cli import main


class _Exec(Exception):
    """Raised instead of replacing the test process with streamlit."""


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str], dict[str, str]]]:
    calls: list[tuple[str, list[str], dict[str, str]]] = []

    def fake_execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        calls.append((path, argv, env))
        raise _Exec

    monkeypatch.setattr(os, "execve", fake_execve)
    return calls


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize(
    ("args", "address", "port"),
    [([], "127.0.0.1", "8501"), (["--host", "0.0.0.0", "--port", "9000"], "0.0.0.0", "9000")],
    ids=["default-binds-localhost", "told-otherwise"],
)
def test_dashboard__streamlit_command_line(
    tmp_path: Path, execs: list, capsys: pytest.CaptureFixture, args: list, address: str, port: str
) -> None:
    with pytest.raises(_Exec):
        main(["dashboard", "--runs", str(tmp_path), *args])
    ((path, argv, env),) = execs
    assert path == sys.executable
    assert argv[1:4] == ["-m", "streamlit", "run"]
    app = Path(argv[4])
    assert app.name == "app.py" and app.parent.name == "dashboard" and app.is_file()
    assert _option(argv, "--server.address") == address
    assert _option(argv, "--server.port") == port
    assert _option(argv, "--server.headless") == "true"
    assert env["RCCR_RUNS_ROOT"] == str(tmp_path.resolve())
    assert f"http://{address}:{port}" in capsys.readouterr().out


def test_dashboard__missing_runs_folder_is_one_line(
    tmp_path: Path, execs: list, capsys: pytest.CaptureFixture
) -> None:
    assert main(["dashboard", "--runs", str(tmp_path / "nope")]) == 2
    assert "--runs" in capsys.readouterr().err and not execs


def test_dashboard__without_the_repository_says_so(
    tmp_path: Path, execs: list, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if installed from a wheel: the package without the dashboard/ folder beside it.
    monkeypatch.setattr(rccr.cli, "__file__", str(tmp_path / "site-packages" / "rccr" / "cli.py"))
    assert main(["dashboard", "--runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "dashboard/app.py: not found" in err and "source checkout" in err and not execs
