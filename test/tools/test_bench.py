"""``bharnet bench``: argument parsing and the markdown section (no timing in tests)."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from bharnet_ros.tools import UsageError
from bharnet_ros.tools.bench import (
    VARIANTS,
    ModelResult,
    Timing,
    add_arguments,
    exported_files,
    onnx_flops,
    render,
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_model_is_a_sub_subcommand_with_defaults():
    args = parse(["model"])
    assert args.bench_command == "model"
    assert args.variants == list(VARIANTS)
    assert args.out is None
    with pytest.raises(SystemExit):
        parse([])


def test_exported_files_to_time(tmp_path, tiny_model):
    first, second = tiny_model, tmp_path / "b.onnx"
    shutil.copy(tiny_model, second)
    files = exported_files(parse(["model", "--shipped", str(first), str(second)]))
    assert [path for path, _ in files] == [first, second]
    assert exported_files(parse(["model", "--no-shipped"])) == []
    with pytest.raises(UsageError, match="c.onnx does not exist"):
        exported_files(parse(["model", "--shipped", str(first), str(tmp_path / "c.onnx")]))
    (tmp_path / "text.onnx").write_bytes(b"x")  # refused before minutes of timing, not after
    with pytest.raises(UsageError, match="--shipped: .*text.onnx is not a loadable ONNX model"):
        exported_files(parse(["model", "--shipped", str(tmp_path / "text.onnx")]))


def test_files_of_one_name_are_told_apart_by_their_folders(tmp_path):
    """Two exports both named model.onnx read alike in every row of the table."""
    from bharnet_ros.tools.bench import file_labels

    paths = [tmp_path / "runA" / "model.onnx", tmp_path / "runB" / "model.onnx", tmp_path / "other.onnx"]
    assert file_labels(paths) == ["runA/model.onnx", "runB/model.onnx", "other.onnx"]
    assert file_labels([Path("models/a.onnx")]) == ["a.onnx"]


def fake_section(windows_per_s: float, flops: int | None = 2_000_000_000) -> str:
    timing = Timing("ONNX Runtime fp32", 2, [1.0 / windows_per_s] * 4)
    result = ModelResult("BHaRNet-E expert-only", flops, [timing], {"Conv": 0.5}, {})
    machine = {"CPU": "test cpu"}
    return render(machine, {"numpy": 100.0, "torch": 90.0, "peak": 100.0}, [result], "bharnet bench model")


def test_render_reports_fraction_of_peak():
    section = fake_section(10.0)
    assert section.startswith("Produced by `bharnet bench model`")
    assert "| BHaRNet-E expert-only | 2.000 | ONNX Runtime fp32 | 2 | 10.0 |" in section
    assert "| 100.0 | 20.0 | 20 % |" in section  # 2 GFLOPs x 10 windows/s of a 100 GFLOP/s peak
    uncounted = fake_section(10.0, flops=None)
    assert "| BHaRNet-E expert-only | n/a | ONNX Runtime fp32 | 2 | 10.0 |" in uncounted
    assert "| 100.0 | n/a | n/a |" in uncounted


def test_file_rows_say_what_they_timed(tiny_model):
    """The header describes the variants (live input, untrained weights); a file's rows ran on the
    file's own inputs and weights, so the section says which shapes and which file."""
    import hashlib

    from bharnet_ros.tools.bench import file_about, file_inputs

    inputs = file_inputs(tiny_model, "--shipped")
    about = file_about(tiny_model, inputs)
    timing = Timing("ONNX Runtime fp32", 2, [0.01] * 4)
    result = ModelResult("file `m.onnx`", None, [timing], {"Conv": 1.0}, {}, about)
    section = render({"CPU": "test cpu"}, {"numpy": 1.0, "torch": 1.0, "peak": 1.0}, [result], "bench")
    for name, array in inputs.items():
        assert f"{name} `{tuple(array.shape)}`" in section
    assert hashlib.sha256(tiny_model.read_bytes()).hexdigest()[:16] in section
    assert "its own weights" in section


