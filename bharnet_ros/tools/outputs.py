"""Output paths of the ``bharnet`` commands: checked before the work starts, written atomically.

Every command that writes follows one rule: it never writes onto one of its own inputs, never
replaces an existing output unless the user passed ``--force``, and never deletes anything it did
not create in the same run. The checks run before the long work (pose stage, import, training),
so a mistake costs nothing. Files are written under a temporary name beside the target and renamed
into place when complete, so an interrupted command leaves the old output, or nothing, and no
half-written file. Folders are written into a temporary folder beside the target and their files
moved in at the end; ``--force`` replaces only the files of the same names.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bharnet_ros.tools import UsageError

FORCE_HINT = "pass --force to replace it or choose another name"


def check_output_file(
    path: Path, inputs: Iterable[Path | None] = (), force: bool = False, option: str = "-o", suffix: str = ""
) -> Path:
    """The file a command will write (``suffix`` added when missing), checked against the rule.

    Raises UsageError when the path is a folder, is one of ``inputs``, already exists (without
    ``force``) or cannot be created.
    """
    _check_parent_steps(path, option)
    if path.is_dir():
        example = path / f"name{suffix or '.out'}"
        raise UsageError(f"{option} {path} is a folder; give a file name such as {example}")
    if suffix and path.suffix != suffix:
        path = path.with_name(path.name + suffix)
    _check_not_an_input(path, inputs, option)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give another file name")
    if path.exists() and not path.is_file():  # --force would put a file in a device's or a FIFO's place
        raise UsageError(f"{option} {path} is not a regular file (a device or a pipe); give a file name")
    if path.exists() and not force:
        raise UsageError(f"{option} {path} already exists; {FORCE_HINT}")
    _check_creatable(Path(os.path.realpath(path)), option)  # a link's target is what gets written
    return path


def output_option(text: str) -> Path:
    """An output option's path (an argparse type): an empty one, such as an unset ``$OUT``, read
    as the current folder and wrote there."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a file or folder name")
    return Path(text)


def check_output_folder(
    path: Path,
    inputs: Iterable[Path | None] = (),
    force: bool = False,
    option: str = "--out",
    empty_ok: bool = True,
    writes: Iterable[str] = (),
) -> Path:
    """A folder a command will write into, checked against the rule.

    An existing non-empty folder (or, with ``empty_ok`` False, any existing one, as for bags)
    needs ``force``; even then only the files the command writes (``writes``, where it names
    them; ``name/`` for a folder) are replaced, so each of those must be a regular file (or a
    folder) where it exists.
    """
    inputs = list(inputs)  # walked twice
    _check_parent_steps(path, option)
    if os.path.islink(path) and not path.exists():  # else found only when the result moves in
        raise UsageError(
            f"{option} {path} is a symbolic link to {os.readlink(path)}, which does not exist; "
            "give a folder, or create the link's target first"
        )
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file; give a folder name")
    _check_not_an_input(path, inputs, option)
    _check_holds_no_input(path, inputs, option)
    if path.is_dir() and not force and (not empty_ok or any(path.iterdir())):
        problem = "is not empty" if empty_ok else "already exists"
        raise UsageError(
            f"{option} {path} {problem}; pass --force to replace the files this command writes "
            "there (nothing else is touched) or choose a new folder"
        )
    if path.is_dir():
        _check_no_links(path, option)
        _check_own_files(path, writes, option)
        if not os.access(path, os.W_OK | os.X_OK):  # found only when the finished files move in
            raise UsageError(f"{option} {path} is not writable; choose another folder")
    _check_creatable(path, option)
    return path


def _check_own_files(folder: Path, names: Iterable[str], option: str) -> None:
    """Something other than a file (a folder, say) under a name the command writes would fail
    the command only when its finished output moves into place. A name ending in ``/`` is a folder
    the command writes, where a file would fail it likewise."""
    for name in names:
        there = folder / name
        if name.endswith("/"):
            if os.path.lexists(there) and not there.is_dir():
                raise UsageError(f"{option} {folder} holds {there}, which is no folder; move it away")
        elif os.path.lexists(there) and not there.is_file():
            raise UsageError(
                f"{option} {folder} holds {there}, which is no regular file, where this command writes "
                f"its {name}; move it away or choose another folder"
            )


# text that would end a section marker or open a comment, a code span, a table cell or a line
MARKDOWN_BREAKERS = ("<!--", "-->", "`", "|", "\n", "\r")


def check_shown(what: str, text: str, fix: str) -> None:
    """UsageError where ``text``, written verbatim into the markdown, holds one of
    :data:`MARKDOWN_BREAKERS`: a config named ``x <!-- model-report:end -->`` ended the generated
    section early, so the next run refused the file."""
    found = next((piece for piece in MARKDOWN_BREAKERS if piece in text), None)
    if found is not None:
        raise UsageError(f"{what} holds {found!r}, which would break the generated markdown; {fix}")


