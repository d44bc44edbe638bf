"""``bharnet extract`` end to end through the CLI entry point."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bharnet_ros.cli import main
from bharnet_ros.core.compose import compose_pair
from bharnet_ros.core.skeleton import SkeletonSequence
from bharnet_ros.tools import UsageError
from bharnet_ros.tools.extract import plan_jobs


def count_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def write_blank_clip(path: Path, frames: int = 8) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for _ in range(frames):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()


def test_extract_video_with_overlay(shared_file, tmp_path, capsys):
    out, overlay = tmp_path / "dd.npz", tmp_path / "dd.mp4"
    argv = [
        "extract",
        str(shared_file("videos/sign_dobrii_den.mp4")),
        "-o",
        str(out),
        "--overlay",
        str(overlay),
    ]
    assert main(argv) == 0
    sequence = SkeletonSequence.load(out)
    assert len(sequence) == 100
    assert sequence.image_size == (320, 240)
    assert (sequence.layout, sequence.space) == ("mediapipe33", "image")
    assert np.all(np.abs(sequence.body).sum(axis=(1, 2)) > 0)  # a body on every frame
    assert sequence.hand_present.any(axis=1).sum() >= 20  # measured 37 frames with a hand
    assert count_frames(overlay) == 100
    assert "100 frames, body in 100" in capsys.readouterr().out


def test_extract_folder_with_max_frames(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mp4", "b.avi"):
        write_blank_clip(videos / name)
    (videos / "notes.txt").write_text("not a video")
    argv = ["extract", str(videos), "-o", str(tmp_path / "out"), "--overlay", str(tmp_path / "ov")]
    assert main([*argv, "--max-frames", "5", "--backend", "hands_pose"]) == 0
    for stem in ("a", "b"):
        sequence = SkeletonSequence.load(tmp_path / "out" / f"{stem}.npz")
        assert len(sequence) == 5
        assert not sequence.body.any()  # blank frames: nothing found, but every frame is kept
        assert sequence.timestamps == pytest.approx(np.arange(5) / 10.0)
        assert count_frames(tmp_path / "ov" / f"{stem}.mp4") == 5
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.npz", "b.npz"]
    assert capsys.readouterr().out.count("5 frames") == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "input not found"),
        (["--max-frames", "0"], "--max-frames"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(tmp_path, capsys, extra, message):
    assert main(["extract", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "x.npz"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("bharnet extract: error:")
    assert message in err


def test_unreadable_video_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    assert main(["extract", str(bad), "-o", str(tmp_path / "x.npz")]) == 2
    assert "bad.mp4" in capsys.readouterr().err


def test_folder_skips_undecodable_videos(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_blank_clip(videos / "good.mp4", frames=2)
    (videos / "broken.mp4").write_text("not a video")
    assert main(["extract", str(videos), "-o", str(tmp_path / "out")]) == 1
    assert "skipped" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.npz"]


def test_folder_without_videos_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no video files"):
        plan_jobs(tmp_path, tmp_path / "out", None)


def test_folder_input_needs_folder_outputs(tmp_path):
    write_blank_clip(tmp_path / "a.mp4", frames=1)
    with pytest.raises(UsageError, match="-o must be a folder"):
        plan_jobs(tmp_path, tmp_path / "out.npz", None)
    with pytest.raises(UsageError, match="--overlay must be a folder"):
        plan_jobs(tmp_path, tmp_path / "out", tmp_path / "ov.mp4")


def test_video_into_existing_folder_uses_its_stem(tmp_path):
    write_blank_clip(tmp_path / "clip.mp4", frames=1)
    (tmp_path / "out").mkdir()
    (job,) = plan_jobs(tmp_path / "clip.mp4", tmp_path / "out", None)
    assert job.output == tmp_path / "out" / "clip.npz"


def test_existing_outputs_are_refused_before_any_video_is_processed(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mp4", "b.mp4"):
        write_blank_clip(videos / name, frames=2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.npz").write_text("an earlier extraction")
    argv = ["extract", str(videos), "-o", str(out), "--backend", "hands_pose"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "b.npz already exists; pass --force" in err
    assert sorted(p.name for p in out.iterdir()) == ["b.npz"]  # a.npz was not made either
    assert main([*argv, "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.npz", "b.npz"]  # no temporary files
    assert len(SkeletonSequence.load(out / "b.npz")) == 2


def test_an_output_onto_the_video_itself_is_refused(tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    write_blank_clip(clip, frames=1)
    assert main(["extract", str(clip), "-o", str(tmp_path / "x.npz"), "--overlay", str(clip), "--force"]) == 2
    assert "also an input" in capsys.readouterr().err
    assert count_frames(clip) == 1


def test_extract_multi_writes_one_file_per_person(shared_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BHARNET_CACHE_DIR", str(tmp_path / "cache"))
    pair = tmp_path / "pair.mp4"
    people = [shared_file(f"hri_gestures/{clip}_1_1m_upper.avi") for clip in ("S1/greeting", "S2/stop")]
    compose_pair(*people, pair)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["extract", str(pair), "-o", str(out), "--backend", "multi", "--num-poses", "2", "--max-frames"]
    argv.append("40")
    assert main([*argv, "--overlay", str(tmp_path / "pair_overlay.mp4")]) == 0
    assert "2 persons: person 0 in 40" in capsys.readouterr().out
    files = sorted(out.iterdir())
    assert [p.name for p in files] == ["pair_p0.npz", "pair_p1.npz"]
    for person_id, path in enumerate(files):
        sequence = SkeletonSequence.load(path)
        assert (len(sequence), sequence.person_id, sequence.image_size) == (40, person_id, (800, 480))
    waver, stopper = (SkeletonSequence.load(p).body[:, 0, 0] for p in files)  # nose x; 0 where unseen
    assert np.all(waver[waver > 0] < 0.5), "person 0 stays the one on the left"
    assert np.all(stopper[stopper > 0] > 0.5)
    assert count_frames(tmp_path / "pair_overlay.mp4") == 40
    assert main(argv) == 2
    assert "pair_p0.npz already exists; pass --force" in capsys.readouterr().err


def test_mirrored_input_undoes_a_flipped_video(shared_file, tmp_path):
    source = shared_file("hri_gestures/S1/greeting_1_1m_upper.avi")
    capture, flipped = cv2.VideoCapture(str(source)), tmp_path / "flipped.avi"
    writer = cv2.VideoWriter(str(flipped), cv2.VideoWriter_fourcc(*"FFV1"), 20.0, (640, 480))  # lossless
    for _ in range(40):
        writer.write(cv2.flip(capture.read()[1], 1))
    writer.release()
    capture.release()
    common = ["--max-frames", "40", "--backend", "hands_pose"]
    assert main(["extract", str(source), "-o", str(tmp_path / "original.npz"), *common]) == 0
    unmirror = ["-o", str(tmp_path / "unmirrored.npz"), "--mirrored-input"]
    assert main(["extract", str(flipped), *unmirror, *common]) == 0
    original, unmirrored = (SkeletonSequence.load(tmp_path / n) for n in ("original.npz", "unmirrored.npz"))
    assert original.hand_present[:, 0].sum() >= 10, "the subject waves their left hand"
    np.testing.assert_array_equal(unmirrored.hand_present, original.hand_present)
    np.testing.assert_allclose(unmirrored.body[:, 15:17, :2], original.body[:, 15:17, :2], atol=0.02)


def test_two_videos_of_one_stem_are_refused_before_any_work(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_blank_clip(videos / "clip.mp4", frames=2)
    write_blank_clip(videos / "clip.avi", frames=2)
    assert main(["extract", str(videos), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"clip.avi and clip.mp4 both write {tmp_path / 'out' / 'clip.npz'}" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["-o", "--overlay"])
def test_outputs_inside_the_input_folder_are_refused(tmp_path, capsys, where):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_blank_clip(videos / "clip.avi", frames=2)
    outputs = {"-o": str(tmp_path / "out"), "--overlay": str(tmp_path / "overlay")}
    outputs[where] = str(videos)  # the next run would read the overlay clip.mp4 back as a video
    assert main(["extract", str(videos), "-o", outputs["-o"], "--overlay", outputs["--overlay"]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"is inside the input folder {videos}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["videos"]
    assert sorted(p.name for p in videos.iterdir()) == ["clip.avi"]


def test_one_name_for_npz_and_overlay_writes_both_files(tmp_path):
    """Each gains its own suffix (x.npz, x.mp4); the same name was refused as the same file."""
    write_blank_clip(tmp_path / "clip.avi", frames=2)
    target = str(tmp_path / "x")
    assert main(["extract", str(tmp_path / "clip.avi"), "-o", target, "--overlay", target]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi", "x.mp4", "x.npz"]


@pytest.mark.parametrize("fps", [0.0, 0.001, 90000.0])
def test_an_overlay_of_a_video_with_an_unwritable_frame_rate_is_written_at_the_fallback(tmp_path, fps):
    from bharnet_ros.tools.extract import OVERLAY_FALLBACK_FPS, Overlay

    path = tmp_path / "overlay.mp4"
    overlay = Overlay(path, fps)
    overlay.write(np.zeros((48, 64, 3), np.uint8), [], 0.0, show_ids=False)
    overlay.close()
    capture = cv2.VideoCapture(str(path))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(OVERLAY_FALLBACK_FPS)
    assert capture.read()[0]
    capture.release()


@pytest.mark.parametrize(("height", "width"), [(100, 8192), (1, 1), (4320, 8192)])
def test_an_overlay_of_frames_the_writer_cannot_take_at_their_size_is_written_shrunk_or_padded(
    tmp_path, height, width
):
    """The mp4v writer refuses a side of 1 px or of 8192 and more: an 8K video stopped a whole
    folder run with "is its folder writable?"."""
    from bharnet_ros.tools.extract import OVERLAY_SIDES, Overlay

    path = tmp_path / "overlay.mp4"
    overlay = Overlay(path, 10.0)
    overlay.write(np.zeros((height, width, 3), np.uint8), [], 0.0, show_ids=False)
    overlay.close()
    capture = cv2.VideoCapture(str(path))
    ok, frame = capture.read()
    capture.release()
    assert ok
    assert OVERLAY_SIDES[0] <= min(frame.shape[:2])
    assert max(frame.shape[:2]) <= OVERLAY_SIDES[1]
    assert (
        frame.shape[1] / frame.shape[0] == pytest.approx(width / height, rel=0.05) or min(height, width) < 2
    )


class FakeStage:
    """A pose stage that finds ``persons`` people (ids 0, 1, ...) on every frame, without MediaPipe."""

    def __init__(self, persons: int) -> None:
        self.persons = persons

    def __enter__(self) -> FakeStage:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def process(self, image: np.ndarray, timestamp: float) -> tuple[np.ndarray, list]:
        from bharnet_ros.core.skeleton import SkeletonFrame

        return image, [SkeletonFrame.empty(timestamp, person_id=i) for i in range(self.persons)]


def find_persons(monkeypatch, persons: int) -> None:
    from bharnet_ros.tools.extract import StageOptions

    monkeypatch.setattr(StageOptions, "open", lambda self: FakeStage(persons))


def test_earlier_person_files_of_a_stem_that_is_a_glob_pattern_need_force(tmp_path, monkeypatch, capsys):
    """clip[1] as a glob matches clip1, not clip[1]: its own earlier files went unseen and were replaced."""
    find_persons(monkeypatch, 2)
    clip = tmp_path / "clip[1].mp4"
    write_blank_clip(clip, frames=2)
    (tmp_path / "clip1_p0.npz").write_text("another video's file")  # what the unescaped glob found
    out = tmp_path / "out"
    out.mkdir()
    argv = ["extract", str(clip), "-o", str(out), "--backend", "multi"]
    assert main(argv) == 0
    before = (out / "clip[1]_p0.npz").read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "clip[1]_p0.npz already exists; pass --force" in err
    assert (out / "clip[1]_p0.npz").read_bytes() == before


def test_force_removes_the_person_files_an_earlier_run_found_and_this_one_does_not(
    tmp_path, monkeypatch, capsys
):
    clip = tmp_path / "clip.mp4"
    write_blank_clip(clip, frames=2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip_pan.npz").write_text("not a person file of this command")
    (out / "clip_p1_p0.npz").write_text("the person file of a video called clip_p1")
    argv = ["extract", str(clip), "-o", str(out), "--backend", "multi", "--force"]
    find_persons(monkeypatch, 3)
    assert main(argv) == 0
    assert {p.name for p in out.glob("clip_p?.npz")} == {"clip_p0.npz", "clip_p1.npz", "clip_p2.npz"}
    find_persons(monkeypatch, 1)
    capsys.readouterr()
    assert main(argv) == 0
    assert "removed the earlier run's clip_p1.npz, clip_p2.npz" in capsys.readouterr().out
    others = ["clip_p0.npz", "clip_p1_p0.npz", "clip_pan.npz"]
    assert sorted(p.name for p in out.iterdir()) == others
    (out / "clip_p9.npz").write_text("the user's own file, named like a person's")  # was deleted
    find_persons(monkeypatch, 0)
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "nobody found, no file written; removed the earlier run's clip_p0.npz" in printed
    assert "kept clip_p9.npz, which no run wrote" in printed
    assert sorted(p.name for p in out.iterdir()) == sorted([*others[1:], "clip_p9.npz"])


def test_a_video_whose_name_is_not_utf8_is_skipped_and_the_others_extracted(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_blank_clip(videos / "good.mp4", frames=2)
    good = (videos / "good.mp4").read_bytes()
    with open(bytes(videos) + b"/bad\xff.mp4", "wb") as bad:
        bad.write(good)
    out = tmp_path / "out"
    assert main(["extract", str(videos), "-o", str(out), "--backend", "hands_pose"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "skipped: " in err
    assert "bad\\udcff.mp4: the name is not valid UTF-8, which OpenCV cannot open; rename the file" in err
    assert [p.name for p in out.iterdir()] == ["good.npz"]


def test_an_earlier_per_person_file_that_is_a_pipe_is_refused_even_with_force(tmp_path):
    """--backend multi writes <stem>_p<id>.npz, which skipped the output checks -o gets: --force
    put a file in a FIFO's place."""
    import os

    from bharnet_ros.tools import UsageError
    from bharnet_ros.tools.extract import Job, check_outputs

    video = tmp_path / "in.mp4"
    video.write_bytes(b"")
    os.mkfifo(tmp_path / "y_p0.npz")
    with pytest.raises(UsageError, match="y_p0.npz is not a regular file"):
        check_outputs([Job(video, tmp_path / "y.npz", None)], force=True, per_person=True)