def test_flops_are_counted_on_the_onnx_graph(tmp_path):
    """A grouped 3x1 convolution and a batched matmul, counted from their shapes (2 FLOPs per MAC)."""
    import numpy as np

    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros((8, 2, 3, 1), np.float32), "w")  # 4 -> 8 channels, 2 groups
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["y"], group=2, pads=[1, 0, 1, 0]),
            helper.make_node("MatMul", ["y", "a"], ["z"]),
        ],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 10, 5]),
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [5, 5]),
        ],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 8, 10, 5])],
        [weight],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    conv = (8 * 10 * 5) * (2 * 3)  # outputs x (inputs per group x kernel)
    matmul = (8 * 10 * 5) * 5
    assert onnx_flops(path) == 2 * (conv + matmul)


def test_help_renders(capsys):
    from bharnet_ros.cli import main

    for argv in (["bench", "--help"], ["bench", "model", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
    assert "--variants" in capsys.readouterr().out


def test_report_sections_are_replaced_in_place(tmp_path):
    from bharnet_ros.tools.report_doc import machine_lines, replace_section

    path = tmp_path / "bench.md"
    path.write_text("# Benchmarks\n\nhand-written notes\n")
    replace_section(path, "bench-pipeline", "first")
    replace_section(path, "bench-soak", "soak")
    replace_section(path, "bench-pipeline", "second")
    text = path.read_text()
    assert "hand-written notes" in text
    assert "second" in text
    assert "first" not in text
    assert text.count("bench-pipeline:begin") == 1
    assert "soak" in text
    assert any(line.startswith("* CPU:") for line in machine_lines())


def test_a_crlf_document_keeps_its_line_endings_outside_the_section(tmp_path):
    """A rerun had rewritten every line ending of the file, not just its own section."""
    from bharnet_ros.tools.report_doc import replace_section

    path = tmp_path / "bench.md"
    path.write_bytes(b"# Benchmarks\r\n\r\nhand-written notes\r\n")
    replace_section(path, "bench-soak", "first\nsecond")
    data = path.read_bytes()
    assert data.startswith(b"# Benchmarks\r\n\r\nhand-written notes\r\n")
    assert b"first\r\nsecond" in data
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_a_section_holding_another_sections_marker_is_left_as_it_is(tmp_path):
    """Updating the outer section deleted the inner one's begin marker, and its next run failed."""
    from bharnet_ros.tools.report_doc import replace_section

    path = tmp_path / "bench.md"
    text = (
        "# B\n<!-- bench-model:begin (x) -->\na\n<!-- bench-pipeline:begin (x) -->\nb\n"
        "<!-- bench-model:end -->\nc\n<!-- bench-pipeline:end -->\n"
    )
    path.write_text(text)
    with pytest.raises(UsageError, match="holds another section's marker"):
        replace_section(path, "bench-model", "new")
    assert path.read_text() == text


def test_a_section_whose_markers_are_broken_is_left_as_it_is(tmp_path):
    """A begin marker whose end was deleted: replacing up to the next run's end marker would
    delete the hand-written text between them."""
    from bharnet_ros.tools.report_doc import replace_section

    path = tmp_path / "bench.md"
    text = "# Benchmarks\n\n<!-- bench-soak:begin (x) -->\nold\n\nhand-written notes\n"
    path.write_text(text)
    with pytest.raises(UsageError, match="1 begin and 0 end markers of the generated section 'bench-soak'"):
        replace_section(path, "bench-soak", "new")
    assert path.read_text() == text


def test_soak_growth_ignores_the_warm_up_minute():
    from bharnet_ros.tools.bench_pipeline import _growth_mb_per_min

    samples = [(0.0, 100.0), (30.0, 180.0)] + [(60.0 + 10 * i, 200.0 + 0.01 * i) for i in range(30)]
    assert abs(_growth_mb_per_min(samples)) < 0.1
    leaking = [(60.0 * i, 200.0 + 5.0 * i) for i in range(1, 10)]
    assert _growth_mb_per_min(leaking) > 4.9


@pytest.mark.parametrize("video_stops_after", [None, 25.0])
def test_a_soak_whose_frames_stop_coming_fails(monkeypatch, video_stops_after):
    """A truncated video stopped the source after 0.4 s, and two idle minutes passed as a soak."""
    from types import SimpleNamespace

    from bharnet_ros.tools import bench_pipeline

    clock = SimpleNamespace(now=0.0)

    def sleep(seconds: float) -> None:
        clock.now += seconds

    class Pose:  # 30 frames a second until the video stops
        @property
        def frames_in(self) -> int:
            end = clock.now if video_stops_after is None else min(clock.now, video_stops_after)
            return int(30 * end)

    monkeypatch.setattr(bench_pipeline, "time", SimpleNamespace(monotonic=lambda: clock.now, sleep=sleep))
    monkeypatch.setattr(bench_pipeline, "_rss_mb", lambda: 100.0)
    _, bounded, stalled = bench_pipeline._sample_rss(120.0, SimpleNamespace(recognizer=None), Pose())
    assert bounded
    assert stalled == ("" if video_stops_after is None else "no frame from 0.5 min on")


def one_line_error(argv: list[str], capsys) -> str:
    """Run ``bharnet ARGV``; it must exit 2 with a single line on stderr, which is returned."""
    from bharnet_ros.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["soak", "--minutes", "nan"], "--minutes nan is out of range; give 10 to 10080 minutes"),
        (["soak", "--minutes", "2"], "--minutes 2.0 is out of range"),  # its verdict was noise
        (["soak", "--minutes", "-1"], "--minutes -1.0 is out of range"),
        (["soak", "--minutes", "inf"], "--minutes inf is out of range"),
        (["soak", "--minutes", "1e9"], "--minutes 1000000000.0 is out of range"),
        (["soak", "--minutes", "1"], "--minutes 1.0 is out of range"),  # no samples after the first minute
        (
            ["soak", "--model", "/nonexistent/m.onnx"],
            "--model: model file /nonexistent/m.onnx does not exist",
        ),
        (["pipeline", "--seconds", "nan"], "--seconds nan is out of range; give 2 to 300 seconds"),
        (["pipeline", "--seconds", "-5"], "--seconds -5.0 is out of range"),
        (["pipeline", "--seconds", "0"], "--seconds 0.0 is out of range"),
        (["pipeline", "--seconds", "1e6"], "--seconds 1000000.0 is out of range"),
        (
            ["pipeline", "--model", "/nonexistent/m.onnx"],
            "--model: model file /nonexistent/m.onnx does not exist",
        ),
        (["model", "--agreement-windows", "0"], "--agreement-windows must be a whole number from 1 to 10000"),
        (["model", "--threads", "100000"], "--threads must be a whole number from 1 to 256"),
        (["model", "--runs", "0"], "--runs must be a whole number from 1 to 100000"),
    ],
)
def test_bad_durations_counts_and_models_are_one_line_before_any_work(argv, message, capsys):
    assert message in one_line_error(["bench", *argv], capsys)


