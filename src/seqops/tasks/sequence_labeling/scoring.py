"""Entity-level precision, recall and F1 of predicted tags, as the CoNLL evaluation script
(conlleval) computes them, with per-type scores, token accuracy, per-sentence counts and a
paired significance test over sentences.

    from seqops.tasks.sequence_labeling.scoring import score, paired_f1_test
    scores = score(gold, predicted)  # tag sequences, one per sentence, gold first
    scores.entities.f1, scores.per_type["person"].f1, scores.token_accuracy
    paired_f1_test(gold, predicted_a, predicted_b, seed=0, resamples=10_000)  # p that a < b

An entity counts as correct only when a predicted entity has exactly the gold one's first
token, last token and type: a boundary error or a type error is one false positive and one
false negative. Entities are chunked per sentence by `conll.entities` (seqeval's default,
conlleval-compatible mode), so BIO, IOB1 and BIOES tags of the same entities score the same.
Micro-averaged over entities; a zero denominator gives 0, as in conlleval.

Imports neither torch nor onnx: the torch-free predictor scores with this module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seqops.tasks.sequence_labeling.conll import entities

#: Swap draws (resamples × differing sentences) `paired_f1_test` makes at once: ~20 MB.
_CHUNK = 2_000_000


@dataclass(frozen=True)
class EntityCounts:
    """Entities found in both (`correct`), predicted, and gold, with conlleval's ratios."""

    correct: int
    predicted: int
    gold: int

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        return _f1(self.correct, self.predicted, self.gold)


@dataclass(frozen=True)
class SentenceCounts:
    """Per-sentence entity counts (arrays of one int per sentence): what a paired test over
    sentences resamples, since entity F1 is not a mean of per-sentence scores."""

    correct: np.ndarray
    predicted: np.ndarray
    gold: np.ndarray

    def total(self) -> EntityCounts:
        """The counts over all sentences: the corpus-level (micro) scores."""
        return EntityCounts(
            int(self.correct.sum()), int(self.predicted.sum()), int(self.gold.sum())
        )


@dataclass(frozen=True)
class LabelingScores:
    """A prediction's scores against gold tags."""

    entities: EntityCounts
    #: Per entity type (every type in gold or predicted, sorted): `gold` is its support.
    per_type: dict[str, EntityCounts]
    #: Share of tokens whose predicted tag string equals the gold one (`O` included, as in
    #: conlleval): unlike the entity scores it depends on the scheme (`B-x` vs `S-x`).
    token_accuracy: float
    sentences: SentenceCounts

    def metrics(self) -> dict[str, float]:
        """The headline numbers under their metric-vocabulary names (without the `test/`
        prefix): `entity_f1`, `entity_precision`, `entity_recall`, `token_accuracy`."""
        return {
            "entity_f1": self.entities.f1,
            "entity_precision": self.entities.precision,
            "entity_recall": self.entities.recall,
            "token_accuracy": self.token_accuracy,
        }


def score(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> LabelingScores:
    """Entity and token scores of `predicted` against `gold` (one tag sequence per sentence,
    the same sentences in the same order)."""
    _check_aligned(gold, predicted)
    correct, found, truth = Counter[str](), Counter[str](), Counter[str]()
    per_sentence = np.zeros((3, len(gold)), dtype=np.int64)
    right_tokens = n_tokens = 0
    for i, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted, strict=True)):
        gold_spans, predicted_spans = set(entities(gold_tags)), set(entities(predicted_tags))
        hits = gold_spans & predicted_spans
        correct.update(span.type for span in hits)
        found.update(span.type for span in predicted_spans)
        truth.update(span.type for span in gold_spans)
        per_sentence[:, i] = len(hits), len(predicted_spans), len(gold_spans)
        right_tokens += sum(g == p for g, p in zip(gold_tags, predicted_tags, strict=True))
        n_tokens += len(gold_tags)
    sentences = SentenceCounts(*per_sentence)
    return LabelingScores(
        entities=sentences.total(),
        per_type={
            kind: EntityCounts(correct[kind], found[kind], truth[kind])
            for kind in sorted(found.keys() | truth.keys())
        },
        token_accuracy=right_tokens / n_tokens if n_tokens else 0.0,
        sentences=sentences,
    )


