"""Compare the pose back ends on the same clips, and measure the multi backend with several people.

``python -m bharnet_ros.tools.pose_compare CLIP...`` runs each back end over the same videos and
prints one Markdown row per back end: how often a body and each hand were found, and the time
per frame (the pose stage alone, decoding excluded). ``--pair LEFT RIGHT`` instead composes the
two clips side by side (``core.compose.compose_pair``) and reports, per track id of the multi back
end, where the person stood and in how many frames they were seen. docs/pose_stage.md has the
results. The measuring is :mod:`bharnet_ros.core.pose_eval`; this tool parses, prints and writes.
Its input is checked before any work; a mistake is one line on stderr and exit code 2, as with
``bharnet``.

``--people 1 2 3`` is issue #11's benchmark: for a fixed set of real HRI clip groups
(:data:`PEOPLE_GROUPS`), N different people are composed side by side at run time (nothing is
stored), the multi back end runs on every frame, and each person (a strip of the frame) feeds their
own recognizer with the shipped model. It reports pose-stage time per frame, id switches, and
per-person accuracy against the same clips alone, then replays the compositions at 20 Hz through
the real graph for the frame-to-label latency (bench_pipeline's measurement). ``--out`` writes it
into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bharnet_ros.core.compose import (
    PAIR_CROP,
    ComposeError,
    Piece,
    compose_pair,
    compose_people,
    compose_stream,
)
from bharnet_ros.core.inference import InferenceError
from bharnet_ros.core.params_file import dump_params_file, read_params_file, set_node_parameters
from bharnet_ros.core.paths import default_model
from bharnet_ros.core.pose_eval import (
    ComposedRun,
    Counts,
    PeopleFigures,
    clip_gesture,
    compare,
    figures,
    group_length,
    people_benchmark,
)
from bharnet_ros.core.pose_multi import MAX_POSES, NUM_POSES
from bharnet_ros.core.pose_stage import ALL_BACKENDS, MULTI, PoseStage
from bharnet_ros.core.recognizer import load_window_classifier
from bharnet_ros.core.video import VideoError, VideoReader
from bharnet_ros.tools import UsageError, check_count, check_number
from bharnet_ros.tools.outputs import check_document, output_option
from bharnet_ros.tools.report_doc import machine_facts, replace_section


def counts_row(counts: Counts, backend: str, clips: int) -> str:
    """One Markdown row of :data:`HEADER`."""
    median, p90 = np.percentile(counts.seconds, [50, 90]) * 1000 if counts.seconds else (0.0, 0.0)
    found = (counts.body, counts.left, counts.right, counts.any_hand)
    rates = " | ".join(f"{100 * n / max(counts.frames, 1):.0f} %" for n in found)
    return f"| {backend} | {clips} | {counts.frames} | {rates} | {median:.0f} / {p90:.0f} |"


HEADER = (
    "| backend | clips | frames | body | left hand | right hand | ≥ 1 hand | ms per frame, median / p90 |\n"
    "|---|---|---|---|---|---|---|---|"
)


def pair_report(left: Path, right: Path, crop: int = PAIR_CROP) -> list[str]:
    """Per track id of the multi back end on the composed pair: frames seen, side, hands."""
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "pair.mp4"
        total = compose_pair(left, right, clip, crop)
        seen: dict[int, list] = {}
        with PoseStage(MULTI) as stage, VideoReader(clip) as reader:
            for stamp, image in reader:
                for frame in stage.process(image, stamp)[1]:
                    seen.setdefault(frame.person_id, []).append(frame)
    lines = [f"{left.parent.name}/{left.name} | {right.parent.name}/{right.name}: {total} frames"]
    for person_id, frames in sorted(seen.items()):
        noses = np.array([f.body[0, 0] for f in frames])
        side = "left" if np.median(noses) < 0.5 else "right"
        hands = np.sum([f.hand_present for f in frames], axis=0)
        lines.append(
            f"  id {person_id}: {len(frames)} frames, {side} half (nose x {noses.min():.2f} to "
            f"{noses.max():.2f}), left hand {hands[0]}, right hand {hands[1]}"
        )
    return lines


# --------------------------------------------------------------------------------------------------
# --people N: several people in one frame, measured (issue #11)
# --------------------------------------------------------------------------------------------------

HRI_DATA = Path("../shared/data/hri_gestures")  # relative to the repository root
TAKE = "_1_1m_upper.avi"  # each gesture's 1 m, upper-body take
# ``--people N`` composes the first N clips of every group. A group is three different people doing
# three different gestures (so a swapped id shows), S1-S5 only: S6 was filmed at 10 fps and cannot
# share a frame with the others' 20 fps. Group k: subjects S(k+1), S(k+2), S(k+3) (mod 5); gestures:
# the 13 HRI gestures other than static (missing for S1) and random (no gesture), each 2-3 times,
# never the same person and gesture twice.
PEOPLE_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("S1/attention", "S2/come", "S3/greeting"),
    ("S2/left", "S3/right", "S4/slowdown"),
    ("S3/stop", "S4/yes", "S5/back"),
    ("S4/come", "S5/greeting", "S1/no"),
    ("S5/right", "S1/slowdown", "S2/turnback"),
    ("S1/yes", "S2/back", "S3/continue"),
    ("S2/greeting", "S3/no", "S4/shrug"),
    ("S3/slowdown", "S4/turnback", "S5/attention"),
    ("S4/back", "S5/continue", "S1/left"),
    ("S5/no", "S1/shrug", "S2/stop"),
)


def group_clips(data: Path, group: Sequence[str]) -> list[Path]:
    """The clip files of a group (``S1/greeting`` -> ``data/S1/greeting_1_1m_upper.avi``)."""
    return [data / f"{name}{TAKE}" for name in group]


PEOPLE_SECTION = "bench-people"
LIVE_RATE_HZ = 20.0  # the clips' own frame rate


PEOPLE_HEADER = (
    "| people | clips | frames | pose ms per frame, median / p95 | pose FPS | bodies found | "
    "id switches per 100 frames | per-person accuracy | same clips alone | decisions correct | "
    "same clips alone | classify ms per decision, median / p95 |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def people_row(f: PeopleFigures) -> str:
    """One Markdown row of :data:`PEOPLE_HEADER`."""
    return (
        f"| {f.people} | {f.clips} | {f.frames} | {f.pose_ms[0]:.0f} / {f.pose_ms[1]:.0f} | {f.fps:.1f} | "
        f"{_percent(f.found)} | {f.switches_per_100:.2f} | {_percent(f.accuracy)} | "
        f"{_percent(f.accuracy_alone)} | {_percent(f.decisions)} | {_percent(f.decisions_alone)} | "
        f"{f.classify_ms[0]:.1f} / {f.classify_ms[1]:.1f} |"
    )


def _percent(share: float) -> str:
    """``53 %``, or a dash where there was nothing to count."""
    return "–" if np.isnan(share) else f"{100 * share:.0f} %"


def _people(count: int) -> str:
    """``1 person``, ``2 people``."""
    return "1 person" if count == 1 else f"{count} people"


def person_lines(runs: dict[int, list[ComposedRun]]) -> list[str]:
    """One line per composed clip: each person's gesture, ids seen and answer (for checking by eye)."""
    lines = []
    for count, composed in sorted(runs.items()):
        for run in composed:
            people = "; ".join(
                f"{p.clip.parent.name}/{p.gesture}: ids {sorted(set(p.ids))}, {len(p.ids)}/{run.frames} "
                f"frames, said {p.majority}"
                for p in run.people
            )
            lines.append(f"* {_people(count)}, {run.frames} frames: {people}")
    return lines


