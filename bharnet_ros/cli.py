"""The ``bharnet`` command. Subcommands are imported only when chosen, so ``--help`` is instant."""

from __future__ import annotations

import argparse
import importlib
import sys

from bharnet_ros.core.labels import error_line

# name -> (module implementing it, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "bharnet_ros.tools.demo",
        "watch the recognizer on real people (or synthetic gestures, or --video) through the ROS graph",
    ),
    "extract": (
        "bharnet_ros.tools.extract",
        "run the pose stage on videos and write skeleton sequences",
    ),
    "synth": (
        "bharnet_ros.tools.synth",
        "generate synthetic body+hand HRI gesture sequences",
    ),
    "model-report": (
        "bharnet_ros.tools.model_report",
        "count parameters and GFLOPs of every model variant and write docs/model.md",
    ),
    "run": (
        "bharnet_ros.tools.run",
        "start the recognition graph (camera -> pose -> recognizer) in one process",
    ),
    "import": (
        "bharnet_ros.tools.data_import",
        "convert NTU RGB+D, MediaPipe tutorial, PKU-MMD or N-UCLA skeletons, or your own videos, into one "
        "dataset file",
    ),
    "train": (
        "bharnet_ros.tools.train",
        "train a model from a config/train/*.yaml config (key=value overrides, resume, torchrun DDP)",
    ),
    "eval": (
        "bharnet_ros.tools.evaluate",
        "evaluate a checkpoint or ONNX model on a dataset split: accuracies, per-class CSV, confusion",
    ),
    "export": (
        "bharnet_ros.tools.export",
        "export a checkpoint to ONNX with labels and preprocessing, checked against PyTorch",
    ),
    "bench": (
        "bharnet_ros.tools.bench",
        "benchmark models (PyTorch vs ONNX Runtime) and write docs/benchmarks.md",
    ),
    "streams": (
        "bharnet_ros.tools.streams",
        "compose streams of real people's gesture clips and score the recognizer on them",
    ),
    "open-set": (
        "bharnet_ros.tools.open_set",
        "measure how often the recognizer says none on motion outside its vocabulary",
    ),
    "bag": (
        "bharnet_ros.tools.bag",
        "record videos or live topics as rosbag2 bags and evaluate the recognizer on annotated bags",
    ),
    "teach": (
        "bharnet_ros.tools.teach",
        "teach new gestures: record takes, add them to the model in minutes, measure the learning curve",
    ),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """Top-level parser; only the chosen subcommand's module is imported and configured."""
    parser = argparse.ArgumentParser(
        prog="bharnet", description="BHaRNet body+hand skeleton action recognition tools."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sub_parser)
            sub_parser.set_defaults(run=module.run)
    return parser


def parse_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args``, except that a command taking ``key=value`` overrides (it sets
    ``late_overrides``) also takes them after its options (``--out DIR epochs=1``): argparse fills
    the positional ``items`` once, from the words before the options, and would refuse later ones
    with a usage error that does not say why."""
    args, extras = parser.parse_known_args(argv)
    late = getattr(args, "late_overrides", False) and all("=" in w and not w.startswith("-") for w in extras)
    if extras and not late:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    if extras:
        args.items = [*(args.items or []), *extras]
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors become one line on stderr and exit code 2."""
    from bharnet_ros.core.skeleton import SkeletonError
    from bharnet_ros.tools import UsageError

    argv = sys.argv[1:] if argv is None else argv
    try:  # building the parser imports the command's modules: a Ctrl-C may come meanwhile
        parser = build_parser(argv)
        args = parse_arguments(parser, argv)
    except KeyboardInterrupt:
        print(f"bharnet {argv[0] if argv else ''}: interrupted".replace("  ", " "), file=sys.stderr)
        return 130
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    from bharnet_ros.tools import report_doc

    report_doc.ARGUMENTS[:] = argv  # the command a measurement records, whoever called main
    try:
        return int(args.run(args) or 0)
    except (UsageError, SkeletonError, FileNotFoundError) as err:
        print(f"bharnet {args.command}: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except OSError as err:  # a name too long, a folder we may not write, a full disk
        print(f"bharnet {args.command}: error: {one_line(os_problem(err))}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:
        if not err.name or err.name.split(".")[0] == "bharnet_ros":
            raise  # our own module missing is a broken install, not a user's error
        print(f"bharnet {args.command}: error: {missing_module(err.name)}", file=sys.stderr)
        return 2
    except RecursionError:  # JSON, YAML or config overrides nested thousands deep
        print(
            f"bharnet {args.command}: error: an input (a JSON or YAML file, or an override) is nested "
            "too deeply to read; check the files given",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"bharnet {args.command}: interrupted", file=sys.stderr)
        return 130


TRAINING_MODULES = ("torch", "onnx")  # training and export only: a robot installs them apart
ROS_MODULES = ("rclpy", "rosidl_runtime_py", "std_msgs", "sensor_msgs", "diagnostic_msgs", "lifecycle_msgs")


def missing_module(name: str) -> str:
    """What is missing and how to install it, for a command that imported a module not installed."""
    top = name.split(".")[0]
    if top in TRAINING_MODULES:
        fix = "training, export and the model tools need it: pip install -r requirements-training.txt"
    elif top in ROS_MODULES:
        fix = "source your ROS 2 install's setup file, or run `make setup` for this project's venv"
    else:
        fix = "pip install -r requirements-runtime.txt (or `make setup`)"
    return f"the Python module {top} is not installed; {fix}"


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped: a file name holding a
    newline or a terminal escape must not split the error, or forge a line of its own."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def os_problem(err: OSError) -> str:
    """One line for an error of the operating system: the file it concerns, shortened, and why."""
    if err.filename is None or err.strerror is None:
        return error_line(err, 300)
    name = str(err.filename)
    shown = name if len(name) <= 120 else f"{name[:60]}...{name[-40:]}"
    return f"{shown}: {err.strerror}"


if __name__ == "__main__":
    sys.exit(main())
