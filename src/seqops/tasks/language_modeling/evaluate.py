"""evaluate for a language model: the test documents read whole, the state carried (torch).

    evaluation = evaluate_language_model(net, processed, meta)
    evaluation.metrics.test["bits_per_char"]              # or "perplexity" for words
    evaluation.metrics.baseline["kneser_ney"]             # the n-gram model, same tokens

Each test document is read from its start in windows (`StreamBatches(cut=False)`), the
recurrent state carried from one window to the next, so every token is predicted from its
document's whole history; a document's first token is context only. The classical baseline
is interpolated Kneser-Ney (`ngram`), fitted on the training documents, its order chosen on
the validation documents, scored on exactly the same test tokens. `reports/predictions.csv`
holds one row per block (`data.block_tokens` tokens of one document): the summed NLL (nats)
of the model and of the baseline over the block's scored tokens, which the paired test of
the release reads (`release`).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from seqops import outputs
from seqops.tasks.language_modeling.batching import StreamBatches
from seqops.tasks.language_modeling.meta import (
    LanguageModelMeta,
    LanguageModelMetrics,
    LanguageModelReport,
)
from seqops.tasks.language_modeling.metrics import unit_metrics
from seqops.tasks.language_modeling.ngram import select_order
from seqops.tasks.language_modeling.streams import block_spans, load_streams
from seqops.tasks.language_modeling.task import LanguageModeling
from seqops.tasks.parts.evaluate import EvaluateTask, Evaluation

if TYPE_CHECKING:
    from seqops.config import DataConfig
    from seqops.model.network import SequenceNet

#: Tokens per window when evaluating (the state is carried across, so only speed depends on it).
EVAL_WINDOW = 256
#: Rows read side by side when evaluating.
EVAL_ROWS = 16
#: Kneser-Ney orders tried on the validation documents (those whose n-gram keys fit int64).
KN_ORDERS = range(2, 8)


def kn_orders(vocab_size: int) -> range:
    """`KN_ORDERS` up to the highest order whose `vocab_size ** order` keys fit an int64 (a
    word vocabulary of 10,000 allows order 4)."""
    top = max(order for order in range(2, KN_ORDERS.stop) if vocab_size**order < 2**63)
    return range(KN_ORDERS.start, min(KN_ORDERS.stop, top + 1))


BASELINE = "kneser_ney"
#: `reports/predictions.csv`'s columns: one row per test block.
PREDICTION_COLUMNS = ["document", "block", "n_tokens", "model", BASELINE]


@torch.no_grad()
def token_nll(net: SequenceNet, documents: list[np.ndarray]) -> list[np.ndarray]:
    """Per document, the NLL (nats) of tokens 1..n-1, each given every token before it."""
    net.eval()
    rows = max(1, min(EVAL_ROWS, len(documents)))
    batches = StreamBatches(documents, rows, EVAL_WINDOW, cut=False)
    found = [np.zeros(max(len(d) - 1, 0)) for d in documents]
    state = None
    for k, window in enumerate(batches):
        tokens = torch.from_numpy(window.inputs)
        if state:  # None, or () from a transformer (no state)
            keep = (~torch.from_numpy(window.reset)).to(state[0].dtype).view(1, -1, 1)
            state = tuple(s * keep for s in state)
        lengths = torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.int64)
        logits, state = net.forward_with_state(tokens, lengths, state)  # (B, T, V)
        logp = torch.log_softmax(logits.double(), dim=-1).numpy()
        for r, row in enumerate(batches.rows):
            if k >= len(row):
                continue
            slot = row[k]
            doc = documents[slot.document]
            stop = min(slot.start + EVAL_WINDOW, len(doc) - 1)
            n = stop - slot.start
            targets = doc[slot.start + 1 : stop + 1]
            found[slot.document][slot.start : stop] = -logp[r, np.arange(n), targets]
    return found


def block_sums(
    names: list[str], documents: list[np.ndarray], per_token: list[np.ndarray], block_tokens: int
) -> pd.DataFrame:
    """Rows (document, block, n_tokens, nll) of each block's scored tokens: block j of a
    document covers its tokens [a, b); token t >= 1 is scored, at index t - 1."""
    rows = []
    for name, doc, nll in zip(names, documents, per_token, strict=True):
        for j, (a, b) in enumerate(block_spans(len(doc), block_tokens)):
            scored = nll[max(a, 1) - 1 : b - 1]
            rows.append((name, j, len(scored), float(scored.sum())))
    return pd.DataFrame(rows, columns=["document", "block", "n_tokens", "nll"])


@dataclass
class LanguageModelEvaluation(Evaluation):
    metrics: LanguageModelMetrics
    blocks: pd.DataFrame
    order: int
    n_documents: int

    def predictions_csv(self) -> str:
        return str(self.blocks[PREDICTION_COLUMNS].to_csv(index=False, lineterminator="\n"))

    def write_plots(self, plots: Path, scratch: Path) -> list[Path]:
        """`bits_per_block.csv`: each test block's bits per token, model and baseline."""
        scored = self.blocks[self.blocks["n_tokens"] > 0]
        frame = pd.DataFrame(
            {
                "block": np.arange(len(scored)),
                "document": scored["document"].to_numpy(),
                "model": scored["model"].to_numpy() / scored["n_tokens"].to_numpy() / math.log(2),
                BASELINE: scored[BASELINE].to_numpy() / scored["n_tokens"].to_numpy() / math.log(2),
            }
        )
        buf = io.StringIO()
        frame.to_csv(buf, index=False, lineterminator="\n", float_format="%.6g")
        outputs.write_text(plots / "bits_per_block.csv", buf.getvalue())
        return []

    def logged_metrics(self) -> dict[str, float]:
        return {
            **{f"test/{k}": float(v) for k, v in self.metrics.test.items()},
            **self.logged_baselines(),
        }

    def summary(self) -> str:
        test = self.metrics.test
        metric = "bits_per_char" if self.metrics.units == "char" else "perplexity"
        assert self.metrics.baseline is not None
        baseline = self.metrics.baseline[BASELINE][metric]
        return (
            f"evaluate: test {metric} {test[metric]:.4f} vs Kneser-Ney (order {self.order}) "
            f"{baseline:.4f} on {test['n_tokens']:,} tokens of {self.n_documents} documents "
            f"({test['n_blocks']} blocks)"
        )


