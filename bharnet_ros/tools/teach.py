"""``bharnet teach``: teach the robot new gestures from its own camera (docs/teaching.md).

* ``record -o takes.npz --subject NAME``: record takes of new gestures. Live from the running
  graph's ``bharnet/skeletons`` (default), or from ``--video`` or ``--bag``. With ``--gestures`` it
  prompts for each take with a countdown and shows its length and hand presence, so a bad take is
  recorded again; with ``--labels`` (start, end, label per take) it cuts a recorded video or bag
  without asking. Takes are trimmed to the motion on the pose stage's stamps; flagged takes (no
  person, too short, no hands in a hand gesture) are never kept.
* ``train TAKES... -o model.onnx``: the base model (a checkpoint) with the new gestures added (or
  replacing its vocabulary), its old classes rehearsed with its own training data; exported with
  a parity check and written with its checkpoint (``model.pt``) beside it.
* ``curve --out DIR``: the learning curve of docs/teaching.md on real people.

The recording and training code is in ``training/teach_record.py``, ``teach_takes.py``,
``teach.py`` and ``teach_curve.py``; the live source in ``nodes/teach_live.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bharnet_ros.tools import UsageError, check_count, check_number, check_seed
from bharnet_ros.tools.outputs import (
    atomic_file,
    check_output_file,
    check_output_folder,
    output_option,
    staged_folder,
)

if TYPE_CHECKING:  # torch-free at import time: only the chosen action loads training code
    from bharnet_ros.core.annotations import Annotations
    from bharnet_ros.training.data import TrainingData
    from bharnet_ros.training.dataset import SkeletonDataset
    from bharnet_ros.training.teach import TeachResult
    from bharnet_ros.training.teach_record import Recording
    from bharnet_ros.training.teach_takes import Take, TrimSettings

DEFAULT_BASE = "models/bharnet_e.pt"  # the default model's checkpoint, where it ships
FULL_MODEL = "models/bharnet_e.onnx"  # its export with all four branches (``--full``)
DEFAULT_RECIPE = "config/train/real_cpu.yaml"  # its training data: rehearsal for the shipped base
LONGEST_SECONDS = 600.0  # any duration of `record` (take, wait, trim): ten minutes is far beyond a gesture
LONGEST_COUNTDOWN = 60  # seconds counted down before a take
MOST_TAKES = 100  # takes per gesture in one interactive session
MOST_VIEWS = 100  # augmented windows per take (default 6): more only costs time
MOST_STEPS = 100_000  # optimiser steps on the features (default 300)
MOST_EPOCHS = 1000  # fine-tune epochs on a few takes
MOST_DRAWS = 100  # random choices of takes per point of the curve
CURVE_GROUPS = 50  # groups of teachers per --teachers value by default (CurvePlan.groups)
MOST_GROUPS = 1000  # of them: a fit takes about 0.7 s on 2 cores, so 12 minutes per draw and --takes value
MOST_DISTILL = 100.0  # weight of the fine-tune's distillation (beyond it the takes teach nothing)
REHEARSAL_VIEWS = 4  # augmented windows rehearsed per sample (TeachSettings.rehearsal_views)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``teach`` actions, each with its own options."""
    actions = parser.add_subparsers(dest="teach_command", metavar="ACTION", required=True)
    _add_record(actions.add_parser("record", help="record takes of new gestures (live, video or bag)"))
    _add_train(actions.add_parser("train", help="add the recorded gestures to the model and export it"))
    _add_curve(actions.add_parser("curve", help="measure the learning curve on real people"))
    _add_swap(actions.add_parser("swap", help="load a model into the running recognizer (hot swap)"))


def run(args: argparse.Namespace) -> int:
    return args.teach_run(args)


