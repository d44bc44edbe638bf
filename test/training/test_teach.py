"""Teaching new gestures to a tiny BHaRNet-E: new classifier rows on frozen features, old rows
rehearsed or held, and an export that the unchanged node loads (labels, experts, calibration)."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch
import yaml
from torch.utils.data import DataLoader

from bharnet_ros.core.inference import OnnxClassifier
from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.model.bharnet import build_model
from bharnet_ros.model.checkpoint import make_checkpoint, save_checkpoint
from bharnet_ros.model.export import ExportError, prepare_model
from bharnet_ros.training import teach_curve
from bharnet_ros.training.classes import same_words
from bharnet_ros.training.dataset import SkeletonDataset
from bharnet_ros.training.feeder import SkeletonFeeder, mirror_label_map
from bharnet_ros.training.synth import generate_sequence
from bharnet_ros.training.teach import (
    Features,
    TeachSettings,
    base_heads,
    calibration_from,
    check_calibration,
    distance_windows,
    distillation,
    dropped,
    expert_logits,
    export_taught,
    extract_features,
    fit_window_distance,
    least_sure,
    load_rehearsal,
    per_class_cap,
    rehearsal_beside,
    rehearsal_features,
    teach,
    window_features,
)
from bharnet_ros.training.teach_curve import (
    REFERENCE_SCORES,
    SCORES,
    CurvePlan,
    check_plan,
    draw_takes,
    impossible_points,
    plan_points,
    run_curve,
    score_reference,
    summarise,
    teacher_groups,
    write_curve,
)

FAST = TeachSettings(views=2, steps=30, rehearsal_per_class=2, batch_size=8)


def takes_of(classes, per_class=2, subject="ana", hand=()):
    sequences = [
        generate_sequence(c, np.random.default_rng([i, k]))
        for i, c in enumerate(classes)
        for k in range(per_class)
    ]
    labels = [i for i in range(len(classes)) for _ in range(per_class)]
    return SkeletonDataset.from_sequences(
        sequences, labels, classes,
        names=[f"{subject}/{c}_{k}" for c in classes for k in range(per_class)],
        hand_intensive=[c in hand for c in classes],
        attributes=[{"subject": subject, "take": str(k)} for _ in classes for k in range(per_class)],
    )  # fmt: skip


@pytest.fixture(scope="module")
def base(teach_base):
    return teach_base("mediapipe33")


def test_new_gestures_are_added_after_the_old_ones_which_are_rehearsed(base):
    result = teach(base, takes_of(["stop", "clap"], hand=["clap"]), takes_of(["idle", "wave"]), FAST)
    checkpoint = result.checkpoint
    assert checkpoint.class_names == ["idle", "wave", "stop", "clap"]
    assert result.new_classes == ["stop", "clap"]
    assert checkpoint.hand_intensive == ["clap"]
    assert checkpoint.preprocess == base.preprocess  # the base preprocessing: the node reads it unchanged
    assert result.notes[0].startswith("rehearsed 4 samples of 2 old classes")
    heads = base_heads(result.model)
    assert heads.weight["body_expert"].shape[0] == 4
    backbone = [k for k in base.state_dict if "head" not in k]
    assert all(torch.equal(base.state_dict[k], checkpoint.state_dict[k]) for k in backbone)  # frozen


def test_old_classes_the_rehearsal_data_lacks_are_named(base):
    """A checkout with only part of the base's training data rehearses only part of its classes."""
    result = teach(base, takes_of(["stop"]), takes_of(["idle"]), FAST)
    assert result.notes[0].startswith("rehearsed 2 samples of 1 old classes")
    assert result.notes[1].startswith("no rehearsal sample of 1 old classes (wave): they may be forgotten")


def test_without_rehearsal_the_old_rows_stay_exactly(base):
    result = teach(base, takes_of(["stop"]), None, FAST)
    assert result.notes[0] == "no rehearsal data: the old classes' rows stay as they were"
    for branch, weight in base_heads(result.model).weight.items():
        assert torch.equal(weight[:2], base.state_dict[f"{branch}_head.fc.weight"])


def test_feature_dropout_zeroes_a_share_of_the_values_and_keeps_their_scale():
    torch.manual_seed(0)
    labels = torch.zeros(400, dtype=torch.long)
    features = Features({"body": torch.ones(400, 50)}, torch.ones(400, 4), labels, np.arange(400))
    assert dropped(features, 0.0) is features
    kept = dropped(features, 0.5)
    values = kept.branches["body"]
    assert 0.45 < float((values == 0).float().mean()) < 0.55
    assert set(values.unique().tolist()) == {0.0, 2.0}  # the kept ones scaled: the mean stays 1
    assert kept.labels is labels
    assert kept.hand_mask is features.hand_mask


def test_the_fit_through_dropout_is_seeded_and_differs_from_the_plain_one(base):
    takes, rehearsal = takes_of(["stop"]), takes_of(["idle", "wave"])
    rows = [
        base_heads(teach(base, takes, rehearsal, replace(FAST, feature_dropout=rate)).model).weight
        for rate in (0.5, 0.5, 0.0)
    ]
    assert all(torch.equal(rows[0][b], rows[1][b]) for b in rows[0])  # the same takes teach the same rows
    assert not all(torch.equal(rows[0][b], rows[2][b]) for b in rows[0])


