"""Reliability-aware Noisy-OR fusion: a missing or unsure hand cannot pull the body down."""

from __future__ import annotations

import torch

from bharnet_ros.model.bharnet import build_model
from bharnet_ros.model.fusion import combine_logits, hand_reliability, noisy_or_logits

BODY_CLASS = 2


def confident_body() -> torch.Tensor:
    body = torch.full((1, 4), -4.0)
    body[0, BODY_CLASS] = 5.0
    return body


def test_noisy_or_matches_the_probability_formula():
    body, hand = torch.randn(3, 4), torch.randn(3, 4)
    reliability = torch.tensor([0.0, 0.3, 1.0])
    fused = noisy_or_logits([body, hand], [None, reliability])
    expected = 1 - (1 - torch.sigmoid(body)) * (1 - reliability[:, None] * torch.sigmoid(hand))
    torch.testing.assert_close(torch.sigmoid(fused), expected)


def test_confident_body_is_not_pulled_down_by_a_negative_hand():
    body, hand = confident_body(), torch.full((1, 4), -20.0)
    fused = noisy_or_logits([body, hand], [None, torch.ones(1)])
    assert torch.sigmoid(fused)[0, BODY_CLASS] >= torch.sigmoid(body)[0, BODY_CLASS]
    assert fused.argmax(dim=1).item() == BODY_CLASS
    # an average of logits would have dropped the body's confidence
    averaged = combine_logits([body, hand], "mean")
    assert torch.softmax(averaged, 1)[0, BODY_CLASS] < torch.softmax(body, 1)[0, BODY_CLASS] or (
        torch.sigmoid(averaged)[0, BODY_CLASS] < torch.sigmoid(body)[0, BODY_CLASS]
    )


def test_missing_hand_leaves_the_body_prediction_unchanged():
    body, hand = confident_body(), 10 * torch.randn(1, 4)
    fused = noisy_or_logits([body, hand], [None, hand_reliability(torch.zeros(1, 16))])
    torch.testing.assert_close(fused, body, atol=1e-4, rtol=1e-4)


def test_fused_logits_and_gradients_stay_finite_for_saturated_inputs():
    for reliability in (None, torch.zeros(1), torch.full((1,), 0.5), torch.ones(1)):
        body = torch.tensor([[1e4, -1e4, 0.0, -12.0]], requires_grad=True)
        hand = torch.tensor([[-1e4, -1e4, 1e4, -12.0]], requires_grad=True)
        fused = noisy_or_logits([body, hand], [None, reliability])
        fused.sum().backward()
        assert torch.isfinite(fused).all()
        assert torch.isfinite(body.grad).all()
        assert torch.isfinite(hand.grad).all()


def test_small_probabilities_keep_their_order():
    body = torch.tensor([[-30.0, -20.0, -10.0, -5.0]])
    fused = noisy_or_logits([body, torch.full((1, 4), -40.0)], [None, None])
    torch.testing.assert_close(fused, body, atol=1e-3, rtol=1e-4)


def test_reliability_is_the_fraction_of_frames_with_a_hand():
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    torch.testing.assert_close(hand_reliability(mask), torch.tensor([0.5, 1.0]))


def test_model_with_zero_hand_stream_keeps_the_body_branch(tiny_config, inputs):
    # train mode: BatchNorm uses batch statistics, so the untrained logits stay in a sane range
    model = build_model(tiny_config("score_fusion_noisy_or")).train()
    out = model(inputs["body"], torch.zeros_like(inputs["hand"]), torch.zeros(2, 16))
    torch.testing.assert_close(out["fused"], out["body"], atol=1e-4, rtol=1e-4)
    assert torch.all(torch.sigmoid(out["fused"]) >= torch.sigmoid(out["body"]) - 1e-6)


def test_expertized_noisy_or_discounts_the_branches_that_carry_the_hand(tiny_config, inputs):
    """Without hands, what is left is the body expert and the hand stream's interactive branch,
    which carries the body's values (the body stream's carries the hand's)."""
    model = build_model(tiny_config("bharnet_e_noisy_or")).train()
    out = model(inputs["body"], inputs["hand"], torch.zeros(2, 16))
    expected = noisy_or_logits([out["body_expert"], out["hand_interactive"]], [None, None])
    torch.testing.assert_close(out["fused"], expected, atol=1e-4, rtol=1e-4)
