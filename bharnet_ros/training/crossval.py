"""Leave-one-subject-out cross-validation: a model is as good as its accuracy on people it never saw.

For each held-out person, :func:`cross_validate` trains the config with that person left out of
training and validation (``data.exclude_subjects``), then evaluates the fold's ``last.pt`` on
that person only. The held-out person never chooses a checkpoint or a recipe: the fold keeps its
last epoch, so the pooled result estimates accuracy on new people. Output::

    OUT/fold_<subject>/          a training run folder, plus test/ with its evaluation
    OUT/summary.json             pooled and per-fold top-1, per subject, per condition, per branch
    OUT/per_class.csv, groups.csv, predictions.csv, confusion.png   over all held-out samples
    OUT/calibration.json         temperature, ECE and the none threshold fitted on the held-out
                                 logits (``fused``, and ``expert_only`` for BHaRNet-E), for
                                 ``bharnet export --calibration``

A fold that finished training is not trained again, and one that a kill or Ctrl-C stopped between
epochs continues from its last epoch, so an interrupted run goes on where it stopped (``--loso``
with the same ``--out``). Every fold is scored with the config's
test-time mirroring (``model.test_mirror``), also a fold trained before that setting changed:
the weights do not depend on it, so a rerun with ``model.test_mirror=true`` re-scores a run.
``summary.json`` records the class map in use (``test_mirror``, empty when off), which ``bharnet
streams --cv`` exports the folds with.

``train_people`` (``--train-people K``) asks how accuracy grows with the number of people: each
fold then trains on only K of the other people of the training data, the K that follow the
held-out person in sorted order (cyclically), so every fold sees the same number of people and
a rerun draws the same ones.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bharnet_ros.core.calibration import calibrate
from bharnet_ros.core.labels import shown
from bharnet_ros.core.metrics import classification_report
from bharnet_ros.core.text_files import read_text_file
from bharnet_ros.core.yaml12 import load_yaml
from bharnet_ros.model.checkpoint import load_checkpoint
from bharnet_ros.training.data import (
    load_datasets,
    name_list,
    resolve_path,
    subject_mask,
    training_data_of,
    vocabulary,
)
from bharnet_ros.training.dataset import DatasetError, SkeletonDataset
from bharnet_ros.training.evaluate import (
    Evaluation,
    branch_accuracies,
    evaluate,
    group_accuracies,
    open_model,
    plot_confusion,
    write_groups,
    write_outputs,
    write_per_class,
    write_predictions,
)
from bharnet_ros.training.feature_distance import fit_distance
from bharnet_ros.training.train import (
    DEFAULTS,
    FREE_FORM,
    ConfigError,
    absolute_paths,
    expert_file,
    mirror_map,
    test_mirror_classes,
    train,
)


def fold_subjects(data: SkeletonDataset, wanted: Sequence[str] | None) -> list[str]:
    """The held-out people: ``wanted`` (checked against the data) or every known subject."""
    known = sorted(set(data.subject_names().tolist()) - {""})
    if not wanted:
        if len(known) < 2:
            raise DatasetError("cross-validation needs samples of two or more known subjects")
        wanted = known
    subject_mask(data, wanted)  # raises for unknown names
    check_fold_folders(wanted)
    return list(wanted)


def check_fold_folders(subjects: Sequence[str]) -> None:
    """DatasetError where two people would share a fold folder (``S 1`` and ``S_1`` both give
    ``fold_S_1``): the second fold would find the first's and stop, whatever ``--out``."""
    folders: dict[str, str] = {}
    for subject in subjects:
        other = folders.setdefault(_safe(subject), subject)
        if other != subject:
            raise DatasetError(
                f"the people {shown(other)} and {shown(subject)} would share the fold folder "
                f"fold_{_safe(subject)}; rename one of them (bharnet import ... --subject NAME)"
            )


