"""The ``bharnet`` entry point on a machine that has the runtime dependencies only (a robot's ROS
install plus requirements-runtime.txt): the commands that need torch or onnx say so in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BLOCKER = '''
import sys

class Absent:
    """torch and onnx as on a robot that never installed them."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "onnx"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Absent())
'''


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "config/train/real_cpu.yaml", "--out", "{out}"],
        ["eval", "models/bharnet_e_expert_only.onnx", "{data}", "--out", "{out}"],
        ["export", "models/bharnet_e.pt", "-o", "{out}.onnx"],
        ["model-report", "--no-write"],
    ],
)
def test_a_command_that_needs_torch_says_how_to_install_it(tmp_path, argv):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER)
    out, data = tmp_path / "out", tmp_path / "data.npz"
    data.write_bytes(b"")  # never read: the command stops first
    argv = [a.format(out=out, data=data) for a in argv]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(REPO)])}
    done = subprocess.run(
        [sys.executable, "-m", "bharnet_ros.cli", *argv],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    [line] = [line for line in done.stderr.splitlines() if "error:" in line]
    assert "the Python module torch is not installed" in line
    assert "pip install -r requirements-training.txt" in line
    assert "Traceback" not in done.stderr
    assert not out.exists()
    assert not Path(f"{out}.onnx").exists()


def test_an_error_naming_a_file_with_a_line_break_stays_one_line(tmp_path, capsys):
    from bharnet_ros.cli import main

    model = tmp_path / "forged\nbharnet eval: ok\x1b[2K.onnx"
    assert main(["eval", str(model), str(tmp_path / "data.npz"), "--out", str(tmp_path / "out")]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "forged\\nbharnet eval: ok\\x1b[2K.onnx not found" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "m.onnx", "d.npz", "--out", ""],
        ["train", "c.yaml", "--out", " "],
        ["export", "m.pt", "-o", ""],
        ["synth", "-o", ""],
        ["bag", "eval", "b", "--labels", "l.csv", "--out", ""],
        ["extract", "v.mp4", "-o", "x", "--overlay", ""],
    ],
)
def test_an_empty_output_option_is_refused_not_read_as_the_current_folder(
    tmp_path, monkeypatch, capsys, argv
):
    """An unset $OUT in `--out $OUT` trained (or wrote) into the folder the command ran from."""
    from bharnet_ros.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert "is empty; give a file or folder name" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_ctrl_c_while_the_command_is_being_set_up_is_one_line_and_exit_130(monkeypatch, capsys):
    """Building the parser imports the command's modules (numpy, the nodes' graph): a Ctrl-C in
    the first moments of `bharnet run` came out as a traceback."""
    from bharnet_ros import cli

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["run", "--video", "clip.mp4"]) == 130
    assert capsys.readouterr().err == "bharnet run: interrupted\n"