def test_a_model_that_does_not_load_is_refused_up_front(tmp_path, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model")
    for action in ("pipeline", "soak"):
        assert "is not a loadable ONNX model" in one_line_error(
            ["bench", action, "--model", str(junk)], capsys
        )


def test_a_command_line_that_would_break_the_generated_markdown_is_refused_before_any_work(
    tiny_model, tmp_path, capsys
):
    """The section opens with the command: a video named with the end marker made a second end
    marker, and every later run refused the file."""
    video = tmp_path / "x<!-- bench-pipeline:end -->.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    argv = [
        "bench",
        "pipeline",
        "--model",
        str(tiny_model),
        "--video",
        str(video),
        "--out",
        str(tmp_path / "m.md"),
    ]
    assert "the command line holds '<!--', which would break the generated markdown" in one_line_error(
        argv, capsys
    )
    assert not (tmp_path / "m.md").exists()


def test_a_missing_video_is_refused_up_front(tiny_model, capsys):
    for action in ("pipeline", "soak"):
        argv = ["bench", action, "--model", str(tiny_model), "--video", "/nonexistent/v.mp4"]
        assert "--video: video not found: /nonexistent/v.mp4" in one_line_error(argv, capsys)
        argv = ["bench", action, "--model", str(tiny_model), "--video", ""]  # not the default video
        assert "--video: " in one_line_error(argv, capsys)


