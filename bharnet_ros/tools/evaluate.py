"""``bharnet eval``: accuracy of a checkpoint or an ONNX model on a dataset split.

``bharnet eval MODEL DATASET [--split NAME] [--with MODEL ...] --out DIR`` writes summary.json,
per_class.csv, predictions.csv and confusion.png (see ``bharnet_ros.training.evaluate``) and
prints the summary. A non-empty DIR needs ``--force``, which replaces those files only.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bharnet_ros.tools import UsageError, check_count
from bharnet_ros.tools.outputs import check_output_folder, output_option, staged_folder
from bharnet_ros.training.dataset import DatasetError, SkeletonDataset

if TYPE_CHECKING:
    from bharnet_ros.training.evaluate import ModelUnderTest

MOST_VIEWS = 100  # windows per clip: each is a full pass over the data, and 100 already overlap closely
MOST_MEMBERS = 16  # models averaged with --with: each is a full pass, and each is held in memory
MOST_BATCH = 4096  # clips per batch of a checkpoint: larger only runs out of memory


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="checkpoint (.pt) or exported model (.onnx)")
    parser.add_argument("dataset", type=Path, help="dataset .npz or `bharnet synth` folder")
    parser.add_argument("--split", help="split to evaluate (default: every sample)")
    parser.add_argument(
        "--subjects", metavar="S1,S2", help="evaluate only these people (e.g. the held-out ones)"
    )
    parser.add_argument(
        "--known-only", action="store_true",
        help="leave out samples of classes the model does not know (they are counted and named)",
    )  # fmt: skip
    parser.add_argument(
        "--with", dest="members", type=Path, nargs="+", default=[], metavar="MODEL",
        help="average these models' logits with MODEL's (an ensemble; same classes, any preprocessing)",
    )  # fmt: skip
    parser.add_argument("--out", type=output_option, required=True, help="output folder")
    parser.add_argument("--force", action="store_true", help="replace the report files in a non-empty --out")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size for checkpoints (default 32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--views", type=int, default=1, metavar="N",
        help="windows per clip, logits averaged (time-window models; default 1: the centre)",
    )  # fmt: skip
    parser.add_argument(
        "--causal-hands", action="store_true",
        help="fill hand gaps only from frames up to each window's end, as the live node can",
    )  # fmt: skip


def format_summary(values: dict) -> str:
    """A few readable lines of the summary."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.2f} %"

    lines = [f"ensemble of {1 + len(values['ensemble_with'])} models"] if values["ensemble_with"] else []
    lines += [
        f"samples {values['num_samples']}: top-1 {pct(values['top1'])}, top-5 {pct(values['top5'])}, "
        f"mean-class {pct(values['mean_class'])}"
    ]
    if values["hand_intensive_samples"]:
        count = values["hand_intensive_samples"]
        lines.append(f"hand-intensive classes ({count} samples): {pct(values['hand_intensive'])}")
    for name, value in values["branches_top1"].items():
        lines.append(f"branch {name}: top-1 {pct(value)}")
    for attribute, groups in values.get("groups", {}).items():
        parts = [f"{value} {pct(row['top1'])} ({row['samples']})" for value, row in groups.items()]
        lines.append(f"by {attribute}: " + ", ".join(parts))
    return "\n".join(lines)


def subject_list(args: argparse.Namespace) -> list[str] | None:
    """The people ``--subjects`` names (None where it is not given)."""
    return None if args.subjects is None else [s.strip() for s in args.subjects.split(",") if s.strip()]


def select_for_eval(
    data: SkeletonDataset, labels: list[str], args: argparse.Namespace
) -> tuple[SkeletonDataset, dict[str, int]]:
    """The samples to evaluate (``--subjects`` only, known classes only with ``--known-only``), and
    the samples left out per class the model does not know."""
    from bharnet_ros.training.data import known_classes_only, subject_mask

    subjects = subject_list(args)
    if subjects is not None:  # "" (an unset shell variable) must not mean everyone
        if not subjects:
            raise UsageError(f"--subjects {args.subjects!r} names nobody; give people such as S1,S2")
        data = data.subset(np.flatnonzero(subject_mask(data, subjects)))
    left_out: dict[str, int] = {}
    if args.known_only:
        data, left_out = known_classes_only(data, labels)
        if left_out:
            print(
                f"left out {sum(left_out.values())} samples of {', '.join(left_out)} "
                "(classes the model does not know)"
            )
    if not len(data):
        raise UsageError("no samples left to evaluate; check --split, --subjects and the classes")
    return data, left_out


