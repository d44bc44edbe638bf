"""Evaluate a checkpoint or an exported ONNX model on a dataset split.

Both kinds of model go through the same feeder (evaluation mode: centre crop 0.95, no
augmentation) with the preprocessing stored in the model file, so their numbers are comparable
and must agree (``test/training/test_train.py`` checks it). Outputs in the chosen folder:

* ``summary.json``: sample count, top-1, top-5, mean-class accuracy, hand-intensive subset
  accuracy (when the dataset or the model marks hand-intensive classes) and the top-1 of every
  branch (e.g. body vs hand expert of BHaRNet-E);
* ``per_class.csv``: per class its flag, sample count, correct count, accuracy and the class it
  is most often mistaken for;
* ``groups.csv``: top-1 per subject and per value of every sample attribute that varies
  (e.g. ``distance``), so results can be read per held-out person and per condition;
* ``predictions.csv``: per sample its name, true and predicted class;
* ``confusion.png``: the row-normalised confusion matrix.

Dataset classes are matched to the model's labels by name, so a dataset with another class
order (or a subset of the classes) evaluates correctly; classes the model does not know are an
error.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from bharnet_ros.core.inference import DISTANCE
from bharnet_ros.core.metrics import ClassificationReport, classification_report, top_k_accuracy
from bharnet_ros.core.plots import plain_text_figure
from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.model.attention import freeze_projections
from bharnet_ros.model.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from bharnet_ros.training.data import hand_intensive_names, labels_for
from bharnet_ros.training.dataset import SkeletonDataset
from bharnet_ros.training.feeder import SkeletonFeeder
from bharnet_ros.training.train import progress_bar


@dataclass
class ModelUnderTest:
    """A model file opened for evaluation: its labels, preprocessing and a batch scorer."""

    path: Path
    kind: str  # checkpoint | onnx
    labels: list[str]
    preprocess: PreprocessConfig
    hand_intensive: list[str] | None
    runner: Any  # torch module (checkpoint) or OnnxClassifier

    @property
    def fusion(self) -> str:
        """How its branches combine: ``mean`` (summed logits) or ``noisy_or``."""
        return self.runner.fusion

    def scores(self, body: torch.Tensor, hand: torch.Tensor, mask: torch.Tensor) -> dict[str, np.ndarray]:
        """Per-branch scores ``(N, K)`` of a batch; ``fused`` is the prediction (logits); and the
        feature ``distance`` ``(N,)`` where the model has one."""
        if self.kind == "checkpoint":
            with torch.no_grad():
                outputs = self.runner(body, hand, mask)
            kept = {name: v for name, v in outputs.items() if v.ndim == 2 or name == DISTANCE}
            return {name: value.numpy() for name, value in kept.items()}
        rows = [
            self.runner.logits(b.numpy(), h.numpy(), m.numpy())
            for b, h, m in zip(body, hand, mask, strict=True)
        ]
        out = {"fused": np.concatenate([row["logits"] for row in rows])}
        for name in self.runner.branches:  # logits, as the checkpoint gives them
            out[name] = np.concatenate([row[f"{name}_logits"] for row in rows])
        if DISTANCE in self.runner.output_names:
            out[DISTANCE] = np.concatenate([row[DISTANCE] for row in rows])
        return out


def open_model(
    path: str | Path, test_mirror: Callable[[Checkpoint], Sequence[int]] | None = None
) -> ModelUnderTest:
    """A ``.onnx`` file (ONNX Runtime, CPU) or a checkpoint (PyTorch, CPU, frozen projections).

    ``test_mirror`` gives a checkpoint the test-time mirroring to score with (its class map, empty
    for none) in place of the one it was trained with; ONNX files keep what they were exported with.
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        from bharnet_ros.core.inference import InferenceError, OnnxClassifier
        from bharnet_ros.model.config import MOST_CLASSES

        classifier = OnnxClassifier(path, providers="cpu")
        if len(classifier.labels) > MOST_CLASSES:  # a checkpoint's model config is bounded the same way
            raise InferenceError(
                f"{path} has {len(classifier.labels)} classes; an evaluation (a confusion matrix of "
                f"classes x classes) takes at most {MOST_CLASSES}"
            )
        flags = classifier.metadata.get("hand_intensive")
        return ModelUnderTest(path, "onnx", classifier.labels, classifier.preprocess, flags, classifier)
    checkpoint = load_checkpoint(path)
    if test_mirror is not None:
        checkpoint = checkpoint.with_test_mirror(test_mirror(checkpoint))
    model = checkpoint.build_model()
    freeze_projections(model)
    return ModelUnderTest(
        path, "checkpoint", checkpoint.class_names, checkpoint.preprocess_config,
        checkpoint.hand_intensive, model.eval(),
    )  # fmt: skip