def check_document(
    path: Path, inputs: Iterable[Path | None] = (), option: str = "--out", section: str = ""
) -> Path:
    """A text file a command updates in place (only its own generated ``section``), checked before the work.

    Rewriting one section keeps everything else, so an existing file needs no ``--force``; but it
    must be a regular UTF-8 text file whose section markers are intact, else the update would fail
    after the long measurement (or, for a device such as /dev/null, replace it).
    """
    _check_parent_steps(path, option)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give the markdown file to update")
    _check_not_an_input(path, inputs, option)
    if path.exists() and not path.is_file():
        raise UsageError(f"{option} {path} is not a regular file; give a markdown file")
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{option} {path} is not a UTF-8 text file; give a markdown file") from None
        except OSError as err:
            raise UsageError(f"{option} {path} cannot be read: {err.strerror or err}") from None
    target = Path(os.path.realpath(path))  # a link's target is what gets written
    if target.suffix.lower() not in (".md", ".markdown"):  # a section appended to YAML or code breaks it
        raise UsageError(f"{option} {path} is not a markdown file (.md); give the markdown file to update")
    if section and path.exists():
        from bharnet_ros.tools.report_doc import section_span

        section_span(text, section, path)
    if section:  # the section opens with the command that wrote it (report_doc.record_measurement)
        from bharnet_ros.tools.report_doc import command_line

        check_shown("the command line", command_line(), "give names without it")
    _check_creatable(target, option)
    return path


def _check_parent_steps(path: Path, option: str) -> None:
    """UsageError for a ``..`` after a folder that does not exist (``out/new/..``): the checks
    would find no such path, while the writers, which create ``new``, land in ``out`` itself. Also
    for a name that is not valid UTF-8, which OpenCV's writers crash on (SIGSEGV)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = str(path).encode("utf-8", "backslashreplace").decode()
        raise UsageError(f"{option} {shown}: the name is not valid UTF-8; choose another") from None
    for i, part in enumerate(path.parts):
        if part == ".." and i and not Path(*path.parts[:i]).is_dir():
            raise UsageError(
                f"{option} {path}: {Path(*path.parts[:i])} is not an existing folder, so the '..' "
                "after it is ambiguous; give the path without it"
            )


def _check_no_links(folder: Path, option: str) -> None:
    """UsageError where an existing output folder holds a symbolic link: a command writing there
    with --force would write through it, onto a file elsewhere (its own input, say)."""
    for root, folders, files in os.walk(folder):
        for name in (*folders, *files):
            if os.path.islink(os.path.join(root, name)):
                raise UsageError(
                    f"{option} {folder} holds the symbolic link {Path(root, name)}, which this "
                    "command's files could be written through; remove it or choose a new folder"
                )


def _check_not_an_input(path: Path, inputs: Iterable[Path | None], option: str) -> None:
    """Neither an input itself nor inside an input folder (where the next run would read it back)."""
    for given in inputs:
        if given is not None and _same_path(path, given):
            raise UsageError(f"{option} {path} is also an input of this command; write the output elsewhere")
        if given is not None and given.is_dir() and path.resolve().is_relative_to(given.resolve()):
            raise UsageError(f"{option} {path} is inside the input folder {given}; write it elsewhere")


def _check_holds_no_input(folder: Path, inputs: Iterable[Path | None], option: str) -> None:
    """An output folder must not hold an input: a file the command writes there could replace it."""
    for given in inputs:
        inside = given is not None and folder.exists() and given.resolve().is_relative_to(folder.resolve())
        if inside:
            raise UsageError(
                f"{option} {folder} holds the input {given}, which this command's files could "
                "replace; write the output to another folder"
            )


def _same_path(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _check_creatable(path: Path, option: str) -> None:
    """The nearest existing folder above ``path`` (or ``path``, an existing folder, which a staged
    output writes into) must be a writable folder."""
    parent = path.absolute() if path.is_dir() else path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {path} cannot be created: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path} cannot be created: {parent} is not writable; choose another place")
    most = _name_max(parent) - TEMPORARY_EXTRA
    if len(os.fsencode(path.name)) > most:  # found only when the finished output is renamed into place
        raise UsageError(f"{option} {path}: the name is longer than the {most} bytes that fit; shorten it")


TEMPORARY_EXTRA = len(".") + len(".tmp-") + 8 + len(".partial")  # what a temporary name adds to it


def _name_max(folder: Path) -> int:
    """The longest file name the file system of ``folder`` takes (255 where it does not say)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _temporary_name(path: Path) -> Path:
    """A hidden, unique name beside ``path`` with its suffix (writers choose the format by it)."""
    return path.with_name(f".{path.stem}.tmp-{secrets.token_hex(4)}{path.suffix}")


