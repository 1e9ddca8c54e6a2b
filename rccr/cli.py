"""The ``rccr`` command.

::

    rccr train --config PRESET_OR_FILE [key=value ...] [--out DIR]
    rccr config show PRESET_OR_FILE [key=value ...]
    rccr eval --run DIR [--checkpoint N|last]
    rccr predict --run DIR [--checkpoint N|last] [--compare DIR] IMAGE... --out DIR
    rccr data prepare {cityscapes,gta5,synthia} --root DIR [--workers N] [--list FILE]
    rccr data make-toy --out DIR [--seed S] [--num-source N] [--size 256x128] ...
    rccr demo [--data DIR] [--runs DIR]
    rccr dashboard --runs DIR [--host 127.0.0.1] [--port 8501]

Errors in the user's input (a missing folder, a bad file, a bad option) print one line per
problem and exit with status 2; ``--debug`` shows the traceback instead. ``rccr train``
exits with status 0 when the run finished and 3 when it was interrupted (Ctrl-C, SIGTERM)
after saving a checkpoint, so that a scheduler can tell the two apart and run it again.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rccr.config import MODES, PRESETS, load_config
from rccr.data.files import DataError, MissingData
from rccr.data.prepare import DATASETS, PrepareError, prepare_dataset
from rccr.data.toycity import ToyCitySpec, make_toy_city
from rccr.data.transforms import Size

__all__ = ["EXIT_INTERRUPTED", "main"]

EXIT_INTERRUPTED = 3
"""``rccr train``'s exit status when a signal stopped the run after a checkpoint."""

_DEFAULT_TOY = ToyCitySpec()

_DATA_HINT = (
    "Make the toy city (the toy preset's data) with `rccr data make-toy --out data/toy`, or "
    "prepare a real dataset with `rccr data prepare {gta5,synthia,cityscapes} --root DIR` "
    "and point data.source_root / data.target_root at it (README 'Real datasets')"
)


