"""The ROS-free recognition pipeline: stride, readiness, per-person state, stamps.

The classifier is a stand-in here: this test is about windowing and decisions, not the model
(the ONNX classifier has its own tests).
"""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bharnet_ros.core.inference import WindowScores
from bharnet_ros.core.recognizer import (
    Recognizer,
    RecognizerConfig,
    accepted_layouts,
    load_window_classifier,
    takes_frame,
)
from bharnet_ros.core.skeleton import SkeletonError, SkeletonFrame
from bharnet_ros.core.window import Window


class HandRaisedClassifier:
    """Says "raise" when the left hand is present in most of the window, else "idle"."""

    window_length = 16
    window_seconds = 16 / 30
    body_layout = "ntu25"  # takes mediapipe33 bodies (mapped) and ntu25
    space = "image"
    description = "hand-raised stand-in"

    def __init__(self) -> None:
        self.class_names = ["idle", "raise"]
        self.hand_intensive = [False, True]
        self.providers = ["CPUExecutionProvider"]
        self.windows: list[Window] = []

    def classify(self, window: Window) -> WindowScores:
        self.windows.append(window)
        p = float(window.hand_mask[:, 0].mean())
        return self.scores(np.array([1 - p, p]))

    def scores(self, fused: np.ndarray) -> WindowScores:
        """``fused`` as the fused and the hand expert's scores; the body expert is undecided."""
        branches = {"body_expert": np.array([0.5, 0.5]), "hand_expert": fused}
        experts = {"body": "body_expert", "hand": "hand_expert"}
        return WindowScores(self.class_names, fused, branches=branches, experts=experts)


def frame(t: float, person: int = 0, hand: bool = False) -> SkeletonFrame:
    body = np.full((33, 4), 0.5, np.float32)
    hands = np.zeros((2, 21, 4), np.float32)
    if hand:
        hands[0] = 0.4
    return SkeletonFrame(t, body, hands, np.array([hand, False]), person_id=person)


@pytest.fixture
def recognizer():
    config = RecognizerConfig(stride_seconds=4 / 30, min_seconds=7 / 30, smoothing=1.0, switch_margin=0.0)
    return Recognizer(HandRaisedClassifier(), config)


def test_first_decision_when_ready_then_every_stride(recognizer):
    results = [recognizer.push(frame(i / 30)) for i in range(20)]
    decided = [i for i, r in enumerate(results) if r is not None]
    assert decided == [7, 11, 15, 19]  # 7/30 s of history, then every 4/30 s
    assert results[19].stamp == pytest.approx(19 / 30)  # the newest frame's stamp
    assert results[19].window_start == pytest.approx(3 / 30)  # the model's 16/30 s window
    assert results[19].label == "idle"


def test_stride_is_in_sensor_time_whatever_the_frame_rate():
    config = RecognizerConfig(stride_seconds=0.2, min_seconds=0.0, smoothing=1.0)
    for fps in (10, 30, 90):
        recognizer = Recognizer(HandRaisedClassifier(), config)
        decided = [recognizer.push(frame(i / fps)) for i in range(fps * 2)]
        stamps = [r.stamp for r in decided if r is not None]
        assert len(stamps) == 10, fps  # 2 s at one decision per 0.2 s
        assert np.diff(stamps).min() >= 0.2 - 1e-9


@pytest.mark.parametrize("fps", [12, 20, 25, 60])
def test_decisions_come_at_the_strides_rate_when_frames_do_not_divide_it(fps):
    """From the deciding frame's stamp, each interval ran to the next frame: 5 to 6 a second."""
    config = RecognizerConfig(stride_seconds=0.15, min_seconds=0.0, smoothing=1.0)
    recognizer = Recognizer(HandRaisedClassifier(), config)
    stamps = [r.stamp for i in range(fps * 30) if (r := recognizer.push(frame(i / fps))) is not None]
    assert len(stamps) == pytest.approx(30 / 0.15, abs=1)
    assert np.diff(stamps).min() >= 0.15 - 1 / fps - 1e-9


def test_a_live_change_of_stride_applies_from_the_next_decision():
    config = RecognizerConfig(stride_seconds=0.1, min_seconds=0.0, smoothing=1.0)
    recognizer = Recognizer(HandRaisedClassifier(), config)
    for i in range(600):  # 20 s: 200 strides counted from the first decision
        recognizer.push(frame(i / 30))
    recognizer.apply_live(RecognizerConfig(stride_seconds=1.0, min_seconds=0.0, smoothing=1.0))
    stamps = [r.stamp for i in range(600, 690) if (r := recognizer.push(frame(i / 30))) is not None]
    assert len(stamps) == 3  # the one already due, then one a second
    assert np.diff(stamps).min() == pytest.approx(1.0)