def test_rehearsal_keeps_the_views_the_base_model_is_least_sure_of(base):
    """Of the candidate windows of each rehearsal sample, the ``rehearsal_views`` with the lowest
    base-model probability of the sample's class are kept; a plain draw when there is no choice."""
    data, model = takes_of(["idle", "wave"]), prepare_model(base)
    classes = [*base.class_names, "stop"]  # the taught vocabulary: labels index it, not the base's
    settings = replace(FAST, rehearsal_views=2, rehearsal_candidates=5)
    drawn = window_features(model, base, data, classes, settings, 5)
    with torch.no_grad():
        scores = expert_logits(model, base_heads(model).logits(drawn), drawn.hand_mask).softmax(dim=1)
    sure = scores[torch.arange(len(drawn)), drawn.labels].numpy()
    kept = least_sure(model, base, classes, drawn, 2)
    for sample in range(len(data)):
        mine = np.flatnonzero(drawn.samples == sample)
        chosen = np.intersect1d(mine, kept)
        assert len(chosen) == 2
        assert sure[chosen].max() <= np.setdiff1d(sure[mine], sure[chosen]).min()
    rehearsed, every = rehearsal_features(model, base, data, classes, settings)
    assert torch.equal(rehearsed.branches["body_expert"], drawn.select(kept).branches["body_expert"])
    assert torch.equal(every.branches["body_expert"], drawn.branches["body_expert"])  # the distance's
    plain = replace(settings, rehearsal_candidates=2)  # no choice: the first two views, as drawn
    expected = window_features(model, base, data, classes, plain, 2)
    got, _ = rehearsal_features(model, base, data, classes, plain)
    assert torch.equal(got.branches["hand_expert"], expected.branches["hand_expert"])


def test_takes_only_of_known_classes_without_rehearsal_are_refused_not_ignored(base):
    with pytest.raises(ValueError, match=r"only of classes the base model already knows \(wave\)"):
        teach(base, takes_of(["wave"]), None, FAST)
    with pytest.raises(ValueError, match=r"only of classes the base model already knows \(wave\)"):
        teach(base, takes_of(["wave"]), None, replace(FAST, replace=True, keep=("idle",)))  # the same rows
    # with rehearsal the known rows are refined, and the output says so
    refined = teach(base, takes_of(["wave"]), takes_of(["idle", "wave"]), FAST)
    assert refined.new_classes == []
    assert refined.notes[0] == "takes of wave, which the base model knows, refine it"


def test_a_fine_tune_moves_the_backbone_and_keeps_the_preprocessing(base):
    settings = TeachSettings(views=1, steps=5, rehearsal_per_class=2, batch_size=8, finetune_epochs=2)
    result = teach(base, takes_of(["stop"]), takes_of(["idle", "wave"]), settings)
    checkpoint = result.checkpoint
    assert checkpoint.class_names == ["idle", "wave", "stop"]
    assert checkpoint.preprocess == base.preprocess
    assert result.notes[-1] == "fine-tuned the whole network for 2 epoch(s)"
    assert result.seconds["finetune"] > 0
    backbone = [k for k in base.state_dict if "head" not in k and base.state_dict[k].is_floating_point()]
    assert any(not torch.equal(base.state_dict[k], checkpoint.state_dict[k]) for k in backbone)
    running = [k for k in backbone if "running_" in k]
    assert running  # normalisation statistics stay the base model's
    assert all(torch.equal(base.state_dict[k], checkpoint.state_dict[k]) for k in running)


def test_a_fine_tune_of_a_mirroring_base_runs_the_network_once_per_window(base, monkeypatch):
    def no_second_pass(*args, **kwargs):
        raise AssertionError("a fine-tune step scored a window with its mirror image")

    monkeypatch.setattr("bharnet_ros.model.bharnet.mirror_averaged", no_second_pass)
    settings = TeachSettings(
        views=1, steps=5, rehearsal_per_class=2, batch_size=8, finetune_epochs=1, finetune_distill=1.0
    )
    result = teach(base.with_test_mirror([0, 1]), takes_of(["stop"]), takes_of(["idle", "wave"]), settings)
    assert result.checkpoint.model_config["test_mirror"] == [0, 1, 2]


def test_a_fine_tune_of_the_tails_keeps_the_trunks(base):
    settings = TeachSettings(
        views=1, steps=5, rehearsal_per_class=2, batch_size=8, finetune_epochs=2, finetune_part="tails",
        finetune_distill=1.0,
    )  # fmt: skip
    result = teach(base, takes_of(["stop"]), takes_of(["idle", "wave"]), settings)
    state = result.checkpoint.state_dict
    assert result.notes[-1] == (
        "fine-tuned the tails and heads for 2 epoch(s), keeping the old classes' logits (weight 1)"
    )
    trunk = [k for k in base.state_dict if "_trunk." in k]
    tails = [k for k in base.state_dict if "_tail." in k and base.state_dict[k].is_floating_point()]
    assert trunk
    assert all(torch.equal(base.state_dict[k], state[k]) for k in trunk)
    assert any(not torch.equal(base.state_dict[k], state[k]) for k in tails if "running_" not in k)


def test_tails_of_a_model_without_trunks_are_refused_before_any_work(teach_base):
    single = teach_base("mediapipe33")
    model = build_model(single.model_config | {"variant": "score_fusion"})
    checkpoint = make_checkpoint(model.eval(), single.class_names, single.preprocess_config, [])
    settings = TeachSettings(views=1, steps=5, finetune_epochs=1, finetune_part="tails")
    with pytest.raises(ValueError, match="'tails' of a BHaRNet-E base \\(this one is score_fusion\\)"):
        teach(checkpoint, takes_of(["stop"]), takes_of(["idle", "wave"]), settings)


def test_a_fine_tune_class_balance_outside_0_to_1_is_refused_before_any_work(base, monkeypatch):
    monkeypatch.setattr("bharnet_ros.training.teach.window_features", pytest.fail)
    for bad in (-0.1, 1.5, float("nan")):
        settings = TeachSettings(views=1, steps=5, finetune_epochs=1, finetune_balance=bad)
        with pytest.raises(ValueError, match="class balance must be in \\[0, 1\\]"):
            teach(base, takes_of(["stop"]), takes_of(["idle", "wave"]), settings)