def cross_validate(
    config: dict[str, Any],
    out: str | Path,
    subjects: Sequence[str] | None = None,
    progress: bool = False,
    views: int = 1,
    train_people: int | None = None,
) -> dict[str, Any]:
    """Train and test one fold per held-out subject; returns the pooled summary (also on disk).

    ``views``: windows per test clip whose logits are averaged (see ``evaluate``).
    ``train_people``: train each fold on only this many of the other people (module doc).
    """
    out = Path(out)
    data = load_datasets(config["data"]["train"])
    held_out = fold_subjects(data, subjects)
    # people who never train: left out, or validating (--train-people picks among the others)
    excluded = {*config["data"]["exclude_subjects"], *(config["data"].get("val_subjects") or [])}
    people = [p for p in fold_subjects(data, None) if p not in excluded] if train_people is not None else []
    check_fold_classes(config, data, held_out, people, train_people)
    unknown = int((data.subject_names() == "").sum())
    if unknown:
        print(f"{unknown} samples name no subject: they train in every fold and are never tested", flush=True)
    results = []
    for subject in held_out:
        left_out = [subject, *unused_people(people, subject, train_people)]
        print(f"fold {subject}: training without {', '.join(left_out)}", flush=True)
        folder = fold_folder(out, subject)
        results.append(run_fold(config, data, left_out, folder, progress, views))
    mirror = test_mirror_classes(config, results[0][1].class_names)
    return write_pooled(out, held_out, results, views, train_people, mirror)


def check_fold_classes(
    config: Mapping[str, Any],
    data: SkeletonDataset,
    held_out: Sequence[str],
    people: Sequence[str],
    train_people: int | None,
) -> None:
    """Refuse, before any fold trains, a fold that would have no training sample of a class.

    Such a fold could never predict that class, its held-out person would be tested on a class the
    model does not know, and the folds' class lists would differ, so they could not be pooled.
    """
    data = vocabulary(data, config["data"])
    names = data.subject_names()
    always_out = {*config["data"]["exclude_subjects"], *config["data"]["val_subjects"]}
    every_class = set(data.labels.tolist())
    for subject in held_out:
        if not (names == subject).any():  # its fold would train for nothing, then fail to score
            raise DatasetError(
                f"{subject} has no sample in the classes trained on (data.classes, data.relabel), so "
                "their fold would test nothing; leave them out of --loso or keep their classes"
            )
        left_out = sorted({*always_out, subject, *unused_people(people, subject, train_people)})
        trained = set(data.labels[~np.isin(names, left_out)].tolist())
        missing = sorted(data.class_names[label] for label in every_class - trained)
        if missing:
            raise DatasetError(
                f"the fold of {subject} would have no training sample of {name_list(missing)}: only "
                f"people it leaves out ({name_list(left_out)}) perform them; leave these classes out "
                "(data.classes) or add people who perform them"
            )


def unused_people(people: Sequence[str], subject: str, train_people: int | None) -> list[str]:
    """The people a fold also leaves out to train on ``train_people`` of the others (none if None)."""
    if train_people is None:
        return []
    others = sorted(p for p in people if p != subject)
    if not 1 <= train_people <= len(others):
        raise DatasetError(
            f"--train-people must be between 1 and {len(others)} (the people left to train on), "
            f"got {train_people}"
        )
    after = [p for p in others if p > subject] + [p for p in others if p < subject]
    return after[train_people:]


def run_fold(
    config: dict[str, Any],
    data: SkeletonDataset,
    left_out: Sequence[str],
    folder: Path,
    progress: bool,
    views: int = 1,
) -> tuple[SkeletonDataset, Evaluation]:
    """Train without ``left_out`` (unless already done), evaluate ``last.pt`` on its first person,
    in the training's vocabulary (``data.classes`` and ``data.relabel``)."""
    subject = left_out[0]
    person = data.subset(np.flatnonzero(subject_mask(data, [subject])))
    test = vocabulary(person, config["data"], strict=False)
    excluded = [*config["data"]["exclude_subjects"], *left_out]
    check_fold_people(folder, excluded)
    fold = copy.deepcopy(config)
    fold["data"]["exclude_subjects"] = excluded
    fold["data"]["val_subjects"] = [s for s in fold["data"]["val_subjects"] if s != subject]
    fold["model"]["init"] = fold_experts(fold["model"]["init"], subject)
    check_fold_config(folder, fold)
    finish_training(fold, folder, subject)
    model = open_model(folder / "last.pt", lambda ckpt: test_mirror_classes(config, ckpt.class_names))
    trained = data.subset(np.flatnonzero(~subject_mask(data, [*excluded, *fold["data"]["val_subjects"]])))
    model.runner.feature_distance = fit_distance(
        model.runner, vocabulary(trained, config["data"]), model.labels, model.preprocess,
        twins=mirror_map(config, model.labels).tolist(),
    )  # fmt: skip
    result = evaluate(model, test, progress=progress, views=views)
    write_outputs(folder / "test", result, model, test, f"subject {subject}", None)
    return test, result


