"""Ground-truth annotations of a recording: labelled time segments, read from CSV or YAML.

Two time bases, chosen by the field names so a file says what it means:

* ``start``, ``end``: seconds relative to the recording, where 0 is the stamp of the first message
  on the evaluated topic (the first video frame). This is what one reads off a video player.
* ``start_stamp``, ``end_stamp``: absolute ROS times in seconds (``sec + nanosec * 1e-9`` of the
  message header stamps), for annotations made from a live recording.

CSV: a header row ``start,end,label`` (or ``start_stamp,end_stamp,label``), then one segment per
row; blank lines and lines starting with ``#`` are skipped. YAML: a list of mappings with the same
keys, read as YAML 1.2 reads it (:func:`~bharnet_ros.core.yaml12.load_yaml`), so the labels ``yes``
and ``no`` stay text and ``010`` is ten seconds; a label YAML reads as anything but text
(``true``, ``3``, a list) is refused rather than turned into a different class name. A segment
covers ``start <= t < end``, its bounds taken 10 µs early (:data:`BOUNDARY_SLACK`). Segments
must not overlap; gaps are allowed (time in a gap is not scored). Every problem raises
:class:`AnnotationError` naming the file and the line.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bharnet_ros.core.labels import MAX_LABEL_LENGTH, plain_label, shown
from bharnet_ros.core.skeleton import TIME_LIMIT
from bharnet_ros.core.text_files import read_text_file
from bharnet_ros.core.yaml12 import load_yaml

# A decision up to this long before a segment's bound is taken at the bound. A stamp near 1.7e9 s
# read as a float is 0.2 µs off, which rounding to the µs can make 1 µs: a decision stamped exactly
# on a segment's first frame (in integer nanoseconds) fell in the segment before. Frames come at
# most every millisecond, so no other frame's decision moves.
BOUNDARY_SLACK = 1e-5
RELATIVE = ("start", "end", "label")
ABSOLUTE = ("start_stamp", "end_stamp", "label")


class AnnotationError(ValueError):
    """An annotation file that cannot be used; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Segment:
    """Ground truth: ``label`` is performed from ``start`` (inclusive) to ``end`` (exclusive), seconds."""

    start: float
    end: float
    label: str

    @property
    def duration(self) -> float:
        return self.end - self.start

    def contains(self, t: float) -> bool:
        return self.start <= t + BOUNDARY_SLACK < self.end


@dataclass(frozen=True)
class Annotations:
    """Segments sorted by start, and whether their times are absolute stamps or relative seconds."""

    segments: tuple[Segment, ...]
    absolute: bool

    def relative_to(self, origin: float) -> list[Segment]:
        """Segments in seconds since ``origin`` (the first frame's stamp), to the microsecond as
        decisions are; relative ones stay as they are."""
        if not self.absolute:
            return list(self.segments)
        return [Segment(round(s.start - origin, 6), round(s.end - origin, 6), s.label) for s in self.segments]


def load_annotations(path: str | Path) -> Annotations:
    """Read a ``.csv`` or ``.yaml``/``.yml`` annotation file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".yaml", ".yml"):
        raise AnnotationError(f"{path}: unknown annotation format {path.suffix!r}; use a .csv or .yaml file")
    text = _read_text(path)
    return parse_csv(text, str(path)) if suffix == ".csv" else parse_yaml(text, str(path))


def _read_text(path: Path) -> str:
    """The file's UTF-8 text; AnnotationError naming the file when it is not text or unreadable."""
    try:
        # a BOM, as spreadsheets save CSV, is not a column name
        return read_text_file(path, encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise AnnotationError(
            f"{path}: not a UTF-8 text file (byte {err.start}); give the labels as a .csv or .yaml text file"
        ) from None
    except OSError as err:
        raise AnnotationError(f"cannot read {path}: {err.strerror or err}") from None


def parse_csv(text: str, source: str = "<csv>") -> Annotations:
    """Segments from CSV text with a ``start,end,label`` or ``start_stamp,end_stamp,label`` header."""
    rows = enumerate((line.removesuffix("\r") for line in text.split("\n")), 1)  # not at \x1c or \u2028
    lines = [(n, line) for n, line in rows if _is_content(line)]
    if not lines:
        raise AnnotationError(f"{source}: no header row; the first line must be {','.join(RELATIVE)}")
    header_line = lines[0][0]
    header = [c.strip() for c in _csv_values(lines[0][1], f"{source}: line {header_line}")]
    columns, absolute = _columns(header, f"{source}:{header_line}")
    rows = []
    for number, line in lines[1:]:
        where = f"{source}: line {number}"
        values = _csv_values(line, where)
        if len(values) != len(header):
            raise AnnotationError(
                f"{where}: {len(values)} values for {len(header)} columns {','.join(header)}"
            )
        rows.append((where, dict(zip(header, (v.strip() for v in values), strict=True))))
    return _build(rows, columns, absolute, source)


def _csv_values(line: str, where: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(line), strict=True))  # strict: a quote left open is an error
    except csv.Error as err:  # e.g. a field over the csv module's 131072 characters, an open quote
        raise AnnotationError(f"{where}: not a CSV row ({err})") from None


