"""The run directory: atomic writes, and a reader that tolerates partial runs."""

from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path

import pytest
import torch

from rccr.config import load_config
from rccr.runs import RunError, RunWriter, load_checkpoint, load_run


def _writer(tmp_path: Path) -> RunWriter:
    writer = RunWriter(tmp_path / "run")
    writer.write_config(load_config("toy"))
    return writer


def test_run__written_and_read_back(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.set_status("running", 0)
    for i in (1, 2, 3):
        writer.log({"iteration": i, "loss": 1.0 / i})
    writer.save_checkpoint(2, {"student": {"w": torch.ones(2)}})
    run = load_run(tmp_path / "run")
    assert run.problems == []
    assert run.config == load_config("toy") and run.status == "running"
    assert [r["iteration"] for r in run.records] == [1, 2, 3]
    assert list(run.checkpoints) == [2] and run.last_checkpoint is not None
    assert load_checkpoint(run.checkpoints[2])["iteration"] == 2


def test_run__metrics_truncated_on_resume(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    for i in range(1, 6):
        writer.log({"iteration": i})
    with open(tmp_path / "run" / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 6, "lo')  # a record cut short by a kill
    writer.truncate_metrics(3)
    assert [r["iteration"] for r in load_run(tmp_path / "run").records] == [1, 2, 3]


def test_load_run__partial_run_lists_problems(tmp_path: Path) -> None:
    root = tmp_path / "run"
    (root / "checkpoints").mkdir(parents=True)
    (root / "metrics.jsonl").write_text('{"iteration": 1}\nnot json\n{"iteration": 3')
    (root / "eval").mkdir()
    (root / "eval" / "iter_5.json").write_text("{}")
    (root / "checkpoints" / ".iter_9.pt.abc.tmp").write_bytes(b"partial")
    run = load_run(root)
    text = "\n".join(run.problems)
    assert f"{root / 'config.yaml'}: missing" in text
    assert f"{root / 'status.json'}: missing" in text
    assert "line 2 malformed" in text and "line 3 malformed (the last line" in text
    assert f"{root / 'eval' / 'iter_5.json'}: malformed evaluation" in text
    assert run.checkpoints == {} and [r["iteration"] for r in run.records] == [1]


def test_load_run__malformed_config_is_a_problem(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    (root / "config.yaml").write_text("train:\n  lrr: 3\n")
    run = load_run(root)
    assert run.config is None
    assert any("config.yaml: malformed: train.lrr: unknown key" in p for p in run.problems)


@pytest.mark.parametrize("what", ["missing", "not a run"])
def test_load_run__not_a_run_is_an_error(tmp_path: Path, what: str) -> None:
    path = tmp_path / "x"
    if what == "not a run":
        path.mkdir()
    with pytest.raises(RunError, match=str(path)):
        load_run(path)


def test_load_checkpoint__refuses_code_payload(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"iteration": 1, "student": Payload()}, f)
    with pytest.raises(RunError, match="not a loadable checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"garbage", None])
def test_load_checkpoint__bad_file_names_it(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "iter_1.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RunError, match=str(path)):
        load_checkpoint(path)


def test_save_checkpoint__failed_write_keeps_previous(tmp_path: Path, monkeypatch) -> None:
    writer = _writer(tmp_path)
    writer.save_checkpoint(1, {"student": {"w": torch.ones(1)}})
    before = (tmp_path / "run" / "checkpoints" / "iter_1.pt").read_bytes()

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        writer.save_checkpoint(1, {"student": {"w": torch.zeros(1)}})
    assert (tmp_path / "run" / "checkpoints" / "iter_1.pt").read_bytes() == before
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["iter_1.pt"]


def test_status__round_trip(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.set_status("interrupted", 40)
    run = load_run(tmp_path / "run")
    assert (run.status, run.iteration) == ("interrupted", 40)
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "interrupted"


def _finished_run(tmp_path: Path) -> Path:
    """A small run written by RunWriter: config, status, three records, an evaluation."""
    from rccr.evaluation import EvalResult

    writer = _writer(tmp_path)
    writer.set_status("finished", 3)
    for i in (1, 2, 3):
        writer.log({"iteration": i, "loss": 1.0})
    confusion = [[1] * 19 for _ in range(19)]
    writer.save_eval(3, EvalResult("cityscapes", "val", "x", 1, confusion, [5.0] * 19,
                                   {"mIoU19": 5.0}))  # fmt: skip
    return tmp_path / "run"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


BAD_FILES = {
    "status: huge number": ("status.json", '{"state": "running", "iteration": 1e400}'),
    "status: huge integer": (
        "status.json",
        '{"state": "running", "iteration": 1' + "0" * 5000 + "}",
    ),
    "status: string iteration": ("status.json", '{"state": "finished", "iteration": "3"}'),
    "status: negative iteration": ("status.json", '{"state": "finished", "iteration": -3}'),
    "status: nested": ("status.json", _nested(100_000)),
    "status: not UTF-8": ("status.json", b'{"state": "fin\xff\xfeished"}'),
    "status: list": ("status.json", "[1, 2]"),
    "config: not UTF-8": ("config.yaml", b"name: \xff\xfe\n"),
    "config: nested": ("config.yaml", "train: " + _nested(100_000)),
    "metrics: not UTF-8": ("metrics.jsonl", b'{"iteration": 1}\n\xff\xfe\n{"iteration": 3}\n'),
    "metrics: nested": ("metrics.jsonl", '{"iteration": 1, "x": ' + _nested(100_000) + "}\n"),
    "metrics: deep but parseable": (
        "metrics.jsonl",
        '{"iteration": 1, "x": ' + _nested(500) + "}\n",
    ),
    "skipped: not UTF-8": ("skipped.jsonl", b"\xff\n"),
    "eval: nested": ("eval/iter_3.json", _nested(100_000)),
    "eval: not UTF-8": ("eval/iter_3.json", b"\xff\xfe"),
    "eval: wrong types": ("eval/iter_3.json", '{"dataset": 1, "iou": "x", "miou": [1]}'),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_load_run__any_file_content_becomes_a_problem(tmp_path: Path, kind: str) -> None:
    root = _finished_run(tmp_path)
    name, content = BAD_FILES[kind]
    data = content if isinstance(content, bytes) else content.encode()
    (root / name).write_bytes(data)
    run = load_run(root)
    assert any(p.startswith(str(root / name)) for p in run.problems), run.problems
    assert all(len(p) < 600 for p in run.problems)


@pytest.mark.parametrize(
    "name", ["status.json", "config.yaml", "metrics.jsonl", "eval/iter_3.json"]
)
def test_load_run__huge_file_is_a_problem_and_not_read(tmp_path: Path, name: str) -> None:
    root = _finished_run(tmp_path)
    with open(root / name, "wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GiB of zeros that take no disk
    run = load_run(root)
    assert any(p.startswith(f"{root / name}: larger than") for p in run.problems), run.problems


@pytest.mark.parametrize("special", ["fifo", "folder", "/dev/zero"])
def test_load_run__a_file_that_is_not_a_regular_file_is_a_problem(
    tmp_path: Path, special: str
) -> None:
    root = _finished_run(tmp_path)
    (root / "config.yaml").unlink()
    if special == "fifo":
        os.mkfifo(root / "config.yaml")  # opening it to read would wait for a writer
    elif special == "folder":
        (root / "config.yaml").mkdir()
    else:
        (root / "config.yaml").symlink_to(special)
    run = load_run(root)
    assert any("config.yaml: not a regular file" in p for p in run.problems), run.problems


@pytest.mark.parametrize(
    ("record", "says"),
    [
        ('{"iteration": "2", "loss": 1}', "iteration must be a non-negative integer"),
        ('{"loss": 1}', "expected an object with 'iteration'"),
        ('{"iteration": -1}', "iteration must be a non-negative integer"),
        ('{"iteration": true}', "iteration must be a non-negative integer"),
        ('{"iteration": 2.0}', "iteration must be a non-negative integer"),
    ],
)
def test_load_run__metrics_record_with_a_bad_iteration_is_a_problem(
    tmp_path: Path, record: str, says: str
) -> None:
    root = _finished_run(tmp_path)
    (root / "metrics.jsonl").write_text(f'{{"iteration": 1}}\n{record}\n{{"iteration": 3}}\n')
    run = load_run(root)
    assert [r["iteration"] for r in run.records] == [1, 3]
    assert any(f"metrics.jsonl: line 2 malformed: {says}" in p for p in run.problems)


@pytest.mark.parametrize(
    ("record", "says"),
    [
        ('{"iteration": "1", "kind": "batch", "batch": 0}', "non-negative integer"),
        ('{"iteration": 1, "kind": "batch"}', "batch must be a non-negative integer"),
        ('{"iteration": 1, "kind": "batch", "batch": "0"}', "batch must be a non-negative"),
        ('{"iteration": 1, "kind": "other"}', "kind must be 'sample' or 'batch'"),
    ],
)
def test_read_skipped__bad_record_is_a_problem(tmp_path: Path, record: str, says: str) -> None:
    from rccr.runs import read_skipped

    root = _finished_run(tmp_path)
    good = '{"iteration": 2, "kind": "batch", "batch": 1, "error": "nan"}'
    (root / "skipped.jsonl").write_text(f"{record}\n{good}\n")
    problems: list[str] = []
    assert [r["batch"] for r in read_skipped(root, problems)] == [1]
    assert len(problems) == 1 and says in problems[0] and "skipped.jsonl: line 1" in problems[0]
    assert any(says in p for p in load_run(root).problems)


def test_truncate_metrics__drops_bad_lines_and_says_so(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    path = tmp_path / "run" / "metrics.jsonl"
    path.write_bytes(b'{"iteration": 1}\n{"iteration": "2"}\n\xff\n{"iteration": 3}\n{"iter')
    problems = writer.truncate_metrics(2)
    assert path.read_text() == '{"iteration": 1}\n'
    assert [p.split(": line ")[1][:1] for p in problems] == ["2", "3"]  # the cut-short last
    assert all(p.startswith(f"{path}: line ") for p in problems)  # line is not a problem


@pytest.mark.parametrize(
    "name",
    ["iter_0006.pt", "iter_06.pt", "iter_\u0669.pt", "iter_\uff16.pt", "iter_6.pt.bak",
     "iter_-6.pt", "iter_6.PT", "iter_6.pt\n", "iter_.pt", "iter_6.json"],
)  # fmt: skip
def test_iteration_files__only_canonical_names_count(tmp_path: Path, name: str) -> None:
    from rccr.runs import iteration_files

    (tmp_path / "iter_6.pt").write_bytes(b"x")
    (tmp_path / "iter_0.pt").write_bytes(b"x")
    (tmp_path / ".iter_7.pt.abc.tmp").write_bytes(b"x")  # a temporary file: never a problem
    (tmp_path / name).write_bytes(b"y")
    problems: list[str] = []
    found = iteration_files(tmp_path, ".pt", problems)
    assert found == {0: tmp_path / "iter_0.pt", 6: tmp_path / "iter_6.pt"}
    assert [p.split(": ")[0] for p in problems] == [str(tmp_path / name)]


def test_load_run__misnamed_run_files_are_listed(tmp_path: Path) -> None:
    root = _finished_run(tmp_path)
    RunWriter(root).save_checkpoint(6, {"student": {"w": torch.ones(1)}})
    (root / "checkpoints" / "iter_0006.pt").write_bytes((root / "checkpoints" / "iter_6.pt")
                                                         .read_bytes())  # fmt: skip
    (root / "eval" / "iter_\u0669.json").write_text("{}")
    run = load_run(root)
    assert list(run.checkpoints) == [6] and list(run.evals) == [3]
    assert any("iter_0006.pt: not named iter_<N>.pt" in p for p in run.problems)
    assert any("iter_\u0669.json: not named iter_<N>.json" in p for p in run.problems)


# status.json: a heartbeat, and a reader that tells a dead run from a running one


def _status(root: Path, **fields: object) -> None:
    """status.json as this process writes it while running, with ``fields`` replaced."""
    RunWriter(root).set_status("running", 5, iterations=10, interval_s=2.0, eta_s=10.0)
    record = json.loads((root / "status.json").read_text()) | fields
    (root / "status.json").write_text(json.dumps(record))


def _gone_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_status__running_process_is_running(tmp_path: Path) -> None:
    root = _finished_run(tmp_path)
    _status(root)
    run = load_run(root)
    assert (run.status, run.iteration) == ("running", 5) and run.problems == []


def test_status__process_gone_on_this_host_is_stale(tmp_path: Path) -> None:
    root = _finished_run(tmp_path)
    _status(root, pid=_gone_pid(), updated=time.time() - 90)
    run = load_run(root)
    assert run.status == "stale" and run.status_text == "stale (last seen 1 min ago)"
    assert any("status.json: says running, but process" in p and "is gone" in p
               for p in run.problems)  # fmt: skip


@pytest.mark.parametrize(("age", "interval", "stale"),
                         [(7200, 2.0, True), (1800, 2.0, False), (5000, 600.0, False),
                          (7 * 86400, 600.0, True)])  # fmt: skip
def test_status__no_update_for_long_is_stale(
    tmp_path: Path, age: float, interval: float, stale: bool
) -> None:
    """On another host the process cannot be looked up: the time since the last update
    decides (more than an hour, and more than 10 log intervals)."""
    root = _finished_run(tmp_path)
    _status(root, host="another-host", updated=time.time() - age, interval_s=interval)
    run = load_run(root)
    assert run.status == ("stale" if stale else "running")
    if stale:
        assert run.status_text.startswith("stale (last seen ") and "ago)" in run.status_text


def test_status__heartbeat_fields_are_written(tmp_path: Path) -> None:
    import socket

    writer = _writer(tmp_path)
    writer.set_status("running", 10, iterations=100, interval_s=4.0, eta_s=36.0)
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["pid"] == os.getpid() and status["host"] == socket.gethostname()
    assert (status["iteration"], status["iterations"], status["eta_s"]) == (10, 100, 36.0)
    assert abs(status["updated"] - time.time()) < 60 and status["interval_s"] == 4.0


# The run lock: one trainer per run folder


def test_lock__second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    import socket

    from rccr.runs import RunLock

    root = tmp_path / "run"
    with RunLock(root):
        with pytest.raises(RunError) as info:
            RunLock(root)
        message = str(info.value)
        assert message.startswith(f"{root}: in use by another trainer")
        assert f"PID {os.getpid()} on {socket.gethostname()}" in message and "\n" not in message
    with RunLock(root):  # released on leaving the block
        pass
    assert (root / ".lock").exists()  # never deleted, so every trainer locks the same file


def test_lock__released_when_the_holder_is_killed(tmp_path: Path) -> None:
    """Also while a child it forked (a DataLoader worker) lives on."""
    import signal
    import subprocess
    import sys

    from rccr.runs import RunLock

    root = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import os, time; from rccr.runs import RunLock; "
         f"lock = RunLock({str(root)!r}); child = os.fork(); "
         "time.sleep(60) if child == 0 else print(child, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    child = int(holder.stdout.readline())
    try:
        with pytest.raises(RunError, match=f"PID {holder.pid} on "):
            RunLock(root)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        os.kill(child, 0)  # the child lives on
        RunLock(root).close()  # and yet the OS released the lock
    finally:
        os.kill(child, signal.SIGKILL)


def test_lock__a_file_in_place_of_the_folder_is_named(tmp_path: Path) -> None:
    from rccr.runs import RunLock

    (tmp_path / "taken").write_text("x")
    with pytest.raises(RunError, match=f"{tmp_path / 'taken'}: not a folder"):
        RunLock(tmp_path / "taken")
