"""``bharnet bench pipeline`` and ``bharnet bench soak``: the whole graph at camera rate, measured.

pipeline: a real video (looped to ``--seconds``) and a synthetic skeleton stream are replayed at
30 Hz into the real nodes, the skeleton stream a second time with the recognizer's ``model`` set
every :data:`SWAP_SECONDS` (the hot swap); pose-stage FPS, classifier rate, frame-to-label
latency, CPU use and dropped frames are written to docs/benchmarks.md with the machine description
and the command.
soak: video source + pose + recognizer for ``--minutes`` at 30 Hz; RSS is sampled every 10 s and
the run fails if memory grows faster than 1 MB/min or any buffer exceeds its bound.
"""

from __future__ import annotations

import argparse
import itertools
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bharnet_ros.core.params_file import dump_params_file, read_params_file, set_node_parameters
from bharnet_ros.core.paths import default_model
from bharnet_ros.tools import UsageError
from bharnet_ros.tools.outputs import check_document, output_option, terminated_as_interrupt

RATE_HZ = 30.0
DEFAULT_VIDEO = "../shared/data/videos/sign_dobrii_den.mp4"  # beside the checkout (default_video)
MAX_GROWTH_MB_PER_MIN = 1.0
# --seconds of `pipeline`: one scripted gesture lasts 2 s; five minutes of 30 Hz camera frames is a
# bag of several GB in the temporary folder
SHORTEST_STREAM, LONGEST_STREAM = 2.0, 300.0
# the temporary bag of raw camera frames (width x height x 3 bytes each, 30 a second): the default
# video for 300 s is 2.1 GB, a 1080p one 187 MB a second; memory holds up to as much (the frames
# the bag loops over)
MOST_BAG_BYTES = 4 * 10**9
SWAP_SECONDS = 2.0  # between two sets of ``model`` in the hot-swap row
# --minutes of `soak`: the growth is fitted after the first minute, on samples that jitter by about
# 2 MB; a slope of 1 MB/min stands out of that only over several minutes (2-minute stretches of a
# flat 10-minute run failed 10 times in 49); at most a week
SHORTEST_SOAK, LONGEST_SOAK = 10.0, 7 * 24 * 60.0


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--video", default=None, help=f"real video to replay (looped; default {DEFAULT_VIDEO})"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each replayed stream")
    parser.add_argument("--model", default="", help="ONNX model (default: the shipped one)")
    parser.add_argument(
        "--out", type=output_option, default=None, help="markdown file to update (docs/benchmarks.md)"
    )


def add_soak_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--video", default=None, help=f"real video played in a loop (default {DEFAULT_VIDEO})"
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="soak duration")
    parser.add_argument("--model", default="", help="ONNX model (default: the shipped one)")
    parser.add_argument(
        "--out", type=output_option, default=None, help="markdown file to update (docs/benchmarks.md)"
    )


def run_pipeline(args: argparse.Namespace) -> int:
    from bharnet_ros.tools import check_number

    check_number("--seconds", args.seconds, SHORTEST_STREAM, LONGEST_STREAM, "seconds")
    model = _check_inputs(args, "bench-pipeline")
    check_bag_size(args.video, args.seconds)
    from bharnet_ros.nodes.bag_io import SwapCount, swapping_models

    # SIGTERM (`timeout`) removes the bags as Ctrl-C does: 7 MB per second of stream were left
    with terminated_as_interrupt(), tempfile.TemporaryDirectory() as scratch:
        video_bag = video_bag_of(args.video, Path(scratch) / "video", args.seconds)
        skeleton_bag = _skeleton_bag(Path(scratch) / "skeletons", args.seconds)
        twin = shutil.copy(model, Path(scratch) / "twin.onnx")  # another file: each set loads one
        swaps = SwapCount()
        rows = [
            measure_run("real video + MediaPipe + recognizer", video_bag, "/camera/image_raw", model),
            measure_run("synthetic skeletons + recognizer", skeleton_bag, "/bharnet/skeletons", model),
            measure_run(
                f"the same, `model` set every {SWAP_SECONDS:g} s", skeleton_bag, "/bharnet/skeletons", model,
                during=swapping_models([model, str(twin)], swaps, SWAP_SECONDS),
            ),
        ]  # fmt: skip
        rows[-1]["name"] += f" ({swaps.done} swaps, {swaps.refused} refused)"
    table = _pipeline_table(rows)
    print(table)
    if args.out:
        from bharnet_ros.tools.report_doc import record_measurement

        record_measurement(args.out, "bench-pipeline", table)
    return 0