def _size(text: str) -> Size:
    try:
        return Size.parse(text)
    except ValueError as exc:  # argparse shows an ArgumentTypeError's own message
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _add_make_toy(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "make-toy",
        help="generate the toy-city benchmark (GTA5-layout source, Cityscapes-layout target)",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (created)")
    p.add_argument("--seed", type=int, default=_DEFAULT_TOY.seed)
    p.add_argument("--num-source", type=int, default=_DEFAULT_TOY.num_source)
    p.add_argument("--num-target-train", type=int, default=_DEFAULT_TOY.num_target_train)
    p.add_argument("--num-target-val", type=int, default=_DEFAULT_TOY.num_target_val)
    p.add_argument(
        "--size",
        type=_size,
        default=Size(_DEFAULT_TOY.width, _DEFAULT_TOY.height),
        help="image size WIDTHxHEIGHT (default %(default)s)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_make_toy)


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare", help="check a dataset, write *_labelTrainIds.png and class_stats.json"
    )
    p.add_argument("dataset", choices=sorted(DATASETS))
    p.add_argument("--root", required=True, type=Path, help="the dataset's root folder")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument(
        "--list",
        dest="list_file",
        type=Path,
        default=None,
        help="prepare only the images named in this file (paths under the image folder; "
        "for Cityscapes starting with the split, e.g. train/aachen/..._leftImg8bit.png)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_prepare)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rccr", description="RCCR workbench: domain-adaptive semantic segmentation"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="prepare real datasets or generate the toy city")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    _add_prepare(data_commands)
    _add_make_toy(data_commands)

    train = commands.add_parser(
        "train",
        help="train (or resume) a run",
        description=(
            "Train a run, or resume it from its newest checkpoint. What is trained is "
            f"train.mode: {', '.join(MODES)} (e.g. train.mode=dacs). `rccr config show "
            "PRESET` prints every key of a preset with its value and meaning."
        ),
        epilog=f"exit status: 0 finished, {EXIT_INTERRUPTED} interrupted (Ctrl-C or SIGTERM; "
        "a checkpoint was saved: the same command resumes), 2 an error, named on stderr",
    )
    train.add_argument("--config", required=True, help=f"preset ({', '.join(PRESETS)}) or YAML")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. train.lr=1e-3")
    out_help = "run directory (default runs/<name>-<mode>, e.g. runs/toy-rccr)"
    train.add_argument("--out", type=Path, default=None, help=out_help)
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=_run_train)

    config = commands.add_parser("config", help="show a preset's keys, values and meanings")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser(
        "show", help="print every key of a preset or config file with its value and meaning"
    )
    show.add_argument("config", metavar="PRESET_OR_FILE", help=f"{', '.join(PRESETS)} or YAML")
    show.add_argument("overrides", nargs="*", metavar="key=value", help="applied first")
    show.set_defaults(func=_run_config_show)

    evaluate = commands.add_parser("eval", help="evaluate a run's checkpoint on target val")
    evaluate.add_argument("--run", required=True, type=Path, help="run directory")
    evaluate.add_argument("--checkpoint", default="last", help="iteration N, or 'last'")
    evaluate.add_argument("--device", default="cpu", help="cpu or cuda")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=_run_eval)

    predict = commands.add_parser(
        "predict", help="predict the classes of any images with a run's checkpoint"
    )
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files")
    predict.add_argument("--run", required=True, type=Path, help="run directory")
    predict.add_argument("--checkpoint", default="last", help="iteration N, or 'last'")
    predict.add_argument("--compare", type=Path, default=None,
                         help="a second run directory, shown beside the first")  # fmt: skip
    predict.add_argument("--compare-checkpoint", default="last", help="its iteration, or 'last'")
    predict.add_argument("--out", required=True, type=Path, help="folder for the pictures")
    predict.add_argument("--device", default="cpu", help="cpu or cuda")
    predict.set_defaults(func=_run_predict)

    demo = commands.add_parser(
        "demo", help="the toy benchmark end to end: generate, prepare, train, evaluate"
    )
    demo.add_argument("--data", type=Path, default=Path("data/toy"), help="toy-city folder")
    demo.add_argument("--runs", type=Path, default=Path("runs"), help="runs folder")
    demo.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    demo.set_defaults(func=_run_demo)

    dashboard = commands.add_parser("dashboard", help="serve the Streamlit dashboard over runs")
    dashboard.add_argument("--runs", required=True, type=Path, help="folder of run directories")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to bind (%(default)s)")
    dashboard.add_argument("--port", type=int, default=8501, help="port (%(default)s)")
    dashboard.set_defaults(func=_run_dashboard)
    return parser


def _run_make_toy(args: argparse.Namespace) -> None:
    spec = ToyCitySpec(
        num_source=args.num_source,
        num_target_train=args.num_target_train,
        num_target_val=args.num_target_val,
        width=args.size.width,
        height=args.size.height,
        seed=args.seed,
    )
    summary = make_toy_city(args.out, spec, workers=args.workers, progress=not args.no_progress)
    print(summary)


def _run_prepare(args: argparse.Namespace) -> None:
    summary = prepare_dataset(
        args.dataset,
        args.root,
        workers=args.workers,
        list_file=args.list_file,
        progress=not args.no_progress,
    )
    print(summary)


def _run_train(args: argparse.Namespace) -> int:
    from rccr.training import train
    from rccr.training.distributed import close_world

    config = load_config(args.config, args.overrides)
    try:
        run = train(config, args.out, progress=not args.no_progress)
    except MissingData as exc:
        raise MissingData(f"{exc}. {_DATA_HINT}") from exc
    finally:
        close_world()  # under torchrun: leave the process group before the process exits
    print(f"{run.path}: {run.status} at iteration {run.iteration}")
    if run.evals:
        print(run.evals[max(run.evals)].format_table())
    return EXIT_INTERRUPTED if run.status == "interrupted" else 0


def _run_config_show(args: argparse.Namespace) -> None:
    from rccr.config_help import explain_config

    print(explain_config(load_config(args.config, args.overrides)))


