"""The run directory's names: where a run goes by default, which files count as an
iteration's, and user-given names confined to the runs root."""

from __future__ import annotations

import os
import re
from pathlib import Path

from rccr.config import Config, quote

__all__ = [
    "SKIPPED_LOG",
    "PathError",
    "RunError",
    "default_run_dir",
    "iteration_files",
    "resolve_inside",
]

# ASCII digits only (``\d`` takes any script's digits), and no leading zero, so that one
# iteration has exactly one name.
_ITER_FILE = re.compile(r"iter_(0|[1-9][0-9]*)\.(pt|json|npz)")
SKIPPED_LOG = "skipped.jsonl"
_LISTED = 10  # misnamed files listed per folder


class RunError(ValueError):
    """A path is not a run directory, or a run file cannot be used."""


class PathError(ValueError):
    """A user-supplied name would lead outside the runs root."""


def resolve_inside(root: str | os.PathLike, name: str) -> Path:
    """``root / name``, refusing any name that would lead outside ``root``.

    Args:
        root: the folder everything must stay inside (the runs root).
        name: a relative name from the user, e.g. a run's folder name.

    Returns:
        ``root / name`` (absolute; symlinks inside the root are kept as named).

    Raises:
        PathError: naming ``name``, for an empty name, an absolute path, a ``..`` part,
            or a name that resolves (through a symlink) outside ``root``.
    """
    base = Path(root).resolve()
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise PathError(f"{quote(name)}: expected a non-empty name inside {base}")
    if name.startswith(("/", "\\")) or Path(name).is_absolute() or ":" in name:
        raise PathError(f"{quote(name)}: absolute paths are refused; give a name inside {base}")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise PathError(f"{quote(name)}: '..' is refused; give a name inside {base}")
    path = base / name
    resolved = path.resolve()
    if resolved != base and not resolved.is_relative_to(base):
        raise PathError(f"{quote(name)}: leads to {resolved}, outside {base} (through a symlink)")
    return path


def default_run_dir(config: Config) -> Path:
    """Where a run goes when no folder is given: ``runs/<name>-<mode>`` (``runs/toy-rccr``,
    ``runs/toy-source-only``), so the same preset trained in two modes never collides."""
    return Path("runs") / f"{config.name}-{config.train.mode.replace('_', '-')}"


def iteration_files(
    folder: Path, suffix: str, problems: list[str] | None = None
) -> dict[int, Path]:
    """``iter_<N><suffix>`` files in ``folder`` by N.

    Hidden files (the temporaries of atomic writes) are passed over; any other entry not
    named ``iter_<N><suffix>`` (``iter_0006.pt``, ``iter_٩.pt``, ``iter_6.pt.bak``) is
    ignored, with a line in ``problems`` if given.
    """
    if not folder.is_dir():
        return {}
    found, misnamed = {}, []
    for path in sorted(folder.iterdir()):
        match = _ITER_FILE.fullmatch(path.name)
        if match and path.suffix == suffix:
            found[int(match.group(1))] = path
        elif not path.name.startswith("."):
            misnamed.append(path)
    if problems is not None:
        problems += [f"{path}: not named iter_<N>{suffix}; ignored" for path in misnamed[:_LISTED]]
        if len(misnamed) > _LISTED:
            problems.append(f"{folder}: {len(misnamed) - _LISTED} more files not named "
                            f"iter_<N>{suffix}; ignored")  # fmt: skip
    return dict(sorted(found.items()))
