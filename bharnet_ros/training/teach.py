"""Teaching a trained model new gestures in minutes on a CPU: new classifier rows on frozen features.

A few takes cannot retrain a graph network, and retraining it would forget the old gestures. So
the base model's backbone stays exactly as it is and only its classifier heads (one linear layer
per branch: for BHaRNet-E the body and hand expertized and interactive branches) change:

1. **Features, once.** Every take goes through the frozen base model ``views`` times, each time
   as a different augmented training window (``training/feeder.py``: window position, speed,
   rotation, scale, mirroring, hand dropout). Forward pre-hooks on the heads catch each branch's
   pooled feature. Samples of the base model's own training data (``rehearsal``, at most
   ``rehearsal_per_class`` per old class) go through too, so the old classes keep their place:
   ``rehearsal_candidates`` windows each, of which the ``rehearsal_views`` the base model is least
   sure of are kept, as it sees its own training data more sharply than other people's gestures.
2. **Heads.** Old classes start from their base rows; each new class gets a row imprinted from its
   mean feature (centred, scaled to the old rows' norm) and the old rows' mean bias. All rows are
   then trained with Adam on the cached features: class-balanced cross-entropy of the fused
   logits and, for BHaRNet-E, of the expert-only sum (the node's default export), plus a pull of
   the old rows towards their base values (``anchor``), a light update. Each step sees the
   features through dropout (``feature_dropout``), so the rows hold for people other than the
   teachers and the base model's training people. Without rehearsal data
   the old rows stay frozen: nothing would tell them where the old classes are.
3. **Optionally, a short fine-tune** (``finetune_epochs`` > 0, rehearsal data needed): the whole
   network (or with ``finetune_part="tails"`` all but BHaRNet-E's shared trunks), from those heads,
   a few class-balanced epochs on the takes and the rehearsal samples with the base recipe's loss
   and a small learning rate. ``finetune_balance`` below 1 draws the few takes less often than
   the classes' equal share, so fewer old windows are taken for a new gesture.
   ``finetune_distill`` adds a distillation term: every branch's distribution over the old
   classes, softened, is kept close to that of the model before the
   fine-tune, so the features may move to set the new gestures apart while the old classes keep
   their relations. Normalisation statistics and random features stay the base model's (eval
   mode): a few dozen takes cannot estimate them. Each window takes one pass, as in the base
   model's training: mirroring is one of its augmentations, so a base that scores every window
   with its mirror image (``test_mirror``) need not run the network twice per step.
4. **The model.** The base architecture with the new class count, the base weights and the new
   heads, as a normal checkpoint (``model/checkpoint.py``) with the base preprocessing, so
   ``bharnet export`` (here :func:`export_taught`: ``export_checked``) and the
   unchanged node run it.
5. **Its feature distance** (``model/feature_distance.py``), so the node can still say ``none`` for
   motion unlike anything the model knows: without a fine-tune the backbone is the base's, so the
   windows already cached (every take's views and every rehearsal candidate, not only the least
   sure ones, which would widen the old classes) give each class its mean and the shared
   covariance. A fine-tune moves the features, so its model computes its own windows once more:
   every take's views and ``rehearsal_views`` per rehearsal sample (a second pass costs time, and
   the candidates' surplus only sharpens the estimates). It is fitted only where every class of
   the taught vocabulary has windows: a class without any would lie far from every mean, and its
   gestures would all be called unfamiliar.

``add`` puts the new gestures after the base vocabulary; ``replace`` keeps only the new gestures
(and the base classes named in ``keep``, e.g. ``none``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from bharnet_ros.core.labels import error_line, shorten
from bharnet_ros.core.preprocess import PreprocessConfig, space_problem
from bharnet_ros.model.bharnet import (
    BHaRNetModel,
    ExpertizedModel,
    build_model,
    classifier_heads,
    head_inputs,
)
from bharnet_ros.model.checkpoint import Checkpoint, make_checkpoint
from bharnet_ros.model.export import (
    ExportError,
    calibration_for,
    calibration_value,
    check_calibratable,
    check_fitted_classes,
    export_checked,
    prepare_model,
    variant_name,
)
from bharnet_ros.model.feature_distance import FeatureDistance, distance_branches, fit_feature_distance
from bharnet_ros.model.losses import build_loss
from bharnet_ros.model.mirror import average_with_mirror, mirror_body, mirror_hand
from bharnet_ros.training.classes import labelled_by, name_words, same_words
from bharnet_ros.training.data import (
    TrainingData,
    known_classes_only,
    load_datasets,
    training_data_of,
    vocabulary,
)
from bharnet_ros.training.dataset import SkeletonDataset
from bharnet_ros.training.feeder import AugmentConfig, SkeletonFeeder, mirror_label_map
from bharnet_ros.training.sampling import ClassBalancedSampler
from bharnet_ros.training.train import learning_rate, make_optimizer, progress_bar

TEACH_AUGMENT = AugmentConfig(
    mirror=0.5, rotate_2d=0.15, scale=0.1, hand_jitter=0.01, hand_dropout=0.2, speed=0.2, min_cover=0.8
)
DISTILL_TEMPERATURE = 2.0  # softens the old classes' distributions the fine-tune keeps


@dataclass(frozen=True)
class TeachSettings:
    """How new gestures are taught (see the module docstring)."""

    replace: bool = False  # the new gestures replace the base vocabulary
    keep: tuple[str, ...] = ()  # replace: base classes that stay
    views: int = 6  # augmented windows per take
    rehearsal_per_class: int = 20  # base training samples per old class
    rehearsal_views: int = 4  # augmented windows kept per rehearsal sample (more: better-placed new rows)
    rehearsal_candidates: int = 12  # windows drawn per rehearsal sample; its least sure views are kept
    steps: int = 300  # Adam steps on the cached features
    lr: float = 0.01
    anchor: float = 1.0  # pull of the old rows towards their base values
    label_smoothing: float = 0.1
    feature_dropout: float = 0.3  # share of feature values zeroed per step of the fit
    batch_size: int = 32  # windows per forward pass while caching features
    finetune_epochs: int = 0  # fine-tune epochs after the heads, of finetune_part (0: heads only)
    finetune_lr: float = 0.005
    finetune_part: str = "all"  # "tails": BHaRNet-E's trunks stay, its tails, exchanges and heads train
    finetune_distill: float = 0.0  # weight of keeping the old classes' logits of the model before it
    finetune_balance: float = 1.0  # fine-tune sampling: 1 every class equally often, 0 each sample
    distance: bool = True  # fit the taught model's feature distance
    seed: int = 0
    augment: AugmentConfig = TEACH_AUGMENT


@dataclass
class Features:
    """The pooled feature each classifier head takes, for N windows, with their labels and hand masks."""

    branches: dict[str, torch.Tensor]  # branch -> (N, C)
    hand_mask: torch.Tensor  # (N, T)
    labels: torch.Tensor  # (N,)
    samples: np.ndarray  # (N,) index of each window's sample in its dataset
    mirrored: dict[str, torch.Tensor] | None = None  # the same of each window's mirror image

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, keep: np.ndarray) -> Features:
        """The windows where ``keep`` (a bool mask or indices) says so."""
        index = torch.as_tensor(np.flatnonzero(keep) if keep.dtype == bool else keep, dtype=torch.long)
        mirrored = None if self.mirrored is None else {n: v[index] for n, v in self.mirrored.items()}
        return Features(
            {name: value[index] for name, value in self.branches.items()},
            self.hand_mask[index], self.labels[index], self.samples[index.numpy()], mirrored,
        )  # fmt: skip

    @classmethod
    def concat(cls, parts: Sequence[Features]) -> Features:
        mirrored = None
        if all(p.mirrored is not None for p in parts):
            mirrored = {name: torch.cat([p.mirrored[name] for p in parts]) for name in parts[0].mirrored}
        return cls(
            {name: torch.cat([p.branches[name] for p in parts]) for name in parts[0].branches},
            torch.cat([p.hand_mask for p in parts]), torch.cat([p.labels for p in parts]),
            np.concatenate([p.samples for p in parts]), mirrored,
        )  # fmt: skip


@dataclass
class Heads:
    """One classifier row per class and branch: weights (K, C) and biases (K,)."""

    weight: dict[str, torch.Tensor]
    bias: dict[str, torch.Tensor]
    mirror: tuple[int, ...] = ()  # per row, its mirror class (-1: none): test-time mirroring

    def logits(self, features: Features) -> dict[str, torch.Tensor]:
        """Per branch; averaged with the mirror images' logits where both rows and features have them
        (as ``model/mirror.py`` averages in the exported model)."""
        plain = {
            name: F.linear(x, self.weight[name], self.bias[name]) for name, x in features.branches.items()
        }
        if not self.mirror or features.mirrored is None:
            return plain
        return {
            name: average_with_mirror(
                value, F.linear(features.mirrored[name], self.weight[name], self.bias[name]), self.mirror
            )
            for name, value in plain.items()
        }

    def copy(self, trainable: bool = False) -> Heads:
        """Detached copies of the rows; ``trainable`` ones require gradients."""
        weight = {n: w.detach().clone().requires_grad_(trainable) for n, w in self.weight.items()}
        bias = {n: b.detach().clone().requires_grad_(trainable) for n, b in self.bias.items()}
        return Heads(weight, bias, self.mirror)

    def mirrored_for(self, base: Checkpoint, classes: Sequence[str]) -> Heads:
        """These rows, scoring with test-time mirroring for the vocabulary ``classes`` (their order)."""
        return Heads(self.weight, self.bias, tuple(mirror_classes(base, classes)))

    def tensors(self) -> list[torch.Tensor]:
        return [*self.weight.values(), *self.bias.values()]


def mirror_classes(base: Checkpoint, classes: Sequence[str]) -> list[int]:
    """Each class's twin in ``classes`` when mirrored (-1: none). The base's classes keep the twins
    its ``test_mirror`` records (an explicit ``augment.mirror_pairs`` or ``mirror_never`` of its
    recipe); new classes pair by their names (``auto``), among themselves where the base's are
    explicit. By names alone where the base records nothing, or paired by names itself."""
    auto = mirror_label_map(list(classes)).tolist()
    recorded = list(base.model_config.get("test_mirror") or [])
    if not recorded or recorded == mirror_label_map(list(base.class_names)).tolist():
        return auto
    index = {name: i for i, name in enumerate(classes)}
    twins = []
    for i, name in enumerate(classes):
        if name in base.class_names:
            twin = recorded[base.class_names.index(name)]
            twins.append(index.get(base.class_names[twin], -1) if twin >= 0 else -1)
        else:
            twins.append(auto[i] if auto[i] < 0 or classes[auto[i]] not in base.class_names else -1)
    return twins


def mirrored_settings(settings: TeachSettings, base: Checkpoint, classes: Sequence[str]) -> TeachSettings:
    """``settings`` whose augmentation mirrors ``classes`` as the taught model scores them."""
    return dataclasses.replace(settings, augment=mirrored_augment(settings.augment, base, classes))


def mirrored_augment(augment: AugmentConfig, base: Checkpoint, classes: Sequence[str]) -> AugmentConfig:
    """``augment`` mirroring the windows of ``classes`` as :func:`mirror_classes` pairs them."""
    return twin_augment(augment, classes, mirror_classes(base, classes))


def twin_augment(augment: AugmentConfig, classes: Sequence[str], twins: Sequence[int]) -> AugmentConfig:
    """``augment`` mirroring each class into its twin (-1: never mirrored)."""
    twins = list(twins)
    if twins == mirror_label_map(list(classes)).tolist():
        return augment
    pairs = [[classes[i], classes[j]] for i, j in enumerate(twins) if j > i]
    never = [classes[i] for i, j in enumerate(twins) if j < 0]
    return dataclasses.replace(augment, mirror_pairs=pairs, mirror_never=tuple(never))


def base_heads(model: BHaRNetModel) -> Heads:
    """The model's own classifier rows."""
    heads = classifier_heads(model)
    return Heads(
        {b: head.fc.weight.detach().clone() for b, (_, head) in heads.items()},
        {b: head.fc.bias.detach().clone() for b, (_, head) in heads.items()},
    )


