"""``bharnet import``: convert a public skeleton dataset into one dataset file (docs/datasets.md).

``bharnet import ntu|mpdata|pkummd|nucla SRC -o OUT.npz [--benchmark ...]`` reads the source with
the matching importer, writes a :class:`SkeletonDataset` and prints what was imported and what was
skipped, with reasons. An existing OUT is replaced only with ``--force``, and never when it is SRC.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from bharnet_ros.core.labels import MAX_LABEL_LENGTH, plain_label, shown
from bharnet_ros.core.text_files import read_text_file
from bharnet_ros.tools import UsageError
from bharnet_ros.tools.outputs import atomic_file, check_output_file, output_option, terminated_as_interrupt
from bharnet_ros.training.classes import relabel, same_words
from bharnet_ros.training.dataset import DatasetError, SkeletonDataset
from bharnet_ros.training.importers import ImportReport, Progress, no_progress
from bharnet_ros.training.importers.mpdata import import_mpdata
from bharnet_ros.training.importers.ntu import import_ntu
from bharnet_ros.training.importers.nucla import import_nucla
from bharnet_ros.training.importers.pkummd import import_pkummd

SHOWN_DETAILS = 5  # skipped items listed by name in the summary; the rest are counted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kinds = parser.add_subparsers(dest="kind", metavar="FORMAT", required=True)
    _ntu_arguments(
        _kind(kinds, "ntu", "NTU RGB+D 60/120 .skeleton files", "a .skeleton file or a folder of them")
    )
    _mpdata_arguments(
        _kind(
            kinds, "mpdata", "MediaPipe Holistic tutorial data", "MP_Data, a signer_*.npz or a folder of them"
        )
    )
    _pkummd_arguments(
        _kind(kinds, "pkummd", "PKU-MMD skeletons and labels", "the skeleton folder or its parent")
    )
    nucla = _kind(kinds, "nucla", "Northwestern-UCLA JSON files (CTR-GCN)", "the folder of .json files")
    _videos_arguments(
        _kind(
            kinds, "videos", "your own videos (one sub-folder per class, or --pattern)",
            "DIR/<class>/<video>, or with --pattern DIR/<person>/<video> or DIR/<video>",
        )
    )  # fmt: skip
    nucla.add_argument("--benchmark", choices=("xview",), default="xview", help="split pair (default: xview)")
    nucla.add_argument("--fps", type=float, default=30.0, help="frame rate to assume (default: 30)")


def _ntu_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--benchmark",
        choices=("xsub", "xset", "xview"),
        help="split pair to record (default: all three)",
    )
    parser.add_argument(
        "--meta", type=Path, metavar="DIR",
        help="folder with the class names and the missing-skeleton lists (e.g. shared/data/ntu_meta)",
    )  # fmt: skip


def _mpdata_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classes", help="comma-separated class order for MP_Data folders (default: sorted)")
    parser.add_argument(
        "--mirrored", action="store_true", help="the webcam frames were mirrored (selfie view)"
    )
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate to assume (default: 30)")
    parser.add_argument(
        "--image-size", type=_image_size, default=(0, 0), metavar="WxH",
        help="the camera's frame size, e.g. 640x480, for the aspect correction (default: unknown)",
    )  # fmt: skip


def _image_size(text: str) -> tuple[int, int]:
    """``WxH`` as a camera image size; argparse reports a ValueError as an invalid value."""
    from bharnet_ros.core.skeleton import SkeletonError, checked_image_size

    found = re.fullmatch(r"([0-9]{1,9})[xX]([0-9]{1,9})", text.strip())
    if not found or min(size := (int(found[1]), int(found[2]))) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is no WxH image size such as 640x480")
    try:
        return checked_image_size(size)
    except SkeletonError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _videos_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend", choices=("holistic", "hands_pose"), default="holistic", help="MediaPipe graph"
    )
    parser.add_argument(
        "--pattern", metavar="PATTERN",
        help="fields of the file name, e.g. '{label}_{take}_{distance}_{framing}': {label} is the "
        "class, {subject} the person (default: --subject, else the first folder below DIR that is "
        "not a videos folder, else DIR's name); the other fields are kept per sample for "
        "per-condition evaluation",
    )  # fmt: skip
    parser.add_argument(
        "--subject", help="the person in every video (instead of the folder; a {subject} field wins)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="pose-stage processes side by side (default 1; at most one per core this process may use)",
    )


def _pkummd_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--benchmark", choices=("xsub", "xview"), help="split pair from the official split file"
    )
    parser.add_argument("--labels", type=Path, metavar="DIR", help="label folder (default: found beside SRC)")
    parser.add_argument(
        "--split-file", type=Path, metavar="FILE", help="official cross_subject/cross_view file"
    )
    parser.add_argument(
        "--class-names", type=Path, metavar="FILE", help="class names, one per line, label order"
    )


def _kind(kinds: argparse._SubParsersAction, name: str, what: str, source: str) -> argparse.ArgumentParser:
    parser = kinds.add_parser(
        name, help=f"import {what}", description=f"Import {what} into one dataset file."
    )
    parser.add_argument("source", metavar="SRC", type=Path, help=source)
    parser.add_argument(
        "-o", "--output", required=True, type=output_option, help="dataset file to write (.npz)"
    )
    parser.add_argument(
        "--rename", action="append", default=[], metavar="OLD=NEW",
        help="rename a class, e.g. iloveyou=i_love_you to match a model's class names; a NEW that is "
        "already a class merges the two (repeatable)",
    )  # fmt: skip
    parser.add_argument("--force", action="store_true", help="replace an existing dataset file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    if not args.source.exists():
        raise UsageError(f"source {args.source} does not exist; give the {args.kind} data folder or file")
    extra = [getattr(args, name, None) for name in ("meta", "labels", "split_file", "class_names")]
    output = check_output_file(args.output, [args.source, *extra], args.force, suffix=".npz")
    renamed_from: dict[str, str] = {}
    for pair in args.rename:  # before the import, which may take hours of pose stage
        old, _ = _rename_pair(pair)
        if old in renamed_from:
            raise UsageError(f"--rename renames {old!r} twice ({renamed_from[old]}, {pair}); keep one")
        renamed_from[old] = pair
    _check_no_chain(dict(map(_rename_pair, args.rename)))
    try:
        with terminated_as_interrupt():  # a pose-stage pool is shut down, not left running
            dataset, report = IMPORTERS[args.kind](args)
    except DatasetError as err:
        raise UsageError(str(err)) from None

    dataset = renamed(dataset, args.rename, report, getattr(args, "labels_before", ()))
    if twins := same_words(dataset.class_names):  # signer files spelling Hello and hello: two classes
        raise UsageError(
            f"the classes {twins[0]!r} and {twins[1]!r} are one word spelt two ways; merge them with "
            f"--rename {twins[1]}={twins[0]}"
        )
    if not len(dataset):
        raise UsageError(f"no samples imported from {args.source} ({_why(report)}); check SRC and options")
    with atomic_file(output) as temporary:
        dataset.save(temporary)
    print("\n".join(summary(dataset, report, output)))
    return 0


def _why(report: ImportReport) -> str:
    """The skip reasons, with the first item's detail (what a single bad file needs to be fixed)."""
    if not report.skipped:
        return "none found"
    reasons = ", ".join(f"{count} {reason}" for reason, count in report.reasons().items())
    item, _, detail = report.skipped[0]
    return f"{reasons}; {Path(item).name}: {detail}" if detail else reasons


