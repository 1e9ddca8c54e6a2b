"""RCCR workbench: domain-adaptive semantic segmentation with regional contrastive
consistency regularization (Zhou et al., ICME 2022).

The Python interface::

    import rccr
    config = rccr.load_config("toy", ["train.iterations=200"])
    run = rccr.train(config)                 # -> rccr.Run (resumes if interrupted)
    run = rccr.load_run("runs/toy-rccr")     # config, metrics, checkpoints, evals
    result = rccr.evaluate(model, dataset, dataset_name="cityscapes", split="val")

The package, by layer (each imports only the ones below it):

- ``rccr.cli``, ``rccr.tutorial``: the ``rccr`` command and the notebooks' shared setup;
- ``rccr.training``: the loop, one step per mode, DDP, precision, faults, checkpoints;
- ``rccr.analysis``: looking at runs (checkpoint models, region sampling, results tables,
  bank embeddings); it never imports ``rccr.training``, nor do the dashboard and notebooks;
- ``rccr.build``: the network and datasets a config names;
- ``rccr.runs``: the run directory, and confinement of user-given paths to a root;
- ``rccr.method``: the method as pure functions and small modules (docs/method.md);
- ``rccr.evaluation``: confusion matrix, IoU, full-resolution evaluation;
- ``rccr.models``, ``rccr.config`` (and ``rccr.config_help``: what each key means),
  ``rccr.data`` (with ``rccr.data.toycity``), ``rccr.viz``.
"""

from rccr.config import Config, ConfigError, load_config
from rccr.evaluation import EvalResult, evaluate
from rccr.runs import Run, load_run
from rccr.training import train

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
