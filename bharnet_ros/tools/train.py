"""``bharnet train``: train a model from a training config (docs/training.md).

``bharnet train CONFIG [key=value ...] [--train FILES...] [--val FILES...] [--out DIR]`` or
``bharnet train --resume RUN [key=value ...]``. Overrides use dotted keys of the config
(``optim.lr=0.05``, ``model.overrides.backbone.base_channels=32``), before or after the options.
``--loso`` runs leave-one-subject-out cross-validation instead of one training run
(``bharnet_ros.training.crossval``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bharnet_ros.tools import UsageError, check_count
from bharnet_ros.tools.evaluate import MOST_VIEWS
from bharnet_ros.tools.outputs import check_output_folder, output_option
from bharnet_ros.training.dataset import DatasetError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "items", nargs="*", metavar="CONFIG [key=value ...]",
        help="training config (config/train/*.yaml; left out with --resume) and dotted-key overrides",
    )  # fmt: skip
    parser.add_argument(
        "--train", nargs="+", action="extend", metavar="FILE",
        help="training data: dataset .npz or synth folders, in place of the config's data.train "
        "(given twice, both lists count)",
    )  # fmt: skip
    parser.add_argument(
        "--val", nargs="+", action="extend", metavar="FILE",
        help="validation data, in place of the config's data.val (default: the training files' val "
        "split, data.val_subjects or data.val_fraction, else none)",
    )  # fmt: skip
    parser.add_argument("--out", type=output_option, help="run folder (default: runs/<name>-<timestamp>)")
    parser.add_argument(
        "--force", action="store_true",
        help="write into a non-empty --out that is not a run of this command (only its files are replaced)",
    )  # fmt: skip
    parser.add_argument("--resume", type=Path, metavar="RUN", help="continue the run in this folder")
    parser.add_argument(
        "--loso", nargs="?", const="all", metavar="S1,S2",
        help="leave-one-subject-out cross-validation over these people (default: every subject); "
        "needs --out, continues an interrupted run in the same folder",
    )  # fmt: skip
    parser.add_argument(
        "--views", type=int, default=1, metavar="N",
        help="with --loso: windows per test clip, their logits averaged (default 1: the centre)",
    )  # fmt: skip
    parser.add_argument(
        "--train-people", type=int, metavar="K",
        help="with --loso: train each fold on only K of the other people (the K after the held-out "
        "one in sorted order), to see how accuracy grows with the number of people",
    )  # fmt: skip
    parser.set_defaults(late_overrides=True)  # key=value after the options: cli.main


def split_items(items: list[str], resume: bool) -> tuple[str | None, list[str]]:
    """The config path (first item, unless resuming) and the overrides."""
    if resume:
        plain = [item for item in items if "=" not in item]
        if plain:
            raise UsageError(
                f"--resume takes the run's stored config; drop {plain[0]!r} or leave out --resume"
            )
        return None, items
    if not items or "=" in items[0]:
        raise UsageError("name a training config first, e.g. bharnet train config/train/synth_cpu.yaml")
    extra = [item for item in items[1:] if "=" not in item]
    if extra:
        raise UsageError(f"{extra[0]!r} is not a key=value override; write e.g. optim.lr=0.05")
    return items[0], items[1:]


def overrides_from(args: argparse.Namespace, overrides: list[str]) -> list[str]:
    """Add --train/--val as data overrides (YAML lists of quoted paths).

    ``key=value`` items that argparse swallowed into a file list (overrides written after
    ``--train``) and that name no existing file are moved back to the overrides, as is one
    swallowed by a bare ``--loso`` (which then holds out everyone, as written).
    """
    out = list(overrides)
    if "=" in (getattr(args, "loso", None) or ""):
        out.append(args.loso)
        args.loso = "all"
    for key in ("train", "val"):
        given = getattr(args, key) or []
        stray = [f for f in given if "=" in f and not Path(f).exists()]
        files = [f for f in given if f not in stray]
        out.extend(stray)
        if files and any(o.startswith(f"data.{key}=") for o in out):
            raise UsageError(f"give the {key} data once: --{key} or data.{key}=, not both")
        if files:
            quoted = ", ".join(
                "'{}'".format(str(Path(f).expanduser().resolve()).replace("'", "''")) for f in files
            )
            out.append(f"data.{key}=[{quoted}]")
    return out


def run(args: argparse.Namespace) -> int:
    config_path, overrides = split_items(args.items, args.resume is not None)
    overrides = overrides_from(args, overrides)
    if args.resume is not None and args.out is not None:
        raise UsageError("--resume continues in the run's own folder; drop --out")
    if args.out is not None:
        check_run_folder(args.out, args.loso is not None, args.force)
    if args.loso is not None:
        return run_loso(args, config_path, overrides)
    if args.train_people is not None or args.views != 1:
        raise UsageError("--train-people and --views work with --loso: add --loso S1,S2 (people to hold out)")
    with one_line_errors():
        folder = train_once(args, config_path, overrides)
    if int(os.environ.get("RANK", "0")) == 0:  # torchrun: one line, not one per process
        print(f"run folder: {folder}")
    return 0


def train_once(args: argparse.Namespace, config_path: str | None, overrides: list[str]) -> Path:
    """One training run, new or resumed; returns its folder."""
    from bharnet_ros.training.train import load_train_config, train

    if args.resume is not None:
        return train({}, resume=args.resume, overrides=overrides)
    config = load_train_config(config_path, overrides)
    check_out_beside_inputs(config, args.out, config_path)
    return train(config, out=args.out)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """The training errors a user can fix, as a UsageError: a config, data or checkpoint that
    cannot be used, a divergence, and running out of memory (with what to lower)."""
    from bharnet_ros.model.checkpoint import CheckpointError
    from bharnet_ros.training.train import ConfigError, DivergedError, memory_problem

    try:
        yield
    except (ConfigError, DatasetError, CheckpointError, DivergedError) as err:
        raise UsageError(str(err)) from None
    except (RuntimeError, MemoryError) as err:
        amount = memory_problem(err)
        if amount is None:
            raise
        raise UsageError(
            f"training ran out of memory ({amount}); lower batch_size (or eval_batch_size), or the "
            "model's size: model.overrides.input.frames, input.num_persons, backbone.base_channels"
        ) from None


# What a run (or a --loso fold) writes into its folder: an input of that name there would be replaced.
RUN_FILES = frozenset({"config.yaml", "model.yaml", "last.pt", "best.pt", "resume.pt", "metrics.csv"})
# What a run stopped in its first epoch leaves (a save cut off leaves a .partial file).
UNFINISHED_RUN_FILES = frozenset({"config.yaml", "model.yaml", "last.pt.partial", "resume.pt.partial"})


def check_out_beside_inputs(config: dict, out: Path | None, config_path: str | None) -> None:
    """The run folder (``--out``, or the default under runs/) must be a place a folder can be made,
    neither a data file nor inside a data folder of the config (the next run would read it), and
    must not hold the training config, the model config or a ``model.init`` checkpoint under a
    name the run writes (``config.yaml``, ``last.pt``, ...): ``--force`` would replace it."""
    from bharnet_ros.training.data import resolve_path
    from bharnet_ros.training.train import run_folder

    folder = run_folder(config, out)
    inputs = [resolve_path(path) for key in ("train", "val") for path in config["data"][key]]
    check_output_folder(folder, inputs, force=True, option="--out")
    model = config["model"]
    given = [resolve_path(path) for path in [model["config"], *(model["init"] or {}).values()] if path]
    for path in [*given, *([Path(config_path)] if config_path else [])]:
        path = path / "last.pt" if path.is_dir() else path
        if folder.exists() and _written_by_run(path.resolve(), folder.resolve()):
            raise UsageError(
                f"--out {folder} holds the input {path}, which this run's own {path.name} would "
                "replace; write the run to another folder"
            )


def _written_by_run(path: Path, folder: Path) -> bool:
    """Whether a run in ``folder`` (or a --loso fold of it) writes a file at ``path``; one in a
    subfolder of the user's (an expert's run there) is left alone."""
    where = path.parent
    in_fold = where.parent == folder and where.name.startswith("fold_")
    return path.name in RUN_FILES and (where == folder or in_fold)


def check_run_folder(out: Path, loso: bool, force: bool) -> None:
    """``--out`` must be new or empty; with ``--loso`` it may also hold an earlier ``--loso`` run
    (its folds are continued or re-scored). Anything else there needs ``--force``, but for a run
    (its last.pt), which is continued with ``--resume`` and never replaced."""
    from bharnet_ros.training.crossval import POOLED_FILES, loso_outputs

    # a file or an unwritable place, or a folder where a file the run writes goes (found after an epoch)
    writes = (*POOLED_FILES, "confusion.png") if loso else (*RUN_FILES, "metrics.png")
    check_output_folder(out, force=True, writes=writes)
    if not out.is_dir():
        return

    names = [entry.name for entry in out.iterdir()]
    if "last.pt" in names and not loso:
        raise UsageError(
            f"--out {out} already holds a run (its last.pt), which is never replaced, not even with "
            f"--force; continue it with --resume {out}, or choose a new folder"
        )
    ours = set(loso_outputs(out)) & set(names) if loso else set()
    if force or len(ours) == len(names):
        return
    other = sorted(set(names) - set(ours))[:3]
    if not loso and set(names) <= UNFINISHED_RUN_FILES:
        raise UsageError(
            f"--out {out} holds a run stopped before its first epoch ended ({', '.join(other)}, no "
            "checkpoint); rerun with --force to start it again there, or choose a new folder"
        )
    what = "a run of `bharnet train --loso`" if loso else "empty"
    raise UsageError(
        f"--out {out} is not {what}: it holds {', '.join(other)}; choose a new folder, "
        "or pass --force to write there anyway"
    )


def run_loso(args: argparse.Namespace, config_path: str | None, overrides: list[str]) -> int:
    """``--loso``: one fold per held-out subject, then the pooled summary."""
    from bharnet_ros.training.crossval import cross_validate
    from bharnet_ros.training.train import load_train_config

    if args.resume is not None or args.out is None:
        raise UsageError("--loso needs --out DIR (and no --resume: rerun with the same --out to continue)")
    if int(os.environ.get("WORLD_SIZE", "1") or "1") > 1:  # the other ranks scored folds not yet saved
        raise UsageError(
            "--loso runs in one process, not under torchrun; run `bharnet train ... --loso` itself"
        )
    check_count("--views", args.views, 1, MOST_VIEWS)
    if args.train_people is not None and args.train_people < 1:
        raise UsageError(f"--train-people must be at least 1, got {args.train_people}")
    subjects = None if args.loso == "all" else [s.strip() for s in args.loso.split(",") if s.strip()]
    if subjects is not None and (not subjects or len(set(subjects)) < len(subjects)):
        raise UsageError(f"--loso {args.loso!r}: name each person to hold out once, e.g. --loso S1,S2")
    with one_line_errors():
        config = load_train_config(config_path, overrides)
        if args.views > 1 and config["preprocess"]["window_seconds"] <= 0:
            raise UsageError(
                f"--views {args.views} needs time windows (preprocess.window_seconds > 0); this config "
                "crops each clip by frame count, so each test clip is scored once: leave out --views"
            )
        check_out_beside_inputs(config, args.out, config_path)
        values = cross_validate(config, args.out, subjects, views=args.views, train_people=args.train_people)
    folds = ", ".join(f"{s} {100 * v:.1f} %" for s, v in values["folds_top1"].items())
    people = "" if args.train_people is None else f", trained on {args.train_people} of the others"
    print(f"leave-one-subject-out top-1 {100 * values['top1']:.2f} % ({folds}{people})")
    print(f"wrote {args.out}/summary.json")
    return 0