def test_the_default_video_is_found_beside_the_checkout_from_any_folder(
    tiny_model, shared_file, tmp_path, monkeypatch, capsys
):
    """It was looked for from the current folder: `video not found` outside the checkout."""
    video = shared_file("videos/sign_dobrii_den.mp4")
    monkeypatch.chdir(tmp_path)
    for action in ("pipeline", "soak"):
        argv = ["bench", action, "--model", str(tiny_model), "--out", str(video)]  # stops at the check
        assert "is also an input of this command" in one_line_error(argv, capsys)


def test_out_is_checked_before_the_measurement(tiny_model, shared_file, tmp_path, capsys):
    video = str(shared_file("videos/sign_dobrii_den.mp4"))
    binary = tmp_path / "binary.md"
    binary.write_bytes(b"\xff\xfe\x00")
    cases = [
        (tmp_path, "is a folder; give the markdown file to update"),
        (binary, "is not a UTF-8 text file"),
        (tiny_model, "is also an input of this command"),
        (Path("/dev/null"), "is not a regular file"),
    ]
    for action in ("pipeline", "soak"):
        for out, message in cases:
            argv = ["bench", action, "--model", str(tiny_model), "--video", video, "--out", str(out)]
            assert message in one_line_error(argv, capsys)
    assert binary.read_bytes() == b"\xff\xfe\x00"
    argv = ["bench", "model", "--shipped", str(tiny_model), "--out", str(tiny_model)]
    assert "is also an input of this command" in one_line_error(argv, capsys)


def test_a_dynamic_batch_export_is_fed_batch_1_with_a_0_1_hand_mask(tmp_path):
    """Its graph names the batch axis "batch" (a string, which numpy cannot size): the inputs take
    the recognizer's shapes, batch 1; the Noisy-OR hand mask is 0/1, as a real one."""
    pytest.importorskip("torch")
    import numpy as np

    from bharnet_ros.core.preprocess import PreprocessConfig
    from bharnet_ros.model.bharnet import build_model
    from bharnet_ros.model.export import export_onnx, input_shapes
    from bharnet_ros.tools.bench import onnx_flops, ort_call, ort_session

    config = {
        "variant": "bharnet_e_expert_only",
        "num_classes": 3,
        "fusion": "noisy_or",
        "input": {"frames": 16, "num_persons": 1},
        "backbone": {"base_channels": 8},
    }
    model = build_model(config).eval()
    path = tmp_path / "dynamic.onnx"
    export_onnx(model, path, ["a", "b", "c"], PreprocessConfig(frames=16, num_persons=1), dynamic_batch=True)
    assert all(node.shape[0] == "batch" for node in ort_session(path, 1).get_inputs())
    [(found, inputs)] = exported_files(parse(["model", "--shipped", str(path)]))
    assert found == path
    assert {name: list(value.shape) for name, value in inputs.items()} == input_shapes(model)
    assert "hand_mask" in inputs
    assert set(np.unique(inputs["hand_mask"])) == {0.0, 1.0}
    assert all(value.dtype == np.float32 for value in inputs.values())
    ort_call(path, inputs, 1)()  # one untimed run: the feed is what the graph takes
    assert onnx_flops(path) is None  # symbolic sizes: n/a in the table, not a count of 0
    static = tmp_path / "static.onnx"
    export_onnx(model, static, ["a", "b", "c"], PreprocessConfig(frames=16, num_persons=1))
    assert onnx_flops(static) > 0


