"""Format-1 checkpoints (block 0 projecting before aggregating) load into today's layout exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bharnet_ros.model.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    upgrade_optimizer_state,
    upgrade_state_dict,
)

FORMAT1 = Path(__file__).parent / "fixtures" / "format1"
PARITY = 1e-5


@pytest.fixture(scope="module")
def recorded() -> dict[str, np.ndarray]:
    with np.load(FORMAT1 / "outputs.npz") as data:
        return dict(data)


def test_fixture_is_a_format1_file():
    raw = torch.load(FORMAT1 / "checkpoint.pt", weights_only=True)
    assert raw["format_version"] == 1 < FORMAT_VERSION
    assert "body_trunk.blocks.0.graph_conv.project.weight" in raw["state_dict"]


def test_format1_checkpoint_gives_the_old_codes_outputs(recorded):
    model = load_checkpoint(FORMAT1 / "checkpoint.pt").build_model()
    inputs = {name: torch.from_numpy(recorded[f"input_{name}"]) for name in ("body", "hand", "hand_mask")}
    with torch.no_grad():
        outputs = model(**inputs)
    stored = {key.removeprefix("output_") for key in recorded if key.startswith("output_")}
    assert stored == set(outputs)
    for name, logits in outputs.items():
        expected = recorded[f"output_{name}"]
        np.testing.assert_allclose(logits.numpy(), expected, rtol=0, atol=PARITY, err_msg=name)


def test_upgrade_is_a_rearrangement():
    raw = torch.load(FORMAT1 / "checkpoint.pt", weights_only=True)["state_dict"]
    upgraded = upgrade_state_dict(raw, 1)
    assert len(upgraded) == len(raw)
    old = raw["hand_trunk.blocks.0.graph_conv.project.weight"]  # (S*C_out, C_in, 1, 1)
    new = upgraded["hand_trunk.blocks.0.graph_conv.mix.weight"]  # (C_out, S*C_in, 1, 1)
    c_out, c_in = new.shape[0], old.shape[1]
    assert new[5, 2 * c_in + 1, 0, 0] == old[2 * c_out + 5, 1, 0, 0]  # subset 2, out 5, in 1
    assert torch.equal(
        upgraded["hand_trunk.blocks.0.graph_conv.subset_bias"].flatten(),
        raw["hand_trunk.blocks.0.graph_conv.project.bias"],
    )
    assert upgrade_state_dict(upgraded, FORMAT_VERSION) == upgraded


def test_resumed_momentum_takes_the_new_shapes():
    checkpoint = load_checkpoint(FORMAT1 / "checkpoint.pt")
    model = checkpoint.build_model()
    names = [name for name, _ in model.named_parameters()]
    raw = torch.load(FORMAT1 / "checkpoint.pt", weights_only=True)["state_dict"]
    momentum = {index: {"momentum_buffer": raw[old]} for index, old in enumerate(old_parameter_order(names))}
    state = {"state": momentum, "param_groups": [{"params": list(range(len(names)))}]}
    upgraded = upgrade_optimizer_state(state, names, 1)
    parameters = dict(model.named_parameters())
    for index, name in enumerate(names):
        assert upgraded["state"][index]["momentum_buffer"].shape == parameters[name].shape, name


def old_parameter_order(names: list[str]) -> list[str]:
    """Format-1 names in the optimiser's order (format 2 kept the order, renaming block 0's two)."""
    renamed = {
        "graph_conv.mix.weight": "graph_conv.project.weight",
        "graph_conv.subset_bias": "graph_conv.project.bias",
    }
    old = []
    for name in names:
        for new, was in renamed.items():
            if name.endswith(new):
                name = name.removesuffix(new) + was
        old.append(name)
    return old