def test_a_stride_lowered_live_applies_from_the_last_decision():
    """Lowered from 10 s to 0.1 s, the old stride had to run out: no decision for 10 s."""
    config = RecognizerConfig(stride_seconds=10.0, min_seconds=0.0, smoothing=1.0)
    recognizer = Recognizer(HandRaisedClassifier(), config)
    for i in range(30):
        recognizer.push(frame(i / 30))
    recognizer.apply_live(RecognizerConfig(stride_seconds=0.1, min_seconds=0.0, smoothing=1.0))
    stamps = [r.stamp for i in range(30, 60) if (r := recognizer.push(frame(i / 30))) is not None]
    assert stamps[0] == pytest.approx(1.0)
    assert len(stamps) == 10


def test_decisions_do_not_catch_up_after_a_gap():
    config = RecognizerConfig(stride_seconds=0.2, min_seconds=0.0, smoothing=1.0, window_seconds=5.0)
    recognizer = Recognizer(HandRaisedClassifier(), config)
    times = [i / 30 for i in range(30)] + [2.0 + i / 30 for i in range(30)]  # a 1 s gap
    stamps = [r.stamp for t in times if (r := recognizer.push(frame(t))) is not None]
    after = [s for s in stamps if s >= 2.0]
    assert after[0] == 2.0
    assert np.diff(after).min() >= 0.2 - 1e-9


def test_the_window_duration_comes_from_the_model_unless_configured():
    assert Recognizer(HandRaisedClassifier()).window_seconds == pytest.approx(16 / 30)
    configured = Recognizer(HandRaisedClassifier(), RecognizerConfig(window_seconds=3.0))
    assert configured.window_seconds == 3.0
    assert configured.windows.get(0) is None
    configured.push(frame(0.0))
    assert configured.windows.get(0).seconds == 3.0


def test_low_confidence_becomes_none():
    config = RecognizerConfig(
        stride_seconds=0.0, min_seconds=0.0, smoothing=1.0, none_threshold=0.9, max_gap=0
    )
    recognizer = Recognizer(HandRaisedClassifier(), config)
    results = [recognizer.push(frame(i / 30, hand=i % 2 == 0)) for i in range(30)]
    last = results[-1]
    assert last.label == "none"
    assert last.class_id == -1  # the model has no "none" class
    assert last.top_labels[0] in ("idle", "raise")  # the raw scores are still published
    best = recognizer.person_states()[0].smoother.probabilities.max()
    assert last.confidence == pytest.approx(1.0 - best)  # not the rejected label's: "none, 94 % sure"
    sure = [recognizer.push(frame((30 + i) / 30, hand=True)) for i in range(40)][-1]
    assert sure.label == "raise"


def test_from_params_takes_the_config_keys_and_ignores_the_rest():
    params = {"window_seconds": 1.5, "smoothing": 0.3, "model": "x.onnx", "threads": 2}
    config = RecognizerConfig.from_params(params)
    assert config.window_seconds == 1.5
    assert config.smoothing == 0.3


def test_decisions_follow_the_input_and_carry_expert_scores(recognizer):
    for i in range(16):
        recognizer.push(frame(i / 30))
    results = [recognizer.push(frame((16 + i) / 30, hand=True)) for i in range(20)]
    last = [r for r in results if r][-1]
    assert last.label == "raise"
    assert last.top_labels == ["raise", "idle"]
    assert last.expert_labels == {"body": ("idle", 0.5), "hand": ("raise", 1.0)}
    assert last.hand_fraction == pytest.approx(1.0)


def test_persons_have_separate_windows_and_time_going_back_restarts(recognizer):
    for i in range(8):
        assert recognizer.push(frame(i / 30, person=1)) is None or i == 7
        recognizer.push(frame(i / 30, person=2, hand=True))
    labels = {w.sequence.person_id for w in recognizer.classifier.windows}
    assert labels == {1, 2}
    assert recognizer.push(frame(0.0, person=1)) is None  # backwards: the window starts over
    assert len(recognizer.windows.get(1)) == 1


def test_prune_forgets_people_who_left(recognizer):
    recognizer.push(frame(0.0, person=3))
    assert recognizer.prune(now=5.0) == [3]
    assert 3 not in recognizer.windows


def test_frames_in_which_nobody_was_seen_are_left_out_as_the_feeder_leaves_them(recognizer):
    """They were zeros inside the window where training blends the frames either side, and kept
    deciding for a person nobody saw."""
    for i in range(7):
        recognizer.push(frame(i / 30))
    for i in range(7, 60):
        assert recognizer.push(SkeletonFrame.empty(i / 30)) is None
    window = recognizer.windows.get(0).window(16)
    assert window.sequence.body[..., :3].min() == 0.5  # no all-zero instant
    assert recognizer.prune(now=2.0) == [0]  # the person times out: nobody was seen for 1.8 s


