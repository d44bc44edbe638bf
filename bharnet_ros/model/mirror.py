"""Test-time mirroring: a prediction averaged over the input and its left/right mirror image.

A person who waves with the left hand is the mirror image of one who waves with the right, and
training already shows the model both (the feeder's mirroring). Scoring a window as itself and as
its mirror image, and averaging the two, makes the prediction less dependent on the handedness
and the side the people in the training set happened to favour. A lateral class counts through
its twin (``left`` on the mirror image is evidence for ``right``); a class whose mirror image is
not in the vocabulary counts through the input alone.

The mirror is taken on model tensors: the preprocessing centres every sequence on the
mid-shoulder point, so the mirror image of a centred skeleton is x negated with left and right
joints and hand slots swapped, the same as mirroring the raw frames first (x and the bones and
motion built from it are linear in x). Both images go through the network as one batch, so the
ONNX graph holds one network, not two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from bharnet_ros.core.layouts import mirror_permutation

Outputs = dict[str, torch.Tensor]


def mirror_body(body: torch.Tensor, body_layout: str) -> torch.Tensor:
    """Mirror image of a body model tensor ``(N, C, T, V, M)``: sides swapped, x negated."""
    joints = torch.as_tensor(mirror_permutation(body_layout), device=body.device)
    return _negate_x(body.index_select(3, joints))


def mirror_hand(hand: torch.Tensor) -> torch.Tensor:
    """Mirror image of a hand model tensor ``(N, C, T, V, 2)``: the two hands swapped, x negated."""
    return _negate_x(hand.flip(-1))


def _negate_x(x: torch.Tensor) -> torch.Tensor:
    sign = torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
    sign[0] = -1.0
    return x * sign.view(1, -1, 1, 1, 1)


def mirror_averaged(
    forward: Callable[[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None], Outputs],
    body: torch.Tensor | None,
    hand: torch.Tensor | None,
    hand_mask: torch.Tensor | None,
    body_layout: str,
    class_map: Sequence[int],
) -> Outputs:
    """``forward``'s outputs with every ``(N, K)`` logit averaged over the input and its mirror.

    ``body`` or ``hand`` may be None (a single-stream expert takes only its own stream).
    """
    both = forward(
        None if body is None else torch.cat([body, mirror_body(body, body_layout)]),
        None if hand is None else torch.cat([hand, mirror_hand(hand)]),
        None if hand_mask is None else torch.cat([hand_mask, hand_mask]),
    )
    out = {}
    for name, value in both.items():
        pair = value.reshape(2, -1, *value.shape[1:])
        if value.ndim == 2 and value.shape[1] == len(class_map):
            out[name] = average_with_mirror(pair[0], pair[1], class_map)
        else:
            out[name] = pair[0]  # e.g. the hand reliability, the same for both images
    return out


def average_with_mirror(
    logits: torch.Tensor, mirrored: torch.Tensor, class_map: Sequence[int]
) -> torch.Tensor:
    """Logits ``(N, K)`` of windows averaged with those of their mirror images: a class counts
    through its twin in the mirror image, a class without one (-1) through the window alone."""
    twins = torch.as_tensor([c if c >= 0 else k for k, c in enumerate(class_map)], device=logits.device)
    has_twin = torch.as_tensor([c >= 0 for c in class_map], device=logits.device)
    return torch.where(has_twin, 0.5 * (logits + mirrored.index_select(1, twins)), logits)
