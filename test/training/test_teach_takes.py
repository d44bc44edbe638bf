"""Takes of taught gestures without ROS: trimming on the pose stage's stamps, the checks that flag
bad takes, the dataset file they become, and the recording flows (labels file, interactive prompt)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from bharnet_ros.core.annotations import Segment, parse_csv
from bharnet_ros.core.skeleton import SkeletonFrame, SkeletonSequence
from bharnet_ros.training.data import load_datasets
from bharnet_ros.training.dataset import SkeletonDataset
from bharnet_ros.training.synth import generate_sequence
from bharnet_ros.training.teach_record import (
    Prompt,
    RecordedFrames,
    TakePlan,
    _frames_inside,
    cut_takes,
    record_interactively,
)
from bharnet_ros.training.teach_takes import (
    Take,
    TrimSettings,
    make_take,
    motion_energy,
    takes_dataset,
    trim,
)

FPS = 20


def still_then_wave(still: float = 2.0, start: float = 50.0, fps: int = FPS) -> list[SkeletonFrame]:
    """A person standing still for ``still`` s, waving, then standing still again: frames at ``fps``."""
    wave = generate_sequence("wave", np.random.default_rng(1))
    rest = wave.frame(0)
    frames = [rest] * int(still * fps) + [wave.frame(t) for t in range(0, len(wave), 30 // fps)]
    frames += [wave.frame(len(wave) - 1)] * int(still * fps)
    out = []
    for i, frame in enumerate(frames):
        copy = SkeletonFrame(start + i / fps, frame.body, frame.hands, frame.hand_present, 0)
        out.append(copy)
    return out


def sequence_of(frames: list[SkeletonFrame]) -> SkeletonSequence:
    return SkeletonSequence.from_frames(frames)


def test_motion_trimming_cuts_the_still_parts_on_the_stamps():
    frames = still_then_wave()
    whole = sequence_of(frames)
    cut = trim(whole, TrimSettings())
    assert whole.timestamps[-1] - whole.timestamps[0] > 2.0
    assert cut.timestamps[0] > whole.timestamps[0] + 1.0  # most of the first still part is gone
    assert cut.timestamps[-1] < whole.timestamps[-1] - 1.0
    assert cut.timestamps[0] <= 52.0 + 0.3  # the wave starts at 52 s; margin 0.3 s kept
    energy = motion_energy(whole)
    assert energy[: int(1.5 * FPS)].max() < 0.05 * energy.max()


def test_trimming_is_the_same_at_any_frame_rate():
    cuts = [trim(sequence_of(still_then_wave(fps=fps)), TrimSettings()) for fps in (10, 30)]
    starts = [c.timestamps[0] for c in cuts]
    ends = [c.timestamps[-1] for c in cuts]
    assert abs(starts[0] - starts[1]) < 0.25
    assert abs(ends[0] - ends[1]) < 0.25


def test_fixed_window_and_no_trimming():
    whole = sequence_of(still_then_wave())
    fixed = trim(whole, TrimSettings("fixed", seconds=1.0))
    assert fixed.timestamps[-1] - fixed.timestamps[0] == pytest.approx(1.0, abs=1.5 / FPS)
    assert len(trim(whole, TrimSettings("none"))) == len(whole)


def test_a_still_take_is_kept_whole():
    frames = [
        SkeletonFrame(i / FPS, f.body, f.hands, f.hand_present) for i, f in enumerate(still_then_wave()[:30])
    ]
    whole = sequence_of(frames)
    assert len(trim(whole, TrimSettings())) == len(whole)


def without_hands(frames: list[SkeletonFrame]) -> list[SkeletonFrame]:
    return [SkeletonFrame(f.timestamp, f.body, person_id=f.person_id) for f in frames]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("nobody", "no person: no skeleton"),
        ("empty_frames", "no person: a body in only 0 %"),
        ("short", "too short"),
        ("no_hands", "no hands"),
    ],
)
def test_bad_takes_are_flagged_with_a_one_line_reason(case, reason):
    frames = still_then_wave()
    if case == "nobody":
        frames = []
    elif case == "empty_frames":
        frames = [SkeletonFrame.empty(f.timestamp) for f in frames]
    elif case == "short":
        frames = frames[40:45]  # a quarter of a second
    else:
        frames = without_hands(frames)
    take = make_take("wave", 1, frames, TrimSettings(), hand_gesture=True)
    assert not take.ok
    assert take.problem.startswith(reason)
    assert "\n" not in take.problem
    assert "FLAGGED" in take.line()


def test_a_take_where_the_person_was_missing_is_flagged_though_every_frame_that_came_has_a_body():
    frames = still_then_wave()  # the pose stage sends nothing while it sees nobody
    missing = [f for f in frames if not 52.2 <= f.timestamp <= 53.2]
    take = make_take("wave", 1, missing, TrimSettings())
    assert take.problem == "no person: nobody seen for 1.1 s of the take (stay in the camera's view)"


def test_a_take_where_the_pose_stage_saw_nobody_for_a_second_is_flagged():
    """From a video or a bag the single-person stage gives a frame without a body for every image
    where it sees nobody, so the frames come at the camera's pace through the gap."""
    frames = [
        SkeletonFrame(f.timestamp, 0 * f.body, 0 * f.hands, 0 * f.hand_present, 0)
        if 54.0 <= f.timestamp <= 55.0  # in the middle of the wave
        else f
        for f in still_then_wave()
    ]
    take = make_take("wave", 1, frames, TrimSettings())
    assert take.problem.startswith("no person: nobody seen for 1.1 s of the take")


