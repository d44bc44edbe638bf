"""``bharnet streams``: the recognizer on continuous streams of real people, scored against truth.

Gesture datasets come as one clip per gesture; a robot sees a continuous stream. For each person
and distance of a clip folder laid out as ``SRC/<person>/<label>_<take>_<distance>_<framing>.avi``
(``../shared/data/hri_gestures``), this composes one stream video: the person's gesture clips in a
seeded random order, with stretches of their ``static`` clip (standing still, unscored) between
them. Each gesture segment starts at the motion onset found in the clip's skeletons (the dataset
from ``bharnet import videos``), so the delay measured is from the moment the arm starts moving.
The stream becomes a camera bag (``bag record-video``) and is scored with ``bag eval``, through
MediaPipe and the recognizer (``--realtime``: through the real ROS graph). The bag is removed
once scored (``--keep-bags`` keeps it); the stream's video stays and records it again.

Models: ``--model`` for every person, or ``--cv RUN`` to use, for each person, the fold model of a
``bharnet train --loso`` run that never saw them (exported to ONNX here, with the run's
calibration and its test-time mirroring). Output: ``OUT/<person>_<distance>/`` (video, labels,
report; the bag with ``--keep-bags``) and ``OUT/summary.json`` with the pooled segment accuracy,
detection delay and flicker.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from bharnet_ros.core.text_files import read_text_file
from bharnet_ros.core.video import is_video_file
from bharnet_ros.tools import UsageError, check_seed
from bharnet_ros.tools.bag import check_params_file
from bharnet_ros.tools.outputs import (
    atomic_file,
    check_output_folder,
    output_option,
    scratch_folder,
    staged_folder,
)

CLIP = re.compile(r"^(?P<label>.+?)_(?P<take>[^_]+)_(?P<distance>[^_]+)_(?P<framing>[^_]+)$")
IDLE_LABEL = "static"  # standing still: the filler between gestures, not scored
MAX_GAP = 60.0  # --gap: at most this many seconds (a stretch is capped by the static clip's length anyway)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", type=Path, help="clip folder: SRC/<person>/<label>_<take>_<distance>_<framing>.avi"
    )
    parser.add_argument(
        "--dataset", type=Path, required=True, help="the clips' skeletons (bharnet import videos)"
    )
    parser.add_argument("--out", type=output_option, required=True, help="output folder")
    parser.add_argument("--force", action="store_true", help="reuse a non-empty --out")
    models = parser.add_mutually_exclusive_group(required=True)
    models.add_argument("--model", type=Path, help="ONNX model for every person")
    models.add_argument(
        "--cv", type=Path, metavar="RUN", help="a --loso run: each person gets its fold's model"
    )
    parser.add_argument("--subjects", help="comma-separated people (default: every folder)")
    parser.add_argument("--distances", default="", help="comma-separated distances (default: all)")
    parser.add_argument("--skip", default=None, help="labels left out of the streams (default random)")
    parser.add_argument(
        "--gap", type=float, default=1.5,
        help=f"seconds of standing still between gestures, 0 to {MAX_GAP:g} (default 1.5)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the gesture order")
    parser.add_argument("--realtime", action="store_true", help="replay through the real ROS graph")
    parser.add_argument(
        "--params-file", default="", help="graph parameters YAML (default config/recognize.yaml)"
    )
    parser.add_argument("--expert-only", action="store_true", help="with --cv: export the expert-only model")
    parser.add_argument(
        "--keep-bags", action="store_true", help="keep each stream's camera bag (large) for replays"
    )


STREAM_FILES = ("stream.mp4", "labels.csv", "model.onnx", "bag/", "report/")  # in each stream's folder


def run(args: argparse.Namespace) -> int:
    from bharnet_ros.training.dataset import DatasetError, SkeletonDataset

    if not args.source.is_dir():
        raise UsageError(f"{args.source} is not a folder of per-person clip folders")
    check_gap(args.gap)
    check_seed(args.seed)
    try:
        skeletons = SkeletonDataset.load(args.dataset)
    except (DatasetError, FileNotFoundError) as err:
        raise UsageError(str(err)) from None
    if skeletons.layout != "mediapipe33":  # the motion onsets are read from MediaPipe's joints
        raise UsageError(
            f"--dataset {args.dataset} holds {skeletons.layout} skeletons; give the clips' own, "
            "from bharnet import videos (mediapipe33)"
        )
    people = _people(args)
    check_names(args, people)
    streams = {
        f"{person}_{distance}": (person, pieces)
        for person in people
        for distance, pieces in person_streams(args, person, skeletons).items()
    }
    if not streams:
        raise UsageError("no stream could be composed; check --subjects, --distances and the clip names")
    writes = ("summary.json", *(f"{name}/{entry}" for name in streams for entry in ("", *STREAM_FILES)))
    check_output_folder(args.out, [args.source, args.dataset, args.model, args.cv], args.force, writes=writes)
    check_params_file(args.params_file)
    check_models(args, sorted({person for person, _ in streams.values()}))
    check_clips(streams)
    if note := onsets_missing_note(skeletons, streams):
        print(note, flush=True)
    ungapped = streams_without_gap(streams) if args.gap > 0 else []
    if ungapped:
        print(
            f"note: {', '.join(ungapped)} have no {IDLE_LABEL} clip at their distance: their gestures "
            "play back to back, without --gap (each gesture's window still holds the one before)",
            flush=True,
        )
    results = {}
    for name, (person, pieces) in streams.items():
        results[name] = run_stream(args, person, pieces, args.out / name)
        print(_line(name, results[name]), flush=True)
    summary = {**pooled(results), "streams_without_gap": ungapped}
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_file(args.out / "summary.json") as temporary:
        temporary.write_text(json.dumps(summary, indent=2) + "\n")
    print(_pooled_line(summary))
    print(f"wrote {args.out}/summary.json")
    return 0


def check_clips(streams: dict[str, tuple[str, list]]) -> None:
    """Before the first stream runs: every clip of every stream opens, one camera's rate and size."""
    from bharnet_ros.core.compose import ComposeError, check_pieces

    for name, (_, pieces) in streams.items():
        try:
            check_pieces(pieces)
        except ComposeError as err:
            raise UsageError(f"stream {name}: {err}; fix or remove that clip") from None


