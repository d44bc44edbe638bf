"""Every shipped model config: loads, builds, runs forward and backward; variant-specific wiring."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bharnet_ros.model.bharnet import (
    MODEL_REGISTRY,
    ExpertizedModel,
    ExpertOnlyModel,
    PoolingAttentionModel,
    ScoreFusionModel,
    SingleStreamModel,
    build_model,
)
from bharnet_ros.model.config import VARIANTS, load_model_config
from bharnet_ros.model.losses import build_loss

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "model"
CONFIG_NAMES = sorted(path.stem for path in CONFIG_DIR.glob("*.yaml"))
EXPECTED_CLASS = {
    "body_expert": SingleStreamModel,
    "hand_expert": SingleStreamModel,
    "score_fusion": ScoreFusionModel,
    "bharnet_p": PoolingAttentionModel,
    "bharnet_e": ExpertizedModel,
    "bharnet_e_expert_only": ExpertOnlyModel,
}


def test_every_variant_has_a_config_and_a_builder():
    variants = {load_model_config(CONFIG_DIR / f"{name}.yaml").variant for name in CONFIG_NAMES}
    assert variants == set(VARIANTS) == set(MODEL_REGISTRY)


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_full_size_config_builds(name):
    config = load_model_config(CONFIG_DIR / f"{name}.yaml")
    model = build_model(CONFIG_DIR / f"{name}.yaml")
    assert isinstance(model, EXPECTED_CLASS[config.variant])
    assert model.config == config
    assert sum(p.numel() for p in model.parameters()) > 5e5


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_forward_returns_branch_and_fused_logits(name, tiny_config, inputs):
    model = build_model(tiny_config(name))
    out = model(**inputs)
    assert set(out) == {*model.branches, "fused", "hand_reliability"}
    for key in (*model.branches, "fused"):
        assert out[key].shape == (2, 5)
        assert torch.isfinite(out[key]).all()
    assert out["hand_reliability"].shape == (2,)
    assert "hand_reliability" not in model(inputs["body"], inputs["hand"])


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_backward_gives_finite_gradients_on_all_parameters(name, tiny_config, inputs):
    model = build_model(tiny_config(name)).train()
    losses = build_loss(model)(model(**inputs), torch.tensor([0, 4]))
    losses["total"].backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
    assert torch.isfinite(losses["total"])


def test_mediapipe_body_layout_with_one_person(tiny_config, input_factory):
    config = tiny_config("bharnet_e", {"input": {"body_layout": "mediapipe33", "num_persons": 1}})
    out = build_model(config)(**input_factory(vertices=33, persons=1))
    assert out["fused"].shape == (2, 5)


@pytest.mark.parametrize("keep", [["instance"], ["time"], ["vertex"], ["vertex", "time"]])
@pytest.mark.parametrize("kind", ["favor", "softmax"])
def test_pam_axis_and_attention_kind_are_options(keep, kind, tiny_config, inputs):
    model = build_model(tiny_config("bharnet_p", {"pam": {"keep_axes": keep}, "attention": {"kind": kind}}))
    assert list(model.body_pam.attentions) == keep
    assert model.body_pam.attentions[keep[0]].kind == kind
    assert model(**inputs)["fused"].shape == (2, 5)


@pytest.mark.parametrize("split", [1, 7, 10])
@pytest.mark.parametrize("interaction", ["full", "pam"])
def test_expertized_split_point_and_interaction_are_options(split, interaction, tiny_config, inputs):
    overrides = {"expertized": {"split_block": split, "interaction": interaction}}
    model = build_model(tiny_config("bharnet_e", overrides))
    assert len(model.body_trunk.blocks) == split
    assert len(model.body_expert_tail) == len(model.hand_interactive_tail) == 10 - split
    assert model(**inputs)["fused"].shape == (2, 5)


def test_expert_only_equals_sum_of_full_models_expert_branches(tiny_config, inputs):
    full = build_model(tiny_config("bharnet_e")).eval()
    expert = full.expert_only().eval()
    full_out, expert_out = full(**inputs), expert(**inputs)
    torch.testing.assert_close(expert_out["fused"], full_out["body_expert"] + full_out["hand_expert"])
    torch.testing.assert_close(expert_out["body_expert"], full_out["body_expert"])
    own = {id(p) for p in expert.parameters()}
    assert own < {id(p) for p in full.parameters()}  # shared weights, attention left out
    assert not any("exchange" in key or "interactive" in key for key in expert.state_dict())


def test_expert_only_loads_a_full_checkpoint(tiny_config, inputs):
    full = build_model(tiny_config("bharnet_e")).eval()
    standalone = build_model(tiny_config("bharnet_e_expert_only")).eval()
    standalone.load_full_state_dict(full.state_dict())
    expected = full(**inputs)
    torch.testing.assert_close(
        standalone(**inputs)["fused"], expected["body_expert"] + expected["hand_expert"]
    )
    with pytest.raises(KeyError):
        standalone.load_full_state_dict({})


def test_single_stream_expert_needs_its_input(tiny_config, inputs):
    hand_model = build_model(tiny_config("hand_expert"))
    assert set(hand_model(hand=inputs["hand"])) == {"hand", "fused"}
    with pytest.raises(ValueError, match="hand input"):
        hand_model(body=inputs["body"])


def test_config_typos_and_bad_options_are_rejected(tiny_config):
    with pytest.raises(ValueError, match="unknown keys"):
        tiny_config("bharnet_p", {"pam": {"keep_axis": ["time"]}})
    with pytest.raises(ValueError, match="keep_axes"):
        tiny_config("bharnet_p", {"pam": {"keep_axes": ["channel"]}})
    with pytest.raises(ValueError, match="model config .*loss is empty; give its keys or leave it out"):
        tiny_config("bharnet_e", {"loss": None})  # keys commented out: the defaults replaced the set ones
    with pytest.raises(ValueError, match="keep_axes names an axis twice"):
        tiny_config("bharnet_p", {"pam": {"keep_axes": ["time", "time"]}})
    with pytest.raises(ValueError, match="split_block"):
        tiny_config("bharnet_e", {"expertized": {"split_block": 11}})
    with pytest.raises(ValueError, match="variant"):
        build_model({"variant": "bharnet_x"})
    with pytest.raises(ValueError, match="input.motion must be true or false"):
        tiny_config("bharnet_e", {"input": {"motion": "yes"}})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_classes": -1}, "num_classes must be 1..4096, not -1"),
        ({"num_classes": 0}, "num_classes must be 1..4096"),
        ({"backbone": {"base_channels": 10**9}}, "backbone.base_channels must be 1..4096"),
        ({"attention": {"heads": 0}}, "attention.heads must be 1..64"),
        ({"attention": {"num_features": 0}}, "attention.num_features must be 1..65536, not 0"),
        ({"input": {"frames": 0}}, "input.frames must be 1..10000"),
        ({"backbone": {"stages": [[1, 9], [1, 1]]}, "expertized": {"split_block": 1}}, "backbone.stages"),
        ({"backbone": {"stages": [[1], [1, 1]]}, "expertized": {"split_block": 1}}, "backbone.stages"),
        ({"backbone": {"stages": [[1, 1], [1, True]]}, "expertized": {"split_block": 1}}, "backbone.stages"),
        ({"backbone": {"stages": [[1, 1], [2, 2.0]]}, "expertized": {"split_block": 1}}, "backbone.stages"),
        ({"backbone": {"stages": []}}, "backbone.stages must be 1..64 blocks"),  # not split_block in 1..0
        ({"attention": {"num_features": True}}, "attention.num_features must be 1..65536, not True"),
        ({"backbone": {"dropout": 1.0}}, "backbone.dropout must be in [0, 1)"),
        ({"backbone": {"base_channels": 4096}}, "the widest layer must be at most 4096 channels"),
        ({"attention": {"heads": 64, "dim_head": 1024}}, "not 65536"),
        ({"loss": {"label_smoothing": -0.1}}, "loss.label_smoothing must be in [0, 1)"),
    ],
)
def test_sizes_no_model_can_be_built_with_are_refused_by_name(tiny_config, overrides, message):
    with pytest.raises(ValueError, match="model config") as err:
        tiny_config("bharnet_e", overrides).validate()
    assert message in str(err.value)