# --------------------------------------------------------------------------------------------------
# Frame-to-label latency: the composed clips through the real graph (bench_pipeline's measurement)
# --------------------------------------------------------------------------------------------------


def live_latency(
    groups: Sequence[Sequence[Path]],
    count: int,
    model: str,
    num_poses: int,
    seconds: float,
    folder: Path,
    crop: int = PAIR_CROP,
) -> dict[str, Any]:
    """Replay ``count``-person compositions (the groups one after another, looped to ``seconds``) at
    20 Hz into the real pose and recognizer nodes, with the multi back end; bench_pipeline's figures."""
    from bharnet_ros.tools.bench_pipeline import measure_run, video_bag_of

    pieces, frames = [], 0
    for index, group in enumerate(groups):
        if frames >= seconds * LIVE_RATE_HZ:
            break
        path = folder / f"{count}_{index}.mp4"
        frames += compose_people(group[:count], path, crop, max_frames=group_length(group))
        pieces.append(Piece(path))
    stream = folder / f"stream_{count}.mp4"
    compose_stream(pieces, stream)
    bag = video_bag_of(str(stream), folder / f"bag_{count}", seconds, rate=LIVE_RATE_HZ)
    return measure_run(f"{count}", bag, "/camera/image_raw", model, multi_params(folder, num_poses))


