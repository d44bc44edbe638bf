"""Cross-attention between the body and hand streams: Performer FAVOR+ or exact softmax.

Queries come from one stream's tokens, keys and values from the other's. Both kernels are written
with ``matmul`` only (no einsum), so the exported graph runs fast in ONNX Runtime.

FAVOR+ (Choromanski et al., "Rethinking Attention with Performers") approximates the softmax
kernel ``exp(q.k / sqrt(d))`` by ``phi(q).phi(k)`` with positive random features
``phi(u) = m^-1/2 exp(W u~ - |u~|^2 / 2)``, ``u~ = d^-1/4 u``, where the ``m`` rows of ``W`` are
blockwise-orthogonal Gaussian directions. Attention then costs O(L m d) instead of O(Lq Lk d):
``out = D^-1 phi(Q) (phi(K)^T V)`` with ``D = diag(phi(Q) phi(K)^T 1)``. Subtracting a maximum
before ``exp`` (per query row; one value for all keys of a sample and head) keeps it finite and
cancels in the normalisation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

KINDS = ("favor", "softmax")
FEATURE_EPS = 1e-4  # added to every random feature, as in the reference FAVOR+ implementation


def default_num_features(dim_head: int) -> int:
    """Performer's default number of random features, ``floor(d ln d)``."""
    return int(dim_head * math.log(dim_head))


def orthogonal_gaussian_matrix(
    num_rows: int, dim: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``(num_rows, dim)`` random directions: orthogonal within each block of ``dim`` rows.

    Each block is the Q factor of a square Gaussian matrix; every row is rescaled by the norm of
    an independent Gaussian vector, so rows have the length distribution of Gaussian samples
    (chi with ``dim`` degrees of freedom) while being orthogonal within a block.
    """
    blocks = []
    for _ in range(math.ceil(num_rows / dim)):
        gaussian = torch.randn(dim, dim, generator=generator)
        q, _ = torch.linalg.qr(gaussian)
        blocks.append(q.T)
    directions = torch.cat(blocks)[:num_rows]
    lengths = torch.randn(num_rows, dim, generator=generator).norm(dim=1)
    return directions * lengths.unsqueeze(1)


def positive_features(x: torch.Tensor, projection: torch.Tensor, is_query: bool) -> torch.Tensor:
    """FAVOR+ features ``(..., L, m)`` of ``x`` ``(..., L, d)``, stabilised before ``exp``.

    Queries subtract their own row maximum; keys subtract one maximum over all their tokens and
    features, so the key normalisation stays shared. Both constants cancel in ``D^-1``.
    """
    dim = x.shape[-1]
    scaled = x * dim**-0.25
    logits = torch.matmul(scaled, projection.transpose(0, 1))
    half_norm = 0.5 * (scaled * scaled).sum(dim=-1, keepdim=True)
    shift = logits.amax(dim=-1 if is_query else (-2, -1), keepdim=True)
    features = torch.exp(logits - half_norm - shift.detach()) + FEATURE_EPS
    return features * projection.shape[0] ** -0.5


def favor_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, projection: torch.Tensor
) -> torch.Tensor:
    """Linear-time approximate softmax attention ``(..., Lq, d)`` with random ``projection`` ``(m, d)``."""
    q_features = positive_features(q, projection, is_query=True)
    k_features = positive_features(k, projection, is_query=False)
    context = torch.matmul(k_features.transpose(-1, -2), v)  # (..., m, d)
    numerator = torch.matmul(q_features, context)
    denominator = torch.matmul(q_features, k_features.sum(dim=-2).unsqueeze(-1))  # (..., Lq, 1)
    return numerator / denominator


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Exact scaled dot-product attention ``softmax(q k^T / sqrt(d)) v``."""
    scores = torch.matmul(q, k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    return torch.matmul(torch.softmax(scores, dim=-1), v)


class CrossAttention(nn.Module):
    """Multi-head cross-attention from query tokens ``(N, Lq, D)`` to context tokens ``(N, Lk, D)``.

    Pre-LayerNorm on both inputs, projections to ``heads * dim_head`` and back to ``D``. With
    ``kind="favor"`` the random projection is a buffer (saved in the state_dict). While training
    it is redrawn every ``redraw_interval`` forward calls (0 = never); :meth:`freeze` fixes it for
    deterministic evaluation and export, :meth:`redraw` draws a new one.
    """

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        dim_head: int = 64,
        kind: str = "favor",
        num_features: int | None = None,
        redraw_interval: int = 0,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown attention kind {kind!r}; use one of {KINDS}")
        inner = heads * dim_head
        self.kind = kind
        self.heads = heads
        self.redraw_interval = redraw_interval
        self.calls_since_redraw = 0
        self.query_norm = nn.LayerNorm(dim)
        self.context_norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        self.to_out = nn.Linear(inner, dim)
        features = num_features or default_num_features(dim_head)
        self.register_buffer("projection", orthogonal_gaussian_matrix(features, dim_head))

    @property
    def frozen(self) -> bool:
        return self.redraw_interval <= 0

    def freeze(self) -> None:
        """Stop redrawing the random projection (deterministic outputs, export)."""
        self.redraw_interval = 0

    @torch.no_grad()
    def redraw(self, generator: torch.Generator | None = None) -> None:
        """Replace the random projection with a fresh draw (same shape, in place)."""
        num_features, dim_head = self.projection.shape
        fresh = orthogonal_gaussian_matrix(num_features, dim_head, generator)
        self.projection.copy_(fresh.to(self.projection))
        self.calls_since_redraw = 0

    def _count_call(self) -> None:
        """Redraw on schedule while training; a no-op in eval mode or when frozen."""
        if not self.training or self.frozen:
            return
        self.calls_since_redraw += 1
        if self.calls_since_redraw >= self.redraw_interval:
            self.redraw()

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, L, h*d)`` to ``(N, h, L, d)``."""
        n, length, _ = x.shape
        return x.reshape(n, length, self.heads, -1).transpose(1, 2)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        self._count_call()
        query = self.query_norm(query)
        context = self.context_norm(context)
        q = self.split_heads(self.to_q(query))
        k = self.split_heads(self.to_k(context))
        v = self.split_heads(self.to_v(context))
        if self.kind == "favor":
            out = favor_attention(q, k, v, self.projection)
        else:
            out = softmax_attention(q, k, v)
        n, _, length, _ = out.shape
        return self.to_out(out.transpose(1, 2).reshape(n, length, -1))


def freeze_projections(module: nn.Module) -> None:
    """Freeze every FAVOR+ projection inside ``module`` (call before evaluation or export)."""
    for layer in module.modules():
        if isinstance(layer, CrossAttention):
            layer.freeze()