def renamed(
    dataset: SkeletonDataset,
    pairs: list[str],
    report: ImportReport,
    labels_before: Sequence[str] = (),
) -> SkeletonDataset:
    """``dataset`` with its classes renamed by ``OLD=NEW`` pairs (``--rename``).

    A NEW that is already a class (or the NEW of another pair) merges the classes: their samples
    share one label, placed where the first of them was, so the class names stay unique and the
    file stays loadable. Each merge is noted in the report and in the dataset's notes. A pair whose
    OLD was a class before the import (``labels_before``, the videos' labels) but kept no sample
    (nobody found in its videos) is noted and skipped, not refused after the pose stage's hours.
    """
    gone = [pair for pair in pairs if _rename_pair(pair)[0] in set(labels_before) - set(dataset.class_names)]
    report.notes.extend(
        f"--rename {pair}: no sample of that class was kept, so it is not renamed" for pair in gone
    )
    mapping = _rename_mapping(dataset.class_names, [pair for pair in pairs if pair not in gone])
    names = [mapping.get(name, name) for name in dataset.class_names]
    notes = _merge_notes(dataset.class_names, names)
    result = relabel(dataset, dict(zip(dataset.class_names, names, strict=True)), list(dict.fromkeys(names)))
    result.notes = [*result.notes, *notes]
    report.notes.extend(notes)
    return result


