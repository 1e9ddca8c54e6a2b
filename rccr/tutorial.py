"""What the tutorial notebooks share: the toy data, their runs, and the CI smoke switch.

The notebooks in ``notebooks/`` import everything from ``rccr`` and define nothing. This
module holds what they have in common that is not part of the method itself: where the toy
city is generated, which configs the tutorial runs use (so that a run trained by one
notebook is reused by the next), how notebook 06 picks its setting (GPU or CPU, paper
preset or toy), and the interactive region explorer of notebook 03.

``RCCR_NOTEBOOK_SMOKE=1`` (set by the notebook test in CI) makes the toy city and every
training run tiny, and puts both in folders of their own (``<folder>-smoke``) so that they
never mix with full-length ones. This module is the only place that reads it; nothing
else in the package or the notebooks behaves differently under it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rccr.config import NEGATIVE_SAMPLING, POSITIVE_SAMPLING, Config, Mode, load_config
from rccr.data.dataset import Sample, SegmentationDataset
from rccr.data.toycity import ToyCitySpec, ToyCitySummary, make_toy_city
from rccr.runs import Run

if TYPE_CHECKING:
    from rccr.analysis.checkpoints import CheckpointModels

__all__ = [
    "SHORT_ITERATIONS",
    "SMOKE_ENV",
    "SMOKE_ITERATIONS",
    "TUTORIAL_ITERATIONS",
    "TrainingSetup",
    "batch",
    "region_explorer",
    "runs_folder",
    "smoke",
    "smoke_path",
    "toy_config",
    "toy_data",
    "toy_run",
    "toy_spec",
    "training_setup",
    "tutorial_iterations",
]

SMOKE_ENV = "RCCR_NOTEBOOK_SMOKE"
SMOKE_ITERATIONS = 4
"""Every tutorial run's length under smoke: enough for two checkpoints and evaluations."""
TUTORIAL_ITERATIONS = 1000
"""The length of the runs the notebooks compare (the ``toy`` preset trains 3000)."""
SHORT_ITERATIONS = 300
"""The short RCCR run whose networks notebooks 02 to 05 take apart."""
_SMOKE_SPEC = ToyCitySpec(num_source=16, num_target_train=16, num_target_val=8)


def smoke() -> bool:
    """Whether ``RCCR_NOTEBOOK_SMOKE`` asks for the tiny CI version (any value but "" or "0")."""
    return os.environ.get(SMOKE_ENV, "") not in ("", "0")


def tutorial_iterations(default: int) -> int:
    """``default`` iterations, or at most ``SMOKE_ITERATIONS`` under smoke."""
    return min(default, SMOKE_ITERATIONS) if smoke() else default


def smoke_path(path: str | os.PathLike) -> Path:
    """``path``, or ``<path>-smoke`` under smoke, so tiny and full data never share a folder."""
    path = Path(path)
    return path.with_name(f"{path.name}-smoke") if smoke() else path


def toy_spec() -> ToyCitySpec:
    """The toy city of the tutorials: the default benchmark (as ``make demo``), tiny under smoke."""
    return _SMOKE_SPEC if smoke() else ToyCitySpec()


def toy_data(folder: str | os.PathLike = "../data/toy", progress: bool = False) -> ToyCitySummary:
    """Generate the toy city into ``folder`` unless it is already there (about 20 s on 2 cores).

    Args:
        folder: where the toy city goes (``smoke_path(folder)`` under smoke).
        progress: show a progress bar (on stderr) while generating.

    Raises:
        FileExistsError: if ``folder`` holds something else.
    """
    return make_toy_city(smoke_path(folder), toy_spec(), progress=progress)


def runs_folder(folder: str | os.PathLike = "../runs/tutorial") -> Path:
    """The folder of the tutorial runs: ``folder``, or ``<folder>-smoke`` under smoke."""
    return smoke_path(folder)


