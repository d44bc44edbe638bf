"""Shared fixtures (real third-party data from ../shared/data, skipped when absent) and the test
session's environment: a ROS domain of its own, and ROS logs and caches in a temporary folder."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from bharnet_ros.core.machine_hold import hold
from bharnet_ros.core.task_bundles import CACHE_ENV

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BHARNET_SHARED_DATA", REPO.parent / "shared" / "data"))

NTU_META_FILES = (
    "ntu120_class_names.tsv",
    "NTU_RGBD_samples_with_missing_skeletons.txt",
    "NTU_RGBD120_samples_with_missing_skeletons.txt",
)
MP_RAW_EXAMPLE = "mp_holistic_signs/raw_example_25kamalesh"
MP_SIGNERS = ("25kamalesh", "AkashSharma095", "Atulkoirala", "Bhavyagokhroo")

DOMAIN_OVERRIDE = "BHARNET_TEST_DOMAIN_ID"
DOMAIN_IDS = range(1, 102)  # 0-101 are safe with the default port mapping on Linux; 0 is everyone's
DOMAIN_HOLD_NAME = "bharnet-test-domain-"  # + the id: a test run's hold on its domain
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SESSION_OWNER = os.getpid()
SESSION_TMP = Path(tempfile.mkdtemp(prefix="bharnet-test-"))  # this run's ROS logs and caches


def remove_session_tmp() -> None:
    """Delete this run's temporary folder at exit (in the process that made it, not forked children)."""
    if os.getpid() == SESSION_OWNER:
        shutil.rmtree(SESSION_TMP, ignore_errors=True)


def claim_domain() -> tuple[int, socket.socket | None]:
    """A ROS domain id for this session, and the hold (``core.machine_hold``) that reserves it
    until this process exits.

    Each test run on the machine takes the first id no other run holds (the hold dies with its
    process, so a crashed run frees its id), never the user's own ``ROS_DOMAIN_ID``: tests must
    not join a live graph, nor another run's, or the checks for a second graph fail.
    ``BHARNET_TEST_DOMAIN_ID`` chooses the id instead (no hold).
    """
    if os.environ.get(DOMAIN_OVERRIDE):
        return int(os.environ[DOMAIN_OVERRIDE]), None
    live = os.environ.get("ROS_DOMAIN_ID", "").strip()
    for domain in DOMAIN_IDS:
        if str(domain) != live and (holder := hold(f"{DOMAIN_HOLD_NAME}{domain}")) is not None:
            return domain, holder
    held = f"ROS domain ids {DOMAIN_IDS[0]}-{DOMAIN_IDS[-1]} are all held by other test runs"
    raise RuntimeError(f"{held}; set {DOMAIN_OVERRIDE}")


atexit.register(remove_session_tmp)
DOMAIN_ID, DOMAIN_HOLD = claim_domain()  # the socket stays open (held) all session

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# ROS 2 in tests, set before any rclpy context exists (subprocesses inherit it): discovery and
# traffic stay on this machine, in a domain of this session's own; logs go to the session folder
# unless ROS_LOG_DIR is set.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
# the variable the sourced Fast DDS reads, as nodes.environment.use_default_dds_profile picks it:
# Fast DDS 2 (Jazzy, under colcon test) reads only the old name
FAST_DDS_2 = os.environ.get("ROS_DISTRO", "").lower() in ("humble", "iron", "jazzy")
PROFILE_VAR = "FASTRTPS_DEFAULT_PROFILES_FILE" if FAST_DDS_2 else "FASTDDS_DEFAULT_PROFILES_FILE"
os.environ.setdefault(PROFILE_VAR, str(REPO / "config" / "fastdds_localhost.xml"))
os.environ.setdefault("ROS_HOME", str(SESSION_TMP / "ros"))
os.environ["ROS_LOG_DIR"] = os.environ.get("ROS_LOG_DIR") or str(SESSION_TMP / "ros" / "log")
os.environ["ROS_DOMAIN_ID"] = str(DOMAIN_ID)
os.environ.setdefault("AMENT_PREFIX_PATH", sys.prefix)
# Downloaded and built task bundles (tests that test the cache point it at their own tmp_path).
os.environ[CACHE_ENV] = os.environ.get(CACHE_ENV) or str(SESSION_TMP / "cache")
if ON_CI:  # Hypothesis's caches too (locally .hypothesis keeps failing examples for the next run)
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(SESSION_TMP / "hypothesis"))
# Subprocesses (CLI and node tests) import the checkout, like this process does.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))


