"""rccr.analysis.training_curves: what the Training page plots, from real runs' records."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from tiny_toy import tiny_config

from rccr.analysis.training_curves import QUANTITIES, progress_table, training_long
from rccr.runs import Run
from rccr.training import train


@pytest.mark.parametrize("mode", ["source_only", "dacs", "rccr", "oracle"])
def test_training_long__every_loss_term_a_mode_logs_has_its_label(
    toy: Path, tmp_path: Path, mode: str
) -> None:
    run = train(tiny_config(toy, f"train.mode={mode}", "train.iterations=2"), tmp_path / mode,
                progress=False)  # fmt: skip
    losses = {k for r in run.records for k in r if k.startswith("loss")}
    assert losses and losses <= set(QUANTITIES), losses - set(QUANTITIES)
    table = training_long([run])
    for record in run.records:
        rows = table[table["iteration"] == record["iteration"]].set_index("quantity")["value"]
        for key in losses | {"lr"}:
            assert rows[QUANTITIES[key]] == pytest.approx(record[key])
        assert rows[QUANTITIES["it_per_s"]] == pytest.approx(1 / record["sec_per_iter"])
    has_weight = QUANTITIES["contrast_weight"] in set(table["quantity"])
    assert has_weight == (mode == "rccr")


def _run(records: list[dict], status: str = "running", iterations: int = 100) -> Run:
    config = tiny_config(Path("/toy"), f"train.iterations={iterations}")
    return Run(Path("/runs/r"), config, status, records[-1]["iteration"], None, records)


def test_progress_table__pace_from_the_last_records_and_only_while_running() -> None:
    records = [{"iteration": 10 * k, "time": 1000.0 + 20 * k, "sec_per_iter": 0.5}
               for k in range(1, 6)]  # fmt: skip  # 2 s per iteration, evaluations included
    row = progress_table([_run(records)], now=1100.0).iloc[0]
    assert (row["iteration"], row["of"], row["it/s"]) == (50, 100, 2.0)
    assert row["time left (min)"] == pytest.approx((50 * 2.0 - 0.0) / 60)
    later = progress_table([_run(records)], now=1130.0).iloc[0]  # 30 s since the last record
    assert later["time left (min)"] == pytest.approx((100 - 30) / 60)
    done = progress_table([_run(records, "finished")], now=1100.0).iloc[0]
    assert math.isnan(done["time left (min)"]) and done["status"] == "finished"
    one = progress_table([_run(records[:1])], now=1100.0).iloc[0]
    assert math.isnan(one["time left (min)"])  # no pace from a single record