def toy_config(
    toy: ToyCitySummary,
    mode: Mode,
    iterations: int = TUTORIAL_ITERATIONS,
    overrides: Sequence[str] = (),
) -> Config:
    """The ``toy`` preset on ``toy``'s data, ``iterations`` long (see :func:`tutorial_iterations`).

    Evaluates and checkpoints four times per run (twice under smoke), so mIoU can be
    followed across checkpoints.

    Args:
        toy: the generated toy city.
        mode: ``source_only``, ``dacs``, ``rccr`` or ``oracle``.
        iterations: the full-length number of iterations.
        overrides: further ``key=value`` overrides, e.g. ``["method.bank=false"]``.

    Raises:
        ConfigError: naming the key, for a bad override.
    """
    steps = tutorial_iterations(iterations)
    every = max(2, steps // 4)
    return load_config(
        "toy",
        [
            f"data.source_root={toy.gta5_root}",
            f"data.target_root={toy.cityscapes_root}",
            f"train.mode={mode}",
            f"train.iterations={steps}",
            f"train.eval_every={every}",
            f"train.checkpoint_every={every}",
            *overrides,
        ],
    )


def toy_run(
    toy: ToyCitySummary,
    runs: str | os.PathLike,
    mode: Mode,
    name: str | None = None,
    iterations: int = TUTORIAL_ITERATIONS,
    overrides: Sequence[str] = (),
    progress: bool = True,
) -> Run:
    """Train a tutorial run into ``<runs>/<name>``, or return it at once if it is finished.

    The notebooks share runs through this: the first one that needs a run trains it
    (resuming if it was interrupted), the others find it done.

    Args:
        toy: the generated toy city.
        runs: the folder of the tutorial runs (:func:`runs_folder`).
        mode: the training mode.
        name: the run's folder name (default: ``mode``).
        iterations: the full-length number of iterations.
        overrides: further config overrides (an ablation, say).
        progress: show a progress bar.

    Raises:
        RunError: if the folder holds a run with a different config.
    """
    from rccr.training.trainer import train

    config = toy_config(toy, mode, iterations, overrides)
    return train(config, Path(runs) / (name or mode), progress=progress)


PAPER_WEIGHTS = "../data/weights/DeepLab_resnet_pretrained_init-f81d91e8.pth"
"""Where notebook 06 looks for the DeepLab-v2 init checkpoint (README "Pretrained weights")."""


@dataclass(frozen=True)
class TrainingSetup:
    """What notebook 06 trains, where, and why.

    Attributes:
        config: the resolved config.
        out: the run directory.
        reason: one sentence on how the setting was chosen.
    """

    config: Config
    out: Path
    reason: str


def training_setup(
    toy: ToyCitySummary,
    runs: str | os.PathLike,
    paper_preset: str = "gta2cityscapes",
    paper_data: tuple[str | os.PathLike, str | os.PathLike] = (
        "../data/gta5",
        "../data/cityscapes",
    ),
    overrides: Sequence[str] = (),
    cuda: bool | None = None,
    paper_weights: str | os.PathLike = PAPER_WEIGHTS,
) -> TrainingSetup:
    """Choose notebook 06's run: the paper preset on a GPU when its datasets and pretrained
    weights are there.

    - CUDA, both ``paper_data`` folders and the weights (``paper_weights``, or a
      ``model.pretrained=...`` override): ``paper_preset`` on the GPU with bf16 autocast
      (``train.precision=auto``), into ``<runs>/<paper_preset>``.
    - CUDA without them: the toy preset on the GPU with bf16 autocast, ``<runs>/rccr-cuda``;
      the reason says what was missing.
    - No CUDA: the toy preset on the CPU in fp32, into ``<runs>/rccr``.

    Args:
        toy: the generated toy city.
        runs: the folder of the tutorial runs.
        paper_preset: the paper preset to use on a GPU.
        paper_data: the prepared source and target dataset roots for it.
        overrides: ``key=value`` overrides for the paper preset (``model.pretrained=...``).
        cuda: force the choice (default: ``torch.cuda.is_available()``).
        paper_weights: the DeepLab-v2 init checkpoint the paper preset starts from.
    """
    runs = Path(runs)
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if not cuda:
        return TrainingSetup(
            toy_config(toy, "rccr"),
            runs / "rccr",
            "no CUDA device: the toy preset (RCCR) on the CPU in fp32",
        )
    source, target = (Path(p) for p in paper_data)
    gpu = ["train.device=cuda", "train.precision=auto"]
    given = [item.split("=", 1)[1] for item in overrides if item.startswith("model.pretrained=")]
    weights = Path(given[-1] if given else paper_weights)
    found = weights.is_file() or (given and given[-1] == "none")
    if source.is_dir() and target.is_dir() and found:
        data = [f"data.source_root={source}", f"data.target_root={target}"]
        iterations = tutorial_iterations(load_config(paper_preset).train.iterations)
        items = [*data, *gpu, f"model.pretrained={weights}", f"train.iterations={iterations}"]
        config = load_config(paper_preset, [*items, *overrides])
        reason = (f"CUDA, datasets at {source} and {target}, weights {weights}: "
                  f"{paper_preset} with bf16 autocast")  # fmt: skip
        return TrainingSetup(config, runs / paper_preset, reason)
    missing = [] if source.is_dir() and target.is_dir() else [f"datasets at {source}, {target}"]
    missing += [] if found else [f"pretrained weights at {weights}"]
    reason = f"CUDA, but no {' and no '.join(missing)}: the toy preset with bf16 autocast"
    return TrainingSetup(toy_config(toy, "rccr", overrides=gpu), runs / "rccr-cuda", reason)


def batch(dataset: SegmentationDataset | Sequence[Sample], indices: Sequence[int]) -> Sample:
    """Stack the samples at ``indices`` into a batch, as the trainer's loader does.

    Returns:
        ``Sample(image (B, 3, H, W), label (B, H, W), name)`` with the names joined by ", ".
    """
    samples = [dataset[i] for i in indices]
    return Sample(
        torch.stack([s.image for s in samples]),  # (B, 3, H, W)
        torch.stack([s.label for s in samples]),  # (B, H, W)
        ", ".join(s.name for s in samples),
    )


def region_explorer(models: CheckpointModels, source: Sample, target: Sample) -> Any:
    """ipywidgets controls over :func:`rccr.analysis.regions.explain_regions` for one image pair.

    Sliders for the seed, the box's area and the confidence threshold, and menus for the
    two sampling strategies; every change draws :func:`rccr.viz.region_figure` of the new
    settings below them. Nothing is drawn until a control moves: show the starting point
    (seed 0, box area 0.3, the default threshold and strategies) next to it statically, so
    that it also reads without a live kernel.

    Args:
        models: networks of an RCCR checkpoint.
        source: a source sample (image (3, H, W), label (H, W)).
        target: a target sample (image (3, H, W)).

    Returns:
        An ``ipywidgets.VBox`` to display.
    """
    import ipywidgets as widgets
    from IPython.display import display

    from rccr.analysis.regions import explain_regions
    from rccr.viz import region_figure

    style = {"description_width": "initial"}
    controls = {
        "seed": widgets.IntSlider(0, 0, 20, description="seed", style=style),
        "box_ratio": widgets.FloatSlider(
            0.3, min=0.05, max=1.0, step=0.05, description="box area", style=style
        ),
        "confidence_threshold": widgets.FloatSlider(
            0.75, min=0.0, max=0.99, step=0.01, description="threshold", style=style
        ),
        "positive_sampling": widgets.Dropdown(
            options=POSITIVE_SAMPLING, description="positives", style=style
        ),
        "negative_sampling": widgets.Dropdown(
            options=NEGATIVE_SAMPLING, description="negatives", style=style
        ),
    }
    output = widgets.Output()

    def redraw(change: object = None) -> None:
        settings = {name: control.value for name, control in controls.items()}
        sample = explain_regions(models, source.image, source.label, target.image, **settings)
        with output:
            output.clear_output(wait=True)
            display(region_figure(sample))

    for control in controls.values():
        control.observe(redraw, names="value")
    return widgets.VBox(
        [
            widgets.HBox(list(controls.values())[:3]),
            widgets.HBox(list(controls.values())[3:]),
            output,
        ]
    )