def test_per_person_state_goes_with_the_window_under_id_churn():
    """Thousands of short-lived ids: nothing the recognizer keeps grows with them."""
    config = RecognizerConfig(stride_seconds=0.0, min_seconds=0.0, max_persons=4, person_timeout=0.2)
    recognizer = Recognizer(HandRaisedClassifier(), config)
    for i in range(3000):
        recognizer.push(frame(i / 30, person=i // 3))  # a new id every 0.1 s
    assert len(recognizer.windows) <= 4
    assert len(recognizer.person_states()) <= 4
    assert set(recognizer.person_states()) <= set(recognizer.windows.person_ids)
    recognizer.windows.reset()
    assert recognizer.person_states() == {}


def test_a_body_layout_the_model_cannot_use_is_refused_before_any_state_changes():
    classifier = HandRaisedClassifier()
    classifier.body_layout = "mediapipe33"
    recognizer = Recognizer(classifier)
    ntu = SkeletonFrame(0.0, np.full((25, 4), 0.5, np.float32), layout="ntu25")
    with pytest.raises(SkeletonError, match="cannot feed this model"):
        recognizer.push(ntu)
    assert recognizer.stats.incompatible_layout == 1
    assert len(recognizer.windows) == 0


def test_a_space_the_model_was_not_trained_in_is_refused_before_any_state_changes():
    recognizer = Recognizer(HandRaisedClassifier())  # trained on image-space skeletons
    metres = SkeletonFrame(0.0, np.full((33, 4), 0.5, np.float32), space="world")
    with pytest.raises(SkeletonError, match="a world-space skeleton cannot feed this model.*image-space"):
        recognizer.push(metres)
    assert (recognizer.stats.incompatible_space, recognizer.stats.incompatible_layout) == (1, 0)
    assert len(recognizer.windows) == 0
    recognizer.push(frame(0.0))  # image-space frames still go through
    assert len(recognizer.windows) == 1


def test_a_model_that_did_not_record_its_space_takes_either():
    classifier = HandRaisedClassifier()
    classifier.space = ""  # exported before the space was recorded
    recognizer = Recognizer(classifier)
    recognizer.push(SkeletonFrame(0.0, np.full((33, 4), 0.5, np.float32), space="world"))
    assert recognizer.stats.incompatible_space == 0


class NaNOnceClassifier(HandRaisedClassifier):
    """Returns non-finite scores for its second window, then behaves."""

    def classify(self, window: Window) -> WindowScores:
        scores = super().classify(window)
        if len(self.windows) == 2:
            return self.scores(np.array([np.nan, np.nan]))
        return scores


def test_non_finite_scores_reset_the_person_instead_of_freezing_the_label():
    config = RecognizerConfig(stride_seconds=0.0, min_seconds=0.0, smoothing=0.5)
    recognizer = Recognizer(NaNOnceClassifier(), config)
    results = [recognizer.push(frame(i / 30, hand=i > 3)) for i in range(30)]
    assert results[1] is None  # the NaN window: no decision
    assert recognizer.stats.nonfinite_scores == 1
    later = [r for r in results[2:] if r is not None]
    assert all(np.isfinite(r.confidence) for r in later)
    assert later[-1].label == "raise"


def test_a_fifth_person_is_refused_and_counted_while_four_are_served():
    config = RecognizerConfig(stride_seconds=0.0, min_seconds=0.0, max_persons=4)
    recognizer = Recognizer(HandRaisedClassifier(), config)
    decided = set()
    for i in range(60):
        for person in range(5):
            result = recognizer.push(frame(i / 30, person=person))
            if result is not None:
                decided.add(result.person_id)
    assert decided == {0, 1, 2, 3}
    assert recognizer.stats.persons_refused == 60


def smooth_wave(t: float) -> SkeletonFrame:
    """A noise-free person waving the left arm at 0.7 Hz (a smooth motion any frame rate samples)."""
    body = np.zeros((33, 4), np.float32)
    body[:, 0] = np.linspace(0.4, 0.6, 33)
    body[:, 1] = np.linspace(0.2, 0.8, 33)
    body[[11, 12], 0] = [0.55, 0.45]
    body[15, :2] = [0.7 + 0.1 * np.sin(2 * np.pi * 0.7 * t), 0.3 - 0.05 * np.cos(2 * np.pi * 0.7 * t)]
    body[:, 3] = 1.0
    hands = np.zeros((2, 21, 4), np.float32)
    hands[0, :, 0] = body[15, 0] + np.linspace(0.0, 0.04, 21)
    hands[0, :, 1] = body[15, 1] - np.linspace(0.0, 0.05, 21)
    hands[0, :, 3] = 1.0
    return SkeletonFrame(t, body, hands, np.array([True, False]), image_size=(640, 480))


@pytest.mark.parametrize("fps", [10, 15, 20, 30])
def test_the_same_motion_at_any_frame_rate_gives_the_same_input_and_decision(fps, tiny_model):
    """A real (tiny) ONNX model: the window input and the decision do not depend on the frame rate."""
    from bharnet_ros.core.preprocess import preprocess_sequence
    from bharnet_ros.core.recognizer import load_window_classifier

    classifier = load_window_classifier(str(tiny_model))
    config = RecognizerConfig(window_seconds=1.5, stride_seconds=0.0, min_seconds=1.5, smoothing=1.0)

    def run(rate: int):
        recognizer = Recognizer(classifier, config)
        decisions = [recognizer.push(smooth_wave(k / rate)) for k in range(2 * rate + 1)]
        window = recognizer.windows.get(0).window(classifier.window_length, 1.5)
        return decisions[-1], preprocess_sequence(window.sequence, classifier.onnx.preprocess)

    decision, inputs = run(fps)
    reference, expected = run(60)
    np.testing.assert_allclose(inputs.body, expected.body, atol=0.05)  # body sizes
    np.testing.assert_allclose(inputs.hand, expected.hand, atol=0.05)
    assert decision.label == reference.label
    np.testing.assert_allclose(decision.top_scores, reference.top_scores, atol=0.02)


class ScriptedClassifier(HandRaisedClassifier):
    """Returns the given fused probabilities, one per window, in order."""

    def __init__(self, script: list[list[float]]) -> None:
        super().__init__()
        self.script = list(script)

    def classify(self, window: Window) -> WindowScores:
        self.windows.append(window)
        return self.scores(np.array(self.script[len(self.windows) - 1]))


def test_smoothing_and_switch_margin_decide_when_the_label_may_change():
    script = [[0.6, 0.4], [0.35, 0.65], [0.35, 0.65], [0.35, 0.65]]
    config = RecognizerConfig(stride_seconds=0.0, min_seconds=0.0, smoothing=0.5, switch_margin=0.2)
    recognizer = Recognizer(ScriptedClassifier(script), config)
    results = [recognizer.push(frame(i / 30)) for i in range(len(script))]
    assert [r.label for r in results] == ["idle", "idle", "idle", "raise"]
    # smoothed: (0.6, 0.4) -> (0.475, 0.525) -> (0.4125, 0.5875) -> (0.38125, 0.61875)
    assert [r.confidence for r in results] == pytest.approx([0.6, 0.475, 0.4125, 0.61875])
    assert results[1].top_labels[0] == "raise"  # the raw top-1 already changed; the decision holds


def test_without_smoothing_or_margin_the_label_follows_each_window():
    script = [[0.6, 0.4], [0.35, 0.65], [0.7, 0.3]]
    for smoothing, margin in ((1.0, 0.2), (0.5, 0.0)):
        config = RecognizerConfig(
            stride_seconds=0.0, min_seconds=0.0, smoothing=smoothing, switch_margin=margin
        )
        recognizer = Recognizer(ScriptedClassifier(script), config)
        labels = [recognizer.push(frame(i / 30)).label for i in range(len(script))]
        assert labels[1] == "raise", (smoothing, margin)


def test_live_settings_change_decisions_and_keep_windows_and_averages():
    config = RecognizerConfig(stride_seconds=0.0, min_seconds=0.0, smoothing=1.0, switch_margin=0.0, top_k=5)
    recognizer = Recognizer(ScriptedClassifier([[0.6, 0.4]] * 3 + [[0.2, 0.8]] * 4), config)
    for i in range(3):
        recognizer.push(frame(i / 30))
    smoother = recognizer.person_states()[0].smoother
    live = RecognizerConfig(
        window_seconds=9.0, max_gap=0, person_timeout=0.1, max_persons=1,  # window settings: kept
        stride_seconds=0.05, min_seconds=0.2, smoothing=0.5, switch_margin=0.25, top_k=1, none_threshold=0.55,
    )  # fmt: skip
    recognizer.apply_live(live)
    assert recognizer.person_states()[0].smoother is smoother  # the average goes on
    assert (smoother.alpha, smoother.switch_margin) == (0.5, 0.25)
    kept = ("window_seconds", "max_gap", "person_timeout", "max_persons")
    assert [getattr(recognizer.config, n) for n in kept] == [0.0, config.max_gap, config.person_timeout, 4]
    assert recognizer.none_threshold == 0.55
    assert len(recognizer.windows.get(0)) == 3
    assert [recognizer.push(frame(i / 30)) for i in range(3, 6)] == [None] * 3  # below 0.2 s of history
    first = recognizer.push(frame(6 / 30))  # smoothed (0.4, 0.6): "raise" leads by 0.2 < 0.25, but
    assert (first.label, first.confidence) == ("raise", pytest.approx(0.6))  # idle's 0.4 is below 0.55
    assert first.top_labels == ["raise"]  # top_k 1
    assert recognizer.push(frame(7 / 30)) is None  # stride 0.05 s
    assert recognizer.push(frame(8 / 30)).label == "raise"  # (0.3, 0.7) after the second window


def test_live_settings_reach_people_who_arrive_later():
    recognizer = Recognizer(HandRaisedClassifier(), RecognizerConfig())
    recognizer.apply_live(RecognizerConfig(smoothing=0.3, switch_margin=0.05))
    recognizer.push(frame(0.0, person=7))
    smoother = recognizer.person_states()[7].smoother
    assert (smoother.alpha, smoother.switch_margin) == (0.3, 0.05)


class OtherClassifier(HandRaisedClassifier):
    """The stand-in with other class names, window, layout or calibrated threshold."""

    def __init__(
        self,
        names=("idle", "raise"),
        length=16,
        seconds=16 / 30,
        layout="ntu25",
        threshold=0.0,
        space="image",
    ):
        super().__init__()
        self.class_names, self.window_length, self.window_seconds = list(names), length, seconds
        self.body_layout, self.none_threshold, self.space = layout, threshold, space


def swap_after(frames: int, new: HandRaisedClassifier) -> tuple[Recognizer, bool]:
    """A recognizer that saw ``frames`` frames of person 0, then replaced its classifier."""
    config = RecognizerConfig(stride_seconds=0.0, min_seconds=0.0)
    recognizer = Recognizer(HandRaisedClassifier(), config)
    for i in range(frames):
        recognizer.push(frame(i / 30))
    return recognizer, recognizer.replace_classifier(new)


def test_a_model_with_the_same_input_and_labels_keeps_windows_and_averages():
    recognizer, kept = swap_after(5, OtherClassifier(threshold=0.4))
    state = recognizer.windows.get(0).state["recognizer"]
    assert kept
    assert len(recognizer.windows.get(0)) == 5
    assert recognizer.person_states()[0] is state
    assert recognizer.none_threshold == 0.4  # the new model's calibration
    assert recognizer.push(frame(5 / 30)) is not None
    assert recognizer.classifier.windows  # the new model classifies


def test_a_model_with_other_labels_keeps_windows_but_restarts_averages():
    recognizer, kept = swap_after(5, OtherClassifier(names=("rest", "wave")))
    assert kept
    assert len(recognizer.windows.get(0)) == 5
    assert recognizer.person_states() == {}
    assert recognizer.push(frame(5 / 30)).label in ("rest", "wave")


@pytest.mark.parametrize(
    "new",
    [
        OtherClassifier(length=8),
        OtherClassifier(seconds=1.0),
        OtherClassifier(layout="mediapipe33"),
        OtherClassifier(space="world"),
    ],
    ids=["frames", "seconds", "layout", "space"],
)
def test_a_model_that_reads_windows_differently_starts_everyone_afresh(new):
    recognizer, kept = swap_after(5, new)
    assert not kept
    assert len(recognizer.windows) == 0
    assert recognizer.window_seconds == new.window_seconds
    assert recognizer.windows.seconds == new.window_seconds
    assert recognizer.accepted_layouts == accepted_layouts(new.body_layout)
    assert recognizer.space == new.space
    if new.space == "image":
        recognizer.push(frame(5 / 30))
        assert recognizer.windows.get(0).seconds == new.window_seconds


def test_accepted_layouts():
    assert accepted_layouts("ntu25") == ("ntu25", "mediapipe33")
    assert accepted_layouts("mediapipe33") == ("mediapipe33",)
    assert accepted_layouts("") == ()


class CalibratedClassifier(ScriptedClassifier):
    """A scripted classifier whose model carries a calibrated none threshold and a ``none`` class."""

    none_threshold = 0.55

    def __init__(self, script: list[list[float]]) -> None:
        super().__init__(script)
        self.class_names = ["idle", "none", "raise"]


def test_the_models_calibrated_threshold_applies_unless_configured():
    script = [[0.5, 0.05, 0.45], [0.55, 0.05, 0.4]]  # top 0.5, then exactly the threshold
    config = RecognizerConfig(stride_seconds=0.0, min_seconds=0.0, smoothing=1.0, switch_margin=0.0)
    recognizer = Recognizer(CalibratedClassifier(script), config)
    assert recognizer.none_threshold == 0.55
    below, level = (recognizer.push(frame(i / 30)) for i in range(2))
    assert (below.label, below.class_id) == ("none", 1)  # the model's own none class
    assert (level.label, level.class_id) == ("idle", 0)  # at the threshold is enough
    recognizer.apply_live(config)
    assert recognizer.none_threshold == 0.55  # still the model's
    configured = Recognizer(CalibratedClassifier(script), RecognizerConfig(none_threshold=0.3))
    assert configured.none_threshold == 0.3


class DistanceClassifier(ScriptedClassifier):
    """A scripted classifier whose windows come with feature distances, and a calibrated threshold."""

    distance_threshold = 2.0

    def __init__(self, script: list[list[float]], distances: list[float | None]) -> None:
        super().__init__(script)
        self.distances = distances

    def classify(self, window: Window) -> WindowScores:
        scores = super().classify(window)
        return WindowScores(
            scores.labels, scores.probabilities, distance=self.distances[len(self.windows) - 1]
        )


def test_a_window_far_from_the_training_data_says_none_and_is_counted():
    script = [[0.9, 0.1]] * 6
    distances = [1.0, 2.0, 2.5, float("nan"), float("inf"), None]  # None: a model without a distance
    config = RecognizerConfig(stride_seconds=0.0, min_seconds=0.0, smoothing=1.0, switch_margin=0.0)
    recognizer = Recognizer(DistanceClassifier(script, distances), config)
    assert recognizer.distance_threshold == 2.0  # the model's own
    results = [recognizer.push(frame(i / 30)) for i in range(6)]
    labels = [None if result is None else result.label for result in results]
    assert labels == ["idle", "idle", "none", None, None, "idle"]  # at the threshold is familiar
    assert recognizer.windows_unfamiliar == 1
    assert recognizer.stats.nonfinite_scores == 2  # a distance that is no number: nothing to decide on
    recognizer.apply_live(RecognizerConfig(**{**vars(config), "distance_threshold": 3.0}))
    assert recognizer.distance_threshold == 3.0
    plain = Recognizer(ScriptedClassifier(script), RecognizerConfig(distance_threshold=0.0))
    assert plain.distance_threshold == 0.0  # a model without a distance: off


def test_a_none_of_the_distance_rule_is_as_sure_as_the_best_label_is_not():
    """Under the switching margin the held label need not be the best: the confidence of the none
    was 1 - the held label's probability, not 1 - the best label's (docs/nodes.md)."""
    script = [[0.6, 0.4], [0.45, 0.55], [0.45, 0.55]]
    config = RecognizerConfig(stride_seconds=0.0, min_seconds=0.0, smoothing=1.0, switch_margin=0.2)
    recognizer = Recognizer(DistanceClassifier(script, [1.0, 1.0, 5.0]), config)
    results = [recognizer.push(frame(i / 30)) for i in range(3)]
    assert [r.label for r in results] == ["idle", "idle", "none"]  # idle held against a 0.1 lead
    assert results[2].confidence == pytest.approx(0.45)  # 1 - raise's 0.55


def test_a_none_class_below_the_threshold_reports_one_minus_the_best_as_every_rule_made_none():
    """The none class best at 0.55 under a 0.6 threshold reported 0.55, where the rule says 0.45:
    the same message meant two things, depending on hidden hysteresis."""
    classifier = ScriptedClassifier([[0.4, 0.55, 0.05], [0.3, 0.7, 0.0]])
    classifier.class_names = ["idle", "none", "raise"]
    config = RecognizerConfig(stride_seconds=0.0, min_seconds=0.0, smoothing=1.0, none_threshold=0.6)
    recognizer = Recognizer(classifier, config)
    results = [recognizer.push(frame(i / 30)) for i in range(2)]
    assert [(r.label, r.class_id) for r in results] == [("none", 1), ("none", 1)]
    assert [r.confidence for r in results] == pytest.approx([0.45, 0.7])  # made by the rule; the class's own


def test_a_model_without_a_distance_output_has_the_distance_rule_off_whatever_the_parameter():
    script = [[0.9, 0.1]]
    without = DistanceClassifier(script, [None])
    without.outputs_distance = False
    recognizer = Recognizer(without, RecognizerConfig(distance_threshold=2.5))
    assert recognizer.distance_threshold == 0.0  # /diagnostics shows the rule off, not 2.5
    recognizer.replace_classifier(DistanceClassifier(script, [1.0]))
    assert recognizer.distance_threshold == 2.5  # the parameter again, for a model with a distance
    recognizer.replace_classifier(without)
    assert recognizer.distance_threshold == 0.0


def test_window_settings_reach_the_window_set():
    config = RecognizerConfig(person_timeout=0.7, max_persons=2, max_gap=3)
    recognizer = Recognizer(HandRaisedClassifier(), config)
    for person in range(3):
        recognizer.push(frame(0.0, person=person))
    assert recognizer.windows.person_ids == [0, 1]
    assert recognizer.stats.persons_refused == 1
    assert recognizer.windows.get(0).max_gap == 3
    assert recognizer.prune(now=0.69) == []
    assert recognizer.prune(now=0.71) == [0, 1]


def test_persons_time_out_by_arrival_not_by_stamp():
    recognizer = Recognizer(HandRaisedClassifier(), RecognizerConfig(person_timeout=1.0))
    recognizer.push(frame(0.0, person=5), arrival=100.0)  # a replayed stamp, arriving now
    assert recognizer.prune(now=100.5) == []
    assert recognizer.prune(now=101.5) == [5]


def test_counters_count_every_event():
    config = RecognizerConfig(stride_seconds=0.0, min_seconds=0.0)
    nan = [np.nan, np.nan]
    recognizer = Recognizer(ScriptedClassifier([[0.6, 0.4], nan, nan, [0.6, 0.4]]), config)
    results = [recognizer.push(frame(i / 30)) for i in range(4)]
    assert [r is not None for r in results] == [True, False, False, True]
    assert recognizer.windows_classified == 4
    assert recognizer.stats.nonfinite_scores == 2
    classifier = HandRaisedClassifier()
    classifier.body_layout = "mediapipe33"
    refusing = Recognizer(classifier)
    ntu = SkeletonFrame(0.0, np.full((25, 4), 0.5, np.float32), layout="ntu25")
    for _ in range(2):
        with pytest.raises(SkeletonError, match=r"it takes mediapipe33\)"):
            refusing.push(ntu)
    assert refusing.stats.incompatible_layout == 2
    assert refusing.windows_classified == 0


def test_hand_fraction_is_the_share_of_frames_with_a_hand():
    config = RecognizerConfig(stride_seconds=0.0, min_seconds=0.0, max_gap=0)
    recognizer = Recognizer(HandRaisedClassifier(), config)
    results = [recognizer.push(frame(i / 30, hand=i >= 8)) for i in range(16)]
    assert results[-1].hand_fraction == pytest.approx(0.5, abs=1 / 16)


def test_hand_fraction_counts_no_instant_before_the_persons_first_frame():
    """Until a window is full, the instants before the oldest frame repeat it: a hand seen in the
    first of 16 frames read as 0.75 and won the hand_fraction recipe over someone gesturing."""
    config = RecognizerConfig(stride_seconds=0.0, min_seconds=0.5, window_seconds=2.0, max_gap=0)
    recognizer = Recognizer(HandRaisedClassifier(), config)
    results = [recognizer.push(frame(i / 30, hand=i == 0)) for i in range(16)]
    assert results[-1].hand_fraction == pytest.approx(0.2)  # one of the 5 instants the 0.5 s cover


def test_two_label_changes_in_a_row_without_frames_in_between():
    recognizer, _ = swap_after(5, OtherClassifier(names=("rest", "wave")))
    assert recognizer.replace_classifier(OtherClassifier(names=("a", "b")))
    assert recognizer.person_states() == {}


def test_load_window_classifier_runs_one_cpu_thread_by_default(tiny_model):
    classifier = load_window_classifier(str(tiny_model))
    assert not classifier.outputs_distance  # exported without --distance-from
    assert classifier.onnx.requested == ["CPUExecutionProvider"]
    assert classifier.providers == ["CPUExecutionProvider"]
    assert classifier.onnx.session.get_session_options().intra_op_num_threads == 1
    assert (
        load_window_classifier(str(tiny_model), threads=2)
        .onnx.session.get_session_options()
        .intra_op_num_threads
        == 2
    )
    assert (
        load_window_classifier(str(tiny_model), threads=0)
        .onnx.session.get_session_options()
        .intra_op_num_threads
        == 0
    )


def test_load_window_classifier_asks_for_cuda_then_cpu(tiny_model):
    import onnxruntime as ort

    from bharnet_ros.core.inference import InferenceError, provider_names

    assert load_window_classifier(str(tiny_model), "auto").onnx.requested == provider_names("auto")
    cuda = load_window_classifier(str(tiny_model), "cuda")
    assert cuda.onnx.requested == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert cuda.providers[-1] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here: nothing to refuse")
    with pytest.raises(InferenceError, match="could not use"):
        load_window_classifier(str(tiny_model), "cuda", require=True)


def test_an_exported_model_describes_itself(tiny_model, tmp_path):
    import onnx

    classifier = load_window_classifier(str(tiny_model))
    assert classifier.class_names == ["idle", "wave", "stop"]
    assert classifier.window_length == 16
    assert classifier.window_seconds == 0.0
    assert classifier.body_layout == "mediapipe33"
    assert classifier.hand_intensive == [False, False, True]
    assert classifier.none_threshold == 0.0
    unflagged = tmp_path / "unflagged.onnx"  # trained on data that says nothing of hands
    proto = onnx.load(str(tiny_model))
    for entry in proto.metadata_props:
        if entry.key == "bharnet.hand_intensive":
            entry.value = "null"
    onnx.save(proto, str(unflagged))
    assert load_window_classifier(str(unflagged)).hand_intensive == []  # unknown, not "none of them"
    assert classifier.description == "tiny.onnx (bharnet_e_expert_only)"
    proto = onnx.load(str(tiny_model))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "bharnet.none_threshold", "0.35"
    onnx.save(proto, str(tmp_path / "calibrated.onnx"))
    assert load_window_classifier(str(tmp_path / "calibrated.onnx")).none_threshold == 0.35


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("switch_margin", float("nan")),  # no lead beats NaN: the first label would stay for good
        ("switch_margin", 1.5),
        ("switch_margin", 1.0),  # no lead between two probabilities reaches 1: frozen too
        ("smoothing", 0.0),  # the average would never move
        ("smoothing", float("nan")),
        ("min_seconds", float("nan")),  # never ready
        ("min_seconds", -1.0),
        ("stride_seconds", float("inf")),  # one decision, then none
        ("stride_seconds", float("nan")),
        ("none_threshold", float("nan")),
        ("none_threshold", 1.5),  # everything would be "none"
        ("distance_threshold", -1.0),
        ("distance_threshold", float("nan")),
        ("distance_threshold", float("inf")),
        ("window_seconds", -1.0),
        ("window_seconds", 61.0),
        ("person_timeout", float("nan")),  # nobody would ever time out
        ("person_timeout", 0.0),
        ("max_gap", 2.5),
        ("max_persons", 0),
        ("top_k", 0),
        ("top_k", 2.5),
        ("smoothing", True),
    ],
)
def test_the_config_refuses_values_that_would_stop_or_freeze_decisions(field, value):
    with pytest.raises(ValueError, match=f"recognizer config: {field} must be"):
        RecognizerConfig(**{field: value})
    recognizer = Recognizer(HandRaisedClassifier())
    with pytest.raises(ValueError, match=field):  # a live change cannot slip one in either
        recognizer.apply_live(RecognizerConfig.from_params({field: value}))


