"""Reading files that may hold anything: every read is bounded in size (a FIFO or a
device is refused), JSON in nesting depth, a JSON-lines log is taken line by line (a
malformed line becomes a problem naming it), and a checkpoint is loaded without running any
code it carries."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rccr.config import quote
from rccr.runs.paths import RunError

__all__ = [
    "MiB",
    "check_metrics",
    "check_skipped",
    "count_field",
    "load_checkpoint",
    "parse_json",
    "read_bounded",
    "read_records",
    "read_text",
]

MiB = 1 << 20
_JSON_DEPTH = 32  # run files are flat records; deeper nesting is not ours


def read_bounded(path: Path, limit: int) -> bytes:
    """The content of a regular file of at most ``limit`` bytes (any run file is read so).

    Raises:
        RunError: naming the file if it is not a regular file (a FIFO would block, a device
            never end) or is larger than ``limit``.
        OSError: if it cannot be read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO must not wait
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise RunError(f"{path}: not a regular file; not read")
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1) if info.st_size <= limit else b""
    if info.st_size > limit or len(data) > limit:
        raise RunError(f"{path}: larger than {limit / MiB:g} MiB; not read")
    return data


def read_text(path: Path, limit: int) -> str:
    """:func:`read_bounded`, decoded as UTF-8 (RunError naming the file if it is not)."""
    try:
        return read_bounded(path, limit).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def parse_json(text: str) -> Any:
    """``json.loads``, refusing nesting deeper than a run file has.

    Raises:
        ValueError: for malformed JSON or too deep nesting.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"nested more than {_JSON_DEPTH} deep") from None
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            if depth > _JSON_DEPTH:
                raise ValueError(f"nested more than {_JSON_DEPTH} deep")
            pending += [(child, depth + 1) for child in children]
    return value


def count_field(record: dict[str, Any], key: str) -> int:
    """``record[key]`` if it is a non-negative integer (not a bool, a float or a string)."""
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError(f"{key} must be a non-negative integer, got {quote(value)}")
    return value


def check_metrics(record: dict[str, Any]) -> None:
    count_field(record, "iteration")


def check_skipped(record: dict[str, Any]) -> None:
    count_field(record, "iteration")
    kind = record.get("kind")
    if kind not in ("sample", "batch"):
        raise ValueError(f"kind must be 'sample' or 'batch', got {quote(kind)}")
    if kind == "batch":
        count_field(record, "batch")


def read_records(
    data: bytes,
    path: Path,
    check: Callable[[dict[str, Any]], None],
    problems: list[str],
    cut_short: bool = True,
) -> list[tuple[str, dict[str, Any]]]:
    """(line, record) for each well-formed line of a JSON-lines log; each malformed line
    becomes a problem naming it.

    Args:
        cut_short: report a last line without a newline (one cut short by a kill, or being
            written) too, as "probably being written".
    """
    lines = data.split(b"\n")
    complete = lines[-1] == b""
    if complete:
        lines.pop()
    found = []
    for number, raw in enumerate(lines, start=1):
        last = number == len(lines) and not complete
        try:
            line = raw.decode("utf-8")
            record = parse_json(line)
            if not isinstance(record, dict) or "iteration" not in record:
                raise ValueError("expected an object with 'iteration'")
            check(record)
            found.append((line, record))
        except (UnicodeDecodeError, ValueError) as exc:
            if last and not cut_short:
                continue
            note = " (the last line: probably being written)" if last else ""
            problems.append(f"{path}: line {number} malformed{note}: {exc}")
    return found


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: no code in the file can run).

    Raises:
        RunError: naming the file if it is missing, truncated or not a checkpoint.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise RunError(f"{path}: checkpoint not found") from exc
    except Exception as exc:  # torch raises several types for bad or unsafe files
        raise RunError(f"{path}: not a loadable checkpoint: {_refusal(exc)}") from exc
    if not isinstance(state, dict) or "iteration" not in state or "student" not in state:
        raise RunError(f"{path}: not an rccr checkpoint (expected 'iteration' and 'student')")
    return state


def _refusal(exc: Exception) -> str:
    """One line on why ``torch.load(weights_only=True)`` refused a file.

    Torch's own message is several paragraphs and suggests ``weights_only=False``, which
    would run whatever code the file carries.
    """
    text = str(exc)
    code = re.search(r"GLOBAL ([\w.]+)", text)
    if code:
        return f"unpickling it would call {code.group(1)}; checkpoints hold only tensors"
    if isinstance(exc, EOFError):
        return "the file is empty or cut short"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    operand = next((line for line in lines if line.startswith("Unsupported operand")), None)
    if operand:
        return f"{operand} (not written by torch.save, or damaged)"
    return (lines[0] if lines else type(exc).__name__).split(". ")[0]
