"""``bharnet export CHECKPOINT -o model.onnx``: write the ONNX model the ROS node runs.

The checkpoint's model is exported (optionally only BHaRNet-E's expertized branches) with its
labels and preprocessing in the ONNX metadata, then ONNX Runtime is checked against PyTorch on
random and realistic inputs, and the file is loaded as the recognizer node loads it. The file is
written beside the output and takes its place only when both checks pass: a mismatch exits
non-zero with the numbers and leaves any earlier file as it was. The output must not be the
checkpoint, and an existing one is replaced only with ``--force``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bharnet_ros.tools import UsageError
from bharnet_ros.tools.outputs import atomic_file, check_output_file, output_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bharnet export``."""
    parser.add_argument("checkpoint", type=Path, help="checkpoint written by training (.pt)")
    parser.add_argument("-o", "--output", type=output_option, required=True, help="ONNX file to write")
    parser.add_argument("--force", action="store_true", help="replace an existing ONNX file")
    parser.add_argument(
        "--expert-only",
        action="store_true",
        help="export only BHaRNet-E's body and hand expertized branches (light-weight inference)",
    )
    parser.add_argument(
        "--dynamic-batch", action="store_true", help="dynamic batch axis (adds If nodes; default batch 1)"
    )
    parser.add_argument(  # no default here: the oldest opset is model.export's, which imports torch
        "--opset", type=int,
        help="ONNX opset, from the oldest export supports (the default) to the highest the installed "
        "torch exporter writes",
    )  # fmt: skip
    parser.add_argument(
        "--fp16", action="store_true", help="half precision (not supported yet; says what to do instead)"
    )
    parser.add_argument(
        "--calibration", type=Path, metavar="JSON",
        help="calibration.json of a `bharnet train --loso` run: temperature, none threshold and, "
        "with --distance-from, the distance threshold",
    )  # fmt: skip
    parser.add_argument(
        "--distance-from", type=Path, metavar="CONFIG",
        help="also output each window's feature distance from the training data of this training "
        "config (a run's config.yaml, or config/train/*.yaml), fitted here",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Export, check parity, print a summary; a parity failure exits with 1."""
    from bharnet_ros.model.checkpoint import CheckpointError, load_checkpoint
    from bharnet_ros.model.export import (
        DEFAULT_OPSET,
        FP16_UNSUPPORTED,
        ExportError,
        ParityError,
        calibration_for,
        export_checked,
        prepare_model,
    )

    opset = DEFAULT_OPSET if args.opset is None else args.opset
    if opset < DEFAULT_OPSET:
        raise UsageError(f"--opset {opset} is too old; use {DEFAULT_OPSET} or newer")
    if opset > highest_opset():
        raise UsageError(
            f"--opset {opset} is newer than torch {torch_version()}'s ONNX exporter writes; "
            f"use {DEFAULT_OPSET} to {highest_opset()}"
        )
    if args.fp16:
        raise UsageError(FP16_UNSUPPORTED)
    if args.output.suffix.lower() != ".onnx":  # eval and the node tell models apart by the suffix
        raise UsageError(f"-o {args.output}: an export is an .onnx file; name it {args.output.stem}.onnx")
    check_output_file(args.output, [args.checkpoint, args.calibration, args.distance_from], args.force)
    try:
        checkpoint = load_checkpoint(args.checkpoint)
        model = prepare_model(checkpoint, args.expert_only)
        calibration = (
            calibration_for(args.calibration, model, checkpoint.class_names) if args.calibration else None
        )
    except (CheckpointError, ExportError) as err:
        raise UsageError(str(err)) from None
    if args.distance_from is not None:
        model.feature_distance = distance_of(model, checkpoint, args.distance_from)
    try:
        with atomic_file(args.output) as temporary:
            metadata, diffs = export_checked(
                model, temporary, checkpoint.class_names, checkpoint.preprocess_config,
                checkpoint.hand_intensive, opset=opset, dynamic_batch=args.dynamic_batch,
                calibration=calibration,
            )  # fmt: skip
    except ParityError as err:
        print(f"bharnet export: PARITY CHECK FAILED, nothing written: {err}", file=sys.stderr)
        return 1
    except ExportError as err:
        raise UsageError(f"{err}; nothing written") from None
    print(f"wrote {args.output} ({metadata['bharnet.variant']}, inputs {metadata['bharnet.inputs']})")
    print("parity vs PyTorch: " + ", ".join(f"{case} max abs diff {d:.2e}" for case, d in diffs.items()))
    return 0


def distance_of(model: Any, checkpoint: Any, config: Path) -> Any:
    """The model's feature distance fitted on the training data ``config`` names, or UsageError."""
    from bharnet_ros.training.feature_distance import distance_from_config

    try:
        return distance_from_config(model, checkpoint, config, progress="feature distance")
    except ValueError as err:
        raise UsageError(f"--distance-from {config}: {err}") from None


# The highest opset of torch's TorchScript exporter (the one export uses) where torch does not
# say: 20 from torch 2.5 on. Above it torch only warns and then fails deep in the export.
FALLBACK_HIGHEST_OPSET = 20


def highest_opset() -> int:
    """The highest ONNX opset the installed torch's TorchScript exporter supports."""
    try:
        from torch.onnx import _constants
    except ImportError:
        return FALLBACK_HIGHEST_OPSET
    return int(getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", FALLBACK_HIGHEST_OPSET))


def torch_version() -> str:
    """The installed torch's version, for messages."""
    import torch

    return torch.__version__.split("+")[0]
