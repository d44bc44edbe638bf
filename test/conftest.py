"""Shared fixtures: real third-party data from ../shared/data (skipped when absent)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BHARNET_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# ROS 2 in tests: discovery and traffic stay on this machine, logs stay in the tree, and a domain
# of our own so that parallel runs on one machine do not hear each other.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds.xml"))
os.environ.setdefault("ROS_HOME", str(REPO / ".ros"))
os.environ.setdefault("ROS_LOG_DIR", str(REPO / ".ros" / "log"))
os.environ.setdefault("ROS_DOMAIN_ID", str(10 + os.getpid() % 80))
os.environ.setdefault("AMENT_PREFIX_PATH", sys.prefix)
# Subprocesses (CLI and node tests) import the checkout, like this process does.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))


def missing_data(what: str) -> None:
    """Skip a test whose real data is absent; under CI (``CI=true``) fail instead, loudly.

    CI runs with ``../shared`` beside the clone, so a missing file there is a broken set-up that
    would otherwise let dozens of tests skip quietly and the run stay green.
    """
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"real test data not found: {what} (CI=true: ../shared must be beside the clone)")
    pytest.skip(f"real test data not found: {what}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder; tests that need it are skipped where it is absent (failed under CI)."""
    if not SHARED_DATA.is_dir():
        missing_data(str(SHARED_DATA))
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_file():
    """``shared_file("videos/x.mp4")``: a path under ../shared/data, or skip where it is missing."""

    def get(relative: str) -> Path:
        path = SHARED_DATA / relative
        if not path.exists():
            missing_data(str(path))
        return path

    return get


TINY_MODEL_CLASSES = ["idle", "wave", "stop"]


def model_with_metadata(source: Path, target: Path, **changes) -> Path:
    """A copy of an exported model whose ``bharnet.*`` metadata entries are set to ``changes``
    (Python values, stored as JSON as the export stores them): malformed models for refusal tests."""
    import json

    import onnx

    proto = onnx.load(str(source))
    props = {entry.key: entry.value for entry in proto.metadata_props}
    props.update({f"bharnet.{key}": json.dumps(value) for key, value in changes.items()})
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, str(target))
    return target


@pytest.fixture(scope="session")
def with_metadata():
    return model_with_metadata


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """An untrained expert-only BHaRNet-E (classes idle, wave, stop) in ONNX: real ORT inference, tiny."""
    pytest.importorskip("torch")
    from bharnet_ros.core.preprocess import PreprocessConfig
    from bharnet_ros.model.bharnet import build_model
    from bharnet_ros.model.export import export_onnx

    config = {
        "variant": "bharnet_e_expert_only",
        "num_classes": len(TINY_MODEL_CLASSES),
        "input": {"frames": 16, "body_layout": "mediapipe33", "num_persons": 1},
        "backbone": {"base_channels": 8},
    }
    model = build_model(config).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    preprocess = PreprocessConfig(body_layout="mediapipe33", frames=16, num_persons=1)
    export_onnx(model, path, TINY_MODEL_CLASSES, preprocess, hand_intensive=["stop"])
    return path


@pytest.fixture(scope="session")
def teach_base():
    """``teach_base(body_layout)``: an untrained two-block BHaRNet-E checkpoint on idle and wave
    (window 1 s), its batch norms set on random inputs: the base model of the teaching tests."""
    torch = pytest.importorskip("torch")
    from bharnet_ros.core.layouts import LAYOUTS
    from bharnet_ros.core.preprocess import PreprocessConfig
    from bharnet_ros.model.batchnorm import calibrate_batchnorm
    from bharnet_ros.model.bharnet import build_model
    from bharnet_ros.model.checkpoint import make_checkpoint
    from bharnet_ros.model.config import load_model_config

    def make(body_layout: str = "ntu25"):
        tiny = {
            "num_classes": 2,
            "backbone": {"base_channels": 8, "stages": [[1, 1], [2, 2]]},
            "attention": {"heads": 1, "dim_head": 8, "num_features": 16},
            "expertized": {"split_block": 1},
            "input": {"frames": 16, "body_layout": body_layout, "num_persons": 1},
        }
        torch.manual_seed(0)
        model = build_model(load_model_config(REPO / "config" / "model" / "bharnet_e.yaml", tiny))
        joints = LAYOUTS[body_layout].num_joints
        batch = {"body": torch.randn(4, 3, 16, joints, 1), "hand": torch.randn(4, 3, 16, joints, 2)}
        calibrate_batchnorm(model, [batch])
        preprocess = PreprocessConfig(body_layout=body_layout, frames=16, num_persons=1, window_seconds=1.0)
        return make_checkpoint(model.eval(), ["idle", "wave"], preprocess, hand_intensive=[])

    return make


TINY_RUN = [
    "epochs=1",
    "batch_size=4",
    "eval_batch_size=4",
    "workers=0",
    "progress=false",
    "model.overrides.input.frames=16",
    "model.overrides.backbone.base_channels=8",
    "model.overrides.attention.heads=1",
    "model.overrides.attention.dim_head=8",
]
PERSON_CLASSES = ["wave", "clap", "left", "right"]


@pytest.fixture(scope="session")
def tiny_run() -> list[str]:
    """Overrides that make any training config a one-epoch run of a tiny model."""
    return list(TINY_RUN)


def write_person_file(folder: Path, subject: str, takes: int = 2) -> Path:
    """One person's import, with the sample names every person's file has (as `import videos` makes).

    Classes wave, clap, left, right (left and right perform a wave); attributes subject, distance.
    """
    from bharnet_ros.training import synth
    from bharnet_ros.training.dataset import SkeletonDataset

    motions = [c if c in synth.CLASS_NAMES else "wave" for c in PERSON_CLASSES]
    sequences = [
        synth.generate_sequence(motion, np.random.default_rng([int(subject[1:]), t, i]))
        for t in range(takes)
        for i, motion in enumerate(motions)
    ]
    data = SkeletonDataset.from_sequences(
        sequences,
        [i for _ in range(takes) for i in range(len(PERSON_CLASSES))],
        PERSON_CLASSES,
        names=[f"{c}_{t}" for t in range(takes) for c in PERSON_CLASSES],
        attributes=[
            {"subject": subject, "distance": f"{1 + t}m"} for t in range(takes) for _ in PERSON_CLASSES
        ],
    )
    return data.save(folder / f"{subject}.npz")


@pytest.fixture(scope="session")
def person_file():
    """``person_file(folder, "S1", takes=2)``: see :func:`write_person_file`."""
    return write_person_file
