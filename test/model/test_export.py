"""ONNX export of every variant at tiny size: parity with PyTorch, graph contents, metadata."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from bharnet_ros.core.onnx_graph import operators
from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.model.batchnorm import calibrate_batchnorm
from bharnet_ros.model.bharnet import build_model
from bharnet_ros.model.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from bharnet_ros.model.config import VARIANTS, deep_merge
from bharnet_ros.model.export import (
    METADATA_KEYS,
    ExportError,
    ExportWrapper,
    calibration_for,
    check_parity,
    export_onnx,
    output_names,
    prepare_model,
    random_inputs,
    realistic_inputs,
    torch_outputs,
    variant_name,
)

FRAMES = 16
# Two blocks (BHaRNet-E splits after the first), one body as in the live node.
SMALL = {
    "backbone": {"stages": [[1, 1], [2, 2]]},
    "expertized": {"split_block": 1},
    "input": {"frames": FRAMES, "num_persons": 1},
}
PREPROCESS = PreprocessConfig(frames=FRAMES, num_persons=1)
LABELS = [f"class{i}" for i in range(5)]
CONFIG_NAMES = ["body_expert", "hand_expert", "score_fusion", "score_fusion_noisy_or", "bharnet_p"]
CONFIG_NAMES += ["bharnet_e", "bharnet_e_noisy_or", "bharnet_e_expert_only"]
PARITY_TOLERANCE = 1e-4  # the documented fp32 parity (docs/model.md, "The exported file")


def op_types(path) -> set[str]:
    """Every operator type in the exported graph, nested subgraphs included."""
    return {op for _, op in operators(path)}


def calibrated(model):
    """Trained-like BatchNorm statistics, so eval-mode logits have realistic magnitudes."""
    batch = {
        "body": torch.randn(4, 3, FRAMES, 25, 1),
        "hand": torch.randn(4, 3, FRAMES, 25, 2),
        "hand_mask": torch.ones(4, FRAMES),
    }
    calibrate_batchnorm(model, [batch])
    return model.eval()


def test_every_variant_is_covered():
    assert {name.removesuffix("_noisy_or") for name in CONFIG_NAMES} == set(VARIANTS)


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_export_matches_pytorch_without_einsum_or_if(name, tiny_config, tmp_path):
    model = calibrated(build_model(tiny_config(name, SMALL)))
    path = tmp_path / f"{name}.onnx"
    metadata = export_onnx(model, path, LABELS, PREPROCESS)
    diffs = check_parity(model, path, PREPROCESS)
    assert max(diffs.values()) <= 1e-4
    assert set(diffs) == {"random", "realistic"}
    assert not op_types(path) & {"Einsum", "If", "Loop"}
    stored = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    assert set(stored) == set(METADATA_KEYS)
    assert stored == json.loads(json.dumps(metadata))
    assert stored["bharnet.labels"] == LABELS
    assert stored["bharnet.variant"] == name.removesuffix("_noisy_or")
    assert stored["bharnet.precision"] == "fp32"
    assert {"Conv", "MatMul"} <= op_types(path)
    assert onnx.load(str(path)).producer_name == "bharnet_ros"
    assert PreprocessConfig.from_dict(stored["bharnet.preprocess"]) == PREPROCESS
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shapes = {i.name: i.shape for i in session.get_inputs()}
    assert shapes == stored["bharnet.inputs"]
    assert [o.name for o in session.get_outputs()] == stored["bharnet.outputs"]
    assert ("hand_mask" in shapes) == name.endswith("noisy_or")
    two_streams = {} if name.endswith("_expert") else {"body": "body", "hand": "hand"}
    experts = {"body": "body_expert", "hand": "hand_expert"} if name.startswith("bharnet_e") else two_streams
    assert stored["bharnet.experts"] == experts


@pytest.mark.parametrize("name", ["body_expert", "bharnet_e"])
def test_velocity_channels_export_with_parity_and_the_same_inputs(name, tiny_config, tmp_path):
    model = calibrated(build_model(tiny_config(name, deep_merge(SMALL, {"input": {"motion": True}}))))
    path = tmp_path / "motion.onnx"
    metadata = export_onnx(model, path, LABELS, PREPROCESS)
    assert max(check_parity(model, path, PREPROCESS).values()) <= PARITY_TOLERANCE
    assert metadata["bharnet.inputs"]["body"][1] == 3  # positions in, velocities inside the graph


def test_realistic_inputs_have_absent_data_as_zeros(tiny_config):
    model = build_model(tiny_config("score_fusion", SMALL))
    inputs = realistic_inputs(model, PREPROCESS)
    assert inputs["body"].shape == (1, 3, FRAMES, 25, 1)
    assert not inputs["hand"][..., 21:, :].any()
    assert inputs["hand"][..., 0].any()
    assert inputs["hand"][..., 1].any()
    assert np.isfinite(inputs["body"]).all()


@pytest.mark.parametrize("space", ["world", "image"])
def test_a_model_of_either_space_exports_with_parity(space, tiny_config, tmp_path):
    """The parity check's wave was image-space: every model of world-space skeletons (NTU,
    N-UCLA, PKU-MMD imports) failed to export with a traceback."""
    model = calibrated(build_model(tiny_config("body_expert", SMALL)))
    preprocess = dataclasses.replace(PREPROCESS, space=space)
    path = tmp_path / f"{space}.onnx"
    export_onnx(model, path, LABELS, preprocess)
    assert max(check_parity(model, path, preprocess).values()) <= PARITY_TOLERANCE


def test_expert_only_export_of_a_bharnet_e_checkpoint_sums_the_experts(tiny_config, tmp_path):
    full = calibrated(build_model(tiny_config("bharnet_e", SMALL)))
    path = save_checkpoint(make_checkpoint(full, LABELS, PREPROCESS), tmp_path / "e.pt")
    checkpoint = load_checkpoint(path)
    model = prepare_model(checkpoint, expert_only=True)
    onnx_path = tmp_path / "expert.onnx"
    metadata = export_onnx(model, onnx_path, checkpoint.class_names, PREPROCESS)
    assert metadata["bharnet.variant"] == "bharnet_e_expert_only"
    assert metadata["bharnet.outputs"] == ["logits", "body_expert_logits", "hand_expert_logits"]
    inputs = random_inputs(model, seed=3)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    logits, body_expert, hand_expert = session.run(None, inputs)
    with torch.no_grad():
        reference = full(torch.from_numpy(inputs["body"]), torch.from_numpy(inputs["hand"]))
    expected = (reference["body_expert"] + reference["hand_expert"]).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    np.testing.assert_allclose(body_expert, reference["body_expert"].numpy(), atol=1e-4)
    np.testing.assert_allclose(logits, body_expert + hand_expert, atol=1e-5)


def test_expert_only_needs_bharnet_e(tiny_config, tmp_path):
    model = build_model(tiny_config("score_fusion", SMALL))
    checkpoint = load_checkpoint(
        save_checkpoint(make_checkpoint(model, LABELS, PREPROCESS), tmp_path / "s.pt")
    )
    with pytest.raises(ExportError, match="BHaRNet-E"):
        prepare_model(checkpoint, expert_only=True)


def test_mismatched_preprocess_labels_and_old_opset_are_refused(tiny_config, tmp_path):
    model = build_model(tiny_config("body_expert", SMALL)).eval()
    with pytest.raises(ExportError, match="num_persons"):
        export_onnx(model, tmp_path / "m.onnx", LABELS, PreprocessConfig(frames=FRAMES, num_persons=2))
    with pytest.raises(ExportError, match="labels"):
        export_onnx(model, tmp_path / "m.onnx", LABELS[:2], PREPROCESS)
    with pytest.raises(ExportError, match="opset"):
        export_onnx(model, tmp_path / "m.onnx", LABELS, PREPROCESS, opset=13)


def test_parity_failure_is_loud(tiny_config, tmp_path):
    model = calibrated(build_model(tiny_config("body_expert", SMALL)))
    path = tmp_path / "m.onnx"
    export_onnx(model, path, LABELS, PREPROCESS)
    with torch.no_grad():
        model.head.fc.bias += 1.0  # PyTorch now disagrees with the exported file
    with pytest.raises(ExportError, match="differs from PyTorch"):
        check_parity(model, path, PREPROCESS)


def shift_output(model, branch: str, delta: float) -> None:
    """Make PyTorch's ``branch`` output (``fused`` or a branch name) differ from the export by ``delta``."""
    forward = type(model).forward.__get__(model)

    def shifted(*args, **kwargs):
        out = dict(forward(*args, **kwargs))
        out[branch] = out[branch] + delta
        return out

    model.forward = shifted


