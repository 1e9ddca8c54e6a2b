"""The training loop: one trainer for every mode, writing one run directory.

``train(config)`` builds the student, the data streams and the optimiser, resumes from the
newest checkpoint if the run directory already holds this run, and then repeats
(:meth:`Trainer.run`):

1. ``_train_step``: set the poly learning rate, take this iteration's source and target
   batches, run the mode's step (``rccr.training.steps``: source-only, oracle, DACS or
   RCCR), which returns the loss and its terms; stop with the term's name if any term is
   NaN or infinite (or, with ``train.nan_retries``, roll back to the last checkpoint past
   the batch: ``faults``); backpropagate, take an SGD step and the teacher's EMA step;
2. ``_losses``: the mean loss terms, lr and timing since the last record, on the log
   schedule;
3. ``_stop_reason``: whether a signal (or ``until``) asks to stop, agreed across ranks;
4. ``_save``: a checkpoint on its schedule, at the end, or before stopping;
5. ``_log``: evaluate on target val on its schedule, then append the iteration's record to
   metrics.jsonl and update status.json (the heartbeat a reader tells a dead run by).

The loss means, the heartbeat and the evaluation's log line (best score so far, time left)
are kept by ``rccr.training.progress``.

The checkpoint comes before the evaluation, so a failed or slow evaluation never costs it;
it carries the iteration's loss terms, so a resume from it completes whatever of steps 4
and 5 did not happen (the snapshot, the evaluation, the record).

One trainer writes a run directory at a time (``rccr.runs.RunLock``, held from the
resume until the run ends). Ctrl-C or SIGTERM finishes the current step, saves a
checkpoint and returns; calling ``train`` again with the same config continues bit for bit
(on CPU), also after a kill, and refuses a folder whose checkpoint was written under
another config. An unreadable sample stops the run naming the file, or with
``data.skip_bad`` is skipped and logged (``rccr.training.faults``).

The forward passes run under the configured precision (``rccr.training.precision``). Launched
by ``torchrun``, every process runs this same loop on its shard of each batch with the
student (and projection head) wrapped in DDP (``rccr.training.distributed``); rank 0 alone
writes the run directory and evaluates.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from rccr.analysis.feature_space import feature_diagnostics
from rccr.build import build_datasets, build_model
from rccr.config import Config, absolute_paths, describe_differences
from rccr.data.dataset import Sample, SegmentationDataset
from rccr.data.skipping import Checked, ReplaceBad, require_readable
from rccr.evaluation import EvalResult, evaluate
from rccr.method.region_contrast import contrast_weight
from rccr.runs import Run, RunError, RunLock, RunWriter, default_run_dir, load_run, saved_config
from rccr.training import checkpoint, distributed
from rccr.training.data_stream import DataStream
from rccr.training.faults import Faults, TrainingError, require_finite
from rccr.training.method_parts import MethodParts
from rccr.training.optim import build_optimizer, poly_lr, set_lr
from rccr.training.precision import Precision
from rccr.training.progress import LossMeter, Progress
from rccr.training.steps import StepOutput, dacs_step, oracle_step, rccr_step, source_only_step
from rccr.training.stopping import agreed_stop, stop_requests
from rccr.training.tensorboard import TensorBoardLog, require_tensorboard

__all__ = ["Trainer", "TrainingError", "train"]


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _to(batch: Sample, device: torch.device, channels_last: bool) -> Sample:
    image = batch.image.to(device, non_blocking=True)
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    return Sample(image, batch.label.to(device, non_blocking=True), batch.name)


class Trainer:
    """Builds everything a run needs from its config, and holds its run directory.

    From construction until :meth:`run` ends (or :meth:`close`), this trainer alone may
    write ``out`` (``rccr.runs.RunLock``; rank 0 holds it under DDP).

    Args:
        config: the resolved config.
        out: the run directory (default ``runs/<config.name>``).

    Raises:
        ConfigError: if a ResNet-50/101 is to train without ``model.pretrained`` given.
        RunError: if another trainer holds ``out`` (naming its PID and host); if ``out``
            holds a different run (its config.yaml differs, or it has checkpoints but no
            config.yaml); or if its newest checkpoint was written under another config
            (naming the keys) or does not fit this run.
    """

    def __init__(self, config: Config, out: str | os.PathLike | None = None) -> None:
        config.model.require_weights()  # before anything is read: a ResNet-101 needs them
        config = absolute_paths(config)  # config.yaml names the same files from anywhere
        self.config = config
        self.out = Path(out) if out is not None else default_run_dir(config)
        # Datasets first: a wrong path fails before a large model is built.
        self.source_set, self.target_set, self.val_set = build_datasets(config.data)
        train_cfg = config.train
        if train_cfg.threads:
            torch.set_num_threads(train_cfg.threads)
        self.device = _device(train_cfg.device)
        self.world = distributed.init_world(self.device.type)
        if self.world.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", self.world.local_rank)
        self.precision = Precision.from_config(train_cfg.precision, self.device)
        # The same seed on every rank: identical initial weights without a broadcast.
        torch.manual_seed(train_cfg.seed)
        self.student = build_model(config.model, verbose=self.world.is_main).to(self.device)
        if train_cfg.channels_last:
            self.student.to(memory_format=torch.channels_last)
        self.method: MethodParts | None = None
        heads = []
        if train_cfg.mode in ("dacs", "rccr"):
            seed = distributed.rank_seed(train_cfg.seed, self.world.rank)
            self.method = MethodParts.build(self.student, config.method, train_cfg.mode == "rccr",
                                            seed, world_size=self.world.size)  # fmt: skip
            self.method.to(self.device)
            heads = [h for h in (self.method.student_head,) if h is not None]
        scale = self.world.size if train_cfg.lr_scaling == "linear" else 1
        self.lr = train_cfg.lr * scale
        self.optimizer = build_optimizer(self.student.param_groups(self.lr, heads=heads), train_cfg)
        self.iteration = 0
        self._board: TensorBoardLog | None = None
        if train_cfg.tensorboard:
            require_tensorboard()  # a missing package fails now, not after the first steps
        if self.world.is_main:  # else a bad file would stop the run at its first evaluation
            require_readable(self.val_set)
        self._lock = self._hold()  # from here on, no other trainer writes self.out
        try:
            self._owed = self._resume()
            self.faults = Faults(config, self.out, self.iteration)
            self.model, self.parts = self._wrap()
        except BaseException:
            self.close()
            raise

    def _hold(self) -> RunLock | None:
        """Rank 0 locks the run directory; every rank learns whether it could.

        Raises:
            RunError: on every rank, naming the trainer that holds the folder.
        """
        lock, refusal = None, None
        if self.world.is_main:
            try:
                lock = RunLock(self.out)
            except (RunError, OSError) as exc:
                refusal = str(exc) if isinstance(exc, RunError) else f"{self.out}: {exc}"
        refusal = distributed.all_gather_objects([refusal])[0]
        if refusal is not None:
            raise RunError(refusal)
        return lock

    def _resume(self) -> dict[str, float] | None:
        """Continue from the newest checkpoint that loads, if the folder holds this run.

        Returns:
            The loss terms of the checkpoint's iteration still owed to metrics.jsonl, if
            the checkpoint carries them (the resume completes that iteration), else None.

        Raises:
            RunError: if the folder holds another config, or checkpoints without a
                config.yaml, or the newest checkpoint was written under another config or
                does not fit.
        """
        saved = saved_config(self.out)
        if saved is not None and absolute_paths(saved) != self.config:
            path = str(self.out / "config.yaml")
            keys = describe_differences(saved, self.config, path, "this config")
            raise RunError(
                f"{self.out}: holds a run with a different config ({keys}); "
                "choose another output folder or delete it"
            )
        state, self.problems = checkpoint.latest_checkpoint(self.out)
        for problem in self.problems:  # newer checkpoints that did not load: say so
            warnings.warn(f"skipped on resume: {problem}", stacklevel=3)
        self._resumed = state is not None
        if state is None:
            return None
        checkpoint.require_config(state, self.config, self.out)
        self.iteration = checkpoint.restore(state, self.student, self.optimizer, self.method,
                                            self.precision.scaler, world=self.world)  # fmt: skip
        owed = state.get("log_record")
        return dict(owed) if isinstance(owed, dict) else None

    def close(self) -> None:
        """Release the run directory to other trainers (done when a run ends)."""
        if self._board is not None:
            self._board.close()
            self._board = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _wrap(self) -> tuple[nn.Module, MethodParts | None]:
        """The student and the method's parts as the step uses them: under DDP the student
        and the projection head are wrapped so their gradients are averaged across ranks."""
        model: nn.Module = self.student
        parts = self.method
        if self.world.distributed:
            model = distributed.wrap(model, self.device)
            head = parts.student_head if parts is not None else None
            if (
                parts is not None
                and head is not None
                and any(p.requires_grad for p in head.parameters())
            ):  # a frozen head (method.train_head false) has no gradient to average
                wrapped = distributed.wrap(head, self.device)
                parts = dataclasses.replace(parts, student_head=wrapped)  # type: ignore[arg-type]
        if self.config.train.compile:
            model = torch.compile(model)  # type: ignore[assignment]
        return model, parts

    def _streams(self) -> tuple[Iterator[Sample] | None, Iterator[Sample] | None]:
        """Source and target batches from this iteration on; each mode reads only the
        domains its step uses."""
        mode = self.config.train.mode
        source = self._stream(self.source_set, 0) if mode != "oracle" else None
        target = self._stream(self.target_set, 1) if mode != "source_only" else None
        return source, target

    def _stream(self, dataset: SegmentationDataset, stream: int) -> Iterator[Sample]:
        """Batches past those skipped by roll-backs, each sample read or reported
        (``rccr.training.faults``)."""
        c, world = self.config, self.world

        def start_at(batch: int) -> DataStream[Checked]:
            return DataStream(ReplaceBad(dataset), c.train.batch_size, c.train.seed, stream,
                              batch, c.data.num_workers, pin_memory=self.device.type == "cuda",
                              rank=world.rank, world_size=world.size)  # fmt: skip

        return self.faults.stream(start_at, self.iteration, ("source", "target")[stream])

    def _next(self, stream: Iterator[Sample] | None) -> Sample | None:
        if stream is None:
            return None
        return _to(next(stream), self.device, self.config.train.channels_last)

    def step(self, source: Sample | None, target: Sample | None) -> StepOutput:
        """One step of the configured mode on device batches."""
        mode, model, parts = self.config.train.mode, self.model, self.parts
        if mode == "oracle":
            assert target is not None
            return oracle_step(model, target)
        assert source is not None
        if mode == "source_only":
            return source_only_step(model, source)
        assert target is not None and parts is not None
        if mode == "dacs":
            return dacs_step(model, parts, source, target, self.config.method)
        return rccr_step(model, parts, source, target, self.config.method,
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
            autocast_dtype=self.precision.dtype,
            checkpoint_choice=f"{'last, ' if last else ''}iter_{self.iteration}",
        )

    def _state(self) -> dict[str, Any]:
        """The state to checkpoint (collective under DDP: every rank must call it)."""
        config = self.config.to_dict()
        return checkpoint.capture(self.student, self.optimizer, config, self.method,
                                  self.precision.scaler)  # fmt: skip

    def _save(self, writer: RunWriter | None, record: dict[str, float]) -> dict[str, float]:
        """A checkpoint, and the memory bank's snapshot for the dashboard's t-SNE.

        Returns the bank's feature diagnostics (``diag/feat_*``, analysis only; empty without
        a bank or true labels), which belong in this iteration's record. The checkpoint
        carries ``record`` with them, without timing (so two runs' checkpoints stay
        identical): what a resume still owes metrics.jsonl if the process ends before the
        record is written.
        """
        networks: dict[str, nn.Module | None] = {"student": self.student}
        if self.method is not None:
            for name in ("teacher", "student_head", "teacher_head"):
                networks[name] = getattr(self.method, name)
        require_finite(networks, self.iteration, self.out)
        state = self._state()
        if writer is None:
            return {}
        bank = self.method.bank if self.method is not None else None
        snapshot = bank.snapshot() if bank is not None else None
        scores = {} if snapshot is None else feature_diagnostics(snapshot)
        features = {f"diag/{name}": value for name, value in scores.items()}
        state["log_record"] = {k: v for k, v in (record | features).items() if k != "sec_per_iter"}
        writer.save_checkpoint(self.iteration, state)
        if snapshot is not None:
            writer.save_features(self.iteration, snapshot)
        return features

    def _save_features(self, writer: RunWriter) -> None:
        if self.method is not None and self.method.bank is not None:
            writer.save_features(self.iteration, self.method.bank.snapshot())

    def _lr_at(self, iteration: int) -> float:
        """The poly learning rate of the step that starts at ``iteration``."""
        cfg = self.config.train
        return poly_lr(self.lr, iteration, cfg.iterations, cfg.poly_power)

    def _train_step(
        self, source: Iterator[Sample] | None, target: Iterator[Sample] | None
    ) -> dict[str, float]:
        """One SGD step; returns the loss terms (averaged over ranks), checked to be finite,
        and this rank's diagnostics as ``diag/<name>`` (analysis only, NaN where undefined)."""
        set_lr(self.optimizer, self._lr_at(self.iteration))
        with self.precision.autocast():
            loss, terms, diagnostics = self.step(self._next(source), self._next(target))
        stacked = torch.stack([value.detach().float() for value in terms.values()])
        values = dict(zip(terms, distributed.all_reduce_mean(stacked).tolist(), strict=True))
        for name, value in values.items():
            if not math.isfinite(value):
                raise TrainingError(
                    f"{name} is {value} at iteration {self.iteration + 1}; "
                    f"the last good checkpoint is kept in {self.out / 'checkpoints'}"
                )
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward_and_step(loss, self.optimizer)
        # Every rank continues from rank 0's BatchNorm statistics, as DDP's own broadcast.
        distributed.broadcast_buffers(self.student)
        if self.method is not None:  # the teacher follows the student (0-based step index)
            self.method.update_teacher(
                self.student, self.iteration, self.config.method.ema_max_momentum
            )
        self.iteration += 1
        return values | {f"diag/{name}": value for name, value in diagnostics.items()}

    def run(
        self,
        progress: bool = True,
        until: int | None = None,
        on_log: Callable[[dict[str, Any]], None] | None = None,
    ) -> Run:
        """Train to ``train.iterations`` and return the run.

        Args:
            progress: show a progress bar.
            until: stop early after this iteration, saving a checkpoint (the run is then
                "interrupted" and a later call continues it).
            on_log: called with each record as it is appended to metrics.jsonl (rank 0).
        """
        cfg = self.config.train
        meter = LossMeter()
        bar = tqdm(total=cfg.iterations, initial=self.iteration, desc=self.config.name,
                   disable=not progress or not self.world.is_main, unit="it")  # fmt: skip
        reason, writer = None, None
        try:
            writer = self._start(on_log)
            source, target = self._streams()
            self.student.train()
            with stop_requests() as signalled:
                if cfg.nan_retries and self.iteration == 0:
                    self._save(writer, {})  # the state a roll-back before any checkpoint returns to
                while self.iteration < cfg.iterations and reason is None:
                    try:
                        meter.add(self._train_step(source, target))
                    except TrainingError as error:  # a NaN: stop, or roll back past its batch
                        self._roll_back(error, writer)
                        source, target = self._streams()
                        meter, bar.n = LossMeter(), self.iteration
                        continue
                    self.faults.commit(self.iteration, writer)
                    bar.update()
                    record = self._losses(meter, bar)
                    reason = self._stop_reason(signalled(), until)
                    done = self.iteration == cfg.iterations
                    if _due(self.iteration, cfg.checkpoint_every) or done or reason:
                        record |= self._save(writer, record)
                    self._log(record, writer, on_log)
        except BaseException:
            if writer is not None:
                # On a full disk this fails too; the error that stopped the run is the one
                # to report, and the last heartbeat's PID tells readers the run is gone.
                with contextlib.suppress(OSError):
                    writer.set_status("interrupted", self.iteration)
            self.close()
            raise
        finally:
            bar.close()
        return self._finish(writer, reason)

    def _start(self, on_log: Callable[[dict[str, Any]], None] | None) -> RunWriter | None:
        """(Rank 0) open the run directory for writing, and complete the iteration the run
        resumes at."""
        if self.world.is_main and self._lock is None:
            raise RunError(f"{self.out}: this trainer has finished; make a new one to resume")
        writer = None
        if self.world.is_main:
            writer = RunWriter(self.out)
            writer.write_config(self.config)
            for problem in writer.truncate_metrics(self.iteration):
                warnings.warn(f"dropped on resume: {problem}", stacklevel=3)
            writer.remove_temporaries()  # left by a writer killed mid-write
            writer.set_status("running", self.iteration, iterations=self.config.train.iterations)
            if self.config.train.tensorboard:
                self._board = TensorBoardLog(self.out / "tensorboard")
            self._announce()
        self._progress = Progress(self.out, self.iteration, self.config.train.iterations)
        self._complete(writer, on_log)
        return writer

    def _complete(
        self, writer: RunWriter | None, on_log: Callable[[dict[str, Any]], None] | None
    ) -> None:
        """Write what the checkpoint the run resumes from still owes: its bank snapshot, and
        its evaluation and metrics.jsonl record (a kill or a full disk came between them)."""
        owed = None
        if writer is not None and self._resumed:
            if not (self.out / "features" / f"iter_{self.iteration}.npz").exists():
                self._save_features(writer)
            if self._owed is not None and not writer.logged(self.iteration):
                owed = self._owed
        owed = distributed.all_gather_objects([owed])[0]  # every rank evaluates together
        if owed is not None and self.iteration > 0:
            self._log(owed, writer, on_log)
        self._owed = None

    def _losses(self, meter: LossMeter, bar: tqdm) -> dict[str, float]:
        """The mean loss terms, lr, timing and skips since the last record, on the log
        schedule (empty otherwise)."""
        cfg = self.config.train
        done = self.iteration == cfg.iterations
        record: dict[str, float] = {}
        if self.iteration % cfg.log_every == 0 or done:
            record |= meter.flush() | {"lr": self._lr_at(self.iteration - 1)}
            if cfg.mode == "rccr":  # lambda(t) of the interval's last step, as lr
                method = self.config.method
                record["contrast_weight"] = contrast_weight(
                    self.iteration - 1, cfg.iterations, method.contrast_weight,
                    method.contrast_start_iter,
                )  # fmt: skip
            record |= self.faults.metrics()
            bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k.startswith("loss")},
                            refresh=False)  # fmt: skip
        return record

    def _log(
        self,
        record: dict[str, float],
        writer: RunWriter | None,
        on_log: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        """The target-val score on the evaluation schedule, then ``record`` with it as one
        metrics.jsonl record, and the heartbeat in status.json."""
        cfg = self.config.train
        done = self.iteration == cfg.iterations
        record = dict(record)
        if _due(self.iteration, cfg.eval_every) or done:
            record |= self._evaluate(writer)
        if record and writer is not None:
            line = {"iteration": self.iteration, "time": time.time(), **record}
            writer.log(line)
            if self._board is not None:
                self._board.write(line)
            self._progress.heartbeat(writer, self.iteration)
            if on_log is not None:
                on_log(line)

    def _stop_reason(self, signalled: str | None, until: int | None) -> str | None:
        """Why to stop after this step (a signal, or ``until``), agreed across ranks."""
        early = self.iteration == until and self.iteration < self.config.train.iterations
        return agreed_stop(signalled or ("stopped" if early else None), self.world, self.device)

    def _finish(self, writer: RunWriter | None, reason: str | None) -> Run:
        """Record how the run ended, release the folder, and read it back once every rank
        is done."""
        try:
            if writer is not None:
                writer.set_status("interrupted" if reason else "finished", self.iteration,
                                  iterations=self.config.train.iterations)  # fmt: skip
                if reason is not None:
                    print(f"{reason}: saved a checkpoint at iteration {self.iteration}")
            distributed.barrier()  # the run directory is complete before any rank reads it
        finally:
            self.close()
        return load_run(self.out)

    def _roll_back(self, error: TrainingError, writer: RunWriter | None) -> None:
        """Continue from the newest checkpoint, past the failed step's batch, or re-raise."""
        state = self.faults.roll_back(error, self.iteration, writer)
        self.iteration = checkpoint.restore(state, self.student, self.optimizer, self.method,
                                            self.precision.scaler, world=self.world)  # fmt: skip
        if self.world.is_main:
            warnings.warn(f"{error}; rolled back to iteration {self.iteration} and skipping "
                          "that batch", stacklevel=3)  # fmt: skip

    def _evaluate(self, writer: RunWriter | None) -> dict[str, float]:
        """Rank 0 evaluates and saves the result; the other ranks wait for it.

        The evaluation leaves torch's random state as it found it (its DataLoader draws a
        seed): it runs after the checkpoint, and a run resumed from that checkpoint must
        continue from the same state.
        """
        record = {}
        if writer is not None:
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                result = self.evaluate(progress=False)
            writer.save_eval(self.iteration, result)
            record = {f"val/{k}": v for k, v in result.miou.items()}
            tqdm.write(self._progress.eval_line(self.iteration, result.miou))
        distributed.barrier()
        return record

    def _announce(self) -> None:
        """One line on how the run computes, when it is not a plain single process."""
        cfg, world = self.config.train, self.world
        if world.distributed:
            print(f"DDP: {world.size} processes x batch {cfg.batch_size} = effective batch "
                  f"{cfg.batch_size * world.size} per domain; lr {self.lr:g} "
                  f"(lr_scaling {cfg.lr_scaling}); precision {self.precision.name}")  # fmt: skip
        elif self.precision.name != "fp32":
            print(f"precision {self.precision.name} on {self.device}")


def _due(iteration: int, every: int) -> bool:
    return every > 0 and iteration % every == 0


def train(
    config: Config,
    out: str | os.PathLike | None = None,
    progress: bool = True,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    until: int | None = None,
) -> Run:
    """Train (or resume) a run and return it; see :class:`Trainer` and :meth:`Trainer.run`."""
    return Trainer(config, out).run(progress=progress, until=until, on_log=on_log)