def check_gap(gap: float) -> None:
    """--gap: a finite number of seconds from 0 to :data:`MAX_GAP` (nan or -1 would silently mean no gap)."""
    if not (math.isfinite(gap) and 0.0 <= gap <= MAX_GAP):
        raise UsageError(
            f"--gap must be a number of seconds from 0 to {MAX_GAP:g} (standing still between gestures), "
            f"not {gap:g}"
        )


def check_models(args: argparse.Namespace, people: list[str]) -> None:
    """Before any stream is composed: --model opens, or --cv has a usable fold for each of ``people``."""
    if args.cv is None:
        check_model(args.model, args.params_file)
        return
    if not args.cv.is_dir():
        raise UsageError(f"--cv {args.cv} is not a folder; give the --out folder of `bharnet train --loso`")
    from bharnet_ros.training.crossval import fold_folder

    missing = [p for p in people if not (fold_folder(args.cv, p) / "last.pt").is_file()]
    if missing:
        raise UsageError(
            f"--cv {args.cv} has no fold for {', '.join(missing)} (fold_<person>/last.pt); give a "
            "`bharnet train --loso` run that left them out, or leave them out with --subjects"
        )
    for person in people:
        fold_inputs(args.cv, person, args.expert_only)


def check_model(model: Path | None, params_file: str) -> list[str]:
    """The class names of the ONNX model the evaluation will run (None: the recognizer's model in
    ``params_file``, else the shipped one), checked before any video is composed or recorded;
    UsageError with the reason."""
    from bharnet_ros.core.bag_eval import EvalError, chosen_model
    from bharnet_ros.core.inference import InferenceError
    from bharnet_ros.core.recognizer import load_window_classifier

    try:
        return list(load_window_classifier(str(chosen_model(model, params_file)), "cpu").class_names)
    except (EvalError, InferenceError, ValueError) as err:
        raise UsageError(f"cannot load the model: {err}") from None