def finish_training(fold: dict[str, Any], folder: Path, subject: str) -> None:
    """Train the fold, or continue one that stopped before its last epoch (``--resume``): an
    unfinished ``last.pt`` would be scored as the config's result."""
    last = folder / "last.pt"
    if not last.is_file():
        train(fold, out=folder)
        return
    done = load_checkpoint(last).epoch
    if done < fold["epochs"]:
        print(f"fold {subject}: {last} keeps epoch {done} of {fold['epochs']}; continuing it", flush=True)
        train(fold, resume=folder, overrides=how_it_runs(fold))


def how_it_runs(fold: Mapping[str, Any]) -> list[str]:
    """This run's settings of how a fold is run (not what it learns), as overrides for continuing
    it: a fold stopped on a GPU machine continues on the CPU of this one, with its workers."""
    return [f"{key}={json.dumps(fold[key])}" for key in ("device", "workers", "progress", "eval_batch_size")]


def check_fold_people(folder: Path, excluded: Sequence[str]) -> None:
    """Refuse to reuse a fold that left out other people (say, another ``--train-people``); a fold
    that saved no epoch is no fold yet (its folder is trained anew)."""
    config = folder / "config.yaml"
    if not config.is_file() or not (folder / "last.pt").is_file():
        return
    recorded = set(training_data_of(config).left_out)
    if recorded != set(excluded):
        raise ConfigError(
            f"{folder} was trained without {', '.join(sorted(recorded)) or 'nobody'}, but this run "
            f"leaves out {', '.join(sorted(excluded))}; give another --out"
        )


# What a fold's reuse does not depend on: how it is run and scored, not what it learns. The people
# are checked by check_fold_people; the experts (model.init) are compared as the fold's own files.
REUSE_IGNORES = (
    "name", "progress", "workers", "eval_batch_size", "deterministic", "device", "model.test_mirror",
    "data.exclude_subjects",
)  # fmt: skip


def check_fold_config(folder: Path, fold: Mapping[str, Any]) -> None:
    """Refuse to reuse a trained fold whose config or data differ from this run's: its score would
    be reported as this config's result. Keys older runs lack count as their defaults."""
    stored = folder / "config.yaml"
    if not (folder / "last.pt").is_file() or not stored.is_file():
        return
    old = _flat(load_yaml(read_text_file(stored)) or {})
    new, defaults = _flat(absolute_paths(dict(fold))), _flat(DEFAULTS)
    changed = [
        key for key, value in new.items()
        if not key.startswith(REUSE_IGNORES) and old.get(key, defaults.get(key, value)) != value
    ]  # fmt: skip
    if changed:
        shown = ", ".join(f"{k} {old.get(k, defaults.get(k))!r} -> {new[k]!r}" for k in changed[:3])
        raise ConfigError(f"{folder} was trained with another config ({shown}); give another --out")
    inputs = [*new["data.train"], *(new.get(f"model.init.{stream}") for stream in ("body", "hand"))]
    newer = [f for f in inputs if f and _changed(Path(f)) > _mtime(folder / "last.pt")]
    if newer:
        raise ConfigError(f"{newer[0]} changed after {folder} was trained; give another --out")


def _flat(config: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 0.1}}`` as ``{"optim.lr": 0.1}`` (free-form sections stay whole)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{where}{key}"
        if isinstance(value, Mapping) and path not in FREE_FORM:
            out.update(_flat(value, path + "."))
        else:
            out[path] = value
    return out


def _mtime(path: str | Path) -> float:
    return Path(path).stat().st_mtime


def _changed(path: Path) -> float:
    """When an input last changed: a file's time; a run folder's last.pt; a synth dataset
    folder's newest file (a folder was skipped, so regenerated synthetic data passed)."""
    if path.is_dir():
        if (path / "last.pt").is_file():
            return _mtime(path / "last.pt")
        return max((_mtime(f) for f in path.iterdir() if f.is_file()), default=0.0)
    return _mtime(path) if path.is_file() else 0.0


