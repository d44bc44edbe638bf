"""OnnxClassifier: provider verification, clear errors for bad files, predictions from windows."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from bharnet_ros.core.inference import (
    InferenceError,
    OnnxClassifier,
    WindowScores,
    experts_by_name,
    provider_names,
    sigmoid,
    softmax,
)
from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.core.window import WindowBuffer
from bharnet_ros.model.batchnorm import calibrate_batchnorm
from bharnet_ros.model.bharnet import build_model
from bharnet_ros.model.config import load_model_config
from bharnet_ros.model.export import export_onnx
from bharnet_ros.training.synth import demo_sequence

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


def test_a_model_whose_weights_lie_in_a_side_file_is_refused(model_path, tmp_path, monkeypatch):
    """ONNX Runtime read the side file from the working folder, in the check's child and again in
    the node: the node could load weights the check never saw."""
    side = tmp_path / "side.onnx"
    onnx.save(onnx.load(str(model_path)), str(side), save_as_external_data=True, location="w.bin")
    monkeypatch.chdir(tmp_path)  # where ONNX Runtime finds w.bin
    with pytest.raises(InferenceError, match=r"of its tensors keep their data in a side file"):
        OnnxClassifier(side)


def test_missing_file_non_onnx_file_and_foreign_model(model_path, tmp_path):
    with pytest.raises(InferenceError, match="does not exist"):
        OnnxClassifier(tmp_path / "nothing.onnx")
    with pytest.raises(InferenceError, match="is not a regular file; give an .onnx file"):
        OnnxClassifier(tmp_path)
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


def test_predict_gives_top_k_and_expert_votes(model_path):
    classifier = OnnxClassifier(model_path, providers="cpu")
    rng = np.random.default_rng(0)
    body = rng.standard_normal((3, FRAMES, 25, 1)).astype(np.float32)
    hand = rng.standard_normal((3, FRAMES, 25, 2)).astype(np.float32)
    scores = classifier.predict(body, hand, np.ones(FRAMES, np.float32))
    assert scores.probabilities.shape == (5,)
    assert scores.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    top = scores.top(3)
    assert len(top) == 3
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert scores.label == top[0][0] == LABELS[int(np.argmax(scores.probabilities))]
    assert scores.score == pytest.approx(float(scores.probabilities.max()))
    assert set(scores.branches) == {"body", "hand"}
    assert scores.experts == {"body": "body", "hand": "hand"}  # score fusion: the streams are the experts
    hand_label, hand_score = scores.expert_votes()["hand"]
    assert hand_label == LABELS[int(np.argmax(scores.branches["hand"]))]
    assert hand_score == pytest.approx(float(scores.branches["hand"].max()))
    batched = classifier.predict(body[None], hand[None])
    np.testing.assert_allclose(batched.probabilities, scores.probabilities, rtol=1e-6)
    with pytest.raises(ValueError, match="expects"):
        classifier.predict(body[:, :8], hand)


def test_window_scores_rank_ties_in_label_order_and_skip_non_finite_experts():
    branches = {"body_expert": np.array([0.2, 0.8, 0.0]), "hand_expert": np.full(3, np.nan)}
    experts = {"body": "body_expert", "hand": "hand_expert"}
    scores = WindowScores(["a", "b", "c"], np.array([0.4, 0.2, 0.4]), branches=branches, experts=experts)
    assert scores.top(2) == [("a", 0.4), ("c", 0.4)]
    assert scores.expert_votes() == {"body": ("b", 0.8)}
    with pytest.raises(ValueError, match="not among"):
        WindowScores(["a"], np.ones(1), experts={"body": "body_expert"})


def test_files_without_the_experts_entry_fall_back_to_the_branch_names(model_path, tmp_path):
    import onnx.helper

    proto = onnx.load(str(model_path))
    kept = {p.key: p.value for p in proto.metadata_props if p.key != "bharnet.experts"}
    onnx.helper.set_model_props(proto, kept)
    onnx.save(proto, str(tmp_path / "old.onnx"))
    assert OnnxClassifier(tmp_path / "old.onnx", providers="cpu").experts == {"body": "body", "hand": "hand"}
    branches = ["body_expert", "hand_expert", "body_interactive", "hand_interactive"]
    assert experts_by_name(branches) == {"body": "body_expert", "hand": "hand_expert"}


def test_predict_window_uses_the_stored_preprocessing(model_path):
    buffer = WindowBuffer(seconds=1.0)
    for t in range(24):
        buffer.push(demo_sequence(24).frame(t))
    window = buffer.window(length=FRAMES)
    classifier = OnnxClassifier(model_path, providers="cpu")
    scores = classifier.predict_window(window)
    assert scores.label in LABELS
    assert scores.finite()


@pytest.mark.parametrize("space", ["image", "world"])
def test_a_model_of_either_space_loads_and_refuses_windows_of_the_other(
    model_path, tmp_path, with_metadata, space
):
    """The load dry-runs a window of the model's own space; a live window of the other is refused."""
    preprocess = {**PREPROCESS.to_dict(), "space": space}
    classifier = OnnxClassifier(with_metadata(model_path, tmp_path / "m.onnx", preprocess=preprocess), "cpu")
    assert classifier.preprocess.space == space
    assert classifier.predict_window(window_in(space)).finite()
    other = "world" if space == "image" else "image"
    with pytest.raises(
        ValueError, match=f"cannot feed {other}-space skeletons to a model trained on {space}"
    ):
        classifier.predict_window(window_in(other))


