"""The toy city on disk: the source style in the GTA5 layout, the target style in the
Cityscapes layout, generated in worker processes, byte-identical for the same seed.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from shutil import rmtree
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from rccr.data.files import encode_png
from rccr.data.labels import CITYSCAPES_LABEL_PALETTE, IGNORE_INDEX, TRAIN_ID_TO_CITYSCAPES_ID
from rccr.data.toycity.scene import render_scene
from rccr.data.toycity.style import SOURCE_STYLE, TARGET_STYLE

__all__ = ["ToyCitySpec", "ToyCitySummary", "make_toy_city"]


_FORMAT_VERSION = 1
_MANIFEST = "toycity.json"
_CITIES = (("train", ("toyburg", "pixelstadt", "voxelheim")), ("val", ("polygonberg", "rasterdam")))
_GTA5_IDS = np.zeros(256, np.uint8)  # train id -> Cityscapes label id; 255 -> 0 'unlabeled'
_GTA5_IDS[: len(TRAIN_ID_TO_CITYSCAPES_ID)] = TRAIN_ID_TO_CITYSCAPES_ID
_CITYSCAPES_IDS = _GTA5_IDS.copy()
_CITYSCAPES_IDS[IGNORE_INDEX] = 1  # the hood, the only ignored region: 'ego vehicle'


@dataclass(frozen=True)
class ToyCitySpec:
    """What ``make_toy_city`` generates.

    Attributes:
        num_source: Source (game-like) images, in the GTA5 layout (>= 1).
        num_target_train: Target (photo-like) images in Cityscapes ``train`` (>= 1).
        num_target_val: Target images in Cityscapes ``val`` (>= 1).
        width: Image width in pixels (>= 64).
        height: Image height in pixels (>= 32).
        seed: Seed of all images' random streams (>= 0).

    Raises:
        ValueError: naming the field, if a value is not an integer in its range.
    """

    num_source: int = 1000
    num_target_train: int = 1000
    num_target_val: int = 200
    width: int = 256
    height: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        minimum = {"num_source": 1, "num_target_train": 1, "num_target_val": 1}
        minimum |= {"width": 64, "height": 32, "seed": 0}
        for name, low in minimum.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"ToyCitySpec.{name} must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True)
class ToyCitySummary:
    """Where ``make_toy_city`` put the two datasets, their sizes, and how long it took.

    Attributes:
        gta5_root: Source dataset root (``images/``, ``labels/``).
        cityscapes_root: Target dataset root (``leftImg8bit/``, ``gtFine/``).
        num_source: Source images.
        num_target_train: Target training images.
        num_target_val: Target validation images.
        seconds: Wall time of the call (about 0 when the toy city already existed).
    """

    gta5_root: Path
    cityscapes_root: Path
    num_source: int
    num_target_train: int
    num_target_val: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"toy city: {self.num_source} source images in {self.gta5_root}, "
            f"{self.num_target_train} + {self.num_target_val} target images in "
            f"{self.cityscapes_root} ({self.seconds:.1f} s)"
        )


class _Job(NamedTuple):
    stream: tuple[int, int, int]  # (domain, split, index): spawn key of the image's seed
    image: str  # paths under the output folder
    label: str


def _jobs(spec: ToyCitySpec) -> list[_Job]:
    jobs = [
        _Job((0, 0, i), f"gta5/images/{i + 1:05d}.png", f"gta5/labels/{i + 1:05d}.png")
        for i in range(spec.num_source)
    ]
    for split, count in enumerate((spec.num_target_train, spec.num_target_val)):
        name, cities = _CITIES[split]
        for i in range(count):
            city = cities[i % len(cities)]
            # Frame 19 of each sequence is the annotated one in Cityscapes.
            stem = f"{name}/{city}/{city}_{i // len(cities):06d}_000019"
            image = f"cityscapes/leftImg8bit/{stem}_leftImg8bit.png"
            jobs.append(_Job((1, split, i), image, f"cityscapes/gtFine/{stem}_gtFine_labelIds.png"))
    return jobs


def _write_images(root: str, spec: ToyCitySpec, jobs: list[_Job]) -> int:
    for job in jobs:
        target = job.stream[0] == 1
        rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=job.stream))
        style = TARGET_STYLE if target else SOURCE_STYLE
        image, label = render_scene(rng, style, spec.width, spec.height)
        Path(root, job.image).write_bytes(encode_png(image))
        if target:
            label_png = encode_png(_CITYSCAPES_IDS[label])
        else:
            label_png = encode_png(_GTA5_IDS[label], palette=CITYSCAPES_LABEL_PALETTE)
        Path(root, job.label).write_bytes(label_png)
    return len(jobs)


def _run(root: Path, spec: ToyCitySpec, jobs: list[_Job], workers: int, progress: bool) -> None:
    size = max(1, min(64, len(jobs) // (8 * workers)))  # ~8 chunks per worker balance load
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    with tqdm(total=len(jobs), desc="toy city", unit="img", disable=not progress) as bar:
        if workers == 1:
            for chunk in chunks:
                bar.update(_write_images(str(root), spec, chunk))
            return
        pool = ProcessPoolExecutor(max_workers=min(workers, len(chunks)))
        try:
            futures = [pool.submit(_write_images, str(root), spec, chunk) for chunk in chunks]
            for future in as_completed(futures):
                bar.update(future.result())
        finally:  # on error: drop queued chunks, let running ones finish before cleanup
            pool.shutdown(wait=True, cancel_futures=True)


def _is_complete(out: Path, spec: ToyCitySpec) -> bool:
    """Whether ``out`` holds every file of this spec; files added later (prepared train-id
    labels, class statistics) are allowed."""
    try:
        manifest = json.loads((out / _MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(manifest, dict)
        and manifest.get("format_version") == _FORMAT_VERSION
        and manifest.get("spec") == asdict(spec)
        and all((out / path).is_file() for job in _jobs(spec) for path in job[1:])
    )


def make_toy_city(
    out: str | os.PathLike,
    spec: ToyCitySpec,
    workers: int | None = None,
    progress: bool = True,
) -> ToyCitySummary:
    """Generate the toy-city benchmark: source in the GTA5 layout, target in Cityscapes'.

    Writes ``<out>/gta5/{images,labels}/00001.png`` (labels: palette PNGs of Cityscapes
    label ids), ``<out>/cityscapes/{leftImg8bit,gtFine}/{train,val}/<city>/...`` (labels:
    grayscale ``*_gtFine_labelIds.png``, the hood as 1 'ego vehicle') and
    ``<out>/toycity.json`` (format version, spec, counts). Each image has its own random
    stream from ``(seed, domain, split, index)``, so a seed gives byte-identical files
    whatever ``workers`` is. Everything is written into ``<out>.tmp-<pid>``, which is
    renamed to ``<out>`` at the end or removed on any error.

    Args:
        out: Output folder: absent, empty, or already this toy city (then kept as is).
        spec: What to generate.
        workers: Processes (default ``os.cpu_count()``); 1 draws in this process.
        progress: Show a progress bar.

    Returns:
        The two dataset roots, the counts, and the time taken.

    Raises:
        FileExistsError: if ``out`` exists and holds anything else.
        ValueError: if ``workers`` < 1.
    """
    start, out = time.perf_counter(), Path(os.path.abspath(out))
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not _is_complete(out, spec):
        if out.exists() and not (out.is_dir() and not any(out.iterdir())):
            raise FileExistsError(
                f"{out}: exists and is not a complete toy city with this spec ({_MANIFEST} "
                "differs or files are missing); remove it or choose another folder"
            )
        _generate(out, spec, workers, progress)
    return ToyCitySummary(
        gta5_root=out / "gta5",
        cityscapes_root=out / "cityscapes",
        num_source=spec.num_source,
        num_target_train=spec.num_target_train,
        num_target_val=spec.num_target_val,
        seconds=time.perf_counter() - start,
    )


def _generate(out: Path, spec: ToyCitySpec, workers: int, progress: bool) -> None:
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    jobs = _jobs(spec)
    try:
        rmtree(tmp, ignore_errors=True)  # left by a killed run that had our pid
        for folder in sorted({os.path.dirname(path) for job in jobs for path in job[1:]}):
            (tmp / folder).mkdir(parents=True, exist_ok=True)
        _run(tmp, spec, jobs, workers, progress)
        counts = {"gta5": spec.num_source, "cityscapes/train": spec.num_target_train}
        counts["cityscapes/val"] = spec.num_target_val
        manifest = {"format_version": _FORMAT_VERSION, "spec": asdict(spec), "counts": counts}
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        try:
            tmp.rename(out)  # atomic; replaces an empty folder
        except OSError:
            if not _is_complete(out, spec):  # unless a concurrent call has just made it
                raise FileExistsError(f"{out}: appeared while generating; left as it is") from None
            rmtree(tmp)
    except BaseException:
        rmtree(tmp, ignore_errors=True)
        raise
