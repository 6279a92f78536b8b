"""Entity scores as conlleval counts them (checked by hand and against seqeval), their
independence from the tag scheme, and the paired approximate-randomisation test."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from seqops.tasks.sequence_labeling.conll import entities, spans_to_tags
from seqops.tasks.sequence_labeling.scoring import EntityCounts, paired_f1_test, score

# Three sentences: "John Smith lives in New York", "Apple sells iPhones", "nothing here ."
GOLD = [
    ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC"],
    ["B-ORG", "O", "B-PRODUCT"],
    ["O", "O", "O"],
]
PREDICTED = [
    ["B-PER", "I-PER", "O", "O", "B-LOC", "O"],  # PER right; LOC one token short
    ["B-LOC", "O", "O"],  # Apple typed LOC, not ORG; iPhones missed
    ["B-PER", "B-PER", "O"],  # two spurious entities
]


def test_a_hand_worked_example_scores_as_conlleval_defines_it() -> None:
    """Gold entities: PER, LOC, ORG, PRODUCT (4). Predicted: PER, LOC "New", LOC "Apple",
    PER "nothing", PER "here" (5). Only PER "John Smith" matches in span and type: the
    boundary error and the type error each count once as a false positive and once as a
    false negative. P = 1/5, R = 1/4, F1 = 2PR/(P+R) = 2/9."""
    scores = score(GOLD, PREDICTED)
    assert scores.entities == EntityCounts(correct=1, predicted=5, gold=4)
    assert scores.entities.precision == pytest.approx(1 / 5)
    assert scores.entities.recall == pytest.approx(1 / 4)
    assert scores.entities.f1 == pytest.approx(2 / 9)
    assert scores.per_type == {
        "LOC": EntityCounts(0, 2, 1),
        "ORG": EntityCounts(0, 0, 1),
        "PER": EntityCounts(1, 3, 1),
        "PRODUCT": EntityCounts(0, 0, 1),
    }
    assert scores.per_type["PER"].f1 == pytest.approx(0.5)  # P 1/3, R 1
    assert scores.per_type["ORG"].f1 == scores.per_type["ORG"].precision == 0.0
    # 12 tokens; wrong: "York", "Apple", "iPhones", "nothing", "here".
    assert scores.token_accuracy == pytest.approx(7 / 12)
    assert scores.sentences.correct.tolist() == [1, 0, 0]
    assert scores.sentences.predicted.tolist() == [2, 1, 2]
    assert scores.sentences.gold.tolist() == [2, 2, 0]
    assert scores.metrics() == {
        "entity_f1": pytest.approx(2 / 9),
        "entity_precision": pytest.approx(1 / 5),
        "entity_recall": pytest.approx(1 / 4),
        "token_accuracy": pytest.approx(7 / 12),
    }


def test_scores_agree_with_seqeval_on_random_tags() -> None:
    """seqeval's default mode is the conlleval-compatible reference: overall and per-type
    precision, recall and F1 agree on random BIO sequences, stray I- tags included."""
    rng = random.Random(1)
    alphabet = ["O", "O", "O", *(f"{p}-{t}" for p in "BI" for t in ("a", "b", "c"))]
    gold, predicted = [], []
    for _ in range(200):
        n = rng.randint(1, 15)
        gold.append([rng.choice(alphabet) for _ in range(n)])
        predicted.append([t if rng.random() < 0.7 else rng.choice(alphabet) for t in gold[-1]])
    scores = score(gold, predicted)
    assert scores.entities.precision == pytest.approx(precision_score(gold, predicted))
    assert scores.entities.recall == pytest.approx(recall_score(gold, predicted))
    assert scores.entities.f1 == pytest.approx(f1_score(gold, predicted))
    report = classification_report(gold, predicted, output_dict=True)
    for kind, counts in scores.per_type.items():
        assert counts.precision == pytest.approx(report[kind]["precision"])
        assert counts.recall == pytest.approx(report[kind]["recall"])
        assert counts.f1 == pytest.approx(report[kind]["f1-score"])
        assert counts.gold == report[kind]["support"]


def test_bioes_scores_the_same_entities_as_bio() -> None:
    def bioes(tags: list[str]) -> list[str]:
        return spans_to_tags(entities(tags), len(tags), "BIOES")

    as_bio = score(GOLD, PREDICTED)
    as_bioes = score([bioes(t) for t in GOLD], [bioes(t) for t in PREDICTED])
    assert as_bioes.entities == as_bio.entities
    assert as_bioes.per_type == as_bio.per_type
    for name in ("correct", "predicted", "gold"):
        assert np.array_equal(getattr(as_bioes.sentences, name), getattr(as_bio.sentences, name))


def test_misaligned_predictions_are_refused() -> None:
    with pytest.raises(ValueError, match="3 gold sentences but 2 predicted"):
        score(GOLD, PREDICTED[:2])
    with pytest.raises(ValueError, match="sentence 1: 3 gold tags but 2 predicted"):
        score(GOLD, [PREDICTED[0], ["O", "O"], PREDICTED[2]])


def _corpus(seed: int, n: int) -> list[list[str]]:
    """`n` sentences of 8 tokens with one or two entities each."""
    rng = random.Random(seed)
    corpus = []
    for _ in range(n):
        tags = ["O"] * 8
        tags[rng.randrange(0, 3)] = "B-a"
        if rng.random() < 0.5:
            tags[5], tags[6] = "B-b", "I-b"
        corpus.append(tags)
    return corpus


def _damage(gold: list[list[str]], share: float, seed: int) -> list[list[str]]:
    """Gold with the entities of a random `share` of the sentences erased."""
    rng = random.Random(seed)
    return [["O"] * len(tags) if rng.random() < share else list(tags) for tags in gold]


def test_identical_predictions_are_never_significantly_worse() -> None:
    gold = _corpus(0, 100)
    same = _damage(gold, 0.3, seed=1)
    assert paired_f1_test(gold, same, same, seed=0, resamples=2000) == 1.0


def test_a_clearly_better_system_is_significant_and_only_one_way() -> None:
    gold = _corpus(0, 200)
    weak, strong = _damage(gold, 0.5, seed=1), _damage(gold, 0.1, seed=2)
    assert paired_f1_test(gold, weak, strong, seed=0, resamples=2000) < 0.01
    assert paired_f1_test(gold, strong, weak, seed=0, resamples=2000) > 0.99
    # Deterministic for a seed.
    assert paired_f1_test(gold, weak, strong, seed=3, resamples=500) == paired_f1_test(
        gold, weak, strong, seed=3, resamples=500
    )


def test_the_randomisation_p_value_approaches_the_exact_permutation_one() -> None:
    """On 12 sentences all 2^12 swaps can be enumerated: the approximate-randomisation
    p-value must estimate that exact share within its Monte-Carlo error (its standard error
    is 0.002 here, the tolerance 0.01)."""
    gold = _corpus(7, 12)
    a, b = _damage(gold, 0.6, seed=8), _damage(gold, 0.2, seed=9)
    sa, sb = score(gold, a).sentences, score(gold, b).sentences
    n_gold = int(sa.gold.sum())

    def f1(correct: int, predicted: int) -> float:
        return 2 * correct / (predicted + n_gold) if correct else 0.0

    observed = f1(sb.correct.sum(), sb.predicted.sum()) - f1(sa.correct.sum(), sa.predicted.sum())
    at_least = 0
    for swap in itertools.product([False, True], repeat=len(gold)):
        mask = np.array(swap)
        ca = np.where(mask, sb.correct, sa.correct).sum()
        pa = np.where(mask, sb.predicted, sa.predicted).sum()
        cb = np.where(mask, sa.correct, sb.correct).sum()
        pb = np.where(mask, sa.predicted, sb.predicted).sum()
        at_least += f1(cb, pb) - f1(ca, pa) >= observed - 1e-12
    exact = at_least / 2 ** len(gold)
    assert 0.01 < exact < 0.5  # the example is neither trivial nor hopeless
    assert paired_f1_test(gold, a, b, seed=0, resamples=20_000) == pytest.approx(exact, abs=0.01)
