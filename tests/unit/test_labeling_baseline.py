"""The CRF baseline for text labeling: its features, that it learns a context pattern it can
only get from context, that fitting and choosing are deterministic, and that on a small
real WNUT-17 subset it finds entities no guess would."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from seqops.tasks.sequence_labeling.conll import Sentence, read_conll
from seqops.tasks.sequence_labeling.crf_baseline import (
    choose_crf,
    fit_crf,
    sentence_features,
    token_features,
    word_shape,
)
from seqops.tasks.sequence_labeling.scoring import paired_f1_test, score

WNUT17 = Path(__file__).resolve().parents[2] / "data" / "raw" / "wnut17"

PEOPLE = ["Alma", "Bruno", "Chidi", "Dagny", "Emeka", "Farah", "Goran", "Hana", "Ivo", "Jun"]
PLACES = ["Oslo", "Lagos", "Quito", "Hanoi", "Perth", "Tunis", "Riga", "Lima", "Baku", "Suva"]


def _corpus(people: list[str], places: list[str], n: int, seed: int) -> list[Sentence]:
    """ "i met <Person> today" / "we flew to <Place> today": both names are capitalised, so
    only the word before one tells its type."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(n):
        if rng.random() < 0.5:
            tokens = ("i", "met", rng.choice(people), "today")
            tags = ("O", "O", "B-person", "O")
        else:
            tokens = ("we", "flew", "to", rng.choice(places), "today")
            tags = ("O", "O", "O", "B-location", "O")
        sentences.append(Sentence(tokens, tags))
    return sentences


# Names in the held-out sentences never occur in training.
TRAIN = _corpus(PEOPLE[:6], PLACES[:6], 60, seed=0)
HELD_OUT = _corpus(PEOPLE[6:], PLACES[6:], 40, seed=1)


def test_word_shape_and_flags() -> None:
    assert word_shape("iPhone7") == "xXxxxxd"
    assert word_shape("Ünïcode-9") == "Xxxxxxx-d"
    features = token_features("Hello")
    assert features["shape"] == "Xxxxx" and features["short_shape"] == "Xx"
    assert features["prefix3"] == "hel" and features["suffix1"] == "o"
    assert features["is_title"] == 1.0 and "is_upper" not in features
    assert "has_at" in token_features("@user")
    assert "has_hash" in token_features("#wnut")
    assert "has_hyphen" in token_features("state-of-the-art")
    assert "is_digit" in token_features("2017")
    for url in ("https://t.co/xyz", "www.example.org", "bit.ly/abc"):
        assert "is_url" in token_features(url), url
    assert "is_url" not in token_features("e.g.")


def test_neighbours_are_seen_within_the_sentence_only() -> None:
    features = sentence_features(["we", "flew", "to", "Oslo"])
    assert features[0]["BOS"] == 1.0 and "EOS" not in features[0]
    assert features[3]["EOS"] == 1.0 and "BOS" not in features[3]
    assert features[3]["-1:lower"] == "to" and features[3]["-2:lower"] == "flew"
    assert "+1:lower" not in features[3] and "-3:lower" not in features[3]
    assert features[0]["+2:shape"] == "xx"


def test_the_crf_learns_the_type_from_context_for_unseen_names() -> None:
    tagger = fit_crf(TRAIN, c1=0.0, c2=0.1, max_iterations=50)
    predicted = tagger.predict([s.tokens for s in HELD_OUT])
    assert score([s.tags for s in HELD_OUT], predicted).entities.f1 == 1.0


def test_fitting_and_choosing_are_deterministic() -> None:
    grid = [(0.0, 0.01), (0.1, 1.0)]
    first = choose_crf(TRAIN, HELD_OUT, grid=grid, max_iterations=30)
    second = choose_crf(TRAIN, HELD_OUT, grid=grid, max_iterations=30)
    assert [(t.c1, t.c2, t.dev_f1) for t in first.trials] == [
        (t.c1, t.c2, t.dev_f1) for t in second.trials
    ]
    tokens = [s.tokens for s in HELD_OUT]
    assert first.tagger.predict(tokens) == second.tagger.predict(tokens)
    # The same weights, bit for bit, not just the same argmax.
    assert first.tagger.crf.state_features_ == second.tagger.crf.state_features_
    assert first.tagger.crf.transition_features_ == second.tagger.crf.transition_features_


def test_the_best_dev_f1_wins_and_a_tie_goes_to_the_earlier_grid_point() -> None:
    # A huge L1 penalty zeroes every weight: all-O on dev, F1 0.
    search = choose_crf(TRAIN, HELD_OUT, grid=[(1000.0, 0.0), (0.0, 0.1), (0.0, 0.2)])
    assert [t.dev_f1 for t in search.trials] == [0.0, 1.0, 1.0]
    assert (search.tagger.c1, search.tagger.c2) == (0.0, 0.1)
    assert all(t.fit_s > 0 for t in search.trials)
    with pytest.raises(ValueError, match="at least one"):
        choose_crf(TRAIN, HELD_OUT, grid=[])


def test_on_a_small_real_subset_it_finds_entities_no_guess_would() -> None:
    """600 WNUT-17 train sentences, scored on the first 300 dev sentences (fit ≈ 1.5 s).
    Measured: 22 of 282 gold entities found, 37 predicted (F1 0.14). An exact span-and-type
    match by chance is rare, so the floor of 10 correct entities and F1 0.08 cannot be luck,
    and it must beat tagging everything `O` significantly."""
    train = read_conll(WNUT17 / "train.conll")[:600]
    dev = read_conll(WNUT17 / "dev.conll")[:300]
    gold = [s.tags for s in dev]
    predicted = fit_crf(train, c1=0.0, c2=0.1, max_iterations=50).predict([s.tokens for s in dev])
    scores = score(gold, predicted)
    assert scores.entities.correct >= 10
    assert scores.entities.f1 >= 0.08
    all_o = [["O"] * len(tags) for tags in gold]
    assert paired_f1_test(gold, all_o, predicted, seed=0, resamples=1000) < 0.01