def _people(args: argparse.Namespace) -> list[str]:
    people = sorted(d.name for d in args.source.iterdir() if d.is_dir())
    if args.subjects:
        wanted = [s.strip() for s in args.subjects.split(",") if s.strip()]
        unknown = sorted(set(wanted) - set(people))
        if unknown:
            raise UsageError(f"no clip folders for {unknown} under {args.source}; found {people}")
        people = wanted
    return people


def check_names(args: argparse.Namespace, people: list[str]) -> None:
    """UsageError for a --distances or --skip name that no clip of ``people`` has: a typo there
    silently dropped a distance, or scored the ``random`` clips as gestures."""
    per_person = [person_clips(args.source / person) for person in people]
    given = {
        "--distances": (_names(args.distances), {distance for clips in per_person for distance in clips}),
        "--skip": (
            _names(args.skip or ""),
            {label for clips in per_person for found in clips.values() for label, _ in found},
        ),
    }
    for option, (names, known) in given.items():
        unknown = sorted(set(names) - known)
        if unknown:
            raise UsageError(
                f"{option} names {', '.join(unknown)}, which no clip of {', '.join(people)} has; "
                f"the clips have {', '.join(sorted(known))}"
            )


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def person_clips(folder: Path) -> dict[str, list[tuple[str, Path]]]:
    """Per distance, (label, video) of the clips in one person's folder."""
    clips: dict[str, list[tuple[str, Path]]] = {}
    for video in sorted(folder.iterdir()):
        match = CLIP.match(video.stem)
        if match and is_video_file(video):
            clips.setdefault(match["distance"], []).append((match["label"], video))
    return clips


def person_streams(args: argparse.Namespace, person: str, skeletons: Any) -> dict[str, list]:
    """Per distance, the pieces of one stream: shuffled gestures with still stretches between."""
    from bharnet_ros.core.compose import Piece

    clips = person_clips(args.source / person)
    wanted = _names(args.distances) or sorted(clips)
    skipped = {"random"} if args.skip is None else set(_names(args.skip))
    streams = {}
    for distance in wanted:  # each stream its own order, whichever others are composed
        rng = np.random.default_rng([args.seed, zlib.crc32(person.encode()), zlib.crc32(distance.encode())])
        gestures = [(label, v) for label, v in clips.get(distance, []) if label not in skipped | {IDLE_LABEL}]
        idle = [v for label, v in clips.get(distance, []) if label == IDLE_LABEL]
        pieces = []
        for index in rng.permutation(len(gestures)):
            label, video = gestures[index]
            if idle:
                pieces.append(Piece(idle[0], None, 0.0, args.gap))
            pieces.append(Piece(video, label, onset=clip_onset(skeletons, person, video.stem)))
        if pieces:
            streams[distance] = pieces
    return streams


def clip_onset(skeletons: Any, person: str, stem: str) -> float:
    """Motion onset of one clip, from its skeletons in the dataset (0 when it is not there)."""
    from bharnet_ros.core.compose import motion_onset
    from bharnet_ros.core.layouts import MP33

    name = clip_sample(skeletons, person, stem)
    if name is None:
        return 0.0
    sample = skeletons.sample(skeletons.names.tolist().index(name))
    shoulders = (MP33.index("left_shoulder"), MP33.index("right_shoulder"))
    wrists = (MP33.index("left_wrist"), MP33.index("right_wrist"))
    width, height = (int(side) for side in sample.image_size)
    aspect = width / height if width > 0 and height > 0 else 1.0
    return motion_onset(sample.timestamps, sample.body[0], shoulders, wrists, aspect)


def clip_sample(skeletons: Any, person: str, stem: str) -> str | None:
    """The dataset's sample name of one person's clip (qualified by the person, or bare), if any."""
    names = set(skeletons.names.tolist())
    return next((n for n in (f"{person}/{stem}", stem) if n in names), None)


def streams_without_gap(streams: dict[str, tuple[str, list]]) -> list[str]:
    """The streams composed without still stretches: their person has no clip of the still label at
    that distance (the HRI recordings have S1's only at 4 m), so they are scored otherwise."""
    return [name for name, (_, pieces) in streams.items() if all(piece.label for piece in pieces)]


