"""A language model's test metric from its summed negative log-likelihood.

    bits_per_token(nll_nats=1386.3, n_tokens=1000)   # 2.0: bits per character for char units
    perplexity(nll_nats=4605.2, n_tokens=1000)       # 100.0
    unit_metrics("char", nll, n)                     # {"bits_per_char": ...}

The model and the n-gram baseline both report the summed NLL in nats over exactly the same
scored tokens, so one function turns either into the report's numbers.
"""

from __future__ import annotations

import math

from seqops.tasks.language_modeling.vocab import Unit

#: The metric each unit reports (`reports/metrics.json` test key; lower is better).
METRIC: dict[Unit, str] = {"char": "bits_per_char", "word": "perplexity"}


def _mean(nll_nats: float, n_tokens: int) -> float:
    if n_tokens <= 0:
        raise ValueError(f"no scored tokens (n_tokens={n_tokens})")
    return nll_nats / n_tokens


def bits_per_token(nll_nats: float, n_tokens: int) -> float:
    """Mean NLL in bits: `nll / (n ln 2)`."""
    return _mean(nll_nats, n_tokens) / math.log(2)


def perplexity(nll_nats: float, n_tokens: int) -> float:
    """`exp(mean NLL in nats)`."""
    return math.exp(_mean(nll_nats, n_tokens))


def unit_metrics(unit: Unit, nll_nats: float, n_tokens: int) -> dict[str, float]:
    """`{"bits_per_char": ...}` for characters, `{"perplexity": ...}` for words."""
    value = bits_per_token(nll_nats, n_tokens) if unit == "char" else perplexity(nll_nats, n_tokens)
    return {METRIC[unit]: value}