def multi_params(folder: Path, num_poses: int) -> str:
    """config/recognize.yaml with the multi pose back end and ``num_poses``, written into ``folder``."""
    params = read_params_file()
    set_node_parameters(params, "pose", backend=MULTI, num_poses=num_poses)
    path = folder / "multi_params.yaml"
    path.write_text(dump_params_file(params))
    return str(path)


LATENCY_HEADER = (
    "| people | frames sent (20 Hz) | processed FPS | dropped | decisions/s | "
    "frame-to-label p50 / p95 ms | CPU (cores) |\n|---|---|---|---|---|---|---|"
)


def latency_row(count: int, r: dict[str, Any]) -> str:
    """One Markdown row of :data:`LATENCY_HEADER` from bench_pipeline's measurement."""
    p50, p95 = (np.percentile(r["latency"], [50, 95]) * 1000) if r["latency"] else (np.nan, np.nan)
    return (
        f"| {count} | {r['frames']} | {r['processed_fps']:.1f} | {r['dropped']} | {r['actions_per_s']:.1f} | "
        f"{p50:.0f} / {p95:.0f} | {r['cpu_cores']:.2f} |"
    )


# --------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------


def target_lines(table: dict[int, PeopleFigures], latency: dict[int, dict[str, Any]]) -> list[str]:
    """Issue #11's targets, each with the measured figure and whether it is met."""
    lines = []
    if 2 in table:
        lines.append(_target("2 people: pose stage ≥ 15 FPS", f"{table[2].fps:.1f} FPS", table[2].fps >= 15))
    if 2 in latency and latency[2]["latency"]:
        lines += _latency_targets(latency[2])
    for count, f in sorted(table.items()):
        if count > 1:
            lines += _composed_targets(f)
    return lines


def _latency_targets(live: dict[str, Any]) -> list[str]:
    """The 2-person targets measured in the real graph: frame-to-label p95 and processed FPS."""
    p95 = float(np.percentile(live["latency"], 95) * 1000)
    fps = live["processed_fps"]
    return [
        _target("2 people: frame-to-label p95 ≤ 150 ms", f"{p95:.0f} ms", p95 <= 150),
        _target("2 people: the live graph keeps ≥ 15 FPS", f"{fps:.1f} FPS", fps >= 15),
    ]


def _composed_targets(f: PeopleFigures) -> list[str]:
    """Id switches and per-person accuracy against the same clips alone, for one number of people."""
    measured = f"{100 * f.accuracy:.0f} % vs {100 * f.accuracy_alone:.0f} %"
    close = abs(f.accuracy - f.accuracy_alone) <= 0.05
    return [
        _target(
            f"{f.people} people: id switches ≤ 1 per 100 frames",
            f"{f.switches_per_100:.2f}",
            f.switches_per_100 <= 1,
        ),
        _target(f"{f.people} people: per-person accuracy within 5 points of alone", measured, close),
    ]


def _target(what: str, measured: str, met: bool) -> str:
    """A Markdown bullet: the target, the figure, met or not."""
    return f"* {what}: {measured}, **{'met' if met else 'NOT met'}**"


def people_report(
    table: dict[int, PeopleFigures], latency: dict[int, dict[str, Any]], runs: dict[int, list[ComposedRun]]
) -> str:
    """The Markdown body: figures per number of people, live latency, targets, per-clip detail."""
    parts = [PEOPLE_HEADER, *(people_row(f) for _, f in sorted(table.items()))]
    if latency:
        parts += ["", LATENCY_HEADER, *(latency_row(n, r) for n, r in sorted(latency.items()))]
    parts += ["", "Issue #11's targets:", "", *target_lines(table, latency)]
    parts += ["", "<details><summary>Per clip</summary>", "", *person_lines(runs), "", "</details>"]
    return "\n".join(parts)


