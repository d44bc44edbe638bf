"""``bharnet synth``: write a labelled set of synthetic gesture sequences, optionally a preview picture.

Output folder layout (training reads it directly; ``bharnet_ros.training.data.load_synth_folder``)::

    OUT/classes.txt        the classes written (all, or --classes), one per line, line number - 1 = label
    OUT/index.csv          file,label,class_name,hand_intensive,seed
    OUT/<class>_<i>.npz    one SkeletonSequence per sample (SkeletonSequence.save)

The ``seed`` column is the sample's own seed: ``generate_sample(class_name, default_rng(seed))``
remakes that sample alone.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from bharnet_ros.core.layouts import HAND21, MP33
from bharnet_ros.tools import UsageError, check_count, check_seed
from bharnet_ros.tools.outputs import (
    atomic_file,
    check_output_file,
    check_output_folder,
    output_option,
    staged_folder,
)
from bharnet_ros.training import synth

_SIDE_COLOURS = ("tab:blue", "tab:red")  # subject's left, right
PREVIEW_FRAMES = 4
MOST_PER_CLASS = 10_000  # samples per class: the four-digit file names, and hours of generation already


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--out", type=output_option, required=True, help="output folder (created; must be empty)"
    )
    parser.add_argument(
        "--per-class", type=int, default=50, metavar="N", help="samples per class (default 50)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed, >= 0 (default 0)")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the sequences (default 30)")
    parser.add_argument(
        "--classes",
        default=None,
        metavar="NAMES",
        help=f"comma-separated subset of: {', '.join(synth.CLASS_NAMES)}",
    )
    parser.add_argument(
        "--preview", type=Path, default=None, metavar="PNG", help="also draw sample 0 of each class into PNG"
    )
    parser.add_argument(
        "--force", action="store_true",
        help="write into a non-empty output folder (replacing files of the same names) and over --preview",
    )  # fmt: skip


def _classes(text: str | None) -> list[str]:
    if text is None:  # an empty --classes (an unset variable) names none, as "," does
        return list(synth.CLASS_NAMES)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in synth.CLASS_NAMES]
    if unknown or not names:
        what = f"unknown class(es) {unknown}" if unknown else f"--classes {text!r} names no class"
        raise UsageError(f"{what}; choose from {', '.join(synth.CLASS_NAMES)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:  # the same files would be written twice and listed twice in index.csv
        raise UsageError(f"--classes names {', '.join(repeated)} more than once; give each class once")
    return names


def _check(args: argparse.Namespace) -> list[str]:
    """Validate the arguments; return the classes to generate."""
    check_count("--per-class", args.per_class, 1, MOST_PER_CLASS)
    check_seed(args.seed)
    if not 1.0 <= args.fps <= 240.0:
        raise UsageError(f"--fps must be between 1 and 240, got {args.fps}")
    if args.preview is not None and args.preview.suffix.lower() != ".png":
        raise UsageError(f"--preview must name a .png file, got {args.preview}")
    classes = _classes(args.classes)
    check_output_folder(args.out, force=args.force, option="-o", writes=("classes.txt", "index.csv"))
    if args.preview is not None:
        if args.preview.resolve() == args.out.resolve():  # resolved: r/../s2.png is s2.png
            raise UsageError("--preview and -o name the same path; give the preview its own .png name")
        check_output_file(args.preview, force=args.force, option="--preview")
    return classes


def write_dataset(out: Path, classes: list[str], per_class: int, seed: int, fps: float) -> int:
    """Generate and save the samples with classes.txt and index.csv; returns the number written."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    # only the classes written: a class listed without samples would become an output nothing trains
    (out / "classes.txt").write_text("".join(f"{name}\n" for name in classes))
    samples = synth.generate_dataset(per_class, seed, fps=fps, classes=classes)
    count = 0
    with open(out / "index.csv", "w", newline="") as index:
        writer = csv.writer(index)
        writer.writerow(["file", "label", "class_name", "hand_intensive", "seed"])
        for i, sample in enumerate(tqdm(samples, total=per_class * len(classes), unit="seq", desc="synth")):
            name = f"{sample.class_name}_{i % per_class:04d}.npz"
            sample.sequence.save(out / name)
            label = classes.index(sample.class_name)
            writer.writerow([name, label, sample.class_name, int(sample.hand_intensive), sample.seed])
            count += 1
    return count


def _preview_frames(sample: synth.SynthSample) -> list[int]:
    """Frames to show: rising, early hold, late hold, returning."""
    seq, (t1, t2) = sample.sequence, sample.hold
    times = (0.8 * t1, t1 + 0.3 * (t2 - t1), t1 + 0.75 * (t2 - t1), t2 + 0.15)
    return [int(np.clip(np.searchsorted(seq.timestamps, t), 0, len(seq) - 1)) for t in times]