def test_distillation_keeps_the_old_classes_relations_and_ignores_the_new_ones():
    kept = {"a": torch.tensor([[2.0, 0.0, -1.0]]), "b": torch.tensor([[0.0, 1.0, 5.0]])}
    old = torch.tensor([0, 1])
    assert distillation(kept, kept, old, ["a", "b"]).item() == pytest.approx(0.0, abs=1e-7)
    new_only = {"a": torch.tensor([[2.0, 0.0, 9.0]]), "b": torch.tensor([[0.0, 1.0, -9.0]])}
    assert distillation(new_only, kept, old, ["a", "b"]).item() == pytest.approx(0.0, abs=1e-7)
    shifted = {"a": torch.tensor([[5.0, 3.0, -1.0]]), "b": kept["b"]}  # the same relations, moved
    assert distillation(shifted, kept, old, ["a", "b"]).item() == pytest.approx(0.0, abs=1e-6)
    swapped = {"a": torch.tensor([[0.0, 2.0, -1.0]]), "b": kept["b"]}
    assert distillation(swapped, kept, old, ["a", "b"]).item() > 0.1


def test_no_fine_tune_without_rehearsal_where_old_classes_stay(base):
    result = teach(base, takes_of(["stop"]), None, TeachSettings(views=1, steps=5, finetune_epochs=2))
    assert result.notes[-1] == "no fine-tune without rehearsal data: it would forget the old classes"
    backbone = [k for k in base.state_dict if "head" not in k]
    assert all(torch.equal(base.state_dict[k], result.checkpoint.state_dict[k]) for k in backbone)


def test_two_names_of_one_gesture_are_refused_not_taught_as_rivals(base):
    takes = takes_of(["wave", "stop"])
    takes.class_names = ["Wave", "stop"]  # typed by a second teacher; the base knows wave
    with pytest.raises(ValueError, match="wave and Wave would be two classes of one gesture"):
        teach(base, takes, None, FAST)
    takes.class_names = ["clap", "Clap"]
    with pytest.raises(ValueError, match="clap and Clap would be two classes"):
        teach(base, takes, None, FAST)
    assert same_words(["turn_left", "Turn Left"]) == ("turn_left", "Turn Left")
    assert same_words(["left", "right", "stop"]) is None


def test_replace_keeps_only_the_named_base_classes(base):
    settings = TeachSettings(replace=True, keep=("idle",), views=1, steps=5)
    result = teach(base, takes_of(["stop", "clap"]), None, settings)
    assert result.checkpoint.class_names == ["idle", "stop", "clap"]
    with pytest.raises(ValueError, match="does not know"):
        teach(base, takes_of(["stop"]), None, TeachSettings(replace=True, keep=("nope",)))
    with pytest.raises(ValueError, match="would know only stop: a classifier needs two classes or more"):
        teach(base, takes_of(["stop"]), None, TeachSettings(replace=True))


def test_takes_of_a_gesture_the_base_knows_refine_it_and_say_so(base):
    result = teach(base, takes_of(["wave", "stop"]), takes_of(["idle", "wave"]), FAST)
    assert result.checkpoint.class_names == ["idle", "wave", "stop"]
    assert result.notes[0] == "takes of wave, which the base model knows, refine it"


def test_the_export_keeps_experts_preprocess_and_calibration_and_passes_parity(base, tmp_path):
    result = teach(base, takes_of(["stop"]), takes_of(["idle", "wave"]), FAST)
    calibration = tmp_path / "calibration.json"
    calibration.write_text(json.dumps({"expert_only": {"temperature": 1.5, "none_threshold": 0.4}}))
    metadata, diffs = export_taught(result.checkpoint, tmp_path / "m.onnx", calibration=calibration)
    assert set(diffs) == {"random", "realistic"}
    classifier = OnnxClassifier(tmp_path / "m.onnx", providers="cpu")
    assert classifier.labels == ["idle", "wave", "stop"]
    assert classifier.experts == {"body": "body_expert", "hand": "hand_expert"}
    assert classifier.preprocess.window_seconds == 1.0
    assert (classifier.temperature, classifier.metadata["none_threshold"]) == (1.5, 0.4)
    # a shipped model's calibration travels to the taught model of its variant
    _, _ = export_taught(result.checkpoint, tmp_path / "again.onnx", calibration=tmp_path / "m.onnx")
    again = OnnxClassifier(tmp_path / "again.onnx", providers="cpu")
    assert again.variant == "bharnet_e_expert_only"
    assert again.metadata["none_threshold"] == 0.4


def test_the_taught_model_carries_a_distance_fitted_on_every_class_and_exports_it(base, tmp_path):
    takes, rehearsal = takes_of(["stop"]), takes_of(["idle", "wave"])
    result = teach(base, takes, rehearsal, FAST)
    distance = result.distance
    assert result.model.feature_distance is distance
    assert distance.branches == ("body_expert", "hand_expert")
    assert distance.means.shape[1] == 3  # idle, wave and stop: a mean each
    assert list(result.seconds) == ["features", "fit", "distance"]  # its time, for the output
    # the new gesture's windows lie nearer the taught distance's classes than the base's
    classes = result.checkpoint.class_names
    windows = extract_features(result.model, takes, classes, base.preprocess_config)
    before = fit_window_distance(result.model, window_features(
        result.model, base, rehearsal, classes, FAST, FAST.rehearsal_candidates
    ))  # fmt: skip
    new = [windows.branches[name] for name in distance.branches]
    assert float(distance(new).mean()) < float(before(new).mean())
    entry = {"temperature": 1.5, "none_threshold": 0.4, "distance_threshold": 2.0}
    (tmp_path / "calibration.json").write_text(json.dumps({"expert_only": entry}))
    metadata, _ = export_taught(
        result.checkpoint, tmp_path / "m.onnx", True, tmp_path / "calibration.json", distance
    )
    assert metadata["bharnet.distance_threshold"] == 2.0
    classifier = OnnxClassifier(tmp_path / "m.onnx", providers="cpu")
    assert classifier.metadata["distance_threshold"] == 2.0
    assert "distance" in classifier.output_names
    # a taught model's stored calibration passes the distance threshold on to the next teaching
    assert calibration_from(tmp_path / "m.onnx", result.model.expert_only()) == entry