def _check_inputs(args: argparse.Namespace, section: str) -> str:
    """The model to run, once the model, the video and ``--out`` (with its ``section``) are checked
    (before any work)."""
    from bharnet_ros.tools.run import check_video

    model = _model(args.model)
    args.video = default_video() if args.video is None else args.video
    check_video(args.video)
    if args.out:
        check_document(args.out, [Path(model), Path(args.video)], section=section)
    return model


def default_video() -> str:
    """The shared sign video beside the checkout, from whatever folder the command runs in (it was
    looked for from the current folder)."""
    from bharnet_ros.core.paths import CHECKOUT

    beside = CHECKOUT / DEFAULT_VIDEO
    return str(beside.resolve()) if beside.is_file() else DEFAULT_VIDEO


def _model(path: str) -> str:
    """``--model`` or the shipped default, loaded once here: the node would only log a model it
    cannot load and publish nothing, which a soak would count as a pass."""
    from bharnet_ros.core.inference import InferenceError
    from bharnet_ros.core.recognizer import load_window_classifier

    try:
        model = path or str(default_model())
        load_window_classifier(model, "cpu")
    except (InferenceError, FileNotFoundError, ValueError) as err:
        raise UsageError(f"--model: {err}" if path else f"{err}; pass --model") from None
    return model


def check_bag_size(video: str, seconds: float, rate: float = RATE_HZ) -> None:
    """UsageError, before any work, where the temporary bag of raw frames (width x height x 3 bytes
    a frame, ``seconds`` x ``rate`` frames) would be larger than :data:`MOST_BAG_BYTES` or than the
    free space of the temporary folder: a large video filled GB of disk and memory unchecked."""
    width, height = _frame_size(video)
    frame_bytes = width * height * 3
    needed = frame_bytes * int(seconds * rate)
    folder = tempfile.gettempdir()
    room, limit = min(
        (MOST_BAG_BYTES, "the cap"), (shutil.disk_usage(folder).free, f"the free space in {folder}")
    )
    if needed <= room:
        return
    longest = math.floor(room / (frame_bytes * rate))
    fix = f"lower --seconds to {longest} or less" if longest >= SHORTEST_STREAM else "pass a smaller --video"
    raise UsageError(
        f"--video {video} ({width}x{height}) for --seconds {seconds:g} needs a temporary bag of "
        f"{needed / 1e9:.2f} GB of raw frames, more than {limit} ({room / 1e9:.2f} GB); {fix}"
    )


def _frame_size(video: str) -> tuple[int, int]:
    """(width, height) of the video's first decoded frame."""
    from bharnet_ros.core.video import VideoError, VideoReader

    try:
        with VideoReader(video) as reader:
            _, frame = next(iter(reader))
    except (VideoError, FileNotFoundError) as err:
        raise UsageError(f"{err}; pass --video") from None
    return frame.shape[1], frame.shape[0]


def video_bag_of(video: str, bag: Path, seconds: float, rate: float = RATE_HZ) -> Path:
    """The video's frames, looped to ``seconds``, stamped at exactly ``rate`` (30 Hz; bgr8 Image)."""
    from bharnet_ros.core.bag import BagWriter, image_message, seconds_to_ns
    from bharnet_ros.core.video import VideoError, VideoReader

    needed = int(seconds * rate)
    try:
        with VideoReader(video) as reader:  # no more frames than the bag loops over
            frames = [frame for _, frame in itertools.islice(reader, needed)]
    except (VideoError, FileNotFoundError) as err:
        raise UsageError(f"{err}; pass --video") from None
    if not frames:
        raise UsageError(f"{video} holds no frame; pass another --video")
    with BagWriter(bag) as writer:
        writer.add_topic("/camera/image_raw", "sensor_msgs/msg/Image")
        for i in range(needed):
            stamp = seconds_to_ns(1000.0 + i / rate)
            writer.write("/camera/image_raw", stamp, image_message(frames[i % len(frames)], stamp))
    return bag


