"""``bharnet open-set``: how often the recognizer says ``none`` on motion outside its vocabulary.

A robot must not act on a confident wrong label when someone does tai chi, signs, hugs or waves a
hand close to the camera. Each video goes through the whole pipeline (``bag record-video``, then
``bag eval``: MediaPipe and the recognizer with its calibrated threshold) with one segment labelled
``none`` over its whole length (the bag is removed once scored; ``--keep-bags`` keeps it); the
share of decisions that say ``none`` is the rejection rate, and everything else is a false accept.
The vocabulary's own "do nothing" classes (``--no-command``, by default the HRI set's ``random``
and ``static``) are no command to a robot either: the no-command rate counts them with ``none``.
Output: ``OUT/<video stem>/`` (labels, report, and the bag with ``--keep-bags``) and
``OUT/summary.json`` with the rates per video and pooled over all decisions.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bharnet_ros.core.recognizer import NONE
from bharnet_ros.tools import UsageError
from bharnet_ros.tools.outputs import (
    atomic_file,
    check_output_folder,
    output_option,
    scratch_folder,
    staged_folder,
)

SUMMARY = "summary.json"


DEFAULT_NO_COMMAND = ("random", "static")  # the HRI set's "do nothing" classes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", type=Path, help="videos of motion outside the vocabulary")
    parser.add_argument("--out", type=output_option, required=True, help="output folder")
    parser.add_argument("--force", action="store_true", help="reuse a non-empty --out")
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--params-file", default="", help="graph parameters (default config/recognize.yaml)")
    parser.add_argument("--realtime", action="store_true", help="replay through the real ROS graph")
    parser.add_argument("--keep-bags", action="store_true", help="keep each video's camera bag (large)")
    parser.add_argument(
        "--no-command",
        default=None,
        help="classes that mean 'do nothing', counted with none as no command (default: random and "
        "static, where the model has them)",
    )


def run(args: argparse.Namespace) -> int:
    """Evaluate every video, write summary.json, print the rates; exit code 1 when a video was skipped."""
    from bharnet_ros.tools.bag import check_params_file
    from bharnet_ros.tools.streams import check_model

    check_videos(args.videos)
    stems = [v.stem for v in args.videos]
    if len(set(stems)) != len(stems):
        raise UsageError("two videos share a file name; give each a distinct name")
    if SUMMARY in stems:  # each video gets a folder of its name beside the summary
        raise UsageError(f"a video named {SUMMARY}.* would take the summary's place in --out; rename it")
    odd = [str(v) for v in args.videos if v.stem in ("", ".", "..")]
    if odd:  # '...mp4' has the stem '..': its folder would be the parent of --out
        raise UsageError(f"{odd[0]}: a video named only by dots has no folder of its own in --out; rename it")
    writes = (
        SUMMARY,
        *(f"{stem}/{entry}" for stem in stems for entry in ("", "labels.csv", "bag/", "report/")),
    )
    check_output_folder(args.out, [*args.videos, args.model], args.force, writes=writes)
    check_params_file(args.params_file)
    no_command = {NONE, *no_command_classes(args.no_command, check_model(args.model, args.params_file))}
    results, skipped = {}, {}
    for video in args.videos:
        try:
            results[video.stem] = evaluate_video(args, video)
        except SkippedVideoError as err:
            skipped[video.stem] = str(err)
            print(f"skipped {video}: {err}", file=sys.stderr, flush=True)
    if not results:
        raise UsageError(f"no video could be recorded: {'; '.join(skipped.values())}")
    summary = pooled(results, no_command)
    summary["skipped"] = skipped
    with atomic_file(args.out / SUMMARY) as temporary:
        temporary.write_text(json.dumps(summary, indent=2) + "\n")
    for name, row in summary["per_video"].items():
        rates = f"none {_pct(row['none_rate'])}, no command {_pct(row['no_command_rate'])}"
        print(f"{name}: {row['decisions']} decisions, {rates}, top {row['labels']}")
    rates = f"none {_pct(summary['none_rate'])}, no command {_pct(summary['no_command_rate'])}"
    print(f"pooled: {rates} of {summary['decisions']} decisions")
    return 1 if skipped else 0


class SkippedVideoError(Exception):
    """A video that failed while being recorded as a bag (e.g. cut short); the others still count."""


def no_command_classes(given: str | None, class_names: list[str]) -> list[str]:
    """The classes of ``--no-command`` (default: the HRI set's random and static, where the model has
    them); UsageError for a name the model lacks, which would silently count nothing."""
    if given is None:
        return [name for name in DEFAULT_NO_COMMAND if name in class_names]
    names = [name.strip() for name in given.split(",") if name.strip()]
    unknown = [name for name in names if name not in class_names]
    if unknown:
        raise UsageError(
            f"--no-command names {', '.join(unknown)}, not classes of the model; check the spelling "
            f"(its classes: {', '.join(class_names)})"[:400]
        )
    return names


def check_videos(videos: list[Path]) -> None:
    """Every video is a file that opens and decodes, checked before any is recorded."""
    from bharnet_ros.core.video import VideoError, VideoReader

    folders = [v for v in videos if v.is_dir()]
    if folders:
        raise UsageError(
            f"{folders[0]} is a folder; list the video files themselves, e.g. {folders[0]}/*.mp4"
        )
    missing = [str(v) for v in videos if not v.is_file()]
    if missing:
        raise UsageError(f"videos not found: {', '.join(missing)}")
    unreadable = []
    for video in videos:
        try:
            with VideoReader(video):
                pass
        except (VideoError, OSError) as err:
            unreadable.append(str(err))
    if unreadable:
        raise UsageError(f"{'; '.join(unreadable)}; leave those videos out or convert them (e.g. to .mp4)")


def evaluate_video(args: argparse.Namespace, video: Path) -> dict[str, Any]:
    """Record one video as a bag and evaluate it against a single ``none`` segment (the bag is kept
    only with ``--keep-bags``). SkippedVideoError when the video fails while recorded; the folder
    this made for it is removed again then."""
    folder = args.out / video.stem
    existed = folder.exists()
    try:
        with scratch_folder(folder / "bag", args.keep_bags):
            return record_and_score(args, video)
    except SkippedVideoError:
        if not existed and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise


def record_and_score(args: argparse.Namespace, video: Path) -> dict[str, Any]:
    """The video's camera bag and its evaluation."""
    from bharnet_ros.core.annotations import Segment, save_csv
    from bharnet_ros.core.bag import BagError, write_video_bag
    from bharnet_ros.core.bag_eval import EvalError, evaluate_bag
    from bharnet_ros.nodes.bag_eval import realtime_replay

    folder = args.out / video.stem
    try:
        with staged_folder(folder / "bag") as staged:
            summary = write_video_bag(video, staged)
    except (BagError, ValueError) as err:
        raise SkippedVideoError(str(err)) from None
    seconds = (summary.last_stamp - summary.first_stamp) * 1e-9 + 1.0
    labels = save_csv(folder / "labels.csv", [Segment(0.0, seconds, NONE)])
    replay = realtime_replay() if args.realtime else None
    try:
        with staged_folder(folder / "report") as report:
            return evaluate_bag(
                folder / "bag", labels, report, model=args.model, params_file=args.params_file, replay=replay
            )
    except EvalError as err:
        raise UsageError(str(err)) from None