def test_a_refused_model_is_refused_before_anything_is_measured(tmp_path, monkeypatch, capsys):
    from bharnet_ros.tools import bench

    def never(*_args, **_kwargs):
        raise AssertionError("measured before the refusal")

    for name in ("matmul_peak", "measure_variant", "measure_file"):
        monkeypatch.setattr(bench, name, never)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model")
    argv = ["bench", "model", "--variants", "expert_only", "--shipped", str(junk)]
    assert "--shipped: " in one_line_error(argv, capsys)


def test_a_pipeline_row_without_any_label_says_so_instead_of_nan():
    from bharnet_ros.tools.bench_pipeline import _pipeline_table

    row = {"name": "one frame", "frames": 1, "processed_fps": 1.0, "dropped": 0, "actions_per_s": 0.0}
    table = _pipeline_table([{**row, "latency": [], "cpu_cores": 0.1}])
    assert "| no label came |" in table
    assert "nan" not in table
    timed = _pipeline_table([{**row, "latency": [0.1, 0.2], "cpu_cores": 0.1}])
    assert "| 150 / 195 |" in timed
    # skeletons straight into the recognizer: nothing counts what it took, so nothing is claimed
    uncounted = _pipeline_table(
        [{**row, "processed_fps": None, "dropped": None, "latency": [], "cpu_cores": 0.1}]
    )
    assert "| one frame | 1 | n/a | n/a |" in uncounted


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--no-shipped", "--shipped", "nonexistent.onnx"],
            "--no-shipped and --shipped contradict each other",
        ),
        (["--variants", "expert_only", "expert_only"], "--variants names expert_only twice; give each"),
        (["--shipped", "x.onnx", "models/../x.onnx"], "x.onnx twice"),  # one file, two spellings
    ],
)
def test_contradicting_or_repeated_choices_are_refused_before_any_work(monkeypatch, capsys, extra, message):
    from bharnet_ros.tools import bench

    def never(*_args, **_kwargs):
        raise AssertionError("measured before the refusal")

    for name in ("matmul_peak", "measure_variant", "measure_file", "file_inputs"):
        monkeypatch.setattr(bench, name, never)
    assert message in one_line_error(["bench", "model", *extra], capsys)


def write_clip(path: Path, size: tuple[int, int] = (64, 48), frames: int = 3) -> Path:
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    for _ in range(frames):
        writer.write(np.zeros((size[1], size[0], 3), np.uint8))
    writer.release()
    return path


def test_a_pipeline_bag_larger_than_the_cap_or_the_free_space_is_refused_before_it_is_built(
    tiny_model, tmp_path, monkeypatch, capsys
):
    """64 x 48 x 3 bytes at 30 Hz is 276,480 bytes a second: a 1080p video is 187 MB a second."""
    from types import SimpleNamespace

    from bharnet_ros.tools import bench_pipeline

    def never(*_args, **_kwargs):
        raise AssertionError("built before the refusal")

    monkeypatch.setattr(bench_pipeline, "video_bag_of", never)
    monkeypatch.setattr(bench_pipeline, "_skeleton_bag", never)
    monkeypatch.setattr(bench_pipeline, "MOST_BAG_BYTES", 276_480 * 5)
    video = str(write_clip(tmp_path / "clip.mp4"))
    argv = ["bench", "pipeline", "--model", str(tiny_model), "--video", video, "--seconds", "10"]
    err = one_line_error(argv, capsys)
    assert f"--video {video} (64x48) for --seconds 10 needs a temporary bag of 0.00 GB" in err
    assert "more than the cap (0.00 GB); lower --seconds to 5 or less" in err
    monkeypatch.setattr(bench_pipeline, "MOST_BAG_BYTES", 10**12)
    free = SimpleNamespace(disk_usage=lambda folder: SimpleNamespace(free=276_480))
    monkeypatch.setattr(bench_pipeline, "shutil", free)
    err = one_line_error(argv, capsys)
    assert "more than the free space in " in err
    assert err.endswith("; pass a smaller --video")  # not even the shortest stream fits


