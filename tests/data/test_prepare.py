"""Dataset preparation: checks, train-id labels, class statistics, nothing half-written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_datasets import HEIGHT, MAKERS, WIDTH, write_gray_label, write_rgb

from rccr.data.dataset import TRAIN_IDS_SUFFIX
from rccr.data.files import DataError, read_label
from rccr.data.labels import CITYSCAPES_ID_TO_TRAIN_ID, SYNTHIA_ID_TO_TRAIN_ID
from rccr.data.prepare import DATASETS, STATS_FILE, PrepareError, prepare_dataset

REPO = Path(__file__).resolve().parents[2]
NAMES = sorted(DATASETS)


def _outputs(root: Path) -> list[Path]:
    """Everything preparation may write: train-id labels, staged files, statistics."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.name.endswith(TRAIN_IDS_SUFFIX) or ".rccr-stage" in p.name or p.name == STATS_FILE
    )


@pytest.mark.parametrize("name", NAMES)
def test_prepare__writes_train_ids_and_stats(tmp_path: Path, name: str) -> None:
    root = MAKERS[name](tmp_path)
    summary = prepare_dataset(name, root, workers=1, progress=False)
    pairs = DATASETS[name].pairs(root)
    assert summary.images == summary.written == len(pairs) and summary.unchanged == 0
    table = SYNTHIA_ID_TO_TRAIN_ID if name == "synthia" else CITYSCAPES_ID_TO_TRAIN_ID
    stats = json.loads((root / STATS_FILE).read_text())
    assert stats["dataset"] == name and len(stats["class_names"]) == 19
    total = np.zeros(19, dtype=np.int64)
    for pair in pairs:
        raw = read_label(pair.label)
        expected = np.vectorize(lambda v: table.get(int(v), 255))(raw)
        np.testing.assert_array_equal(read_label(pair.train_ids), expected)
        entry = stats["images"][pair.name]
        assert (entry["width"], entry["height"]) == (WIDTH, HEIGHT)
        counts = [int((expected == c).sum()) for c in range(19)]
        assert entry["pixels"] == counts
        assert entry["ignored"] == int((expected == 255).sum())
        total += counts
    assert stats["total_pixels"] == total.tolist()
    assert "checked" in str(summary)


@pytest.mark.parametrize("name", NAMES)
def test_prepare__second_run_changes_nothing(tmp_path: Path, name: str) -> None:
    root = MAKERS[name](tmp_path)
    prepare_dataset(name, root, workers=1, progress=False)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in _outputs(root)}
    summary = prepare_dataset(name, root, workers=1, progress=False)
    assert summary.written == 0 and summary.unchanged == summary.images
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in _outputs(root)}
    assert {p: v[0] for p, v in after.items()} == {p: v[0] for p, v in before.items()}
    labels = [p for p in after if p.name != STATS_FILE]
    assert all(after[p][1] == before[p][1] for p in labels)


def test_prepare__parallel_equals_serial(tmp_path: Path) -> None:
    a = MAKERS["gta5"](tmp_path / "a", count=6)
    b = MAKERS["gta5"](tmp_path / "b", count=6)
    prepare_dataset("gta5", a, workers=1, progress=False)
    prepare_dataset("gta5", b, workers=2, progress=False)
    for pa, pb in zip(_outputs(a), _outputs(b), strict=True):
        assert pa.read_bytes() == pb.read_bytes()


def _first_pair(name: str, root: Path):
    return DATASETS[name].pairs(root)[0]


def _damage(name: str, root: Path, case: str) -> Path:
    """Break the dataset in one way; return the path the error must name."""
    pair = _first_pair(name, root)
    if case == "missing label":
        pair.label.unlink()
        return pair.label
    if case == "label without image":
        pair.image.unlink()
        return pair.label
    if case == "truncated image":
        pair.image.write_bytes(pair.image.read_bytes()[:60])
        return pair.image
    if case == "unreadable label":
        pair.label.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
        return pair.label
    if case == "size mismatch":
        write_rgb(pair.image, np.random.default_rng(0), size=(WIDTH + 2, HEIGHT))
        return pair.label
    if case == "unknown values":
        if name == "synthia":
            from fake_datasets import write_synthia_label

            write_synthia_label(pair.label, np.full((HEIGHT, WIDTH), 300))
        else:
            write_gray_label(pair.label, np.full((HEIGHT, WIDTH), 34))
        return pair.label
    raise AssertionError(case)