@pytest.mark.parametrize("frames", [2, 3, 4, 5])
@pytest.mark.parametrize("mode", ["motion", "fixed"])
def test_takes_of_a_few_frames_are_flagged_not_a_crash(frames, mode):
    moving = still_then_wave(still=0.0)[10 : 10 + frames]
    take = make_take("wave", 1, moving, TrimSettings(mode, seconds=0.01))
    assert take.problem.startswith("too short")


def test_hands_are_only_required_for_hand_gestures():
    take = make_take("wave", 1, without_hands(still_then_wave()), TrimSettings(), hand_gesture=False)
    assert take.ok, take.problem
    assert take.hand_fraction == 0.0
    assert "hands in 0 %" in take.line()


def test_the_main_person_is_kept_when_several_are_seen():
    frames = still_then_wave()
    passer_by = [SkeletonFrame(f.timestamp, f.body, person_id=7) for f in frames[:10]]
    take = make_take("wave", 1, frames + passer_by, TrimSettings())
    assert take.ok
    assert take.sequence.person_id == 0


def world_copy(frames: list[SkeletonFrame]) -> list[SkeletonFrame]:
    """``frames`` as a second pose stage on the topic would send them: same id, metres."""
    return [
        SkeletonFrame(f.timestamp + 0.01, f.body, f.hands, f.hand_present, f.person_id, space="world")
        for f in frames
    ]


def test_skeletons_of_one_id_in_another_space_are_another_person_not_an_end_to_the_session():
    """Mixed in one sequence they raised SkeletonError: the interactive session ended and its good
    takes were lost."""
    frames = still_then_wave()
    take = make_take("wave", 1, frames + world_copy(frames[:10]), TrimSettings())
    assert take.ok
    assert take.sequence.space == "image"


def test_a_take_of_other_skeletons_than_the_kept_ones_is_flagged_when_it_is_cut():
    """Each take was ok alone; writing then failed ("sequences mix layouts or spaces"), nothing written."""
    frames = still_then_wave(start=10.0) + world_copy(still_then_wave(start=20.0))
    labels = parse_csv("start,end,label\n0,8,wave\n10,18,wave\n")
    takes = cut_takes(frames, labels, TrimSettings(), source="rec")
    assert takes[0].ok
    assert takes[1].problem.startswith("other skeletons: mediapipe33 in world space, where the takes kept")
    assert len(takes_dataset(takes, "ana", ["wave"])) == 1


def test_the_performer_is_kept_not_a_bystander_seen_as_often():
    """Both in view, one standing still: the one seen in most frames was kept as the gesture (a
    performer missed in a single frame lost), and nothing flagged it."""
    frames = still_then_wave()
    still = frames[0]
    for bystander_id in (0, 9):  # before and after the performer's id
        performer = [SkeletonFrame(f.timestamp, f.body, f.hands, f.hand_present, 5) for f in frames[1:]]
        bystander = [SkeletonFrame(f.timestamp, still.body, person_id=bystander_id) for f in frames]
        take = make_take("wave", 1, bystander + performer, TrimSettings())
        assert take.sequence.person_id == 5, bystander_id


def test_a_single_frame_take_is_too_short_even_with_min_seconds_0():
    """teach train refuses a one-frame sample: it must not be written as a good take."""
    take = make_take("wave", 1, still_then_wave()[40:41], TrimSettings(min_seconds=0.0))
    assert take.problem.startswith("too short: a single frame")


def takes_of(subject: str) -> list[Take]:
    good = make_take("wave", 1, still_then_wave(), TrimSettings(), source="clip.mp4")
    second = make_take("wave", 2, still_then_wave(start=80.0), TrimSettings(), source="clip.mp4")
    flagged = make_take("stop", 1, [], TrimSettings())
    clap = make_take("clap", 1, still_then_wave(start=90.0), TrimSettings())
    return [good, second, flagged, clap]


