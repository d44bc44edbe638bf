"""Run an exported BHaRNet ONNX model with ONNX Runtime (no torch, no rclpy).

:class:`OnnxClassifier` loads a file written by ``bharnet export``, reads its metadata (labels,
preprocess settings, input names and shapes; see ``bharnet_ros.model.export``), creates an ONNX
Runtime session on the requested execution providers and then checks which providers the session
really uses: ORT silently falls back to CPU when a provider cannot be loaded, and
``get_available_providers()`` lists CUDA for onnxruntime-gpu even where CUDA libraries are missing.
The providers in use are kept in :attr:`OnnxClassifier.providers` and logged; ``require=True``
turns a fallback into an error.

Every window's result is one :class:`WindowScores`: fused probabilities and logits, the
per-branch probabilities under the model's own branch names, and which branches are the body and
the hand expert (the ``bharnet.experts`` metadata entry). The recognizer and the node read it
as it is.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bharnet_ros.core.labels import MAX_LABEL_LENGTH, error_line, plain_label, shown
from bharnet_ros.core.layouts import get_layout
from bharnet_ros.core.onnx_graph import OnnxGraphError, external_tensors, unbounded_operators
from bharnet_ros.core.preprocess import PreprocessConfig, preprocess_sequence
from bharnet_ros.core.skeleton import SkeletonError, SkeletonSequence
from bharnet_ros.core.text_files import read_regular_file
from bharnet_ros.core.window import Window, finite_number

logger = logging.getLogger(__name__)

PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
AUTO_ORDER = ("cuda", "cpu")  # what "auto" tries, where the ORT build offers it
DEVICES = ("cpu", "cuda", "auto")  # what the recognizer's device parameter and the CLIs take
METADATA_PREFIX = "bharnet."
REQUIRED_METADATA = ("labels", "preprocess", "inputs", "outputs", "variant", "fusion")
SUPPORTED_FORMAT = 1
DISTANCE = "distance"  # the output of a model exported with a feature distance
RESERVED_BRANCHES = ("fused", DISTANCE, "expert_only")  # eval's names for what it computes itself
MAX_DISTANCE_THRESHOLD = 1e3  # in units of the training windows' distances (model/feature_distance.py)
INPUT_RANKS = {"body": 5, "hand": 5, "hand_mask": 2}  # the only inputs an exported model has
MAX_TEMPERATURE = 1e3  # a calibrated temperature is near 1; beyond this every class is equally likely
MIN_TEMPERATURE = 1e-3  # below it every probability is 0 or 1, and the none threshold never fires
MAX_CLASSES = 65536  # ActionClass.class_id on /bharnet/labels is a uint16
MOST_MODEL_BYTES = 512 << 20  # BHaRNet at the paper's size is tens of MB; a file is read whole
FUSIONS = ("mean", "noisy_or")


class InferenceError(RuntimeError):
    """The model file or the execution providers cannot be used; the message says why and what to do."""


@dataclass(frozen=True, eq=False)
class WindowScores:
    """The scores of one window, as the model gives them and the recognizer decides on them.

    ``probabilities`` (K,) is the fused prediction and ``logits`` its logits (None where a
    classifier has none). ``branches`` holds each branch's probabilities (K,) under the model's
    branch name (``body_expert``, ``hand_interactive``, ``body``, ...); ``experts`` says which of
    them is the body expert and which the hand expert (``{"body": "body_expert", ...}``), empty for
    a single-branch model. ``distance`` is the window's feature distance from the training data,
    in units of the training windows' own (None where the model has none).
    """

    labels: Sequence[str]
    probabilities: np.ndarray
    logits: np.ndarray | None = None
    branches: Mapping[str, np.ndarray] = field(default_factory=dict)
    experts: Mapping[str, str] = field(default_factory=dict)
    distance: float | None = None  # how unlike the training data the window is (model/feature_distance.py)

    def __post_init__(self) -> None:
        shape = np.shape(self.probabilities)
        if shape != (len(self.labels),):
            raise ValueError(f"probabilities have shape {shape}, need one per label ({len(self.labels)})")
        unknown = sorted(set(self.experts.values()) - set(self.branches))
        if unknown:
            raise ValueError(f"experts name branches {unknown} that are not among {sorted(self.branches)}")

    @property
    def label(self) -> str:
        """The most probable label."""
        return self.labels[int(np.argmax(self.probabilities))]

    @property
    def score(self) -> float:
        """The probability of :attr:`label`."""
        return float(np.max(self.probabilities))

    def finite(self) -> bool:
        """Whether the fused probabilities, and the distance where there is one, are finite numbers."""
        distance_ok = self.distance is None or bool(np.isfinite(self.distance))
        return distance_ok and bool(np.isfinite(self.probabilities).all())

    def top(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable labels with their probabilities, best first (ties: label order)."""
        order = np.argsort(-np.asarray(self.probabilities), kind="stable")[:k]
        return [(self.labels[i], float(self.probabilities[i])) for i in order]

    def expert_votes(self) -> dict[str, tuple[str, float]]:
        """Each expert's top-1 label and probability by stream (``body``, ``hand``).

        An expert whose probabilities are not all finite casts no vote.
        """
        votes = {}
        for stream, branch in self.experts.items():
            p = self.branches[branch]
            if np.isfinite(p).all():
                votes[stream] = (self.labels[int(np.argmax(p))], float(np.max(p)))
        return votes


