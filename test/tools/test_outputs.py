"""The output rule shared by every command: checked before the work, written atomically."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bharnet_ros.core.paths import CHECKOUT
from bharnet_ros.tools import UsageError
from bharnet_ros.tools.outputs import (
    atomic_file,
    check_document,
    check_output_file,
    check_output_folder,
    scratch_folder,
    staged_folder,
)


def test_an_output_file_is_checked_against_inputs_existence_and_folders(tmp_path):
    source = tmp_path / "data.npz"
    source.write_bytes(b"recording")
    with pytest.raises(UsageError, match="also an input"):
        check_output_file(tmp_path / "data", [source], force=True, suffix=".npz")
    with pytest.raises(UsageError, match="already exists; pass --force"):
        check_output_file(source)
    assert check_output_file(source, force=True) == source
    with pytest.raises(UsageError, match="is a folder"):
        check_output_file(tmp_path, suffix=".npz")
    with pytest.raises(UsageError, match="data.npz is a file, not a folder"):
        check_output_file(source / "x.npz")
    assert check_output_file(tmp_path / "new" / "out", suffix=".npz") == tmp_path / "new" / "out.npz"


def test_an_output_link_is_checked_where_it_points(tmp_path):
    """The link's own folder was checked, and the command failed only when writing, after its work."""
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    link = tmp_path / "out.npz"
    link.symlink_to(tmp_path / "notes.txt" / "out.npz")
    with pytest.raises(UsageError, match="notes.txt is a file, not a folder"):
        check_output_file(link)


def test_a_document_link_is_checked_where_it_points(tmp_path):
    """`-o codelink.md` linked to code.py appended markdown to the code."""
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "codelink.md").symlink_to(tmp_path / "code.py")
    with pytest.raises(UsageError, match="codelink.md is not a markdown file"):
        check_document(tmp_path / "codelink.md")
    assert (tmp_path / "code.py").read_text() == "x = 1\n"


def test_an_output_inside_an_input_folder_is_refused_even_with_force(tmp_path):
    """The next run would read it back as input (a skeleton file among the videos, say)."""
    source = tmp_path / "recordings"
    (source / "S7").mkdir(parents=True)
    for output in (source / "all.npz", source / "S7" / "streams"):
        with pytest.raises(UsageError, match="inside the input folder"):
            check_output_folder(output, [source], force=True)
    with pytest.raises(UsageError, match="inside the input folder"):
        check_output_file(source / "S7" / "all", [source], force=True, suffix=".npz")
    assert check_output_file(tmp_path / "all", [source], suffix=".npz") == tmp_path / "all.npz"


def test_an_output_file_that_is_a_pipe_or_a_device_is_refused_even_with_force(tmp_path):
    """--force would put the output in the device's place (/dev/null, run as root)."""
    pipe = tmp_path / "fifo.onnx"
    os.mkfifo(pipe)
    for path in (pipe, Path("/dev/null")):
        with pytest.raises(UsageError, match="is not a regular file"):
            check_output_file(path, force=True)
    assert stat.S_ISFIFO(pipe.stat().st_mode)


def test_an_output_folder_holding_an_input_is_refused_even_with_force(tmp_path):
    """With --force the command's files replace those of the same names: the input among them."""
    report = tmp_path / "report"
    (report / "labels").mkdir(parents=True)
    labels = report / "labels" / "predictions.csv"
    labels.write_text("start,end,label\n0,1,wave\n")
    with pytest.raises(UsageError, match="holds the input"):
        check_output_folder(report, [labels], force=True)
    assert check_output_folder(tmp_path / "elsewhere", [labels], force=True) == tmp_path / "elsewhere"


def test_a_written_file_keeps_its_mode_and_a_link_keeps_pointing_at_it(tmp_path):
    target = tmp_path / "report.md"
    target.write_text("old")
    target.chmod(0o600)
    link = tmp_path / "link.md"
    link.symlink_to(target)
    with atomic_file(link) as temporary:
        temporary.write_text("new")
    assert link.is_symlink()
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o600


def test_an_output_folder_needs_force_when_not_empty(tmp_path):
    assert check_output_folder(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "user.txt").write_text("mine")
    with pytest.raises(UsageError, match="is not empty; pass --force"):
        check_output_folder(tmp_path)
    assert check_output_folder(tmp_path, force=True) == tmp_path
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="already exists"):
        check_output_folder(tmp_path / "empty", empty_ok=False)
    with pytest.raises(UsageError, match="is a file"):
        check_output_folder(tmp_path / "user.txt")


