"""Leave-one-subject-out: folds never train on their held-out person, results pool and resume."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from bharnet_ros.model.checkpoint import load_checkpoint
from bharnet_ros.training.crossval import cross_validate, fold_experts, unused_people
from bharnet_ros.training.data import load_datasets
from bharnet_ros.training.dataset import DatasetError, SkeletonDataset
from bharnet_ros.training.train import ConfigError, load_train_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory, person_file, tiny_run) -> tuple[Path, dict, list[Path]]:
    folder = tmp_path_factory.mktemp("cv")
    files = [person_file(folder, s, takes=1) for s in ("S1", "S2", "S3")]
    train_files = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    config = load_train_config(
        REPO / "config/train/synth_cpu.yaml",
        [*tiny_run, f"data.train={train_files}", "preprocess.window_seconds=1.0"],
    )
    values = cross_validate(config, folder / "out", ["S1", "S3"])
    return folder / "out", values, files


def test_each_fold_trains_without_its_person_and_tests_only_on_them(cv_run):
    out, values, files = cv_run
    assert values["subjects"] == ["S1", "S3"]
    for subject in ("S1", "S3"):
        fold = out / f"fold_{subject}"
        config = (fold / "config.yaml").read_text()
        assert f"- {subject}" in config.split("exclude_subjects:")[1].split("\n")[1]
        assert not (fold / "best.pt").exists()  # no validation: only last.pt is kept
        assert load_checkpoint(fold / "last.pt").epoch == 1
        tested = json.loads((fold / "test" / "summary.json").read_text())
        assert tested["num_samples"] == 4
        assert set(tested["groups"].get("subject", {subject: None})) == {subject}


def test_pooled_summary_covers_every_held_out_sample(cv_run):
    out, values, _ = cv_run
    saved = json.loads((out / "summary.json").read_text())
    assert saved["num_samples"] == 8
    assert set(saved["folds_top1"]) == {"S1", "S3"}
    assert 0.0 <= saved["top1"] <= 1.0
    assert set(saved["groups"]["subject"]) == {"S1", "S3"}
    assert "expert_only" in saved["branches_top1"]
    for name in ("per_class.csv", "groups.csv", "predictions.csv", "confusion.png", "calibration.json"):
        assert (out / name).is_file(), name
    calibration = json.loads((out / "calibration.json").read_text())
    assert set(calibration) == {"fused", "expert_only"}
    assert calibration["fused"]["temperature"] > 0
    assert calibration["fused"]["views"] == 1  # the node's one window: an export refuses averages
    # each fold measured its held-out windows' distance from its own training data
    assert calibration["expert_only"]["distance_threshold"] > 0
    header, *rows = (out / "predictions.csv").read_text().splitlines()
    assert header.endswith(",distance")
    assert all(float(row.rsplit(",", 1)[1]) >= 0 for row in rows)


def test_each_fold_gets_a_calibration_fitted_on_the_other_folds_only(cv_run):
    """`streams --cv` scored each person with the run's calibration, which their own clips helped fit."""
    out, _, _ = cv_run
    run_wide = json.loads((out / "calibration.json").read_text())
    for subject in ("S1", "S3"):
        own = json.loads((out / f"fold_{subject}" / "calibration.json").read_text())
        assert set(own) == set(run_wide) == {"fused", "expert_only"}
        assert own != run_wide  # the other fold's 4 clips, not all 8
    assert json.loads((out / "fold_S1" / "calibration.json").read_text()) != json.loads(
        (out / "fold_S3" / "calibration.json").read_text()
    )


def test_pooled_folds_of_a_noisy_or_model_report_no_summed_expert_only(cv_run):
    """Each Noisy-OR fold leaves expert_only out (its export weighs the hand by presence); the
    pooled summary added the plain sum of the experts back."""
    import numpy as np

    from bharnet_ros.core.metrics import classification_report
    from bharnet_ros.training.crossval import pooled
    from bharnet_ros.training.evaluate import Evaluation, branch_accuracies

    _, _, files = cv_run
    data = SkeletonDataset.load(files[0])
    labels = np.asarray(data.labels)
    rng = np.random.default_rng(0)
    names = ("fused", "body_expert", "body_interactive", "hand_expert", "hand_interactive")
    scores = {name: rng.normal(size=(len(data), len(data.class_names))) for name in names}

    def fold(summed: bool) -> Evaluation:
        branches = branch_accuracies(scores, labels, summed=summed)
        report = classification_report(scores["fused"], labels)
        return Evaluation(report, branches, labels, labels, scores, list(data.class_names), None)

    assert "expert_only" in pooled([(data, fold(summed=True))])[1].branches
    assert "expert_only" not in pooled([(data, fold(summed=False))])[1].branches


