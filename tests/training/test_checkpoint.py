"""rccr.training.checkpoint: what a checkpoint captures and how it is restored, including
the DDP and gradient-scaler parts a single-process CPU run never exercises."""

from __future__ import annotations

import pytest
import torch

from rccr.config import MethodConfig, TrainConfig
from rccr.models import DeepLabV2
from rccr.runs import RunError
from rccr.training.checkpoint import capture, restore
from rccr.training.distributed import World
from rccr.training.method_parts import MethodParts
from rccr.training.optim import build_optimizer


def _parts(seed: int) -> tuple[DeepLabV2, torch.optim.Optimizer, MethodParts]:
    torch.manual_seed(seed)
    student = DeepLabV2(19, backbone="resnet18", width=8, freeze_bn=False)
    config = MethodConfig(embed_dim=8, bank_per_step=4)
    parts = MethodParts.build(student, config, rccr=True, seed=seed)
    heads = [parts.student_head] if parts.student_head is not None else []
    optimizer = build_optimizer(student.param_groups(0.01, heads=heads), TrainConfig())
    return student, optimizer, parts


def _two_rank_state() -> tuple[dict, list[torch.Tensor]]:
    """A checkpoint as two DDP processes write it: one generator state per rank."""
    student, optimizer, parts = _parts(0)
    state = capture(student, optimizer, {}, parts) | {"iteration": 7}
    ranks = [torch.Generator().manual_seed(100 + r).get_state() for r in range(2)]
    state["rank_generators"] = torch.stack(ranks)
    return state, ranks


def test_restore__each_rank_gets_its_own_generator_back() -> None:
    state, ranks = _two_rank_state()
    for rank in (0, 1):
        student, optimizer, parts = _parts(1)
        assert restore(state, student, optimizer, parts, world=World(rank, 2)) == 7
        assert torch.equal(parts.generator.get_state(), ranks[rank])


def test_restore__another_number_of_processes_is_refused_naming_both() -> None:
    state, _ = _two_rank_state()
    student, optimizer, parts = _parts(1)
    with pytest.raises(RunError, match=r"^checkpoint at iteration 7 does not fit this run: the "
                       r"checkpoint was written by 2 process\(es\); resume it with the same "
                       r"number \(1 now\)$"):  # fmt: skip
        restore(state, student, optimizer, parts, world=World())
    single = capture(student, optimizer, {}, parts) | {"iteration": 3}
    with pytest.raises(RunError, match=r"written by 1 process\(es\); .* \(4 now\)"):
        restore(single, student, optimizer, parts, world=World(0, 4))


def test_capture__under_ddp_keeps_every_ranks_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """capture gathers one generator state per rank; with two ranks it keeps both rows."""
    student, optimizer, parts = _parts(0)
    other = torch.Generator().manual_seed(100).get_state()

    def two_ranks(rows: torch.Tensor) -> torch.Tensor:  # rank 0's rows, then rank 1's
        return torch.cat([rows, other[None]])

    monkeypatch.setattr("rccr.training.checkpoint.all_gather_rows", two_ranks)
    state = capture(student, optimizer, {}, parts)
    mine = parts.generator.get_state()
    assert torch.equal(state["rank_generators"], torch.stack([mine, other]))


def test_restore__single_process_generator_comes_from_the_method_state() -> None:
    student, optimizer, parts = _parts(0)
    torch.rand(3, generator=parts.generator)  # the generator has moved on
    state = capture(student, optimizer, {}, parts) | {"iteration": 2}
    assert "rank_generators" not in state
    other_student, other_optimizer, other = _parts(5)
    assert restore(state, other_student, other_optimizer, other, world=World()) == 2
    assert torch.equal(other.generator.get_state(), parts.generator.get_state())


def test_restore__gradient_scaler_state_when_both_sides_have_one() -> None:
    student, optimizer, parts = _parts(0)
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0)
    state = capture(student, optimizer, {}, parts, scaler) | {"iteration": 1}
    assert state["scaler"]["scale"] == 8.0
    fresh = torch.amp.GradScaler("cpu", init_scale=1024.0)
    restore(state, student, optimizer, parts, fresh, world=World())
    assert fresh.get_scale() == 8.0
    without = {k: v for k, v in state.items() if k != "scaler"}  # an fp32 run's checkpoint
    kept = torch.amp.GradScaler("cpu", init_scale=64.0)
    restore(without, student, optimizer, parts, kept, world=World())
    assert kept.get_scale() == 64.0
    restore(state, student, optimizer, parts, None, world=World())  # an fp32 resume: ignored


def test_restore__a_state_of_another_model_is_a_run_error_naming_the_iteration() -> None:
    student, optimizer, parts = _parts(0)
    state = capture(student, optimizer, {}, parts) | {"iteration": 12}
    del state["student"][next(iter(state["student"]))]  # a missing weight
    with pytest.raises(RunError, match=r"^checkpoint at iteration 12 does not fit this run: "):
        restore(state, student, optimizer, parts, world=World())


def test_require_config__names_the_checkpoint_and_what_is_wrong(tmp_path) -> None:
    from rccr.config import load_config
    from rccr.training.checkpoint import require_config

    config = load_config("toy")
    state = {"iteration": 5, "config": {"train": {"lrr": 1}}}
    readable = r"holds no readable config \(train\.lrr: unknown key.*\); cannot check it fits"
    with pytest.raises(RunError, match=rf"^.*/checkpoints/iter_5\.pt: {readable} this run$"):
        require_config(state, config, tmp_path)
    state["config"] = load_config("toy", ["train.lr=0.5"]).to_dict()
    with pytest.raises(RunError) as info:
        require_config(state, config, tmp_path)
    assert str(info.value) == (
        f"{tmp_path / 'checkpoints' / 'iter_5.pt'}: written under another config than "
        f"{tmp_path / 'config.yaml'}: train.lr (0.5 in the checkpoint, 0.01 in config.yaml); "
        "restore config.yaml, or choose another output folder"
    )
    state["config"] = config.to_dict()
    require_config(state, config, tmp_path)  # the same config: nothing to say