def names(text: str) -> list[str]:
    """A comma-separated list (argparse type)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def counts(text: str) -> list[int]:
    """Comma-separated positive integers (argparse type)."""
    try:
        values = [int(value) for value in names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of whole numbers such as 1,3,5") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give positive whole numbers such as 1,3,5")
    return values


# --------------------------------------------------------------------------------------------------
# swap
# --------------------------------------------------------------------------------------------------


def _add_swap(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the exported model (.onnx) to load")
    parser.add_argument(
        "--node", default="/recognizer", help="the recognizer's full name (default /recognizer)"
    )
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the node (default 10)")
    parser.set_defaults(teach_run=run_swap)


def run_swap(args: argparse.Namespace) -> int:
    """``ros2 param set <node> model <file>`` for a venv without the ROS 2 command line: the node
    checks the file and answers; a model it refuses leaves the old one running."""
    from bharnet_ros.nodes.teach_live import full_node_name, set_model
    from bharnet_ros.tools.bag import check_input_file

    check_number("--wait", args.wait, 0.1, 600.0, "seconds")
    check_input_file(args.model, "model")
    try:
        node = full_node_name(args.node)
    except ValueError as err:
        raise UsageError(
            f"--node {args.node!r} names no node ({err}); give one such as /recognizer"
        ) from None
    path = str(args.model.resolve())  # the node may run in another folder
    try:
        took, reason = set_model(path, node, args.wait)
    except RuntimeError as err:
        raise UsageError(str(err)) from None
    if not took:
        raise UsageError(f"{node} refused {path}: {reason}")
    print(f"{node} now runs {path}")
    return 0


# --------------------------------------------------------------------------------------------------
# record
# --------------------------------------------------------------------------------------------------


def _add_record(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--video", type=Path, help="a video file instead of the live graph")
    source.add_argument("--bag", type=Path, help="a bag (skeleton or camera topic) instead of the live graph")
    parser.add_argument(
        "--topic", default=None,
        help="live: the skeleton topic (default bharnet/skeletons); bag: the topic to read",
    )  # fmt: skip
    parser.add_argument(
        "-o", "--output", type=output_option, required=True, help="dataset file to write (.npz)"
    )
    parser.add_argument("--subject", required=True, help="who performs (stored as the subject attribute)")
    parser.add_argument(
        "--gestures", type=names, default=[], help="interactive: gesture names, e.g. follow_me,stop"
    )
    parser.add_argument("--labels", type=Path, help="headless: start,end,label per take (.csv or .yaml)")
    parser.add_argument("--takes", type=int, default=5, help="interactive: takes per gesture (default 5)")
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="interactive: seconds per take (default 3)"
    )
    parser.add_argument("--countdown", type=int, default=3, help="interactive: countdown seconds (default 3)")
    parser.add_argument(
        "--hand-gestures", type=names, default=[], metavar="NAMES",
        help="gestures made with the hands: a take without hands is flagged",
    )  # fmt: skip
    parser.add_argument(
        "--trim", choices=("motion", "fixed", "none"), default="motion", help="default motion"
    )
    parser.add_argument("--trim-seconds", type=float, default=2.0, help="--trim fixed: window length")
    parser.add_argument("--min-seconds", type=float, default=0.5, help="shorter takes are flagged")
    parser.add_argument("--backend", default="holistic", help="pose stage for videos and camera bags")
    parser.add_argument("--wait", type=float, default=10.0, help="live: seconds to wait for the pose node")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.set_defaults(teach_run=run_record)


def run_record(args: argparse.Namespace) -> int:
    """Record, print each take, write the kept ones; exit code 1 when flagged takes were skipped."""
    from bharnet_ros.core.annotations import AnnotationError, load_annotations
    from bharnet_ros.core.bag import BagError
    from bharnet_ros.core.video import VideoError
    from bharnet_ros.training.teach_takes import TrimSettings

    _check_record_options(args)
    output = check_output_file(args.output, [args.video, args.bag, args.labels], args.force, suffix=".npz")
    try:
        settings = TrimSettings(args.trim, args.trim_seconds, min_seconds=args.min_seconds)
        annotations = load_annotations(args.labels) if args.labels else None
        if annotations:
            labels = list(dict.fromkeys(segment.label for segment in annotations.segments))
            _check_unique(f"--labels {args.labels}", labels)  # Wave and wave: one gesture
            _check_hand_gestures(args.hand_gestures, labels, str(args.labels))
        takes = (
            _headless_takes(args, settings, annotations)
            if annotations
            else _interactive_takes(args, settings)
        )
    except (AnnotationError, BagError, VideoError, ValueError) as err:
        raise UsageError(str(err)) from None
    return _write_takes(takes, args, output)


def _check_record_options(args: argparse.Namespace) -> None:
    """Refuse option mistakes before the pose stage runs; strips --subject."""
    from bharnet_ros.core.labels import MAX_LABEL_LENGTH, plain_label, shown

    if args.labels and not (args.video or args.bag):
        raise UsageError("--labels cuts a recording: give it with --video or --bag")
    if not args.labels and not args.gestures:
        raise UsageError("name the gestures to record (--gestures follow_me,stop) or give --labels")
    if args.labels and args.gestures:
        raise UsageError("--labels names the gestures of its takes; drop --gestures (it is for prompts)")
    if args.video and args.topic:
        raise UsageError("--topic names a live or bag topic; drop it with --video")
    _check_unique("--gestures", args.gestures)
    if args.gestures:
        _check_hand_gestures(args.hand_gestures, args.gestures, "--gestures")
    check_count("--takes", args.takes, 1, MOST_TAKES)
    check_count("--countdown", args.countdown, 0, LONGEST_COUNTDOWN)
    _check_seconds("--seconds", args.seconds, positive=True)
    if not args.subject.strip():
        raise UsageError("--subject is empty; name who performs the takes, e.g. --subject alice")
    args.subject = args.subject.strip()
    if not plain_label(args.subject):
        raise UsageError(
            f"--subject {shown(args.subject)} is not printable text of at most {MAX_LABEL_LENGTH} characters"
        )
    _check_seconds("--trim-seconds", args.trim_seconds, positive=True)
    _check_seconds("--min-seconds", args.min_seconds)
    _check_seconds("--wait", args.wait)
    _check_take_length(args)
    _check_source(args)


def _check_take_length(args: argparse.Namespace) -> None:
    """--min-seconds must fit in a take, else every take is flagged "too short"."""
    longest = [("--seconds", args.seconds)] if args.gestures else []
    if args.trim == "fixed":
        longest.append(("--trim-seconds", args.trim_seconds))
    for flag, seconds in longest:
        if args.min_seconds >= seconds:
            raise UsageError(
                f"--min-seconds {args.min_seconds:g} is not shorter than {flag} {seconds:g}, so every take "
                f"would be flagged too short; lower --min-seconds or raise {flag}"
            )


def _check_seconds(flag: str, value: float, positive: bool = False) -> None:
    """A finite number of seconds, not negative (or positive), at most LONGEST_SECONDS; nan would
    switch a check off silently and a huge value would wait or record for ever."""
    if not math.isfinite(value) or value < 0 or (positive and value == 0) or value > LONGEST_SECONDS:
        least = "above 0" if positive else "0 or more"
        raise UsageError(
            f"{flag} must be a finite number of seconds, {least} and at most {LONGEST_SECONDS:g} "
            f"(not {value:g})"
        )


def _check_unique(flag: str, gestures: list[str]) -> None:
    """Each name once (a repeated gesture would record twice under one name, one set of takes
    overwriting the other's numbers), and each one a name an Action can carry."""
    from bharnet_ros.core.labels import MAX_LABEL_LENGTH, plain_label, shown
    from bharnet_ros.training.classes import same_words

    repeated = sorted({name for name in gestures if gestures.count(name) > 1})
    if repeated:
        raise UsageError(f"{flag} names {', '.join(repeated)} more than once; give each gesture once")
    if pair := same_words(gestures):
        raise UsageError(f"{flag} names {pair[0]} and {pair[1]}, one gesture by their words; give one name")
    odd = [name for name in gestures if not plain_label(name)]
    if odd:
        raise UsageError(
            f"{flag}: gesture name {shown(odd[0])} is not printable text of 1 to {MAX_LABEL_LENGTH} letters"
        )


def _check_hand_gestures(hand_gestures: list[str], gestures: list[str], where: str) -> None:
    """Every --hand-gestures name must be recorded, else a typo silently flags nothing."""
    unknown = [name for name in hand_gestures if name not in gestures]
    if unknown:
        raise UsageError(
            f"--hand-gestures {', '.join(unknown)} not among the gestures of {where} "
            f"({', '.join(gestures)}); check the spelling"
        )


def _check_source(args: argparse.Namespace) -> None:
    """The recording must exist, and a live topic must be a valid ROS name (rclpy raises otherwise)."""
    source = args.video or args.bag
    if source is not None and not source.exists():
        raise UsageError(f"{'--video' if args.video else '--bag'} {source} not found; check the path")
    if source is None:  # live: rclpy raises on a bad topic name or domain id
        from bharnet_ros.nodes.environment import domain_id_problem
        from bharnet_ros.nodes.parameters import topic_name_problem

        if args.topic and (problem := topic_name_problem(args.topic)):
            raise UsageError(f"--topic {problem}; give a topic such as bharnet/skeletons")
        if problem := domain_id_problem():
            raise UsageError(problem)


def _recording(args: argparse.Namespace) -> Recording:
    """Every skeleton frame of --video or --bag (the pose stage runs here for videos and camera bags)."""
    from bharnet_ros.training.teach_record import bag_frames, video_frames

    print(f"running the pose stage on {args.video or args.bag} ...", flush=True)
    if args.video:
        return video_frames(args.video, args.backend)
    recording = bag_frames(args.bag, args.topic, args.backend)
    if recording.skipped:
        print(
            f"skipped {recording.skipped} messages or skeletons of {args.bag} the nodes would refuse "
            f"(the last: {recording.last_problem})",
            file=sys.stderr,
        )
    return recording


def _headless_takes(args: argparse.Namespace, settings: TrimSettings, annotations: Annotations) -> list[Take]:
    from bharnet_ros.training.teach_record import cut_takes

    source = args.video or args.bag
    recording = _recording(args)
    takes = cut_takes(
        recording.frames, annotations, settings, args.hand_gestures, source.name, span=recording.span
    )
    for take in takes:
        print(take.line())
    return takes


def _interactive_takes(args: argparse.Namespace, settings: TrimSettings) -> list[Take]:
    from bharnet_ros.training.teach_record import Prompt, RecordedFrames, TakePlan, record_interactively

    plan = TakePlan(args.gestures, args.takes, args.seconds, args.countdown, set(args.hand_gestures))
    if args.video or args.bag:
        recording = RecordedFrames(_recording(args).frames, (args.video or args.bag).name)
        return record_interactively(recording, plan, settings, Prompt())
    from bharnet_ros.nodes.teach_live import live_skeletons

    with live_skeletons(args.topic or "bharnet/skeletons", args.wait) as source:
        print(f"recording from {source.description}")
        return record_interactively(source, plan, settings, Prompt())


def _write_takes(takes: list[Take], args: argparse.Namespace, output: Path) -> int:
    from bharnet_ros.training.teach_takes import takes_dataset

    flagged = [take for take in takes if not take.ok]
    for take in flagged:
        print(f"skipped {take.gesture} take {take.number}: {take.problem}", file=sys.stderr)
    gestures = args.gestures or list(dict.fromkeys(take.gesture for take in takes))
    try:
        data = takes_dataset(takes, args.subject, gestures, args.hand_gestures)
    except ValueError as err:
        raise UsageError(f"{err}; nothing written") from None
    with atomic_file(output) as temporary:
        data.save(temporary)
    per_class = ", ".join(
        f"{name} {int(n)}" for name, n in zip(data.class_names, data.class_counts(), strict=True)
    )
    print(f"wrote {output}: {len(data)} takes ({per_class}) of {args.subject}")
    return 1 if flagged else 0


# --------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------


def _add_train(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("takes", nargs="+", type=Path, help="dataset files from `teach record` (merged)")
    parser.add_argument("-o", "--output", type=output_option, required=True, help="ONNX model to write")
    parser.add_argument("--base", type=Path, help=f"checkpoint to start from (default {DEFAULT_BASE})")
    parser.add_argument("--replace", action="store_true", help="the new gestures replace the base vocabulary")
    parser.add_argument("--keep", type=names, default=[], help="--replace: base classes to keep, e.g. none")
    rehearse = parser.add_mutually_exclusive_group()
    rehearse.add_argument(
        "--rehearse", nargs="+", type=Path, metavar="DATA",
        help="the base model's training data (default: the files in config.yaml beside --base; "
        "for the shipped model, those of config/train/real_cpu.yaml)",
    )  # fmt: skip
    rehearse.add_argument("--no-rehearse", action="store_true", help="keep the old rows frozen instead")
    parser.add_argument(
        "--full",
        action="store_true",
        help="export all four BHaRNet-E branches (default: expert-only, as shipped; other variants: whole)",
    )
    parser.add_argument(
        "--calibration", type=Path, metavar="JSON_OR_ONNX",
        help="temperature and none threshold: a --loso calibration.json or a model that carries them",
    )  # fmt: skip
    parser.add_argument("--views", type=int, default=6, help="augmented windows per take (default 6)")
    parser.add_argument(
        "--steps", type=int, default=300, help="optimiser steps on the features (default 300)"
    )
    parser.add_argument(
        "--no-distance", action="store_true",
        help="fit no feature distance (default: fitted, so the node can say none for unfamiliar "
        "motion; after a fine-tune it costs a second feature pass)",
    )  # fmt: skip
    _add_fit_options(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="replace existing output files")
    parser.set_defaults(teach_run=run_train)


def run_train(args: argparse.Namespace) -> int:
    """Teach, write the checkpoint and the ONNX model, check parity (exit code 1 when it fails)."""
    from bharnet_ros.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from bharnet_ros.model.export import ExportError
    from bharnet_ros.training.dataset import DatasetError
    from bharnet_ros.training.teach import TeachSettings, check_calibration, export_taught, teach

    check_count("--views", args.views, 1, MOST_VIEWS)
    check_count("--steps", args.steps, 1, MOST_STEPS)
    check_seed(args.seed)
    _check_fit_options(args)
    _check_vocabulary_options(args)
    base_path = args.base or _default_base()
    if base_path.suffix.lower() == ".onnx":
        raise UsageError(f"--base {base_path} is an ONNX file, which cannot be taught; give its .pt file")
    if not base_path.is_file():  # before its rehearsal data is looked for beside it
        raise UsageError(f"--base {base_path} is no checkpoint file; give a .pt file (a run's last.pt)")
    rehearsal = _rehearsal_source(args, base_path)
    if args.replace and args.calibration:  # its thresholds were fitted to the base's classes' scores
        raise UsageError(
            f"--calibration {args.calibration} was fitted for the base model's classes, and --replace "
            "teaches another vocabulary, whose scores and distances it does not fit; drop --calibration"
        )
    calibration = args.calibration or _shipped_calibration(args, base_path)
    # the shipped model lends only its calibration, read before the fit: -o may replace it
    inputs = [*args.takes, base_path, args.calibration, *(rehearsal.files if rehearsal else [])]
    onnx_path = check_output_file(args.output, inputs, args.force, suffix=".onnx")
    checkpoint_path = check_output_file(onnx_path.with_suffix(".pt"), inputs, args.force)
    started = time.monotonic()
    try:
        base = load_checkpoint(base_path)
        if calibration:  # read now: a bad file must not cost a fit and leave model.pt behind
            check_calibration(base, calibration, not args.full)
        takes = _load_takes(args.takes)
        taught = [name for name in takes.class_names if name not in base.class_names]
        rehearsal_data = _load_rehearsal(rehearsal, taught)
        settings = TeachSettings(
            args.replace, tuple(args.keep), args.views, steps=args.steps, seed=args.seed,
            distance=not args.no_distance, **_fit_settings(args),
        )  # fmt: skip
        result = teach(base, takes, rehearsal_data, settings, show_progress=not args.no_progress)
    except (CheckpointError, DatasetError, ExportError, ValueError) as err:
        raise UsageError(str(err)) from None
    for note in result.notes:
        print(note)
    try:  # both files or neither: a checkpoint beside another model's export would be taken for its own
        with atomic_file(onnx_path) as temporary:
            metadata, diffs = export_taught(
                result.checkpoint, temporary, not args.full, calibration, result.distance
            )
            with atomic_file(checkpoint_path) as checkpoint_file:
                save_checkpoint(result.checkpoint, checkpoint_file)
    except ExportError as err:
        print(f"bharnet teach train: EXPORT FAILED: {err}", file=sys.stderr)
        return 1
    classes = metadata["bharnet.labels"]
    print(
        f"taught {', '.join(result.new_classes) or 'no new class'} ({len(classes)} classes in all; "
        f"training windows top-1 {100 * result.train_top1:.0f} %{_before_finetune(result)}) in "
        f"{time.monotonic() - started:.0f} s "
        f"({', '.join(f'{step} {seconds:.0f} s' for step, seconds in result.seconds.items())})"
    )
    print(f"wrote {onnx_path} ({metadata['bharnet.variant']}) and {checkpoint_path}")
    if result.distance is not None:
        print(_distance_note(metadata))
    print("parity vs PyTorch: " + ", ".join(f"{case} max abs diff {d:.2e}" for case, d in diffs.items()))
    print(f"load it into the running recognizer: ros2 param set /recognizer model {onnx_path.resolve()}")
    return 0


def _before_finetune(result: TeachResult) -> str:
    """Which model the training windows' top-1 is of: the fitted heads, before any fine-tune."""
    return " before the fine-tune" if "finetune" in result.seconds else ""


def _distance_note(metadata: dict[str, Any]) -> str:
    """What the taught model's feature distance does in the node, for the command's output."""
    threshold = metadata.get("bharnet.distance_threshold")
    if threshold is not None:
        return f"feature distance: the recognizer says none for a window farther than {threshold:.3g}"
    return (
        "feature distance: the model outputs it, but the calibration has no distance threshold, so "
        "the recognizer's distance rule stays off unless its distance_threshold parameter is set"
    )


def _shipped_calibration(args: argparse.Namespace, base_path: Path) -> Path | None:
    """The shipped model's temperature and ``none`` threshold for a model taught from it, which adds
    to its vocabulary (a replaced vocabulary has other probabilities). Without one the taught model
    carries no threshold, and the node would never answer ``none`` for a low confidence."""
    from bharnet_ros.core.paths import DEFAULT_MODEL

    shipped = _shipped(FULL_MODEL if args.full else DEFAULT_MODEL)
    if _is_shipped_base(base_path) and not args.replace and shipped.is_file():
        print(
            f"calibration (temperature, none and distance thresholds) from {shipped}; "
            "--calibration gives another"
        )
        return shipped
    print(
        "no --calibration: the taught model carries no none threshold, so the recognizer will not "
        "answer `none` for a low confidence (give a --loso calibration.json, docs/teaching.md)"
    )
    return None


def _add_fit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--label-smoothing", type=float, default=0.1, metavar="EPS",
        help="of the heads' fit (default 0.1; 0 keeps more of the old vocabulary, docs/teaching.md)",
    )  # fmt: skip
    parser.add_argument(
        "--feature-dropout", type=float, default=0.3, metavar="P",
        help="share of the cached features zeroed per step of the heads' fit (default 0.3; 0: none)",
    )  # fmt: skip
    parser.add_argument(
        "--rehearsal-candidates", type=int, default=12, metavar="N",
        help=f"augmented windows drawn per rehearsal sample, of which the {REHEARSAL_VIEWS} the base "
        f"model is least sure of are rehearsed (default 12; {REHEARSAL_VIEWS}: no choice)",
    )  # fmt: skip
    parser.add_argument(
        "--finetune-epochs", type=int, default=0, metavar="N",
        help="then train the network (--finetune-part) N epochs on the takes and the rehearsal "
        "(default 0: heads only)",
    )  # fmt: skip
    parser.add_argument(
        "--finetune-part", choices=("all", "tails"), default="all",
        help="what the fine-tune trains: all (default), or tails: BHaRNet-E's trunks stay as they are",
    )  # fmt: skip
    parser.add_argument(
        "--finetune-distill", type=float, default=0.0, metavar="W",
        help="weight of keeping the old classes' logits during the fine-tune (default 0: none; "
        f"at most {MOST_DISTILL:g})",
    )  # fmt: skip
    parser.add_argument(
        "--finetune-balance", type=float, default=1.0, metavar="B",
        help="class balance of the fine-tune's sampling: 1 (default) every class equally often, "
        "0 every sample equally often (fewer old gestures taken for new ones, docs/teaching.md)",
    )  # fmt: skip


def _check_fit_options(args: argparse.Namespace) -> None:
    check_count("--finetune-epochs", args.finetune_epochs, 0, MOST_EPOCHS)
    check_count("--rehearsal-candidates", args.rehearsal_candidates, REHEARSAL_VIEWS, MOST_VIEWS)
    if not 0.0 <= args.finetune_balance <= 1.0:  # also refuses nan
        raise UsageError(f"--finetune-balance must be in [0, 1], not {args.finetune_balance}")
    if not 0.0 <= args.finetune_distill <= MOST_DISTILL:  # also refuses nan
        raise UsageError(f"--finetune-distill must be in [0, {MOST_DISTILL:g}], not {args.finetune_distill}")
    for option, value in (
        ("--label-smoothing", args.label_smoothing),
        ("--feature-dropout", args.feature_dropout),
    ):
        if not 0.0 <= value < 1.0:  # also refuses nan
            raise UsageError(f"{option} must be in [0, 1), not {value}")
    shaping = {
        "--finetune-part": args.finetune_part != "all",
        "--finetune-distill": args.finetune_distill != 0,
        "--finetune-balance": args.finetune_balance != 1.0,
    }
    if not args.finetune_epochs and (given := next((o for o, on in shaping.items() if on), None)):
        raise UsageError(f"{given} shapes a fine-tune, which runs only with --finetune-epochs N; add it")


def _fit_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The TeachSettings fields of the options both `teach train` and `teach curve` take."""
    return {
        "label_smoothing": args.label_smoothing,
        "feature_dropout": args.feature_dropout,
        "rehearsal_candidates": args.rehearsal_candidates,
        "finetune_epochs": args.finetune_epochs,
        "finetune_part": args.finetune_part,
        "finetune_distill": args.finetune_distill,
        "finetune_balance": args.finetune_balance,
    }


def _shipped(relative: str) -> Path:
    from bharnet_ros.core.paths import share_file

    try:
        return share_file(relative)
    except FileNotFoundError:
        return Path(relative)


def _default_base() -> Path:
    base = _shipped(DEFAULT_BASE)
    if not base.is_file():
        raise UsageError(
            f"no {DEFAULT_BASE} ships here; pass --base CHECKPOINT (the default model's last.pt, "
            "e.g. runs/real_cpu/last.pt from `make model`)"
        )
    return base


def _check_vocabulary_options(args: argparse.Namespace) -> None:
    """--keep works only with --replace, and --rehearse with --replace only when something is kept."""
    if args.keep and not args.replace:
        raise UsageError("--keep names the base classes --replace keeps; add --replace or drop --keep")
    if args.replace and args.rehearse and not args.keep:
        raise UsageError(
            "--replace without --keep keeps no base class, so nothing would be rehearsed; "
            "add --keep CLASSES or drop --rehearse"
        )


def _load_takes(paths: list[Path]) -> SkeletonDataset:
    """The merged takes; ValueError naming a sample nothing can be learnt from."""
    import numpy as np

    from bharnet_ros.training.data import load_datasets
    from bharnet_ros.training.teach_takes import unusable_samples

    resolved = [p.resolve() for p in paths]
    repeated = sorted({str(p) for p, r in zip(paths, resolved, strict=True) if resolved.count(r) > 1})
    if repeated:  # every take would be taught twice
        raise ValueError(f"{', '.join(repeated)} given more than once; give each takes file once")
    takes = load_datasets(paths)  # checks each file (size, type) before its bytes are hashed here
    digests = [
        hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else str(path) for path in resolved
    ]
    copies = sorted({str(p) for p, d in zip(paths, digests, strict=True) if digests.count(d) > 1})
    if copies:
        raise ValueError(f"{', '.join(copies)} hold the same takes (a copy); give each takes file once")
    if not len(takes):
        raise ValueError(f"{', '.join(map(str, paths))} hold no take; record some with bharnet teach record")
    unusable = unusable_samples(takes)
    if unusable:
        name, problem = unusable[0]
        raise ValueError(f"take {name} cannot be taught from ({problem}); record it again or leave it out")
    counts = np.bincount(takes.labels, minlength=takes.num_classes)
    empty = [name for name, count in zip(takes.class_names, counts, strict=True) if count == 0]
    if empty:
        raise ValueError(
            f"the takes name {', '.join(empty)} but hold no take of it; record some, or leave it out "
            "(bharnet teach record writes only the gestures it recorded)"
        )
    return takes


def _rehearsal_source(args: argparse.Namespace, base_path: Path) -> TrainingData | None:
    """The rehearsal data: --rehearse, else the base run's training data where it is still there.

    For the shipped base that is the default recipe's data (``make model`` imports it into data/).
    Without any, the old classes would be mistaken for new ones, so that needs --no-rehearse.
    Found before the work, so that the output can be checked against its files.
    """
    from bharnet_ros.training.data import training_data_of
    from bharnet_ros.training.teach import rehearsal_beside

    if args.no_rehearse or (args.replace and not args.keep):
        return None
    source = rehearsal_beside(base_path)
    if not source.files and _is_shipped_base(base_path):
        source = training_data_of(_shipped(DEFAULT_RECIPE))
    if args.rehearse:  # other files; the base run's relabelling and people left out still hold
        return dataclasses.replace(source, files=list(args.rehearse), missing=[])
    if not source.files:
        raise UsageError(
            "no training data of the base model to rehearse the old gestures with: give it with "
            "--rehearse DATA..., or pass --no-rehearse (old gestures may then be taken for new ones)"
        )
    return source


def _load_rehearsal(source: TrainingData | None, taught: list[str]) -> SkeletonDataset | None:
    from bharnet_ros.training.teach import load_rehearsal, taught_in

    if source is None:
        return None
    print(f"rehearsing the old gestures with {', '.join(str(f) for f in source.files)}")
    if source.missing:
        print(f"not found, so not rehearsed: {', '.join(str(f) for f in source.missing)}")
    data = load_rehearsal(source, taught)
    if clash := taught_in(list(source.relabel), taught):
        print(
            f"the rehearsal's {', '.join(clash)} samples are left out: the base model learnt them as "
            f"{', '.join(sorted({source.relabel[name] for name in clash}))}, and they are taught anew here"
        )
    return data


def _is_shipped_base(base_path: Path) -> bool:
    """Whether ``base_path`` is the shipped default model's checkpoint, named or by default."""
    shipped = _shipped(DEFAULT_BASE)
    try:
        return shipped.is_file() and base_path.resolve().samefile(shipped)
    except OSError:
        return False


# --------------------------------------------------------------------------------------------------
# curve
# --------------------------------------------------------------------------------------------------


def _add_curve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base", nargs="+", type=Path, required=True,
        help="checkpoints trained without the new gestures (e.g. the folds of a --loso run)",
    )  # fmt: skip
    parser.add_argument("--data", nargs="+", type=Path, required=True, help="dataset files (merged)")
    parser.add_argument("--new", type=names, required=True, help="the gestures to teach, held out of --base")
    parser.add_argument(
        "--reference", nargs="+", type=Path, default=[],
        help="checkpoints trained with every gesture from the start, leaving out people as --base does",
    )  # fmt: skip
    parser.add_argument(
        "--pool", type=names, default=[], help="people who may teach (default: all with takes of --new)"
    )
    parser.add_argument(
        "--takes", type=counts, default=[1, 2, 3],
        help="takes per gesture in total, split over the teachers, at least one each (default 1,2,3)",
    )  # fmt: skip
    parser.add_argument("--teachers", type=counts, default=[1, 2], help="people who teach (default 1,2)")
    parser.add_argument("--draws", type=int, default=3, help="random choices of takes per point (default 3)")
    parser.add_argument(
        "--groups", type=int, default=CURVE_GROUPS,
        help=f"groups of teachers per --teachers value, at most: every group where there are no more, "
        f"else so many drawn at random (default {CURVE_GROUPS}, at most {MOST_GROUPS})",
    )  # fmt: skip
    parser.add_argument("--views", type=int, default=6, help="augmented windows per take (default 6)")
    parser.add_argument(
        "--test-mirror",
        action="store_true",
        help="score each window with its mirror image, as the export does",
    )
    parser.add_argument(
        "--distance-threshold", type=float, metavar="T",
        help="measure the share of windows the feature distance calls unfamiliar above T (default: "
        "the shipped model's threshold; 0: not measured)",
    )  # fmt: skip
    _add_fit_options(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    parser.add_argument(
        "--out", type=output_option, required=True, help="folder for curve.md, curve.json, runs.csv"
    )
    parser.add_argument("--force", action="store_true", help="replace the files of an earlier run")
    parser.set_defaults(teach_run=run_curve)


def run_curve(args: argparse.Namespace) -> int:
    """Measure the curve and print its table."""
    from bharnet_ros.model.checkpoint import CheckpointError
    from bharnet_ros.training.data import load_datasets
    from bharnet_ros.training.dataset import DatasetError
    from bharnet_ros.training.teach import TeachSettings, rehearsal_beside
    from bharnet_ros.training.teach_curve import (
        CurvePlan,
        check_plan,
        impossible_points,
        score_reference,
        write_curve,
    )
    from bharnet_ros.training.teach_curve import run_curve as measure_curve  # this function's namesake

    check_count("--draws", args.draws, 1, MOST_DRAWS)
    check_count("--groups", args.groups, 1, MOST_GROUPS)
    check_count("--views", args.views, 1, MOST_VIEWS)
    _check_fit_options(args)
    threshold = _curve_distance_threshold(args.distance_threshold)
    checkpoints = [*args.base, *args.reference]
    run_folders = [path.parent for path in checkpoints if (path.parent / "config.yaml").is_file()]
    writes = ("runs.csv", "curve.json", "curve.md")
    check_output_folder(args.out, [*checkpoints, *args.data, *run_folders], args.force, writes=writes)
    started = time.monotonic()
    plan = CurvePlan(
        args.new, args.takes, args.teachers, args.pool, args.draws,
        TeachSettings(
            views=args.views, **_fit_settings(args),
        ),
        args.test_mirror,
        args.groups,
        threshold,
    )  # fmt: skip
    try:
        data = load_datasets(args.data)
        left_out = [rehearsal_beside(path).unseen for path in args.base]
        check_plan(data, plan, left_out)  # before the references are scored: a typo costs nothing
        _print_skipped(impossible_points(data, plan))
        references = [score_reference(path, data, args.new) for path in args.reference]
        runs = measure_curve(args.base, data, plan, show_progress=not args.no_progress)
    except (CheckpointError, DatasetError, ValueError) as err:
        raise UsageError(str(err)) from None
    if not runs:
        raise UsageError(
            "no point of the curve is possible: no group of teachers leaves anyone the base models "
            "never saw, with takes of the new gestures and old-class samples, to evaluate; add such "
            "people to --data"
        )
    about = {
        "base": [str(p) for p in args.base],
        "reference": [str(p) for p in args.reference],
        "data": [str(p) for p in args.data],
        "seconds": time.monotonic() - started,
    }
    with staged_folder(args.out) as folder:
        table = write_curve(folder, runs, plan, about, references)
    print(table + f"({len(runs)} fits in {about['seconds']:.0f} s; every fit in {args.out / 'runs.csv'})")
    return 0


def _curve_distance_threshold(given: float | None) -> float:
    """--distance-threshold, checked; by default the shipped model's (0 where it carries none)."""
    from bharnet_ros.core.inference import MAX_DISTANCE_THRESHOLD
    from bharnet_ros.core.paths import DEFAULT_MODEL

    if given is None:
        return _carried_distance_threshold(_shipped(DEFAULT_MODEL))
    if not 0.0 <= given < MAX_DISTANCE_THRESHOLD:  # also refuses nan
        raise UsageError(
            f"--distance-threshold must be 0 (not measured) or a number above 0 and below "
            f"{MAX_DISTANCE_THRESHOLD:g}, not {given}"
        )
    return given


def _carried_distance_threshold(model: Path) -> float:
    """The distance threshold an exported model carries, checked as an export checks it; 0 without
    one (or without the file)."""
    import onnx

    from bharnet_ros.model.export import calibration_value
    from bharnet_ros.training.teach import stored_value

    if not model.is_file():
        return 0.0
    try:
        props = {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}
        if "bharnet.distance_threshold" not in props:
            return 0.0
        value = stored_value(props["bharnet.distance_threshold"])
        return calibration_value(value, "distance_threshold", f"{model}: its")
    except Exception as err:  # onnx raises its own decode errors; the value may be no number
        raise UsageError(
            f"cannot read the distance threshold of {model} ({str(err)[:120]}); give --distance-threshold"
        ) from None


def _print_skipped(points: list[tuple[int, int]]) -> None:
    """Say which (teachers, takes) pairs of the grid no group can give, before the work."""
    if points:
        pairs = ", ".join(f"{teachers} teacher(s) x {takes} take(s)" for teachers, takes in points)
        print(f"skipped, as no group of teachers has takes for them (each gives one at least): {pairs}")
