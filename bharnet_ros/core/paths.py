"""Where the package's shared files (config/, models/, launch/) are, installed or in a checkout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "bharnet_ros"
DEFAULT_MODEL = "models/bharnet_e_expert_only.onnx"  # what the recognizer runs unless told otherwise
CHECKOUT = Path(__file__).resolve().parents[2]  # the repository root when running from source


def share_dirs() -> list[Path]:
    """Candidate roots, most specific first: the source checkout, this prefix, AMENT_PREFIX_PATH."""
    roots = [CHECKOUT] if (CHECKOUT / "package.xml").is_file() else []
    prefixes = [sys.prefix, *os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)]
    roots += [Path(p) / "share" / PACKAGE for p in prefixes if p]
    return roots


def share_file(relative: str) -> Path:
    """Path of a shipped file such as ``config/fastdds.xml``; FileNotFoundError says where it looked."""
    candidates = [root / relative for root in share_dirs()]
    for path in candidates:
        if path.exists():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(f"{relative} not found (looked in {looked}); is bharnet_ros installed?")


def default_model() -> Path:
    """The shipped default model (FileNotFoundError where it is not installed)."""
    return share_file(DEFAULT_MODEL)