def test_the_config_takes_its_limits():
    RecognizerConfig(
        window_seconds=60.0, stride_seconds=0.0, min_seconds=60.0, max_gap=0, person_timeout=1e-3,
        max_persons=1, smoothing=1.0, switch_margin=0.99, top_k=1, none_threshold=1.0,
    )  # fmt: skip
    RecognizerConfig(smoothing=0.01, switch_margin=0.0, none_threshold=0.0, max_gap=np.int64(3))


def test_min_seconds_above_the_window_waits_for_one_full_window():
    config = RecognizerConfig(min_seconds=5.0, stride_seconds=0.0)  # the window is 16/30 s
    recognizer = Recognizer(HandRaisedClassifier(), config)
    decided = [i for i in range(30) if recognizer.push(frame(i / 30)) is not None]
    assert decided[0] == 16


@pytest.mark.parametrize("origin", [0.0, 1.7e9, 4e9])
def test_the_stride_holds_at_ros_epoch_stamps(origin):
    """At 1.7e9 s a float64 stamp resolves 0.24 us: a stride of four frames came out as five every
    other time with a fixed nanosecond of slack."""
    config = RecognizerConfig(stride_seconds=4 / 30, min_seconds=7 / 30)
    recognizer = Recognizer(HandRaisedClassifier(), config)
    decided = [i for i in range(100) if recognizer.push(frame(origin + i / 30)) is not None]
    assert decided[0] == 7
    assert set(np.diff(decided)) == {4}