def test_the_dataset_holds_good_takes_with_subject_and_take_and_merges(tmp_path):
    data = takes_dataset(takes_of("ana"), "ana", ["stop", "wave", "clap"], hand_gestures=["clap"])
    assert data.class_names == ["wave", "clap"]  # stop has no good take
    assert data.hand_intensive == [False, True]
    assert data.names.tolist() == ["ana/wave_1", "ana/wave_2", "ana/clap_1"]
    assert data.attribute("subject").tolist() == ["ana"] * 3
    assert data.attribute("take").tolist() == ["1", "2", "1"]
    assert data.attribute("source").tolist()[0] == "clip.mp4"
    first = data.save(tmp_path / "ana.npz")
    takes_dataset(takes_of("bo"), "bo", ["wave"]).save(tmp_path / "bo.npz")
    merged = load_datasets([first, tmp_path / "bo.npz"])
    assert len(merged) == 6
    assert sorted(set(merged.subject_names().tolist())) == ["ana", "bo"]
    assert SkeletonDataset.load(first).class_names == ["wave", "clap"]


def test_no_good_take_is_an_error_not_an_empty_file():
    with pytest.raises(ValueError, match="no good take"):
        takes_dataset([make_take("stop", 1, [], TrimSettings())], "ana", ["stop"])


def test_a_labels_file_cuts_takes_and_flags_bad_segments():
    frames = still_then_wave(start=10.0) + still_then_wave(start=20.0)
    labels = parse_csv("start,end,label\n0,7,wave\n10,10.2,wave\n30,35,stop\n")
    takes = cut_takes(frames, labels, TrimSettings(), hand_gestures=["wave"], source="rec")
    assert [(t.gesture, t.number) for t in takes] == [("wave", 1), ("wave", 2), ("stop", 1)]
    assert takes[0].ok
    assert takes[1].problem.startswith("too short")
    assert takes[2].problem.startswith("outside the recording: [30, 35) s lies outside its [0, ")


def test_a_segments_frames_are_those_it_contains_in_recording_order():
    """The look-up by bisection keeps what a scan of every frame finds: frames out of order, stamps
    shared by two frames, and segments that start or end exactly on a frame."""
    rng = np.random.default_rng(3)
    stamps = np.round(rng.uniform(100.0, 110.0, 300), 1)  # about three frames per stamp
    pose = still_then_wave()[0]
    frames = [SkeletonFrame(float(t), pose.body, pose.hands, pose.hand_present, 0) for t in stamps]
    inside = _frames_inside(frames, 100.0)
    edges = [0.0, 0.5, 2.3, 5.0, 9.9, 10.0, 12.0]
    for start in edges:
        for end in edges:
            segment = Segment(start, end, "wave")
            scanned = [f for f in frames if segment.contains(f.timestamp - 100.0)]
            assert [id(f) for f in inside(segment)] == [id(f) for f in scanned]


def test_a_segment_outside_the_recording_is_not_blamed_on_a_missing_person():
    frames = still_then_wave(start=10.0) + still_then_wave(start=20.0)  # nobody from 19.15 s to 20 s
    end = max(f.timestamp for f in frames) - 10.0
    labels = parse_csv(f"start,end,label\n9.2,9.9,wave\n{end + 1},{end + 5},wave\n")
    inside_gap, after_end = cut_takes(frames, labels, TrimSettings(), source="rec")
    assert inside_gap.problem.startswith("no person")  # inside the recording: nobody was seen there
    assert after_end.problem.startswith(f"outside the recording: [{end + 1:g}, {end + 5:g}) s")
    assert f"[0, {end:.2f}] s" in after_end.problem
    assert "fix the segment's start,end" in after_end.problem
    other_clock = parse_csv("start_stamp,end_stamp,label\n0,2,wave\n1700000000,1700000002,wave\n")
    for take in cut_takes(frames, other_clock, TrimSettings(), source="rec"):
        assert take.problem.startswith("outside the recording: stamps [")
        assert "[10.000, " in take.problem
        assert "the recording's clock" in take.problem


@pytest.mark.parametrize(
    "settings",
    [
        {"mode": "fixed", "seconds": float("nan")},
        {"min_seconds": float("nan")},
        {"margin": float("inf")},
        {"threshold": float("nan")},
        {"max_gap": 0.0},
        {"max_gap": float("inf")},
    ],
)
def test_trim_settings_refuse_values_that_are_no_finite_number(settings):
    with pytest.raises(ValueError, match="finite|fraction"):
        TrimSettings(**settings)