def _draw_body(ax, seq, t: int) -> None:
    """Body lines and both hands of frame ``t`` in pixels (y down), faint where visibility is low; the
    dashed box is the image border."""
    import matplotlib.patches

    width, height = seq.image_size
    ax.add_patch(
        matplotlib.patches.Rectangle((0, 0), width, height, fill=False, color="0.6", ls="--", lw=0.8)
    )
    px = seq.body[t, :, :2] * [width, height]
    for i, j in MP33.edges:  # the layout's own tree, as the overlay draws it
        name = MP33.joint_names[i]
        side = 0 if name.startswith("left") else 1 if name.startswith("right") else None
        colour = "0.35" if side is None else _SIDE_COLOURS[side]
        alpha = 0.25 + 0.75 * min(seq.body[t, i, 3], seq.body[t, j, 3])
        ax.plot(px[[i, j], 0], px[[i, j], 1], color=colour, lw=1.2, alpha=alpha)
    for slot in (0, 1):
        if seq.hand_present[t, slot]:
            _draw_hand(ax, seq.hands[t, slot, :, :2] * [width, height], _SIDE_COLOURS[slot], 0.8)


def _draw_hand(ax, px: np.ndarray, colour: str, lw: float) -> None:
    for a, b in HAND21.edges:
        ax.plot(px[[a, b], 0], px[[a, b], 1], color=colour, lw=lw)
    ax.plot(px[[4, 8, 12, 16, 20], 0], px[[4, 8, 12, 16, 20], 1], ".", color="k", ms=2.5)


def _frame_box(seq, frames: list[int]) -> tuple[float, float, float, float]:
    """A square pixel box around the upper body over the shown frames."""
    width, height = seq.image_size
    upper = [MP33.index(n) for n in MP33.joint_names[:23]]
    points = [seq.body[t, upper, :2] * [width, height] for t in frames]
    points += [
        seq.hands[t, s, :, :2] * [width, height] for t in frames for s in (0, 1) if seq.hand_present[t, s]
    ]
    points = np.concatenate(points)
    centre, half = (points.min(0) + points.max(0)) / 2, (points.max(0) - points.min(0)).max() / 2 * 1.1
    return centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half


def _draw_hand_zoom(ax, sample: synth.SynthSample, t: int) -> None:
    """The dominant hand alone, enlarged, with its wrist marked."""
    seq = sample.sequence
    slot = 0 if sample.left_handed else 1
    if not seq.hand_present[t, slot]:
        present = np.flatnonzero(seq.hand_present[:, slot])
        if len(present) == 0:
            ax.text(0.5, 0.5, "hand not found", ha="center", transform=ax.transAxes)
            return
        t = int(present[np.argmin(abs(present - t))])
    px = seq.hands[t, slot, :, :2] * seq.image_size
    _draw_hand(ax, px, _SIDE_COLOURS[slot], 1.6)
    ax.plot(*px[0], "ko", ms=4)
    centre, half = px.mean(0), (px.max(0) - px.min(0)).max() / 2 * 1.25 + 1
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] + half, centre[1] - half)
    ax.set_title(f"{'left' if slot == 0 else 'right'} hand, t={seq.timestamps[t]:.2f}s", fontsize=7)


def write_preview(path: Path, seed: int, fps: float, classes: list[str]) -> None:
    """A grid: one row per class (its sample 0), a few frames of the body and a zoom on the hand."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = PREVIEW_FRAMES + 1
    fig, axes = plt.subplots(len(classes), cols, figsize=(2.1 * cols, 2.1 * len(classes)), squeeze=False)
    for row, name in zip(axes, classes, strict=True):
        rng = np.random.default_rng(synth.sample_seed(seed, synth.class_index(name), 0))
        sample = synth.generate_sample(name, rng, fps=fps)
        frames = _preview_frames(sample)
        x0, x1, y0, y1 = _frame_box(sample.sequence, frames)
        for ax, t in zip(row, frames, strict=False):
            _draw_body(ax, sample.sequence, t)
            ax.set_xlim(x0, x1)
            ax.set_ylim(y1, y0)
            ax.set_title(f"t={sample.sequence.timestamps[t]:.2f}s", fontsize=7)
        _draw_hand_zoom(row[-1], sample, frames[1])
        hand = "left-handed" if sample.left_handed else "right-handed"
        row[0].set_ylabel(f"{name}\n({hand})", fontsize=8)
        for ax in row:
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    classes = _check(args)
    with staged_folder(args.out) as staged:
        count = write_dataset(staged, classes, args.per_class, args.seed, args.fps)
    print(f"wrote {count} sequences of {len(classes)} classes to {args.out}")
    if args.preview is not None:
        with atomic_file(args.preview) as temporary:
            write_preview(temporary, args.seed, args.fps, classes)
        print(f"preview: {args.preview}")
    return 0
