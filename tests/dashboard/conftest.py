"""A runs root made by the real trainer, once per test session, and broken copies of it.

``runs_root`` holds two runs on a tiny toy city (128x64 images, 64x64 crops):
``rccr`` (4 iterations, checkpoints, evaluations and bank snapshots at 2 and 4) and
``dacs`` (the same schedule, another mode, so configs differ and runs can be compared).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from rccr.config import load_config
from rccr.data.toycity import ToyCitySpec, make_toy_city
from rccr.training import train

RUNS = ("rccr", "dacs")
MARKER = "payload-ran"  # created in a broken root if a checkpoint's pickled code ran
MARKUP = "![img](http://127.0.0.1:9/p.png) [link](http://127.0.0.1:9/) **bold** <b>tag</b>"
MARKUP_RUN = "[link](x) **bold** _it_ `code"  # a folder name: no "/"
SECRET = "TOP-SECRET-LINE"  # the content of a file outside the roots a run may name


class _Payload:
    """Pickles to a call of ``os.system``: what a malicious checkpoint would carry."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return (os.system, (self.command,))


def _overrides(toy: Path) -> list[str]:
    return [
        f"data.source_root={toy / 'gta5'}",
        f"data.target_root={toy / 'cityscapes'}",
        "data.source_size=[128,64]",
        "data.target_size=[128,64]",
        "data.val_size=[128,64]",
        "data.crop=[64,64]",
        "train.iterations=4",
        "train.batch_size=2",
        "train.checkpoint_every=2",
        "train.eval_every=2",
        "train.log_every=1",
        "train.threads=1",
        "method.bank_per_step=64",
    ]


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("dashboard")
    spec = ToyCitySpec(num_source=8, num_target_train=8, num_target_val=4, width=128, height=64)
    make_toy_city(base / "toy", spec, workers=1, progress=False)
    root = base / "runs"
    for mode in RUNS:
        config = load_config("toy", [*_overrides(base / "toy"), f"train.mode={mode}"])
        train(config, root / mode, progress=False)
    return root


