"""``bharnet model-report`` on tiny configs: counts, table and in-place markdown update."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from bharnet_ros.tools import UsageError
from bharnet_ros.tools.model_report import (
    BEGIN_MARK,
    END_MARK,
    add_arguments,
    measure,
    run,
    update_markdown,
)

pytest.importorskip("torch", reason="needs torch: pip install -r requirements-training.txt")

TINY_BACKBONE = {"base_channels": 8, "stages": [[1, 1], [2, 2]]}


def write_config(folder: Path, name: str, variant: str) -> Path:
    path = folder / f"{name}.yaml"
    config = {"variant": variant, "num_classes": 3, "backbone": TINY_BACKBONE}
    if variant == "bharnet_e":
        config["expertized"] = {"split_block": 1}
        config["attention"] = {"heads": 1, "dim_head": 4, "num_features": 4}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_single_stream_counts_match_a_hand_count(tmp_path):
    row = measure(write_config(tmp_path, "body", "body_expert"), frames=8)
    assert row.params > 0
    assert row.variant == "body_expert"
    # every block's graph aggregation is one (S, C, T, V) x (V, V) product per instance; block 0
    # aggregates its 3 input channels before mixing, block 1 its 16; both at T = 8, two persons
    expected = 2 * 3 * (3 * 8 + 16 * 8) * 25 * 25
    # plus weights folded at run time (constants in the export): under 1 %
    assert expected <= row.matmul_macs <= 1.01 * expected
    assert row.total_flops == 2 * (row.module_macs + row.matmul_macs)


def test_report_writes_a_table_between_markers_and_keeps_the_rest(tmp_path, capsys):
    configs = tmp_path / "configs"
    configs.mkdir()
    write_config(configs, "body_expert", "body_expert")
    write_config(configs, "bharnet_e", "bharnet_e")
    doc = tmp_path / "model.md"
    doc.write_text(f"# Model\n\nhand-written notes\n\n{BEGIN_MARK}\nold table\n{END_MARK}\n\ntail\n")
    args = parse(["--config-dir", str(configs), "--output", str(doc)])
    assert run(args) == 0
    text = doc.read_text()
    assert "hand-written notes" in text
    assert text.rstrip().endswith("tail")
    assert "old table" not in text
    assert "| `bharnet_e` |" in text
    assert "| `body_expert` |" in text
    assert "F.A. + Expertized branches" in text
    assert "bharnet model-report --config-dir" in text
    assert "| `bharnet_e` |" in capsys.readouterr().out


def test_no_write_and_empty_folder(tmp_path):
    write_config(tmp_path, "hand_expert", "hand_expert")
    doc = tmp_path / "model.md"
    assert run(parse(["--config-dir", str(tmp_path), "--frames", "8", "--no-write"])) == 0
    with pytest.raises(UsageError, match="--no-write leaves every file alone, so --output would name none"):
        run(parse(["--config-dir", str(tmp_path), "--frames", "8", "--output", str(doc), "--no-write"]))
    assert not doc.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="no model configs"):
        run(parse(["--config-dir", str(empty)]))


def test_update_appends_a_section_to_a_file_without_markers(tmp_path):
    doc = tmp_path / "docs" / "model.md"
    update_markdown(doc, f"{BEGIN_MARK}\nx\n{END_MARK}")
    update_markdown(doc, f"{BEGIN_MARK}\ny\n{END_MARK}")
    text = doc.read_text()
    assert text.count(BEGIN_MARK) == 1
    assert "y" in text.split(BEGIN_MARK)[1]


def test_frames_has_an_upper_bound():
    with pytest.raises(UsageError, match="--frames must be a whole number from 4 to 1000, got 100000000"):
        run(parse(["--frames", "100000000", "--no-write"]))


def test_output_is_checked_before_any_config_is_measured(tmp_path, monkeypatch):
    """A folder, a binary file, a device or a file among the configs is refused before the work."""
    import bharnet_ros.tools.model_report as model_report

    configs = tmp_path / "configs"
    configs.mkdir()
    yaml_file = write_config(configs, "body_expert", "body_expert")
    binary = tmp_path / "model.md"
    binary.write_bytes(b"\xff\xfe\x00")
    monkeypatch.setattr(model_report, "measure", lambda *_: pytest.fail("measured before the checks"))
    cases = [
        (tmp_path, "is a folder"),
        (binary, "is not a UTF-8 text file"),
        (Path("/dev/null"), "is not a regular file"),
        (yaml_file, "is also an input"),
        (configs / "notes.md", "is inside the input folder"),
        (tmp_path / "recognize.yaml", "is not a markdown file"),  # a table appended would break it
    ]
    for name, text in {
        "ended.md": "notes\n<!-- model-report:end -->\nmore\n<!-- model-report:begin -->\n",
        "open.md": "<!-- model-report:begin -->\nold table\nhand-written notes\n",
    }.items():
        (tmp_path / name).write_text(text)
        cases.append((tmp_path / name, "markers of the generated section 'model-report'.*mend them by hand"))
    for output, message in cases:
        with pytest.raises(UsageError, match=message):
            run(parse(["--config-dir", str(configs), "--frames", "8", "--output", str(output)]))
    assert binary.read_bytes() == b"\xff\xfe\x00"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{{", "is not readable YAML"),
        ("just text", "is not a YAML mapping"),
        ("variant: nope", "variant 'nope' not in"),
        ("variant: body_expert\nnum_classes: abc", "num_classes must be an integer"),
        ("variant: body_expert\nnum_classes: -1", "num_classes must be 1..4096"),
        (  # 10 billion parameters: counted on the meta device, never allocated
            "variant: body_expert\nbackbone: {base_channels: 64, stages: ["
            + ", ".join(["[64, 1]"] * 64)
            + "]}",
            "more than the 50,000,000 a checkpoint may have",
        ),
        ("a: &x 1\nb: *x\n", "is not readable YAML"),
    ],
)
def test_a_bad_config_is_one_line_naming_it(tmp_path, text, message):
    write_config(tmp_path, "good", "body_expert")
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(UsageError, match=message) as raised:
        run(parse(["--config-dir", str(tmp_path), "--frames", "8", "--no-write"]))
    assert "bad.yaml" in str(raised.value)
    assert len(str(raised.value).splitlines()) == 1


def test_the_table_in_docs_is_what_the_shipped_configs_measure(capsys):
    """docs/model.md's cost table went stale once when the graph changed; it must be regenerated."""
    doc = Path(__file__).resolve().parents[2] / "docs" / "model.md"
    assert run(parse(["--no-write"])) == 0  # its table names the default --output, docs/model.md
    measured = capsys.readouterr().out.strip()
    text = doc.read_text(encoding="utf-8")
    written = text[text.index(BEGIN_MARK) : text.index(END_MARK) + len(END_MARK)].strip()
    assert written == measured, "run `bharnet model-report --output docs/model.md` and commit the table"


