"""Two-process DDP on CPU (gloo), launched through torchrun as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_toy import tiny_overrides

from rccr.config import load_config
from rccr.runs import RunError, load_run
from rccr.training import Trainer
from rccr.training.data_stream import DataStream

WORKER = Path(__file__).with_name("ddp_worker.py")
ITERATIONS, UNTIL, BANK_PER_STEP = 6, 4, 16


def _overrides(toy: Path) -> list[str]:
    return tiny_overrides(toy, "train.mode=rccr", f"train.iterations={ITERATIONS}",
                          "train.eval_every=3", "train.checkpoint_every=2",
                          f"method.bank_per_step={BANK_PER_STEP}")  # fmt: skip


def _torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", *args]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def ddp_run(toy: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, dict]]:
    """A 2-process RCCR run stopped after UNTIL of ITERATIONS, and each rank's state."""
    root = tmp_path_factory.mktemp("ddp")
    out, dump = root / "run", root / "dump"
    _torchrun(str(WORKER), str(out), str(dump), str(UNTIL), *_overrides(toy))
    states = {r: torch.load(dump / f"rank{r}.pt", weights_only=True) for r in (0, 1)}
    return out, states


@pytest.mark.parametrize("part", ["student", "teacher", "teacher_head", "bank"])
def test_ddp__state_identical_across_ranks(ddp_run: tuple[Path, dict], part: str) -> None:
    _, states = ddp_run
    first, second = states[0][part], states[1][part]
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), f"{part}.{name} differs across ranks"


def test_ddp__ranks_augment_with_their_own_generators(ddp_run: tuple[Path, dict]) -> None:
    _, states = ddp_run
    assert not torch.equal(states[0]["generator"], states[1]["generator"])


def test_ddp__bank_holds_entries_from_both_ranks(ddp_run: tuple[Path, dict]) -> None:
    _, states = ddp_run
    assert torch.equal(states[0]["gathered"], torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]))
    bank = states[0]["bank"]
    # Each step, each of 2 ranks enqueues BANK_PER_STEP rows for each of 2 domains.
    last_step = int(bank["step"][: int(bank["size"])].max())
    assert last_step == UNTIL - 1
    assert int((bank["step"] == last_step).sum()) == 2 * 2 * BANK_PER_STEP
    assert bank["features"].shape[0] == 2 * 2 * BANK_PER_STEP * 3  # bank_steps = 3


def test_ddp__ranks_draw_disjoint_shards_of_the_global_batch(toy: Path, tmp_path: Path) -> None:
    """Rank r's batch is the r-th slice of what one process with twice the batch draws."""
    config = load_config("toy", _overrides(toy))
    dataset = Trainer(config, tmp_path / "probe").source_set
    whole = next(DataStream(dataset, 4, seed=0, stream=0, start=3))
    shards = [next(DataStream(dataset, 2, 0, 0, start=3, rank=r, world_size=2)) for r in (0, 1)]
    assert [*shards[0].name, *shards[1].name] == list(whole.name)
    assert torch.equal(torch.cat([s.image for s in shards]), whole.image)


def test_ddp__rank_zero_alone_writes_the_run(ddp_run: tuple[Path, dict]) -> None:
    out, _ = ddp_run
    run = load_run(out)
    assert run.status == "interrupted" and sorted(run.checkpoints) == [2, 4]
    assert [r["iteration"] for r in run.records] == list(range(1, UNTIL + 1))
    assert sorted(run.evals) == [3]
    temporaries = [p for p in out.rglob("*") if p.name.startswith(".") or "tmp" in p.name]
    assert temporaries == [out / ".lock"]  # the lock file is never deleted


def test_ddp__resumes_through_the_cli(
    toy: Path, ddp_run: tuple[Path, dict], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    shutil.copytree(ddp_run[0], out)
    result = _torchrun("-m", "rccr", "train", "--config", "toy", "--out", str(out),
                       *_overrides(toy))  # fmt: skip
    assert "DDP: 2 processes x batch 2 = effective batch 4" in result.stdout
    run = load_run(out)
    assert run.status == "finished" and max(run.checkpoints) == ITERATIONS
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == list(range(1, ITERATIONS + 1))
    state = torch.load(run.checkpoints[ITERATIONS], weights_only=True)
    assert state["rank_generators"].shape[0] == 2


def test_ddp__single_process_refuses_a_two_process_checkpoint(
    toy: Path, ddp_run: tuple[Path, dict], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    shutil.copytree(ddp_run[0], out)
    config = load_config("toy", _overrides(toy))
    with pytest.raises(RunError, match=r"written by 2 process\(es\); resume it with the same"):
        Trainer(config, out)


@pytest.mark.parametrize(
    "stray",
    [
        {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29531"},
        {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1",
         "MASTER_PORT": "29532"},
        {"WORLD_SIZE": "2"},
        {"WORLD_SIZE": "two"},
    ],
    ids=["rank 0", "rank 1", "world size only", "not a number"],
)  # fmt: skip
def test_stray_distributed_variables__one_line_error_not_a_wait(
    toy: Path, tmp_path: Path, stray: dict[str, str]
) -> None:
    """WORLD_SIZE and friends left in the environment, without torchrun: no peer will ever
    join, so a plain ``rccr train`` says so at once instead of waiting for them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORCHELASTIC")} | stray
    command = [sys.executable, "-m", "rccr", "train", "--config", "toy", "--out",
               str(tmp_path / "run"), "--no-progress", *_overrides(toy)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=90)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert result.stderr.startswith("error: WORLD_SIZE=") and "torchrun" in result.stderr