def onsets_missing_note(skeletons: Any, streams: dict[str, tuple[str, list]]) -> str | None:
    """A note where some scored clips are not in --dataset: their delay runs from the clip's start,
    lead-in included, so the stream's time to a correct label reads longer than it is."""
    scored = [(person, p.video.stem) for person, pieces in streams.values() for p in pieces if p.label]
    missing = sum(clip_sample(skeletons, person, stem) is None for person, stem in scored)
    if not missing:
        return None
    return (
        f"note: {missing} of {len(scored)} clips are not in --dataset; their delays are measured "
        "from the clip's start, not from the motion's onset (give the dataset imported from these clips)"
    )


def run_stream(args: argparse.Namespace, person: str, pieces: list, folder: Path) -> dict[str, Any]:
    """Compose, record and evaluate one stream; returns its bag eval summary (the bag is kept
    only with ``--keep-bags``)."""
    with scratch_folder(folder / "bag", args.keep_bags):
        return record_and_score(args, person, pieces, folder)


def record_and_score(args: argparse.Namespace, person: str, pieces: list, folder: Path) -> dict[str, Any]:
    """The stream's video, its camera bag, the fold's model and the bag evaluation."""
    from bharnet_ros.core.annotations import save_csv
    from bharnet_ros.core.bag import BagError, write_video_bag
    from bharnet_ros.core.bag_eval import EvalError, evaluate_bag
    from bharnet_ros.core.compose import ComposeError, compose_stream
    from bharnet_ros.nodes.bag_eval import realtime_replay

    try:  # each file under its own name only once whole: a Ctrl-C leaves no half stream
        with atomic_file(folder / "stream.mp4") as temporary:
            segments = compose_stream(pieces, temporary)
        with staged_folder(folder / "bag") as staged:
            write_video_bag(folder / "stream.mp4", staged)
    except (ComposeError, BagError, ValueError) as err:
        raise UsageError(str(err)) from None
    with atomic_file(folder / "labels.csv") as temporary:
        save_csv(temporary, segments)
    labels = folder / "labels.csv"
    model = args.model or fold_model(args.cv, person, folder, args.expert_only)
    replay = realtime_replay() if args.realtime else None
    try:
        with staged_folder(folder / "report") as report:
            return evaluate_bag(
                folder / "bag", labels, report, model=model, params_file=args.params_file, replay=replay
            )
    except EvalError as err:
        raise UsageError(str(err)) from None


def fold_model(run: Path, person: str, folder: Path, expert_only: bool) -> Path:
    """The ONNX export of the fold of ``run`` that held ``person`` out, checked against PyTorch and
    loaded as the node loads it, as every export is."""
    from bharnet_ros.model.export import ExportError, export_checked

    checkpoint, model, calibration = fold_inputs(run, person, expert_only)
    path = folder / "model.onnx"
    try:
        with atomic_file(path) as temporary:
            export_checked(
                model, temporary, checkpoint.class_names, checkpoint.preprocess_config,
                checkpoint.hand_intensive, calibration=calibration,
            )  # fmt: skip
    except ExportError as err:
        raise UsageError(str(err)) from None
    return path


def fold_inputs(run: Path, person: str, expert_only: bool) -> tuple[Any, Any, dict[str, float] | None]:
    """The checkpoint of the fold of ``run`` that held ``person`` out, its model to export (with the
    run's test-time mirroring) and its calibration (None without one): the fold's own, fitted on
    the other folds' people, else (a run of one fold, or one written before 2026-12-07) the run's,
    which pools ``person`` too."""
    from bharnet_ros.model.checkpoint import CheckpointError, load_checkpoint
    from bharnet_ros.model.export import ExportError, calibration_for, prepare_model
    from bharnet_ros.training.crossval import fold_folder
    from bharnet_ros.training.feature_distance import distance_from_config

    checkpoint_path = fold_folder(run, person) / "last.pt"
    if not checkpoint_path.is_file():
        raise UsageError(f"{checkpoint_path} not found; give the --out folder of `bharnet train --loso`")
    try:
        checkpoint = load_checkpoint(checkpoint_path)
        mirror = run_test_mirror(run)
        if mirror is not None:
            checkpoint = _mirrored(checkpoint, mirror, run / "summary.json")
        model = prepare_model(checkpoint, expert_only)
        calibration_file = checkpoint_path.parent / "calibration.json"
        if not os.path.lexists(calibration_file):
            calibration_file = run / "calibration.json"
            if os.path.lexists(calibration_file):
                print(f"{person}: no fold calibration in {run}; using the run's, fitted on {person} too")
        calibration = (
            calibration_for(calibration_file, model, checkpoint.class_names)
            if os.path.lexists(calibration_file)
            else None
        )
        if calibration and "distance_threshold" in calibration:  # fitted as the run's folds were
            model.feature_distance = distance_from_config(
                model, checkpoint, checkpoint_path.parent / "config.yaml"
            )
    except (CheckpointError, ExportError, ValueError) as err:
        raise UsageError(str(err)) from None
    return checkpoint, model, calibration


