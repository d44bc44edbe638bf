"""Score-level fusion of branch logits: averaging/summing, or reliability-aware Noisy-OR.

Noisy-OR (model_spec section 6) treats each branch as an independent detector of every class,
``p_s = sigmoid(z_s)``, and fuses ``p = 1 - prod_s (1 - r_s p_s)``. ``r_s`` is the branch's
reliability: 1 for body branches, the fraction of frames with a detected hand for hand branches.
The fused probability is never below any single branch's ``r_s p_s``, so a confident body
prediction cannot be pulled down by a hand stream that is missing (``r = 0``) or unsure, which an
average of logits would do. The fused value is returned as a logit, ``log p - log(1 - p)``,
computed in log space so it stays finite for saturated inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

MIN_LOG = -30.0  # log(1 - r) for r = 1; exp(-30) ~ 1e-13 is "no contribution" at float32
MIN_EVIDENCE = 1e-20  # keeps log(p) finite when every branch says "no" (fused logit >= -46)
SMALL_EVIDENCE = 1e-3  # below this, log(1 - e^-s) = log(s) - s/2 to float32 precision


def hand_reliability(hand_mask: torch.Tensor) -> torch.Tensor:
    """Per-sample hand reliability ``(N,)``: the mean of a per-frame hand mask ``(N, T)`` in [0, 1]."""
    return hand_mask.reshape(hand_mask.shape[0], -1).float().mean(dim=1)


def log_one_minus_branch(logits: torch.Tensor, reliability: torch.Tensor | None) -> torch.Tensor:
    """``log(1 - r sigmoid(z))`` for logits ``(N, K)`` and reliability ``(N,)`` (None means 1).

    Uses ``1 - r s(z) = (1 + (1 - r) e^z) / (1 + e^z)``, i.e. ``softplus(z + log(1 - r)) - softplus(z)``.
    """
    if reliability is None:
        return -F.softplus(logits)
    log_doubt = torch.log1p(-reliability.clamp(0.0, 1.0)).clamp(min=MIN_LOG).unsqueeze(1)
    return F.softplus(logits + log_doubt) - F.softplus(logits)


def log_one_minus_exp_neg(evidence: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(-s))`` for ``s > 0``, accurate for tiny ``s`` and without ``expm1`` (not in ONNX).

    Below ``SMALL_EVIDENCE`` it uses ``log(s) - s/2`` (series of ``1 - e^-s``); each branch only ever
    sees inputs from its own range, so neither produces inf/NaN gradients.
    """
    small = evidence.clamp(max=SMALL_EVIDENCE)
    large = evidence.clamp(min=SMALL_EVIDENCE)
    series = torch.log(small) - 0.5 * small
    direct = torch.log1p(-torch.exp(-large))
    return torch.where(evidence < SMALL_EVIDENCE, series, direct)


def noisy_or_logits(
    logits: Sequence[torch.Tensor], reliabilities: Sequence[torch.Tensor | None]
) -> torch.Tensor:
    """Logit of the Noisy-OR of the branches' per-class sigmoid probabilities."""
    log_none = sum(log_one_minus_branch(z, r) for z, r in zip(logits, reliabilities, strict=True))
    evidence = (-log_none).clamp(min=MIN_EVIDENCE)  # -log(1 - p) > 0
    return log_one_minus_exp_neg(evidence) + evidence


def combine_logits(logits: Sequence[torch.Tensor], reduction: str) -> torch.Tensor:
    """Plain score fusion: ``mean`` (paper III-B's averaged logits) or ``sum`` (BHaRNet-E's four branches)."""
    total = torch.stack(list(logits)).sum(dim=0)
    return total / len(logits) if reduction == "mean" else total
