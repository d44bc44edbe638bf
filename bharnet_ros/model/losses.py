"""Training losses of the BHaRNet family and a deterministic seeding helper.

Paper Sec. III-B: every listed branch gets an individual cross-entropy, and the *complementary*
loss is a cross-entropy on the averaged branch logits. Its gradient w.r.t. one branch depends on
the joint prediction, so a branch stops being pushed on classes the other branch already solves,
which lets body and hand specialise (the mixture-of-experts behaviour). Sec. III-D: BHaRNet-E
puts individual losses only on the interactive branches and the complementary loss on all four;
``expert_weight`` > 0 adds individual terms on its expertized branches too, so that the
expert-only export (those branches alone) stands on its own.

With ``fusion: noisy_or`` the complementary term is a binary cross-entropy of the Noisy-OR fused
probabilities against the one-hot label. When the outputs carry ``hand_reliability`` (the model
was given a hand mask), the individual terms of hand branches are weighted per sample by it, so
clips without hands do not train the hand experts on noise through those terms (the mean-fusion
complementary term, the paper's, averages every branch unweighted).

    total = individual_weight * sum(individual terms) + complementary_weight * complementary
            + expert_weight * sum(expertized-branch terms)       (BHaRNet-E only)
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bharnet_ros.model.bharnet import BHaRNetModel
from bharnet_ros.model.config import LossConfig
from bharnet_ros.model.fusion import combine_logits


def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.0, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean (optionally per-sample weighted) cross-entropy with label smoothing ``smoothing``."""
    per_sample = F.cross_entropy(logits, target, label_smoothing=smoothing, reduction="none")
    if weight is not None:
        per_sample = per_sample * weight
    return per_sample.mean()


def smoothed_one_hot(target: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """One-hot targets mixed with the uniform distribution: ``(1 - e) onehot + e / K``."""
    one_hot = F.one_hot(target, num_classes).float()
    return one_hot * (1.0 - smoothing) + smoothing / num_classes


def noisy_or_loss(fused_logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """Binary cross-entropy of Noisy-OR fused logits, summed over classes, averaged over samples."""
    labels = smoothed_one_hot(target, fused_logits.shape[1], smoothing)
    per_class = F.binary_cross_entropy_with_logits(fused_logits, labels, reduction="none")
    return per_class.sum(dim=1).mean()


class BHaRNetLoss(nn.Module):
    """Individual + complementary loss for a model's branches; returns every term and ``total``.

    Term names: ``individual/<branch>``, ``complementary`` and ``total``.
    """

    def __init__(
        self,
        branches: tuple[str, ...],
        individual_branches: tuple[str, ...],
        hand_branches: frozenset[str] = frozenset(),
        fusion: str = "mean",
        config: LossConfig | None = None,
    ) -> None:
        super().__init__()
        self.branches = branches
        self.individual_branches = individual_branches
        self.hand_branches = hand_branches
        self.fusion = fusion
        self.config = config or LossConfig()

    @property
    def uses_complementary(self) -> bool:
        """A complementary term needs at least two branches to combine."""
        return self.config.complementary and len(self.branches) > 1

    def branch_term(self, outputs: dict[str, torch.Tensor], target: torch.Tensor, name: str) -> torch.Tensor:
        """Cross-entropy of one branch; a hand branch's is weighted per sample by hand reliability
        (``weight_hand_by_reliability``), so clips without hands do not train it on zeros."""
        reliability = outputs.get("hand_reliability") if self.config.weight_hand_by_reliability else None
        weight = reliability if name in self.hand_branches else None
        return cross_entropy(outputs[name], target, self.config.label_smoothing, weight)

    def individual_terms(
        self, outputs: dict[str, torch.Tensor], target: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return {
            f"individual/{name}": self.branch_term(outputs, target, name) for name in self.individual_branches
        }

    def complementary_term(self, outputs: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        smoothing = self.config.label_smoothing
        if self.fusion == "noisy_or":
            return noisy_or_loss(outputs["fused"], target, smoothing)
        averaged = combine_logits([outputs[name] for name in self.branches], "mean")
        return cross_entropy(averaged, target, smoothing)

    @property
    def expert_branches(self) -> tuple[str, ...]:
        """Expertized branches that get their own term (``expert_weight`` > 0, BHaRNet-E)."""
        if self.config.expert_weight <= 0:
            return ()
        return tuple(b for b in self.branches if b.endswith("_expert") and b not in self.individual_branches)

    def forward(self, outputs: dict[str, torch.Tensor], target: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = self.individual_terms(outputs, target)
        total = self.config.individual_weight * torch.stack(list(terms.values())).sum()
        for name in self.expert_branches:
            terms[f"expert/{name}"] = self.branch_term(outputs, target, name)
            total = total + self.config.expert_weight * terms[f"expert/{name}"]
        if self.uses_complementary:
            terms["complementary"] = self.complementary_term(outputs, target)
            total = total + self.config.complementary_weight * terms["complementary"]
        terms["total"] = total
        return terms


def build_loss(model: BHaRNetModel) -> BHaRNetLoss:
    """The loss matching a model's branches, weighted as its config's ``loss`` says."""
    return BHaRNetLoss(
        model.branches, model.individual_branches, model.hand_branches, model.fusion, model.config.loss
    )


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch; with ``deterministic`` also force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