def _mirrored(checkpoint: Any, mirror: list[int], summary: Path) -> Any:
    """``checkpoint`` with the run's test-time mirroring; UsageError naming ``summary`` if its
    ``test_mirror`` does not fit the fold's model (a hand-edited or damaged summary)."""
    from bharnet_ros.core.labels import shown
    from bharnet_ros.model.config import config_from_dict

    mirrored = checkpoint.with_test_mirror(mirror)
    try:
        config_from_dict(mirrored.model_config)
    except (ValueError, TypeError):
        raise UsageError(
            f"{summary}: test_mirror {shown(mirror)} does not fit the fold's {len(checkpoint.class_names)} "
            "classes; restore the summary of `bharnet train --loso`"
        ) from None
    return mirrored


def run_test_mirror(run: Path) -> list[int] | None:
    """The test-time mirroring a ``--loso`` run scored its folds with (None: not recorded; a value
    the fold's model cannot take is refused where it is applied, naming this file)."""
    summary = run / "summary.json"
    if not os.path.lexists(summary):
        return None
    try:
        mirror = json.loads(read_text_file(summary)).get("test_mirror")
    except OSError as err:
        raise UsageError(f"cannot read {summary}: {err.strerror}; give the folder of a --loso run") from None
    except (ValueError, AttributeError):
        return None
    return mirror if isinstance(mirror, list) else None


def pooled(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Segment accuracy, delay and flicker over every stream's segments."""
    segments = [s for r in results.values() for s in r["metrics"]["per_segment"]]
    delays = [s["delay"] for s in segments if s["delay"] is not None]
    minutes = sum(r["metrics"]["annotated_seconds"] for r in results.values()) / 60.0
    changes = sum(r["metrics"]["label_changes"] for r in results.values())
    per_label: dict[str, list[bool]] = {}
    for s in segments:
        per_label.setdefault(s["truth"], []).append(bool(s["correct"]))
    return {
        "streams": len(results),
        "segments": len(segments),
        "segment_accuracy": float(np.mean([s["correct"] for s in segments])) if segments else None,
        "segments_detected": len(delays),
        "delay_mean": float(np.mean(delays)) if delays else None,
        "delay_median": float(np.median(delays)) if delays else None,
        "flicker_per_minute": changes / minutes if minutes > 0 else None,
        "per_label_accuracy": {k: float(np.mean(v)) for k, v in sorted(per_label.items())},
        "per_stream": {
            name: {k: r["metrics"][k] for k in ("segment_accuracy", "delay_mean", "flicker_per_minute")}
            for name, r in results.items()
        },
    }


def _line(name: str, summary: dict[str, Any]) -> str:
    m = summary["metrics"]
    delay = "n/a" if m["delay_mean"] is None else f"{m['delay_mean']:.2f} s"
    return f"{name}: segments {m['segments_correct']}/{m['segments']}, mean delay {delay}"


def _pooled_line(summary: dict[str, Any]) -> str:
    accuracy = summary["segment_accuracy"]
    delay = summary["delay_mean"]
    return (
        f"{summary['streams']} streams, {summary['segments']} gestures: segment accuracy "
        f"{'n/a' if accuracy is None else f'{100 * accuracy:.1f} %'}, mean time to the first correct label "
        f"{'n/a' if delay is None else f'{delay:.2f} s'}"
    )