def collect_scores(
    model: ModelUnderTest, feeder: SkeletonFeeder, batch_size: int, progress: bool
) -> dict[str, np.ndarray]:
    """Scores of every sample of ``feeder``, in dataset order."""
    loader = DataLoader(feeder, batch_size=batch_size, shuffle=False)
    parts: dict[str, list[np.ndarray]] = {}
    for body, hand, mask, _ in progress_bar(loader, progress, desc="eval", unit="batch"):
        for name, value in model.scores(body, hand, mask).items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}


def subset_classes(data: SkeletonDataset, model: ModelUnderTest) -> list[str] | None:
    """Hand-intensive class names: the dataset's flags, else those stored with the model."""
    names = hand_intensive_names(data)
    return names if names is not None else model.hand_intensive


@dataclass(frozen=True)
class Evaluation:
    """Result of :func:`evaluate`: the report, branch accuracies and what was compared."""

    report: ClassificationReport
    branches: dict[str, float]
    labels: np.ndarray
    predictions: np.ndarray
    scores: dict[str, np.ndarray]
    class_names: list[str]
    hand_intensive: list[str] | None
    members: tuple[str, ...] = ()  # the models averaged with the first one (an ensemble)
    distances: np.ndarray | None = None  # (N,) feature distances, where the model measures them


def evaluate(
    model: ModelUnderTest,
    data: SkeletonDataset,
    batch_size: int = 32,
    progress: bool = False,
    views: int = 1,
    causal_hands: bool = False,
    members: Sequence[ModelUnderTest] = (),
) -> Evaluation:
    """Run ``model`` over every sample of ``data`` and compute the metrics.

    ``views`` > 1 (time-window models): each clip is scored by that many windows spread over it,
    whose logits are averaged, as the live recognizer looks at a gesture through many windows.
    ``causal_hands`` fills each window's hand gaps only from frames up to its end, as the live node
    can (training fills them from the whole clip). ``members``: more models whose logits are
    averaged with ``model``'s, branch by branch (an ensemble, as the paper averages its joint and
    bone models at inference); each keeps its own preprocessing, and all share ``model``'s classes.
    """
    check_ensemble(model, members)
    labels = labels_for(data, model.labels, "model's")
    everyone = (model, *members)
    scores = mean_scores(
        model_scores(m, data, labels, batch_size, progress, views, causal_hands) for m in everyone
    )
    distances = scores.pop(DISTANCE, None)
    flagged = subset_classes(data, model)
    subset = None if flagged is None else [model.labels.index(n) for n in flagged if n in model.labels]
    report = classification_report(scores["fused"], labels, subset)
    predictions = np.argmax(scores["fused"], axis=1)
    members_used = tuple(str(member.path) for member in members)
    summed = all(m.fusion == "mean" for m in everyone)
    return Evaluation(
        report, branch_accuracies(scores, labels, summed), labels, predictions, scores, list(model.labels),
        flagged, members_used, distances,
    )  # fmt: skip


def check_ensemble(model: ModelUnderTest, members: Sequence[ModelUnderTest]) -> None:
    """An ensemble averages logits class by class, so every model must list the same classes."""
    for member in members:
        if list(member.labels) != list(model.labels):
            raise ValueError(
                f"{member.path} has other classes than {model.path} ({len(member.labels)} against "
                f"{len(model.labels)}, or another order); an ensemble needs models of the same classes"
            )