@pytest.mark.parametrize(
    ("old", "settings", "note"),
    [
        (["idle"], FAST, "no feature distance: no window of wave (give their training data with --rehearse)"),
        (None, FAST, "no feature distance: no window of idle, wave"),
        (["idle", "wave"], replace(FAST, distance=False), None),
    ],
)
def test_no_distance_where_a_class_has_no_window_or_when_asked(base, old, settings, note):
    result = teach(base, takes_of(["stop"]), takes_of(old) if old else None, settings)
    assert result.distance is None
    assert result.model.feature_distance is None
    said = [n for n in result.notes if n.startswith("no feature distance")]
    assert said == ([] if note is None else [said[0]])
    if note is not None:
        assert said[0].startswith(note)
        assert said[0].endswith("the recognizer's distance rule is off for this model")


def test_no_distance_where_no_class_has_two_windows(base):
    """A new vocabulary of one take each, seen once, has no spread: the distance had put every
    other window some 1e24 units away, so a distance threshold answered none to everything."""
    settings = replace(FAST, replace=True, views=1)
    result = teach(base, takes_of(["stop", "clap"], per_class=1), None, settings)
    assert result.distance is None
    assert result.model.feature_distance is None
    (said,) = [n for n in result.notes if n.startswith("no feature distance")]
    assert "do not vary within any class" in said
    assert said.endswith("distance rule is off for this model")


def test_a_fine_tuned_model_fits_its_distance_on_its_own_features(base):
    takes, rehearsal = takes_of(["stop"]), takes_of(["idle", "wave"])
    tuned = teach(base, takes, rehearsal, replace(FAST, finetune_epochs=1))
    assert not [n for n in tuned.notes if n.startswith("no feature distance")]
    assert list(tuned.seconds) == ["features", "fit", "finetune", "distance"]  # fitted once, after it
    assert tuned.model.feature_distance is tuned.distance
    kept = per_class_cap(rehearsal, FAST.rehearsal_per_class, FAST.seed)
    classes = tuned.checkpoint.class_names
    windows = distance_windows(tuned.model, tuned.checkpoint, takes, kept, classes, FAST)
    assert len(windows) == FAST.views * len(takes) + FAST.rehearsal_views * len(kept)
    expected = fit_window_distance(tuned.model, windows)
    assert torch.allclose(tuned.distance.means, expected.means)  # the fine-tuned model's windows
    assert tuned.distance.scale == pytest.approx(expected.scale)
    plain = teach(base, takes, rehearsal, FAST).distance  # the same takes without a fine-tune
    assert not torch.allclose(tuned.distance.means, plain.means)
    # a replaced vocabulary of new gestures only is fine-tuned on its takes alone, and measured on them
    only_new = teach(base, takes_of(["stop", "clap"]), None, replace(FAST, replace=True, finetune_epochs=1))
    assert "finetune" in only_new.seconds
    assert only_new.distance.means.shape[1] == 2


def test_a_bad_calibration_is_refused_before_teaching(base, tmp_path):
    calibration = tmp_path / "calibration.json"
    calibration.write_text(json.dumps({"expert_only": {"temperature": None, "none_threshold": 0.4}}))
    with pytest.raises(ExportError, match=r"'expert_only' calibration's temperature null is not a number"):
        check_calibration(base, calibration)
    calibration.write_text(json.dumps({"fused": {"temperature": 2.0, "none_threshold": 0.4}}))
    assert check_calibration(base, calibration, expert_only=False) == {
        "temperature": 2.0,
        "none_threshold": 0.4,
    }
    with pytest.raises(ExportError, match="no 'expert_only' calibration"):
        check_calibration(base, calibration)  # the default export is expert-only: its entry is needed


def exported_with(base, path, props: dict[str, str]):
    """``base`` exported to ``path`` with these metadata entries set (added or replaced)."""
    export_taught(base, path, calibration=None)
    proto = onnx.load(str(path))
    kept = {entry.key: entry.value for entry in proto.metadata_props}
    onnx.helper.set_model_props(proto, {**kept, **props})
    onnx.save(proto, str(path))
    return path


def test_a_models_stored_calibration_is_checked_like_a_file(base, tmp_path):
    props = {"bharnet.temperature": '"abc"', "bharnet.none_threshold": "NaN"}
    model = exported_with(base, tmp_path / "m.onnx", props)
    with pytest.raises(ExportError, match=r"m\.onnx: its temperature \"abc\" is not a number"):
        check_calibration(base, model)


def test_a_calibration_of_another_models_classes_is_refused_before_teaching(base, tmp_path):
    """Its temperature and thresholds were fitted on other classes: export refused it, teach took it."""
    calibration = tmp_path / "calibration.json"
    entry = {"temperature": 2.0, "none_threshold": 0.4, "class_names": ["a", "b", "c"]}
    calibration.write_text(json.dumps({"expert_only": entry}))
    with pytest.raises(ExportError, match="fitted on a model of 3 classes"):
        check_calibration(base, calibration)
    labels = json.dumps(list(reversed(base.class_names)))
    props = {"bharnet.temperature": "2.0", "bharnet.none_threshold": "0.4", "bharnet.labels": labels}
    model = exported_with(base, tmp_path / "m.onnx", props)
    with pytest.raises(ExportError, match="fitted on other classes or another order"):
        check_calibration(base, model)


def test_a_models_stored_calibration_of_the_other_variant_is_refused(base, tmp_path):
    """The full model's temperature went into the expert-only export silently (and back)."""
    model = tmp_path / "m.onnx"
    export_taught(base, model, calibration=None)  # expert-only
    with pytest.raises(ExportError, match="is a bharnet_e_expert_only model and this export a bharnet_e one"):
        check_calibration(base, model, expert_only=False)
    plain = tmp_path / "plain.onnx"
    stripped = onnx.load(str(model))
    del stripped.metadata_props[:]
    onnx.save(stripped, str(plain))
    with pytest.raises(ExportError, match="plain.onnx carries no bharnet metadata"):  # 'is a None model'
        check_calibration(base, plain)