def check_model_fits(model: ModelUnderTest, data: SkeletonDataset, args: argparse.Namespace) -> None:
    """Preprocess one sample for the model before the long run, so a model built for another
    skeleton layout (e.g. mediapipe33 against NTU data) or trained in another coordinate space is
    a one-line error, not a traceback."""
    from bharnet_ros.core.preprocess import preprocess_arrays
    from bharnet_ros.training.feeder import check_samples

    check_samples(data)  # first: an empty or absurd sample 0 must not read as a layout problem
    sample = data.sample(0)
    persons = min(len(sample.body), model.preprocess.num_persons)
    try:
        preprocess_arrays(
            sample.body[:persons], sample.hands[0], sample.hand_present[0], data.layout, data.space,
            model.preprocess, sample.image_size,
        )  # fmt: skip
    except ValueError as err:
        raise UsageError(
            f"{model.path} does not fit {args.dataset}: {err}; evaluate it on data of its own layout and "
            "space"
        ) from None


def check_views(models: list[ModelUnderTest], views: int) -> None:
    """``--views N`` averages N windows of a time-window model (``preprocess.window_seconds`` > 0);
    a frame-count model crops each clip once. Refused where no model has time windows (the option
    would change nothing), named where only some have them."""
    if views <= 1:
        return
    cropped = [m for m in models if m.preprocess.window_seconds <= 0]
    if len(cropped) == len(models):
        raise UsageError(
            f"--views {views} needs a time-window model (preprocess.window_seconds > 0), but "
            f"{models[0].path} crops each clip by frame count and is scored once; leave out --views"
        )
    for model in cropped:
        print(f"note: {model.path} crops each clip by frame count: one view, not {views}")


def settings(args: argparse.Namespace, left_out: dict[str, int]) -> dict[str, Any]:
    """The options that chose and scored the samples, and the samples ``--known-only`` left out per
    class, for summary.json."""
    return {
        "subjects": subject_list(args),
        "known_only": args.known_only,
        "left_out": left_out,
        "views": args.views,
        "causal_hands": args.causal_hands,
    }


def run(args: argparse.Namespace) -> int:
    from bharnet_ros.core.inference import InferenceError
    from bharnet_ros.model.checkpoint import CheckpointError
    from bharnet_ros.training.data import load_datasets
    from bharnet_ros.training.evaluate import (
        OUTPUT_FILES,
        check_ensemble,
        evaluate,
        open_model,
        write_outputs,
    )
    from bharnet_ros.training.train import ConfigError, memory_problem

    check_count("--batch-size", args.batch_size, 1, MOST_BATCH)
    check_count("--views", args.views, 1, MOST_VIEWS)
    check_count("the number of --with models", len(args.members), 0, MOST_MEMBERS)
    seen: list[Path] = []
    for path in (args.model, *args.members):
        if not path.exists():
            raise UsageError(f"model {path} not found; give a checkpoint (.pt) or an exported .onnx")
        if any(os.path.samefile(path, other) for other in seen):  # one model twice weighs it double
            raise UsageError(f"{path} is given twice (MODEL and --with); give each model once")
        seen.append(path)
    check_output_folder(args.out, [args.model, *args.members, args.dataset], args.force, writes=OUTPUT_FILES)
    try:
        model = open_model(args.model)
        members = [open_model(path) for path in args.members]
        try:
            check_ensemble(model, members)
        except ValueError as err:
            raise UsageError(f"{err}; check the models given to --with") from None
        check_views([model, *members], args.views)
        data, left_out = select_for_eval(load_datasets([args.dataset], args.split), model.labels, args)
        for each in (model, *members):
            check_model_fits(each, data, args)
        result = evaluate(
            model, data, args.batch_size, progress=not args.no_progress, views=args.views,
            causal_hands=args.causal_hands, members=members,
        )  # fmt: skip
    except (ConfigError, DatasetError, CheckpointError, InferenceError) as err:
        raise UsageError(str(err)) from None
    except (RuntimeError, MemoryError) as err:
        if (amount := memory_problem(err)) is None:
            raise
        raise UsageError(f"the evaluation ran out of memory ({amount}); lower --batch-size") from None
    with staged_folder(args.out) as staged:
        values = write_outputs(
            staged, result, model, data, str(args.dataset), args.split, settings(args, left_out)
        )
    print(format_summary(values))
    print(f"wrote {args.out}/{', '.join(OUTPUT_FILES)}")
    return 0
