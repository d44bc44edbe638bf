"""Loss terms: individual, complementary (averaged logits), BHaRNet-E rules, Noisy-OR, seeding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bharnet_ros.model.bharnet import build_model
from bharnet_ros.model.config import LossConfig
from bharnet_ros.model.losses import BHaRNetLoss, build_loss, noisy_or_loss, seed_everything

TARGET = torch.tensor([1, 2])


def two_stream_outputs() -> dict[str, torch.Tensor]:
    return {"body": torch.randn(2, 4), "hand": torch.randn(2, 4)}


def test_complementary_term_is_cross_entropy_of_averaged_logits():
    outputs = two_stream_outputs()
    loss = BHaRNetLoss(("body", "hand"), ("body", "hand"))(outputs, TARGET)
    averaged = (outputs["body"] + outputs["hand"]) / 2
    torch.testing.assert_close(loss["complementary"], F.cross_entropy(averaged, TARGET))
    torch.testing.assert_close(loss["individual/body"], F.cross_entropy(outputs["body"], TARGET))
    expected_total = loss["individual/body"] + loss["individual/hand"] + loss["complementary"]
    torch.testing.assert_close(loss["total"], expected_total)


def test_complementary_switch_and_weights():
    outputs = two_stream_outputs()
    config = LossConfig(complementary=False, individual_weight=0.5)
    loss = BHaRNetLoss(("body", "hand"), ("body", "hand"), config=config)(outputs, TARGET)
    assert "complementary" not in loss
    torch.testing.assert_close(loss["total"], 0.5 * (loss["individual/body"] + loss["individual/hand"]))


def test_label_smoothing_applies_to_every_term():
    outputs = two_stream_outputs()
    loss = BHaRNetLoss(("body", "hand"), ("body",), config=LossConfig(label_smoothing=0.1))(outputs, TARGET)
    log_p = F.log_softmax(outputs["body"], dim=1)
    manual = -(0.9 * log_p.gather(1, TARGET[:, None]).squeeze(1) + 0.1 * log_p.mean(dim=1)).mean()
    torch.testing.assert_close(loss["individual/body"], manual)
    averaged = (outputs["body"] + outputs["hand"]) / 2
    torch.testing.assert_close(loss["complementary"], F.cross_entropy(averaged, TARGET, label_smoothing=0.1))


def test_hand_terms_are_weighted_by_hand_reliability():
    outputs = {**two_stream_outputs(), "hand_reliability": torch.tensor([0.0, 1.0])}
    loss = BHaRNetLoss(("body", "hand"), ("body", "hand"), frozenset({"hand"}))(outputs, TARGET)
    per_sample = F.cross_entropy(outputs["hand"], TARGET, reduction="none")
    torch.testing.assert_close(loss["individual/hand"], per_sample[1] / 2)
    torch.testing.assert_close(loss["individual/body"], F.cross_entropy(outputs["body"], TARGET))


def test_a_clip_without_hands_trains_no_branch_whose_evidence_is_the_hand(tiny_config, inputs):
    """BHaRNet-E's body-stream interactive branch reads the hand tokens' values, and the hand
    expert sees only the hand: a handless clip's terms there weigh nothing, also the expert term."""
    model = build_model(tiny_config("bharnet_e", {"loss": {"expert_weight": 0.5}}))
    out = model(inputs["body"], inputs["hand"], torch.tensor([[0.0] * 16, [1.0] * 16]))
    loss = build_loss(model)(out, TARGET)
    smoothing = model.config.loss.label_smoothing
    for name, weighted in [
        ("individual/body_interactive", True),
        ("expert/hand_expert", True),
        ("individual/hand_interactive", False),
        ("expert/body_expert", False),
    ]:
        per_sample = F.cross_entropy(
            out[name.split("/")[1]], TARGET, label_smoothing=smoothing, reduction="none"
        )
        expected = per_sample[1] / 2 if weighted else per_sample.mean()
        torch.testing.assert_close(loss[name], expected, msg=name)


def test_expertized_individual_losses_only_on_interactive_branches(tiny_config, inputs):
    model = build_model(tiny_config("bharnet_e"))
    loss = build_loss(model)(model(**inputs), TARGET)
    assert {k for k in loss if k.startswith("individual/")} == {
        "individual/body_interactive",
        "individual/hand_interactive",
    }
    out = model(**inputs)
    averaged = sum(out[name] for name in model.branches) / 4
    expected = F.cross_entropy(averaged, TARGET, label_smoothing=model.config.loss.label_smoothing)
    torch.testing.assert_close(build_loss(model)(out, TARGET)["complementary"], expected)


def test_without_complementary_expert_heads_get_no_gradient(tiny_config, inputs):
    model = build_model(tiny_config("bharnet_e", {"loss": {"complementary": False}}))
    build_loss(model)(model(**inputs), TARGET)["total"].backward()
    for stream in ("body", "hand"):
        grad = getattr(model, f"{stream}_expert_head").fc.weight.grad
        assert grad is None or torch.all(grad == 0)
        assert torch.any(getattr(model, f"{stream}_interactive_head").fc.weight.grad != 0)


def test_with_complementary_all_four_heads_learn(tiny_config, inputs):
    model = build_model(tiny_config("bharnet_e"))
    build_loss(model)(model(**inputs), TARGET)["total"].backward()
    for name in model.branches:
        assert torch.any(getattr(model, f"{name}_head").fc.weight.grad != 0), name


def test_single_stream_loss_has_no_complementary_term(tiny_config, inputs):
    model = build_model(tiny_config("body_expert"))
    loss = build_loss(model)(model(**inputs), TARGET)
    assert set(loss) == {"individual/body", "total"}


def test_noisy_or_loss_is_bce_of_fused_probabilities():
    fused = torch.randn(2, 4)
    probabilities = torch.sigmoid(fused)
    one_hot = F.one_hot(TARGET, 4).float()
    manual = -(one_hot * probabilities.log() + (1 - one_hot) * (1 - probabilities).log()).sum(1).mean()
    torch.testing.assert_close(noisy_or_loss(fused, TARGET), manual)


def test_noisy_or_models_use_the_bce_complementary_term(tiny_config, inputs):
    model = build_model(tiny_config("score_fusion_noisy_or"))
    out = model(**inputs)
    loss = build_loss(model)(out, TARGET)
    smoothing = model.config.loss.label_smoothing
    torch.testing.assert_close(loss["complementary"], noisy_or_loss(out["fused"], TARGET, smoothing))


@pytest.mark.parametrize("name", ["score_fusion", "bharnet_p"])
def test_seeding_makes_model_construction_reproducible(name, tiny_config):
    seed_everything(7)
    first = build_model(tiny_config(name)).state_dict()
    seed_everything(7)
    second = build_model(tiny_config(name)).state_dict()
    for key, value in first.items():
        torch.testing.assert_close(second[key], value)