@pytest.mark.parametrize(
    "branch", ["fused", "body_expert", "hand_expert", "body_interactive", "hand_interactive"]
)
def test_parity_checks_every_head_at_its_tolerance(branch, tiny_config, tmp_path):
    model = calibrated(build_model(tiny_config("bharnet_e", SMALL)))
    path = tmp_path / "bharnet_e.onnx"
    export_onnx(model, path, LABELS, PREPROCESS)
    wrapper = ExportWrapper(model)
    index = output_names(model).index("logits" if branch == "fused" else f"{branch}_logits")
    scales = [  # the branch's own: a branch of small logits is not judged on a large one's scale
        max(1.0, float(np.abs(torch_outputs(wrapper, inputs)[index]).max()))
        for inputs in (random_inputs(model), realistic_inputs(model, PREPROCESS))
    ]
    shift_output(model, branch, 0.5 * PARITY_TOLERANCE * min(scales))  # just below the tolerance
    check_parity(model, path, PREPROCESS)
    shift_output(model, branch, 1.5 * PARITY_TOLERANCE * max(scales))  # just above it
    with pytest.raises(ExportError, match="differs from PyTorch"):
        check_parity(model, path, PREPROCESS)


def test_dynamic_batch_export_runs_any_batch(tiny_config, tmp_path):
    model = calibrated(build_model(tiny_config("score_fusion", SMALL)))
    path = tmp_path / "dynamic.onnx"
    export_onnx(model, path, LABELS, PREPROCESS, dynamic_batch=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    body = np.random.default_rng(0).standard_normal((3, 3, FRAMES, 25, 1)).astype(np.float32)
    hand = np.random.default_rng(1).standard_normal((3, 3, FRAMES, 25, 2)).astype(np.float32)
    logits = session.run(["logits"], {"body": body, "hand": hand})[0]
    with torch.no_grad():
        expected = model(torch.from_numpy(body), torch.from_numpy(hand))["fused"].numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_hand_intensive_classes_are_stored(tiny_config, tmp_path):
    model = build_model(tiny_config("body_expert", SMALL)).eval()
    metadata = export_onnx(model, tmp_path / "m.onnx", LABELS, PREPROCESS, hand_intensive=["class3"])
    assert metadata["bharnet.hand_intensive"] == ["class3"]
    assert export_onnx(model, tmp_path / "n.onnx", LABELS, PREPROCESS)["bharnet.hand_intensive"] is None


def test_random_inputs_are_seeded_and_the_hand_mask_is_zeros_and_ones(tiny_config):
    model = build_model(tiny_config("score_fusion_noisy_or", SMALL))
    first, again, other = random_inputs(model), random_inputs(model, seed=0), random_inputs(model, seed=1)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    assert not np.array_equal(first["body"], other["body"])
    mask = first["hand_mask"]
    assert set(np.unique(mask)) == {0.0, 1.0}
    assert 0.2 < mask.mean() < 0.8


def test_prepare_model_keeps_all_branches_unless_asked(tiny_config, tmp_path):
    full = build_model(tiny_config("bharnet_e", SMALL))
    checkpoint = load_checkpoint(
        save_checkpoint(make_checkpoint(full, LABELS, PREPROCESS), tmp_path / "e.pt")
    )
    assert variant_name(prepare_model(checkpoint)) == "bharnet_e"
    assert variant_name(prepare_model(checkpoint, expert_only=True)) == "bharnet_e_expert_only"


def test_parity_scale_is_at_least_one_for_small_logits(tiny_config, tmp_path):
    """With logits far below 1 the tolerance is 1e-4 absolute, not relative to the tiny logits."""
    model = calibrated(build_model(tiny_config("body_expert", SMALL)))
    with torch.no_grad():
        model.head.fc.weight *= 1e-3
        model.head.fc.bias *= 1e-3
    path = tmp_path / "small.onnx"
    export_onnx(model, path, LABELS, PREPROCESS)
    assert (
        max(float(np.abs(x).max()) for x in torch_outputs(ExportWrapper(model), random_inputs(model))) < 0.5
    )
    shift_output(model, "fused", 0.5 * PARITY_TOLERANCE)
    check_parity(model, path, PREPROCESS)
    shift_output(model, "fused", 1.5 * PARITY_TOLERANCE)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        check_parity(model, path, PREPROCESS)


@pytest.fixture
def expert(tiny_config):
    full = build_model(tiny_config("bharnet_e", SMALL))
    return full, full.expert_only()


def test_calibration_for_picks_the_entry_of_the_model(expert, tmp_path):
    full, expert_only = expert
    path = tmp_path / "calibration.json"
    entries = {
        "fused": {"temperature": 1.5, "none_threshold": 0.3},
        "expert_only": {"temperature": 2.0, "none_threshold": 0.4},
    }
    path.write_text(json.dumps(entries))
    assert calibration_for(path, full) == entries["fused"]
    assert calibration_for(str(path), expert_only) == entries["expert_only"]


def test_a_noisy_or_model_takes_no_softmax_calibration(tiny_config, tmp_path):
    """Its runtime probabilities are per-class sigmoids: a softmax-fitted threshold rejects others."""
    model = build_model(tiny_config("bharnet_e", {**SMALL, "fusion": "noisy_or"}))
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"fused": {"temperature": 1.5, "none_threshold": 0.3}}))
    with pytest.raises(ExportError, match="Noisy-OR fusion gives per-class sigmoids"):
        calibration_for(path, model)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the calibration"),
        ("{not json", "cannot read the calibration"),
        ("[]", "has no 'fused' calibration; give the calibration.json of a --loso run"),
        ('{"fused": {"temperature": 1.0}}', "has no 'fused' calibration"),
        ('{"fused": [1, 2]}', "has no 'fused' calibration"),
        (  # a --loso run whose held-out predictions were all right
            '{"fused": {"unfit": "every one of the 60 held-out predictions is right"}}',
            "no 'fused' calibration could be fitted: every one of the 60 held-out predictions is right",
        ),
        (
            '{"fused": {"temperature": 0.0, "none_threshold": 0.3}}',
            "the 'fused' calibration's temperature 0.0 is out of range; it must be a number from 0.001",
        ),
        ('{"fused": {"temperature": 1e-300, "none_threshold": 0.3}}', "temperature 1e-300 is out of range"),
        (
            '{"fused": {"temperature": 1.0, "none_threshold": 0.3, "class_names": 24}}',
            "class_names 24 is not a list of class names",
        ),
        (
            '{"fused": {"temperature": 1.0, "none_threshold": 0.3, "class_names": [1, 2, 3, 4, 5]}}',
            "class_names \\[1, 2, 3, 4, 5\\] is not a list of class names",
        ),
        ('{"fused": {"temperature": 1e3, "none_threshold": 0.3}}', "out of range"),
        ('{"fused": {"temperature": 1.0, "none_threshold": -0.1}}', "out of range"),
        ('{"fused": {"temperature": 1.0, "none_threshold": 1.1}}', "out of range"),
        (
            '{"fused": {"temperature": 1.0, "none_threshold": 0.3, "class_names": ["a", "b", "c"]}}',
            "was fitted on a model of 3 classes, not on this one's 5",
        ),
        (
            '{"fused": {"temperature": 1.0, "none_threshold": 0.3, '
            '"class_names": ["c1", "c0", "c2", "c3", "c4"]}}',
            "fitted on other classes or another order \\(c1 where this has c0\\)",
        ),
        (
            '{"fused": {"temperature": 1.0, "none_threshold": 0.3, "views": 3}}',
            "averaged over 3 windows per clip, the node decides on one",
        ),
        (
            '{"fused": {"temperature": 1%s, "none_threshold": 0.3}}' % ("0" * 400),
            "temperature 10000.*\\.\\.\\. is out of range",
        ),
        (
            '{"fused": {"temperature": 1%s, "none_threshold": 0.3}}' % ("0" * 5000),
            "cannot read the calibration",
        ),
        ("[" * 100_000 + "]" * 100_000, "cannot read the calibration"),
    ],
)
def test_calibration_for_refuses_what_does_not_fit(expert, tmp_path, content, message):
    path = tmp_path / "calibration.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ExportError, match=message):
        calibration_for(path, expert[0], [f"c{i}" for i in range(5)])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"fused": {"temperature": "abc", "none_threshold": 0.5}}', 'temperature "abc" is not a number'),
        ('{"fused": {"temperature": null, "none_threshold": 0.5}}', "temperature null is not a number"),
        ('{"fused": {"temperature": true, "none_threshold": 0.5}}', "temperature true is not a number"),
        ('{"fused": {"temperature": 1.0, "none_threshold": NaN}}', "none_threshold NaN is out of range"),
        ('{"fused": {"temperature": Infinity, "none_threshold": 0.5}}', "temperature Infinity is out of"),
        ('{"fused": {"temperature": -1, "none_threshold": 0.5}}', "temperature -1 is out of range"),
        (
            '{"fused": {"temperature": "%s", "none_threshold": 0.5}}' % ("x" * 300_000),
            'temperature "%s... is not a number' % ("x" * 36),
        ),
    ],
)
def test_a_bad_calibration_value_is_named_with_its_file(expert, tmp_path, content, message):
    path = tmp_path / "calibration.json"
    path.write_text(content)
    with pytest.raises(
        ExportError, match=re.escape(f"{path}: the 'fused' calibration's {message}")
    ) as caught:
        calibration_for(path, expert[0])
    assert "\n" not in str(caught.value)