class FastClock:
    def __init__(self) -> None:
        self.slept = 0.0

    def sleep(self, seconds: float) -> None:
        self.slept += seconds


def test_the_prompt_counts_down_records_and_lets_the_user_redo_a_take():
    recording = RecordedFrames(still_then_wave(1.0, start=10.0) + still_then_wave(1.0, start=0.0), "clip")
    out, clock = io.StringIO(), FastClock()
    prompt = Prompt(io.StringIO("r\n\n"), out, clock)
    plan = TakePlan(["wave"], takes=1, seconds=10.0, countdown=3)
    takes = record_interactively(recording, plan, TrimSettings(), prompt)
    text = out.getvalue()
    assert text.count("perform `wave` now (take 1 of 1)") == 2  # recorded again after "r"
    assert "3 ..." in text
    assert "go!" in text
    assert clock.slept == 6.0
    assert len(takes) == 1
    assert takes[0].ok
    assert takes[0].sequence.timestamps[0] >= 10.0  # the second recording was kept


def test_an_answer_that_is_no_choice_is_asked_again_not_taken_as_redo():
    recording = RecordedFrames(still_then_wave(1.0, start=10.0) + still_then_wave(1.0, start=0.0), "clip")
    out = io.StringIO()
    prompt = Prompt(io.StringIO("x\ns\n\n"), out, FastClock())  # "s" only skips a flagged take
    takes = record_interactively(recording, TakePlan(["wave"], 1, 10.0, 0), TrimSettings(), prompt)
    assert out.getvalue().count("perform `wave`") == 1
    assert "'x' is none of the choices" in out.getvalue()
    assert "'s' is none of the choices" in out.getvalue()
    assert len(takes) == 1
    assert takes[0].ok


def test_a_flagged_take_is_never_kept_and_input_end_stops():
    frames = [SkeletonFrame.empty(i / FPS) for i in range(60)] + still_then_wave(still=0.5, start=3.0)
    out = io.StringIO()
    prompt = Prompt(io.StringIO("\n"), out, FastClock())  # Enter after the flagged take: record again
    plan = TakePlan(["wave"], takes=2, seconds=3.0, countdown=0, hand_gestures={"wave"})
    takes = record_interactively(RecordedFrames(frames, "clip"), plan, TrimSettings(), prompt)
    assert "FLAGGED: no person" in out.getvalue()
    assert "input ended: stopping" in out.getvalue()
    assert takes == []
    skipped = record_interactively(
        RecordedFrames(frames, "clip"), plan, TrimSettings(), Prompt(io.StringIO("s\nq\n"), out, FastClock())
    )
    assert len(skipped) == 1
    assert not skipped[0].ok  # skipped: listed, not kept
    with pytest.raises(ValueError, match="no good take"):
        takes_dataset(skipped, "ana", ["wave"])


class CtrlCAfter(io.StringIO):
    """Input that answers with its lines, then is interrupted as Ctrl-C interrupts ``input``."""

    def readline(self, *args) -> str:
        line = super().readline(*args)
        if not line:
            raise KeyboardInterrupt
        return line


def test_ctrl_c_says_which_recorded_takes_it_throws_away_and_how_to_keep_them():
    recording = RecordedFrames(still_then_wave(1.0, start=0.0) + still_then_wave(1.0, start=10.0), "clip")
    out = io.StringIO()
    prompt = Prompt(CtrlCAfter("\n"), out, FastClock())  # keeps take 1, then Ctrl-C at take 2's question
    with pytest.raises(KeyboardInterrupt):
        record_interactively(recording, TakePlan(["wave"], 2, 10.0, 0), TrimSettings(), prompt)
    assert (
        "not written: the 1 good takes so far (answer q at a prompt to end and keep them)" in out.getvalue()
    )


def test_relative_labels_count_from_the_recordings_first_image_not_its_first_person():
    """Nobody in view for the first 3 s of a recording that starts at 7 s: the labels of a bag or a
    video count from its first image, as bag eval counts them."""
    frames = still_then_wave(start=10.0)
    labels = parse_csv("start,end,label\n3,9,wave\n")
    [take] = cut_takes(frames, labels, TrimSettings(), source="rec", span=(7.0, frames[-1].timestamp))
    assert take.ok
    assert take.sequence.timestamps[0] >= 10.0
    [late] = cut_takes(frames, parse_csv("start,end,label\n6,9,wave\n"), TrimSettings(), span=(7.0, 20.0))
    assert late.ok
    assert late.sequence.timestamps[0] >= 13.0  # not 16 s: 6 s after the first image
