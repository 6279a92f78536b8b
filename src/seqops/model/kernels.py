"""Random convolutional kernel features beside the recurrent path, inside the graph.

A recurrent network on 20-200 training sequences often trails MiniRocket (Dempster et al.
2021): fixed convolutional kernels, the proportion of positive values (PPV) of each kernel's
output against a few biases, and a ridge model on those features. `RandomKernels` computes
MiniRocket-style features in torch, so they run in the same ONNX graph as the recurrent cell:

- the 84 kernels of length 9 with weights -1 and three 2s (`C(9, 3)`), each at dilations
  spaced exponentially up to the longest training sequence (`max_length`), each reading a
  random subset of the input channels (summed), with "same" zero padding;
- biases from quantiles of each kernel's output on one random training sequence (`fit`, the
  quantiles a low-discrepancy sequence as in MiniRocket);
- per (kernel, dilation, bias) the PPV over the sequence's real steps: padding never changes
  a sequence's features (the input's padding is zeroed and steps past its length are not
  counted), so they are the same alone or in a padded batch.

`fit_ridge` fits a linear head on the standardised features in closed form (ridge, its
penalty chosen by leave-one-out cross-validation as MiniRocket's `RidgeClassifierCV` does).
`SequenceNet` adds that head's output, frozen, times a learned scale, to its recurrent head:
training starts from the kernel model and the recurrent path learns what it misses, with
early stopping on the validation split deciding how far. Every tensor here is a buffer or
the frozen head, so the exported graph holds them as constants.

    kernels = RandomKernels(n_features=1, n_out=10_000, max_length=427, seed=0)
    kernels.fit(x_train, lengths_train)              # biases, then feature mean and std
    z = kernels(x, lengths)                          # (B, kernels.n_out) standardised PPV
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import nn

#: Kernel length and the 84 weight patterns: -1 everywhere, 2 at three of the nine taps.
KERNEL_LENGTH = 9
_PATTERNS = np.array(
    [[2.0 if i in chosen else -1.0 for i in range(KERNEL_LENGTH)]
     for chosen in itertools.combinations(range(KERNEL_LENGTH), 3)],
    dtype=np.float32,
)  # fmt: skip
N_PATTERNS = len(_PATTERNS)  # 84
#: The most dilations per kernel (MiniRocket's cap).
MAX_DILATIONS = 32
#: Features x longest training length at most: each feature costs one comparison per step of
#: every sequence of every training batch, so long series get fewer features (1,369 at 1,460
#: steps, the full 10,000 up to 200 steps).
STEP_BUDGET = 2_000_000
#: Inputs are clipped to +-`CLIP` and rounded to multiples of 1 / `GRID` before the kernels, so
#: every kernel output is an exact multiple of 1 / GRID in float32 (at most 2 x 9 taps x 9
#: channels x CLIP x GRID = 2.7e6 units, below 2^24) whatever order a runtime sums in; biases
#: sit half a unit between those multiples, so no output ever equals one. A comparison with a
#: bias then gives the same answer in torch and ONNX Runtime, padded or not: without this,
#: rounding noise of 1e-7 flips outputs lying on a bias and moves a feature by 1 / length.
CLIP, GRID = 16.0, 1024.0


def dilations(max_length: int, n_out: int) -> list[int]:
    """Exponentially spaced dilations `d` with `8 d` within the longest sequence."""
    per_kernel = max(1, n_out // N_PATTERNS)
    top = math.log2(max(1.0, (max_length - 1) / (KERNEL_LENGTH - 1)))
    count = min(per_kernel, MAX_DILATIONS)
    return sorted({int(2**e) for e in np.linspace(0, top, count)})


class RandomKernels(nn.Module):
    """See the module docstring. `n_features` input channels; about `n_out` features (at most
    `STEP_BUDGET / max_length`, rounded down to 84 x dilations x biases per kernel; at least
    one bias each)."""

    weight: torch.Tensor
    """`(dilations, 84, n_features, 9)` kernel weights, zero on the channels a kernel skips."""
    bias: torch.Tensor
    """`(dilations, 84, biases)` thresholds, set by `fit`."""
    mean: torch.Tensor
    std: torch.Tensor
    """`(n_out,)` the training features' mean and standard deviation, set by `fit`."""

    def __init__(self, n_features: int, n_out: int, max_length: int, seed: int = 0) -> None:
        super().__init__()
        if n_out < N_PATTERNS:
            raise ValueError(f"kernel_features must be 0 or at least {N_PATTERNS}, got {n_out}")
        n_out = min(n_out, max(N_PATTERNS, STEP_BUDGET // max(1, max_length)))
        self.dilations = dilations(max_length, n_out)
        self.n_biases = max(1, n_out // (N_PATTERNS * len(self.dilations)))
        self.n_out = N_PATTERNS * len(self.dilations) * self.n_biases
        rng = np.random.default_rng(seed)
        weights = np.zeros((len(self.dilations), N_PATTERNS, n_features, KERNEL_LENGTH))
        for d in range(len(self.dilations)):
            for k in range(N_PATTERNS):
                # MiniRocketMultivariate: 2^U(0, log2(min(C, 9) + 1)) channels per kernel.
                limit = math.log2(min(n_features, KERNEL_LENGTH) + 1)
                n_channels = int(2 ** rng.uniform(0, limit))
                channels = rng.choice(n_features, size=max(1, n_channels), replace=False)
                weights[d, k, channels] = _PATTERNS[k]
        self.register_buffer("weight", torch.tensor(weights, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros(len(self.dilations), N_PATTERNS, self.n_biases))
        self.register_buffer("mean", torch.zeros(self.n_out))
        self.register_buffer("std", torch.ones(self.n_out))
        self.seed = seed

    def convolve(self, x: torch.Tensor, lengths: torch.Tensor, d: int) -> torch.Tensor:
        """`(B, 84, T)` outputs of the kernels at dilation index `d` over `(B, T, C)` inputs."""
        real = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
        x = torch.round(torch.clamp(x, -CLIP, CLIP) * GRID) / GRID
        x = torch.where(real.unsqueeze(-1), x, torch.zeros_like(x)).transpose(1, 2)
        dilation = self.dilations[d]
        return nn.functional.conv1d(
            x, self.weight[d], dilation=dilation, padding=dilation * (KERNEL_LENGTH - 1) // 2
        )

    def ppv(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`(B, n_out)` raw PPV features: the share of real steps above each bias."""
        real = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
        features = [
            count_above(self.convolve(x, lengths, d), self.bias[d], real).flatten(1)
            for d in range(len(self.dilations))
        ]  # (B, 84 * Q) each
        return torch.cat(features, dim=1).to(x.dtype) / lengths.unsqueeze(1).to(x.dtype)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return (self.ppv(x, lengths) - self.mean) / self.std

    @torch.no_grad()
    def fit(self, x: torch.Tensor, lengths: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Biases from the training sequences `x` `(N, T, C)`, then the features' mean and
        standard deviation over them; returns their standardised features `(N, n_out)`."""
        rng = np.random.default_rng(self.seed + 1)
        # MiniRocket's quantiles: the fractional parts of multiples of the golden ratio.
        golden = (math.sqrt(5) + 1) / 2
        count = len(self.dilations) * N_PATTERNS * self.n_biases
        quantiles = torch.tensor(((np.arange(1, count + 1) * golden) % 1).astype(np.float32))
        quantiles = quantiles.view(len(self.dilations), N_PATTERNS, self.n_biases)
        for d in range(len(self.dilations)):
            for k in range(N_PATTERNS):
                i = int(rng.integers(len(x)))
                one = self.convolve(x[i : i + 1], lengths[i : i + 1], d)[0, k, : int(lengths[i])]
                bias = torch.quantile(one, quantiles[d, k])
                self.bias[d, k] = (torch.floor(bias * GRID) + 0.5) / GRID  # between outputs
        raw = torch.cat(
            [self.ppv(x[i : i + batch], lengths[i : i + batch]) for i in range(0, len(x), batch)]
        )
        self.mean.copy_(raw.mean(dim=0))
        std = raw.std(dim=0)
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))
        return (raw - self.mean) / self.std


def count_above(out: torch.Tensor, bias: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """`(B, K, Q)` how many real steps of each kernel output `out` `(B, K, T)` lie above each
    of its biases `bias` `(K, Q)`; `real` `(B, T)` marks the real steps. The counts are exact
    integers whichever way they are taken: by binary search (`count_by_search`) in torch when
    there are many biases for the length (Q at least 2 log2 T: short series, thousands of
    features), else, and always in an ONNX export (ONNX has no binary search), by comparison
    (`count_by_comparison`). `benchmarks/kernels.py` times both."""
    if not torch.onnx.is_in_onnx_export() and searches(bias.shape[-1], out.shape[-1]):
        return count_by_search(out, bias, real)
    return count_by_comparison(out, bias, real)


def searches(biases: int, steps: int) -> bool:
    """Whether `count_above` counts by binary search: sorting a row costs about T log2 T and
    comparing Q T, and measured, search pays from Q ≈ 2 log2 T (`benchmarks/kernels.py`)."""
    return biases >= 2 * math.log2(max(2, steps))


def count_by_comparison(out: torch.Tensor, bias: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """`count_above` comparing every step with every bias: a `(B, K, Q, T)` tensor summed."""
    above = (out.unsqueeze(2) > bias.unsqueeze(-1)).to(out.dtype)
    return (above * real[:, None, None, :].to(out.dtype)).sum(dim=-1)


def count_by_search(out: torch.Tensor, bias: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """`count_above` with each output row sorted once (padding as -inf) and the biases placed
    in it by binary search: O((T + Q) log T) a row instead of O(T Q)."""
    padded = torch.where(real.unsqueeze(1), out, torch.full_like(out, -math.inf))
    ordered = padded.sort(dim=-1).values.contiguous()
    at = torch.searchsorted(ordered, bias.expand(len(out), -1, -1).contiguous(), right=True)
    return out.shape[-1] - at


def fit_ridge(
    features: torch.Tensor, targets: np.ndarray, head: nn.Linear, alphas: np.ndarray | None = None
) -> float:
    """Set `head` (`n_out` → K) to the ridge solution on standardised `features` `(N, n_out)`
    and `targets` `(N, K)`, the penalty chosen from `alphas` by leave-one-out error (sklearn's
    `RidgeCV`, efficient LOO); returns the chosen penalty."""
    from sklearn.linear_model import RidgeCV

    grid = np.logspace(-3, 3, 10) if alphas is None else alphas
    ridge = RidgeCV(alphas=grid).fit(features.double().numpy(), targets)
    coef = np.atleast_2d(ridge.coef_)
    with torch.no_grad():
        head.weight.copy_(torch.tensor(coef, dtype=head.weight.dtype))
        head.bias.copy_(torch.tensor(np.atleast_1d(ridge.intercept_), dtype=head.bias.dtype))
    return float(ridge.alpha_)
