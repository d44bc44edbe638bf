"""A model file's first load and dry run, in a child process with a time and memory budget.

An ONNX file is an input like any other, and its cost is the file's choice: a few hundred bytes
of standard operators (a convolution of two ``ConstantOfShape`` tensors) make ONNX Runtime's
constant folding run for an hour when the session is created, or expand a constant to gigabytes
at each run. No static reading bounds that, since exported graphs use the same operators. So a
running node first opens a new file here: the child loads the same bytes, runs the same checks and
dry runs, on a still window and a moving one (:class:`~bharnet_ros.core.inference.OnnxClassifier`,
on CPU; a graph can key its cost on any property of its input, so this bounds the cost of those
two windows, not of every window), and is killed past
:data:`CHECK_SECONDS`; its address space is capped at :data:`CHECK_MEMORY`. Only a file that
passed is opened by the node itself, whose load then takes no longer than the child's did.

Run as ``python -m bharnet_ros.core.model_check NAME`` with the model's bytes on stdin: exit 0 if
the model loads, else exit 1 with the reason as the last line of stdout.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

CHECK_SECONDS = 20.0  # an exported model loads and runs once in well under a second
CHECK_MEMORY = 4 << 30  # address space: ONNX Runtime and NumPy need a few hundred MB of it
PARENT_VARIABLE, SECONDS_VARIABLE = "BHARNET_CHECK_PARENT", "BHARNET_CHECK_SECONDS"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding bharnet_ros

logger = logging.getLogger(__name__)


def check_in_child(path: Path, model: bytes, seconds: float | None = None) -> None:
    """Load ``model`` (the bytes of ``path``) and run it once in a child process; InferenceError
    with the reason if that fails, or takes more than ``seconds`` (default :data:`CHECK_SECONDS`)
    or more than :data:`CHECK_MEMORY`."""
    from bharnet_ros.core.inference import InferenceError

    seconds = CHECK_SECONDS if seconds is None else seconds
    try:
        done = subprocess.run(
            _child_command(path),
            input=model,
            capture_output=True,
            timeout=seconds,
            env=_child_env(seconds),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InferenceError(
            f"{path}: loading the model and running it once took longer than {seconds:g} s, so it is "
            "refused (an exported model takes well under a second); export it with `bharnet export`"
        ) from None
    except OSError as err:  # no interpreter to start: the file is opened as before, unchecked
        logger.warning(
            "the model check could not start a child process (%s); %s is loaded unchecked", err, path
        )
        return
    if done.returncode == 0:
        return
    said = done.stdout.decode("utf-8", "replace").strip().splitlines()
    if said:
        raise InferenceError(said[-1][:400])
    errors = done.stderr.decode("utf-8", "replace").strip().splitlines()
    reason = errors[-1][:200] if errors else "no message"
    if done.returncode > 0:  # the child's Python raised: a file unlike any export
        raise InferenceError(
            f"{path}: the model cannot be loaded ({reason}); export it with `bharnet export`"
        )
    raise InferenceError(
        f"{path}: the model's check ended by signal {-done.returncode} ({reason}); a graph that needs "
        f"more than {CHECK_MEMORY >> 30} GiB of memory ends this way"
    )


def _child_command(path: Path) -> list[str]:
    """This process's interpreter, blind to modules in the working folder (``-P``)."""
    return [sys.executable, "-P", "-m", "bharnet_ros.core.model_check", str(path)]


def _child_env(seconds: float) -> dict[str, str]:
    """This process's environment, with the package's own folder after PYTHONPATH (an overlay
    sourced later keeps its place), UTF-8 for the reason the child prints, and what the child
    needs to end itself: this process's id and the time budget."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env[PARENT_VARIABLE], env[SECONDS_VARIABLE] = str(os.getpid()), repr(float(seconds))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (env.get("PYTHONPATH"), str(PACKAGE_ROOT))))
    return env


def _cap_memory() -> None:
    """Cap the address space at :data:`CHECK_MEMORY`, or at a lower hard limit already in force."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = CHECK_MEMORY if hard == resource.RLIM_INFINITY else min(CHECK_MEMORY, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _end_with_parent() -> None:
    """Linux: this process ends when the node that started it does, and after its time budget in
    CPU seconds, whoever waits for it. The parent's timeout lived in the parent: a node stopped by
    Ctrl-C mid-check left its child folding a hostile graph for as long as that took."""
    seconds = float(os.environ.get(SECONDS_VARIABLE) or CHECK_SECONDS)
    soft = math.ceil(seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5 if hard == resource.RLIM_INFINITY else hard))
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl (not Linux): the CPU budget still ends it
        return
    parent = os.environ.get(PARENT_VARIABLE)
    if parent and os.getppid() != int(parent):  # the node ended before the death signal was set
        os._exit(1)


def main() -> int:
    """The child: cap the address space and the time, then load and dry-run the bytes on stdin."""
    _cap_memory()
    _end_with_parent()
    from bharnet_ros.core.inference import InferenceError, OnnxClassifier

    name = sys.argv[1] if len(sys.argv) > 1 else "model"
    try:
        OnnxClassifier(name, providers="cpu", threads=1, model_bytes=sys.stdin.buffer.read())
    except InferenceError as err:
        print(str(err).replace("\n", " "))
        return 1
    except MemoryError:
        print(f"{name}: the model needs more than {CHECK_MEMORY >> 30} GiB of memory to load and run once")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