def test_a_finished_fold_is_not_trained_again(cv_run):
    out, values, files = cv_run
    stamp = (out / "fold_S1" / "last.pt").stat().st_mtime_ns
    config = load_train_config(None, base=json.loads(json.dumps(_config_of(out / "fold_S1"))))
    config["data"]["exclude_subjects"] = []
    again = cross_validate(config, out, ["S1", "S3"])
    assert (out / "fold_S1" / "last.pt").stat().st_mtime_ns == stamp
    assert again["top1"] == values["top1"]


def test_a_fold_stopped_between_epochs_continues_instead_of_being_scored(cv_run, tmp_path, monkeypatch):
    """Ctrl-C after a fold's first of two epochs: the rerun finishes that fold, never scores the
    half-trained last.pt as the config's result."""
    from bharnet_ros.training import train as train_module

    out, _, _ = cv_run
    config = load_train_config(None, base=json.loads(json.dumps(_config_of(out / "fold_S1"))))
    config["data"]["exclude_subjects"] = []
    config["epochs"] = 2
    save_state = train_module.save_state

    def stop_after_first_epoch(run, epoch, *args, **kwargs):
        save_state(run, epoch, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_state", stop_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        cross_validate(config, tmp_path / "out", ["S1"])
    fold = tmp_path / "out" / "fold_S1"
    assert load_checkpoint(fold / "last.pt").epoch == 1
    monkeypatch.setattr(train_module, "save_state", save_state)
    cross_validate(config, tmp_path / "out", ["S1"])
    assert load_checkpoint(fold / "last.pt").epoch == 2
    assert len((fold / "metrics.csv").read_text().splitlines()) == 3  # header and both epochs


def test_a_rerun_with_test_mirror_rescores_the_trained_folds(cv_run, tmp_path):
    out, values, _ = cv_run
    assert values["test_mirror"] == []
    again_out = tmp_path / "out"
    shutil.copytree(out, again_out)
    stamp = (again_out / "fold_S1" / "last.pt").stat().st_mtime_ns
    config = load_train_config(None, base=json.loads(json.dumps(_config_of(out / "fold_S1"))))
    config["data"]["exclude_subjects"] = []
    config["model"]["test_mirror"] = True
    again = cross_validate(config, again_out, ["S1", "S3"])
    assert (again_out / "fold_S1" / "last.pt").stat().st_mtime_ns == stamp  # scored, not retrained
    classes = load_checkpoint(again_out / "fold_S1" / "last.pt").class_names
    assert len(again["test_mirror"]) == len(classes)
    assert json.loads((again_out / "summary.json").read_text())["test_mirror"] == again["test_mirror"]


def test_a_rerun_with_another_config_or_newer_data_is_refused(cv_run, tmp_path):
    """Trained folds are reused only for the config and data they were trained with: anything else
    would report the old folds as the new config's result."""
    out, _, files = cv_run
    config = load_train_config(None, base=json.loads(json.dumps(_config_of(out / "fold_S1"))))
    config["data"]["exclude_subjects"] = []
    config["epochs"] = 2
    with pytest.raises(ConfigError, match="trained with another config \\(epochs 1 -> 2\\)"):
        cross_validate(config, out, ["S1"])
    config["epochs"] = 1
    stamp = files[1].stat()
    try:
        os.utime(files[1], (stamp.st_atime, stamp.st_mtime + 3600))  # the data changed since
        with pytest.raises(ConfigError, match="changed after .*fold_S1 was trained"):
            cross_validate(config, out, ["S1"])
    finally:
        os.utime(files[1], (stamp.st_atime, stamp.st_mtime))


def test_a_fold_trained_before_its_synthetic_data_folder_changed_is_refused(tmp_path):
    """A folder in data.train was skipped: regenerated synthetic data passed the reuse check."""
    import yaml

    from bharnet_ros.training.crossval import check_fold_config
    from bharnet_ros.training.train import absolute_paths

    synth, fold = tmp_path / "synth", tmp_path / "fold_S1"
    synth.mkdir()
    fold.mkdir()
    (synth / "wave_0000.npz").write_bytes(b"")
    config = load_train_config(None, base={"data": {"train": [str(synth)]}, "model": {"config": "m.yaml"}})
    (fold / "config.yaml").write_text(yaml.safe_dump(absolute_paths(config)))
    (fold / "last.pt").write_bytes(b"")
    stamp = (fold / "last.pt").stat().st_mtime
    os.utime(synth / "wave_0000.npz", (stamp - 60, stamp - 60))
    check_fold_config(fold, config)  # trained after the data
    os.utime(synth / "wave_0000.npz", (stamp + 60, stamp + 60))
    with pytest.raises(ConfigError, match="synth changed after .*fold_S1 was trained"):
        check_fold_config(fold, config)


def test_a_rerun_from_other_experts_is_refused_not_reused(cv_run, tmp_path):
    """model.init was not compared: a rerun from experts (or from others) reported the folds trained
    without them as its own result."""
    out, _, _ = cv_run
    config = load_train_config(None, base=json.loads(json.dumps(_config_of(out / "fold_S1"))))
    config["data"]["exclude_subjects"] = []
    config["model"]["init"] = {"body": str(out / "fold_S3" / "last.pt"), "hand": None}
    with pytest.raises(ConfigError, match="trained with another config \\(model.init.body None -> "):
        cross_validate(config, out, ["S3"])


def test_train_people_keeps_the_next_people_after_the_held_out_one(cv_run, tiny_run, monkeypatch):
    out, _, files = cv_run
    assert unused_people(["S1", "S2", "S3", "S4"], "S3", 2) == ["S2"]  # trains on S4, S1
    assert unused_people(["S1", "S2", "S3"], "S1", None) == []
    assert unused_people(["S1", "S2"], "S3", 1) == ["S2"]  # a pool without the held-out person
    from bharnet_ros.training.dataset import DatasetError

    for wrong in (0, 3):
        with pytest.raises(DatasetError, match="between 1 and 2"):
            unused_people(["S1", "S2", "S3"], "S1", wrong)
    train_files = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    config = load_train_config(
        REPO / "config/train/synth_cpu.yaml",
        [*tiny_run, f"data.train={train_files}", "preprocess.window_seconds=1.0"],
    )
    values = cross_validate(config, out.parent / "one_person", ["S3"], train_people=1)
    assert values["train_people"] == 1
    assert _config_of(out.parent / "one_person" / "fold_S3")["data"]["exclude_subjects"] == ["S3", "S2"]
    with pytest.raises(ConfigError, match="was trained without S2, S3, but this run leaves out S3"):
        cross_validate(config, out.parent / "one_person", ["S3"])  # the same --out, all the others
    validating = load_train_config(  # S1 validates: K counts among S2 only, so the fold trains on S2
        REPO / "config/train/synth_cpu.yaml",
        [*tiny_run, f"data.train={train_files}", "preprocess.window_seconds=1.0", "data.val_subjects=[S1]"],
    )
    from bharnet_ros.training import crossval

    fitted_on = []

    def recorded(runner, data, *args, **kwargs):
        fitted_on.append(sorted(set(data.subject_names())))
        return fit_distance(runner, data, *args, **kwargs)

    fit_distance = crossval.fit_distance
    monkeypatch.setattr(crossval, "fit_distance", recorded)
    cross_validate(validating, out.parent / "val_person", ["S3"], train_people=1)
    assert _config_of(out.parent / "val_person" / "fold_S3")["data"]["exclude_subjects"] == ["S3"]
    assert fitted_on == [["S2"]]  # the distance of the data the fold trained on: S1 only validated


def test_unknown_subjects_are_refused(cv_run, tmp_path):
    _, _, files = cv_run
    from bharnet_ros.training.crossval import fold_subjects
    from bharnet_ros.training.dataset import DatasetError

    with pytest.raises(DatasetError, match="S7"):
        fold_subjects(load_datasets(files), ["S7"])
    assert fold_subjects(load_datasets(files), None) == ["S1", "S2", "S3"]


def test_people_whose_fold_folders_would_clash_are_refused_before_any_fold(tmp_path, person_file):
    from bharnet_ros.training.crossval import fold_subjects

    files = [person_file(tmp_path, s, takes=1) for s in ("S 1", "S_1")]
    with pytest.raises(DatasetError, match="'S 1' and 'S_1' would share the fold folder fold_S_1"):
        fold_subjects(load_datasets(files), None)
    assert fold_subjects(load_datasets(files), ["S 1"]) == ["S 1"]  # one of them alone has a fold


def _config_of(fold: Path) -> dict:
    import yaml

    return yaml.safe_load((fold / "config.yaml").read_text())


def test_a_fold_starts_from_the_experts_fold_of_its_own_person(cv_run, tiny_run, tmp_path):
    out, _, files = cv_run
    train_files = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    experts = {}
    for stream in ("body", "hand"):
        config = load_train_config(
            REPO / f"config/train/synth_{stream}_expert.yaml",
            [*tiny_run, f"data.train={train_files}", "preprocess.window_seconds=1.0"],
        )
        cross_validate(config, tmp_path / stream, ["S1"])
        experts[stream] = tmp_path / stream
    config = load_train_config(
        REPO / "config/train/synth_cpu.yaml",
        [*tiny_run, f"data.train={train_files}", "preprocess.window_seconds=1.0"]
        + [f"model.init.{stream}={folder}" for stream, folder in experts.items()],
    )
    cross_validate(config, tmp_path / "joint", ["S1"])
    init = _config_of(tmp_path / "joint" / "fold_S1")["model"]["init"]
    assert init == {s: str(tmp_path / s / "fold_S1" / "last.pt") for s in ("body", "hand")}


def test_an_expert_that_saw_the_held_out_person_is_refused(cv_run, tmp_path):
    out, _, _ = cv_run
    # fold_S3 trained on S1 and S2: fine for the S3 fold, a leak for the S1 fold
    assert fold_experts({"body": str(out / "fold_S3"), "hand": None}, "S3")["body"].endswith("last.pt")
    assert fold_experts({"body": str(out)}, "S1") == {"body": str(out / "fold_S1" / "last.pt")}
    with pytest.raises(
        ConfigError, match="has no fold for S2 \\(fold_S2\\); train the experts with --loso S2"
    ):
        fold_experts({"body": str(out)}, "S2")  # it said that its last.pt does not exist
    with pytest.raises(ConfigError, match="trained on S1, the person this fold holds out"):
        fold_experts({"body": str(out / "fold_S3")}, "S1")
    alone = tmp_path / "expert.pt"
    shutil.copy(out / "fold_S3" / "last.pt", alone)
    with pytest.raises(ConfigError, match="no config.yaml beside it"):
        fold_experts({"hand": str(alone)}, "S1")
    with pytest.raises(ConfigError, match="does not exist"):
        fold_experts({"hand": str(tmp_path / "missing.pt")}, "S1")
    (tmp_path / "run").mkdir()
    shutil.copy(alone, tmp_path / "run" / "last.pt")
    for text in ("[not yaml", "- a list, not a config", "data: {train: 3}"):
        (tmp_path / "run" / "config.yaml").write_text(text)
        with pytest.raises(ConfigError, match="its data is not here"):
            fold_experts({"body": str(tmp_path / "run")}, "S1")


def test_an_expert_whose_data_is_gone_or_that_validated_on_the_person_is_refused(cv_run, tmp_path):
    """Only the data files still there were searched for the person, and never data.val: an
    expert whose best.pt the held-out person chose passed as one that never saw them."""
    out, _, files = cv_run
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(out / "fold_S3" / "last.pt", run / "last.pt")
    (run / "config.yaml").write_text(f"data:\n  train: ['{files[1]}', '{tmp_path / 'moved_S1.npz'}']\n")
    with pytest.raises(ConfigError, match="its data file .*moved_S1.npz is not here"):
        fold_experts({"body": str(run)}, "S1")
    (run / "config.yaml").write_text(f"data:\n  train: ['{files[1]}']\n  val: ['{files[0]}']\n")
    with pytest.raises(ConfigError, match="trained on S1, the person this fold holds out"):
        fold_experts({"body": str(run)}, "S1")
    assert fold_experts({"body": str(run)}, "S3")["body"] == str(run / "last.pt")


def test_a_held_out_person_without_a_sample_in_the_vocabulary_is_refused_before_any_fold(
    cv_run, tiny_run, tmp_path
):
    """Their fold trained for minutes, then failed with a KeyError traceback: nothing to test."""
    _, _, files = cv_run
    data = SkeletonDataset.load(files[2])
    data.class_names = [f"s3_{name}" for name in data.class_names]  # S3 performs nothing the others do
    other = SkeletonDataset(**{f: getattr(data, f) for f in data.__dataclass_fields__}).save(
        tmp_path / "S3.npz"
    )
    train_files = f"['{files[0]}', '{files[1]}', '{other}']"
    config = load_train_config(
        REPO / "config/train/synth_cpu.yaml",
        [*tiny_run, f"data.train={train_files}", "data.classes=[wave, clap]"],
    )
    with pytest.raises(DatasetError, match="S3 has no sample in the classes trained on"):
        cross_validate(config, tmp_path / "out", ["S1", "S3"])
    assert not (tmp_path / "out").exists()


def test_a_class_only_the_held_out_person_performs_is_refused_before_any_fold(cv_run, tiny_run, tmp_path):
    """That fold could never predict the class, and its class list would differ from the others'."""
    _, _, files = cv_run
    data = SkeletonDataset.load(files[2])
    data.class_names = ["jump", *data.class_names[1:]]  # S3's waves are the only jumps
    jumper = SkeletonDataset(**{f: getattr(data, f) for f in data.__dataclass_fields__}).save(
        tmp_path / "S3.npz"
    )
    train_files = f"['{files[0]}', '{files[1]}', '{jumper}']"
    config = load_train_config(REPO / "config/train/synth_cpu.yaml", [*tiny_run, f"data.train={train_files}"])
    with pytest.raises(DatasetError, match="the fold of S3 would have no training sample of jump"):
        cross_validate(config, tmp_path / "out", ["S1", "S3"])
    assert not (tmp_path / "out").exists()
    with pytest.raises(DatasetError, match="the fold of S1 would have no training sample of jump: .*S1, S3"):
        cross_validate(config, tmp_path / "out", None, train_people=1)  # S1's fold trains on S2 only


def test_folds_test_in_the_vocabulary_they_trained_in(cv_run, tiny_run, tmp_path):
    """With ``data.classes`` (and ``data.relabel``) the held-out person is tested on those classes."""
    _, _, files = cv_run
    train_files = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    config = load_train_config(
        REPO / "config/train/synth_cpu.yaml",
        [*tiny_run, f"data.train={train_files}", "data.classes=[wave, clap]", "preprocess.window_seconds=1"],
    )
    values = cross_validate(config, tmp_path / "out", ["S1"])
    assert values["num_samples"] == 2  # S1's wave and clap; its left and right are not in the vocabulary


def test_a_fold_is_continued_as_this_run_runs_and_one_that_saved_no_epoch_is_no_fold_yet(tmp_path):
    """A fold stopped on a GPU machine was continued with device=cuda from its config.yaml on a CPU
    one; a fold killed in its first epoch was refused as 'trained without' other people."""
    from bharnet_ros.training.crossval import check_fold_people, how_it_runs
    from bharnet_ros.training.train import load_train_config

    fold = {"device": "cpu", "workers": 0, "progress": False, "eval_batch_size": 8}
    stored = load_train_config(REPO / "config/train/synth_cpu.yaml", ["device=cuda", "workers=3"])
    continued = load_train_config(None, how_it_runs(fold), base=stored)
    assert {key: continued[key] for key in fold} == fold
    (tmp_path / "fold_S1").mkdir()
    (tmp_path / "fold_S1" / "config.yaml").write_text("data:\n  exclude_subjects: [S1, S3]\n")
    check_fold_people(tmp_path / "fold_S1", ["S1"])  # no last.pt: trained anew


def test_a_model_trained_expert_only_gets_the_calibration_its_export_asks_for():
    """Its export looks up `expert_only`; its --loso run wrote only `fused`, so it was refused."""
    from bharnet_ros.core.metrics import classification_report
    from bharnet_ros.training.crossval import held_out_calibrations
    from bharnet_ros.training.evaluate import Evaluation

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    body, hand = rng.normal(size=(60, 3)), rng.normal(size=(60, 3))
    body[np.arange(60), labels] += 3.0
    scores = {"fused": body + hand, "body_expert": body, "hand_expert": hand}
    result = Evaluation(
        classification_report(scores["fused"], labels), {}, labels, scores["fused"].argmax(1), scores,
        ["a", "b", "c"], None,
    )  # fmt: skip
    calibrations = held_out_calibrations(result)
    assert calibrations["expert_only"] == calibrations["fused"]


def test_held_out_predictions_that_fit_no_calibration_say_why_instead_of_ending_the_run():
    """A run whose held-out predictions were all right: its folds are kept and scored, and the
    calibration says why there is none (an export refuses it in those words)."""
    from bharnet_ros.core.metrics import classification_report
    from bharnet_ros.training.crossval import held_out_calibrations
    from bharnet_ros.training.evaluate import Evaluation

    labels = np.arange(60) % 3
    fused = np.eye(3)[labels] * 4.0
    result = Evaluation(
        classification_report(fused, labels), {}, labels, labels, {"fused": fused}, ["a", "b", "c"], None
    )
    fused_entry = held_out_calibrations(result)["fused"]
    assert fused_entry["unfit"].startswith("every one of the 60 held-out predictions is right")
    assert fused_entry["class_names"] == ["a", "b", "c"]