def test_rehearsal_samples_of_a_taught_gesture_the_base_had_merged_away_are_left_out(tmp_path):
    """The recipe merges clap into none: taught as a gesture of its own, the rehearsal's claps had
    been fitted as none beside the user's claps as clap."""
    from bharnet_ros.training.data import TrainingData

    path = takes_of(["idle", "clap"], per_class=3).save(tmp_path / "rehearsal.npz")
    source = TrainingData([path], {"clap": "none"})
    assert load_rehearsal(source).class_counts().tolist() == [3, 3]  # idle, none (the claps)
    for spelling in ("clap", "Clap", "CLAP"):  # one gesture by its words: Clap kept the claps as none
        kept = load_rehearsal(source, taught=[spelling])
        assert dict(zip(kept.class_names, kept.class_counts().tolist(), strict=False)) in (
            {"idle": 3},
            {"idle": 3, "none": 0},
        )


def test_rehearsal_leaves_out_the_people_the_base_never_trained_on(tmp_path, person_file):
    """A person kept for validation is unseen by the base (a curve measures them): rehearsing, or
    fitting the distance on, their clips trained on them after all."""
    from bharnet_ros.training.data import TrainingData

    files = [person_file(tmp_path, person, takes=1) for person in ("S1", "S2", "S3")]
    source = TrainingData(files, left_out=["S3"], validated=["S1"])
    assert sorted(set(load_rehearsal(source).subject_names())) == ["S2"]


def test_rehearsal_of_another_layout_is_refused_before_a_fine_tune_s_work(base, monkeypatch):
    from bharnet_ros.training import teach as teach_module

    rehearsal = takes_of(["idle", "wave"])
    rehearsal.space = "world"  # as MediaPipe's world landmarks are
    monkeypatch.setattr(teach_module, "teaching_windows", lambda *a, **k: pytest.fail("features first"))
    with pytest.raises(
        ValueError, match="the takes are mediapipe33 skeletons in image space and the rehearsal"
    ):
        teach(base, takes_of(["stop"]), rehearsal, replace(FAST, finetune_epochs=1))


@pytest.mark.parametrize("which", ["takes", "rehearsal"])
def test_data_in_another_space_than_the_base_models_is_refused_before_any_work(base, monkeypatch, which):
    """World landmarks taught to an image-space model would be read as fractions of the image."""
    from bharnet_ros.training import teach as teach_module

    imaged = replace(base, preprocess={**base.preprocess, "space": "image"})
    takes, rehearsal = takes_of(["stop"]), takes_of(["idle", "wave"])
    (takes if which == "takes" else rehearsal).space = "world"
    monkeypatch.setattr(teach_module, "teaching_windows", lambda *a, **k: pytest.fail("features first"))
    what = "the takes" if which == "takes" else "the rehearsal data"
    with pytest.raises(ValueError, match=f"{what}: cannot feed world-space skeletons to a model trained on"):
        teach(imaged, takes, rehearsal, FAST)


def test_the_curve_counts_teachers_not_the_plus_signs_in_their_names():
    from bharnet_ros.training.teach_curve import CurveRun

    run = CurveRun("base", "ana+bo", 2, 0, "cy", **dict.fromkeys(SCORES, 0.5))  # one teacher: "ana+bo"
    assert [row["teachers"] for row in summarise([run])] == [1]


def test_a_base_of_another_variant_exports_whole_instead_of_failing_after_the_fit(tmp_path):
    config = {"variant": "body_expert", "num_classes": 2, "backbone": {"base_channels": 8}}
    config["input"] = {"frames": 16, "body_layout": "mediapipe33", "num_persons": 1}
    preprocess = PreprocessConfig(body_layout="mediapipe33", frames=16, num_persons=1)
    single = make_checkpoint(build_model(config).eval(), ["idle", "wave"], preprocess, [])
    metadata, _ = export_taught(single, tmp_path / "m.onnx", expert_only=True)
    assert metadata["bharnet.variant"] == "body_expert"


def test_a_base_with_test_mirror_teaches_a_model_that_mirrors_its_new_vocabulary(base, tmp_path):
    mirrored = base.with_test_mirror([0, 1])
    takes = replace(takes_of(["pointing", "clap", "stop"]), class_names=["point_left", "point_right", "stop"])
    result = teach(mirrored, takes, None, FAST)
    assert result.checkpoint.class_names == ["idle", "wave", "point_left", "point_right", "stop"]
    assert result.checkpoint.model_config["test_mirror"] == [0, 1, 3, 2, 4]
    metadata, _ = export_taught(result.checkpoint, tmp_path / "m.onnx")
    assert metadata["bharnet.test_mirror"] is True
    assert teach(base, takes_of(["stop"]), None, FAST).checkpoint.model_config["test_mirror"] == []


def test_rehearsal_data_is_found_beside_the_base_checkpoint(base, tmp_path):
    data = takes_of(["idle", "fidget"]).merge(takes_of(["idle"], subject="bo")).save(tmp_path / "old.npz")
    save_checkpoint(base, tmp_path / "run" / "last.pt")
    section = {
        "train": [str(data), str(tmp_path / "gone.npz")],
        "relabel": {"fidget": "wave"},
        "exclude_subjects": ["bo"],
    }
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump({"data": section}))
    source = rehearsal_beside(tmp_path / "run" / "last.pt")
    assert source.files == [data]  # the files that are still there
    rehearsal = load_rehearsal(source)
    assert sorted(set(rehearsal.class_names)) == ["idle", "wave"]
    assert set(rehearsal.subject_names().tolist()) == {"ana"}  # bo was left out of the base run
    assert rehearsal_beside(tmp_path / "elsewhere.pt").files == []