def single_runs_file(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """A clip, and an output folder holding a single-person run's clip.npz; one person found."""
    find_persons(monkeypatch, 1)
    clip = tmp_path / "clip.mp4"
    write_blank_clip(clip, frames=2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.npz").write_text("an earlier single-person run's file")
    return clip, out


def test_a_multi_run_neither_needs_force_for_nor_replaces_a_single_runs_file(tmp_path, monkeypatch, capsys):
    """It never writes clip.npz: --force was demanded for it, and then it stayed all the same."""
    clip, out = single_runs_file(tmp_path, monkeypatch)
    assert main(["extract", str(clip), "-o", str(out), "--backend", "multi"]) == 0
    assert (out / "clip.npz").read_text() == "an earlier single-person run's file"
    assert (out / "clip_p0.npz").is_file()
    assert "clip.npz (one person's, from an earlier run) stays" in capsys.readouterr().err


def test_a_refused_multi_run_prints_its_one_line_only(tmp_path, monkeypatch, capsys):
    """The note on an earlier single-person file came before the refusal of the per-person one."""
    clip, out = single_runs_file(tmp_path, monkeypatch)
    (out / "clip_p0.npz").write_text("an earlier multi run's file")
    assert main(["extract", str(clip), "-o", str(out), "--backend", "multi"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "clip_p0.npz already exists; pass --force" in err


def test_num_poses_without_the_multi_backend_is_refused(tmp_path, capsys):
    write_blank_clip(tmp_path / "clip.avi", frames=2)
    assert (
        main(["extract", str(tmp_path / "clip.avi"), "-o", str(tmp_path / "x.npz"), "--num-poses", "3"]) == 2
    )
    assert "--num-poses counts persons for --backend multi" in capsys.readouterr().err


def test_an_existing_folder_named_like_a_file_takes_a_folders_outputs(tmp_path, monkeypatch):
    find_persons(monkeypatch, 1)
    videos = tmp_path / "videos"
    videos.mkdir()
    write_blank_clip(videos / "clip.mp4", frames=2)
    out = tmp_path / "res.npz"
    out.mkdir()
    assert main(["extract", str(videos), "-o", str(out)]) == 0
    assert (out / "clip.npz").is_file()