def evaluate_language_model(
    net: SequenceNet, processed: Path, meta: LanguageModelMeta
) -> LanguageModelEvaluation:
    from seqops.tasks.language_modeling.meta import streams_file

    names, test = load_streams(processed / streams_file("test"))
    _, train = load_streams(processed / streams_file("train"))
    _, val = load_streams(processed / streams_file("val"))
    model = block_sums(names, test, token_nll(net, test), meta.block_tokens)
    choice = select_order(train, val, meta.vocab_size, kn_orders(meta.vocab_size))
    kn = block_sums(names, test, [-choice.model.log_probs(d) for d in test], meta.block_tokens)
    blocks = model.rename(columns={"nll": "model"}).assign(**{BASELINE: kn["nll"].to_numpy()})
    n = int(blocks["n_tokens"].sum())
    ours, theirs = float(blocks["model"].sum()), float(blocks[BASELINE].sum())
    metrics = LanguageModelMetrics(
        units=meta.units,
        test={
            **unit_metrics(meta.units, ours, n),
            "nll_nats": ours,
            "n_tokens": n,
            "n_blocks": len(blocks),
        },
        baseline={BASELINE: {**unit_metrics(meta.units, theirs, n), "order": choice.order}},
    )
    return LanguageModelEvaluation(metrics, blocks, choice.order, len(names))


class LanguageModelingEvaluate(
    EvaluateTask[LanguageModelMeta, LanguageModelReport, LanguageModelMetrics],
    LanguageModeling,
):
    """The test documents read whole beside interpolated Kneser-Ney."""

    def evaluate(
        self,
        system: SequenceNet,
        processed: Path,
        meta: LanguageModelMeta,
        data: DataConfig | None = None,
    ) -> LanguageModelEvaluation:
        return evaluate_language_model(system, processed, meta)