def experts_by_name(branches: Iterable[str]) -> dict[str, str]:
    """The expert of each stream for a model file without ``bharnet.experts`` (older exports).

    The first branch whose name starts with ``body`` is the body expert, the first starting with
    ``hand`` the hand expert: right for every variant exported before the entry existed.
    """
    experts: dict[str, str] = {}
    for branch in branches:
        for stream in ("body", "hand"):
            if branch.startswith(stream):
                experts.setdefault(stream, branch)
    return experts


def provider_names(providers: str | Sequence[str]) -> list[str]:
    """Short names (``cuda``, ``cpu``, ...) or ORT names to ORT provider names; ``auto`` as documented."""
    import onnxruntime as ort

    if isinstance(providers, str):
        if providers == "auto":
            available = set(ort.get_available_providers())
            return [PROVIDER_NAMES[p] for p in AUTO_ORDER if PROVIDER_NAMES[p] in available]
        providers = [providers]
    names = []
    for name in providers:
        full = PROVIDER_NAMES.get(name.lower(), name)
        if full not in PROVIDER_NAMES.values():
            raise InferenceError(f"unknown execution provider {name!r}; use one of {sorted(PROVIDER_NAMES)}")
        names.append(full)
    return names


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``logits / temperature`` over the last axis, in float64.

    The largest logit is subtracted before dividing, so logits up to FLT_MAX with a temperature
    near 0 give finite probabilities (dividing first overflows to inf, and inf - inf is NaN).
    """
    logits = np.asarray(logits, np.float64)
    shifted = np.exp((logits - logits.max(axis=-1, keepdims=True)) / temperature)
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Per-class probabilities of ``logits / temperature``, in float64 (saturates, never overflows)."""
    return 0.5 * (1.0 + np.tanh(0.5 * (np.asarray(logits, np.float64) / temperature)))


def random_feed(shapes: Mapping[str, Sequence[int]], seed: int = 0) -> dict[str, np.ndarray]:
    """Standard-normal float32 inputs of ``shapes``; ``hand_mask`` random 0/1, as a real mask is
    (Noisy-OR weighs the hand branches by it): for parity checks and timing, not for decisions."""
    rng = np.random.default_rng(seed)
    feed = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    if "hand_mask" in feed:
        feed["hand_mask"] = (feed["hand_mask"] > 0).astype(np.float32)
    return feed


