"""Text from an exported language model, torch-free: `seqops generate`.

    seqops generate --model models/ --prompt "ROMEO:" --max-tokens 200 --temperature 0.8 \\
        --top-k 20 --seed 0

The bundle is opened as `seqops predict` opens it (digests, graph contract), and must be a
language model with a streaming step graph (`model_step.onnx`). The prompt is fed through the
step graph in one chunk from a zero state; then one token at a time, each drawn from the
last step's distribution (logits / temperature, only the `top_k` likeliest kept, `[PAD]` and
`[UNK]` never drawn) with a `numpy.random.Generator` seeded by `seed`, and fed back with the
state carried. The same bundle, prompt and arguments give the same text. Every character (or
word) of the prompt must be in the vocabulary: an `[UNK]` prompt would be read as something
the model never saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqops.errors import DataError, quote
from seqops.tasks.language_modeling.meta import TASK
from seqops.tasks.language_modeling.vocab import PAD_ID, UNK_ID, TokenVocabulary, tokenize


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float = 1.0
    top_k: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise DataError(f"--max-tokens {self.max_tokens}: expected 1 or more tokens to write")
        if not self.temperature > 0:
            raise DataError(
                f"--temperature {self.temperature}: expected a number above 0 (1 samples the "
                "model's distribution, lower is more conservative)"
            )
        if self.top_k is not None and self.top_k < 1:
            raise DataError(f"--top-k {self.top_k}: expected 1 or more (or leave it out: all)")


def draw(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> int:
    """One token id from `(V,)` logits: temperature, top-k, never `[PAD]` / `[UNK]`."""
    z = logits.astype(np.float64) / sampling.temperature
    z[[PAD_ID, UNK_ID]] = -np.inf
    if sampling.top_k is not None and sampling.top_k < len(z) - 2:
        cut = np.partition(z, len(z) - sampling.top_k)[len(z) - sampling.top_k]
        z = np.where(z >= cut, z, -np.inf)
    p = np.exp(z - z.max())
    p /= p.sum()
    return int(rng.choice(len(p), p=p))


def encode_prompt(vocab: TokenVocabulary, prompt: str) -> np.ndarray:
    """The prompt's ids; DataError naming what the vocabulary does not hold."""
    tokens = tokenize(prompt, vocab.unit)
    if not tokens:
        raise DataError(f"--prompt {quote(prompt, 40)}: holds no {vocab.unit} token to start from")
    known = set(vocab.tokens[2:])
    missing = sorted({t for t in tokens if t not in known})
    if missing:
        what = "characters" if vocab.unit == "char" else "words"
        raise DataError(
            f"--prompt: {what} outside the model's vocabulary: "
            f"{', '.join(quote(t, 20) for t in missing[:10])}"
            + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        )
    return vocab.encode(prompt)


def generate(model_dir: Path, prompt: str, sampling: Sampling) -> str:
    """The prompt followed by `sampling.max_tokens` drawn tokens, as text."""
    from seqops.serving import Predictor

    predictor = Predictor.load(model_dir)
    meta = predictor.bundle.data
    if meta.task != TASK:
        raise DataError(
            f"{model_dir}: a {meta.task} model, not a language model (generate writes text "
            "from a model trained with data.task: language_modeling)"
        )
    if predictor.stepper is None:
        raise DataError(
            f"{model_dir}: no step graph (model_step.onnx) in the bundle: generating needs a "
            "unidirectional model exported with its step graph (re-run `seqops export`)"
        )
    codec = predictor.codec
    vocab: TokenVocabulary = codec.vocab  # type: ignore[attr-defined]
    rng = np.random.default_rng(sampling.seed)
    ids = encode_prompt(vocab, prompt)
    states = predictor.stepper.layout.zeros(1)
    out, states = predictor.stream(ids[None, :], states)  # (1, T, V)
    drawn: list[int] = []
    for _ in range(sampling.max_tokens):
        token = draw(out[0, -1], sampling, rng)
        drawn.append(token)
        out, states = predictor.stream(np.array([[token]], dtype=np.int64), states)
    text = vocab.decode(drawn)
    return prompt + text if vocab.unit == "char" else f"{prompt} {text}"