def window_in(space: str):
    """A window of the demo gesture, its frames in ``space``."""
    buffer = WindowBuffer(seconds=1.0)
    for t in range(24):
        buffer.push(dataclasses.replace(demo_sequence(24).frame(t), space=space))
    return buffer.window(length=FRAMES)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"labels": ["a", "b", "c"]}, "shape \\(1, 5\\) for 3 labels"),
        ({"labels": {"0": "wave"}}, "labels must be a non-empty list"),
        ({"preprocess": {**PREPROCESS.to_dict(), "frames": 64}}, "64 frames in metadata"),
        ({"inputs": {"skeleton": [1, 3, 16, 25, 1], "hand": [1, 3, 16, 25, 2]}}, "must map body and hand"),
        ({"inputs": {"body": [1, 3, 16, 25, 1]}}, "graph inputs"),
        ({"preprocess": {"frames": "many"}}, "preprocess is unusable"),
        ({"experts": {"body": "body_expert"}}, "metadata experts"),
        ({"none_threshold": 5.0}, "none_threshold 5.0 must be a number in \\[0, 1\\]"),
        ({"none_threshold": float("nan")}, "none_threshold nan"),
        ({"none_threshold": "0.3"}, "none_threshold '0.3'"),
        ({"hand_intensive": 5}, "hand_intensive 5 must be a list of class names"),
        ({"hand_intensive": ["not_a_class"]}, "hand_intensive names .*, which are not among"),
        ({"preprocess": {k: v for k, v in PREPROCESS.to_dict().items() if k != "hand_frame"}}, "lacks"),
        ({"format_version": None}, "format_version None is not a whole number"),
        ({"format_version": [1]}, "format_version \\[1\\]"),
        ({"variant": 3}, "variant 3 must be printable text"),
        ({"variant": "v" * 10**6}, "variant 'vvv.*\\.\\.\\. must be printable text of at most 200"),
        ({"hand_intensive": ["wave\n"]}, "hand_intensive \\['wave\\\\n'\\] must be a list of class names"),
        ({"preprocess": {**PREPROCESS.to_dict(), "num_persons": 2}}, "its preprocessing makes other inputs"),
        ({"temperature": float("nan")}, "metadata temperature nan must be a number from 0.001 to below 1000"),
        ({"temperature": 1e-300}, "metadata temperature 1e-300 must be a number from 0.001"),
        (
            {"inputs": {"body": [1, 3, FRAMES, 25, 1], "extra": [1, 3]}},
            "metadata inputs .* must map body and hand",
        ),
        (
            {"inputs": {"body": [1, 3, FRAMES, 25], "hand": [1, 3, FRAMES, 25, 2]}},
            "static shapes of 5 dimensions",
        ),
        ({"inputs": {"body": [1, 3, FRAMES, 25, 1], "hand_mask": [FRAMES]}}, "hand_mask to 2"),
        ({"temperature": -3}, "metadata temperature -3"),
        ({"temperature": "hot"}, "metadata temperature 'hot'"),
        ({"temperature": 1e300}, r"metadata temperature 1e\+300"),
        ({"labels": [f"c{i}" for i in range(65537)]}, "65537 labels, more than /bharnet/labels holds"),
        ({"temperature": 10**400}, "metadata temperature 10000000000.*\\.\\.\\. must be a number from 0.001"),
        ({"format_version": 10**400}, "metadata format 10000000000.*\\.\\.\\. is newer than this code"),
        ({"fusion": "max"}, "metadata fusion 'max' must be one of \\('mean', 'noisy_or'\\)"),
        ({"labels": ["wave", "point\n\x1b[2J", "stop", "come", "none"]}, "names \\(printable, 1 to 200"),
        ({"labels": ["wave", "p" * 201, "stop", "come", "none"]}, "names \\(printable, 1 to 200"),
        ({"labels": ["wave", "", "stop", "come", "none"]}, "names \\(printable, 1 to 200"),
        ({"outputs": ["logits"]}, "metadata outputs \\['logits'\\], graph outputs"),
    ],
)
def test_metadata_that_disagrees_with_the_graph_is_refused_at_load(
    model_path, tmp_path, changes, message, with_metadata
):
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
    assert warm.label == plain.label
    assert warm.score < plain.score
    np.testing.assert_allclose(warm.logits, plain.logits, rtol=1e-6)


