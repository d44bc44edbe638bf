"""Compare the pose back ends on the same clips, and make two-person clips for the multi backend.

``python -m bharnet_ros.tools.pose_compare CLIP...`` runs each back end over the same videos and
prints one Markdown row per back end: how often a body and each hand were found, and the time
per frame (the pose stage alone, decoding excluded). ``--pair LEFT RIGHT`` instead composes the
two clips side by side (:func:`compose_pair`) and reports, per track id of the multi back end,
where the person stood and in how many frames they were seen. docs/pose_stage.md has the results.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from bharnet_ros.core.compose import side_by_side
from bharnet_ros.core.pose_stage import ALL_BACKENDS, MULTI, PoseStage
from bharnet_ros.core.video import VideoReader

PAIR_HEIGHT = 480
PAIR_CROP = 400  # pixels kept of each 640-wide clip: the person stays large enough for the pose detector


@dataclass
class Counts:
    """Detections and per-frame times of one back end over some clips."""

    frames: int = 0
    body: int = 0
    left: int = 0
    right: int = 0
    any_hand: int = 0
    seconds: list[float] = field(default_factory=list)

    def row(self, backend: str, clips: int) -> str:
        median, p90 = np.percentile(self.seconds, [50, 90]) * 1000 if self.seconds else (0.0, 0.0)
        found = (self.body, self.left, self.right, self.any_hand)
        rates = " | ".join(f"{100 * n / max(self.frames, 1):.0f} %" for n in found)
        return f"| {backend} | {clips} | {self.frames} | {rates} | {median:.0f} / {p90:.0f} |"


HEADER = (
    "| backend | clips | frames | body | left hand | right hand | ≥ 1 hand | ms per frame, median / p90 |\n"
    "|---|---|---|---|---|---|---|---|"
)


def compare(
    clips: Sequence[Path], backends: Sequence[str], max_frames: int | None = None
) -> dict[str, Counts]:
    """Each back end over every clip (a fresh pose stage per clip); the first person counts for multi."""
    results = {}
    for backend in backends:
        counts = Counts()
        for clip in clips:
            with PoseStage(backend) as stage, VideoReader(clip) as reader:
                for index, (stamp, image) in enumerate(reader):
                    if index == max_frames:
                        break
                    started = time.perf_counter()
                    _, frames = stage.process(image, stamp)
                    counts.seconds.append(time.perf_counter() - started)
                    _count(counts, frames[0] if frames else None)
        results[backend] = counts
    return results


def _count(counts: Counts, frame) -> None:
    counts.frames += 1
    if frame is None:
        return
    counts.body += frame.body_present
    counts.left += bool(frame.hand_present[0])
    counts.right += bool(frame.hand_present[1])
    counts.any_hand += bool(frame.hand_present.any())


def compose_pair(
    left: Path, right: Path, output: Path, crop: int = PAIR_CROP, height: int = PAIR_HEIGHT
) -> int:
    """Two people's clips side by side in one mp4: the middle ``crop`` pixels of each, scaled to
    ``height`` (:func:`~bharnet_ros.core.compose.side_by_side`). Returns the frames written.

    Cropping keeps each person large in the frame: the Tasks pose detector sees the whole image at
    224 x 224, and a person in a 1280-pixel-wide frame is often too small for it.
    """
    with tempfile.TemporaryDirectory() as folder:
        strips = [
            _middle_strip(clip, Path(folder) / f"{index}.avi", crop)
            for index, clip in enumerate((left, right))
        ]
        return side_by_side(strips, output, height)


def _middle_strip(clip: Path, output: Path, width: int) -> Path:
    """The middle ``width`` columns of a clip, stored losslessly (FFV1) at the clip's rate."""
    with VideoReader(clip) as reader:
        clip_width, clip_height = reader.info.size
        start, kept = max(0, (clip_width - width) // 2), min(width, clip_width)
        lossless = cv2.VideoWriter_fourcc(*"FFV1")
        writer = cv2.VideoWriter(str(output), lossless, reader.info.fps or 20.0, (kept, clip_height))
        try:
            for _, image in reader:
                writer.write(np.ascontiguousarray(image[:, start : start + kept]))
        finally:
            writer.release()
    return output


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bharnet_ros.tools.pose_compare", description=__doc__)
    parser.add_argument("clips", nargs="*", type=Path, help="videos of one person each")
    parser.add_argument("--backends", nargs="+", choices=ALL_BACKENDS, default=["holistic", MULTI])
    parser.add_argument("--max-frames", type=int, default=None, help="frames per clip at most")
    parser.add_argument(
        "--pair", nargs=2, type=Path, metavar=("LEFT", "RIGHT"), help="two clips side by side"
    )
    args = parser.parse_args(argv)
    if args.pair:
        print("\n".join(pair_report(*args.pair)))
        return 0
    if not args.clips:
        parser.error("give clips to compare, or --pair LEFT RIGHT")
    print(HEADER)
    for backend, counts in compare(args.clips, args.backends, args.max_frames).items():
        print(counts.row(backend, len(args.clips)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