def test_a_10_khz_camera_still_gets_decisions():
    """The window used to hold only the newest 512 frames (51 ms), never the 0.5 s to start."""
    recognizer = Recognizer(HandRaisedClassifier(), RecognizerConfig(window_seconds=2.0))
    results = [recognizer.push(frame(i * 1e-4)) for i in range(7000)]
    decided = [r for r in results if r is not None]
    assert len(decided) == 2  # at 0.5 s, then one stride (0.15 s) later
    assert decided[0].window_start == pytest.approx(0.0)


def test_a_classifier_with_one_score_too_many_is_named():
    recognizer = Recognizer(ScriptedClassifier([[0.2, 0.3, 0.5]]), RecognizerConfig(min_seconds=0.0))
    with pytest.raises(ValueError, match="need one per label"):
        recognizer.push(frame(0.0))


FUZZ_STEPS = st.sampled_from([0.0, 1e-12, 1e-4, 1 / 30, 0.2, 2.0, -0.1, 3e7, -3e7])
FUZZ_IDS = st.sampled_from([0, 1, 2, -1, 2**31 - 1, -(2**31)])  # the int32 of the message, to its ends


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(st.tuples(FUZZ_STEPS, FUZZ_IDS, st.booleans()), min_size=1, max_size=150))
def test_any_stream_gives_finite_decisions_and_bounded_state(steps):
    """Stamps repeating, creeping by 1e-12, jumping a year either way; ids negative, huge, churning:
    every decision is finite and what the recognizer keeps stays bounded."""
    config = RecognizerConfig(stride_seconds=0.0, min_seconds=0.0, max_persons=3, person_timeout=0.5)
    recognizer = Recognizer(HandRaisedClassifier(), config)
    stamp = 1.7e9
    for step, person, hand in steps:
        stamp += step
        result = recognizer.push(frame(stamp, person=person, hand=hand))
        if result is not None:
            assert np.isfinite(result.confidence)
            assert np.isfinite(result.top_scores).all()
            assert result.window_start <= result.stamp
        assert len(recognizer.windows) <= 3
        assert all(len(buffer) <= buffer.maxlen for _, buffer in recognizer.windows.items())