def run_people(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``--people``: measure, print, and with ``--out`` write the docs section."""
    facts = machine_facts()
    model = args.model or str(default_model())
    if args.out:  # before the measurement, which a broken file would otherwise lose
        check_document(args.out, [Path(model), args.data], section=PEOPLE_SECTION)
    classifier = load_window_classifier(model)
    groups = [group_clips(args.data, group) for group in PEOPLE_GROUPS[: args.groups]]
    _check_clips(groups, classifier.class_names)
    runs = people_benchmark(
        groups, args.people, classifier, args.num_poses, args.max_frames, args.crop, progress=_progress
    )
    table = {count: figures(runs, count) for count in runs}
    latency = {}
    if args.live_seconds > 0:
        with tempfile.TemporaryDirectory() as folder:
            for count in sorted(set(args.people)):
                latency[count] = live_latency(
                    groups, count, model, args.num_poses, args.live_seconds, Path(folder), args.crop
                )
    report = people_report(table, latency, runs)
    print(report)
    if args.out:
        facts["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        _write_section(args, argv, Path(model), facts, report)
    return 0


def _progress(count: int, clips: Sequence[Path]) -> None:
    """One line per finished run: how many people, and whose clips."""
    print(f"{_people(count)}: {', '.join(c.parent.name + '/' + c.name for c in clips)}", flush=True)


def _check_clips(groups: Sequence[Sequence[Path]], class_names: Sequence[str]) -> None:
    """UsageError when a clip's gesture is not one of the model's classes (its accuracy would mean
    nothing), or a clip is missing or no video."""
    unknown = sorted({clip_gesture(c) for g in groups for c in g} - set(class_names))
    if unknown:
        raise UsageError(
            f"the model does not know the gestures {', '.join(unknown)} of the clip groups; "
            "give a model trained on the hri_gestures classes (--model)"
        )
    for clip in dict.fromkeys(c for g in groups for c in g):
        check_video(clip, "--data clip")


def _write_section(
    args: argparse.Namespace, argv: Sequence[str], model: Path, facts: dict[str, str], report: str
) -> None:
    """The report as docs section ``bench-people``: the command, model, settings, machine, figures."""
    changed = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(model.stat().st_mtime))
    header = (
        f"Produced by `{_command(argv)}` with `{model.name}` (file modified {changed}), "
        f"`num_poses` {args.num_poses}, the middle {args.crop} pixels of each clip."
    )
    machine = [f"* {key}: {value}" for key, value in facts.items()]
    replace_section(args.out, PEOPLE_SECTION, "\n".join([header, "", *machine, "", report]))


def _command(argv: Sequence[str]) -> str:
    """The command line as typed, with ``nice`` where the process runs niced."""
    niceness = os.nice(0)
    prefix = f"nice -n {niceness} " if niceness > 0 else ""
    return f"{prefix}python -m bharnet_ros.tools.pose_compare {shlex.join(argv)}"


PROG = "python -m bharnet_ros.tools.pose_compare"
MOST_FRAMES = 100_000  # frames per clip (--max-frames): over an hour at 20 fps
LEAST_CROP = 2  # pixels of each clip's width: OpenCV cannot write a strip of one
MOST_CROP = 8192  # beyond any clip's width (a wider crop keeps the whole clip)
LONGEST_LIVE = 600.0  # seconds of replay through the live graph per number of people
SHORTEST_LIVE = 1.0  # a replay shorter holds too few frames for a window


def main(argv: list[str] | None = None) -> int:
    """Compare back ends on clips, report a composed pair, or run the several-people benchmark.
    A mistake in the input is one line on stderr and exit code 2, as with ``bharnet``."""
    from bharnet_ros.cli import one_line, os_problem

    argv = sys.argv[1:] if argv is None else argv
    try:
        return _run(argv)
    except (UsageError, VideoError, ComposeError, InferenceError) as err:
        print(f"{PROG}: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except OSError as err:  # a name too long, a folder we may not write, a full disk
        print(f"{PROG}: error: {one_line(os_problem(err))}", file=sys.stderr)
        return 2


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("clips", nargs="*", type=Path, help="videos of one person each")
    parser.add_argument("--backends", nargs="+", choices=ALL_BACKENDS, default=["holistic", MULTI])
    parser.add_argument("--max-frames", type=int, default=None, help="frames per clip at most")
    parser.add_argument(
        "--pair", nargs=2, type=Path, metavar=("LEFT", "RIGHT"), help="two clips side by side"
    )
    _add_people_arguments(parser)
    args = parser.parse_args(argv)
    if not (args.people or args.pair or args.clips):
        parser.error("give clips to compare, --pair LEFT RIGHT, or --people N")
    check_mode(args, parser)
    check_arguments(args)
    if args.people:
        return run_people(args, argv)
    if args.pair:
        print("\n".join(pair_report(*args.pair, crop=args.crop)))
        return 0
    print(HEADER)
    for backend, counts in compare(args.clips, args.backends, args.max_frames).items():
        print(counts_row(counts, backend, len(args.clips)))
    return 0


# The options each mode reads: any other given to it was silently ignored (`--out` wrote no doc).
MODE_OPTIONS = {
    "clips": {"backends", "max_frames"},
    "--pair": {"crop"},
    "--people": {"max_frames", "num_poses", "crop", "groups", "data", "model", "live_seconds", "out"},
}


def check_mode(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """UsageError for two modes at once, or for an option the chosen mode does not read."""
    modes = [
        mode for mode, given in zip(MODE_OPTIONS, (args.clips, args.pair, args.people), strict=True) if given
    ]
    if len(modes) > 1:
        raise UsageError(f"give one of clips, --pair or --people, not {' and '.join(modes)}")
    options = set().union(*MODE_OPTIONS.values())
    ignored = sorted(o for o in options - MODE_OPTIONS[modes[0]] if getattr(args, o) != parser.get_default(o))
    if ignored:
        option = "--" + ignored[0].replace("_", "-")
        raise UsageError(f"{option} does not apply to {modes[0]}; leave it out")


def check_arguments(args: argparse.Namespace) -> None:
    """UsageError for input that would fail, or measure nothing, only after the work: counts out of
    range (``--groups 0`` failed, ``-9`` silently used one group, ``--max-frames 0`` reported
    0 frames), an endless ``--live-seconds``, and clips that are missing or no video."""
    if args.max_frames is not None:
        check_count("--max-frames", args.max_frames, 1, MOST_FRAMES)
    check_count("--num-poses", args.num_poses, 1, MAX_POSES)
    check_count("--crop", args.crop, LEAST_CROP, MOST_CROP)
    if args.groups is not None:
        check_count("--groups", args.groups, 1, len(PEOPLE_GROUPS))
    check_number("--live-seconds", args.live_seconds, 0.0, LONGEST_LIVE, "seconds (0 skips the replay)")
    if 0 < args.live_seconds < SHORTEST_LIVE:  # less than a frame, found only after the benchmark
        raise UsageError(
            f"--live-seconds {args.live_seconds} is too short; give 0 or at least {SHORTEST_LIVE}"
        )
    if args.people and not args.data.is_dir():
        raise UsageError(f"--data {args.data} is not a folder; give the hri_gestures folder")
    for clip in args.pair or args.clips:
        check_video(clip, "--pair clip" if args.pair else "clip")


def check_video(path: Path, what: str) -> None:
    """UsageError unless ``path`` opens as a video and one frame decodes (a missing file, a folder
    or a text file named .mp4 otherwise fail with a traceback in the middle of the work)."""
    try:
        with VideoReader(path):
            pass
    except FileNotFoundError:
        raise UsageError(f"{what} {path} not found; check the path") from None
    except VideoError as err:
        raise UsageError(f"{what}: {err}") from None


def _add_people_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``--people`` (issue #11's benchmark)."""
    group = parser.add_argument_group("several people (--people)")
    group.add_argument(
        "--people", nargs="+", type=int, choices=(1, 2, 3), help="people per composed clip (1 always runs)"
    )
    group.add_argument("--num-poses", type=int, default=NUM_POSES, help="the multi back end's num_poses")
    group.add_argument("--crop", type=int, default=PAIR_CROP, help="pixels kept of each clip's width")
    group.add_argument("--groups", type=int, default=None, help="use the first GROUPS clip groups only")
    group.add_argument("--data", type=Path, default=HRI_DATA, help="the hri_gestures folder")
    group.add_argument("--model", default="", help="ONNX model (default: the shipped one)")
    group.add_argument(
        "--live-seconds", type=float, default=20.0, help="replay through the real graph (0 = skip)"
    )
    group.add_argument(
        "--out", type=output_option, default=None, help="markdown file to update (docs/benchmarks.md)"
    )


if __name__ == "__main__":
    sys.exit(main())
