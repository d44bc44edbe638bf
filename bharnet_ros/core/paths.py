"""Where the package's shared files (config/, models/, launch/) are, installed or in a checkout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "bharnet_ros"
DEFAULT_MODEL = "models/bharnet_e_expert_only.onnx"  # what the recognizer runs unless told otherwise
CHECKOUT = Path(__file__).resolve().parents[2]  # the repository root when running from source
# The prefix this copy is installed under: <prefix>/lib/pythonX.Y/site-packages/bharnet_ros/core/.
_HERE = Path(__file__).resolve().parents
INSTALL_PREFIX = _HERE[5] if len(_HERE) > 5 else None


def share_dirs() -> list[Path]:
    """Candidate roots, most specific first: the source checkout, the prefix this copy is installed
    under (a colcon overlay's, not an older copy in the Python prefix), the Python prefix, then
    AMENT_PREFIX_PATH."""
    roots = [CHECKOUT] if (CHECKOUT / "package.xml").is_file() else []
    prefixes = [INSTALL_PREFIX, sys.prefix, *os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)]
    roots += [Path(p) / "share" / PACKAGE for p in prefixes if p]
    return list(dict.fromkeys(roots))


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
