"""``bharnet train``: train a model from a training config (docs/training.md).

``bharnet train CONFIG [key=value ...] [--train FILES...] [--val FILES...] [--out DIR]`` or
``bharnet train --resume RUN [key=value ...]``. Overrides use dotted keys of the config
(``optim.lr=0.05``, ``model.overrides.backbone.base_channels=32``) and come before the options.
``--loso`` runs leave-one-subject-out cross-validation instead of one training run
(``bharnet_ros.training.crossval``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bharnet_ros.tools import UsageError, check_count
from bharnet_ros.tools.evaluate import MOST_VIEWS
from bharnet_ros.tools.outputs import check_output_folder
from bharnet_ros.training.dataset import DatasetError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "items", nargs="*", metavar="CONFIG [key=value ...]",
        help="training config (config/train/*.yaml; left out with --resume) and dotted-key overrides",
    )  # fmt: skip
    parser.add_argument(
        "--train", nargs="+", metavar="FILE", help="training data: dataset .npz or synth folders"
    )
    parser.add_argument(
        "--val", nargs="+", metavar="FILE", help="validation data (default: the training files)"
    )
    parser.add_argument("--out", type=Path, help="run folder (default: runs/<name>-<timestamp>)")
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
    ``--train``) and that name no existing file are moved back to the overrides.
    """
    out = list(overrides)
    for key in ("train", "val"):
        given = getattr(args, key) or []
        stray = [f for f in given if "=" in f and not Path(f).exists()]
        files = [f for f in given if f not in stray]
        out.extend(stray)
        if files:
            quoted = ", ".join(f"'{Path(f).expanduser().resolve()}'" for f in files)
            out.append(f"data.{key}=[{quoted}]")
    return out


def run(args: argparse.Namespace) -> int:
    from bharnet_ros.model.checkpoint import CheckpointError
    from bharnet_ros.training.train import ConfigError, DivergedError, load_train_config, train

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
    try:
        if args.resume is not None:
            folder = train({}, resume=args.resume, overrides=overrides)
        else:
            config = load_train_config(config_path, overrides)
            check_out_beside_inputs(config, args.out, config_path)
            folder = train(config, out=args.out)
    except (ConfigError, DatasetError, CheckpointError, DivergedError) as err:
        raise UsageError(str(err)) from None
    if int(os.environ.get("RANK", "0")) == 0:  # torchrun: one line, not one per process
        print(f"run folder: {folder}")
    return 0


# What a run (or a --loso fold) writes into its folder: an input of that name there would be replaced.
RUN_FILES = frozenset({"config.yaml", "model.yaml", "last.pt", "best.pt", "resume.pt", "metrics.csv"})


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
        inside = folder.exists() and path.resolve().is_relative_to(folder.resolve())
        if inside and path.name in RUN_FILES:
            raise UsageError(
                f"--out {folder} holds the input {path}, which this run's own {path.name} would "
                "replace; write the run to another folder"
            )


def check_run_folder(out: Path, loso: bool, force: bool) -> None:
    """``--out`` must be new or empty; with ``--loso`` it may also hold an earlier ``--loso`` run
    (its folds are continued or re-scored). Anything else there needs ``--force``."""
    check_output_folder(out, force=True)  # a file or an unwritable place
    if force or not out.is_dir():
        return
    from bharnet_ros.training.crossval import is_loso_output

    names = [entry.name for entry in out.iterdir()]
    ours = [name for name in names if loso and is_loso_output(out / name)]
    if len(ours) < len(names):
        what = "a run of `bharnet train --loso`" if loso else "empty"
        other = sorted(set(names) - set(ours))[:3]
        hint = " (continue a run with --resume)" if "resume.pt" in names and not loso else ""
        raise UsageError(
            f"--out {out} is not {what}: it holds {', '.join(other)}; choose a new folder{hint}, "
            "or pass --force to write there anyway"
        )


def run_loso(args: argparse.Namespace, config_path: str | None, overrides: list[str]) -> int:
    """``--loso``: one fold per held-out subject, then the pooled summary."""
    from bharnet_ros.model.checkpoint import CheckpointError
    from bharnet_ros.training.crossval import cross_validate
    from bharnet_ros.training.train import ConfigError, DivergedError, load_train_config

    if args.resume is not None or args.out is None:
        raise UsageError("--loso needs --out DIR (and no --resume: rerun with the same --out to continue)")
    check_count("--views", args.views, 1, MOST_VIEWS)
    if args.train_people is not None and args.train_people < 1:
        raise UsageError(f"--train-people must be at least 1, got {args.train_people}")
    subjects = None if args.loso == "all" else [s.strip() for s in args.loso.split(",") if s.strip()]
    if subjects is not None and (not subjects or len(set(subjects)) < len(subjects)):
        raise UsageError(f"--loso {args.loso!r}: name each person to hold out once, e.g. --loso S1,S2")
    try:
        config = load_train_config(config_path, overrides)
        check_out_beside_inputs(config, args.out, config_path)
        values = cross_validate(config, args.out, subjects, views=args.views, train_people=args.train_people)
    except (ConfigError, DatasetError, CheckpointError, DivergedError) as err:
        raise UsageError(str(err)) from None
    folds = ", ".join(f"{s} {100 * v:.1f} %" for s, v in values["folds_top1"].items())
    people = "" if args.train_people is None else f", trained on {args.train_people} of the others"
    print(f"leave-one-subject-out top-1 {100 * values['top1']:.2f} % ({folds}{people})")
    print(f"wrote {args.out}/summary.json")
    return 0