def test_the_hot_swap_row_sets_the_model_while_skeletons_play(tiny_model, tmp_path):
    """Through the recognizer's parameter service, in the replayed graph, every ``period`` s."""
    from bharnet_ros.nodes.bag_io import SwapCount, swapping_models
    from bharnet_ros.tools import bench_pipeline

    bag = bench_pipeline._skeleton_bag(tmp_path / "skeletons", 4.0)
    twin = shutil.copy(tiny_model, tmp_path / "twin.onnx")
    count = SwapCount()
    swapping = swapping_models([str(tiny_model), str(twin)], count, period=0.5)
    row = bench_pipeline.measure_run("swaps", bag, "/bharnet/skeletons", str(tiny_model), during=swapping)
    assert count.done >= 1  # each set checks the model in a child first: how many fit depends on the CPU
    assert count.refused == 0
    assert row["latency"], "no decision came"


def test_the_pipelines_cpu_leaves_out_the_nodes_start_up(tiny_model, tmp_path, monkeypatch):
    """Model and MediaPipe loads had counted as the pipeline's load (~20 % of a 20 s row). A start-up
    made to cost 100 s of CPU must not show in the row."""
    import time

    from bharnet_ros.nodes import bag_io
    from bharnet_ros.tools import bench_pipeline

    bag = bench_pipeline._skeleton_bag(tmp_path / "skeletons", 2.0)
    start_up, real_cpu, real_ready = [0.0], time.process_time, bag_io._wait_ready

    def ready(*args) -> None:
        real_ready(*args)
        start_up[0] = 100.0

    monkeypatch.setattr(bag_io, "_wait_ready", ready)
    monkeypatch.setattr(time, "process_time", lambda: real_cpu() + start_up[0])
    row = bench_pipeline.measure_run("skeletons", bag, "/bharnet/skeletons", str(tiny_model))
    assert 0 < row["cpu_cores"] <= (os.cpu_count() or 1)


@pytest.mark.parametrize("runs", [1, 3, 6, 30])
def test_as_many_runs_are_timed_as_asked(runs):
    """--torch-runs 6 timed 4 calls (6 // 4 rounds), and --runs 1 timed 4."""
    from bharnet_ros.tools.bench import Candidate, interleaved_timings

    (timing,) = interleaved_timings([Candidate("python", 1, lambda: None, runs)])
    assert len(timing.samples) == runs


def test_the_matmul_peak_is_the_one_the_models_threads_reach():
    from bharnet_ros.tools.bench import matmul_peak

    peak = matmul_peak(1, size=64, repeats=2)
    assert peak["peak"] == peak["torch"]


@pytest.mark.parametrize("seconds", [3.9, 5.0, 20.0, 2.0])
def test_the_skeleton_stream_is_as_long_as_the_video_stream(seconds):
    """Its script was whole 2 s gestures: 3.9 s of video beside 2 s of skeletons."""
    from bharnet_ros.tools.bench_pipeline import gesture_script

    script = gesture_script(["a", "b", "c"], seconds)
    assert sum(duration for _, duration in script) == pytest.approx(seconds)
    assert all(duration >= 2.0 for _, duration in script)
    assert [label for label, _ in script][:3] == ["a", "b", "c"][: len(script)]


def test_a_terminated_bench_leaves_no_exports_behind(tmp_path, monkeypatch):
    """`timeout` (SIGTERM) left the temporary exports, 21 MB a run; Ctrl-C removed them."""
    import os
    import signal
    import tempfile

    from bharnet_ros.cli import main
    from bharnet_ros.tools import bench

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(bench, "matmul_peak", lambda threads: {"float32": 1.0})

    def terminated(key, args, folder):
        (folder / f"{key}.onnx").write_bytes(b"an export")
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not stop the measurement")

    monkeypatch.setattr(bench, "measure_variant", terminated)
    assert main(["bench", "model", "--variants", "expert_only", "--no-shipped"]) == 130
    assert list(tmp_path.iterdir()) == []