class OnnxClassifier:
    """An exported BHaRNet model with its labels and preprocessing, ready for ``predict``.

    ``providers``: ``"auto"`` (CUDA where the ORT build has it, else CPU), a short name, or a
    sequence of names in priority order, e.g. ``("cuda", "cpu")``. ``threads`` sets ORT's intra-op
    thread count (None: ORT's default, one per core). ``model_bytes``: the file's bytes, where the
    caller has read them (``path`` then only names the model). ``isolated``: load and dry-run the file in
    a child process first (:mod:`~bharnet_ros.core.model_check`), so that a graph that computes for
    an hour or asks for gigabytes is refused instead of holding a running node.
    """

    def __init__(
        self,
        path: str | Path,
        providers: str | Sequence[str] = "auto",
        require: bool = False,
        threads: int | None = None,
        model_bytes: bytes | None = None,
        isolated: bool = False,
    ) -> None:
        self.path = Path(path)
        self.requested = provider_names(providers)
        model = self._read() if model_bytes is None else model_bytes
        self._check_operators(model)
        if isolated:
            from bharnet_ros.core.model_check import check_in_child

            check_in_child(self.path, model)
        self.session = self._open_session(model, threads)
        try:  # ONNX Runtime decodes these strings itself
            self.metadata = read_metadata(self.session, self.path)
            self.input_names = [i.name for i in self.session.get_inputs()]
            self.output_names = [o.name for o in self.session.get_outputs()]
        except UnicodeDecodeError:
            raise InferenceError(
                f"{self.path}: its metadata or tensor names are not UTF-8 text; export it with bharnet export"
            ) from None
        self.labels, self.preprocess, self.input_shapes = checked_metadata(self.metadata, self.path)
        self.variant: str = self.metadata["variant"]
        self.fusion: str = self.metadata["fusion"]
        self.branches = [n.removesuffix("_logits") for n in self.output_names if n.endswith("_logits")]
        self.experts = checked_experts(self.metadata, self.branches, self.path)
        temperature = self.metadata.get("temperature")  # checked by checked_metadata
        self.temperature = 1.0 if temperature is None else float(temperature)
        self.providers: list[str] = self.session.get_providers()
        self._verify_providers(require)
        self._check_graph()

    def _check_graph(self) -> None:
        """The metadata must describe the real graph: same inputs and shapes, one logit per label;
        a dry run on a still window must give finite outputs, and one on a moving window (random
        inputs) outputs of the same shapes. Otherwise the model is refused here, at load
        (configure), not at the first window."""
        where = f"{self.path}: the model's metadata disagrees with its graph"
        self._check_outputs(where)
        graph = {i.name: [d if isinstance(d, int) else 1 for d in i.shape] for i in self.session.get_inputs()}
        if graph != self.input_shapes:
            raise InferenceError(f"{where}: metadata inputs {self.input_shapes}, graph inputs {graph}")
        frames = {shape[2] for name, shape in graph.items() if name in ("body", "hand")}
        frames |= {shape[1] for name, shape in graph.items() if name == "hand_mask"}
        if frames != {self.preprocess.frames}:
            raise InferenceError(
                f"{where}: {self.preprocess.frames} frames in metadata, {sorted(frames)} in the graph"
            )
        try:
            feed = self._still_window_feed()
        except (ValueError, SkeletonError) as err:
            raise InferenceError(f"{where}: its preprocessing makes other inputs ({err})") from None
        outputs = self._run(feed, f"{where}: a dry run failed")
        for name, value in outputs.items():
            if not np.isfinite(value).all():
                raise InferenceError(f"{where}: output {name} is not finite on a still window")
        # a graph can compute what it likes from its input: one that is cheap on a still window and
        # costs minutes or gigabytes on any other is caught here too, in the isolated check's budget
        self._run(random_feed(self.input_shapes), f"{where}: a dry run on a moving window failed")

    def _run(self, feed: dict[str, np.ndarray], failed: str) -> dict[str, np.ndarray]:
        """The outputs of one window by name, each of the shape the metadata promises; otherwise
        InferenceError starting with ``failed``. A graph can pass the still window of the load
        check and fail, or change its output's shape, on a real one."""
        try:
            outputs = self.session.run(None, feed)
        except Exception as err:  # ORT's own exception types
            raise InferenceError(f"{failed} ({error_line(err, 160)})") from None
        named = dict(zip(self.output_names, outputs, strict=True))
        for name, value in named.items():
            shape, wanted = ((1,), "one window") if name == DISTANCE else ((1, len(self.labels)), None)
            if value.shape != shape:
                wanted = wanted or f"{len(self.labels)} labels"
                raise InferenceError(f"{failed}: output {name} has shape {value.shape} for {wanted}")
        return named

    def _check_operators(self, model: bytes) -> None:
        """Refuse graphs that could run without end (a Loop with a huge trip count hangs the dry
        run, and with it configure), that need a custom operator library, or whose weights lie in
        a side file."""
        try:
            unbounded, external = unbounded_operators(model), external_tensors(model)
        except OnnxGraphError as err:
            raise InferenceError(f"{self.path} is not a loadable ONNX model ({err})") from None
        if external:
            raise InferenceError(
                f"{self.path}: {external} of its tensors keep their data in a side file (ONNX external "
                "data), which would be read from the working folder, not checked with the model; export "
                "it as one file with `bharnet export`"
            )
        if unbounded:
            raise InferenceError(
                f"{self.path}: the graph uses {', '.join(unbounded)}, which no exported BHaRNet model "
                "does (it could run without end); export the model with `bharnet export`"
            )

    def _check_outputs(self, where: str) -> None:
        """The graph's outputs are the metadata's: ``logits``, ``<branch>_logits`` and perhaps
        ``distance``, float tensors; a distance threshold needs the distance."""
        declared = self.metadata["outputs"]
        if declared != self.output_names:
            raise InferenceError(
                f"{where}: metadata outputs {shown(declared, 160)}, graph outputs {self.output_names}"
            )
        if "logits" not in self.output_names:
            raise InferenceError(f"{where}: no 'logits' output (outputs: {self.output_names})")
        for output in self.session.get_outputs():
            named = output.name in ("logits", DISTANCE) or output.name.endswith("_logits")
            if not named or output.type != "tensor(float)":
                raise InferenceError(
                    f"{where}: output {output.name} ({output.type}) is not a float tensor of logits"
                )
            branch = output.name.removesuffix("_logits")
            if output.name.endswith("_logits") and (branch in RESERVED_BRANCHES or not branch.isidentifier()):
                raise InferenceError(  # eval keeps what it computes itself by these names
                    f"{where}: output {output.name} names no branch (a branch is a name like body_expert, "
                    f"not {' or '.join(RESERVED_BRANCHES)})"
                )
        if "distance_threshold" in self.metadata and DISTANCE not in self.output_names:
            raise InferenceError(f"{where}: a distance_threshold, but no {DISTANCE!r} output")

    def _still_window_feed(self) -> dict[str, np.ndarray]:
        """A window of nobody moving, through the stored preprocessing as every live window goes:
        metadata whose preprocessing makes other shapes than the graph takes (persons, channels)
        fails here, not at every window after a swap."""
        t = self.preprocess.frames
        layout = self.preprocess.body_layout
        sequence = SkeletonSequence(
            np.arange(t) / 30.0, np.zeros((t, get_layout(layout).num_joints, 4)), np.zeros((t, 2, 21, 4)),
            np.zeros((t, 2), bool), layout=layout, space=self.preprocess.space or "image",
        )  # fmt: skip
        inputs = preprocess_sequence(sequence, self.preprocess)
        given = {"body": inputs.body, "hand": inputs.hand, "hand_mask": inputs.hand_mask}
        return {name: self._batched(name, given[name]) for name in self.input_names}

    def _read(self) -> bytes:
        """The file's bytes, read once: the checks and the session see the same model even if
        the file is rewritten meanwhile. A missing file or a folder becomes an InferenceError."""
        try:
            exists, regular = self.path.exists(), self.path.is_file()
            if exists and regular and self.path.stat().st_size > MOST_MODEL_BYTES:
                raise InferenceError(
                    f"model file {self.path} holds {self.path.stat().st_size >> 20} MiB; an exported "
                    f"model is far smaller, and {MOST_MODEL_BYTES >> 20} MiB is the most loaded"
                )
            if exists and regular:
                return read_regular_file(self.path, MOST_MODEL_BYTES)
        except OSError as err:  # a name too long, a folder we may not enter, a file we may not read
            raise InferenceError(f"cannot read model file {self.path}: {err.strerror}") from None
        if not exists:
            raise InferenceError(f"model file {self.path} does not exist; export one with `bharnet export`")
        raise InferenceError(f"model {self.path} is not a regular file; give an .onnx file")

    def _open_session(self, model: bytes, threads: int | None) -> Any:
        """The ORT session; bytes that are not an ONNX model become an InferenceError."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            with warnings.catch_warnings():  # an unavailable provider is reported by _verify_providers
                warnings.simplefilter("ignore", UserWarning)
                return ort.InferenceSession(model, options, providers=self.requested)
        except Exception as err:  # ORT raises its own exception types for malformed files
            first = error_line(err)
            raise InferenceError(f"{self.path} is not a loadable ONNX model ({first})") from None

    def _verify_providers(self, require: bool) -> None:
        """Log the providers in use; with ``require`` raise if a requested one is not among them."""
        missing = [p for p in self.requested if p not in self.providers]
        logger.info("%s runs on %s (requested %s)", self.path.name, self.providers, self.requested)
        if not missing:
            return
        message = (
            f"ONNX Runtime could not use {missing} for {self.path.name} and runs on {self.providers}; "
            "install onnxruntime-gpu with matching CUDA/cuDNN, or request 'cpu'"
        )
        if require:
            raise InferenceError(message)
        logger.warning(message)

    @property
    def frames(self) -> int:
        return self.preprocess.frames

    def predict(
        self,
        body: np.ndarray | None = None,
        hand: np.ndarray | None = None,
        hand_mask: np.ndarray | None = None,
    ) -> WindowScores:
        """Scores of one sample: body ``(C, T, V, M)``, hand ``(C, T, V, 2)``, hand_mask ``(T,)``.

        A leading batch axis of 1 is accepted too; inputs the model does not take are ignored.
        """
        return self._scores(self.logits(body, hand, hand_mask))

    def logits(
        self,
        body: np.ndarray | None = None,
        hand: np.ndarray | None = None,
        hand_mask: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """The raw outputs of one sample by output name (``logits``, ``<branch>_logits``, ``distance``),
        batch axis kept."""
        given = {"body": body, "hand": hand, "hand_mask": hand_mask}
        feed = {name: self._batched(name, given[name]) for name in self.input_names}
        return self._run(feed, f"{self.path}: the model failed on a window")

    def predict_window(self, window: Window) -> WindowScores:
        """Preprocess a live window with the model's stored settings and predict."""
        inputs = preprocess_sequence(window.sequence, self.preprocess)
        return self.predict(inputs.body, inputs.hand, inputs.hand_mask)

    def _batched(self, name: str, value: np.ndarray | None) -> np.ndarray:
        """Add the batch axis and check the shape against the model's static input shape."""
        if value is None:
            raise ValueError(f"the model needs the {name!r} input")
        shape = self.input_shapes[name]
        array = np.asarray(value, dtype=np.float32)
        if array.ndim == len(shape) - 1:
            array = array[None]
        if list(array.shape[1:]) != shape[1:]:
            raise ValueError(f"{name} has shape {array.shape}, the model expects {tuple(shape)}")
        return np.ascontiguousarray(array)

    def _scores(self, outputs: dict[str, np.ndarray]) -> WindowScores:
        """Probabilities (softmax, or per-class sigmoids for Noisy-OR) of the fused logits and branches."""
        to_probability = sigmoid if self.fusion == "noisy_or" else softmax
        logits = outputs["logits"][0]
        branches = {name: to_probability(outputs[f"{name}_logits"][0]) for name in self.branches}
        return WindowScores(
            labels=self.labels,
            probabilities=to_probability(logits, self.temperature),
            logits=logits,
            branches=branches,
            experts=self.experts,
            distance=float(outputs[DISTANCE][0]) if DISTANCE in outputs else None,
        )