def fold_experts(init: Mapping[str, Any] | None, subject: str) -> dict[str, str | None]:
    """The expert checkpoints (``model.init``) of the fold that holds out ``subject``.

    A ``--loso`` folder of experts gives its fold of the same person, so every fold starts from
    experts that never saw the person it is tested on. An expert that did see them is refused:
    its weights would carry that person into the fold and inflate the held-out score.
    """
    chosen: dict[str, str | None] = {}
    for stream, path in (init or {}).items():
        if not path:
            chosen[stream] = None
            continue
        folder = fold_folder(resolve_path(path), subject)
        if not folder.is_dir() and any(resolve_path(path).glob("fold_*/")):
            raise ConfigError(
                f"model.init.{stream}: the --loso folder {path} has no fold for {subject} ({folder.name}); "
                f"train the experts with --loso {subject} there first"
            )
        checkpoint = expert_file(folder if folder.is_dir() else path)
        if not left_out_of(checkpoint, subject):
            raise ConfigError(
                f"model.init.{stream}: {checkpoint} was trained on {subject}, the person this fold holds "
                f"out; give the experts' --loso folder (bharnet train ... --loso {subject} --out DIR) instead"
            )
        chosen[stream] = str(checkpoint)
    return chosen


def left_out_of(checkpoint: Path, subject: str) -> bool:
    """Whether the run that wrote ``checkpoint`` never trained on ``subject`` (its ``config.yaml``),
    nor validated on them (a ``best.pt`` chosen on the held-out person carries them in too)."""
    config = checkpoint.parent / "config.yaml"
    if not config.is_file():
        raise ConfigError(
            f"cannot tell which people {checkpoint} was trained on: no config.yaml beside it; "
            "give a checkpoint in the run folder bharnet train wrote"
        )
    trained = training_data_of(config)
    if subject in trained.left_out:
        return True
    missing = [*trained.missing, *(f for f in trained.validation if not f.exists())]
    if missing or not trained.files:
        shown = f"its data file {missing[0]} is not here" if missing else "its data is not here"
        raise ConfigError(f"cannot tell whether {checkpoint} was trained on {subject}: {shown}")
    return subject not in load_datasets([*trained.files, *trained.validation]).subject_names()


def pooled(results: Sequence[tuple[SkeletonDataset, Evaluation]]) -> tuple[SkeletonDataset, Evaluation]:
    """All folds' held-out samples and predictions as one evaluation."""
    data = results[0][0]
    for part, _ in results[1:]:
        data = data.merge(part)
    return data, pooled_evaluation([result for _, result in results])


def pooled_evaluation(results: Sequence[Evaluation]) -> Evaluation:
    """All folds' predictions as one evaluation (without their samples)."""
    first = results[0]
    scores = {name: np.concatenate([r.scores[name] for r in results]) for name in first.scores}
    labels = np.concatenate([r.labels for r in results])
    subset = None
    if first.hand_intensive is not None:
        subset = [first.class_names.index(n) for n in first.hand_intensive if n in first.class_names]
    report = classification_report(scores["fused"], labels, subset)
    predictions = np.argmax(scores["fused"], axis=1)
    measured = all(r.distances is not None for r in results)
    distances = np.concatenate([r.distances for r in results]) if measured else None
    return Evaluation(
        report,
        branch_accuracies(scores, labels, summed="expert_only" in first.branches),  # not Noisy-OR's
        labels,
        predictions,
        scores,
        first.class_names,
        first.hand_intensive,
        distances=distances,
    )


POOLED_FILES = ("summary.json", "calibration.json", "groups.csv", "per_class.csv", "predictions.csv")
LOSO_KIND = "leave-one-subject-out"  # summary.json's kind


def loso_outputs(out: Path) -> list[str]:
    """The names in ``out`` that an earlier cross-validation wrote: its folds (folders ``fold_*``
    holding a run's config.yaml) and, where its summary.json says it is one, the pooled files. An
    `eval` report has the same file names, and --loso overwrote it without --force."""
    folds = [p.name for p in out.glob("fold_*") if p.is_dir() and _fold_or_empty(p)]
    return [*folds, *POOLED_FILES, "confusion.png"] if _pooled_here(out) else folds