@contextmanager
def terminated_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (``kill``, a container stop) raises KeyboardInterrupt, so that
    the block's clean-up runs as it does for Ctrl-C instead of the process vanishing with its
    temporary output left behind. Only in the main thread, and only where nobody else handles
    SIGTERM (rclpy installs its own handler for the live graph)."""
    handled = signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)
    if handled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; it is renamed onto ``path`` when the block succeeds.

    When the block fails the temporary file (and any file the writer derived from its name, such
    as ``<name>.partial``) is removed; an OSError while writing becomes a UsageError. A symbolic
    link is followed (its target is written, the link kept), and a replaced file keeps its mode.
    """
    path = Path(os.path.realpath(path))
    made = _make_parents(path)
    temporary = _temporary_name(path)
    try:
        with terminated_as_interrupt():
            yield temporary
        if path.is_file():
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException as err:
        for leftover in temporary.parent.glob(temporary.name + "*"):
            leftover.unlink(missing_ok=True)
        _remove_empty(made)
        if isinstance(err, OSError):
            raise UsageError(f"cannot write {path}: {err.strerror or err}") from None
        raise


def named_folder(path: Path) -> Path:
    """``path`` itself, or resolved where its last part names no folder (``.``, ``..``): a staged
    output is named after that part, and ``--out ..`` would stage into the current folder."""
    return path.resolve() if path.name in ("", ".", "..") else path


@contextmanager
def staged_folder(path: Path) -> Iterator[Path]:
    """Yield a not-yet-existing folder to write into; its contents are moved to ``path`` on success.

    The staged folder has the same name as ``path`` (a bag names its storage file after its folder)
    and lives in a temporary folder inside ``path`` where that exists, else beside it: on the file
    system the results move to, whatever is mounted or linked there (a container's volume had
    failed every command after its work, as a rename cannot cross file systems). Moving replaces
    files of the same names only; when the block fails the temporary folder, which this run
    created, is removed.
    """
    path = named_folder(path)
    made = _make_parents(path)
    place = path if path.is_dir() else path.parent
    holder = place / f".{path.name}.tmp-{secrets.token_hex(4)}"
    holder.mkdir()
    staged = holder / path.name
    done = False
    try:
        with terminated_as_interrupt():
            yield staged
        if staged.exists():
            _check_mergeable(staged, path)
            _move_into(staged, path)
        done = True
    except OSError as err:
        raise UsageError(_staging_problem(err, path, holder)) from None
    finally:
        shutil.rmtree(holder, ignore_errors=True)
        if not done:
            _remove_empty(made)


def _make_parents(path: Path) -> list[Path]:
    """Create the missing folders above ``path``; returns those this made, deepest first."""
    missing = [parent for parent in path.absolute().parents if not parent.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed command made (deepest first), where they are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _staging_problem(err: OSError, path: Path, holder: Path) -> str:
    """The one-line message for an OSError in a staged block, blaming the output only when it is at fault.

    An error with no errno was raised by the command itself about an input ("video not found: …")
    and its message says it all; one naming a file outside the output is about that file.
    """
    if err.errno is None and err.args:
        return str(err)
    named = Path(os.fsdecode(err.filename)).absolute() if isinstance(err.filename, str | bytes) else None
    if named is not None and not any(named.is_relative_to(p.absolute()) for p in (path, holder)):
        return f"cannot use {named}: {err.strerror or err}"
    return f"cannot write {path}: {err.strerror or err}"


@contextmanager
def scratch_folder(path: Path, keep: bool = False) -> Iterator[Path]:
    """A folder the block fills and uses, removed afterwards unless ``keep`` (e.g. a camera bag
    recorded only to be scored: hundreds of MB per minute of video). A folder that was there
    before the command ran is never removed."""
    path = path.resolve()  # judged and removed as one place: 'out/../bag' before out exists is bag
    existed = path.exists()
    try:
        yield path
    finally:
        if not keep and not existed:
            shutil.rmtree(path, ignore_errors=True)


def _check_mergeable(source: Path, target: Path) -> None:
    """UsageError, before anything moves, where an entry of ``source`` would land on one of the other
    kind in ``target`` (a file onto a folder, or a folder onto a file): the move would stop halfway."""
    if not target.is_dir():
        return
    for entry in source.iterdir():
        there = target / entry.name
        if entry.is_dir() and there.is_dir():
            _check_mergeable(entry, there)
        elif there.exists() and entry.is_dir() != there.is_dir():
            kind = "a folder" if there.is_dir() else "a file"
            raise UsageError(f"{there} is {kind} where this command writes its output; move it away")


def _move_into(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``; into an existing folder, entry by entry (same names replaced)."""
    if not target.is_dir():
        os.replace(source, target)
        return
    for entry in source.iterdir():
        if entry.is_dir():
            _move_into(entry, target / entry.name)
        else:
            os.replace(entry, target / entry.name)
