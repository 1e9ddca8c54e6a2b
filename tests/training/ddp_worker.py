"""Run by ``torchrun`` in tests/train/test_distributed.py: train, then dump this rank's state.

Usage: ``torchrun --nproc_per_node=2 ddp_worker.py OUT_DIR DUMP_DIR UNTIL key=value ...``
(UNTIL: stop after this iteration, leaving the run resumable; 0 trains to the end).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from rccr.config import load_config
from rccr.training import Trainer, distributed


def main() -> None:
    out, dump, until, overrides = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    trainer = Trainer(load_config("toy", overrides), out)
    trainer.run(progress=False, until=until or None)
    rank = trainer.world.rank
    state = {
        "world_size": trainer.world.size,
        "student": trainer.student.state_dict(),
        "gathered": distributed.all_gather_rows(torch.full((rank + 1, 2), float(rank))),
    }
    if trainer.method is not None:
        state["teacher"] = trainer.method.teacher.state_dict()
        if trainer.method.teacher_head is not None:
            state["teacher_head"] = trainer.method.teacher_head.state_dict()
        if trainer.method.bank is not None:
            state["bank"] = trainer.method.bank.state_dict()
        state["generator"] = trainer.method.generator.get_state()
    dump.mkdir(parents=True, exist_ok=True)
    torch.save(state, dump / f"rank{rank}.pt")
    distributed.close_world()


if __name__ == "__main__":
    main()