@pytest.mark.parametrize("temperature", [1e-38, 0.05, 1.0, 1e30])
def test_softmax_and_sigmoid_stay_finite_at_float32_max(temperature):
    big = np.finfo(np.float32).max
    logits = np.array([[big, -big, 0.0], [1e30, -1e30, 0.0], [big, big, big]], np.float32)
    for probabilities in (softmax(logits, temperature), sigmoid(logits, temperature)):
        assert np.isfinite(probabilities).all()
        assert ((probabilities >= 0) & (probabilities <= 1)).all()
    np.testing.assert_allclose(softmax(logits, temperature).sum(axis=1), 1.0)


@pytest.mark.parametrize("probabilities", [np.ones(2), np.ones(4), np.ones((1, 3)), np.float64(1.0)])
def test_window_scores_need_one_probability_per_label(probabilities):
    """A classifier returning K+1 scores used to fail later with an IndexError in the recognizer."""
    with pytest.raises(ValueError, match="need one per label"):
        WindowScores(["a", "b", "c"], probabilities)


def raw_metadata(source: Path, target: Path, key: str, text: str) -> Path:
    """A copy of ``source`` whose ``bharnet.<key>`` entry is ``text`` as it is (not JSON-encoded)."""
    proto = onnx.load(str(source))
    props = {entry.key: entry.value for entry in proto.metadata_props}
    onnx.helper.set_model_props(proto, {**props, f"bharnet.{key}": text})
    onnx.save(proto, str(target))
    return target


@pytest.mark.parametrize(
    ("key", "text"),
    [("temperature", "1" + "0" * 5000), ("labels", "[" * 100_000 + "]" * 100_000), ("labels", "[wave")],
)
def test_metadata_that_is_no_usable_json_is_refused_in_one_line(model_path, tmp_path, key, text):
    broken = raw_metadata(model_path, tmp_path / "broken.onnx", key, text)
    with pytest.raises(InferenceError, match="bharnet metadata is not usable JSON") as refused:
        OnnxClassifier(broken, providers="cpu")
    assert len(str(refused.value)) < 400


