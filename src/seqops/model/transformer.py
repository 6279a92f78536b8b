"""The transformer encoder of `SequenceNet(cell="transformer")`: pre-norm layers over a padded
batch, with sinusoidal positions and a mask built from `lengths`.

    encoder = TransformerEncoder(width=64, heads=4, layers=2, dropout=0.1, causal=False)
    h = encoder(x, lengths)          # x (B, T, 64) → (B, T, 64); padded steps: unspecified

Each layer is pre-norm (Xiong et al. 2020): `x + attention(norm(x))`, then
`x + feed_forward(norm(x))`, with a last norm after the stack, as GPT-2 does. The residual
path is the identity from input to output, so a stack trains without a learning-rate warm-up.

Written by hand rather than with `nn.TransformerEncoderLayer`: in eval that layer takes a
fused "fast path" (nested tensors that zero padded steps) that neither the ONNX exporter nor
the padding contract sees the way training does; here training, eval and the exported graph
run the same operators.

Masks. A key that is padding is never attended to, so padding cannot reach a real step (the
padded steps' own rows still attend to the real keys, so no row is all masked and nothing
becomes NaN). With `causal`, step t attends to steps 0..t only: changing a later step never
changes an earlier output. Positions are computed for the batch's own length, so there is no
length limit beyond memory (attention is quadratic in T).
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: Feed-forward width per unit of model width (Vaswani et al. 2017).
FEED_FORWARD = 4


def sinusoidal_positions(time: int, width: int, device: torch.device) -> torch.Tensor:
    """`(T, width)` fixed position codes: sines at `ceil(width / 2)` geometric frequencies,
    then cosines at the first `width // 2` of them (the halves side by side, not interleaved:
    a fixed permutation of the usual layout, which the learned weights absorb)."""
    steps = torch.arange(time, device=device, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    half = torch.arange(0, width, 2, device=device, dtype=torch.float32)  # (ceil(W / 2),)
    angles = steps * torch.exp(half * (-math.log(10000.0) / width))  # (T, ceil(W / 2))
    return torch.cat([torch.sin(angles), torch.cos(angles[:, : width // 2])], dim=1)


def attention_mask(lengths: torch.Tensor, time: int, causal: bool) -> torch.Tensor:
    """`(B, 1, T, T)` boolean, True where query step i may attend to key step j: j is a real
    step of its sequence and, when `causal`, j <= i."""
    steps = torch.arange(time, device=lengths.device)
    allowed = (steps.unsqueeze(0) < lengths.unsqueeze(1)).view(-1, 1, 1, time)  # (B, 1, 1, T)
    if causal:
        allowed = allowed & (steps.view(-1, 1) >= steps.view(1, -1))  # (B, 1, T, T)
    return allowed.expand(-1, -1, time, -1)


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention under a boolean mask."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"hidden_size = {width} must be divisible by heads = {heads}")
        self.heads = heads
        self.scale = 1.0 / math.sqrt(width // heads)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        batch, time, width = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # (B, T, W) each
        q, k, v = (s.reshape(batch, time, self.heads, -1).transpose(1, 2) for s in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) * self.scale  # (B, heads, T, T)
        scores = torch.where(allowed, scores, torch.full_like(scores, float("-inf")))
        mixed = torch.softmax(scores, dim=-1) @ v  # (B, heads, T, W / heads)
        return self.out(mixed.transpose(1, 2).reshape(batch, time, width))  # (B, T, W)


class EncoderLayer(nn.Module):
    """One pre-norm layer: `x + attention(norm(x))`, then `x + feed_forward(norm(x))`."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(width)
        self.attention = SelfAttention(width, heads)
        self.feed_forward_norm = nn.LayerNorm(width)
        self.feed_forward = nn.Sequential(
            nn.Linear(width, FEED_FORWARD * width),
            nn.GELU(),
            nn.Linear(FEED_FORWARD * width, width),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.attention_norm(x), allowed))
        return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))  # (B, T, W)


class TransformerEncoder(nn.Module):
    """See the module docstring: `(B, T, width)` inputs and `lengths` → `(B, T, width)`."""

    def __init__(self, width: int, heads: int, layers: int, dropout: float, causal: bool) -> None:
        super().__init__()
        self.width = width
        self.causal = causal
        self.layers = nn.ModuleList(EncoderLayer(width, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        time = x.shape[1]
        h = self.dropout(x + sinusoidal_positions(time, self.width, x.device))  # (B, T, W)
        allowed = attention_mask(lengths, time, self.causal)  # (B, 1, T, T)
        for layer in self.layers:
            h = layer(h, allowed)
        return self.norm(h)