def test_an_existing_output_folder_that_is_not_writable_is_refused_before_the_work(tmp_path, monkeypatch):
    """Only the folder above was checked: `eval --out ro` evaluated, then failed to move its files in."""
    readonly = tmp_path / "ro"
    readonly.mkdir(mode=0o555)
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != readonly and access(p, mode))  # root may
    with pytest.raises(UsageError, match="ro is not writable; choose another folder"):
        check_output_folder(readonly)


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out.npz"
    target.write_text("old")

    def interrupted_write() -> None:
        with atomic_file(target) as temporary:
            temporary.write_text("half")
            temporary.with_name(temporary.name + ".partial").write_text("half")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        interrupted_write()
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]
    with atomic_file(target) as temporary:
        temporary.write_text("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]


def test_a_staged_folder_replaces_only_files_of_the_same_names(tmp_path):
    out = tmp_path / "report"
    (out / "sub").mkdir(parents=True)
    (out / "summary.json").write_text("old")
    (out / "sub" / "user.txt").write_text("mine")
    with staged_folder(out) as staged:
        (staged / "sub").mkdir(parents=True)
        (staged / "summary.json").write_text("new")
        (staged / "sub" / "plot.png").write_text("new")
    assert (out / "summary.json").read_text() == "new"
    assert sorted(p.name for p in (out / "sub").iterdir()) == ["plot.png", "user.txt"]

    def interrupted_write() -> None:
        with staged_folder(out) as staged:
            staged.mkdir()
            (staged / "summary.json").write_text("half")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        interrupted_write()
    assert (out / "summary.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


@pytest.fixture
def mounted(tmp_path):
    """A folder that is a file system of its own (a container's volume), where this machine may mount."""
    folder = tmp_path / "volume"
    folder.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(folder)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_staged_folder_moves_into_a_mounted_or_linked_folder(tmp_path, mounted):
    """`--out /res` on a volume: the rename from beside it crossed file systems, and the finished
    work was thrown away with "Invalid cross-device link"."""
    (mounted / "user.txt").write_text("mine")
    link = tmp_path / "link"
    link.symlink_to(mounted)
    for out in (mounted, link):
        check_output_folder(out, force=True)
        with staged_folder(out) as staged:
            staged.mkdir()
            (staged / "summary.json").write_text(out.name)
        assert (mounted / "summary.json").read_text() == out.name
    assert sorted(p.name for p in mounted.iterdir()) == ["summary.json", "user.txt"]


def test_a_staged_folder_that_would_land_a_file_on_a_folder_moves_nothing(tmp_path):
    out = tmp_path / "set"
    (out / "b.npz").mkdir(parents=True)  # a folder named like one of the files written
    (out / "a.npz").write_text("old")

    def write() -> None:
        with staged_folder(out) as staged:
            staged.mkdir()
            for name in ("a.npz", "b.npz"):
                (staged / name).write_text("new")

    with pytest.raises(UsageError, match="b.npz is a folder where this command writes its output"):
        write()
    assert (out / "a.npz").read_text() == "old"  # nothing moved halfway
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


@pytest.mark.parametrize("name", [".", ".."])
def test_a_staged_folder_named_by_dots_writes_into_the_folder_it_names(tmp_path, monkeypatch, name):
    here = tmp_path / "parent" / "here"
    here.mkdir(parents=True)
    (here / "user.txt").write_text("mine")
    monkeypatch.chdir(here)
    with staged_folder(Path(name)) as staged:  # `eval --out .. --force`
        staged.mkdir()
        (staged / "summary.json").write_text("new")
    target = here if name == "." else here.parent
    assert (target / "summary.json").read_text() == "new"
    assert (here / "user.txt").read_text() == "mine"  # the current folder's files stay where they are
    assert sorted(p.name for p in here.parent.iterdir()) == ["here", "summary.json"][: 1 + (name == "..")]


def test_a_scratch_folder_is_removed_after_use_unless_kept_or_there_before(tmp_path):
    with scratch_folder(tmp_path / "bag") as bag:
        bag.mkdir()
        (bag / "data.mcap").write_text("x")
    assert not (tmp_path / "bag").exists()
    with scratch_folder(tmp_path / "kept", keep=True) as bag:
        bag.mkdir()
    assert (tmp_path / "kept").is_dir()

    def fail(folder):
        folder.mkdir()
        raise RuntimeError("scoring failed")

    with scratch_folder(tmp_path / "failed") as bag, pytest.raises(RuntimeError):
        fail(bag)
    assert not (tmp_path / "failed").exists()
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "old.mcap").write_text("y")
    with scratch_folder(tmp_path / "theirs"):
        pass
    assert (tmp_path / "theirs" / "old.mcap").is_file()  # not created by this run: never removed
    with scratch_folder(tmp_path / "not_yet" / ".." / "theirs"):  # is 'theirs', though not_yet is absent
        (tmp_path / "not_yet").mkdir()
    assert (tmp_path / "theirs" / "old.mcap").is_file()


TERMINATED_WRITER = """
import os, signal, sys
from pathlib import Path
from bharnet_ros.tools.outputs import atomic_file, staged_folder
out = Path(sys.argv[1])
try:
    with staged_folder(out / "report") as staged:
        staged.mkdir()
        (staged / "big.bin").write_bytes(b"x" * 1000)
        with atomic_file(out / "summary.json") as temporary:
            temporary.write_text("{}")
            os.kill(os.getpid(), signal.SIGTERM)  # kill, a container stop
except KeyboardInterrupt:
    sys.exit(143)
"""


def test_a_terminated_write_leaves_nothing_behind(tmp_path):
    """SIGTERM left a hidden staging folder (hundreds of MB for a bag) that nothing removed."""
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT)}
    done = subprocess.run([sys.executable, "-c", TERMINATED_WRITER, str(out)], env=env, timeout=60)
    assert done.returncode == 143
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("check", [check_output_file, check_output_folder, check_document])
def test_a_parent_step_after_a_missing_folder_is_refused_before_any_work(tmp_path, check):
    """'out/new/..' passed the checks as a path that does not exist, and the writers, which make
    'new', then replaced the files of 'out' itself without --force."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "summary.json").write_text("the user's")
    with pytest.raises(
        UsageError, match=r"new is not an existing folder, so the '\.\.' after it is ambiguous"
    ):
        check(tmp_path / "out" / "new" / ".." / "report.md")
    (tmp_path / "out" / "new").mkdir()  # an existing folder: '..' is what the system makes of it
    force = {} if check is check_document else {"force": True}
    check(tmp_path / "out" / "new" / ".." / "elsewhere.md", **force)


def test_an_output_folder_holding_a_link_is_refused_even_with_force(tmp_path):
    """open-set --force wrote its labels through out/clip/labels.csv, a link to its input video."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"video")
    (tmp_path / "out" / "clip").mkdir(parents=True)
    (tmp_path / "out" / "clip" / "labels.csv").symlink_to(video)
    with pytest.raises(UsageError, match="holds the symbolic link .*labels.csv"):
        check_output_folder(tmp_path / "out", force=True)
    assert video.read_bytes() == b"video"