def _break(root: Path, kind: str, good: Path, outside: Path) -> None:
    run = root / "rccr"
    if kind == "missing_root":
        shutil.rmtree(root)
    elif kind == "being_written":
        shutil.rmtree(run / "eval")
        shutil.rmtree(run / "features")
        for checkpoint in (run / "checkpoints").iterdir():
            checkpoint.unlink()
        (run / "checkpoints" / ".iter_2.pt.abc.tmp").write_bytes(b"partial")
        (run / "status.json").write_text('{"state": "running", "iteration": 1, "updated": 0}')
        lines = (run / "metrics.jsonl").read_text().splitlines()
        (run / "metrics.jsonl").write_text(lines[0] + "\n" + lines[1][:20])
    elif kind == "bad_metrics":
        text = (run / "metrics.jsonl").read_text()
        (run / "metrics.jsonl").write_text("not json\n" + text + "[1, 2]\n")
    elif kind == "bad_eval":
        (run / "eval" / "iter_2.json").write_text('{"dataset": "cityscapes", "split"')
        (root / "dacs" / "eval" / "iter_4.json").write_text('{"dataset": "cityscapes"}')
    elif kind == "bad_npz":
        (run / "features" / "iter_2.npz").write_bytes(b"PK\x03\x04 truncated")
        data = (run / "features" / "iter_4.npz").read_bytes()
        (run / "features" / "iter_4.npz").write_bytes(data[: len(data) // 2])
    elif kind == "bad_checkpoint":
        payload = _Payload(f"touch {root / MARKER}")
        state = {"iteration": 2, "student": payload}
        torch.save(state, run / "checkpoints" / "iter_2.pt", pickle_protocol=2)
        (run / "checkpoints" / "iter_4.pt").write_bytes(b"not a checkpoint at all")
    elif kind == "bad_config":
        (run / "config.yaml").write_text("train: {mode: [unclosed\n")
    elif kind == "not_a_run":
        shutil.rmtree(root / "dacs")
        shutil.rmtree(run)
        (root / "notes").mkdir()
        (root / "notes" / "todo.txt").write_text("not a run")
    elif kind == "link_outside":
        shutil.rmtree(root / "dacs")
        (root / "dacs").symlink_to(good / "dacs")  # a run folder that lives elsewhere
        (run / "checkpoints" / "iter_9.pt").symlink_to(outside)
    elif kind == "skipped":  # what a run with data.skip_bad and train.nan_retries writes
        records = [
            {"iteration": 1, "kind": "sample", "stream": "source", "name": "00003.png",
             "error": "gta5/images/00003.png: truncated PNG"},
            {"iteration": 3, "kind": "batch", "batch": 2, "error": "loss_mix is nan"},
        ]  # fmt: skip
        (run / "skipped.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    elif kind == "data_gone":
        toy = str(good.parent / "toy")
        config = run / "config.yaml"
        config.write_text(config.read_text().replace(toy, f"{toy}-gone"))
    elif kind == "list_outside":  # a run's config naming a file outside every root it may read
        secret = outside.parent / "secret.txt"
        secret.write_text(f"{SECRET}\n")
        config = run / "config.yaml"
        config.write_text(config.read_text().replace("val_list: null", f"val_list: {secret}"))
    elif kind == "huge_image":  # an image (and label) past the dashboard's pixel budget
        toy = root.parent / "toy-huge"
        shutil.copytree(good.parent / "toy" / "cityscapes", toy)
        image = sorted((toy / "leftImg8bit" / "val").rglob("*.png"))[0]
        label = (
            toy
            / "gtFine"
            / "val"
            / image.parent.name
            / image.name.replace("leftImg8bit", "gtFine_labelIds")
        )
        Image.new("RGB", (4200, 4100)).save(image)
        Image.new("L", (4200, 4100), 7).save(label)
        config = run / "config.yaml"
        text = config.read_text().replace(str(good.parent / "toy" / "cityscapes"), str(toy))
        config.write_text(text)
    elif kind == "huge_val_size":  # one image would cost gigabytes at this size
        config = run / "config.yaml"
        config.write_text(config.read_text().replace("val_size:\n  - 128\n  - 64",
                                                     "val_size:\n  - 16000\n  - 8000"))  # fmt: skip
    elif kind == "hostile":  # files no trainer writes: huge numbers, bad bytes, deep nesting
        (run / "status.json").write_text('{"state": "running", "iteration": 1e400}')
        (run / "skipped.jsonl").write_bytes(b"\xff\xfe\n")
        (root / "dacs" / "config.yaml").write_bytes(b"name: \xff\n")
        (root / "dacs" / "metrics.jsonl").write_text("[" * 100_000 + "\n")
        (root / "dacs" / "eval" / "iter_2.json").write_text('{"a": ' * 100_000)
    elif kind == "markup":  # names and file contents that look like Markdown
        (root / MARKUP_RUN).mkdir()
        shutil.copy(run / "config.yaml", root / MARKUP_RUN / "config.yaml")
        (root / MARKUP_RUN / "metrics.jsonl").write_text(f'{{"iteration": "{MARKUP}"}}\n')
        (root / "dacs" / "status.json").write_text(json.dumps({"state": MARKUP}))
    if kind == "empty_root":
        for child in root.iterdir():
            shutil.rmtree(child)


@pytest.fixture(scope="session")
def broken_root(runs_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``broken_root(kind)``: a copy of ``runs_root`` damaged as ``kind`` (see ``_break``)."""
    made: dict[str, Path] = {}
    outside = tmp_path_factory.mktemp("outside") / "secret.pt"
    outside.write_bytes(b"outside the runs root")

    def make(kind: str) -> Path:
        if kind not in made:
            root = tmp_path_factory.mktemp(kind) / "runs"
            shutil.copytree(runs_root, root)  # with .cache/: t-SNE maps are keyed by content
            _break(root, kind, runs_root, outside)
            made[kind] = root
        return made[kind]

    return make


APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


@pytest.fixture
def open_page(monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    """``open_page(root, page, **query)``: the app over ``root``, run on ``views/<page>.py``.

    The app starts on its default page (Runs); the URL parameters are set before the run
    that shows ``page``, as if the page had been opened from a link.
    """

    def open_(root: Path, page: str, **query: str | list[str]) -> AppTest:
        monkeypatch.setenv("RCCR_RUNS_ROOT", str(root))
        app = AppTest.from_file(str(APP), default_timeout=180)
        if page != "runs":
            app.run()
            app.switch_page(f"views/{page}.py")
        app.query_params.clear()
        app.query_params.update(query)
        return app.run()

    return open_