def test_a_binary_calibration_file_is_refused_by_name(expert, tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"PK\x03\x04\x80\xff\xfe binary")
    with pytest.raises(ExportError, match=re.escape(f"cannot read the calibration {path}: it is not a JSON")):
        calibration_for(path, expert[0])


def test_a_calibration_comes_back_as_plain_floats(expert, tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"fused": {"temperature": 2, "none_threshold": 0, "ece": 0.1}}))
    assert calibration_for(path, expert[0]) == {"temperature": 2.0, "none_threshold": 0.0}


def test_calibration_bounds_are_inclusive_where_documented(expert, tmp_path):
    path = tmp_path / "calibration.json"
    for threshold in (0.0, 1.0):
        path.write_text(json.dumps({"fused": {"temperature": 999.0, "none_threshold": threshold}}))
        assert calibration_for(path, expert[0])["none_threshold"] == threshold


def test_preprocess_mismatches_are_named_one_by_one(tiny_config, tmp_path):
    model = build_model(tiny_config("body_expert", SMALL)).eval()
    for wrong, named in [
        ({"frames": 8}, "frames: preprocess 8 vs model 16"),
        ({"body_layout": "mediapipe33"}, "body_layout: preprocess mediapipe33 vs model ntu25"),
        ({"channels": 4}, "channels: preprocess 4 vs model 3"),
        (
            {"num_persons": 2, "frames": 8},
            "frames: preprocess 8 vs model 16, num_persons: preprocess 2 vs model 1",
        ),
    ]:
        config = PreprocessConfig(**{"frames": FRAMES, "num_persons": 1, **wrong})
        with pytest.raises(ExportError, match=rf"do not match the model \({named}\)"):
            export_onnx(model, tmp_path / "m.onnx", LABELS, config)


def test_realistic_inputs_are_the_same_every_time(tiny_config):
    model = build_model(tiny_config("score_fusion_noisy_or", SMALL))
    first, again = realistic_inputs(model, PREPROCESS), realistic_inputs(model, PREPROCESS, seed=0)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])


def test_a_calibration_may_sharpen(expert, tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"fused": {"temperature": 0.5, "none_threshold": 0.2}}))
    assert calibration_for(path, expert[0])["temperature"] == 0.5


def test_a_calibration_and_a_new_folder_go_into_the_export(tiny_config, tmp_path):
    model = build_model(tiny_config("body_expert", SMALL)).eval()
    path = tmp_path / "new" / "folder" / "m.onnx"
    calibration = {"temperature": 1.5, "none_threshold": 0.3}
    metadata = export_onnx(model, path, LABELS, PREPROCESS, calibration=calibration, dynamic_batch=True)
    assert (metadata["bharnet.temperature"], metadata["bharnet.none_threshold"]) == (1.5, 0.3)
    stored = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    assert (stored["bharnet.temperature"], stored["bharnet.none_threshold"]) == (1.5, 0.3)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