def test_an_output_folder_that_is_a_dangling_link_or_holds_no_file_where_one_goes_is_refused(tmp_path):
    """Either used to fail only when the finished output moved into place, after all the work."""
    (tmp_path / "report").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="symbolic link to .*nowhere, which does not exist"):
        check_output_folder(tmp_path / "report", force=True)
    (tmp_path / "out" / "summary.json").mkdir(parents=True)
    with pytest.raises(UsageError, match="summary.json, which is no regular file"):
        check_output_folder(tmp_path / "out", force=True, writes=["summary.json"])
    assert check_output_folder(tmp_path / "out", force=True, writes=["other.csv"]) == tmp_path / "out"


@pytest.mark.parametrize("check", [check_output_file, check_output_folder, check_document])
def test_an_output_name_that_is_not_utf8_is_refused(tmp_path, check):
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/out\xff.md"))
    with pytest.raises(UsageError, match=r"out\\udcff.md: the name is not valid UTF-8"):
        check(odd)


def test_an_output_name_too_long_for_its_temporary_name_is_refused_before_the_work(tmp_path):
    """A 249-character -o name is a valid file name, but its temporary name beside it is not: the
    command failed only after every take was recorded, losing them."""
    fits = "a" * (255 - 22 - len(".npz")) + ".npz"
    assert check_output_file(tmp_path / fits) == tmp_path / fits
    with pytest.raises(UsageError, match="the name is longer than the 233 bytes that fit; shorten it"):
        check_output_file(tmp_path / ("a" * 245 + ".npz"))