def test_the_curve_teaches_from_seen_people_and_evaluates_the_one_left_out(base, tmp_path):
    people = [takes_of(["idle", "wave", "stop"], subject=p) for p in ("ana", "bo", "cy")]
    data = people[0].merge(people[1]).merge(people[2])
    save_checkpoint(base, tmp_path / "fold_bo" / "last.pt")
    section = {"train": [], "exclude_subjects": ["bo"]}
    (tmp_path / "fold_bo" / "config.yaml").write_text(yaml.safe_dump({"data": section}))
    settings = TeachSettings(views=1, rehearsal_views=1, steps=5, batch_size=8)
    plan = CurvePlan(["stop"], [1, 2, 3], [1, 2], draws=2, settings=settings, distance_threshold=1.0)
    runs = run_curve([tmp_path / "fold_bo" / "last.pt"], data, plan)
    assert {r.evaluated for r in runs} == {"bo"}  # only the person the base never saw
    assert {r.teachers for r in runs} == {"ana", "cy", "ana+cy"}
    assert {(r.teachers, r.takes) for r in runs} >= {("ana", 1), ("ana", 2), ("ana+cy", 2)}
    assert all(r.takes <= 2 * r.teachers.count("+") + 2 for r in runs)  # 2 takes per person at most
    assert all(0.0 <= r.old_as_new <= 1.0 - r.old_taught + 1e-6 for r in runs)  # taken for new: wrong
    shares = ("new_unfamiliar_base", "new_unfamiliar", "old_unfamiliar_base", "old_unfamiliar")
    assert all(0.0 <= getattr(r, name) <= 1.0 for r in runs for name in shares)
    # with the distance rule a window is right only if it is also near: never more than without it
    assert all(r.new_top1 - r.new_unfamiliar - 1e-6 <= r.new_top1_distance <= r.new_top1 for r in runs)
    table = write_curve(tmp_path / "curve", runs, plan, {"base": "fold_bo"})
    assert table.startswith("| teachers | takes per gesture |")
    assert "not measured" not in table
    assert {"runs.csv", "curve.json", "curve.md"} <= {p.name for p in (tmp_path / "curve").iterdir()}


def test_a_curve_plan_naming_an_unknown_gesture_or_person_says_which():
    data = takes_of(["idle", "stop"], subject="ana").merge(takes_of(["idle"], subject="bo"))
    with pytest.raises(ValueError, match="the data has no takes of nosuch"):
        check_plan(data, CurvePlan(["stop", "nosuch"], takes=[1]))
    with pytest.raises(ValueError, match="--pool names S9, bo, who have no takes of stop in the data"):
        check_plan(data, CurvePlan(["stop"], takes=[1], pool=["ana", "S9", "bo"]))
    with pytest.raises(ValueError, match="--teachers 2 needs that many people in the pool, which has 1"):
        check_plan(data, CurvePlan(["stop"], takes=[1], teachers=[1, 2]))
    check_plan(data, CurvePlan(["stop"], takes=[1], teachers=[1], pool=["ana"]))
    with pytest.raises(
        ValueError, match="--takes 3 .* fits no value of --teachers: 1 teacher.s. give 1 to 2"
    ):
        check_plan(data, CurvePlan(["stop"], takes=[3, 10**12], teachers=[1]))
    two = data.merge(takes_of(["stop"], subject="cy"))
    check_plan(two, CurvePlan(["stop"], takes=[2], teachers=[2]))  # one take from each
    with pytest.raises(
        ValueError, match=r"--teachers 2 needs that many people besides those a base left out \(cy\)"
    ):
        check_plan(two, CurvePlan(["stop"], takes=[2], teachers=[2]), left_out=[["bo"], ["cy"]])


@pytest.mark.parametrize(
    ("new", "pool", "message"),
    [
        ([], [], "--new names no gesture"),
        (["stop", "stop"], [], "--new names stop more than once"),
        (["stop"], ["ana", "ana"], "--pool names ana more than once"),
    ],
)
def test_a_curve_plan_naming_nothing_or_a_name_twice_says_so(new, pool, message):
    data = takes_of(["idle", "stop"], subject="ana").merge(takes_of(["idle"], subject="bo"))
    with pytest.raises(ValueError, match=message):
        check_plan(data, CurvePlan(new, takes=[1], teachers=[1], pool=pool))


@pytest.mark.parametrize(
    ("takes", "teachers", "message"),
    [
        ([1, 1], [1], "--takes names 1 more than once"),
        ([1, 2], [1, 1], "--teachers names 1 more than once"),
    ],
)
def test_a_curve_plan_giving_a_number_twice_says_so(takes, teachers, message):
    """The same point twice would repeat its fits and write its rows twice into runs.csv."""
    data = takes_of(["idle", "stop"], subject="ana")
    with pytest.raises(ValueError, match=message):
        check_plan(data, CurvePlan(["stop"], takes=takes, teachers=teachers))


def many_people(takes: dict[str, int]) -> SkeletonDataset:
    """One old-class sample and ``takes[person]`` takes of stop per person."""
    parts = [
        takes_of(["idle"], 1, person).merge(takes_of(["stop"], n, person)) for person, n in takes.items()
    ]
    data = parts[0]
    for part in parts[1:]:
        data = data.merge(part)
    return data


