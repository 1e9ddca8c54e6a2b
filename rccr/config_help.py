"""What each config key means, read from the docstrings of the config sections.

``rccr config show PRESET`` prints a config with every key's value and meaning; the
meanings are the ``Attributes:`` entries of :class:`~rccr.config.DataConfig` and its
siblings, so the help cannot drift from the code's own documentation.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap
from typing import Any

import yaml

from rccr.config import Config, flatten_config

__all__ = ["explain_config", "key_meanings"]

# "        name: text" or "        a, b: text" at the first indent of an Attributes section.
_ENTRY = re.compile(r"^(\w+(?:, \w+)*): (.*)$")


def _attributes(cls: type) -> dict[str, str]:
    """The ``Attributes:`` entries of a class docstring, continuation lines joined."""
    doc = inspect.getdoc(cls) or ""
    _, found, section = doc.partition("Attributes:\n")
    meanings: dict[str, str] = {}
    names: list[str] = []
    for line in textwrap.dedent(section).splitlines() if found else []:
        entry = _ENTRY.match(line)
        if entry:
            names = entry.group(1).split(", ")
            for name in names:
                meanings[name] = entry.group(2)
        elif line.startswith(" ") and names:
            for name in names:
                meanings[name] += " " + line.strip()
        elif line.strip():
            break  # the section ended
    return meanings


def key_meanings() -> dict[str, str]:
    """Every dotted config key (``train.lr``) with its meaning."""
    meanings = {"name": "names the run directory by default (runs/<name>-<mode>)."}
    for section in dataclasses.fields(Config):
        if isinstance(section.default_factory, type):  # a section: data, model, ...
            for name, text in _attributes(section.default_factory).items():
                meanings[f"{section.name}.{name}"] = text
    return meanings


def _yaml(value: Any) -> str:
    """A value as an override would spell it: ``null``, ``true``, ``[256, 128]``."""
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix("\n...").strip()


def explain_config(config: Config, width: int = 92) -> str:
    """Every key of ``config`` with its value (as an override would spell it), and its
    meaning indented below it."""
    meanings = key_meanings()
    lines = []
    for key, value in flatten_config(config).items():
        lines.append(f"{key}: {_yaml(value)}")
        text = meanings.get(key, "(undocumented)")
        lines.extend(textwrap.wrap(text, width, initial_indent="    ", subsequent_indent="    "))
    return "\n".join(lines)