def extract_features(
    model: BHaRNetModel,
    data: SkeletonDataset,
    classes: Sequence[str],
    preprocess: PreprocessConfig,
    views: int = 1,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    batch_size: int = 32,
    mirrored: bool = False,
    progress: str | None = None,
) -> Features:
    """Features of ``views`` augmented windows per sample, or of the centred window without ``augment``.

    Labels index ``classes``, which must name every class of ``data``. The samples are relabelled
    first, so mirroring swaps lateral classes within ``classes``. ``mirrored`` also keeps the
    features of each window's mirror image, for scoring with test-time mirroring. ``progress``
    names a progress bar on stderr (None: no bar).
    """
    data = labelled_by(data, classes)
    train = augment is not None
    feeder = SkeletonFeeder(data, preprocess, train=train, augment=augment, seed=seed)
    parts = []
    passes = views if train else 1
    batches = progress_bar(
        view_batches(feeder, passes, batch_size), progress is not None, desc=progress, unit="batch",
        total=passes * math.ceil(len(feeder) / batch_size),
    )  # fmt: skip
    with torch.no_grad(), head_inputs(model, model.branches) as caught:
        for first, (body, hand, mask, label) in batches:
            model.forward_once(body, hand, mask)  # one feature row per window
            plain, mirror_image = dict(caught), None
            if mirrored:
                layout = model.config.input.body_layout
                model.forward_once(mirror_body(body, layout), mirror_hand(hand), mask)
                mirror_image = dict(caught)
            samples = np.arange(first, first + len(label))
            parts.append(Features(plain, mask, label, samples, mirror_image))
    return Features.concat(parts)


