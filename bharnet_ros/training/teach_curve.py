"""The learning curve of teaching (docs/teaching.md): how many takes, from how many people, a new
gesture needs, and what the old vocabulary loses meanwhile.

The set-up, on real people only:

* one or more **base models**, trained without the new gestures (``data.classes``), each with some
  people left out (``data.exclude_subjects``, e.g. the folds of ``bharnet train --loso``). A base
  model *saw* the people with old-class samples in the data who were not left out (read from the
  ``config.yaml`` beside it, as ``bharnet teach train`` reads its rehearsal data); everyone else
  is *unseen* by it;
* **teachers**: ``teachers`` people of the ``pool`` (default: everyone with takes of the new
  gestures): every such group, or ``groups`` of them drawn at random where there are more
  (:func:`teacher_groups`); only their takes of the new gestures teach, ``takes`` per gesture in
  total split over the group (:func:`split_takes`), drawn at random ``draws`` times (the same draw
  is never counted twice). A (teachers, takes) pair no group can give is skipped
  (:func:`impossible_points`), but every value of ``takes`` and ``teachers`` must make a point;
* **evaluation** on the people the base model never saw who did not teach: their takes of the new
  gestures, and their old-class samples for the old vocabulary, the model always choosing among
  every class. A choice of teachers that leaves nobody to evaluate is skipped;
* **rehearsal**: the old-class samples of the people the base model saw (its own training data),
  as ``bharnet teach train`` rehearses with the base model's training data.

Features are cached once per base model (``training.teach.extract_features``); each point of the
curve then fits the heads exactly as ``bharnet teach train`` does and scores the expert-only
prediction (the node's default export) and the fused one, and the share of the old vocabulary
that the new rows took (old samples labelled as a new gesture). The backbone is the base model's, so
these are the exported model's scores on the same centred windows. With a fine-tune
(``finetune_epochs`` > 0) each fit also trains the whole network on its takes and the rehearsal
samples, as ``bharnet teach train --finetune-epochs`` does, and the fine-tuned model is scored
(as there, not without rehearsal data, where every person the base saw is left out).
With ``test_mirror`` every score averages each window with its mirror image, as the export of a
mirroring base does (``model/mirror.py``); the fit itself is unchanged.

With a ``distance_threshold``, each fit also fits the taught model's **feature distance** as
``bharnet teach train`` does (``training.teach.teach``) and measures which share of the
unseen people's windows it calls unfamiliar (above the threshold), new gestures and old, and the
new gestures' top-1 with the node's rule (a window called unfamiliar says none); and, for
comparison, the distance of the base model before teaching, fitted on the same rehearsal windows
(the old classes only). After a fine-tune the taught distance is fitted, and the shares measured,
on the fine-tuned model's own features. Not measured (nan) where teaching fits none: where a
class has no windows.

**References** put the curve in proportion: models trained with every gesture, old and new, from
the start, leaving out the same people as the bases. Scored on their left-out people as the taught
models are, they say what the vocabulary loses by growing at all (a larger vocabulary is harder
to choose from) rather than by being taught.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from bharnet_ros.model.bharnet import BHaRNetModel
from bharnet_ros.model.checkpoint import Checkpoint, load_checkpoint
from bharnet_ros.model.export import prepare_model
from bharnet_ros.model.feature_distance import FeatureDistance
from bharnet_ros.training.dataset import SkeletonDataset
from bharnet_ros.training.teach import (
    Features,
    Heads,
    TeachSettings,
    accuracy,
    base_heads,
    check_finetune,
    distance_plan,
    distance_windows,
    extract_features,
    finetune,
    fit_heads,
    fit_window_distance,
    initial_heads,
    mirrored_settings,
    old_class_rows,
    per_class_cap,
    predictions,
    rehearsal_beside,
    rehearsal_features,
    taught_checkpoint,
    taught_in,
    teaching_set,
    vocabulary_for,
)
from bharnet_ros.training.train import progress_bar

GROUPS = 50  # groups of teachers per number of teachers, by default: every group of the HRI data's 6


@dataclass(frozen=True)
class CurvePlan:
    """What the curve measures (see the module docstring)."""

    new: list[str]
    takes: list[int]
    teachers: list[int] = field(default_factory=lambda: [1, 2])
    pool: list[str] = field(default_factory=list)  # who may teach; empty: everyone with new takes
    draws: int = 3
    settings: TeachSettings = field(default_factory=TeachSettings)
    test_mirror: bool = False  # score each window with its mirror image, as a mirroring export does
    groups: int = GROUPS  # groups of teachers per number of teachers, at most (drawn where there are more)
    distance_threshold: float = 0.0  # above it a window is unfamiliar (0: the distance is not measured)


@dataclass
class CurveRun:
    """One fit: the base model, who taught, how many takes, and the scores on unseen people."""

    base: str
    teachers: str
    takes: int
    draw: int
    evaluated: str
    new_top1: float
    old_base: float
    old_taught: float
    new_top1_fused: float
    old_base_fused: float
    old_taught_fused: float
    old_as_new: float  # share of the old-vocabulary samples the taught model labels as a new gesture
    # shares called unfamiliar by the feature distance (nan: not measured), before and after teaching
    new_unfamiliar_base: float = math.nan
    new_unfamiliar: float = math.nan
    old_unfamiliar_base: float = math.nan
    old_unfamiliar: float = math.nan
    new_top1_distance: float = math.nan  # new gestures right and not called unfamiliar (the node's view)
    teacher_count: int = 1  # people in ``teachers`` (a name may hold the "+" that joins them)


SCORES = (
    "new_top1",
    "old_base",
    "old_taught",
    "new_top1_fused",
    "old_base_fused",
    "old_taught_fused",
    "old_as_new",
    "new_unfamiliar_base",
    "new_unfamiliar",
    "old_unfamiliar_base",
    "old_unfamiliar",
    "new_top1_distance",
)


@dataclass
class CurveData:
    """One base model's cached features of every window the curve needs."""

    teach: Features  # augmented windows of every take of the new gestures
    new_eval: Features  # centred windows of the same takes
    old_eval: Features  # centred windows of the unseen people's old-class samples
    rehearsal: Features | None  # old-class samples of the people the base model saw
    rehearsal_windows: Features | None  # every window drawn of them (the distance's)
    new_subjects: np.ndarray  # subject of each sample of the new-gesture set
    old_subjects: np.ndarray
    unseen: list[str]  # the people the base model never saw
    samples: dict[str, SkeletonDataset]  # "new", "old" and "rehearsal": the samples behind them
    base_distance: FeatureDistance | None = None  # the base's, on the rehearsal windows (if measured)