def test_takes_count_over_all_the_teachers_of_a_point():
    """--takes is per gesture in total, split over the group, as draw_takes draws them: ten people
    with one take each give ten, one take cannot be split over ten people, and a value no group
    can give is refused before any fit rather than left out of the table."""
    nineteen = many_people({f"p{k:02d}": 1 for k in range(19)})
    check_plan(nineteen, CurvePlan(["stop"], takes=[10], teachers=[10]))
    with pytest.raises(
        ValueError, match="--takes 1 .*fits no value of --teachers: 10 teacher.s. give 10 to 10 takes"
    ):
        check_plan(nineteen, CurvePlan(["stop"], takes=[1], teachers=[10]))
    two = many_people({"ana": 2, "bo": 2})
    with pytest.raises(ValueError, match="--takes 99 .*1 teacher.s. give 1 to 2 .*2 teacher.s. give 2 to 4"):
        check_plan(two, CurvePlan(["stop"], takes=[1, 99], teachers=[1, 2]))
    with pytest.raises(ValueError, match="--teachers 2 fits no value of --takes 1"):
        check_plan(two, CurvePlan(["stop"], takes=[1], teachers=[1, 2]))
    plan = CurvePlan(["stop"], takes=[1, 2, 3, 4], teachers=[1, 2])
    check_plan(two, plan)
    assert impossible_points(two, plan) == [(1, 3), (1, 4), (2, 1)]


def test_the_points_are_exactly_the_groups_draw_takes_can_draw_from():
    have = {"ana": 3, "bo": 1, "cy": 2, "di": 0}
    data = many_people({p: n for p, n in have.items() if n}).merge(takes_of(["idle"], 1, "di"))
    plan = CurvePlan(["stop"], takes=list(range(1, 8)), teachers=[1, 2, 3], pool=["cy", "ana", "bo"])
    classes = ["idle", "stop"]
    labels = np.array(classes)[data.labels]
    new = labels == "stop"
    cached = SimpleNamespace(
        new_eval=SimpleNamespace(labels=torch.tensor(data.labels[new])),
        new_subjects=data.subject_names()[new],
    )
    points = set(plan_points(data, plan))
    for n, takes in itertools.product(plan.teachers, plan.takes):
        for group in itertools.combinations(plan.pool, n):
            drawn = draw_takes(cached, classes, ["stop"], list(group), takes, np.random.default_rng(0))
            assert ((takes, group) in points) == (drawn is not None and takes >= n), (takes, group)


def test_teacher_groups_are_all_of_them_or_a_seeded_sample_of_at_most_the_limit():
    six = [f"S{k}" for k in range(1, 7)]
    assert teacher_groups(six, 2, 50, 0) == list(itertools.combinations(six, 2))  # 15: every group
    twenty = [f"p{k:02d}" for k in range(20)]
    groups = teacher_groups(twenty, 10, 50, 0)  # of 184,756
    assert len(groups) == len(set(groups)) == 50
    assert all(len(g) == 10 and list(g) == sorted(g) for g in groups)  # in pool order, as draws expect
    assert groups == teacher_groups(twenty, 10, 50, 0) != teacher_groups(twenty, 10, 50, 1)


def test_the_curve_fits_at_most_the_plan_s_groups(base, tmp_path, monkeypatch):
    people = [takes_of(["idle", "wave", "stop"], subject=p) for p in ("ana", "bo", "cy", "di")]
    data = people[0].merge(people[1]).merge(people[2]).merge(people[3])
    save_checkpoint(base, tmp_path / "fold_bo" / "last.pt")
    (tmp_path / "fold_bo" / "config.yaml").write_text(yaml.safe_dump({"data": {"exclude_subjects": ["bo"]}}))
    fitted = []
    monkeypatch.setattr(teach_curve, "runs_for_group", lambda *args: fitted.append(args[5]) or [])
    settings = TeachSettings(views=1, rehearsal_views=1, batch_size=8)
    plan = CurvePlan(["stop"], takes=[2], teachers=[2], groups=2, settings=settings)
    assert run_curve([tmp_path / "fold_bo" / "last.pt"], data, plan) == []
    assert len(fitted) == 2  # of the 6 groups of 2 among 4 people
    assert fitted == [list(g) for g in teacher_groups(["ana", "bo", "cy", "di"], 2, 2, settings.seed)]


def test_a_reference_trained_with_every_gesture_is_scored_on_the_people_it_left_out(base, tmp_path):
    data = takes_of(["idle", "wave", "stop"], subject="ana").merge(takes_of(["idle", "stop"], subject="bo"))
    every = teach(base, takes_of(["stop"]), takes_of(["idle", "wave"]), FAST).checkpoint
    for name, left_out in (("all_bo", ["bo"]), ("all", [])):
        save_checkpoint(every, tmp_path / name / "last.pt")
        (tmp_path / name / "config.yaml").write_text(yaml.safe_dump({"data": {"exclude_subjects": left_out}}))
    reference = score_reference(tmp_path / "all_bo" / "last.pt", data, ["stop"])
    assert (reference.reference, reference.evaluated) == ("all_bo", "bo")
    assert 0.0 <= reference.old_as_new <= 1.0 - reference.old_top1 + 1e-6
    assert all(0.0 <= getattr(reference, name) <= 1.0 for name in REFERENCE_SCORES)
    with pytest.raises(ValueError, match="it left out nobody"):
        score_reference(tmp_path / "all" / "last.pt", data, ["stop"])


def test_a_curve_with_a_fine_tune_scores_the_fine_tuned_model(base, tmp_path):
    people = [takes_of(["idle", "wave", "stop"], subject=p) for p in ("ana", "bo")]
    save_checkpoint(base, tmp_path / "fold_bo" / "last.pt")
    section = {"train": [], "exclude_subjects": ["bo"]}
    (tmp_path / "fold_bo" / "config.yaml").write_text(yaml.safe_dump({"data": section}))
    settings = TeachSettings(
        views=1, rehearsal_views=1, steps=5, batch_size=8, finetune_epochs=1, finetune_part="tails",
        finetune_distill=1.0,
    )  # fmt: skip
    plan = CurvePlan(["stop"], takes=[1], teachers=[1], draws=1, settings=settings, distance_threshold=1.0)
    heads_only = CurvePlan(
        ["stop"], takes=[1], teachers=[1], draws=1, settings=replace(settings, finetune_epochs=0)
    )
    data = people[0].merge(people[1])
    [tuned] = run_curve([tmp_path / "fold_bo" / "last.pt"], data, plan)
    [plain] = run_curve([tmp_path / "fold_bo" / "last.pt"], data, heads_only)
    assert (tuned.teachers, tuned.evaluated) == ("ana", "bo")
    assert tuned.old_base == plain.old_base  # the base model is scored as it is
    assert all(0.0 <= getattr(tuned, name) <= 1.0 for name in SCORES)  # the distance's shares too
    assert "| not measured |" not in write_curve(tmp_path / "curve", [tuned], plan, {})
    assert all(math.isnan(getattr(plain, name)) for name in SCORES if "unfamiliar" in name)  # no threshold


