"""Training: the loop, its steps per mode, data streams, optimiser and checkpoints."""

from rccr.training.trainer import Trainer, TrainingError, train

__all__ = ["Trainer", "TrainingError", "train"]
