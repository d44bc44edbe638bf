"""The models that ship in ``models/``, opened as the recognizer node opens them.

Each one loads through the node's loader, its labels and hand-intensive flags agree with its
metadata, one live window gives a sound decision, and it clears a small accuracy floor: on
hand-shape gestures our own generator makes with a seed it was not trained on, and on the
signers of ``../shared`` where they are present. A broken export, a wrong label order or a model
that lost its training would fail here before it reaches a robot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bharnet_ros.core.paths import default_model
from bharnet_ros.core.recognizer import Recognizer, RecognizerConfig, load_window_classifier
from bharnet_ros.training.classes import drop_empty_classes
from bharnet_ros.training.dataset import SkeletonDataset
from bharnet_ros.training.evaluate import evaluate, open_model
from bharnet_ros.training.importers.mpdata import read_signer_file
from bharnet_ros.training.synth import generate_sequence

MODELS = sorted(default_model().parent.glob("*.onnx"))
# Hand shapes no real recording covers: the default model learns them from the generator (seed 0).
GENERATED = ["thumbs_up", "thumbs_down", "ok_sign", "victory_sign", "pointing"]
FLOOR = 0.6  # far below what the model card reports, far above chance among its classes


def test_the_default_model_ships():
    assert default_model() in MODELS


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_a_shipped_model_loads_with_its_metadata_and_decides(path: Path):
    classifier = load_window_classifier(str(path))
    metadata = classifier.onnx.metadata
    assert classifier.class_names == list(metadata["labels"])
    assert len(set(classifier.class_names)) == len(classifier.class_names)
    assert "none" in classifier.class_names
    assert set(metadata.get("hand_intensive") or []) <= set(classifier.class_names)
    assert 0.0 < classifier.none_threshold < 1.0
    assert classifier.distance_threshold > 0.0  # unfamiliar motion reads as "none" (--distance-from)
    assert classifier.outputs_distance
    assert metadata["test_mirror"] is True  # each window averaged with its mirror image
    assert classifier.description.endswith(", test-time mirroring)")  # on /diagnostics
    assert classifier.space == "image"  # trained on the pose stage's output: metres are refused
    recognizer = Recognizer(classifier, RecognizerConfig())
    sequence = generate_sequence("thumbs_up", np.random.default_rng(7))
    decisions = [d for t in range(len(sequence)) if (d := recognizer.push(sequence.frame(t)))]
    assert decisions, "a 2 s gesture gives decisions"
    for decision in decisions:
        assert decision.label in classifier.class_names
        assert np.isfinite(decision.confidence)
        assert 0.0 <= decision.confidence <= 1.0


def generated_dataset(class_names: list[str], per_class: int = 4) -> SkeletonDataset:
    """Gestures from the generator with seeds the shipped training data did not use."""
    sequences, labels = [], []
    for label, name in enumerate(class_names):
        for k in range(per_class):
            sequences.append(generate_sequence(name, np.random.default_rng([1000, label, k])))
            labels.append(label)
    return SkeletonDataset.from_sequences(sequences, labels, class_names)


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_a_shipped_model_recognises_generated_hand_shapes(path: Path):
    model = open_model(path)
    classes = [name for name in GENERATED if name in model.labels]
    assert classes, f"{path.name} knows none of the generated hand shapes"
    result = evaluate(model, generated_dataset(classes))
    assert result.report.top1 >= FLOOR, result.report.top1


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_a_shipped_model_recognises_a_real_signer(path: Path, shared_file):
    data = read_signer_file(shared_file("mp_holistic_signs/signer_Atulkoirala.npz"))
    data.class_names = ["i_love_you" if name == "iloveyou" else name for name in data.class_names]
    result = evaluate(open_model(path), drop_empty_classes(data))
    assert result.report.top1 >= FLOOR, result.report.top1
