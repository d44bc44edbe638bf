"""The several-people measurement (core.pose_eval, ``pose_compare --people``) at tiny size, on real clips.

Three different people are composed side by side at run time (nothing is stored) and go through the
multi back end and a recognizer each. The tests check the bookkeeping (one person per strip, their
ids, their decisions, the comparison with the same clips alone) and never timings. They skip where
../shared is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bharnet_ros.core import task_bundles
from bharnet_ros.core.compose import PAIR_CROP, PAIR_HEIGHT, compose_people
from bharnet_ros.core.paths import default_model
from bharnet_ros.core.pose_eval import Person, by_strip, figures, people_benchmark
from bharnet_ros.core.recognizer import load_window_classifier
from bharnet_ros.core.skeleton import SkeletonFrame
from bharnet_ros.core.video import VideoReader

GROUP = ("S1/attention", "S2/come", "S3/greeting")  # three people, three gestures
FRAMES = 15  # 0.75 s at 20 fps: enough for the recognizer's first decisions (0.5 s of history)


@pytest.fixture(scope="module")
def clips(shared_file) -> list[Path]:
    """The first clip group: S1 attention, S2 come, S3 greeting (1 m, upper body)."""
    return [shared_file(f"hri_gestures/{name}_1_1m_upper.avi") for name in GROUP]


@pytest.fixture(scope="module")
def classifier():
    return load_window_classifier(str(default_model()))


@pytest.fixture(scope="module")
def runs(clips, classifier, tmp_path_factory):
    """Each clip alone, and all three side by side, FRAMES frames each (bundles in a private cache)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(task_bundles.CACHE_ENV, str(tmp_path_factory.mktemp("bundles")))
        return people_benchmark([clips], [3], classifier, num_poses=3, max_frames=FRAMES)


def test_compose_people_puts_the_middle_strips_side_by_side(clips, tmp_path):
    video = tmp_path / "three.mp4"
    assert compose_people(clips, video, max_frames=5) == 5
    with VideoReader(video) as reader:
        assert reader.info.size == (3 * PAIR_CROP, PAIR_HEIGHT)


def test_one_run_per_clip_alone_and_one_for_the_three(runs, clips):
    assert sorted(runs) == [1, 3]
    assert [run.people[0].clip for run in runs[1]] == clips
    (three,) = runs[3]
    assert [p.clip for p in three.people] == clips
    assert [p.gesture for p in three.people] == ["attention", "come", "greeting"]
    assert three.frames == FRAMES == len(three.pose_seconds)


def test_three_people_keep_one_id_each(runs):
    (three,) = runs[3]
    ids = [set(person.ids) for person in three.people]
    assert all(len(seen) == 1 for seen in ids), ids
    assert len(set.union(*ids)) == 3, "three different ids"
    assert all(person.switches == 0 for person in three.people)
    assert all(len(person.ids) >= FRAMES - 2 for person in three.people), "each found in (nearly) every frame"


def test_every_person_gets_decisions_from_their_own_recognizer(runs, classifier):
    (three,) = runs[3]
    for person in three.people:
        assert person.labels, f"{person.gesture}: no decision"
        assert set(person.labels) <= set(classifier.class_names)
    assert len(three.classify_seconds) == sum(len(p.labels) for p in three.people)


def test_figures_compare_with_the_same_clips_alone(runs):
    three, alone = figures(runs, 3), figures(runs, 1)
    assert (three.people, three.clips, three.frames) == (3, 1, FRAMES)
    assert (alone.clips, alone.frames) == (3, 3 * FRAMES)
    assert three.switches_per_100 == 0.0
    assert 0.8 <= three.found <= 1.0
    expected = np.mean([run.people[0].majority == run.people[0].gesture for run in runs[1]])
    assert three.accuracy_alone == pytest.approx(expected)


def _frame(person_id: int, nose_x: float) -> SkeletonFrame:
    body = np.full((33, 4), 0.5, np.float32)
    body[0, 0] = nose_x
    return SkeletonFrame(0.0, body, person_id=person_id)


def test_a_person_is_a_strip_and_keeps_the_id_last_seen_there():
    frames = [_frame(0, 0.1), _frame(1, 0.6), _frame(2, 0.9), _frame(3, 0.4)]  # ids 1 and 2 share strip 1
    chosen = by_strip(frames, last_ids=[3, 2])
    assert {strip: f.person_id for strip, f in chosen.items()} == {0: 3, 1: 2}
    chosen = by_strip(frames, last_ids=[None, None])
    assert {strip: f.person_id for strip, f in chosen.items()} == {0: 0, 1: 1}


def test_switches_count_every_change_after_the_first_id():
    labels = ["none", "yes", "stop", "none", "stop"]
    person = Person(Path("S1/stop_1_1m_upper.avi"), "stop", ids=[4, 4, 5, 5, 4], labels=labels)
    assert person.switches == 2
    assert person.majority == "stop", "the most frequent decision other than none"
    assert Person(Path("x"), "stop", labels=["none"]).majority == "none"