def view_batches(
    feeder: SkeletonFeeder, views: int, batch_size: int
) -> Iterator[tuple[int, list[torch.Tensor]]]:
    """(index of the batch's first sample, batch) over ``views`` passes of ``feeder`` in order,
    each pass its own draw of the augmentation."""
    for view in range(views):
        feeder.set_epoch(view)
        first = 0
        for batch in DataLoader(feeder, batch_size=batch_size):
            yield first, batch
            first += len(batch[-1])


def vocabulary_for(base_classes: Sequence[str], taught: Sequence[str], settings: TeachSettings) -> list[str]:
    """The taught classes: base then new (``add``), or the kept base classes then new (``replace``);
    ValueError for two names of one gesture (``Clap`` beside ``clap``)."""
    unknown = sorted(set(settings.keep) - set(base_classes))
    if unknown:
        known = ", ".join(base_classes)
        raise ValueError(f"--keep names {', '.join(unknown)}, which the base model does not know ({known})")
    first = [c for c in base_classes if c in settings.keep] if settings.replace else list(base_classes)
    classes = first + [c for c in taught if c not in first]
    if pair := same_words(classes):
        raise ValueError(
            f"{pair[0]} and {pair[1]} would be two classes of one gesture (the same words); rename the "
            f"takes of {pair[1]} (bharnet teach record names them)"
        )
    if len(classes) < 2:
        raise ValueError(
            f"the taught model would know only {', '.join(classes)}: a classifier needs two classes or "
            "more; record another gesture, or keep base classes (--keep none)"
        )
    return classes


def old_class_rows(base_classes: Sequence[str], classes: Sequence[str]) -> list[int]:
    """The rows of ``classes`` that the base model already knows."""
    return [i for i, name in enumerate(classes) if name in base_classes]


def initial_heads(base: Heads, base_classes: Sequence[str], classes: Sequence[str], train: Features) -> Heads:
    """Base rows for old classes; for new ones the centred mean feature at the old rows' norm."""
    weight, bias = {}, {}
    for branch, base_weight in base.weight.items():
        x = train.branches[branch]
        centre = x.mean(dim=0)
        norm = base_weight.norm(dim=1).mean()
        rows, biases = [], []
        for k, name in enumerate(classes):
            if name in base_classes:
                rows.append(base_weight[base_classes.index(name)])
                biases.append(base.bias[branch][base_classes.index(name)])
                continue
            mean = x[train.labels == k].mean(dim=0) - centre
            rows.append(norm * mean / mean.norm().clamp_min(1e-6))
            biases.append(base.bias[branch].mean())
        weight[branch], bias[branch] = torch.stack(rows), torch.stack(biases)
    return Heads(weight, bias)