def run_curve(
    base_paths: Sequence[str | Path], data: SkeletonDataset, plan: CurvePlan, show_progress: bool = False
) -> list[CurveRun]:
    """Every fit of the plan for every base model, in order (base, teachers, takes, group, draw);
    ``show_progress`` draws progress bars on stderr."""
    check_plan(data, plan)
    points = plan_points(data, plan)
    runs = []
    for path in base_paths:
        base = load_checkpoint(path)
        known = sorted(set(plan.new) & set(base.class_names))
        if known:
            raise ValueError(f"{path} already knows {', '.join(known)}; train the base model without them")
        relabel = rehearsal_beside(path).relabel
        if merged := taught_in(list(relabel), plan.new):  # learnt under another name: not new to it
            learnt = ", ".join(f"{name} as {relabel[name]}" for name in merged)
            raise ValueError(f"{path} learnt {learnt} (its data.relabel); train the base model without them")
        model = prepare_model(base)
        check_finetune(model, plan.settings)
        classes = vocabulary_for(base.class_names, plan.new, plan.settings)
        name = Path(path).parent.name
        progress = f"features for {name}" if show_progress else None
        cached = cache_features(model, base, data, classes, plan, rehearsal_beside(path).unseen, progress)
        for takes, group in progress_bar(points, show_progress, desc=f"fits on {name}", unit="point"):
            runs.extend(runs_for_group(model, base, classes, cached, plan, list(group), takes, name))
    return runs