def _rename_pair(pair: str) -> tuple[str, str]:
    """(OLD, NEW) of one ``--rename``; a usage error for a pair that is not OLD=NEW, or a NEW that
    is no class name (printable, at most 200 characters)."""
    old, sep, new = pair.partition("=")
    if not sep or not old or not new:
        raise UsageError(f"--rename {shown(pair, 80)} is not OLD=NEW")
    if not plain_label(new):
        raise UsageError(
            f"--rename {shown(pair, 80)}: NEW must be a class name of printable characters, at most "
            f"{MAX_LABEL_LENGTH} of them"
        )
    return old, new


def _rename_mapping(class_names: list[str], pairs: list[str]) -> dict[str, str]:
    """OLD -> NEW from ``--rename`` pairs; an unknown OLD or a bad pair is a usage error."""
    mapping = {}
    for pair in pairs:
        old, new = _rename_pair(pair)
        if old not in class_names:
            raise UsageError(f"--rename {pair!r}: no class {old!r}; the classes are {', '.join(class_names)}")
        mapping[old] = new
    return mapping


def _check_no_chain(mapping: dict[str, str]) -> None:
    """UsageError where a NEW is another pair's OLD: each pair applies once, so hello=thanks
    thanks=bye merged nothing, and said nothing (``data.relabel`` refuses the same)."""
    chained = next((old for old, new in mapping.items() if new in mapping and mapping[new] != new), None)
    if chained is not None:
        renamed = mapping[chained]
        raise UsageError(
            f"--rename {chained}={renamed} and {renamed}={mapping[renamed]}: {renamed} is both renamed and "
            f"a new name; to merge, rename each old class to the final name ({chained}={mapping[renamed]})"
        )


def _merge_notes(old_names: list[str], new_names: list[str]) -> list[str]:
    """One line per class that several old classes were renamed into."""
    sources: dict[str, list[str]] = {}
    for old, new in zip(old_names, new_names, strict=True):
        sources.setdefault(new, []).append(old)
    return [
        f"--rename: classes {', '.join(olds)} merged into {new!r}"
        for new, olds in sources.items()
        if len(olds) > 1
    ]


def _progress(args: argparse.Namespace) -> Progress:
    """A tqdm bar over the files an importer reads (on stderr; removed when done)."""
    if args.no_progress:
        return no_progress
    return lambda items: tqdm(items, desc=f"import {args.kind}", unit="file", leave=False)


def _ntu(args: argparse.Namespace) -> tuple[SkeletonDataset, ImportReport]:
    benchmarks = (args.benchmark,) if args.benchmark else None
    return import_ntu(args.source, args.meta, benchmarks, _progress(args))


def _mpdata(args: argparse.Namespace) -> tuple[SkeletonDataset, ImportReport]:
    classes = _class_list(args.classes) if args.classes is not None else None
    return import_mpdata(args.source, classes, args.fps, args.mirrored, _progress(args), args.image_size)


