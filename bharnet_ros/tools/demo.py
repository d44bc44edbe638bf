"""``bharnet demo``: see the recognizer work with no camera and nothing to download.

Where the real HRI recordings are beside the project (``../shared/data/hri_gestures``, or
``--people DIR``), the default input is **real people**: one person's gesture clips played one
after another as a continuous camera stream, with their true segments. The stream becomes a camera
bag that is replayed in real time through the whole ROS 2 graph (MediaPipe pose node, recognizer
node with the default model, Fast DDS), and the recognized timeline is printed next to the truth,
with latencies, plus a timeline plot. Without those recordings the input is a scripted sequence of
the project's synthetic gestures, stored as a skeleton bag and replayed into the recognizer node.
``--video`` runs the full pipeline on any video instead.

The demo writes ``OUT/bag``, ``OUT/labels.csv`` (not for ``--video``), ``OUT/report/`` and, from
real people, ``OUT/stream.mp4``. A non-empty OUT needs ``--force``, and even then only those files
are replaced: nothing else in OUT is changed. A labels.csv or stream.mp4 that this input does not
write stays, with a note that it is not this recording's (it may be the user's own annotations). OUT may not
lie inside the people folder it plays.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bharnet_ros.tools import UsageError
from bharnet_ros.tools.outputs import atomic_file, check_output_folder, output_option, staged_folder

if TYPE_CHECKING:
    from bharnet_ros.core.compose import Piece

# Synthetic fallback: the gestures the default model knows from the generator; fidget is "none".
SCRIPT = (
    ("idle", 2.0), ("thumbs_up", 3.0), ("fidget", 3.0), ("victory_sign", 3.0), ("ok_sign", 3.0),
    ("thumbs_down", 3.0), ("pointing", 3.0), ("idle", 2.0),
)  # fmt: skip
SHORT_SCRIPT = (("idle", 1.0), ("thumbs_up", 2.0), ("victory_sign", 2.0))
SYNTH_TRUTH = {"fidget": "none", "idle": None}  # truth names in the model's vocabulary (None: unscored)
PEOPLE = Path("../shared/data/hri_gestures")  # the real recordings, beside the project
PEOPLE_SCRIPT = ("greeting", "stop", "come", "left", "right", "attention", "yes", "no")
FPS = 30.0
PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # --person, --distance: a folder and a file-name field
SKELETON_TOPIC = "/bharnet/skeletons"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", default="", help="run the full pipeline on this video file instead")
    parser.add_argument(
        "--out", type=output_option, default=Path("out/demo"), help="folder for the bag and report"
    )
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the synthetic performer (default 7)")
    parser.add_argument(
        "--people", type=Path, default=None,
        help=f"real recordings DIR/<person>/<gesture>_<take>_<distance>_<framing>.avi (default {PEOPLE} "
        "where it exists; else synthetic gestures)",
    )  # fmt: skip
    parser.add_argument("--person", default=None, help="whose clips to play (default S2)")
    parser.add_argument("--distance", default=None, help="which distance's clips (default 4m)")
    parser.add_argument(
        "--synthetic", action="store_true", help="the synthetic script even where people exist"
    )
    parser.add_argument(
        "--rate", type=float, default=1.0, help="replay speed factor, 0.01 to 100 (default 1)"
    )
    parser.add_argument(
        "--short", action="store_true",
        help="a short script (for tests): 3 real clips instead of 8, or 5 s of synthetic gestures for 22 s",
    )  # fmt: skip
    parser.add_argument(
        "--force",
        action="store_true",
        help="reuse a non-empty --out (only the demo's own files are replaced)",
    )


def run(args: argparse.Namespace) -> int:
    from bharnet_ros.tools import check_number, check_seed
    from bharnet_ros.tools.bag import MAX_REPLAY_RATE, MIN_REPLAY_RATE, format_table

    check_number("--rate", args.rate, MIN_REPLAY_RATE, MAX_REPLAY_RATE, "times the recorded speed")
    if args.video == "~" or str(args.video).startswith("~/"):  # `make demo VIDEO=~/clip.mp4` keeps it
        args.video = str(Path.home() / str(args.video)[2:])
    video = Path(args.video) if args.video else None
    people = None if video or args.synthetic else _people_folder(args.people)
    check_options_used(args, video, people)
    check_seed(args.seed)
    check_inputs(video, args.model)
    pieces = _people_pieces(args, people) if people else []
    writes = ("labels.csv", "stream.mp4", "bag/", "report/")
    check_output_folder(args.out, [video, args.model, people], args.force, writes=writes)
    bag = args.out / "bag"
    with _removed_if_left_empty(args.out), staged_folder(bag) as staged:
        if video:
            labels, what = _video_input(args, staged), f"video {args.video}"
        elif people:
            labels, what = _people_input(args, people, pieces, staged)
        else:
            labels, what = _scripted_input(args, staged), "scripted synthetic gestures"
    _note_others(args.out, labels is not None, bool(people))
    print(f"input: {bag} ({what})")
    summary = _evaluate(bag, labels, args.out / "report", args.model, args.rate)
    print(format_table(summary, args.out / "report"))
    if labels is not None:
        print_timeline(summary["metrics"]["per_segment"])
    else:  # a video has no truth: say what was recognized, and when
        print_recognized(args.out / "report" / "predictions.csv")
    return 0


def check_options_used(args: argparse.Namespace, video: Path | None, people: Path | None) -> None:
    """Refuse the options this input would ignore (a demo of --video with --person S3 played the
    video and said nothing), then fill in the defaults of those it uses."""
    if video and args.synthetic:
        raise UsageError("--video and --synthetic are two inputs; give one")
    if video and args.short:
        raise UsageError("--short shortens the scripted inputs; --video plays the whole video")
    if video or args.synthetic:
        ignored = [name for name in ("people", "person", "distance") if getattr(args, name) is not None]
        if ignored:
            raise UsageError(
                f"--{ignored[0]} chooses real recordings, which --{'video' if video else 'synthetic'} "
                "does not play; leave it out"
            )
    if (video or people) and args.seed is not None:
        played = "the video" if video else f"real people's clips ({people})"
        raise UsageError(f"--seed picks the synthetic performer, and the demo plays {played}; leave it out")
    args.person = "S2" if args.person is None else args.person  # "" is checked as a name, not S2
    args.distance = "4m" if args.distance is None else args.distance
    args.seed = 7 if args.seed is None else args.seed


def _note_others(out: Path, labelled: bool, streamed: bool) -> None:
    """Say which labels.csv or stream.mp4 in ``out`` this input did not write: beside a new video's
    bag, another recording's labels.csv could be taken for its truth. They are not removed, as
    nothing shows an earlier demo wrote them (they were a user's annotations, deleted)."""
    for name, written in (("labels.csv", labelled), ("stream.mp4", streamed)):
        if not written and os.path.lexists(out / name):
            print(f"note: {out / name} is not this recording's (this input writes none); left as it was")


def check_inputs(video: Path | None, model: Path | None) -> None:
    """The video opens and has a frame and the model loads, before ``--out`` is made."""
    from bharnet_ros.core.inference import InferenceError
    from bharnet_ros.core.recognizer import load_window_classifier
    from bharnet_ros.core.video import VideoError, VideoReader

    if model is not None:
        try:  # now, not after the graph's start-up wait
            load_window_classifier(str(model), "cpu")
        except InferenceError as err:
            raise UsageError(f"--model: {err}") from None
    if video is None:
        return
    try:
        with VideoReader(video):
            pass
    except (FileNotFoundError, VideoError) as err:
        raise UsageError(f"--video: {err}") from None


@contextmanager
def _removed_if_left_empty(folder: Path) -> Iterator[None]:
    """When the block fails, remove ``folder`` (and the folders above it) that this run created and
    left empty, so a refused demo leaves nothing behind; anything with files in it stays."""
    created = [path for path in (folder, *folder.absolute().parents) if not path.exists()]
    try:
        yield
    except BaseException:
        for path in created:  # the deepest first
            if not path.is_dir() or any(path.iterdir()):
                break
            path.rmdir()
        raise


def _evaluate(bag: Path, labels: Path | None, report: Path, model: Path | None, rate: float) -> dict:
    """The bag replayed in real time through the graph and scored; the report is staged into place."""
    from bharnet_ros.core.bag_eval import EvalError, evaluate_bag
    from bharnet_ros.nodes.bag_eval import realtime_replay

    try:
        with staged_folder(report) as staged:
            return evaluate_bag(bag, labels, staged, model=model, replay=realtime_replay(rate))
    except EvalError as err:
        raise UsageError(str(err)) from None


def _scripted_input(args: argparse.Namespace, bag: Path) -> Path:
    """A skeleton bag of the scripted gestures and its labels file (seconds from the first frame)."""
    from bharnet_ros.core.annotations import save_csv
    from bharnet_ros.core.bag import (
        SKELETON_TYPE,
        VIDEO_START_SECONDS,
        BagWriter,
        seconds_to_ns,
        skeleton_array_message,
    )
    from bharnet_ros.training.synth import generate_scripted

    script = SHORT_SCRIPT if args.short else SCRIPT
    sequence, segments = generate_scripted(list(script), np.random.default_rng(args.seed), fps=FPS)
    segments = [
        replace(s, label=SYNTH_TRUTH.get(s.label, s.label))
        for s in segments
        if SYNTH_TRUTH.get(s.label, s.label)
    ]
    with BagWriter(bag) as writer:
        writer.add_topic(SKELETON_TOPIC, SKELETON_TYPE)
        for t in range(len(sequence)):
            frame = sequence.frame(t)
            frame.timestamp += VIDEO_START_SECONDS  # as a camera bag's first frame
            stamp = seconds_to_ns(frame.timestamp)
            writer.write(SKELETON_TOPIC, stamp, skeleton_array_message([frame], stamp))
    with atomic_file(args.out / "labels.csv") as temporary:
        save_csv(temporary, segments)
    return args.out / "labels.csv"


def _people_folder(given: Path | None) -> Path | None:
    """The real recordings to play: ``--people``, else the default folder where it exists."""
    if given is not None:
        if not given.is_dir():
            raise UsageError(f"--people {given} is not a folder of per-person clip folders")
        return given
    from bharnet_ros.core.paths import CHECKOUT

    beside = [CHECKOUT / PEOPLE, PEOPLE]  # beside the checkout wherever the demo runs from
    found = next((folder.resolve() for folder in beside if folder.is_dir()), None)
    if found is None:  # an installed copy run outside the checkout does not see them
        print(
            f"note: no real recordings at {beside[0]} or {beside[1].absolute()}; playing synthetic "
            "gestures (give --people DIR for the recordings)",
            file=sys.stderr,
        )
    return found


def _people_pieces(args: argparse.Namespace, people: Path) -> list[Piece]:
    """The clip of each scripted gesture of ``--person`` at ``--distance`` (UsageError if one is missing)."""
    from bharnet_ros.core.compose import Piece

    for option, value in (("--person", args.person), ("--distance", args.distance)):
        if not PLAIN_NAME.fullmatch(value) or set(value) == {"."}:
            raise UsageError(f"{option} {value!r} is not a plain name such as S2 or 4m")
    folder = people / args.person
    pieces = []
    for label in PEOPLE_SCRIPT[:3] if args.short else PEOPLE_SCRIPT:
        clips = sorted(folder.glob(f"{label}_*_{args.distance}_*.avi"))
        if not clips:
            raise UsageError(f"no {label} clip at {args.distance} in {folder}; pick --person and --distance")
        pieces.append(Piece(clips[0], label))
    return pieces


def _people_input(args: argparse.Namespace, people: Path, pieces: list[Piece], bag: Path) -> tuple[Path, str]:
    """One person's clips as a continuous stream video, its bag and its labels file."""
    from bharnet_ros.core.annotations import save_csv
    from bharnet_ros.core.bag import BagError, write_video_bag
    from bharnet_ros.core.compose import ComposeError, compose_stream

    script = [piece.label for piece in pieces]
    try:
        with atomic_file(args.out / "stream.mp4") as temporary:
            segments = compose_stream(pieces, temporary)
        write_video_bag(args.out / "stream.mp4", bag)
    except (ComposeError, BagError, ValueError) as err:
        raise UsageError(str(err)) from None
    with atomic_file(args.out / "labels.csv") as temporary:
        save_csv(temporary, segments)
    what = f"real person {args.person} at {args.distance}: {', '.join(script)} (HRI recordings, {people})"
    return args.out / "labels.csv", what


def _video_input(args: argparse.Namespace, bag: Path) -> None:
    from bharnet_ros.core.bag import BagError, write_video_bag

    try:
        write_video_bag(args.video, bag)
    except (BagError, ValueError) as err:
        raise UsageError(str(err)) from None
    return


def print_recognized(predictions: Path) -> None:
    """Each person's runs of one label, from the report's predictions.csv (``none`` left out)."""
    import csv

    with predictions.open(newline="") as file:
        rows = list(csv.DictReader(file))
    print("\n  time (s)      person  recognized")
    for person, start, end, label in label_runs(rows):
        print(f"  {start:5.1f}-{end:5.1f}  {person:>6}  {label}")
    if not any(row["label"] != "none" for row in rows):
        print("  (no gesture recognized)")


def label_runs(rows: list[dict]) -> list[tuple[str, float, float, str]]:
    """(person, first stamp, last stamp, label) of each run of one label per person, none left out."""
    runs: list[list] = []
    last: dict[str, list] = {}
    for row in rows:
        person, stamp, label = row["person_id"], float(row["stamp"]), row["label"]
        run = last.get(person)
        if run is not None and run[3] == label:
            run[2] = stamp
            continue
        last[person] = [person, stamp, stamp, label]
        runs.append(last[person])
    return [tuple(run) for run in runs if run[3] != "none"]


def print_timeline(segments: list[dict]) -> None:
    """Truth next to what was recognized, one line per scripted segment."""
    print("\n  time (s)      truth          recognized     first correct after")
    for s in segments:
        delay = "-" if s["delay"] is None else f"{s['delay']:.2f} s"
        mark = "ok" if s["correct"] else ""
        recognized = s["majority"] or "-"
        print(f"  {s['start']:5.1f}-{s['end']:5.1f}  {s['truth']:<14} {recognized:<14} {delay:>8}  {mark}")