def test_a_held_label_below_the_none_threshold_gives_way_to_a_rival_above_it():
    """Hysteresis held idle at 0.28 while stop had 0.37 against a threshold of 0.30: the node said
    none (1 - 0.28) for as long as the input lasted, where the calibrated rule says stop."""
    config = RecognizerConfig(
        stride_seconds=0.0, min_seconds=0.0, smoothing=1.0, switch_margin=0.5, none_threshold=0.5
    )
    probabilities = [[0.9, 0.1]] + [[0.45, 0.55]] * 2 + [[0.28, 0.72]] + [[0.6, 0.4]]
    recognizer = Recognizer(ScriptedClassifier(probabilities), config)
    decided = [recognizer.push(frame(i / 30)) for i in range(5)]
    labels = [(d.label, round(d.confidence, 2)) for d in decided]
    assert labels == [("idle", 0.9), ("raise", 0.55), ("raise", 0.55), ("raise", 0.72), ("idle", 0.6)]


def test_whether_a_model_takes_a_frame_follows_its_layout_and_space():
    """A swapped-in model is rolled back for a frame only the old model took: a stray publisher of
    another space, refused by both, rolled back every swap."""
    classifier = HandRaisedClassifier()
    image = frame(0.0)
    assert takes_frame(classifier, image)
    world = dataclasses.replace(image, space="world")
    classifier.space = "image"
    assert not takes_frame(classifier, world)
    classifier.body_layout = "ntu25"  # takes MediaPipe's 33 joints too, mapped
    assert takes_frame(classifier, image)