def test_the_default_output_is_the_checkouts_document_from_any_folder(tmp_path, monkeypatch, capsys):
    import bharnet_ros.core.paths as paths

    configs = tmp_path / "configs"
    configs.mkdir()
    write_config(configs, "body_expert", "body_expert")
    checkout, elsewhere = tmp_path / "checkout", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(paths, "CHECKOUT", checkout)
    monkeypatch.chdir(elsewhere)
    with pytest.raises(UsageError, match="no docs/model.md of a bharnet_ros source checkout .*pass --output"):
        run(parse(["--config-dir", str(configs), "--frames", "8"]))
    (checkout / "docs").mkdir(parents=True)
    (checkout / "docs" / "model.md").write_text("# Model\n\nnotes\n")
    assert run(parse(["--config-dir", str(configs), "--frames", "8"])) == 0
    assert "| `body_expert` |" in (checkout / "docs" / "model.md").read_text()
    assert "--output docs/model.md`" in (checkout / "docs" / "model.md").read_text()
    assert list(elsewhere.iterdir()) == []  # no docs/ tree made where the command ran
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert "default: docs/model.md of the bharnet_ros source checkout" in " ".join(
        parser.format_help().split()
    )


@pytest.mark.parametrize("name", ["x <!-- model-report:end -->", "a | b", "tick`s", "open <!-- comment"])
def test_a_config_name_that_would_break_the_markdown_is_refused(tmp_path, monkeypatch, name):
    import bharnet_ros.tools.model_report as model_report

    configs = tmp_path / "configs"
    configs.mkdir()
    write_config(configs, "good", "body_expert")
    write_config(configs, name, "body_expert")
    doc = tmp_path / "model.md"
    doc.write_text(f"# Model\n\n{BEGIN_MARK}\nold table\n{END_MARK}\n")
    monkeypatch.setattr(model_report, "measure", lambda *_: pytest.fail("measured before the checks"))
    with pytest.raises(UsageError, match="which would break the generated markdown; rename the file"):
        run(parse(["--config-dir", str(configs), "--frames", "8", "--output", str(doc)]))
    assert doc.read_text() == f"# Model\n\n{BEGIN_MARK}\nold table\n{END_MARK}\n"


