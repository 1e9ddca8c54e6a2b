"""docs/method.md: every ``docs/method.md#<slug>`` cited in the repository names one of its
headings, and no file cites a design document that lives outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
METHOD = REPO / "docs" / "method.md"
CITATION = re.compile(r"docs/method\.md#([A-Za-z0-9_-]+)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$")
FENCE = re.compile(r"^[ \t]*(```|~~~)")
OUTSIDE = ("DESIGN.md", "DESIGN section", "DESIGN §", "DESIGN's")
# Folders scanned when the repository is not a git checkout (an unpacked source archive).
SCANNED = ("rccr", "tests", "notebooks", "dashboard", "benchmarks", "data_scripts", "docs")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, drop every character that is not a
    letter, digit, space, hyphen or underscore, then spaces to hyphens."""
    kept = "".join(ch for ch in heading.strip().lower() if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def heading_slugs(markdown: str) -> set[str]:
    """Slugs of the headings of a markdown text, outside code fences; a repeated heading
    gets ``-1``, ``-2``, ... as on GitHub."""
    slugs: set[str] = set()
    seen: dict[str, int] = {}
    in_fence = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = HEADING.match(line)
        if in_fence or match is None:
            continue
        slug = github_slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        slugs.add(slug if count == 0 else f"{slug}-{count}")
    return slugs


def _file_names() -> list[str]:
    """Paths (relative to the repository) of the tracked files, and of new files git does
    not ignore; every file under ``SCANNED`` and README.md outside a git checkout."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        paths = [REPO / "README.md"] + [p for d in SCANNED for p in (REPO / d).rglob("*")]
        return sorted(p.relative_to(REPO).as_posix() for p in paths if p.is_file())
    return sorted({name for name in listed.split("\0") if name})


def text_files() -> dict[str, str]:
    """Every text file of the repository by relative path; binary files are skipped."""
    texts = {}
    for name in _file_names():
        path = REPO / name
        if not path.is_file():  # deleted in the working tree, not yet in the index
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            texts[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Iteration", "iteration"),
        ("Run directory", "run-directory"),
        ("Paper, release and this project", "paper-release-and-this-project"),
        ("`rccr_step`: the loss (v2)", "rccr_step-the-loss-v2"),
    ],
)
def test_github_slug__matches_github(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_docs__cited_anchors_exist() -> None:
    slugs = heading_slugs(METHOD.read_text(encoding="utf-8"))
    citations = [
        (name, text.count("\n", 0, match.start()) + 1, match.group(1))
        for name, text in text_files().items()
        for match in CITATION.finditer(text)
    ]
    assert len(citations) >= 5, f"only {len(citations)} citations of docs/method.md#<slug> found"
    broken = [f"{name}:{line}: #{slug}" for name, line, slug in citations if slug not in slugs]
    assert not broken, f"anchors missing from docs/method.md ({sorted(slugs)}):\n" + "\n".join(
        broken
    )


def test_docs__no_file_cites_a_document_outside_the_repository() -> None:
    this = Path(__file__).resolve().relative_to(REPO).as_posix()
    found = [
        f"{name}:{number}: {line.strip()}"
        for name, text in text_files().items()
        if not name.startswith("docs/") and name != this
        for number, line in enumerate(text.splitlines(), start=1)
        if any(phrase in line for phrase in OUTSIDE)
    ]
    assert not found, "cite docs/method.md#<slug> instead:\n" + "\n".join(found)


def _layout_block() -> str:
    """The code block of the README's Layout section."""
    section = (REPO / "README.md").read_text().split("\n## Layout\n", 1)[1]
    return section.split("```", 2)[1]


def test_readme__layout_names_every_part_of_the_package() -> None:
    layout = _layout_block()
    package = REPO / "rccr"
    skip = {"__init__.py", "__main__.py", "__pycache__", "py.typed", "configs"}
    parts = [p.name for p in package.iterdir() if p.name not in skip]
    assert len(parts) >= 10
    missing = [name for name in parts if not re.search(rf"\b{re.escape(name)}", layout)]
    assert not missing, f"README Layout does not name rccr/{missing}"


def test_readme__layout_names_only_what_exists() -> None:
    layout = _layout_block()
    top = re.findall(r"^(\S+/)", layout, flags=re.MULTILINE)  # top-level folders
    inner = re.findall(r"^  (\S+?/)", layout, flags=re.MULTILINE)  # rccr's subpackages
    assert len(top) >= 6 and len(inner) >= 5
    assert all((REPO / name).is_dir() for name in top), top
    assert all((REPO / "rccr" / name).is_dir() for name in inner), inner
