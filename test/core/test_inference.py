"""OnnxClassifier: provider verification, clear errors for bad files, predictions from windows."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from bharnet_ros.core.inference import InferenceError, OnnxClassifier, provider_names
from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.core.window import WindowBuffer
from bharnet_ros.model.bharnet import build_model
from bharnet_ros.model.config import load_model_config
from bharnet_ros.model.export import calibrate_batchnorm, demo_sequence, export_onnx

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "model"
FRAMES = 16
LABELS = ["wave", "point", "stop", "come", "none"]
TINY = {
    "num_classes": 5,
    "backbone": {"base_channels": 8, "stages": [[1, 1], [2, 2]]},
    "input": {"frames": FRAMES, "num_persons": 1},
}
PREPROCESS = PreprocessConfig(frames=FRAMES, num_persons=1)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """A tiny score-fusion model exported with our metadata."""
    torch.manual_seed(0)
    model = build_model(load_model_config(CONFIG_DIR / "score_fusion.yaml", TINY))
    batch = {"body": torch.randn(4, 3, FRAMES, 25, 1), "hand": torch.randn(4, 3, FRAMES, 25, 2)}
    calibrate_batchnorm(model, [batch])
    path = tmp_path_factory.mktemp("onnx") / "score_fusion.onnx"
    export_onnx(model.eval(), path, LABELS, PREPROCESS)
    return path


def test_requesting_cuda_on_a_cpu_build_falls_back_and_says_so(model_path, caplog):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime build offers CUDA")
    with caplog.at_level(logging.INFO, logger="bharnet_ros.core.inference"):
        classifier = OnnxClassifier(model_path, providers=("cuda", "cpu"))
    assert classifier.requested == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert classifier.providers == ["CPUExecutionProvider"]
    assert "could not use ['CUDAExecutionProvider']" in caplog.text


def test_require_refuses_the_fallback(model_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime build offers CUDA")
    with pytest.raises(InferenceError, match="could not use"):
        OnnxClassifier(model_path, providers="cuda", require=True)


def test_auto_and_cpu_run_on_cpu(model_path):
    classifier = OnnxClassifier(model_path, providers="cpu", require=True, threads=1)
    assert classifier.providers == ["CPUExecutionProvider"]
    assert "CPUExecutionProvider" in OnnxClassifier(model_path).providers


def test_unknown_provider_name_is_an_error():
    with pytest.raises(InferenceError, match="unknown execution provider"):
        provider_names(["gpu"])


def test_missing_file_non_onnx_file_and_foreign_model(model_path, tmp_path):
    with pytest.raises(InferenceError, match="does not exist"):
        OnnxClassifier(tmp_path / "nothing.onnx")
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    with pytest.raises(InferenceError, match="not a loadable ONNX model"):
        OnnxClassifier(text)
    foreign = onnx.load(str(model_path))
    del foreign.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(foreign, str(bare))
    with pytest.raises(InferenceError, match="no bharnet metadata"):
        OnnxClassifier(bare)


def test_metadata_is_read(model_path):
    classifier = OnnxClassifier(model_path, providers="cpu")
    assert classifier.labels == LABELS
    assert classifier.preprocess == PREPROCESS
    assert classifier.input_names == ["body", "hand"]
    assert classifier.input_shapes == {"body": [1, 3, FRAMES, 25, 1], "hand": [1, 3, FRAMES, 25, 2]}
    assert classifier.output_names == ["logits", "body_logits", "hand_logits"]
    assert classifier.variant == "score_fusion"


def test_predict_gives_top_k_and_expert_scores(model_path):
    classifier = OnnxClassifier(model_path, providers="cpu", top_k=3)
    rng = np.random.default_rng(0)
    body = rng.standard_normal((3, FRAMES, 25, 1)).astype(np.float32)
    hand = rng.standard_normal((3, FRAMES, 25, 2)).astype(np.float32)
    prediction = classifier.predict(body, hand, np.ones(FRAMES, np.float32))
    assert prediction.probabilities.shape == (5,)
    assert prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert len(prediction.top_labels) == len(prediction.top_scores) == 3
    assert prediction.top_scores == sorted(prediction.top_scores, reverse=True)
    assert prediction.label == LABELS[int(np.argmax(prediction.probabilities))]
    assert prediction.score == pytest.approx(float(prediction.probabilities.max()))
    assert set(prediction.expert_scores) == {"body", "hand"}
    batched = classifier.predict(body[None], hand[None])
    np.testing.assert_allclose(batched.probabilities, prediction.probabilities, rtol=1e-6)
    with pytest.raises(ValueError, match="expects"):
        classifier.predict(body[:, :8], hand)


def test_predict_window_uses_the_stored_preprocessing(model_path):
    buffer = WindowBuffer(seconds=1.0)
    for t in range(24):
        buffer.push(demo_sequence(24).frame(t))
    window = buffer.window(length=FRAMES)
    classifier = OnnxClassifier(model_path, providers="cpu")
    prediction = classifier.predict_window(window, image_size=(640, 480))
    assert prediction.top_labels[0] in LABELS
    assert np.isfinite(prediction.probabilities).all()


def with_metadata(source: Path, target: Path, **changes) -> Path:
    """A copy of the model whose bharnet metadata has ``changes`` (JSON values) applied."""
    import json

    proto = onnx.load(str(source))
    for entry in proto.metadata_props:
        key = entry.key.removeprefix("bharnet.")
        if key in changes:
            entry.value = json.dumps(changes[key])
    onnx.save(proto, str(target))
    return target


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"labels": ["a", "b", "c"]}, "shape \\(1, 5\\) for 3 labels"),
        ({"labels": {"0": "wave"}}, "labels must be a non-empty list"),
        ({"preprocess": {**PREPROCESS.to_dict(), "frames": 64}}, "64 frames in metadata"),
        ({"inputs": {"skeleton": [1, 3, 16, 25, 1], "hand": [1, 3, 16, 25, 2]}}, "graph inputs"),
        ({"inputs": {"body": [1, 3, 16, 25, 1]}}, "graph inputs"),
        ({"preprocess": {"frames": "many"}}, "preprocess is unusable"),
    ],
)
def test_metadata_that_disagrees_with_the_graph_is_refused_at_load(model_path, tmp_path, changes, message):
    broken = with_metadata(model_path, tmp_path / "broken.onnx", **changes)
    with pytest.raises(InferenceError, match=message):
        OnnxClassifier(broken, providers="cpu")


def test_temperature_in_the_metadata_softens_probabilities(model_path, tmp_path):
    body = np.random.default_rng(0).normal(size=(3, FRAMES, 25, 1)).astype(np.float32)
    hand = np.zeros((3, FRAMES, 25, 2), np.float32)
    plain = OnnxClassifier(model_path, providers="cpu").predict(body, hand)
    import onnx.helper

    proto = onnx.load(str(model_path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "bharnet.temperature", "4.0"
    onnx.save(proto, str(tmp_path / "warm.onnx"))
    warm = OnnxClassifier(tmp_path / "warm.onnx", providers="cpu").predict(body, hand)
    assert warm.top_labels[0] == plain.top_labels[0]
    assert warm.score < plain.score
    np.testing.assert_allclose(warm.logits, plain.logits, rtol=1e-6)