def gesture_script(classes: list[str], seconds: float) -> list[tuple[str, float]]:
    """Gestures of 2 s each, the classes in turn, filling ``seconds`` (the last takes the rest):
    as long as the video stream it is measured beside."""
    count = max(int(seconds // 2), 1)
    script = [(classes[i % len(classes)], 2.0) for i in range(count)]
    script[-1] = (script[-1][0], seconds - 2.0 * (count - 1))
    return script


def _skeleton_bag(bag: Path, seconds: float) -> Path:
    from bharnet_ros.core.bag import SKELETON_TYPE, BagWriter, seconds_to_ns, skeleton_array_message
    from bharnet_ros.training.synth import CLASS_NAMES, generate_scripted

    script = gesture_script(CLASS_NAMES, seconds)
    sequence, _ = generate_scripted(script, np.random.default_rng(0), fps=RATE_HZ)
    with BagWriter(bag) as writer:
        writer.add_topic("/bharnet/skeletons", SKELETON_TYPE)
        for t in range(len(sequence)):
            frame = sequence.frame(t)
            frame.timestamp += 1000.0
            stamp = seconds_to_ns(frame.timestamp)
            writer.write("/bharnet/skeletons", stamp, skeleton_array_message([frame], stamp))
    return bag


def measure_run(
    name: str, bag: Path, topic: str, model: str, params_file: str = "", during: Any = None
) -> dict[str, Any]:
    """Replay one bag at its own timing into the real nodes; CPU is this process's (all nodes), from
    the first message to the end of the drain: the nodes' start-up (model and MediaPipe loads) is
    not the pipeline's load.

    ``params_file`` replaces config/recognize.yaml (e.g. the multi pose back end, for several
    people); ``during`` runs beside the replay (``run_graph_on_bag``).
    """
    from bharnet_ros.core.bag import bag_topics
    from bharnet_ros.nodes.bag_eval import live_run
    from bharnet_ros.nodes.bag_io import run_graph_on_bag
    from bharnet_ros.nodes.graph import GraphOptions

    options = GraphOptions(camera_topic="/camera/image_raw", model=model, params_file=params_file)
    live = run_graph_on_bag(bag, topic, bag_topics(bag)[topic], options, during=during)
    run = live_run(live, origin=0)
    seconds = max(live.replay_seconds, 1e-9)
    return {
        "name": name,
        "frames": run.frames,
        # without a pose stage nothing counts what the recognizer took: the replay's count is no measure
        "processed_fps": run.processed / seconds if live.pose_stage else None,
        "dropped": run.dropped,
        "actions_per_s": len(run.predictions) / seconds,
        "latency": [v for v in run.latencies if v is not None],
        "cpu_cores": live.busy_cpu_seconds / max(live.busy_seconds, 1e-9),
    }


def _pipeline_table(rows: list[dict[str, Any]]) -> str:
    columns = ("input (30 Hz)", "frames", "processed FPS", "dropped", "classifier runs/s")
    columns += ("frame-to-label p50 / p95 ms", "CPU (cores)")
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for r in rows:
        latency = "no label came"  # too short a video for a first decision
        if r["latency"]:
            latency = " / ".join(f"{np.percentile(r['latency'], q) * 1000:.0f}" for q in (50, 95))
        processed = "n/a" if r["processed_fps"] is None else f"{r['processed_fps']:.1f}"
        dropped = "n/a" if r["dropped"] is None else str(r["dropped"])
        lines.append(
            f"| {r['name']} | {r['frames']} | {processed} | {dropped} | "
            f"{r['actions_per_s']:.1f} | {latency} | {r['cpu_cores']:.2f} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Soak
# --------------------------------------------------------------------------------------------------


def run_soak(args: argparse.Namespace) -> int:
    """The real graph on a looped video at 30 Hz; RSS every 10 s; exit 1 on growth or unbounded buffers."""
    from bharnet_ros.tools import check_number

    check_number("--minutes", args.minutes, SHORTEST_SOAK, LONGEST_SOAK, "minutes")
    model = _check_inputs(args, "bench-soak")  # also resolves the default --video
    samples, bounded, stalled = _soak(args.video, model, args.minutes * 60.0)
    slope = _growth_mb_per_min(samples)
    ok = slope <= MAX_GROWTH_MB_PER_MIN and bounded and not stalled
    lines = [f"| {t / 60:5.1f} min | {rss:7.1f} MB |" for t, rss in samples]
    report = "\n".join([
        f"RSS growth after the first minute: **{slope:+.2f} MB/min** (limit {MAX_GROWTH_MB_PER_MIN} MB/min); "
        f"buffers within their bounds: {'yes' if bounded else 'NO'}; frames kept coming: "
        f"{'NO, ' + stalled if stalled else 'yes'}; result: **{'pass' if ok else 'FAIL'}**",
        "", "| time | RSS |", "|---|---|", *lines,
    ])  # fmt: skip
    print(report)
    if args.out:
        from bharnet_ros.tools.report_doc import record_measurement

        record_measurement(args.out, "bench-soak", report)
    return 0 if ok else 1


def _soak(video: str, model: str, seconds: float) -> tuple[list[tuple[float, float]], bool, str]:
    from bharnet_ros.nodes.graph import GraphOptions
    from bharnet_ros.nodes.runner import running_graph

    with tempfile.TemporaryDirectory() as scratch:
        options = GraphOptions(video=video, model=model, params_file=_looping_params(Path(scratch)))
        with running_graph(options) as graph:
            return _sample_rss(seconds, graph.node("recognizer"), graph.node("pose"))


def _looping_params(folder: Path) -> str:
    params = read_params_file()
    set_node_parameters(params, "video_source", loop=True, rate=RATE_HZ)
    path = folder / "params.yaml"
    path.write_text(dump_params_file(params))
    return str(path)


def _sample_rss(seconds: float, recognizer: Any, pose: Any) -> tuple[list[tuple[float, float]], bool, str]:
    """(elapsed s, RSS MB) every 10 s; whether every window buffer, the recognizer's per-person
    state and the node's per-person counters stayed within their bounds; and, where the pose node
    took no new frame in a 10 s interval, when (a graph whose video stopped is no soak)."""
    samples, bounded, start, stalled, frames_before = [], True, time.monotonic(), "", -1
    while (elapsed := time.monotonic() - start) < seconds:
        if pose.frames_in == frames_before and not stalled:
            stalled = f"no frame from {samples[-1][0] / 60:.1f} min on"
        frames_before = pose.frames_in
        samples.append((elapsed, _rss_mb()))
        print(f"{elapsed / 60:5.1f} min  RSS {samples[-1][1]:.1f} MB", flush=True)
        if recognizer.recognizer is not None:
            windows = recognizer.recognizer.windows
            bounded &= len(windows) <= windows.max_persons
            bounded &= all(len(buffer) <= buffer.maxlen for _, buffer in windows.items())
            bounded &= len(recognizer.recognizer.person_states()) <= windows.max_persons
            bounded &= len(recognizer.drops) <= 2 * windows.max_persons + 1
        time.sleep(min(10.0, max(seconds - elapsed, 0.0)))
    samples.append((time.monotonic() - start, _rss_mb()))
    return samples, bounded, stalled


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _growth_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS over time, ignoring the first minute (warm-up, caches)."""
    steady = [(t, m) for t, m in samples if t >= 60.0] or samples
    if len(steady) < 2:
        return 0.0
    t, m = np.array(steady).T
    return float(np.polyfit(t / 60.0, m, 1)[0])
