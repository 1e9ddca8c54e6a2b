"""RCCR workbench: domain-adaptive semantic segmentation with regional contrastive
consistency regularization (Zhou et al., ICME 2022).

The Python interface::

    import rccr
    config = rccr.load_config("toy", ["train.iterations=200"])
    run = rccr.train(config)                 # -> rccr.Run (resumes if interrupted)
    run = rccr.load_run("runs/toy")          # config, metrics, checkpoints, evals
    result = rccr.evaluate(model, dataset, dataset_name="cityscapes", split="val")

``rccr.train`` and ``rccr.evaluate`` are these functions, which hide the subpackage and
module of the same names as attributes: import from them with ``from rccr.train import
trainer`` or ``from rccr.evaluate import confusion_matrix`` (not ``import rccr.train.x``).
"""

from rccr.config import Config, ConfigError, load_config
from rccr.evaluate import EvalResult, evaluate
from rccr.runs import Run, load_run
from rccr.train import train

__all__ = [
    "Config",
    "ConfigError",
    "EvalResult",
    "Run",
    "evaluate",
    "load_config",
    "load_run",
    "train",
]
