"""The training loop: one trainer for every mode, writing one run directory.

``train(config)`` builds the student, the data streams and the optimiser, resumes from the
newest checkpoint if the run directory already holds this run, and then repeats:

1. set the poly learning rate;
2. take this iteration's source and target batches;
3. run the mode's step (``rccr.train.steps``), which returns the loss and its terms;
4. stop with the term's name if any term is NaN or infinite;
5. backpropagate and take an SGD step;
6. log, evaluate on target val, and checkpoint on their schedules.

Ctrl-C or SIGTERM finishes the current step, saves a checkpoint and returns; calling
``train`` again with the same config continues bit for bit (on CPU).
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from tqdm.auto import tqdm

from rccr.config import Config, save_config
from rccr.data.dataset import Sample, SegmentationDataset
from rccr.evaluate import EvalResult, evaluate
from rccr.runs import Run, RunError, RunWriter, load_run
from rccr.train import checkpoint
from rccr.train.build import build_datasets, build_model
from rccr.train.data_stream import DataStream
from rccr.train.method_steps import MethodParts, dacs_step, rccr_step
from rccr.train.optim import build_optimizer, poly_lr, set_lr
from rccr.train.steps import StepOutput, oracle_step, source_only_step

__all__ = ["Trainer", "TrainingError", "train"]


class TrainingError(RuntimeError):
    """Training cannot go on (a loss became NaN or infinite)."""


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _to(batch: Sample, device: torch.device) -> Sample:
    return Sample(batch.image.to(device, non_blocking=True),
                  batch.label.to(device, non_blocking=True), batch.name)  # fmt: skip


@contextmanager
def _stop_requests() -> Iterator[Callable[[], str | None]]:
    """While active, SIGINT and SIGTERM set a flag instead of killing the process."""
    reason: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        reason.append(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: reason[0] if reason else None
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Trainer:
    """Builds everything a run needs from its config.

    Args:
        config: the resolved config.
        out: the run directory (default ``runs/<config.name>``).

    Raises:
        RunError: if ``out`` holds a different run (its config.yaml differs).
    """

    def __init__(self, config: Config, out: str | os.PathLike | None = None) -> None:
        self.config = config
        self.out = Path(out) if out is not None else Path("runs") / config.name
        self._check_same_run()
        # Datasets first: a wrong path fails before a large model is built.
        self.source_set, self.target_set, self.val_set = build_datasets(config.data)
        train_cfg = config.train
        if train_cfg.threads:
            torch.set_num_threads(train_cfg.threads)
        self.device = _device(train_cfg.device)
        torch.manual_seed(train_cfg.seed)
        self.student = build_model(config.model).to(self.device)
        self.method: MethodParts | None = None
        heads = []
        if train_cfg.mode in ("dacs", "rccr"):
            self.method = MethodParts.build(
                self.student, config.method, train_cfg.mode == "rccr", train_cfg.seed
            ).to(self.device)
            heads = [h for h in (self.method.student_head,) if h is not None]
        groups = self.student.param_groups(train_cfg.lr, heads=heads)
        self.optimizer = build_optimizer(groups, train_cfg)
        self.iteration = 0
        state, self.problems = checkpoint.latest_checkpoint(self.out)
        for problem in self.problems:  # newer checkpoints that did not load: say so
            warnings.warn(f"skipped on resume: {problem}", stacklevel=2)
        if state is not None:
            self.iteration = checkpoint.restore(state, self.student, self.optimizer, self.method)

    def _check_same_run(self) -> None:
        saved = self.out / "config.yaml"
        if saved.exists() and saved.read_text() != save_config(self.config):
            raise RunError(
                f"{self.out}: holds a run with a different config ({saved}); "
                "choose another output folder or delete it"
            )

    def _stream(self, dataset: SegmentationDataset, stream: int) -> DataStream:
        c = self.config
        return DataStream(dataset, c.train.batch_size, c.train.seed, stream, self.iteration,
                          c.data.num_workers, pin_memory=self.device.type == "cuda")  # fmt: skip

    def _next(self, stream: DataStream | None) -> Sample | None:
        return None if stream is None else _to(next(stream), self.device)

    def step(self, source: Sample | None, target: Sample | None) -> StepOutput:
        """One step of the configured mode on device batches."""
        mode = self.config.train.mode
        if mode == "oracle":
            assert target is not None
            return oracle_step(self.student, target)
        assert source is not None
        if mode == "source_only":
            return source_only_step(self.student, source)
        assert target is not None and self.method is not None
        if mode == "dacs":
            return dacs_step(self.student, self.method, source, target, self.config.method)
        return rccr_step(self.student, self.method, source, target, self.config.method,
                         self.iteration, self.config.train.iterations)  # fmt: skip

    def evaluate(self, progress: bool = True) -> EvalResult:
        """Evaluate the student, as it is now, on target val at full label resolution."""
        last = self.iteration == self.config.train.iterations
        return evaluate(
            self.student,
            self.val_set,
            dataset_name="cityscapes",
            split="val",
            subsets=self.config.eval.subsets,
            device=self.device,
            batch_size=self.config.eval.batch_size,
            progress=progress,
            checkpoint_choice=f"{'last, ' if last else ''}iter_{self.iteration}",
        )

    def _state(self) -> dict[str, Any]:
        config = self.config.to_dict()
        return checkpoint.capture(self.student, self.optimizer, config, self.method)

    def _save(self, writer: RunWriter) -> None:
        """A checkpoint, and the memory bank's snapshot for the dashboard's t-SNE."""
        writer.save_checkpoint(self.iteration, self._state())
        if self.method is not None and self.method.bank is not None:
            writer.save_features(self.iteration, self.method.bank.snapshot())

    def _train_step(self, source: DataStream | None, target: DataStream | None, lr: float
                    ) -> dict[str, float]:  # fmt: skip
        """One SGD step; returns the loss terms, after checking that each is finite."""
        set_lr(self.optimizer, lr)
        loss, terms = self.step(self._next(source), self._next(target))
        values = {name: float(value.detach()) for name, value in terms.items()}
        for name, value in values.items():
            if not math.isfinite(value):
                raise TrainingError(
                    f"{name} is {value} at iteration {self.iteration + 1}; "
                    f"the last good checkpoint is kept in {self.out / 'checkpoints'}"
                )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.method is not None:  # the teacher follows the student (0-based step index)
            self.method.update_teacher(
                self.student, self.iteration, self.config.method.ema_max_momentum
            )
        self.iteration += 1
        return values

    def run(self, progress: bool = True, until: int | None = None) -> Run:
        """Train to ``train.iterations`` and return the run.

        Args:
            progress: show a progress bar.
            until: stop early after this iteration, saving a checkpoint (the run is then
                "interrupted" and a later call continues it).
        """
        cfg = self.config.train
        writer = RunWriter(self.out)
        writer.write_config(self.config)
        writer.truncate_metrics(self.iteration)
        writer.set_status("running", self.iteration)
        # Each mode reads only the domains whose batches its step uses.
        source = self._stream(self.source_set, 0) if cfg.mode != "oracle" else None
        target = self._stream(self.target_set, 1) if cfg.mode != "source_only" else None
        meter = _LossMeter()
        bar = tqdm(total=cfg.iterations, initial=self.iteration, desc=self.config.name,
                   disable=not progress, unit="it")  # fmt: skip
        self.student.train()
        reason = None
        try:
            with _stop_requests() as stop_reason:
                while self.iteration < cfg.iterations and reason is None:
                    lr = poly_lr(cfg.lr, self.iteration, cfg.iterations, cfg.poly_power)
                    meter.add(self._train_step(source, target, lr))
                    bar.update()
                    done = self.iteration == cfg.iterations
                    record: dict[str, Any] = {}
                    if self.iteration % cfg.log_every == 0 or done:
                        record |= meter.flush() | {"lr": lr}
                        bar.set_postfix({k: f"{v:.3f}" for k, v in record.items()
                                         if k.startswith("loss")}, refresh=False)  # fmt: skip
                    if _due(self.iteration, cfg.eval_every) or done:
                        result = self.evaluate(progress=False)
                        writer.save_eval(self.iteration, result)
                        record |= {f"val/{k}": v for k, v in result.miou.items()}
                    if record:
                        writer.log({"iteration": self.iteration, "time": time.time(), **record})
                    early = self.iteration == until and not done
                    reason = stop_reason() or ("stopped" if early else None)
                    if _due(self.iteration, cfg.checkpoint_every) or done or reason:
                        self._save(writer)
        except BaseException:
            writer.set_status("interrupted", self.iteration)
            raise
        finally:
            bar.close()
        if reason is not None:
            writer.set_status("interrupted", self.iteration)
            print(f"{reason}: saved a checkpoint at iteration {self.iteration}")
        else:
            writer.set_status("finished", self.iteration)
        return load_run(self.out)


def _due(iteration: int, every: int) -> bool:
    return every > 0 and iteration % every == 0


class _LossMeter:
    """Mean of each loss term since the last flush, and seconds per iteration."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count, self.tick = 0, time.perf_counter()

    def add(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1

    def flush(self) -> dict[str, float]:
        seconds = time.perf_counter() - self.tick
        means = {name: total / self.count for name, total in self.sums.items()}
        means["sec_per_iter"] = seconds / self.count
        self.sums, self.count, self.tick = {}, 0, time.perf_counter()
        return means


def train(config: Config, out: str | os.PathLike | None = None, progress: bool = True) -> Run:
    """Train (or resume) a run and return it; see :class:`Trainer`."""
    return Trainer(config, out).run(progress=progress)