def checked_metadata(
    metadata: dict[str, Any], path: Path
) -> tuple[list[str], PreprocessConfig, dict[str, list[int]]]:
    """Labels, preprocessing and input shapes from the metadata, each checked for its type."""
    labels, inputs = metadata["labels"], metadata["inputs"]
    if not isinstance(labels, list) or not labels or not all(plain_label(x) for x in labels):
        raise InferenceError(
            f"{path}: metadata labels must be a non-empty list of names (printable, 1 to "
            f"{MAX_LABEL_LENGTH} characters)"
        )
    if len(set(labels)) != len(labels):
        raise InferenceError(f"{path}: metadata labels repeat a name")
    shapes_ok = isinstance(inputs, dict) and all(
        name in INPUT_RANKS
        and isinstance(shape, list)
        and len(shape) == INPUT_RANKS[name]
        and all(isinstance(d, int) and d > 0 for d in shape)
        for name, shape in inputs.items()
    )
    if not shapes_ok or not ({"body", "hand"} & set(inputs)):
        raise InferenceError(
            f"{path}: metadata inputs {shown(inputs, 160)} must map body and hand to static shapes of "
            "5 dimensions (batch, channels, frames, joints, persons) and hand_mask to 2 (batch, frames)"
        )
    check_decision_metadata(metadata, path)
    try:
        preprocess = PreprocessConfig.from_dict(metadata["preprocess"])
    except (ValueError, TypeError) as err:
        raise InferenceError(f"{path}: metadata preprocess is unusable ({err})") from None
    return list(labels), preprocess, {str(k): list(v) for k, v in inputs.items()}