def paired_f1_test(
    gold: Sequence[Sequence[str]],
    predicted_a: Sequence[Sequence[str]],
    predicted_b: Sequence[Sequence[str]],
    seed: int = 0,
    resamples: int = 10_000,
) -> float:
    """One-sided p-value that `predicted_a` has a lower entity F1 than `predicted_b` on these
    sentences, by approximate randomisation (Noreen 1989; Yeh 2000, the usual test for F1,
    which no per-sentence mean captures).

    Under the null hypothesis the two systems are exchangeable, so each resample swaps a's
    and b's per-sentence counts (correct, predicted) in a random half of the sentences and
    recomputes F1(b) - F1(a) from the summed counts. The p-value is the share of resamples
    whose difference is at least the observed one, with the +1 correction that keeps it
    valid: (hits + 1) / (resamples + 1). Identical predictions give 1 (never significant);
    p(a worse than b) + p(b worse than a) exceeds 1 by the share of ties."""
    a = score(gold, predicted_a).sentences
    b = score(gold, predicted_b).sentences
    return paired_counts_test(a, b, seed, resamples)


def paired_counts_test(
    a: SentenceCounts, b: SentenceCounts, seed: int = 0, resamples: int = 10_000
) -> float:
    """`paired_f1_test` on the per-sentence counts of two predictions of the same gold
    sentences (what a release scorer keeps of each served model's tags)."""
    if not np.array_equal(a.gold, b.gold):
        raise ValueError("paired counts of different gold sentences: not the same test set")
    observed = b.total().f1 - a.total().f1
    # Sentences where a and b agree on both counts never change a resample: drop them.
    differ = (a.correct != b.correct) | (a.predicted != b.predicted)
    delta_correct = (b.correct - a.correct)[differ]
    delta_predicted = (b.predicted - a.predicted)[differ]
    total_gold = int(a.gold.sum())
    rng = np.random.default_rng(seed)
    hits = 0
    per_chunk = max(1, _CHUNK // max(1, int(differ.sum())))
    for start in range(0, resamples, per_chunk):
        swap = rng.random((min(per_chunk, resamples - start), delta_correct.size)) < 0.5
        # Swapping sentence i moves its delta from b's side to a's side.
        shift_correct = swap @ delta_correct
        shift_predicted = swap @ delta_predicted
        a_correct = a.correct.sum() + shift_correct
        a_predicted = a.predicted.sum() + shift_predicted
        b_correct = b.correct.sum() - shift_correct
        b_predicted = b.predicted.sum() - shift_predicted
        difference = _f1_array(b_correct, b_predicted, total_gold) - _f1_array(
            a_correct, a_predicted, total_gold
        )
        # The same formula on the same integers: the tolerance only absorbs float rounding.
        hits += int(np.sum(difference >= observed - 1e-12))
    return (hits + 1) / (resamples + 1)


def _check_aligned(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> None:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    for i, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted, strict=True)):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(
                f"sentence {i}: {len(gold_tags)} gold tags but {len(predicted_tags)} predicted"
            )


def _f1(correct: int, predicted: int, gold: int) -> float:
    """2PR / (P + R) = 2·correct / (predicted + gold); 0 when nothing is predicted or gold."""
    return 2 * correct / (predicted + gold) if correct else 0.0


def _f1_array(correct: np.ndarray, predicted: np.ndarray, gold: int) -> np.ndarray:
    """`_f1` over arrays of resampled counts."""
    denominator = np.maximum(predicted + gold, 1)
    return np.where(correct > 0, 2 * correct / denominator, 0.0)
