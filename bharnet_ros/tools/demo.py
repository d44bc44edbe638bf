"""``bharnet demo``: see the recognizer work with no camera and nothing to download.

The default input is a scripted sequence of gestures from the project's synthetic generator,
stored as a skeleton bag with its true segments. It is replayed in real time into the real ROS 2
recognizer node (default model, Fast DDS), and the recognized timeline is printed next to the
truth, with latencies, plus a timeline plot. ``--video`` runs the full pipeline (video -> MediaPipe
pose node -> recognizer) on a real video instead.

The demo writes ``OUT/bag``, ``OUT/labels.csv`` and ``OUT/report/``. A non-empty OUT needs
``--force``, and even then only those files are replaced: nothing else in OUT is deleted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bharnet_ros.tools import UsageError
from bharnet_ros.tools.outputs import atomic_file, check_output_folder, staged_folder

SCRIPT = (
    ("idle", 2.0), ("wave", 3.0), ("thumbs_up", 3.0), ("stop", 3.0), ("come_here", 3.0),
    ("victory_sign", 3.0), ("clap", 3.0), ("idle", 2.0),
)  # fmt: skip
SHORT_SCRIPT = (("idle", 1.0), ("wave", 2.0), ("stop", 2.0))
FPS = 30.0
START = 1000.0  # stamp of the first frame, seconds
SKELETON_TOPIC = "/bharnet/skeletons"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", default="", help="run the full pipeline on this video file instead")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="folder for the bag and report")
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic performer")
    parser.add_argument("--rate", type=float, default=1.0, help="replay speed factor")
    parser.add_argument("--short", action="store_true", help="a 5-second script instead of 22 s (for tests)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="reuse a non-empty --out (only the demo's own files are replaced)",
    )


def run(args: argparse.Namespace) -> int:
    from bharnet_ros.tools.bag import evaluate_bag, format_table

    video = Path(args.video) if args.video else None
    check_output_folder(args.out, [video, args.model], args.force)
    bag = args.out / "bag"
    with staged_folder(bag) as staged:
        labels = _video_input(args, staged) if video else _scripted_input(args, staged)
    print(f"input: {bag} ({'video ' + args.video if args.video else 'scripted synthetic gestures'})")
    summary = evaluate_bag(
        bag, labels, args.out / "report", model=args.model, realtime=True, rate=args.rate, force=args.force
    )
    print(format_table(summary, args.out / "report"))
    if labels is not None:
        print_timeline(summary["metrics"]["per_segment"])
    return 0


def _scripted_input(args: argparse.Namespace, bag: Path) -> Path:
    """A skeleton bag of the scripted gestures and its labels file (seconds from the first frame)."""
    from bharnet_ros.core.annotations import save_csv
    from bharnet_ros.core.bag import SKELETON_TYPE, BagWriter, seconds_to_ns, skeleton_array_message
    from bharnet_ros.training.synth import generate_scripted

    script = SHORT_SCRIPT if args.short else SCRIPT
    sequence, segments = generate_scripted(list(script), np.random.default_rng(args.seed), fps=FPS)
    with BagWriter(bag) as writer:
        writer.add_topic(SKELETON_TOPIC, SKELETON_TYPE)
        for t in range(len(sequence)):
            frame = sequence.frame(t)
            frame.timestamp += START
            stamp = seconds_to_ns(frame.timestamp)
            writer.write(SKELETON_TOPIC, stamp, skeleton_array_message([frame], stamp))
    with atomic_file(args.out / "labels.csv") as temporary:
        save_csv(temporary, segments)
    return args.out / "labels.csv"


def _video_input(args: argparse.Namespace, bag: Path) -> None:
    from bharnet_ros.core.bag import BagError, write_video_bag

    try:
        write_video_bag(args.video, bag)
    except (BagError, ValueError) as err:
        raise UsageError(str(err)) from None
    return


def print_timeline(segments: list[dict]) -> None:
    """Truth next to what was recognized, one line per scripted segment."""
    print("\n  time (s)      truth          recognized     first correct after")
    for s in segments:
        delay = "-" if s["delay"] is None else f"{s['delay']:.2f} s"
        mark = "ok" if s["correct"] else ""
        recognized = s["majority"] or "-"
        print(f"  {s['start']:5.1f}-{s['end']:5.1f}  {s['truth']:<14} {recognized:<14} {delay:>8}  {mark}")