def check_plan(data: SkeletonDataset, plan: CurvePlan, left_out: Sequence[Sequence[str]] = ()) -> None:
    """ValueError naming what the plan or the data lacks: a new gesture the data has no takes of,
    a name or number given twice, a person of the pool without takes of the new gestures (who could
    never teach), more teachers than the pool holds (besides the people each base left out,
    ``left_out``), or a value of ``takes`` or ``teachers`` that no group of teachers can give a
    draw for, so that a typo is not reported as "no point of the curve is possible" (after the
    work) or silently left out."""
    if not plan.new:
        raise ValueError("--new names no gesture; give the gestures to teach, e.g. --new come,stop")
    given_twice = (("--new", plan.new), ("--pool", plan.pool), ("--takes", plan.takes))
    for option, given in (*given_twice, ("--teachers", plan.teachers)):
        repeated = sorted({str(name) for name in given if given.count(name) > 1})
        if repeated:
            raise ValueError(f"{option} names {', '.join(repeated)} more than once; give each once")
    names = np.array(data.class_names)[data.labels]
    unknown = [c for c in plan.new if c not in set(names.tolist())]
    if unknown:
        raise ValueError(
            f"the data has no takes of {', '.join(unknown)} (--new); its classes are "
            f"{', '.join(sorted(set(names.tolist())))}"
        )
    _check_pool(plan, curve_pool(data, plan, everyone=True), left_out)
    _check_takes(data, plan)


def _check_takes(data: SkeletonDataset, plan: CurvePlan) -> None:
    """Every value of --takes and of --teachers must make at least one point of the curve."""
    most = most_takes(data, plan)
    ranges = "; ".join(f"{n} teacher(s) give {_takes_range(n, most[n])}" for n in plan.teachers)
    for takes in plan.takes:
        if not any(n <= takes <= most[n] for n in plan.teachers):
            raise ValueError(
                f"--takes {takes} (per gesture, split over the teachers) fits no value of --teachers: "
                f"{ranges}; ask for takes in those ranges"
            )
    for n in plan.teachers:
        if not any(n <= takes <= most[n] for takes in plan.takes):
            raise ValueError(
                f"--teachers {n} fits no value of --takes "
                f"{','.join(map(str, plan.takes))}: {n} teacher(s) give {_takes_range(n, most[n])}; "
                f"add such a --takes value or drop {n} from --teachers"
            )


def _takes_range(teachers: int, most: int) -> str:
    """``2 to 6 takes per gesture`` (each teacher gives one at least), or why they give none."""
    if most < teachers:
        return "no takes (no group of them has a take of every new gesture each)"
    return f"{teachers} to {most} takes per gesture"


def impossible_points(data: SkeletonDataset, plan: CurvePlan) -> list[tuple[int, int]]:
    """The (teachers, takes) pairs of the plan that no group can draw: fewer takes than teachers
    (each gives one at least), or more than any group has. They are skipped."""
    most = most_takes(data, plan)
    return [
        (n, takes) for n, takes in itertools.product(plan.teachers, plan.takes) if not n <= takes <= most[n]
    ]


def plan_points(data: SkeletonDataset, plan: CurvePlan) -> list[tuple[int, tuple[str, ...]]]:
    """(takes, group) of every point the curve fits, in order (teachers, takes, group): the groups
    of :func:`teacher_groups` that can give that many takes of every new gesture."""
    have = takes_each(data, plan.new)
    groups = {
        n: teacher_groups(curve_pool(data, plan), n, plan.groups, plan.settings.seed) for n in plan.teachers
    }
    return [
        (takes, group)
        for n, takes in itertools.product(plan.teachers, plan.takes)
        for group in groups[n]
        if n <= takes <= group_most(have, group)
    ]


def most_takes(data: SkeletonDataset, plan: CurvePlan) -> dict[int, int]:
    """For each number of teachers, the most takes per gesture any of its groups can give."""
    have, pool = takes_each(data, plan.new), curve_pool(data, plan)
    return {
        n: max(group_most(have, group) for group in teacher_groups(pool, n, plan.groups, plan.settings.seed))
        for n in plan.teachers
    }