def _fold_or_empty(folder: Path) -> bool:
    return (folder / "config.yaml").is_file() or not any(folder.iterdir())


def _pooled_here(out: Path) -> bool:
    try:
        summary = json.loads(read_text_file(out / "summary.json"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("kind") == LOSO_KIND


def write_pooled(
    out: Path,
    subjects: Sequence[str],
    results: Sequence[tuple[SkeletonDataset, Evaluation]],
    views: int = 1,
    train_people: int | None = None,
    test_mirror: Sequence[int] = (),
) -> dict[str, Any]:
    """summary.json and the pooled tables and plot in ``out``."""
    data, result = pooled(results)
    folds = {s: float(r.report.top1) for s, (_, r) in zip(subjects, results, strict=True)}
    fold_branches = {s: r.branches for s, (_, r) in zip(subjects, results, strict=True)}
    values = {
        "kind": LOSO_KIND,
        "subjects": list(subjects),
        "views": views,
        "train_people": train_people,
        "test_mirror": list(test_mirror),
        "num_samples": int(len(result.labels)),
        "top1": float(result.report.top1),
        "mean_fold_top1": float(np.mean(list(folds.values()))),
        "min_fold_top1": float(np.min(list(folds.values()))),
        "mean_class": float(result.report.mean_class),
        "folds_top1": folds,
        "branches_top1": result.branches,
        "folds_branches_top1": fold_branches,
        "groups": group_accuracies(data, result),
    }
    values["calibration"] = held_out_calibrations(result, views)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(values, indent=2) + "\n")
    (out / "calibration.json").write_text(json.dumps(values["calibration"], indent=2) + "\n")
    write_fold_calibrations(out, subjects, results, views)
    write_groups(out / "groups.csv", values["groups"])
    write_per_class(out / "per_class.csv", result)
    write_predictions(out / "predictions.csv", data, result)
    plot_confusion(out / "confusion.png", result.report.confusion, result.class_names)
    return values


def write_fold_calibrations(
    out: Path, subjects: Sequence[str], results: Sequence[tuple[SkeletonDataset, Evaluation]], views: int = 1
) -> None:
    """``fold_<subject>/calibration.json`` from the held-out logits of every other fold: what a
    fold model is scored with on its own person (``bharnet streams --cv``) must not have been fitted
    on that person's clips. Not written where there is no other fold."""
    for index, subject in enumerate(subjects):
        others = [result for k, (_, result) in enumerate(results) if k != index]
        if others:
            calibration = held_out_calibrations(pooled_evaluation(others), views)
            path = fold_folder(out, subject) / "calibration.json"
            path.write_text(json.dumps(calibration, indent=2) + "\n")


def held_out_calibrations(result: Evaluation, views: int = 1) -> dict[str, dict[str, Any]]:
    """Calibration of the fused logits and, for BHaRNet-E, of its expert-only sum, with the number
    of windows per clip they averaged (the node decides on one: an export refuses more)."""
    logits = {"fused": result.scores["fused"]}
    if "expert_only" in result.branches:
        logits["expert_only"] = result.scores["body_expert"] + result.scores["hand_expert"]
    elif set(result.scores) == {"fused", "body_expert", "hand_expert"}:  # trained as the expert-only
        logits["expert_only"] = result.scores["fused"]  # model: an export of it asks for this entry
    return {  # the classes with them: an export checks it is given the calibration of its classes
        name: {
            **_fitted(values, result),
            "class_names": list(result.class_names),
            "views": views,
        }
        for name, values in logits.items()
    }


def _fitted(logits: np.ndarray, result: Evaluation) -> dict[str, Any]:
    """The calibration's values, or why none fits (``unfit``, which an export refuses in words)."""
    try:
        return calibrate(logits, result.labels, distances=result.distances).to_dict()
    except ValueError as err:
        return {"unfit": str(err)}


def fold_folder(run: Path, subject: str) -> Path:
    """The folder of the fold of ``run`` that holds ``subject`` out (a name safe on every file system)."""
    return run / f"fold_{_safe(subject)}"


def _safe(subject: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in subject)
