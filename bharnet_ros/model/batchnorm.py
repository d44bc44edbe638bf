"""Trained-like BatchNorm statistics for an untrained model (tests, benchmarks, parity checks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn


def calibrate_batchnorm(model: nn.Module, batches: Sequence[Mapping[str, torch.Tensor]]) -> None:
    """Give an untrained model trained-like BatchNorm statistics (cumulative averages over ``batches``).

    Untrained BatchNorms (running variance 1) let activations grow by orders of magnitude in eval
    mode; tests and benchmarks call this so their numbers describe realistic activation ranges.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    was_training = model.training
    model.train()
    with torch.no_grad():
        for batch in batches:
            model(**batch)
    model.train(was_training)
    for norm in norms:
        norm.momentum = 0.1