def curve_pool(data: SkeletonDataset, plan: CurvePlan, everyone: bool = False) -> list[str]:
    """The people who may teach: ``plan.pool``, else (or with ``everyone``) all with takes of the
    new gestures, sorted."""
    if plan.pool and not everyone:
        return list(plan.pool)
    names = np.array(data.class_names)[data.labels]
    return sorted(set(data.subject_names()[np.isin(names, plan.new)].tolist()))


def takes_each(data: SkeletonDataset, new: Sequence[str]) -> dict[str, int]:
    """Per person, the takes they have of the new gesture they have fewest of (what every gesture
    can get from them)."""
    names = np.array(data.class_names)[data.labels]
    people = data.subject_names()
    return {
        person: min(int(np.sum((people == person) & (names == gesture))) for gesture in new)
        for person in sorted(set(people.tolist()))
    }


def split_takes(takes: int, teachers: int) -> list[int]:
    """``takes`` split as evenly as possible over ``teachers``, the first ones giving one more."""
    return [takes // teachers + (i < takes % teachers) for i in range(teachers)]


def group_most(have: dict[str, int], group: Sequence[str]) -> int:
    """The most takes per gesture :func:`split_takes` can ask of ``group`` (``have``: each one's
    takes): all give the fewest anyone has, and the first ones who have more one more each."""
    fewest = min(have.get(person, 0) for person in group)
    leading = next((i for i, person in enumerate(group) if have.get(person, 0) <= fewest), len(group))
    return len(group) * fewest + leading


def teacher_groups(pool: Sequence[str], teachers: int, most: int, seed: int) -> list[tuple[str, ...]]:
    """Every group of ``teachers`` people of ``pool`` (each in pool order) where there are at most
    ``most``, else ``most`` different ones drawn at random (seeded): 20 people hold 184,756 groups
    of 10, days of fits."""
    if math.comb(len(pool), teachers) <= most:
        return list(itertools.combinations(pool, teachers))
    rng = np.random.default_rng([seed, teachers, len(pool)])
    drawn: set[tuple[int, ...]] = set()
    while len(drawn) < most:
        drawn.add(tuple(sorted(rng.choice(len(pool), teachers, replace=False).tolist())))
    return [tuple(pool[i] for i in group) for group in sorted(drawn)]


def _check_pool(plan: CurvePlan, teachers: list[str], left_out: Sequence[Sequence[str]]) -> None:
    """The pool's people must have takes of the new gestures, and be enough for ``--teachers``
    without the people each base left out (they are tested, never teach)."""
    strangers = [p for p in plan.pool if p not in teachers]
    if strangers:
        raise ValueError(
            f"--pool names {', '.join(strangers)}, who have no takes of {', '.join(plan.new)} in the "
            f"data; people with takes: {', '.join(teachers) or 'none'}"
        )
    pool = len(plan.pool or teachers)
    if max(plan.teachers) > pool:
        raise ValueError(
            f"--teachers {max(plan.teachers)} needs that many people in the pool, which has {pool}"
        )
    for held_out in left_out:
        free = len(set(plan.pool or teachers) - set(held_out))
        if max(plan.teachers) > free:
            raise ValueError(
                f"--teachers {max(plan.teachers)} needs that many people besides those a base left out "
                f"({', '.join(held_out)}), and the pool has {free}"
            )


def cache_features(
    model: BHaRNetModel,
    base: Checkpoint,
    data: SkeletonDataset,
    classes: list[str],
    plan: CurvePlan,
    left_out: list[str],
    progress: str | None = None,
) -> CurveData:
    """Features of every window the plan uses with this base model, computed once; ``progress``
    names a progress bar on stderr (None: no bar)."""
    settings, preprocess = mirrored_settings(plan.settings, base, classes), base.preprocess_config
    names = np.array(data.class_names)[data.labels]
    subjects = data.subject_names()
    old = np.isin(names, base.class_names)
    seen = sorted(set(subjects[old].tolist()) - set(left_out))
    unseen = sorted(set(subjects.tolist()) - set(seen))
    new_set = data.subset(np.flatnonzero(np.isin(names, plan.new)))
    old_set = data.subset(np.flatnonzero(old & np.isin(subjects, unseen)))
    rehearse = data.subset(np.flatnonzero(old & np.isin(subjects, seen)))
    if not len(new_set) or not len(old_set):
        raise ValueError(
            "the data needs takes of the new gestures and old-class samples of people the base model "
            f"never saw (it left out {', '.join(left_out) or 'nobody'})"
        )
    augment, seed, batch = settings.augment, settings.seed, settings.batch_size
    rehearsal = drawn = None
    if len(rehearse):
        rehearse = per_class_cap(rehearse, settings.rehearsal_per_class, seed)
        rehearsal, drawn = rehearsal_features(model, base, rehearse, classes, settings, progress)
    return CurveData(
        teach=extract_features(
            model, new_set, classes, preprocess, settings.views, augment, seed, batch, progress=progress
        ),
        new_eval=extract_features(
            model, new_set, classes, preprocess, batch_size=batch, mirrored=plan.test_mirror
        ),
        old_eval=extract_features(
            model, old_set, classes, preprocess, batch_size=batch, mirrored=plan.test_mirror
        ),
        rehearsal=rehearsal,
        rehearsal_windows=drawn,
        new_subjects=new_set.subject_names(),
        old_subjects=old_set.subject_names(),
        unseen=unseen,
        samples={"new": new_set, "old": old_set, "rehearsal": rehearse},
        base_distance=base_distance(model, drawn, plan),
    )


def runs_for_group(
    model: BHaRNetModel,
    base: Checkpoint,
    classes: list[str],
    cached: CurveData,
    plan: CurvePlan,
    group: list[str],
    takes: int,
    base_name: str,
) -> list[CurveRun]:
    """The draws of ``takes`` takes per gesture from ``group``; none where they have too few or
    nobody unseen is left to evaluate."""
    evaluated = [p for p in cached.unseen if p not in group]
    new_eval = cached.new_eval.select(np.isin(cached.new_subjects, evaluated))
    old_eval = cached.old_eval.select(np.isin(cached.old_subjects, evaluated))
    if takes < len(group) or not len(new_eval) or not len(old_eval):
        return []
    base_rows = base_heads(model)
    if plan.test_mirror:
        base_rows = base_rows.mirrored_for(base, base.class_names)
    new_rows = [classes.index(c) for c in plan.new]
    before = cached.base_distance
    runs, drawn = [], set()
    for draw in range(plan.draws):
        rng = np.random.default_rng([plan.settings.seed, takes, draw, *map(ord, "".join(group))])
        chosen = draw_takes(cached, classes, plan.new, group, takes, rng)
        if chosen is None or chosen in drawn:
            continue
        drawn.add(chosen)
        heads = fit_for(model, base, classes, cached, chosen, plan.settings)
        taught, heads, tuned_new, tuned_old, after = taught_for(
            model, base, classes, cached, chosen, heads, evaluated, plan, (new_eval, old_eval)
        )
        if plan.test_mirror:
            heads = heads.mirrored_for(base, classes)
        scores = [
            accuracy(scorer, rows, features, expert_only)
            for expert_only in (True, False)
            for scorer, rows, features in (
                (taught, heads, tuned_new),
                (model, base_rows, old_eval),
                (taught, heads, tuned_old),
            )
        ]
        scores.append(share_labelled_new(taught, heads, tuned_old, new_rows))
        scores.extend(
            unfamiliar(distance, features, plan.distance_threshold)
            for distance, features in (
                (before, new_eval),
                (after, tuned_new),
                (before, old_eval),
                (after, tuned_old),
            )
        )
        scores.append(right_and_familiar(taught, heads, tuned_new, after, plan.distance_threshold))
        who = sorted(set(cached.new_subjects[np.isin(cached.new_subjects, evaluated)].tolist()))
        run = CurveRun(
            base_name, "+".join(group), takes, draw, "+".join(who), *scores, teacher_count=len(group)
        )
        runs.append(run)
    return runs


def base_distance(model: BHaRNetModel, windows: Features | None, plan: CurvePlan) -> FeatureDistance | None:
    """The base model's feature distance, fitted on the rehearsal windows (None: not measured)."""
    if not plan.distance_threshold or windows is None:
        return None
    return fit_window_distance(model, windows)


def taught_for(
    model: BHaRNetModel, base: Checkpoint, classes: list[str], cached: CurveData, chosen: frozenset[int],
    heads: Heads, evaluated: list[str], plan: CurvePlan, scored: tuple[Features, Features],
) -> tuple[BHaRNetModel, Heads, Features, Features, FeatureDistance | None]:  # fmt: skip
    """What ``bharnet teach train`` makes of these takes and fitted heads: the model, its rows, its
    features of the evaluated people's new and old samples (``scored``, the base's, where the
    backbone stays) and its feature distance (None where it fits none, or none is measured).
    As there, no fine-tune without rehearsal data."""
    windows = (
        with_rehearsal(chosen_takes(cached, chosen), cached.rehearsal_windows)
        if plan.distance_threshold
        else None
    )
    measured = windows is not None and distance_plan(windows, classes, plan.settings)[0]
    if plan.settings.finetune_epochs > 0 and cached.rehearsal is not None:
        return finetuned_for(base, classes, cached, chosen, heads, evaluated, plan, measured)
    return model, heads, *scored, fit_window_distance(model, windows) if measured else None


def unfamiliar(distance: FeatureDistance | None, features: Features, threshold: float) -> float:
    """The share of ``features``' windows farther than ``threshold`` (nan without a distance)."""
    if distance is None or not len(features):
        return math.nan
    return float((window_distances(distance, features) > threshold).float().mean())


def right_and_familiar(
    model: BHaRNetModel, heads: Heads, features: Features, distance: FeatureDistance | None, threshold: float
) -> float:
    """Top-1 (expert-only) with the distance rule: a window farther than ``threshold`` says none,
    so it counts as wrong (nan without a distance)."""
    if distance is None or not len(features):
        return math.nan
    right = predictions(model, heads, features) == features.labels
    near = window_distances(distance, features) <= threshold
    return float((right & near).float().mean())


def window_distances(distance: FeatureDistance, features: Features) -> torch.Tensor:
    """Each window's feature distance ``(N,)``."""
    with torch.no_grad():
        return distance([features.branches[name] for name in distance.branches])


def share_labelled_new(model: BHaRNetModel, heads: Heads, old: Features, new_rows: list[int]) -> float:
    """How much of the old vocabulary the taught model (expert-only) takes for a new gesture: the
    part of its loss that the new rows took, rather than old classes taken for each other."""
    return float(np.isin(predictions(model, heads, old).numpy(), new_rows).mean())


def draw_takes(
    cached: CurveData,
    classes: list[str],
    new: list[str],
    group: list[str],
    takes: int,
    rng: np.random.Generator,
) -> frozenset[int] | None:
    """Sample indices: ``takes`` per gesture split evenly over the teachers; None if one has too few."""
    labels = cached.new_eval.labels.numpy()
    per_teacher = split_takes(takes, len(group))
    chosen: list[int] = []
    for gesture in new:
        for person, count in zip(group, per_teacher, strict=True):
            mine = np.flatnonzero((labels == classes.index(gesture)) & (cached.new_subjects == person))
            if len(mine) < count:
                return None
            chosen.extend(rng.choice(mine, count, replace=False).tolist())
    return frozenset(chosen)


def chosen_takes(cached: CurveData, chosen: frozenset[int]) -> Features:
    """The cached windows of the takes ``chosen`` (sample indices)."""
    return cached.teach.select(np.isin(cached.teach.samples, sorted(chosen)))


def with_rehearsal(takes: Features, rehearsal: Features | None) -> Features:
    """The takes' windows and the rehearsal's, where there is rehearsal data."""
    return takes if rehearsal is None else Features.concat([takes, rehearsal])


def fit_for(
    model: BHaRNetModel, base: Checkpoint, classes: list[str], cached: CurveData, chosen: frozenset[int],
    settings: TeachSettings,
) -> Heads:  # fmt: skip
    """The heads ``bharnet teach train`` would fit on these takes (and the rehearsal)."""
    train = with_rehearsal(chosen_takes(cached, chosen), cached.rehearsal)
    old_rows = old_class_rows(base.class_names, classes)
    start = initial_heads(base_heads(model), base.class_names, classes, train)
    return fit_heads(model, start, old_rows, train, settings, frozen_old=cached.rehearsal is None)


def finetuned_for(
    base: Checkpoint, classes: list[str], cached: CurveData, chosen: frozenset[int], heads: Heads,
    evaluated: list[str], plan: CurvePlan, measured: bool,
) -> tuple[BHaRNetModel, Heads, Features, Features, FeatureDistance | None]:  # fmt: skip
    """The fit's heads and the whole network fine-tuned on its takes and the rehearsal; the model,
    its rows, its features of the evaluated people's new and old samples, and (if ``measured``)
    its own feature distance."""
    settings, samples = mirrored_settings(plan.settings, base, classes), cached.samples
    takes = samples["new"].subset(sorted(chosen))
    data = teaching_set(takes, samples["rehearsal"], classes)
    old_rows = old_class_rows(base.class_names, classes)
    model = prepare_model(finetune(taught_checkpoint(base, classes, heads, None), data, settings, old_rows))
    distance = None
    if measured:
        windows = distance_windows(model, base, takes, samples["rehearsal"], classes, settings)
        distance = fit_window_distance(model, windows)
    scored = [
        extract_features(
            model,
            samples[part].subset(np.flatnonzero(np.isin(subjects, evaluated))),
            classes,
            base.preprocess_config,
            batch_size=settings.batch_size,
            mirrored=plan.test_mirror,
        )  # fmt: skip
        for part, subjects in (("new", cached.new_subjects), ("old", cached.old_subjects))
    ]
    return model, base_heads(model), scored[0], scored[1], distance


@dataclass
class ReferenceRun:
    """A model trained with every gesture from the start, scored on the people it left out."""

    reference: str
    evaluated: str
    new_top1: float
    old_top1: float
    new_top1_fused: float
    old_top1_fused: float
    old_as_new: float


REFERENCE_SCORES = ("new_top1", "old_top1", "new_top1_fused", "old_top1_fused", "old_as_new")


def score_reference(path: str | Path, data: SkeletonDataset, new: Sequence[str]) -> ReferenceRun:
    """The reference's top-1 on its left-out people's new-gesture and old-vocabulary samples."""
    reference = load_checkpoint(path)
    missing = sorted(set(new) - set(reference.class_names))
    left_out = rehearsal_beside(path).unseen
    if missing or not left_out:
        raise ValueError(
            f"{path} is no reference: it must be trained with every gesture (it lacks {missing}) "
            f"and leave people out (data.exclude_subjects; it left out {left_out or 'nobody'})"
        )
    names = np.array(data.class_names)[data.labels]
    unseen = np.isin(data.subject_names(), left_out) & np.isin(names, reference.class_names)
    model, classes = prepare_model(reference), reference.class_names
    rows = base_heads(model)
    scores = {}
    for part, members in (("new", np.isin(names, new)), ("old", ~np.isin(names, new))):
        if not (unseen & members).any():
            raise ValueError(f"the data has no {part}-gesture samples of {', '.join(left_out)}")
        scores[part] = extract_features(
            model, data.subset(np.flatnonzero(unseen & members)), classes, reference.preprocess_config
        )
    new_rows = [classes.index(c) for c in new]
    return ReferenceRun(
        Path(path).parent.name, "+".join(sorted(set(data.subject_names()[unseen].tolist()))),
        accuracy(model, rows, scores["new"]), accuracy(model, rows, scores["old"]),
        accuracy(model, rows, scores["new"], False), accuracy(model, rows, scores["old"], False),
        share_labelled_new(model, rows, scores["old"], new_rows),
    )  # fmt: skip


def reference_table(references: Sequence[ReferenceRun]) -> str:
    """The references' mean scores as a markdown table, one row per reference and their mean."""
    lines = [
        "| trained with every gesture from the start | evaluated | new gestures | old vocabulary | "
        "old vocabulary taken for a new gesture | fused model: new, old |",
        "|---|---|---|---|---|---|",
    ]
    means = ReferenceRun(
        "mean", f"{len(references)} people",
        *(float(np.mean([getattr(r, name) for r in references])) for name in REFERENCE_SCORES),
    )  # fmt: skip
    for r in [*references, means] if len(references) > 1 else references:
        lines.append(
            f"| {r.reference} | {r.evaluated} | {100 * r.new_top1:.1f} % | {100 * r.old_top1:.1f} % | "
            f"{100 * r.old_as_new:.1f} % | {100 * r.new_top1_fused:.1f} %, {100 * r.old_top1_fused:.1f} % |"
        )
    return "\n".join(lines) + "\n"


def summarise(runs: Sequence[CurveRun]) -> list[dict[str, float | int]]:
    """One row per (teachers, takes): the mean over runs, and the worst run on the new gestures."""
    rows = []
    keys = sorted({(r.teacher_count, r.takes) for r in runs})
    for teachers, takes in keys:
        mine = [r for r in runs if r.teacher_count == teachers and r.takes == takes]
        row: dict[str, float | int] = {"teachers": teachers, "takes": takes, "runs": len(mine)}
        for name in SCORES:
            row[name] = float(np.mean([getattr(r, name) for r in mine]))
        row["new_top1_min"] = float(min(r.new_top1 for r in mine))
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict[str, float | int]]) -> str:
    """The summary as a markdown table (percentages; old vocabulary as base -> taught)."""
    lines = [
        "| teachers | takes per gesture | fits | new gestures, unseen people (worst fit) | "
        "old vocabulary: base → taught | old vocabulary taken for a new gesture | "
        "fused model: new, old base → taught | called unfamiliar (base → taught): new, old |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        delta = 100 * (r["old_taught"] - r["old_base"])
        lines.append(
            f"| {r['teachers']} | {r['takes']} | {r['runs']} | {100 * r['new_top1']:.1f} % "
            f"({100 * r['new_top1_min']:.1f} %) | {100 * r['old_base']:.1f} → {100 * r['old_taught']:.1f} % "
            f"({delta:+.1f}) | {100 * r['old_as_new']:.1f} % "
            f"| {100 * r['new_top1_fused']:.1f} %, {100 * r['old_base_fused']:.1f} → "
            f"{100 * r['old_taught_fused']:.1f} % | {unfamiliar_cell(r)} |"
        )
    return "\n".join(lines) + "\n"


def unfamiliar_cell(row: dict[str, float | int]) -> str:
    """The shares the feature distance calls unfamiliar, before → after teaching ("not measured")."""
    keys = ("new_unfamiliar_base", "new_unfamiliar", "old_unfamiliar_base", "old_unfamiliar")
    if any(math.isnan(row[key]) for key in (*keys, "new_top1_distance")):
        return "not measured"
    new_before, new_after, old_before, old_after = (100 * row[key] for key in keys)
    return (
        f"{new_before:.1f} → {new_after:.1f} %, {old_before:.1f} → {old_after:.1f} %; "
        f"new top-1 with the rule {100 * row['new_top1_distance']:.1f} %"
    )


def write_curve(
    folder: Path,
    runs: Sequence[CurveRun],
    plan: CurvePlan,
    about: dict[str, object],
    references: Sequence[ReferenceRun] = (),
) -> str:
    """``runs.csv`` (every fit), ``curve.json`` (plan, summary, references) and ``curve.md`` (the
    summary's table, then the references') into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "runs.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(asdict(runs[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in runs)
    rows = summarise(runs)
    plan_dict = {k: v for k, v in asdict(plan).items() if k != "settings"}
    settings = asdict(plan.settings)
    settings["augment"] = plan.settings.augment.to_dict()
    record = {"plan": plan_dict, "settings": settings, **about, "summary": rows}
    record["references"] = [asdict(r) for r in references]
    (folder / "curve.json").write_text(json.dumps(record, indent=2) + "\n")
    table = markdown_table(rows) + (f"\n{reference_table(references)}" if references else "")
    (folder / "curve.md").write_text(table)
    return table