def test_a_curve_without_rehearsal_data_does_not_fine_tune_as_teach_train_does_not(
    base, tmp_path, monkeypatch
):
    monkeypatch.setattr("bharnet_ros.training.teach_curve.finetune", pytest.fail)
    data = takes_of(["stop"], subject="ana").merge(takes_of(["idle", "wave", "stop"], subject="bo"))
    save_checkpoint(base, tmp_path / "fold_bo" / "last.pt")  # ana shows no old class: nothing to rehearse
    section = {"train": [], "exclude_subjects": ["bo"]}
    (tmp_path / "fold_bo" / "config.yaml").write_text(yaml.safe_dump({"data": section}))
    settings = TeachSettings(views=1, steps=5, batch_size=8)
    plans = [
        CurvePlan(["stop"], takes=[1], teachers=[1], draws=1, settings=replace(settings, finetune_epochs=e))
        for e in (0, 1)
    ]  # fmt: skip
    [plain], [tuned] = (run_curve([tmp_path / "fold_bo" / "last.pt"], data, plan) for plan in plans)
    assert all(getattr(tuned, n) == getattr(plain, n) for n in SCORES if not math.isnan(getattr(plain, n)))


def test_the_curve_scores_mirrored_features_as_the_mirroring_model_does(base):
    """Heads on the features of a window and of its mirror image give what the exported model with
    test-time mirroring gives, so a mirrored curve measures the product."""
    data = takes_of(["idle", "wave"])
    classes = base.class_names
    model = prepare_model(base)
    features = extract_features(model, data, classes, base.preprocess_config, mirrored=True)
    logits = base_heads(model).mirrored_for(base, classes).logits(features)
    mirroring = prepare_model(base.with_test_mirror(mirror_label_map(classes).tolist()))
    feeder = SkeletonFeeder(data, base.preprocess_config, train=False)
    body, hand, mask, _ = next(iter(DataLoader(feeder, batch_size=len(data))))
    with torch.no_grad():
        expected = mirroring(body, hand, mask)
    for branch, value in logits.items():
        torch.testing.assert_close(value, expected[branch], atol=1e-4, rtol=1e-4)
    assert features.select(np.array([1])).mirrored["body_expert"].shape[0] == 1


def test_a_mirrored_curve_records_it_and_scores_in_range(base, tmp_path):
    people = [takes_of(["idle", "wave", "stop"], subject=p) for p in ("ana", "bo")]
    save_checkpoint(base, tmp_path / "fold_bo" / "last.pt")
    (tmp_path / "fold_bo" / "config.yaml").write_text(yaml.safe_dump({"data": {"exclude_subjects": ["bo"]}}))
    settings = TeachSettings(views=1, rehearsal_views=1, steps=5, batch_size=8)
    plan = CurvePlan(["stop"], [1], [1], draws=1, settings=settings, test_mirror=True, distance_threshold=1.0)
    [run] = run_curve([tmp_path / "fold_bo" / "last.pt"], people[0].merge(people[1]), plan)
    assert all(0.0 <= getattr(run, name) <= 1.0 for name in SCORES)
    write_curve(tmp_path / "curve", [run], plan, {"base": "fold_bo"})
    assert json.loads((tmp_path / "curve" / "curve.json").read_text())["plan"]["test_mirror"] is True


def test_a_taught_model_keeps_the_mirror_twins_its_base_was_trained_with():
    """A base trained with augment.mirror_never: [left, right] records -1 for both; teaching once
    paired them again by their names, and averaged left with the mirrored right."""
    from types import SimpleNamespace

    from bharnet_ros.training.feeder import AugmentConfig, mirror_label_map
    from bharnet_ros.training.teach import mirror_classes, mirrored_augment

    old = ["left", "right", "wave"]
    never = mirror_label_map(old, never=("left", "right")).tolist()
    assert never == [-1, -1, 2]
    base = SimpleNamespace(class_names=old, model_config={"test_mirror": never})
    classes = [*old, "point_left", "point_right", "stop"]
    assert mirror_classes(base, classes) == [-1, -1, 2, 4, 3, 5]
    augment = mirrored_augment(AugmentConfig(mirror=0.5), base, classes)
    assert mirror_label_map(classes, augment.mirror_pairs, augment.mirror_never).tolist() == [
        -1,
        -1,
        2,
        4,
        3,
        5,
    ]
    auto = SimpleNamespace(class_names=old, model_config={"test_mirror": mirror_label_map(old).tolist()})
    assert mirror_classes(auto, classes) == mirror_label_map(classes).tolist()  # by names, as before
    assert mirrored_augment(AugmentConfig(mirror=0.5), auto, classes) == AugmentConfig(mirror=0.5)
    crossed = SimpleNamespace(class_names=["a", "b"], model_config={"test_mirror": [1, 0]})  # explicit pairs
    assert mirror_classes(crossed, ["b", "c", "a"]) == [2, 1, 0]


def test_people_kept_for_validation_count_as_unseen():
    from bharnet_ros.training.data import training_data_in

    data = training_data_in({"data": {"exclude_subjects": ["S4"], "val_subjects": ["S5", "S4"]}})
    assert data.left_out == ["S4"]
    assert data.unseen == ["S4", "S5"]
