"""Test-time mirroring: the mirror of model tensors, the averaged prediction and its export."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from bharnet_ros.core.preprocess import PreprocessConfig, preprocess_arrays
from bharnet_ros.model.bharnet import build_model
from bharnet_ros.model.export import check_parity, export_onnx
from bharnet_ros.model.mirror import mirror_body, mirror_hand
from bharnet_ros.training import synth
from bharnet_ros.training.feeder import mirror_arrays

# Five classes: 1 and 2 are a lateral pair, 4 has no twin in the vocabulary.
CLASS_MAP = [0, 2, 1, 3, -1]
SMALL = {"backbone": {"stages": [[1, 1], [2, 2]]}, "expertized": {"split_block": 1}}


@pytest.mark.parametrize(
    "settings",
    [
        {"hand_frame": "wrist", "modality": "joint"},
        {"hand_frame": "body", "modality": "bone"},
        {"hand_frame": "body", "modality": "joint_motion", "scale": "torso"},
    ],
)
def test_mirroring_model_tensors_equals_mirroring_the_frames(settings):
    """The model mirrors preprocessed tensors; that must be what mirroring the camera frames gives."""
    sequence = synth.generate_sample("wave", np.random.default_rng(3)).sequence
    body, hands, present = sequence.body, sequence.hands, sequence.hand_present
    assert present.any()
    assert (sequence.layout, sequence.space) == ("mediapipe33", "image")
    config = PreprocessConfig(body_layout="ntu25", frames=len(body), num_persons=1, **settings)
    size = (640, 480)
    plain = preprocess_arrays(body[None], hands, present, "mediapipe33", "image", config, size)
    raw = mirror_arrays(body[None], hands, present, "mediapipe33", "image")
    mirrored = preprocess_arrays(*raw, "mediapipe33", "image", config, size)
    as_model = mirror_body(torch.from_numpy(plain.body[None]), "ntu25")[0].numpy()
    np.testing.assert_allclose(as_model, mirrored.body, atol=1e-5)
    np.testing.assert_allclose(
        mirror_hand(torch.from_numpy(plain.hand[None]))[0].numpy(), mirrored.hand, atol=1e-5
    )
    np.testing.assert_array_equal(plain.hand_mask, mirrored.hand_mask)


def _model(tiny_config, name="bharnet_e", class_map=CLASS_MAP):
    return build_model(tiny_config(name, {**SMALL, "test_mirror": class_map})).eval()


@pytest.mark.parametrize("name", ["bharnet_e", "bharnet_e_expert_only", "body_expert", "hand_expert"])
def test_a_window_and_its_mirror_image_get_mirrored_predictions(name, tiny_config, inputs):
    """Averaged over both images, a window and its mirror image score the same, lateral classes
    swapped; a class without a twin is scored on the window alone."""
    model = _model(tiny_config, name)
    mirrored = {
        "body": mirror_body(inputs["body"], "ntu25"),
        "hand": mirror_hand(inputs["hand"]),
        "hand_mask": inputs["hand_mask"],
    }
    with torch.no_grad():
        out, out_mirrored, single = model(**inputs), model(**mirrored), model.forward_once(**inputs)
    for branch in (*model.branches, "fused"):
        torch.testing.assert_close(out[branch][:, :4], out_mirrored[branch][:, [0, 2, 1, 3]])
        torch.testing.assert_close(out[branch][:, 4], single[branch][:, 4])
    assert not torch.allclose(out["fused"], single["fused"])


def test_training_and_an_empty_map_use_the_single_pass(tiny_config, inputs):
    model = _model(tiny_config).train()
    torch.manual_seed(1)
    trained = model(**inputs)["fused"]
    torch.manual_seed(1)
    torch.testing.assert_close(trained, model.forward_once(**inputs)["fused"])
    plain = build_model(tiny_config("bharnet_e", SMALL)).eval()
    plain.load_state_dict(model.state_dict())  # the map adds no weights
    with torch.no_grad():
        torch.testing.assert_close(plain(**inputs)["fused"], model.eval().forward_once(**inputs)["fused"])


@pytest.mark.parametrize(
    "bad",
    [
        [0, 1, 2],
        [0, 1, 2, 3, 5],
        [0, 1, 2, 3, -2],
        [0, 1.5, 2, 3, 4],
        ["a", 1, 2, 3, 4],
        [True, 1, 2, 3, 4],
        "01234",
    ],
)
def test_a_class_map_that_does_not_fit_the_classes_is_refused(bad, tiny_config):
    with pytest.raises(ValueError, match="test_mirror"):
        tiny_config("bharnet_e", {"test_mirror": bad}).validate()


@pytest.mark.parametrize("dynamic", [False, True])
def test_the_export_holds_the_mirroring_with_parity(dynamic, tiny_config, tmp_path):
    model = _model(tiny_config, "bharnet_e", CLASS_MAP).expert_only().eval()
    preprocess = PreprocessConfig(frames=model.config.input.frames, num_persons=2)
    path = tmp_path / "mirrored.onnx"
    export_onnx(model, path, [f"c{i}" for i in range(5)], preprocess, dynamic_batch=dynamic)
    assert max(check_parity(model, path, preprocess).values()) <= 1e-4
    stored = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    assert stored["bharnet.test_mirror"] is True
