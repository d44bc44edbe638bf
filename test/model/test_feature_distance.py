"""The feature distance: fitted on training features, carried by the model, exported to ONNX."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from bharnet_ros.core.inference import DISTANCE, InferenceError, OnnxClassifier
from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.model.bharnet import build_model, head_inputs
from bharnet_ros.model.export import (
    ExportError,
    ParityError,
    calibration_for,
    check_parity,
    export_onnx,
    output_names,
)
from bharnet_ros.model.feature_distance import (
    SCALE_QUANTILE,
    FeatureDistance,
    distance_branches,
    fit_feature_distance,
)

FRAMES = 16
SMALL = {
    "backbone": {"stages": [[1, 1], [2, 2]]},
    "expertized": {"split_block": 1},
    "input": {"frames": FRAMES, "num_persons": 1},
}
LABELS = [f"class{i}" for i in range(5)]


def clusters(per_class: int = 200, dim: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated Gaussian classes."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, dim) * 10.0
    labels = np.repeat(np.arange(3), per_class)
    return centres[labels] + rng.normal(size=(len(labels), dim)), labels


def test_training_windows_lie_within_one_unit_and_far_points_beyond():
    x, labels = clusters()
    distance = fit_feature_distance({"body": torch.as_tensor(x)}, torch.as_tensor(labels))
    inside = distance([torch.as_tensor(x, dtype=torch.float32)]).numpy()
    assert inside.shape == (len(x),)
    assert np.mean(inside <= 1.0) == pytest.approx(SCALE_QUANTILE, abs=0.01)
    far = distance([torch.full((1, 6), 30.0)])
    between = distance([torch.as_tensor(np.eye(1, 6) * 10.0, dtype=torch.float32)])  # a class mean
    assert float(far) > 10.0
    assert float(between) < 0.1


def test_the_distance_sums_over_branches_and_takes_the_nearest_class():
    x, labels = clusters()
    one = fit_feature_distance({"a": torch.as_tensor(x)}, torch.as_tensor(labels))
    two = fit_feature_distance({"a": torch.as_tensor(x), "b": torch.as_tensor(x)}, torch.as_tensor(labels))
    probe = torch.as_tensor(x[:5], dtype=torch.float32)
    # the same features twice: twice the squared distance, and twice the scale
    assert torch.allclose(two([probe, probe]), one([probe]), rtol=1e-4)
    assert two.branches == ("a", "b")


@pytest.mark.parametrize(
    ("means", "precision", "scale", "message"),
    [
        (torch.zeros(1, 3, 4), torch.zeros(1, 5, 5), 1.0, "precision"),
        (torch.zeros(1, 0, 4), torch.zeros(1, 4, 4), 1.0, "branches"),
        (torch.zeros(1, 3, 4), torch.zeros(1, 4, 4), 0.0, "scale"),
        (torch.zeros(1, 3, 4), torch.zeros(1, 4, 4), float("nan"), "scale"),
    ],
)
def test_inconsistent_statistics_are_refused(means, precision, scale, message):
    with pytest.raises(ValueError, match=message):
        FeatureDistance(["body"], means, precision, scale)


def test_too_few_or_non_finite_features_are_refused():
    with pytest.raises(ValueError, match="two training windows"):
        fit_feature_distance({"a": torch.zeros(1, 3)}, torch.zeros(1))
    with pytest.raises(ValueError, match="finite"):
        fit_feature_distance({"a": torch.full((4, 3), float("nan"))}, torch.zeros(4))


def test_windows_without_spread_within_a_class_are_refused():
    """One window of each class leaves nothing to measure a spread by: the floored covariance put
    every other window some 1e24 units away."""
    with pytest.raises(ValueError, match="do not vary within any class"):
        fit_feature_distance({"a": torch.randn(3, 8)}, torch.arange(3))
    one_class_varies = fit_feature_distance({"a": torch.randn(4, 8)}, torch.tensor([0, 0, 1, 2]))
    assert one_class_varies(torch.randn(2, 8).unsqueeze(0)).max() < 1e6


def fitted(model, seed: int = 0) -> FeatureDistance:
    """A distance fitted on the model's own features of random windows."""
    generator = torch.Generator().manual_seed(seed)
    body = torch.randn(32, 3, FRAMES, 25, 1, generator=generator)
    hand = torch.randn(32, 3, FRAMES, 25, 2, generator=generator)
    branches = distance_branches(model.branches)
    with torch.no_grad(), head_inputs(model, branches) as features:
        model.forward_once(body, hand, torch.ones(32, FRAMES))
        captured = {name: features[name] for name in branches}
    return fit_feature_distance(captured, torch.arange(32) % 4)


@pytest.mark.parametrize("mirror", [False, True])
def test_a_model_with_a_distance_returns_one_per_window_unchanged_by_test_time_mirroring(tiny_config, mirror):
    config = tiny_config("bharnet_e", {**SMALL, "test_mirror": [1, 0, 2, 3, 4] if mirror else []})
    model = build_model(config).eval()
    assert distance_branches(model.branches) == ["body_expert", "hand_expert"]
    plain = model(torch.zeros(2, 3, FRAMES, 25, 1), torch.zeros(2, 3, FRAMES, 25, 2))
    assert DISTANCE not in plain
    model.feature_distance = fitted(model)
    body, hand = torch.randn(3, 3, FRAMES, 25, 1), torch.randn(3, 3, FRAMES, 25, 2)
    out = model(body, hand)
    assert out["distance"].shape == (3,)
    with torch.no_grad(), head_inputs(model, model.feature_distance.branches) as features:
        model.forward_once(body, hand)
        expected = model.feature_distance([features[b] for b in model.feature_distance.branches])
    assert torch.allclose(out["distance"], expected)
    assert torch.equal(out["fused"], model.scored(body, hand, None)["fused"])