def check_decision_metadata(metadata: dict[str, Any], path: Path) -> None:
    """The optional entries the recognizer decides with must have their types: a file that says
    ``none_threshold: 5`` would publish nothing but ``none``, and NaN would never say it."""
    threshold = metadata.get("none_threshold")
    if threshold is not None and not (finite_number(threshold) and 0 <= threshold <= 1):
        raise InferenceError(f"{path}: metadata none_threshold {shown(threshold)} must be a number in [0, 1]")
    distance = metadata.get("distance_threshold")
    if distance is not None and not (finite_number(distance) and 0 < distance < MAX_DISTANCE_THRESHOLD):
        raise InferenceError(
            f"{path}: metadata distance_threshold {shown(distance)} must be a number above 0 and below "
            f"{MAX_DISTANCE_THRESHOLD:g}"
        )
    temperature = metadata.get("temperature")
    if temperature is not None and not (
        finite_number(temperature) and MIN_TEMPERATURE <= temperature < MAX_TEMPERATURE
    ):
        raise InferenceError(
            f"{path}: metadata temperature {shown(temperature)} must be a number from {MIN_TEMPERATURE:g} "
            f"to below {MAX_TEMPERATURE:g}"
        )
    labels = metadata["labels"]
    if len(labels) > MAX_CLASSES:
        raise InferenceError(f"{path}: {len(labels)} labels, more than /bharnet/labels holds ({MAX_CLASSES})")
    flags = metadata.get("hand_intensive")
    if flags is not None and not (isinstance(flags, list) and all(plain_label(x) for x in flags)):
        raise InferenceError(f"{path}: metadata hand_intensive {shown(flags)} must be a list of class names")
    if flags is not None and (strangers := [x for x in flags if x not in labels]):
        raise InferenceError(  # no class would be marked, and eval would count no hand-intensive class
            f"{path}: metadata hand_intensive names {shown(strangers)}, which are not among its labels"
        )
    if not plain_label(metadata["variant"]):  # it goes into logs and /diagnostics
        raise InferenceError(
            f"{path}: metadata variant {shown(metadata['variant'])} must be printable text of at most "
            f"{MAX_LABEL_LENGTH} characters"
        )
    if metadata["fusion"] not in FUSIONS:
        raise InferenceError(f"{path}: metadata fusion {shown(metadata['fusion'])} must be one of {FUSIONS}")