TRAINING_MODULES = ("torch", "onnx")  # training and export only: no rosdep key, an extra on a robot


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """A test module (or folder) that cannot import torch or onnx is skipped, not an error, where
    they are not installed: ``colcon test`` on a robot that has only the runtime dependencies runs
    every other test. Under CI they must be there, and the error stays."""
    report = yield
    if report.failed and not ON_CI:
        missing = [m for m in TRAINING_MODULES if f"No module named '{m}'" in str(report.longrepr)]
        if missing:
            reason = f"Skipped: needs {missing[0]} (pip install -r requirements-training.txt)"
            report.outcome, report.longrepr = "skipped", (str(collector.path), 0, reason)
    return report


def missing_data(what: str) -> None:
    """Skip a test whose real data is absent; under CI (``CI=true``) fail instead, loudly.

    CI runs with ``../shared`` beside the clone, so a missing file there is a broken set-up that
    would otherwise let dozens of tests skip quietly and the run stay green.
    """
    if ON_CI:
        pytest.fail(f"real test data not found: {what} (CI=true: ../shared must be beside the clone)")
    pytest.skip(f"real test data not found: {what}")


@pytest.fixture(scope="session")
def shared_file():
    """``shared_file("videos/x.mp4")``: a file or folder under ../shared/data, or skip where it is missing.

    Ask for what the test reads, not for the root: a copy of the data can lack one folder.
    """

    def get(relative: str) -> Path:
        path = SHARED_DATA / relative
        if not path.exists():
            missing_data(str(path))
        return path

    return get


@pytest.fixture(scope="session")
def shared_files():
    """``shared_files("images/gesture_photos", "*.jpg", 40)``: the sorted matches in a folder under
    ../shared/data, or skip where fewer than ``count`` are there (an empty or partial copy)."""

    def get(folder: str, pattern: str, count: int) -> list[Path]:
        paths = sorted((SHARED_DATA / folder).glob(pattern))
        if len(paths) < count:
            missing_data(f"{SHARED_DATA / folder / pattern} ({len(paths)} of {count} files)")
        return paths

    return get


@pytest.fixture(scope="session")
def ntu_samples(shared_file, shared_files) -> Path:
    """The folder of the six real NTU .skeleton samples (skipped where one is missing)."""
    shared_files("ntu_samples", "*.skeleton", 6)
    return shared_file("ntu_samples")


@pytest.fixture(scope="session")
def ntu_meta(shared_file) -> Path:
    """The NTU metadata folder with the class names and both missing-skeleton lists."""
    for name in NTU_META_FILES:
        shared_file(f"ntu_meta/{name}")
    return shared_file("ntu_meta")


@pytest.fixture(scope="session")
def mp_raw_example(shared_file, shared_files) -> Path:
    """The raw MediaPipe tutorial folder with its one 30-frame sequence (hello/0)."""
    shared_files(f"{MP_RAW_EXAMPLE}/MP_Data/hello/0", "*.npy", 30)
    return shared_file(MP_RAW_EXAMPLE)


@pytest.fixture(scope="session")
def mp_signers(shared_file) -> Path:
    """The folder of the four repacked signer files (and the raw example, which has no .npz)."""
    for signer in MP_SIGNERS:
        shared_file(f"mp_holistic_signs/signer_{signer}.npz")
    return shared_file("mp_holistic_signs")


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
    preprocess = PreprocessConfig(body_layout="mediapipe33", frames=16, num_persons=1, space="image")
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
    seed = int(subject[1:]) if subject[1:].isdigit() else sum(subject.encode())
    sequences = [
        synth.generate_sequence(motion, np.random.default_rng([seed, t, i]))
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


@pytest.fixture
def children():
    """``children(pid)``: the processes whose parent is ``pid`` (from /proc)."""

    def of(pid: int) -> set[int]:
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            if int(fields[1]) == pid:
                found.add(int(stat.parent.name))
        return found

    return of