def _checkpoint(text: str, option: str = "--checkpoint") -> int | None:
    """An iteration, or None for 'last'."""
    if text == "last":
        return None
    if text.isascii() and text.isdigit():
        return int(text)
    raise ValueError(f"{option} {text!r}: expected an iteration or 'last'")


def _run_eval(args: argparse.Namespace) -> None:
    from rccr.analysis.checkpoints import evaluate_checkpoint
    from rccr.runs import RunWriter

    wanted = _checkpoint(args.checkpoint)
    iteration, result = evaluate_checkpoint(
        args.run, wanted, device=args.device, progress=not args.no_progress
    )
    path = RunWriter(args.run).save_eval(iteration, result)
    print(f"checkpoint iter_{iteration} ({path}):")
    print(result.format_table())


def _run_predict(args: argparse.Namespace) -> None:
    from rccr.analysis.checkpoints import load_models
    from rccr.analysis.prediction import load_image, predict_labels
    from rccr.data.files import encode_png, write_atomic
    from rccr.viz.prediction_pictures import prediction_picture

    runs = [(args.run, _checkpoint(args.checkpoint))]
    if args.compare is not None:
        runs.append((args.compare, _checkpoint(args.compare_checkpoint, "--compare-checkpoint")))
    models = [load_models(run, iteration, device=args.device) for run, iteration in runs]
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        image = load_image(path)
        predictions = [
            (f"{run.name} iter_{m.iteration}",
             predict_labels(m.student, image, m.config.data.val_size).numpy())
            for (run, _), m in zip(runs, models, strict=True)
        ]  # fmt: skip
        picture = prediction_picture(image, path.name, predictions)
        target = args.out / f"{path.stem}_prediction.png"
        write_atomic(target, encode_png(picture))
        print(f"{path} -> {target}")


def _run_demo(args: argparse.Namespace) -> None:
    from rccr.training import train

    toy = make_toy_city(args.data, ToyCitySpec(), workers=args.workers)
    print(toy)
    for dataset, root in (("gta5", toy.gta5_root), ("cityscapes", toy.cityscapes_root)):
        print(prepare_dataset(dataset, root, workers=args.workers))
    config = load_config(
        "toy", [f"data.source_root={toy.gta5_root}", f"data.target_root={toy.cityscapes_root}"]
    )
    run = train(config, args.runs / "toy-source-only")
    print(f"{run.path}: {run.status} at iteration {run.iteration}")
    if run.evals:
        last = max(run.evals)
        print(f"target val, last checkpoint (iter_{last}), no selection on target labels:")
        print(run.evals[last].format_table())


def _run_dashboard(args: argparse.Namespace) -> None:
    # dashboard/ sits beside the package in a source checkout; a wheel does not ship it.
    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    if not app.is_file():
        raise RuntimeError(
            f"{app}: not found; the dashboard runs from a source checkout "
            "(git clone the repository, then pip install -e '.[dashboard]')"
        )
    if importlib.util.find_spec("streamlit") is None:
        raise RuntimeError("streamlit is not installed: pip install 'rccr[dashboard]'")
    if not args.runs.is_dir():
        raise ValueError(f"--runs {args.runs}: folder not found (train a run into it first)")
    command = [sys.executable, "-m", "streamlit", "run", str(app)]
    command += ["--server.address", args.host, "--server.port", str(args.port)]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    command += ["--client.toolbarMode", "minimal"]  # no "Deploy" menu for a local tool
    env = {**os.environ, "RCCR_RUNS_ROOT": str(args.runs.resolve())}
    print(f"dashboard: http://{args.host}:{args.port}  (runs: {args.runs}; Ctrl-C stops it)")
    sys.stdout.flush()
    os.execve(sys.executable, command, env)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        status = args.func(args)
    except PrepareError as exc:
        if args.debug:
            raise
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"error: {len(exc.problems)} problems; nothing was written", file=sys.stderr)
        return 2
    except (DataError, ValueError, OSError, RuntimeError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