def test_a_command_line_that_would_break_the_markdown_is_refused(tmp_path):
    configs = tmp_path / "x <!-- model-report:end -->"
    configs.mkdir()
    write_config(configs, "good", "body_expert")
    with pytest.raises(UsageError, match=r"the command line \(--config-dir, --output\) holds '<!--'"):
        run(parse(["--config-dir", str(configs), "--frames", "8", "--no-write"]))


def test_a_measurement_far_below_the_paper_is_not_called_an_excess(tmp_path):
    """The tiny body expert counts about 99 % fewer MACs than the paper's row: the note says it is
    fewer, not that matrix products explain an excess."""
    from bharnet_ros.tools.model_report import large_difference_notes

    row = measure(write_config(tmp_path, "body_expert", "body_expert"), frames=64)
    notes = "\n".join(large_difference_notes([row]))
    assert "all MACs" in notes
    assert "fewer than the paper counts" in notes
    assert "excess" not in notes


def test_a_config_of_another_layout_reports_its_own_input_and_no_paper_row(tmp_path):
    """The paper counted at NTU's 25 joints and two bodies; a MediaPipe-layout config is not its row."""
    from bharnet_ros.tools.model_report import render_section

    ntu = measure(write_config(tmp_path, "body_expert", "body_expert"), frames=64)
    path = write_config(tmp_path, "mp_body", "body_expert")
    config = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**config, "input": {"body_layout": "mediapipe33", "num_persons": 1}}))
    mediapipe = measure(path, frames=64)
    assert mediapipe.input_shape == "C = 3, V = 33, body M = 1"
    assert mediapipe.paper is None
    assert ntu.paper is not None
    section = render_section([ntu, mediapipe], "bharnet model-report", 64)
    assert "`mp_body` C = 3, V = 33, body M = 1" in section
    assert "| `mp_body` |" in section
    assert "- | - | - | - |" in section
    assert "`mp_body`: all MACs" not in section


def test_a_window_other_than_the_papers_is_not_compared_with_it(tmp_path):
    """At T = 128 the costs doubled, and the notes put the excess down to the matrix products."""
    from bharnet_ros.tools.model_report import large_difference_notes, render_section

    row = measure(write_config(tmp_path, "body_expert", "body_expert"), frames=128)
    assert row.paper is None
    assert large_difference_notes([row]) == [""]
    section = render_section([row], "bharnet model-report --frames 128", 128)
    assert "T = 128; not compared with the paper, whose counts are at T = 64" in section
    assert "- | - | - | - |" in section