def pooled(results: dict[str, dict[str, Any]], no_command: set[str]) -> dict[str, Any]:
    """Rejection rates (``none`` alone, and every no-command label) per video and over all decisions."""
    per_video, pooled_counts = {}, Counter()
    for name, result in results.items():
        counts = _label_counts(result)
        pooled_counts += counts
        labels = dict(counts.most_common())  # every label: the rates count each decision
        per_video[name] = {**rejection_rates(counts, no_command), "labels": labels}
    return {
        **rejection_rates(pooled_counts, no_command),
        "no_command": sorted(no_command),
        "per_video": per_video,
    }


def rejection_rates(counts: Counter[str], no_command: set[str]) -> dict[str, Any]:
    """Decisions, the share that said ``none`` and the share that said any no-command label."""
    decisions = sum(counts.values())
    if not decisions:
        return {"decisions": 0, "none_rate": None, "no_command_rate": None}
    idle = sum(counts.get(label, 0) for label in no_command)
    return {
        "decisions": decisions,
        "none_rate": counts.get(NONE, 0) / decisions,
        "no_command_rate": idle / decisions,
    }


def _label_counts(result: dict[str, Any]) -> Counter[str]:
    """Decision labels of one evaluation, from its predictions.csv."""
    import csv

    path = Path(result["bag"]).parent / "report" / "predictions.csv"
    with path.open(newline="") as stream:
        return Counter(row["label"] for row in csv.DictReader(stream))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"