def parse_yaml(text: str, source: str = "<yaml>") -> Annotations:
    """Segments from a YAML list of ``{start, end, label}`` (or ``start_stamp``/``end_stamp``) mappings."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as err:
        raise AnnotationError(f"{source}: not valid YAML: {err}".replace("\n", " ")) from None
    if not isinstance(data, list):
        raise AnnotationError(f"{source}: expected a list of {{start, end, label}} mappings at the top level")
    if not data or not all(isinstance(item, dict) for item in data):
        raise AnnotationError(
            f"{source}: every item must be a mapping like {{start: 0.0, end: 2.5, label: wave}}"
        )
    columns, absolute = _columns(list(data[0]), f"{source}: item 1")
    rows = []
    for index, item in enumerate(data, 1):
        where = f"{source}: item {index}"
        if _columns(list(item), where)[1] != absolute:
            raise AnnotationError(
                f"{where}: uses {','.join(ABSOLUTE if not absolute else RELATIVE)} but item 1 uses "
                f"{','.join(columns)}; use one time base (start/end or start_stamp/end_stamp) in a file"
            )
        rows.append((where, item))
    return _build(rows, columns, absolute, source)


def save_csv(path: str | Path, segments: list[Segment], absolute: bool = False) -> Path:
    """Write segments as annotation CSV (``repr`` of each float, so reading back is exact; a label
    with a comma or a quote is quoted, so it reads back too)."""
    path = Path(path)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(ABSOLUTE if absolute else RELATIVE)
    writer.writerows((repr(s.start), repr(s.end), s.label) for s in segments)
    path.write_text(text.getvalue())
    return path


def label_at(segments: list[Segment], t: float) -> str | None:
    """The label of the segment containing ``t``, or None in a gap (one look-up: a linear scan;
    for many, :func:`labels_at`)."""
    return next((s.label for s in segments if s.contains(t)), None)


def labels_at(segments: list[Segment], times: list[float]) -> list[str | None]:
    """:func:`label_at` for each of ``times``, by bisection over the segments sorted by start.

    A report looks up every decision of a long bag against a labels file of thousands of segments:
    one scan per decision made that quadratic. Overlapping segments (only from code; files refuse
    them) are looked up one by one, so the first in list order still wins.
    """
    order = sorted(segments, key=lambda s: s.start)
    if any(b.start < a.end for a, b in itertools.pairwise(order)):
        return [label_at(segments, t) for t in times]
    starts = [s.start for s in order]
    return [_label_in(order, starts, t) for t in times]


def _label_in(order: list[Segment], starts: list[float], t: float) -> str | None:
    """The label of the segment of ``order`` (sorted, not overlapping) containing ``t``, or None."""
    k = bisect.bisect_right(starts, t + BOUNDARY_SLACK) - 1
    return order[k].label if k >= 0 and order[k].contains(t) else None


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _columns(names: list[Any], where: str) -> tuple[tuple[str, ...], bool]:
    """The column set (relative or absolute) named by ``names``; AnnotationError for anything else."""
    names = [str(n) for n in names]
    for columns, absolute in ((RELATIVE, False), (ABSOLUTE, True)):
        if sorted(names) == sorted(columns):
            return columns, absolute
    unknown = [n for n in names if n not in RELATIVE + ABSOLUTE]
    problem = f"unknown columns {', '.join(unknown)}" if unknown else f"columns {', '.join(names)}"
    raise AnnotationError(
        f"{where}: {problem}; use exactly {','.join(RELATIVE)} (seconds from the first frame) "
        f"or {','.join(ABSOLUTE)} (absolute stamps)"
    )


def _build(
    rows: list[tuple[str, dict[str, Any]]], columns: tuple[str, ...], absolute: bool, source: str
) -> Annotations:
    if not rows:
        raise AnnotationError(f"{source}: no segments; add at least one {','.join(columns)} row")
    start_key, end_key, _ = columns
    segments = []
    for where, row in rows:
        start, end = _seconds(row[start_key], start_key, where), _seconds(row[end_key], end_key, where)
        label = _label(row["label"], where)
        if not label:
            raise AnnotationError(f"{where}: empty label; every segment needs a class name")
        if not plain_label(label):
            raise AnnotationError(
                f"{where}: label {label[:40]!r} is not printable text of at most {MAX_LABEL_LENGTH} "
                "characters, which every class name must be"
            )
        if end <= start:
            raise AnnotationError(
                f"{where}: {end_key} {end} is not after {start_key} {start}; swap or fix them"
            )
        if not absolute and start < 0:
            raise AnnotationError(
                f"{where}: start {start} is negative; relative times count from the first frame"
            )
        segments.append((where, Segment(start, end, label)))
    segments.sort(key=lambda item: item[1].start)
    _check_overlaps(segments, source)
    return Annotations(tuple(s for _, s in segments), absolute)


def _label(value: Any, where: str) -> str:
    """The class name of a row: text only, since YAML reads ``true``, ``010`` or ``3`` as other values."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AnnotationError(
            f"{where}: label {value!r} is not text (YAML reads it as {type(value).__name__}); "
            "put the class name in quotes, e.g. label: '3'"
        )
    return value.strip()


def _seconds(value: Any, name: str, where: str) -> float:
    try:
        if isinstance(value, str) and "_" in value:  # float() reads 1_0 as 10
            raise ValueError(value)
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer of hundreds of digits
        raise AnnotationError(f"{where}: {name} {shown(value)} is not a number of seconds") from None
    if isinstance(value, bool) or not math.isfinite(seconds):
        raise AnnotationError(f"{where}: {name} {shown(value)} is not a finite number of seconds")
    if abs(seconds) > TIME_LIMIT:  # the skeleton contract's bound on any stamp
        raise AnnotationError(
            f"{where}: {name} {shown(value)} is beyond {TIME_LIMIT:g} s (year 2286 as a Unix time); "
            "give seconds from the start of the recording or header stamps"
        )
    return seconds


def _check_overlaps(segments: list[tuple[str, Segment]], source: str) -> None:
    for (where_a, a), (where_b, b) in itertools.pairwise(segments):
        if b.start < a.end:
            raise AnnotationError(
                f"{where_b}: segment {b.label} [{b.start}, {b.end}) overlaps {a.label} [{a.start}, {a.end}) "
                f"({where_a.removeprefix(source + ': ')}); segments must not overlap"
            )
