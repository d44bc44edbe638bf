"""Shared fixtures for the model tests: tiny configs of the real YAML files and random inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip(
    "torch", reason="the model tests need torch: pip install -r requirements-training.txt"
)

from bharnet_ros.model.config import ModelConfig, deep_merge, load_model_config  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "model"
CONFIG_FILES = sorted(CONFIG_DIR.glob("*.yaml"))
# Small enough that every variant runs forward and backward in well under a second on one core.
TINY = {
    "num_classes": 5,
    "backbone": {"base_channels": 8},
    "attention": {"heads": 2, "dim_head": 8, "num_features": 16},
}
FRAMES = 16
BATCH = 2


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture
def tiny_config() -> Callable[..., ModelConfig]:
    """``tiny_config("bharnet_e", {...})``: a shipped YAML shrunk by ``TINY`` plus extra overrides."""

    def make(name: str, overrides: dict[str, Any] | None = None) -> ModelConfig:
        return load_model_config(CONFIG_DIR / f"{name}.yaml", deep_merge(TINY, overrides or {}))

    return make


def make_inputs(vertices: int = 25, persons: int = 2, frames: int = FRAMES) -> dict[str, torch.Tensor]:
    """Random body ``(N, 3, T, V, M)``, hands ``(N, 3, T, V, 2)`` and a full hand mask ``(N, T)``."""
    return {
        "body": torch.randn(BATCH, 3, frames, vertices, persons),
        "hand": torch.randn(BATCH, 3, frames, vertices, 2),
        "hand_mask": torch.ones(BATCH, frames),
    }


@pytest.fixture
def inputs() -> dict[str, torch.Tensor]:
    return make_inputs()


@pytest.fixture
def input_factory() -> Callable[..., dict[str, torch.Tensor]]:
    """``input_factory(vertices=33, persons=1, frames=16)`` for non-default input shapes."""
    return make_inputs