def _class_list(text: str) -> list[str]:
    """``--classes a,b,c`` as names; an empty list or a name given twice is a usage error."""
    classes = [name.strip() for name in text.split(",") if name.strip()]
    if not classes:
        raise UsageError(f"--classes {text!r} names no class; give names like --classes hello,thanks")
    twice = sorted({name for name in classes if classes.count(name) > 1})
    if twice:
        raise UsageError(f"--classes names {', '.join(twice)} more than once; give each class once")
    return classes


def _pkummd(args: argparse.Namespace) -> tuple[SkeletonDataset, ImportReport]:
    names = None
    if args.class_names is not None:
        if not args.class_names.is_file():
            raise UsageError(f"class-name file {args.class_names} not found")
        try:
            text = read_text_file(args.class_names)
        except UnicodeDecodeError:
            raise UsageError(
                f"class-name file {args.class_names} is not UTF-8 text; give one name per line"
            ) from None
        names = [line.strip() for line in text.splitlines() if line.strip()]
    return import_pkummd(
        args.source, args.labels, args.benchmark, args.split_file, names, progress=_progress(args)
    )


def _nucla(args: argparse.Namespace) -> tuple[SkeletonDataset, ImportReport]:
    return import_nucla(args.source, args.benchmark, args.fps, _progress(args))


def _videos(args: argparse.Namespace) -> tuple[SkeletonDataset, ImportReport]:
    from bharnet_ros.training.importers.videos import PatternError, import_videos

    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    cores = len(os.sched_getaffinity(0))
    if args.jobs > cores:  # each process runs MediaPipe on threads of its own
        print(
            f"--jobs {args.jobs}: this process may use {cores} cores; running {cores} pose stages",
            file=sys.stderr,
        )
        args.jobs = cores
    if not args.source.is_dir():
        raise UsageError(f"{args.source} is not a folder; give the folder that holds the videos")
    try:
        return import_videos(
            args.source, args.backend, _progress(args), args.pattern, args.subject, args.jobs,
            check_labels=lambda labels: _checked_labels(args, labels),  # before the pose stage
        )  # fmt: skip
    except PatternError as err:
        raise UsageError(str(err)) from None


def _checked_labels(args: argparse.Namespace, labels: list[str]) -> None:
    """--rename against the videos' labels, before the pose stage; the labels are kept for
    :func:`renamed`, since a class whose videos show nobody keeps no sample."""
    _rename_mapping(labels, args.rename)
    args.labels_before = list(labels)


IMPORTERS = {"ntu": _ntu, "mpdata": _mpdata, "pkummd": _pkummd, "nucla": _nucla, "videos": _videos}


def summary(dataset: SkeletonDataset, report: ImportReport, path: Path) -> list[str]:
    """Human-readable lines: what was written, the splits, and what was skipped and why."""
    counts = dataset.class_counts()
    lines = [
        f"wrote {path}: {len(dataset)} samples, {int(dataset.frame_counts.sum())} frames, "
        f"{dataset.num_classes} classes ({int((counts > 0).sum())} with samples), "
        f"layout {dataset.layout}, space {dataset.space}, up to {dataset.max_persons} persons, "
        f"hands {'yes' if dataset.has_hands else 'none'}",
    ]
    if dataset.splits:
        lines.append("splits: " + ", ".join(f"{name} {len(idx)}" for name, idx in dataset.splits.items()))
    lines.append(f"skipped: {len(report.skipped)}")
    for reason, count in report.reasons().items():
        lines.append(f"  {count} {reason}")
        shown = [(item, detail) for item, why, detail in report.skipped if why == reason][:SHOWN_DETAILS]
        lines.extend(f"    {item}: {detail}" if detail else f"    {item}" for item, detail in shown)
    lines.extend(f"note: {note}" for note in dict.fromkeys(report.notes))
    return lines
