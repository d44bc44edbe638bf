"""ONNX export of a trained model for the ROS node, with a parity check against PyTorch.

The exported graph has named inputs and outputs (the node relies on them):

* inputs: ``body`` ``(1, C, T, V, M_body)``, ``hand`` ``(1, C, T, V, 2)`` and ``hand_mask``
  ``(1, T)``; a single-stream expert takes only its own stream, and ``hand_mask`` is an input only
  where the variant uses it (Noisy-OR fusion weights the hand branches by it);
* outputs: ``logits`` ``(1, K)`` (the fused prediction), then ``<branch>_logits`` for every branch
  of a multi-branch model (``body_logits``/``hand_logits``, ``body_expert_logits``, ...).

The ONNX ``metadata_props`` carry JSON values under the keys of :data:`METADATA_KEYS`: labels,
preprocess settings (``core.preprocess.PreprocessConfig`` as a dict), variant, fusion, input
shapes, output names, which branches are the body and the hand expert (``bharnet.experts``),
precision, the format version and whether the graph averages each window with its mirror image
(``bharnet.test_mirror``, ``model/mirror.py``); with a calibration also
``bharnet.temperature`` (the logits are divided by it before the softmax) and
``bharnet.none_threshold`` (below it the node says ``none``). Export uses the TorchScript exporter
(``dynamo=False``), a static batch of 1 (a dynamic batch adds ``If`` nodes), frozen random
features, and only ``matmul`` (no ``Einsum``). :func:`check_parity` runs ONNX Runtime on random
and on realistic inputs and compares every output to PyTorch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from bharnet_ros.core.inference import (
    DISTANCE,
    MAX_DISTANCE_THRESHOLD,
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    random_feed,
)
from bharnet_ros.core.labels import error_line, shorten
from bharnet_ros.core.preprocess import PreprocessConfig, preprocess_sequence
from bharnet_ros.core.text_files import read_text_file
from bharnet_ros.model.attention import freeze_projections
from bharnet_ros.model.bharnet import BHaRNetModel, ExpertizedModel, ExpertOnlyModel
from bharnet_ros.model.checkpoint import Checkpoint, preprocess_mismatch

METADATA_FORMAT = 1
METADATA_KEYS = (
    "bharnet.format_version",
    "bharnet.variant",
    "bharnet.fusion",
    "bharnet.labels",
    "bharnet.hand_intensive",
    "bharnet.preprocess",
    "bharnet.inputs",
    "bharnet.outputs",
    "bharnet.experts",
    "bharnet.precision",
    "bharnet.test_mirror",
)
# Max abs difference of any output logit, ONNX Runtime vs PyTorch, for logits up to 1 in magnitude;
# larger logits (a trained model on random inputs reaches thousands) get the same relative bound.
FP32_TOLERANCE = 1e-4
# Why there is no fp16 file: torch's TorchScript exporter fails on half-precision CPU models
# ("tensor does not have a device") and ONNX Runtime's CPU provider lacks most fp16 kernels, so
# such a file could be neither written nor checked here. On a GPU, TensorRT's fp16 mode
# (``trt_fp16_enable``) converts the fp32 graph when it builds its engine.
FP16_UNSUPPORTED = (
    "fp16 export is not supported (torch cannot trace half-precision CPU models); export fp32 and "
    "let the TensorRT execution provider build an fp16 engine (trt_fp16_enable)"
)
DEFAULT_OPSET = 17


class ExportError(RuntimeError):
    """Export failed or the exported model does not match PyTorch."""


class ParityError(ExportError):
    """ONNX Runtime computes something else than PyTorch from the exported file."""


def input_names(model: BHaRNetModel) -> list[str]:
    """ONNX input names the variant uses, in order."""
    streams = [getattr(model, "stream", None)] if len(model.branches) == 1 else ["body", "hand"]
    names = [s for s in streams if s is not None]
    weighs_hands = model.fusion == "noisy_or" and bool(set(model.branches) & model.hand_branches)
    return [*names, "hand_mask"] if weighs_hands else names


def output_branches(model: BHaRNetModel) -> list[str]:
    """The branches the exported graph outputs besides the fused logits: all of a multi-branch model."""
    return list(model.branches) if len(model.branches) > 1 else []


def output_names(model: BHaRNetModel) -> list[str]:
    """``logits``, for multi-branch models one ``<branch>_logits`` per branch, and ``distance``
    where the model has a fitted feature distance."""
    distance = [DISTANCE] if model.feature_distance is not None else []
    return ["logits", *(f"{name}_logits" for name in output_branches(model)), *distance]


def expert_branches(model: BHaRNetModel) -> dict[str, str]:
    """The output branch that is each stream's own expert: ``{"body": ..., "hand": ...}``.

    BHaRNet-E names them ``body_expert``/``hand_expert`` (its interactive branches are not experts);
    the two-stream variants name their streams ``body``/``hand``. A single-branch model outputs no
    branch, so it has no entry. The node publishes these branches' top-1 as the expert votes.
    """
    branches = output_branches(model)
    experts = {}
    for stream in ("body", "hand"):
        named = [name for name in (f"{stream}_expert", stream) if name in branches]
        if named:
            experts[stream] = named[0]
    return experts


def input_shapes(model: BHaRNetModel, batch: int = 1) -> dict[str, list[int]]:
    """Static input shapes of the exported graph, from the model config."""
    config = model.config
    c, t = config.input.channels, config.input.frames
    v = model.adjacency["body"].shape[-1]
    shapes = {
        "body": [batch, c, t, v, config.input.num_persons],
        "hand": [batch, c, t, v, 2],
        "hand_mask": [batch, t],
    }
    return {name: shapes[name] for name in input_names(model)}


class ExportWrapper(nn.Module):
    """Positional tensors in, a tuple of logits out (the exporter cannot return the model's dict)."""

    def __init__(self, model: BHaRNetModel) -> None:
        super().__init__()
        self.model = model
        self.inputs = input_names(model)
        self.branches = output_branches(model)

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(**dict(zip(self.inputs, tensors, strict=True)))
        distance = (out[DISTANCE],) if DISTANCE in out else ()
        return (out["fused"], *(out[name] for name in self.branches), *distance)


def prepare_model(checkpoint: Checkpoint, expert_only: bool = False) -> BHaRNetModel:
    """The checkpoint's model in eval mode with frozen random features; optionally BHaRNet-E's experts."""
    model = checkpoint.build_model()
    if expert_only:
        if not isinstance(model, ExpertizedModel):
            raise ExportError(
                f"--expert-only needs a BHaRNet-E checkpoint, this one is {model.config.variant}"
            )
        model = model.expert_only()
    freeze_projections(model)
    return model.eval()


def variant_name(model: BHaRNetModel) -> str:
    """The variant the exported graph computes (expert-only when reduced from BHaRNet-E)."""
    return "bharnet_e_expert_only" if isinstance(model, ExpertOnlyModel) else model.config.variant


def check_preprocess_matches(model: BHaRNetModel, preprocess: PreprocessConfig) -> None:
    """The stored preprocessing must produce the tensors this model was built for."""
    mismatch = preprocess_mismatch(model.config, preprocess)
    if mismatch:
        raise ExportError(f"preprocess settings do not match the model ({mismatch})")


def build_metadata(
    model: BHaRNetModel,
    labels: Sequence[str],
    preprocess: PreprocessConfig,
    hand_intensive: Sequence[str] | None,
) -> dict[str, Any]:
    """Metadata values (JSON-serialisable) keyed by :data:`METADATA_KEYS`; the precision is fp32,
    the only one export writes (:data:`FP16_UNSUPPORTED`)."""
    values = [
        METADATA_FORMAT,
        variant_name(model),
        model.fusion,
        list(labels),
        None if hand_intensive is None else list(hand_intensive),
        preprocess.to_dict(),
        input_shapes(model),
        output_names(model),
        expert_branches(model),
        "fp32",
        bool(model.config.test_mirror),
    ]
    return dict(zip(METADATA_KEYS, values, strict=True))


def export_onnx(
    model: BHaRNetModel,
    path: str | Path,
    labels: Sequence[str],
    preprocess: PreprocessConfig,
    hand_intensive: Sequence[str] | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
    calibration: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Write ``model`` as ONNX with our metadata; returns the metadata.

    The model is put in eval mode with its random features frozen first (it stays that way).
    """
    if opset < DEFAULT_OPSET:
        raise ExportError(f"opset {opset} is too old; use {DEFAULT_OPSET} or newer")
    check_preprocess_matches(model, preprocess)
    if len(labels) != model.config.num_classes:
        raise ExportError(f"{len(labels)} labels for a {model.config.num_classes}-class model")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    freeze_projections(model)
    wrapper = ExportWrapper(model).eval()
    names, outputs = input_names(model), output_names(model)
    example = tuple(torch.zeros(shape) for shape in input_shapes(model).values())
    dynamic = {name: {0: "batch"} for name in [*names, *outputs]} if dynamic_batch else None
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is chosen on purpose (the dynamo one needs onnxscript).
        warnings.simplefilter("ignore", DeprecationWarning)
        # Test-time mirroring's index tables are constants of the graph, as the tracer warns.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            wrapper, example, str(path), input_names=names, output_names=outputs,
            opset_version=opset, dynamic_axes=dynamic, do_constant_folding=True, dynamo=False,
        )  # fmt: skip
    metadata = build_metadata(model, labels, preprocess, hand_intensive)
    if calibration is not None:
        metadata["bharnet.temperature"] = float(calibration["temperature"])
        metadata["bharnet.none_threshold"] = float(calibration["none_threshold"])
        if model.feature_distance is not None and "distance_threshold" in calibration:
            metadata["bharnet.distance_threshold"] = float(calibration["distance_threshold"])
    write_metadata(path, metadata)
    return metadata


CALIBRATION_RANGES = {  # name: (whether a value is in range, the range in words)
    "temperature": (
        lambda t: MIN_TEMPERATURE <= t < MAX_TEMPERATURE,
        f"from {MIN_TEMPERATURE:g} to below {MAX_TEMPERATURE:g}",
    ),
    "none_threshold": (lambda t: 0.0 <= t <= 1.0, "in [0, 1]"),
    "distance_threshold": (
        lambda t: 0.0 < t < MAX_DISTANCE_THRESHOLD,
        f"above 0 and below {MAX_DISTANCE_THRESHOLD:g}",
    ),
}
REQUIRED_CALIBRATION = ("temperature", "none_threshold")  # older calibrations have no distance


def calibration_for(
    path: str | Path, model: BHaRNetModel, class_names: Sequence[str] | None = None
) -> dict[str, float]:
    """The entry of a ``calibration.json`` (from ``bharnet train --loso``) that fits ``model``.

    Every problem (not JSON text, no entry for the model, a value that is no finite number in
    range, an entry fitted on other ``class_names`` than the model's where both are known) is an
    ExportError naming the file and the entry, so the CLIs can refuse in one line.
    """
    path = Path(path)
    check_calibratable(model, path)
    try:
        entries = json.loads(read_text_file(path))
    except UnicodeDecodeError:
        raise ExportError(f"cannot read the calibration {path}: it is not a JSON text file") from None
    except (OSError, ValueError, RecursionError) as err:  # ValueError: not JSON, a 5000-digit number
        raise ExportError(f"cannot read the calibration {path} ({str(err)[:160]})") from None
    key = "expert_only" if isinstance(model, ExpertOnlyModel) else "fused"
    entry = entries.get(key) if isinstance(entries, dict) else None
    if isinstance(entry, dict) and "unfit" in entry:
        raise ExportError(
            f"{path}: no {key!r} calibration could be fitted: {shorten(str(entry['unfit']), 240)}"
        )
    if not isinstance(entry, dict) or not set(REQUIRED_CALIBRATION) <= set(entry):
        raise ExportError(f"{path} has no {key!r} calibration; give the calibration.json of a --loso run")
    fitted = entry.get("class_names")
    if fitted is not None and not (isinstance(fitted, list) and all(isinstance(n, str) for n in fitted)):
        raise ExportError(
            f"{path}: the {key!r} calibration's class_names {shorten(json.dumps(fitted), 40)} is not a "
            "list of class names; give the calibration.json of a --loso run"
        )
    if class_names is not None and fitted is not None:
        check_fitted_classes(path, fitted, class_names)
    if entry.get("views", 1) != 1:  # an average of windows is surer than the one the node decides on
        views = shorten(str(entry["views"]), 20)
        raise ExportError(
            f"{path}: the {key!r} calibration was fitted on logits averaged over {views} windows per "
            "clip, the node decides on one; give the calibration.json of a --loso run with --views 1"
        )
    return {
        name: calibration_value(entry[name], name, f"{path}: the {key!r} calibration's")
        for name in CALIBRATION_RANGES
        if name in entry
    }


def check_fitted_classes(path: str | Path, fitted: Sequence[str], class_names: Sequence[str]) -> None:
    """ExportError where a calibration was fitted on other classes, or the same in another order,
    than ``class_names``: its temperature and thresholds belong to another model."""
    if list(fitted) == list(class_names):
        return
    if len(fitted) != len(class_names):
        what = f"a model of {len(fitted)} classes, not on this one's {len(class_names)}"
    else:
        ours, theirs = next((a, b) for a, b in zip(class_names, fitted, strict=True) if a != b)
        what = f"other classes or another order ({shorten(theirs, 40)} where this has {shorten(ours, 40)})"
    raise ExportError(
        f"{path} was fitted on {what}: give the calibration of the --loso run of this model's recipe"
    )


def check_calibratable(model: BHaRNetModel, path: str | Path) -> None:
    """ExportError for a Noisy-OR model: calibrations are fitted on softmax probabilities, while
    such a model reads per-class sigmoids, so the threshold would reject other windows than fitted."""
    if getattr(model, "fusion", "mean") == "noisy_or":
        raise ExportError(
            f"{path}: calibrations are fitted on softmax probabilities, but this model's Noisy-OR "
            "fusion gives per-class sigmoids; export it without a calibration"
        )


def calibration_value(value: Any, name: str, where: str) -> float:
    """``value`` of the calibration entry ``name`` as a float, or an ExportError naming ``where``.

    A JSON number only (not a string or a bool), finite and in :data:`CALIBRATION_RANGES`: a bad
    temperature or threshold would silently change every decision of the node.
    """
    in_range, words = CALIBRATION_RANGES[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        shown = shorten(json.dumps(value), 40)
        raise ExportError(f"{where} {name} {shown} is not a number; give a number {words}")
    if not (in_range(value) and math.isfinite(value)):  # range first: float() overflows on a 400-digit int
        shown = shorten(json.dumps(value), 40)
        raise ExportError(f"{where} {name} {shown} is out of range; it must be a number {words}")
    return float(value)


def write_metadata(path: Path, metadata: Mapping[str, Any]) -> None:
    """Store ``metadata`` as JSON strings in the ONNX file's ``metadata_props``."""
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    proto.producer_name = "bharnet_ros"
    onnx.save(proto, str(path))


def random_inputs(model: BHaRNetModel, seed: int = 0) -> dict[str, np.ndarray]:
    """Standard-normal inputs of the exported shapes (the hand mask random 0/1)."""
    return random_feed(input_shapes(model), seed)


def realistic_inputs(
    model: BHaRNetModel, preprocess: PreprocessConfig, seed: int = 0
) -> dict[str, np.ndarray]:
    """Inputs from a synthetic wave (``training.synth.demo_sequence``) through the real preprocessing.

    Zeros where data is absent. The wave is read in the model's coordinate space (its numbers are
    a plausible skeleton in either): a model of world-space skeletons refuses image-space ones. The
    generator is imported here, not at module level, because the training package imports this one.
    """
    from bharnet_ros.training.synth import demo_sequence

    sequence = demo_sequence(preprocess.frames, seed)
    if preprocess.space and preprocess.space != sequence.space:
        sequence = dataclasses.replace(sequence, space=preprocess.space)
    batched = preprocess_sequence(sequence, preprocess).batched()
    return {name: batched[name] for name in input_names(model)}


def torch_outputs(wrapper: ExportWrapper, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The wrapper's outputs for numpy inputs, as numpy."""
    with torch.no_grad():
        tensors = [torch.from_numpy(inputs[name]) for name in wrapper.inputs]
        return [x.numpy() for x in wrapper(*tensors)]


def check_parity(
    model: BHaRNetModel, path: str | Path, preprocess: PreprocessConfig, tolerance: float = FP32_TOLERANCE
) -> dict[str, float]:
    """Max abs difference ONNX Runtime (CPU) vs PyTorch per input set; ParityError above ``tolerance``
    times each output's own magnitude (at least 1): a branch of small logits is not judged on the
    scale of another branch's large ones."""
    wrapper = ExportWrapper(model.eval())
    names = output_names(model)
    cases = {"random": random_inputs(model), "realistic": realistic_inputs(model, preprocess)}
    run = onnx_runtime(path)
    diffs = {}
    for case, inputs in cases.items():
        expected = torch_outputs(wrapper, inputs)
        got = run(inputs)
        worst = 0.0
        for name, a, b in zip(names, expected, got, strict=True):
            scale = max(1.0, float(np.abs(a).max()))
            with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: reported as a NaN difference
                diff = float(np.abs(a - b).max())
            if not math.isfinite(diff) or diff > tolerance * scale:
                raise ParityError(
                    f"ONNX Runtime differs from PyTorch on {case} inputs in {name}: "
                    f"max abs diff {diff:.3g} > {tolerance:.3g} x its scale {scale:.3g}"
                )
            worst = max(worst, diff)
        diffs[case] = worst
    return diffs


def onnx_runtime(path: str | Path) -> Callable[[Mapping[str, np.ndarray]], list[np.ndarray]]:
    """A function giving every output of the exported file for some inputs, on one ONNX Runtime
    CPU session; a graph ORT cannot load or run is an ExportError."""
    import onnxruntime as ort

    def failed(err: Exception) -> ExportError:
        return ExportError(f"ONNX Runtime cannot run the exported graph ({error_line(err, 160)})")

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # ORT's own exception types
        raise failed(err) from None

    def run(inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return session.run(None, dict(inputs))
        except Exception as err:
            raise failed(err) from None

    return run


def check_loadable(path: str | Path) -> None:
    """ExportError unless the recognizer node would accept the file as it is."""
    from bharnet_ros.core.inference import InferenceError, OnnxClassifier

    try:
        OnnxClassifier(path, providers="cpu", threads=1)
    except InferenceError as err:
        reason = str(err).replace(f"{path}: ", "").replace(str(path), "the file")
        raise ExportError(f"the recognizer would refuse the exported file: {reason}") from None


def export_checked(
    model: BHaRNetModel,
    path: str | Path,
    labels: Sequence[str],
    preprocess: PreprocessConfig,
    hand_intensive: Sequence[str] | None = None,
    **options: Any,
) -> tuple[dict[str, Any], dict[str, float]]:
    """:func:`export_onnx`, then parity with PyTorch and a load as the node does; (metadata, diffs).

    Give it a temporary path (``tools.outputs.atomic_file``): a file that fails either check must
    never take the place of a good one.
    """
    metadata = export_onnx(model, path, labels, preprocess, hand_intensive, **options)
    diffs = check_parity(model, path, preprocess)
    check_loadable(path)
    return metadata, diffs