CASES = [
    "missing label",
    "label without image",
    "truncated image",
    "unreadable label",
    "size mismatch",
    "unknown values",
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", NAMES)
def test_prepare__bad_input_names_path_and_writes_nothing(
    tmp_path: Path, name: str, case: str
) -> None:
    root = MAKERS[name](tmp_path)
    bad = _damage(name, root, case)
    with pytest.raises(PrepareError) as info:
        prepare_dataset(name, root, workers=1, progress=False)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(str(bad))
    assert str(bad) in str(info.value)
    assert _outputs(root) == []


def test_prepare__failure_keeps_earlier_outputs(tmp_path: Path) -> None:
    root = MAKERS["gta5"](tmp_path)
    prepare_dataset("gta5", root, workers=1, progress=False)
    before = {p: p.read_bytes() for p in _outputs(root)}
    _damage("gta5", root, "truncated image")
    with pytest.raises(PrepareError):
        prepare_dataset("gta5", root, workers=1, progress=False)
    assert {p: p.read_bytes() for p in _outputs(root)} == before


def test_prepare__all_problems_reported_together(tmp_path: Path) -> None:
    root = MAKERS["cityscapes"](tmp_path)
    pairs = DATASETS["cityscapes"].pairs(root)
    pairs[0].image.write_bytes(b"junk")
    write_gray_label(pairs[-1].label, np.full((HEIGHT, WIDTH), 200))
    with pytest.raises(PrepareError) as info:
        prepare_dataset("cityscapes", root, workers=2, progress=False)
    assert [p.split(":")[0] for p in info.value.problems] == [
        str(pairs[0].image),
        str(pairs[-1].label),
    ]


def test_prepare__stale_staged_files_are_removed(tmp_path: Path) -> None:
    root = MAKERS["gta5"](tmp_path)
    stale = root / "labels" / ".00001_labelTrainIds.png.rccr-stage"
    stale.write_bytes(b"half")
    prepare_dataset("gta5", root, workers=1, progress=False)
    assert not stale.exists()


def test_prepare__list_file_selects_subset(tmp_path: Path) -> None:
    root = MAKERS["cityscapes"](tmp_path / "cs")
    (tmp_path / "l.txt").write_text("val/frankfurt/frankfurt_000001_000019_leftImg8bit.png\n")
    summary = prepare_dataset(
        "cityscapes", root, workers=1, list_file=tmp_path / "l.txt", progress=False
    )
    assert summary.images == 1
    stats = json.loads((root / STATS_FILE).read_text())
    assert list(stats["images"]) == ["val/frankfurt/frankfurt_000001_000019_leftImg8bit.png"]


def test_prepare__list_with_a_repeated_entry_writes_nothing(tmp_path: Path) -> None:
    root = MAKERS["cityscapes"](tmp_path / "cs")
    entry = "val/frankfurt/frankfurt_000001_000019_leftImg8bit.png"
    (tmp_path / "l.txt").write_text(f"{entry}\n{entry}\n")
    with pytest.raises(DataError, match=r"l\.txt: 1 entries repeat .*\n.*line 2: val/frankf"):
        prepare_dataset("cityscapes", root, workers=1, list_file=tmp_path / "l.txt",
                        progress=False)  # fmt: skip
    assert _outputs(root) == []


def test_prepare__refreshes_a_train_id_file_older_than_its_raw_label(tmp_path: Path) -> None:
    """A raw label touched (or rewritten with the same ids) after preparing: prepare marks
    its train-id file up to date, so datasets read it again without a warning."""
    import os
    import warnings

    from rccr.data import GTA5

    root = MAKERS["gta5"](tmp_path)
    prepare_dataset("gta5", root, workers=1, progress=False)
    label = root / "labels" / "00001.png"
    later = label.stat().st_mtime_ns + 5_000_000_000
    os.utime(label, ns=(later, later))
    with pytest.warns(UserWarning, match="newer than its train-id file"):
        GTA5(root)
    summary = prepare_dataset("gta5", root, workers=1, progress=False)
    assert summary.written == 0  # the content was up to date; only its time was not
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert GTA5(root).label_source == "train_ids"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["gta5"], "dataset root not found"), (["kitti"], "expected one of")],
)
def test_prepare__bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    with pytest.raises((ValueError, PrepareError), match=message):
        prepare_dataset(args[0], tmp_path / "nope", progress=False)


@pytest.mark.parametrize("name", NAMES)
def test_data_script__prepares_and_reports_errors(tmp_path: Path, name: str) -> None:
    root = MAKERS[name](tmp_path)
    script = REPO / "data_scripts" / f"prepare_{name}.py"
    ok = subprocess.run(
        [sys.executable, script, "--root", root, "--no-progress"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert "images checked" in ok.stdout
    bad = _damage(name, root, "truncated image")
    fail = subprocess.run(
        [sys.executable, script, "--root", root, "--no-progress"], capture_output=True, text=True
    )
    assert fail.returncode == 2
    assert str(bad) in fail.stderr and "Traceback" not in fail.stderr


@pytest.mark.parametrize("with_list", [False, True])
def test_prepare__cityscapes_with_only_val_images(tmp_path: Path, with_list: bool) -> None:
    """Someone scoring a checkpoint downloads the val images only, beside gtFine of every
    split (one archive): the val split is prepared, and the summary says so."""
    import shutil

    root = MAKERS["cityscapes"](tmp_path / "cs")
    shutil.rmtree(root / "leftImg8bit" / "train")  # gtFine/train stays, as in the archive
    entry = "val/frankfurt/frankfurt_000001_000019_leftImg8bit.png"
    (tmp_path / "l.txt").write_text(f"{entry}\n")
    summary = prepare_dataset("cityscapes", root, workers=1, progress=False,
                              list_file=tmp_path / "l.txt" if with_list else None)  # fmt: skip
    assert summary.splits == ("val",) and summary.images == (1 if with_list else 2)
    assert f"{root} (val only): " in str(summary)
    stats = json.loads((root / STATS_FILE).read_text())
    assert all(key.startswith("val/") for key in stats["images"])
    assert not list((root / "gtFine" / "train").rglob(f"*{TRAIN_IDS_SUFFIX}"))


def test_prepare__cityscapes_without_images_names_what_is_missing(tmp_path: Path) -> None:
    import shutil

    root = MAKERS["cityscapes"](tmp_path / "cs")
    shutil.rmtree(root / "leftImg8bit")
    with pytest.raises(DataError, match=r"leftImg8bit/train: folder not found"):
        prepare_dataset("cityscapes", root, workers=1, progress=False)