def test_metadata_that_is_no_utf8_text_is_refused_in_one_line(model_path, tmp_path):
    """ONNX Runtime raised UnicodeDecodeError reading it: a traceback from `bharnet eval`."""
    marked = raw_metadata(model_path, tmp_path / "marked.onnx", "note", "MARKMARK")
    content = marked.read_bytes()
    assert content.count(b"MARKMARK") == 1
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(content.replace(b"MARKMARK", b"\xff\xfe\xff\xfe\xff\xfe\xff\xfe"))
    with pytest.raises(InferenceError, match="metadata or tensor names are not UTF-8 text"):
        OnnxClassifier(broken, providers="cpu")


def hand_built(model_path: Path, target: Path, tail: list[onnx.NodeProto], output_type: int) -> Path:
    """A graph of our inputs whose ``logits`` come out of ``tail`` (from ``flat_logits``), carrying
    the metadata of ``model_path`` made to match it: what a hostile or foreign exporter could write."""
    helper, float_type = onnx.helper, onnx.TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("body", float_type, [1, 3, FRAMES, 25, 1]),
        helper.make_tensor_value_info("hand", float_type, [1, 3, FRAMES, 25, 2]),
    ]
    weights = helper.make_tensor("W", float_type, [3 * FRAMES * 25, 5], np.zeros(3 * FRAMES * 25 * 5))
    shape = helper.make_tensor("shape", onnx.TensorProto.INT64, [2], [1, -1])
    nodes = [
        helper.make_node("Reshape", ["body", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["flat_logits"]),
        *tail,
    ]
    output = helper.make_tensor_value_info("logits", output_type, [1, 5])
    graph = helper.make_graph(nodes, "hand_built", inputs, [output], [weights, shape])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    props = {entry.key: entry.value for entry in onnx.load(str(model_path)).metadata_props}
    props.update({"bharnet.outputs": '["logits"]', "bharnet.experts": "{}"})
    helper.set_model_props(proto, props)
    onnx.save(proto, str(target))
    return target


def endless_loop() -> list[onnx.NodeProto]:
    """``flat_logits`` plus the result of a Loop of 10^15 empty turns: hangs a dry run unchecked."""
    helper, tensor = onnx.helper, onnx.TensorProto
    body = helper.make_graph(
        [helper.make_node("Identity", ["go"], ["go_on"]), helper.make_node("Identity", ["sum"], ["sum_out"])],
        "turn",
        [
            helper.make_tensor_value_info("i", tensor.INT64, []),
            helper.make_tensor_value_info("go", tensor.BOOL, []),
            helper.make_tensor_value_info("sum", tensor.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("go_on", tensor.BOOL, []),
            helper.make_tensor_value_info("sum_out", tensor.FLOAT, []),
        ],
    )
    constants = {"turns": (tensor.INT64, 10**15), "go": (tensor.BOOL, True), "zero": (tensor.FLOAT, 0.0)}
    return [
        *(helper.make_node("Constant", [], [name], value=helper.make_tensor(name, kind, [], [value]))
          for name, (kind, value) in constants.items()),
        helper.make_node("Loop", ["turns", "go", "zero"], ["total"], body=body),
        helper.make_node("Add", ["flat_logits", "total"], ["logits"]),
    ]  # fmt: skip


def test_hand_built_graphs_of_our_shape_load_and_predict(model_path, tmp_path):
    plain = [onnx.helper.make_node("Identity", ["flat_logits"], ["logits"])]
    classifier = OnnxClassifier(hand_built(model_path, tmp_path / "plain.onnx", plain, 1), providers="cpu")
    assert classifier.predict(np.zeros((3, FRAMES, 25, 1)), np.zeros((3, FRAMES, 25, 2))).label in LABELS


@pytest.mark.parametrize(
    ("tail", "output_type", "message"),
    [
        (endless_loop(), onnx.TensorProto.FLOAT, "the graph uses Loop, which no exported BHaRNet model does"),
        (
            [onnx.helper.make_node("Cast", ["flat_logits"], ["logits"], to=onnx.TensorProto.INT64)],
            onnx.TensorProto.INT64,
            "output logits \\(tensor\\(int64\\)\\) is not a float tensor of logits",
        ),
        (
            [onnx.helper.make_node("Cast", ["flat_logits"], ["logits"], to=onnx.TensorProto.STRING)],
            onnx.TensorProto.STRING,
            "output logits \\(tensor\\(string\\)\\) is not a float tensor",
        ),
    ],
)
def test_graphs_that_could_hang_or_give_no_float_logits_are_refused_before_a_run(
    model_path, tmp_path, tail, output_type, message
):
    hostile = hand_built(model_path, tmp_path / "hostile.onnx", tail, output_type)
    with pytest.raises(InferenceError, match=message):
        OnnxClassifier(hostile, providers="cpu")


def on_real_windows(tail: list[onnx.NodeProto], above: float = 0.0) -> list[onnx.NodeProto]:
    """``moving``, 1 where some body input exceeds ``above`` in size (0: any window but the load
    check's still one) and 0 otherwise, then ``tail``: a graph that behaves at load and not after."""
    helper, tensor = onnx.helper, onnx.TensorProto
    zero = helper.make_tensor("zero_f", tensor.FLOAT, [], [0.0])
    bound = helper.make_tensor("above", tensor.FLOAT, [], [above])
    return [
        helper.make_node("Constant", [], ["zero_f"], value=zero),
        helper.make_node("Constant", [], ["above"], value=bound),
        helper.make_node("Abs", ["body"], ["size"]),
        helper.make_node("ReduceMax", ["size"], ["largest"], keepdims=0),
        helper.make_node("Greater", ["largest", "above"], ["moves"]),
        helper.make_node("Cast", ["moves"], ["moving"], to=tensor.INT64),
        *tail,
    ]


def constant(name: str, values: list[int]) -> onnx.NodeProto:
    tensor = onnx.helper.make_tensor(name, onnx.TensorProto.INT64, [len(values)], values)
    return onnx.helper.make_node("Constant", [], [name], value=tensor)


FAILS_ON_REAL_WINDOWS = {
    "fails": [  # gathers logit 5 of 5 once the body moves
        constant("five", [5]),
        onnx.helper.make_node("Mul", ["moving", "five"], ["index"]),
        onnx.helper.make_node("Gather", ["flat_logits", "index"], ["picked"], axis=1),
        onnx.helper.make_node("ReduceSum", ["picked"], ["picked_sum"], keepdims=0),
        onnx.helper.make_node("Mul", ["picked_sum", "zero_f"], ["nothing"]),
        onnx.helper.make_node("Add", ["flat_logits", "nothing"], ["logits"]),
    ],
    "widens": [  # twice as many logits as labels once the body moves
        constant("one", [1]),
        onnx.helper.make_node("Add", ["moving", "one"], ["times"]),
        onnx.helper.make_node("Concat", ["one", "times"], ["repeats"], axis=0),
        onnx.helper.make_node("Tile", ["flat_logits", "repeats"], ["logits"]),
    ],
}


@pytest.mark.parametrize(
    ("kind", "message"), [("fails", "indices"), ("widens", r"output logits has shape \(1, 10\)")]
)
def test_a_model_that_fails_only_on_real_windows_raises_inference_error(model_path, tmp_path, kind, message):
    """It passes the load check's windows (keyed on inputs above 100 here); eval and bag eval had
    ended in ORT's traceback or in an IndexError far from the model, and a wider output had been
    cut to the labels silently."""
    tail = on_real_windows(FAILS_ON_REAL_WINDOWS[kind], above=100.0)
    classifier = OnnxClassifier(hand_built(model_path, tmp_path / f"{kind}.onnx", tail, 1), providers="cpu")
    moving = np.full((3, FRAMES, 25, 1), 1000.0)
    with pytest.raises(InferenceError, match=f"the model failed on a window.*{message}"):
        classifier.predict(moving, np.zeros((3, FRAMES, 25, 2)))


@pytest.mark.parametrize("branch", ["fused", "distance", "expert_only", "", "a b"])
def test_a_branch_output_named_as_evals_own_scores_is_refused(model_path, tmp_path, branch):
    """eval keeps the fused logits and the distance beside the branches, by these names: a branch
    called ``fused`` had been scored in the fused logits' place."""
    helper = onnx.helper
    graph = hand_built(
        model_path, tmp_path / "branch.onnx", [helper.make_node("Identity", ["flat_logits"], ["logits"])], 1
    )
    proto = onnx.load(str(graph))
    proto.graph.node.append(helper.make_node("Identity", ["flat_logits"], [f"{branch}_logits"]))
    proto.graph.output.append(
        helper.make_tensor_value_info(f"{branch}_logits", onnx.TensorProto.FLOAT, [1, 5])
    )
    props = {entry.key: entry.value for entry in proto.metadata_props}
    props["bharnet.outputs"] = json.dumps(["logits", f"{branch}_logits"])
    del proto.metadata_props[:]
    helper.set_model_props(proto, props)
    onnx.save(proto, str(graph))
    with pytest.raises(InferenceError, match=f"output {branch}_logits names no branch"):
        OnnxClassifier(graph, providers="cpu")


def costly(inputs: dict[str, list[int]], op: str) -> list[onnx.NodeProto]:
    """``flat_logits`` plus zero times the sum of ``op`` over ``ConstantOfShape`` tensors of the
    given shapes: a few hundred bytes whose load or run costs what those shapes say."""
    helper, tensor = onnx.helper, onnx.TensorProto
    one = helper.make_tensor("one", tensor.FLOAT, [1], [1.0])
    nodes = []
    for name, shape in inputs.items():
        size = helper.make_tensor(f"{name}_shape", tensor.INT64, [len(shape)], shape)
        nodes.append(helper.make_node("Constant", [], [f"{name}_shape"], value=size))
        nodes.append(helper.make_node("ConstantOfShape", [f"{name}_shape"], [name], value=one))
    zero = helper.make_tensor("zero", tensor.FLOAT, [], [0.0])
    return [
        *nodes,
        helper.make_node(op, list(inputs), ["costly"]),
        helper.make_node("ReduceSum", ["costly"], ["total"], keepdims=0),
        helper.make_node("Constant", [], ["zero"], value=zero),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", ["flat_logits", "nothing"], ["logits"]),
    ]


def test_a_model_checked_in_a_child_process_loads_as_in_this_one(model_path):
    classifier = OnnxClassifier(model_path, providers="cpu", isolated=True)
    assert classifier.labels == LABELS


def test_a_model_whose_load_computes_for_long_is_refused_by_the_child_check(
    model_path, tmp_path, monkeypatch
):
    from bharnet_ros.core import model_check

    monkeypatch.setattr(model_check, "CHECK_SECONDS", 1.0)
    tail = costly({"x": [1, 1, 2048, 2048], "w": [1, 1, 512, 512]}, "Conv")  # folded at load: minutes
    hostile = hand_built(model_path, tmp_path / "slow.onnx", tail, onnx.TensorProto.FLOAT)
    with pytest.raises(InferenceError, match="running it once took longer than 1 s, so it is refused"):
        OnnxClassifier(hostile, providers="cpu", isolated=True)


CHECKING_NODE = """
import sys
from pathlib import Path
from bharnet_ros.core.model_check import check_in_child
path = Path(sys.argv[1])
check_in_child(path, path.read_bytes(), 600.0)
"""


def test_the_check_child_ends_itself_past_its_budget_or_with_its_parent(model_path, tmp_path, children):
    """Its timeout lived in the node: a node stopped mid-check (Ctrl-C, SIGTERM) left the child
    folding the hostile graph, an orphan, for as long as that took."""
    import signal
    import subprocess
    import sys
    import time

    from bharnet_ros.core import model_check

    tail = costly({"x": [1, 1, 2048, 2048], "w": [1, 1, 512, 512]}, "Conv")  # folded at load: minutes
    hostile = hand_built(model_path, tmp_path / "slow.onnx", tail, onnx.TensorProto.FLOAT)
    env = model_check._child_env(1.0)
    alone = subprocess.run(
        model_check._child_command(hostile), input=hostile.read_bytes(), env=env, capture_output=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert alone.returncode == -signal.SIGXCPU  # its own CPU budget, nobody waiting for it
    node = subprocess.Popen([sys.executable, "-c", CHECKING_NODE, str(hostile)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not (checking := children(node.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert checking, "the check never started"
        node.kill()
        node.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(map(running, checking)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(running, checking)), "the check outlived its node"
    finally:
        node.kill()


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is no zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_model_that_asks_for_gigabytes_is_refused_by_the_child_check(model_path, tmp_path):
    tail = costly({"huge": [1 << 31]}, "Abs")  # 8 GiB of floats at each run
    hostile = hand_built(model_path, tmp_path / "huge.onnx", tail, onnx.TensorProto.FLOAT)
    with pytest.raises(InferenceError, match="huge.onnx: .*a dry run failed") as refused:
        OnnxClassifier(hostile, providers="cpu", isolated=True)
    assert "\n" not in str(refused.value)


def test_a_model_that_asks_for_gigabytes_only_on_moving_windows_is_refused_by_the_child_check(
    model_path, tmp_path
):
    """Cheap on the still window, 8 GiB on any other: it passed the check and took the memory in
    the node itself, at its first live window."""
    helper, tensor = onnx.helper, onnx.TensorProto
    tail = [
        constant("elements", [1 << 31]),
        helper.make_node("Mul", ["moving", "elements"], ["count"]),  # 0 or 2^31 floats
        helper.make_node(
            "ConstantOfShape", ["count"], ["huge"], value=helper.make_tensor("v", tensor.FLOAT, [1], [1.0])
        ),
        helper.make_node("ReduceSum", ["huge"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero_f"], ["nothing"]),
        helper.make_node("Add", ["flat_logits", "nothing"], ["logits"]),
    ]
    hostile = hand_built(model_path, tmp_path / "moving.onnx", on_real_windows(tail), tensor.FLOAT)
    with pytest.raises(InferenceError, match="moving.onnx: .*a dry run on a moving window failed"):
        OnnxClassifier(hostile, providers="cpu", isolated=True)


def test_a_model_check_that_cannot_start_loads_the_model_unchecked_with_a_warning(
    model_path, monkeypatch, caplog
):
    from bharnet_ros.core import model_check

    monkeypatch.setattr(model_check, "_child_command", lambda path: ["/nonexistent/python"])
    with caplog.at_level(logging.WARNING):
        assert OnnxClassifier(model_path, providers="cpu", isolated=True).labels == LABELS
    assert "could not start a child process" in caplog.text


@pytest.mark.parametrize(
    ("child", "message"),
    [
        ("raise KeyError('extra')", "the model cannot be loaded \\(KeyError: 'extra'\\); export it with"),
        (
            "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
            "ended by signal 9 \\(no message\\); a graph that needs more than 4 GiB",
        ),
    ],
)
def test_a_child_check_that_fails_says_how(model_path, monkeypatch, child, message):
    """Any failure of the child was put down to memory, which sent the operator the wrong way."""
    import sys

    from bharnet_ros.core import model_check

    monkeypatch.setattr(model_check, "_child_command", lambda path: [sys.executable, "-c", child])
    with pytest.raises(InferenceError, match=message):
        OnnxClassifier(model_path, providers="cpu", isolated=True)