def fused_logits(model: BHaRNetModel, logits: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """The model's fused prediction from branch logits (its own fusion rule)."""
    return model.fuse(logits, mask)["fused"]


def expert_logits(model: BHaRNetModel, logits: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """BHaRNet-E's expert-only prediction (the light export); the fused one for other variants."""
    if not isinstance(model, ExpertizedModel):
        return fused_logits(model, logits, mask)
    experts = model.expert_only()
    return experts.fuse({name: logits[name] for name in experts.branches}, mask)["fused"]


def fit_heads(
    model: BHaRNetModel,
    start: Heads,
    old_rows: Sequence[int],
    train: Features,
    settings: TeachSettings,
    frozen_old: bool = False,
) -> Heads:
    """Train every row on the cached features (see the module docstring).

    The ``old_rows`` (the base model's classes) are pulled towards their values in ``start``, or
    kept exactly with ``frozen_old``.
    """
    torch.manual_seed(settings.seed)
    heads, mask = start.copy(trainable=True), train.hand_mask
    old = torch.tensor(sorted(old_rows), dtype=torch.long)
    counts = torch.bincount(train.labels, minlength=len(next(iter(start.bias.values())))).float()
    weights = torch.where(counts > 0, len(train) / (counts.clamp_min(1) * (counts > 0).sum()), 0.0)
    optimizer = torch.optim.Adam(heads.tensors(), lr=settings.lr)
    for _ in range(settings.steps):
        optimizer.zero_grad()
        logits = heads.logits(dropped(train, settings.feature_dropout))
        loss = sum(
            F.cross_entropy(out, train.labels, weight=weights, label_smoothing=settings.label_smoothing)
            for out in (fused_logits(model, logits, mask), expert_logits(model, logits, mask))
        )
        if len(old) and not frozen_old:
            moved = (
                ((now[old] - then[old]) ** 2).sum()
                for now, then in zip(heads.tensors(), start.tensors(), strict=True)
            )
            loss = loss + settings.anchor * sum(moved)
        loss.backward()
        if len(old) and frozen_old:
            hold_old_rows(heads, old)
        optimizer.step()
    return heads.copy()


def dropped(features: Features, rate: float) -> Features:
    """The features with a share ``rate`` of their values zeroed at random (the rest scaled up).

    The takes are few and come from one or two people, and the rehearsal windows are the base
    model's own training data, on which its features are sharper than on anyone else. Rows fitted
    through dropout cannot lean on a few dimensions of those windows, so they hold for other
    people's windows as well (docs/teaching.md, section 4).
    """
    if rate == 0:
        return features
    kept = {name: F.dropout(value, rate) for name, value in features.branches.items()}
    return Features(kept, features.hand_mask, features.labels, features.samples)


def hold_old_rows(heads: Heads, old: torch.Tensor) -> None:
    """Without rehearsal: no gradient for the old rows, nor for the new rows' biases.

    Nothing in the training data speaks for the old classes then, so the new rows' biases stay at
    the old rows' mean (their imprinted start) and only their directions are learnt.
    """
    for weight in heads.weight.values():
        weight.grad[old] = 0.0
    for bias in heads.bias.values():
        bias.grad[:] = 0.0


def predictions(
    model: BHaRNetModel, heads: Heads, features: Features, expert_only: bool = True
) -> torch.Tensor:
    """The class ``heads`` give each window of ``features`` (the expert-only prediction, or the fused one)."""
    with torch.no_grad():
        logits = heads.logits(features)
        scores = (expert_logits if expert_only else fused_logits)(model, logits, features.hand_mask)
    return scores.argmax(dim=1)


def accuracy(model: BHaRNetModel, heads: Heads, features: Features, expert_only: bool = True) -> float:
    """Top-1 of ``heads`` on ``features`` (the expert-only prediction, or the fused one)."""
    if len(features) == 0:
        return float("nan")
    return float((predictions(model, heads, features, expert_only) == features.labels).float().mean())


def per_class_cap(data: SkeletonDataset, limit: int, seed: int) -> SkeletonDataset:
    """At most ``limit`` random samples of each class."""
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(data.labels):
        members = np.flatnonzero(data.labels == label)
        keep.extend(rng.choice(members, min(limit, len(members)), replace=False).tolist())
    return data.subset(sorted(keep))


@dataclass
class TeachResult:
    """A taught model: its checkpoint, the model (eval mode), what changed and how long it took."""

    checkpoint: Checkpoint
    model: BHaRNetModel
    new_classes: list[str]
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    train_top1: float = float("nan")  # of the fitted heads on the training windows, before any fine-tune
    distance: FeatureDistance | None = None  # the taught model's feature distance (also on ``model``)


def teach(
    base: Checkpoint,
    takes: SkeletonDataset,
    rehearsal: SkeletonDataset | None = None,
    settings: TeachSettings | None = None,
    show_progress: bool = False,
) -> TeachResult:
    """The base model with the takes' gestures added (or instead of its own); see the module
    docstring. ``show_progress`` draws progress bars of its slow steps on stderr."""
    settings = settings or TeachSettings()
    started = time.monotonic()
    model = prepare_model(base)
    check_finetune(model, settings)
    classes = vocabulary_for(base.class_names, takes.class_names, settings)
    settings = mirrored_settings(settings, base, classes)
    old_rows = old_class_rows(base.class_names, classes)
    kept = rehearsal_samples(rehearsal, [classes[i] for i in old_rows], settings)
    check_something_to_teach(base, takes, classes, kept is not None)
    check_space(base, takes, kept)
    if settings.finetune_epochs > 0 and kept is not None:
        check_mergeable(takes, kept)
    train, windows, notes = teaching_windows(model, base, takes, kept, classes, settings, show_progress)
    frozen = kept is None and bool(old_rows)
    if frozen:
        notes.append("no rehearsal data: the old classes' rows stay as they were")
    cached = time.monotonic()
    start = initial_heads(base_heads(model), base.class_names, classes, train)
    heads = fit_heads(model, start, old_rows, train, settings, frozen_old=frozen)
    checkpoint = taught_checkpoint(base, classes, heads, hand_intensive_of(base, takes, classes))
    fitted = time.monotonic()
    seconds = {"features": cached - started, "fit": fitted - cached}
    fits_distance, note = distance_plan(windows, classes, settings)
    notes.extend(note)
    tuned = settings.finetune_epochs > 0 and not frozen
    if settings.finetune_epochs > 0 and frozen:
        notes.append("no fine-tune without rehearsal data: it would forget the old classes")
    elif tuned:
        tuning = time.monotonic()
        checkpoint = finetune(
            checkpoint, teaching_set(takes, kept, classes), settings, old_rows, show_progress
        )
        seconds["finetune"] = time.monotonic() - tuning
        notes.append(finetune_note(settings))
    taught = prepare_model(checkpoint)
    if fits_distance:
        measuring = time.monotonic()
        if tuned:  # the fine-tune moved the features: the tuned model's own windows
            windows = distance_windows(taught, checkpoint, takes, kept, classes, settings, show_progress)
        taught.feature_distance, note = spread_distance(taught, windows)
        notes.extend(note)
        seconds["distance"] = time.monotonic() - measuring
    return TeachResult(
        checkpoint, taught, [c for c in classes if c not in base.class_names], notes, seconds,
        accuracy(model, heads, train), taught.feature_distance,
    )  # fmt: skip


def teaching_windows(
    model: BHaRNetModel,
    base: Checkpoint,
    takes: SkeletonDataset,
    kept: SkeletonDataset | None,
    classes: Sequence[str],
    settings: TeachSettings,
    show_progress: bool = False,
) -> tuple[Features, Features, list[str]]:
    """The windows the heads are fitted on (the takes' views and the rehearsed ones), every window
    computed (for the distance), and notes on what was rehearsed."""
    bars = ("features of the takes", "features of the rehearsal") if show_progress else (None, None)
    parts = [window_features(model, base, takes, classes, settings, settings.views, bars[0])]
    windows = list(parts)
    notes = refinement_notes([c for c in takes.class_names if c in base.class_names], kept is not None)
    if kept is not None:
        rehearsed, drawn = rehearsal_features(model, base, kept, classes, settings, bars[1])
        parts.append(rehearsed)
        windows.append(drawn)
        notes.append(f"rehearsed {len(kept)} samples of {len(set(kept.labels.tolist()))} old classes")
        notes.extend(unrehearsed_note([c for c in classes if c in base.class_names], kept))
    return Features.concat(parts), Features.concat(windows), notes


def distance_plan(
    windows: Features, classes: Sequence[str], settings: TeachSettings
) -> tuple[bool, list[str]]:
    """Whether teaching fits a feature distance on windows of these samples, and else a note why
    not: a class of the taught vocabulary without a window (see the module docstring). No note
    where ``settings.distance`` is off: that was asked for."""
    if not settings.distance:
        return False, []
    missing = sorted(set(classes) - {classes[k] for k in windows.labels.unique().tolist()})
    if not missing:
        return True, []
    return False, [
        f"no feature distance: no window of {', '.join(missing)} (give their training data with "
        "--rehearse); the recognizer's distance rule is off for this model"
    ]


def distance_windows(
    model: BHaRNetModel,
    checkpoint: Checkpoint,
    takes: SkeletonDataset,
    kept: SkeletonDataset | None,
    classes: Sequence[str],
    settings: TeachSettings,
    show_progress: bool = False,
) -> Features:
    """The windows a fine-tuned ``model``'s distance is fitted on: every take's views and
    ``rehearsal_views`` per rehearsal sample."""
    bars = ("takes, fine-tuned", "rehearsal, fine-tuned") if show_progress else (None, None)
    parts = [window_features(model, checkpoint, takes, classes, settings, settings.views, bars[0])]
    if kept is not None:
        parts.append(
            window_features(model, checkpoint, kept, classes, settings, settings.rehearsal_views, bars[1])
        )
    return Features.concat(parts)


def fit_window_distance(model: BHaRNetModel, windows: Features) -> FeatureDistance:
    """The feature distance of ``windows`` (features of ``model``'s branches, labelled)."""
    branches = distance_branches(model.branches)
    return fit_feature_distance({name: windows.branches[name] for name in branches}, windows.labels)


def spread_distance(model: BHaRNetModel, windows: Features) -> tuple[FeatureDistance | None, list[str]]:
    """The feature distance of ``windows``, or None and a note where they give no spread to measure
    it by (one window of each class: a single take of each, seen once)."""
    try:
        return fit_window_distance(model, windows), []
    except ValueError as error:
        return None, [
            f"no feature distance: {error} (give more takes, or --views 2 or more); the recognizer's "
            "distance rule is off for this model"
        ]


def unrehearsed_note(old_classes: Sequence[str], kept: SkeletonDataset) -> list[str]:
    """A note naming the old classes with no rehearsal sample (the data they were trained on is
    not here): nothing holds them in place while the heads are fitted, so they may be forgotten."""
    rehearsed = {kept.class_names[label] for label in set(kept.labels.tolist())}
    missing = [name for name in old_classes if name not in rehearsed]
    if not missing:
        return []
    return [
        f"no rehearsal sample of {len(missing)} old classes ({', '.join(missing)}): they may be "
        "forgotten; give their training data with --rehearse"
    ]


def refinement_notes(known: list[str], rehearsed: bool) -> list[str]:
    """What the takes of classes the base already knows do: refine their rows with rehearsal data;
    without it the old rows stay frozen, so those takes are not used."""
    if not known:
        return []
    if rehearsed:
        return [f"takes of {', '.join(known)}, which the base model knows, refine it"]
    return [f"takes of {', '.join(known)}, which the base model knows, are not used: without rehearsal data "
            "its rows stay as they were"]  # fmt: skip


def rehearsal_samples(
    rehearsal: SkeletonDataset | None, old_classes: Sequence[str], settings: TeachSettings
) -> SkeletonDataset | None:
    """The rehearsal samples of the old classes that stay, at most ``rehearsal_per_class`` each;
    None when there are none (then the old rows stay frozen)."""
    if rehearsal is None or not old_classes:
        return None
    kept, _ = known_classes_only(rehearsal, list(old_classes))
    kept = per_class_cap(kept, settings.rehearsal_per_class, settings.seed)
    return kept if len(kept) else None


def check_something_to_teach(
    base: Checkpoint, takes: SkeletonDataset, classes: Sequence[str], rehearsed: bool
) -> None:
    """ValueError when the takes could not change the model at all.

    Takes only of classes the base already knows teach nothing new; without rehearsal samples the
    old rows stay frozen, so the fit would leave every row as it was and the output would be the
    base unchanged, or (``replace``) its kept rows unchanged. (With rehearsal they are refined.)
    """
    if rehearsed or any(c not in base.class_names for c in classes):
        return
    known = ", ".join(takes.class_names)
    raise ValueError(
        f"the takes are only of classes the base model already knows ({known}) and without rehearsal "
        "data its rows stay frozen, so the takes would not be used: record a new gesture, or rehearse "
        "(--rehearse DATA, or drop --no-rehearse) to refine the known classes"
    )


def check_space(base: Checkpoint, takes: SkeletonDataset, rehearsal: SkeletonDataset | None) -> None:
    """ValueError, before any feature is computed, for takes or rehearsal data in a coordinate
    space other than the base model's training data (metres read as fractions of the image)."""
    for what, data in (("the takes", takes), ("the rehearsal data", rehearsal)):
        problem = None if data is None else space_problem(data.space, base.preprocess_config)
        if problem:
            raise ValueError(f"{what}: {problem}; record them with the pose stage the base model learnt from")


def check_mergeable(takes: SkeletonDataset, rehearsal: SkeletonDataset) -> None:
    """ValueError, before minutes of features and fit, where a fine-tune could not train the takes
    and the rehearsal together: one dataset holds one skeleton layout in one space."""
    if (takes.layout, takes.space) != (rehearsal.layout, rehearsal.space):
        raise ValueError(
            f"the takes are {takes.layout} skeletons in {takes.space} space and the rehearsal data "
            f"{rehearsal.layout} in {rehearsal.space}: a fine-tune trains them together, so give "
            "rehearsal data recorded as the takes were (MediaPipe), or teach without --finetune-epochs"
        )


def teaching_set(
    takes: SkeletonDataset, rehearsal: SkeletonDataset | None, classes: Sequence[str]
) -> SkeletonDataset:
    """The takes and the rehearsal samples (if any) as one dataset labelled by ``classes``."""
    parts = [labelled_by(data, classes) for data in (takes, rehearsal) if data is not None and len(data)]
    if len(parts) == 1:
        return parts[0]
    return parts[0].with_name_prefix("take").merge(parts[1].with_name_prefix("rehearsal"))


def finetune_note(settings: TeachSettings) -> str:
    """What the fine-tune trained, for the command's output."""
    part = "the whole network" if settings.finetune_part == "all" else "the tails and heads"
    distill = f", keeping the old classes' logits (weight {settings.finetune_distill:g})"
    balance = f", class balance {settings.finetune_balance:g}"
    return (
        f"fine-tuned {part} for {settings.finetune_epochs} epoch(s)"
        + (distill if settings.finetune_distill > 0 else "")
        + (balance if settings.finetune_balance != 1.0 else "")
    )


def finetune(
    checkpoint: Checkpoint,
    data: SkeletonDataset,
    settings: TeachSettings,
    old_rows: Sequence[int] = (),
    show_progress: bool = False,
) -> Checkpoint:
    """``checkpoint`` trained further on ``data`` (labelled by its classes); see the module docstring.

    ``old_rows`` are the classes whose logits ``settings.finetune_distill`` keeps.
    """
    torch.manual_seed(settings.seed)
    model = prepare_model(checkpoint)
    teacher = prepare_model(checkpoint) if settings.finetune_distill > 0 and old_rows else None
    old = torch.tensor(sorted(old_rows), dtype=torch.long)
    feeder = SkeletonFeeder(
        data, checkpoint.preprocess_config, train=True, augment=settings.augment, seed=settings.seed
    )
    sampler = ClassBalancedSampler(feeder.labels, settings.finetune_balance, seed=settings.seed)
    loader = DataLoader(feeder, settings.batch_size, sampler=sampler)
    loss_fn = build_loss(model)
    optim = {"lr": settings.finetune_lr, "min_lr": 0.0, "warmup_epochs": 0, "momentum": 0.9}
    freeze_outside(model, settings.finetune_part)
    optimizer = make_optimizer(model, {**optim, "nesterov": True, "weight_decay": 0.0})
    for epoch in range(settings.finetune_epochs):
        feeder.set_epoch(epoch)
        sampler.set_epoch(epoch)
        desc = f"fine-tune epoch {epoch + 1}/{settings.finetune_epochs}"
        batches = progress_bar(loader, show_progress, desc=desc, unit="batch")
        for step, (body, hand, mask, labels) in enumerate(batches):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(optim, settings.finetune_epochs, epoch + step / len(loader))
            outputs = model.forward_once(body, hand, mask)
            loss = loss_fn(outputs, labels)["total"]
            if teacher is not None:
                with torch.no_grad():
                    kept = teacher.forward_once(body, hand, mask)
                loss = loss + settings.finetune_distill * distillation(outputs, kept, old, model.branches)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return make_checkpoint(
        model.eval(), checkpoint.class_names, checkpoint.preprocess_config, checkpoint.hand_intensive,
        checkpoint.epoch, checkpoint.metrics,
    )  # fmt: skip


def freeze_outside(model: BHaRNetModel, part: str) -> None:
    """Keep all but the fine-tuned ``part`` of ``model`` as it is: nothing for ``all``; for
    ``tails`` BHaRNet-E's trunks, the low-level features every branch builds on."""
    check_finetune_part(model, part)
    if part == "all":
        return
    for stream in ("body", "hand"):
        getattr(model, f"{stream}_trunk").requires_grad_(False)


def check_finetune(model: BHaRNetModel, settings: TeachSettings) -> None:
    """ValueError, before any work, for a fine-tune the settings ask for and cannot run."""
    if not settings.finetune_epochs:
        return
    check_finetune_part(model, settings.finetune_part)
    if not 0.0 <= settings.finetune_balance <= 1.0:  # also refuses nan
        raise ValueError(f"the fine-tune's class balance must be in [0, 1], not {settings.finetune_balance}")


def check_finetune_part(model: BHaRNetModel, part: str) -> None:
    """ValueError unless ``part`` names what a fine-tune of ``model`` can train."""
    if part != "all" and (part != "tails" or not isinstance(model, ExpertizedModel)):
        raise ValueError(
            f"the fine-tuned part must be 'all', or 'tails' of a BHaRNet-E base (this one is "
            f"{model.config.variant}), not {part!r}"
        )


def distillation(
    outputs: dict[str, torch.Tensor],
    kept: dict[str, torch.Tensor],
    old: torch.Tensor,
    branches: Sequence[str],
    temperature: float = DISTILL_TEMPERATURE,
) -> torch.Tensor:
    """Mean over ``branches`` of the KL divergence of the softened distribution over the ``old``
    classes, from ``kept`` (the model before the fine-tune) to ``outputs``; scaled by T² so its
    gradient stays the size of the cross-entropy's."""
    terms = [
        F.kl_div(
            F.log_softmax(outputs[name][:, old] / temperature, dim=1),
            F.log_softmax(kept[name][:, old] / temperature, dim=1),
            log_target=True, reduction="batchmean",
        )
        for name in branches
    ]  # fmt: skip
    return torch.stack(terms).mean() * temperature**2


def window_features(
    model: BHaRNetModel,
    base: Checkpoint,
    data: SkeletonDataset,
    classes: Sequence[str],
    settings: TeachSettings,
    views: int,
    progress: str | None = None,
) -> Features:
    """Features of ``views`` augmented training windows per sample, with the base preprocessing."""
    return extract_features(
        model, data, classes, base.preprocess_config, views, settings.augment, settings.seed,
        settings.batch_size, progress=progress,
    )  # fmt: skip


def rehearsal_features(
    model: BHaRNetModel,
    base: Checkpoint,
    data: SkeletonDataset,
    classes: Sequence[str],
    settings: TeachSettings,
    progress: str | None = None,
) -> tuple[Features, Features]:
    """The rehearsal windows and every window drawn: of ``rehearsal_candidates`` augmented windows
    per sample, the ``rehearsal_views`` on which the base model is least sure of the sample's class.

    The base model was trained on these samples, so it sees them more sharply than anyone else's
    gestures; new rows placed against its sharpest views take the old gestures of people it never
    saw. Its least sure views are the nearest to how those people look to it (docs/teaching.md,
    section 4, "Hard rehearsal").
    """
    drawn = max(settings.rehearsal_candidates, settings.rehearsal_views)
    features = window_features(model, base, data, classes, settings, drawn, progress)
    return features.select(least_sure(model, base, classes, features, settings.rehearsal_views)), features


def least_sure(
    model: BHaRNetModel, base: Checkpoint, classes: Sequence[str], features: Features, count: int
) -> np.ndarray:
    """Indices of the ``count`` windows of each sample with the lowest base-model probability
    (expert-only) of its label; every label must be a base class."""
    to_base = torch.tensor([base.class_names.index(c) if c in base.class_names else -1 for c in classes])
    with torch.no_grad():
        scores = expert_logits(model, base_heads(model).logits(features), features.hand_mask)
        sure = scores.softmax(dim=1)[torch.arange(len(features)), to_base[features.labels]].numpy()
    order = np.lexsort((sure, features.samples))  # by sample, least sure first
    rank = np.empty(len(order), dtype=np.int64)
    starts = np.searchsorted(features.samples[order], features.samples[order])
    rank[order] = np.arange(len(order)) - starts
    return np.flatnonzero(rank < count)


def hand_intensive_of(base: Checkpoint, takes: SkeletonDataset, classes: Sequence[str]) -> list[str] | None:
    """Hand-intensive class names of the taught model: the base's and the takes' (None if neither says)."""
    flagged = set(base.hand_intensive or [])
    if takes.hand_intensive is not None:
        flagged |= {n for n, flag in zip(takes.class_names, takes.hand_intensive, strict=True) if flag}
    if base.hand_intensive is None and takes.hand_intensive is None:
        return None
    return [c for c in classes if c in flagged]


def taught_checkpoint(
    base: Checkpoint, classes: Sequence[str], heads: Heads, hand_intensive: list[str] | None
) -> Checkpoint:
    """The base checkpoint with ``classes`` and the heads' rows in place of its classifier."""
    mirror = mirror_classes(base, classes) if base.model_config.get("test_mirror") else []
    config = dict(base.model_config, num_classes=len(classes), test_mirror=mirror)
    model = build_model(config)
    state = dict(base.state_dict)
    for branch, (prefix, _) in classifier_heads(model).items():
        state[f"{prefix}.fc.weight"] = heads.weight[branch].clone()
        state[f"{prefix}.fc.bias"] = heads.bias[branch].clone()
    model.load_state_dict(state)
    metrics = {"taught_classes": float(len([c for c in classes if c not in base.class_names]))}
    return make_checkpoint(model, list(classes), base.preprocess_config, hand_intensive, base.epoch, metrics)


def rehearsal_beside(checkpoint_path: str | Path) -> TrainingData:
    """The training data of the run that wrote a checkpoint (``config.yaml`` beside it; none without)."""
    return training_data_of(Path(checkpoint_path).parent / "config.yaml")


def taught_in(names: Sequence[str], taught: Sequence[str]) -> list[str]:
    """The names among ``names`` that are a taught gesture by their words (``clap`` for a taught
    ``Clap``): a base that merged them away learnt them as another class."""
    words = {name_words(name) for name in taught}
    return [name for name in names if name_words(name) in words]


def load_rehearsal(source: TrainingData, taught: Sequence[str] = ()) -> SkeletonDataset:
    """The rehearsal data: the files merged, relabelled as the base run did, without the people it
    never trained on (left out, or kept for validation: a curve measures those as unseen).

    Samples of a ``taught`` class (a new gesture the base run had merged into another class, as
    the default recipe merges ``clap`` into ``none``) are dropped first: relabelled, they would
    teach that the new gesture is the other class."""
    data = load_datasets(source.files)
    if clash := taught_in(data.class_names, taught):
        data = data.subset(np.flatnonzero(~np.isin(data.labels, [data.class_names.index(n) for n in clash])))
    merges = {k: v for k, v in source.relabel.items() if k in data.class_names}
    data = vocabulary(data, {"relabel": merges, "classes": []})
    if source.unseen:
        data = data.subset(np.flatnonzero(~np.isin(data.subject_names(), source.unseen)))
    return data


def calibration_from(
    path: str | Path, model: BHaRNetModel, class_names: Sequence[str] | None = None
) -> dict[str, float]:
    """Temperature, none threshold and (where there is one) distance threshold from a
    ``calibration.json`` or an exported model's metadata, fitted on ``class_names`` where given.

    Both are checked as ``bharnet export`` checks a calibration.json (finite numbers in range);
    every problem is an ExportError naming the file and the entry.
    """
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        return calibration_for(path, model, class_names)
    check_calibratable(model, path)
    try:
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception as err:  # onnx raises its own decode errors
        raise ExportError(f"cannot read {path} ({error_line(err, 120)})") from None
    keys = ("temperature", "none_threshold")
    if "bharnet.variant" not in props:
        raise ExportError(f"{path} carries no bharnet metadata; give a model that `bharnet export` wrote")
    theirs, ours = stored_value(props["bharnet.variant"]), variant_name(model)
    if theirs != ours:  # the full model's temperature is not the expert-only export's
        raise ExportError(
            f"{path} is a {shorten(str(theirs), 40)} model and this export a {ours} one, whose "
            "probabilities differ; give the calibration of the same variant (--full for the full model)"
        )
    if not all(f"bharnet.{key}" in props for key in keys):
        raise ExportError(f"{path} carries no calibration (bharnet.temperature, bharnet.none_threshold)")
    labels = stored_value(props.get("bharnet.labels", "null"))
    if class_names is not None and isinstance(labels, list):
        check_fitted_classes(path, [str(label) for label in labels], class_names)
    return {
        key: calibration_value(stored_value(props[f"bharnet.{key}"]), key, f"{path}: its")
        for key in (*keys, "distance_threshold")
        if f"bharnet.{key}" in props
    }


def stored_value(text: str) -> Any:
    """A metadata value as stored (JSON text); the raw text where it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def export_model(checkpoint: Checkpoint, expert_only: bool = True) -> BHaRNetModel:
    """The model the export of ``checkpoint`` runs (eval mode, random features frozen).

    ``expert_only`` reduces BHaRNet-E to its expertized branches, as shipped; other variants have
    no lighter form and export whole (rather than failing after the fit).
    """
    model = prepare_model(checkpoint)
    if expert_only and isinstance(model, ExpertizedModel):
        return prepare_model(checkpoint, expert_only=True)
    return model


def check_calibration(base: Checkpoint, path: str | Path, expert_only: bool = True) -> dict[str, float]:
    """The calibration an export of a model taught from ``base`` will carry, read before teaching.

    A taught model has the base's variant, so the base says which entry (fused or expert-only) the
    export takes; a bad file is then refused before minutes of fitting, not after.
    """
    return calibration_from(path, export_model(base, expert_only), base.class_names)


def export_taught(
    checkpoint: Checkpoint,
    path: str | Path,
    expert_only: bool = True,
    calibration: str | Path | None = None,
    distance: FeatureDistance | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Export like ``bharnet export`` (metadata, calibration, ``distance`` as its output) and check
    parity; (metadata, diffs).

    ``expert_only`` applies to BHaRNet-E only (:func:`export_model`).
    """
    model = export_model(checkpoint, expert_only)
    model.feature_distance = distance
    entries = calibration_from(calibration, model) if calibration else None
    return export_checked(
        model, path, checkpoint.class_names, checkpoint.preprocess_config, checkpoint.hand_intensive,
        calibration=entries,
    )  # fmt: skip