def model_scores(
    model: ModelUnderTest,
    data: SkeletonDataset,
    labels: np.ndarray,
    batch_size: int,
    progress: bool,
    views: int,
    causal_hands: bool,
) -> dict[str, np.ndarray]:
    """One model's per-branch logits of every sample, with its own preprocessing; finite or refused."""
    feeder = SkeletonFeeder(data, model.preprocess, train=False, labels=labels, causal_fill=causal_hands)
    if views <= 1 or model.preprocess.window_seconds <= 0:
        scores = collect_scores(model, feeder, batch_size, progress)
    else:
        scores = averaged_views(model, feeder, batch_size, progress, views)
    check_scores(model, data, scores["fused"])
    return scores


def check_scores(model: ModelUnderTest, data: SkeletonDataset, fused: np.ndarray) -> None:
    """Refuse NaN or infinite scores: argmax would read them as class 0 and report an accuracy."""
    broken = np.flatnonzero(~np.isfinite(fused).all(axis=1))
    if len(broken):
        raise CheckpointError(
            f"{model.path} scores {len(broken)} of {len(fused)} samples (first: {data.names[broken[0]]}) "
            "as NaN or infinite: its weights are broken (a training that diverged?); use another model"
        )


def averaged_views(
    model: ModelUnderTest, feeder: SkeletonFeeder, batch_size: int, progress: bool, views: int
) -> dict[str, np.ndarray]:
    """Per-branch logits averaged over ``views`` windows evenly spread over each clip."""

    def each_view() -> Iterator[dict[str, np.ndarray]]:
        for view in range(views):
            feeder.view = (view + 0.5) / views
            yield collect_scores(model, feeder, batch_size, progress)

    return mean_scores(each_view())