def checked_experts(metadata: dict[str, Any], branches: list[str], path: Path) -> dict[str, str]:
    """The body and hand expert branches: the ``experts`` entry, or the name rule for older files."""
    if "experts" not in metadata:
        return experts_by_name(branches)
    experts = metadata["experts"]
    valid = isinstance(experts, dict) and all(
        stream in ("body", "hand") and branch in branches for stream, branch in experts.items()
    )
    if not valid:
        raise InferenceError(
            f"{path}: metadata experts {shown(experts)} must map body/hand to outputs {branches}"
        )
    return dict(experts)


def read_metadata(session: Any, path: Path) -> dict[str, Any]:
    """Our JSON metadata (keys without the ``bharnet.`` prefix); errors if absent or too new."""
    props = session.get_modelmeta().custom_metadata_map
    ours = {k.removeprefix(METADATA_PREFIX): v for k, v in props.items() if k.startswith(METADATA_PREFIX)}
    missing = [key for key in REQUIRED_METADATA if key not in ours]
    if missing:
        raise InferenceError(
            f"{path} has no bharnet metadata ({', '.join(missing)} missing); export it with `bharnet export`"
        )
    try:
        metadata = {key: json.loads(value) for key, value in ours.items()}
    except (ValueError, RecursionError) as err:  # not JSON, a 5000-digit number, nesting too deep
        raise InferenceError(f"{path}: bharnet metadata is not usable JSON ({str(err)[:160]})") from None
    version = metadata.get("format_version", SUPPORTED_FORMAT)
    if not finite_number(version) or version != int(version) or version < 1:
        raise InferenceError(f"{path}: metadata format_version {shown(version)} is not a whole number")
    if version > SUPPORTED_FORMAT:
        raise InferenceError(
            f"{path}: metadata format {shown(version)} is newer than this code; update bharnet_ros"
        )
    return metadata