def test_the_distance_is_no_weight_of_the_model_and_the_expert_only_model_shares_it(tiny_config):
    model = build_model(tiny_config("bharnet_e", SMALL)).eval()
    keys = set(model.state_dict())
    model.feature_distance = fitted(model)
    assert set(model.state_dict()) == keys  # a checkpoint saves the same tensors
    assert model.expert_only().feature_distance is model.feature_distance
    other = build_model(tiny_config("score_fusion", SMALL)).eval()
    assert distance_branches(other.branches) == ["body", "hand"]


@pytest.mark.parametrize("expert_only", [False, True])
def test_the_export_outputs_the_distance_with_parity_and_its_threshold(tiny_config, tmp_path, expert_only):
    model = build_model(tiny_config("bharnet_e", SMALL))
    model = (model.expert_only() if expert_only else model).eval()
    model.feature_distance = fitted(model)
    preprocess = PreprocessConfig(frames=FRAMES, num_persons=1)
    path = tmp_path / "model.onnx"
    calibration = {"temperature": 1.5, "none_threshold": 0.3, "distance_threshold": 2.5}
    metadata = export_onnx(model, path, LABELS, preprocess, calibration=calibration)
    assert output_names(model)[-1] == DISTANCE == metadata["bharnet.outputs"][-1]
    assert metadata["bharnet.distance_threshold"] == 2.5
    check_parity(model, path, preprocess)
    classifier = OnnxClassifier(path, providers="cpu")
    assert classifier.branches[:2] == ["body_expert", "hand_expert"]
    assert DISTANCE not in classifier.branches
    body, hand = np.zeros((3, FRAMES, 25, 1), np.float32), np.zeros((3, FRAMES, 25, 2), np.float32)
    assert np.isfinite(classifier.predict(body, hand).distance)


@pytest.mark.parametrize("mirror", [False, True])
def test_a_dynamic_batch_export_gives_one_distance_per_window(tiny_config, tmp_path, mirror):
    """The slice of the windows was traced as [:1]: at batch 3, one distance, the first window's."""
    import onnxruntime as ort

    config = tiny_config("bharnet_e", {**SMALL, "test_mirror": [1, 0, 2, 3, 4] if mirror else []})
    model = build_model(config).eval()
    model.feature_distance = fitted(model)
    path = tmp_path / "model.onnx"
    export_onnx(model, path, LABELS, PreprocessConfig(frames=FRAMES, num_persons=1), dynamic_batch=True)
    body = np.random.default_rng(0).normal(size=(3, 3, FRAMES, 25, 1)).astype(np.float32)
    hand = np.random.default_rng(1).normal(size=(3, 3, FRAMES, 25, 2)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, {"body": body, "hand": hand}), strict=True))
    with torch.no_grad():
        expected = model(torch.from_numpy(body), torch.from_numpy(hand))["distance"].numpy()
    assert got[DISTANCE].shape == (3,)
    assert np.allclose(got[DISTANCE], expected, rtol=1e-4)


def test_a_threshold_without_a_distance_output_is_refused(tiny_config, tmp_path):
    model = build_model(tiny_config("bharnet_e", SMALL)).expert_only().eval()
    path = tmp_path / "model.onnx"
    metadata = export_onnx(model, path, LABELS, PreprocessConfig(frames=FRAMES, num_persons=1))
    assert "bharnet.distance_threshold" not in metadata  # no distance: nothing to calibrate
    model.feature_distance = fitted(model)
    with_distance = tmp_path / "distance.onnx"
    export_onnx(model, with_distance, LABELS, PreprocessConfig(frames=FRAMES, num_persons=1))
    for source, key, value, message in [
        (path, "bharnet.distance_threshold", 2.0, "no 'distance' output"),
        (with_distance, "bharnet.distance_threshold", -1.0, "distance_threshold -1.0 must be"),
        (with_distance, "bharnet.distance_threshold", "NaN", "distance_threshold"),
    ]:
        proto = onnx.load(str(source))
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
        broken = tmp_path / "broken.onnx"
        onnx.save(proto, str(broken))
        with pytest.raises(InferenceError, match=message):
            OnnxClassifier(broken, providers="cpu")


def test_a_calibration_without_a_distance_threshold_still_exports(tiny_config, tmp_path):
    model = build_model(tiny_config("bharnet_e", SMALL)).eval()
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"fused": {"temperature": 1.5, "none_threshold": 0.3}}))
    assert calibration_for(path, model) == {"temperature": 1.5, "none_threshold": 0.3}
    path.write_text(
        json.dumps({"fused": {"temperature": 1.5, "none_threshold": 0.3, "distance_threshold": 0}})
    )
    with pytest.raises(ExportError, match="distance_threshold 0 is out of range"):
        calibration_for(path, model)


def test_parity_holds_the_logits_to_their_own_scale_and_the_distance_to_its_own(tiny_config, tmp_path):
    model = build_model(tiny_config("bharnet_e", SMALL)).expert_only().eval()
    model.feature_distance = fitted(model)
    preprocess = PreprocessConfig(frames=FRAMES, num_persons=1)
    path = tmp_path / "model.onnx"
    export_onnx(model, path, LABELS, preprocess)
    forward = type(model).forward.__get__(model)
    for name, message in [("fused", "in logits: "), (DISTANCE, f"in {DISTANCE}: ")]:

        def shifted(*args, name=name, **kwargs):
            out = dict(forward(*args, **kwargs))
            out[name] = out[name] * 1.01  # 1 %: far beyond 1e-4 of either scale
            return out

        model.forward = shifted
        with pytest.raises(ParityError, match=message):
            check_parity(model, path, preprocess)