def mean_scores(parts: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Branch-by-branch mean of several score sets (views of a clip, models of an ensemble); only
    the branches every set has."""
    total: dict[str, np.ndarray] = {}
    count = 0
    for part in parts:
        total = (
            dict(part) if not count else {name: total[name] + part[name] for name in total if name in part}
        )
        count += 1
    return {name: value / count for name, value in total.items()}


def branch_accuracies(
    scores: dict[str, np.ndarray], labels: np.ndarray, summed: bool = True
) -> dict[str, float]:
    """Top-1 of every branch; for BHaRNet-E also ``expert_only`` (what its light export scores).

    ``summed``: the model fuses by summing logits. Noisy-OR weighs the hand expert by hand presence,
    which the branch logits do not hold, so its expert-only score is measured on its own export.
    """
    branches = {name: top_k_accuracy(value, labels, 1) for name, value in scores.items() if name != "fused"}
    if summed and {"body_interactive", "body_expert", "hand_expert"} <= set(scores):
        branches["expert_only"] = top_k_accuracy(scores["body_expert"] + scores["hand_expert"], labels, 1)
    return branches


GROUPED_ATTRIBUTES_SKIPPED = ("take",)  # per-take accuracy says nothing


def group_accuracies(data: SkeletonDataset, result: Evaluation) -> dict[str, dict[str, dict[str, float]]]:
    """Top-1 per subject and per value of each attribute with two or more values.

    ``{"subject": {"S1": {"samples": 45, "top1": 0.91}, ...}, "distance": {...}}``.
    """
    correct = result.predictions == result.labels
    columns = {"subject": data.subject_names()}
    for name in data.attributes:
        if name not in ("subject", *GROUPED_ATTRIBUTES_SKIPPED):
            columns[name] = data.attribute(name)
    groups: dict[str, dict[str, dict[str, float]]] = {}
    for name, values in columns.items():
        distinct = sorted(set(values.tolist()))
        if len(distinct) < 2:
            continue
        groups[name] = {
            value: {"samples": int((values == value).sum()), "top1": float(correct[values == value].mean())}
            for value in distinct
        }
    return groups


def write_groups(path: Path, groups: dict[str, dict[str, dict[str, float]]]) -> None:
    """groups.csv: attribute, value, samples, top-1."""
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["attribute", "value", "samples", "top1"])
        for name, values in groups.items():
            for value, row in values.items():
                writer.writerow([name, value, row["samples"], f"{row['top1']:.4f}"])


def summary(result: Evaluation, model: ModelUnderTest, dataset: str, split: str | None) -> dict[str, Any]:
    """The JSON summary (accuracies as fractions; null where undefined)."""
    values = result.report.summary()
    return {
        "model": str(model.path),
        "model_kind": model.kind,
        "ensemble_with": list(result.members),
        "dataset": dataset,
        "split": split,
        "num_samples": values["num_samples"],
        "top1": values["top1"],
        "top5": values["top5"],
        "mean_class": values["mean_class"],
        "hand_intensive": values["subset"],
        "hand_intensive_samples": values["subset_count"],
        "hand_intensive_classes": result.hand_intensive,
        "branches_top1": result.branches,
    }


def write_per_class(path: Path, result: Evaluation) -> None:
    """One row per class: flag, count, correct, accuracy, most frequent wrong prediction."""
    report, names = result.report, result.class_names
    flagged = set(result.hand_intensive or [])
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["class", "hand_intensive", "count", "correct", "accuracy", "most_confused_with"])
        for k, name in enumerate(names):
            wrong = report.confusion[k].copy()
            wrong[k] = 0
            confused = names[int(wrong.argmax())] if wrong.any() else ""
            accuracy = "" if np.isnan(report.per_class[k]) else f"{report.per_class[k]:.4f}"
            writer.writerow(
                [
                    name,
                    int(name in flagged),
                    int(report.counts[k]),
                    int(report.confusion[k, k]),
                    accuracy,
                    confused,
                ]
            )


def write_predictions(path: Path, data: SkeletonDataset, result: Evaluation) -> None:
    """One row per sample: name, true class, predicted class, correct, and the feature distance
    where the model measures one."""
    distances = result.distances
    extra = [DISTANCE] if distances is not None else []
    names = result.class_names
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["name", "label", "prediction", "correct", *extra])
        rows = zip(data.names, result.labels, result.predictions, strict=True)
        for i, (name, label, predicted) in enumerate(rows):
            far = [f"{distances[i]:.4g}"] if distances is not None else []
            writer.writerow([name, names[label], names[predicted], int(label == predicted), *far])


@plain_text_figure
def plot_confusion(path: Path, confusion: np.ndarray, class_names: Sequence[str]) -> None:
    """Row-normalised confusion matrix as a PNG (class names on the axes up to 40 classes)."""
    import matplotlib.pyplot as plt

    counts = confusion.sum(axis=1, keepdims=True)
    normalised = confusion / np.maximum(counts, 1)
    size = min(4 + 0.25 * len(class_names), 24)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(normalised, vmin=0, vmax=1, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if len(class_names) <= 40:
        ticks = np.arange(len(class_names))
        ax.set_xticks(ticks, class_names, rotation=90, fontsize=7)
        ax.set_yticks(ticks, class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


OUTPUT_FILES = ("summary.json", "per_class.csv", "groups.csv", "predictions.csv", "confusion.png")


def write_outputs(
    out: Path,
    result: Evaluation,
    model: ModelUnderTest,
    data: SkeletonDataset,
    dataset: str,
    split: str | None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """All output files; returns the summary. ``settings`` (the options that chose and scored the
    samples: subjects, known_only, views, causal_hands) go into summary.json as they are."""
    out.mkdir(parents=True, exist_ok=True)
    values = {**summary(result, model, dataset, split), **(settings or {})}
    values["groups"] = group_accuracies(data, result)
    write_groups(out / "groups.csv", values["groups"])
    (out / "summary.json").write_text(json.dumps(values, indent=2) + "\n")
    write_per_class(out / "per_class.csv", result)
    write_predictions(out / "predictions.csv", data, result)
    plot_confusion(out / "confusion.png", result.report.confusion, result.class_names)
    return values
