"""The classical baseline for text labeling: a linear-chain CRF over hand-written token
features (sklearn-crfsuite, L-BFGS), its L1/L2 penalties chosen on the dev split.

    from seqops.tasks.sequence_labeling.crf_baseline import choose_crf, fit_crf
    search = choose_crf(train, dev)               # lists of conll.Sentence; fits each of GRID
    search.tagger.predict([("Visit", "Paris")])   # [[tag, tag]]: one per token
    fit_crf(train, c1=0.05, c2=0.1).predict(...)  # one fit, no search

Features of a token: its lower-cased form, word shape (`Xxxx`, `dd`) and a short shape with
runs collapsed (`Xx`), prefixes and suffixes of 1-3 characters, and flags (all upper case,
title case, all digits, has a hyphen, an `@`, a `#`, looks like a URL); the same for the
tokens at -2..+2, and markers for the sentence's first and last token. The `@`, `#` and URL
flags are for social-media text (mentions, hashtags, links).

Fitting is deterministic (L-BFGS from zero weights on the same features), so the same data
gives the same tagger; a tie on dev goes to the earlier grid point. The model is fitted on
train only: dev chooses the penalties, so dev scores are optimistic and test is the figure
to quote (`benchmarks/labeling_baseline.py`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sklearn_crfsuite

from seqops.tasks.sequence_labeling.conll import Sentence
from seqops.tasks.sequence_labeling.scoring import score

#: (c1, c2) pairs tried by `choose_crf`, in order: L1 none or weak by L2 weak or moderate. On
#: WNUT-17 dev a 3×3 grid (c1 0, 0.05, 0.2 by c2 0.01, 0.1, 1.0) gave entity F1 0.205-0.233,
#: best at (0, 0.01); past that corner (0, 0.003) and (0, 0.001) gave 0.230 and 0.212. The
#: strong penalties were never best, so they are not fitted (each fit is ~14 s on WNUT-17).
GRID: tuple[tuple[float, float], ...] = tuple((c1, c2) for c1 in (0.0, 0.05) for c2 in (0.01, 0.1))

#: L-BFGS iterations per fit: on WNUT-17 (c1 0.05, c2 0.1) 50 and 100 gave dev entity F1
#: 0.2212 and 0.2216, so more buys nothing; a fit takes ~14 s on one CPU.
MAX_ITERATIONS = 100

#: Neighbours whose features each token also sees.
WINDOW = (-2, -1, 1, 2)

_URL = re.compile(r"(https?://|www\.)|\S+\.(com|org|net|io|ly|co)(/\S*)?$")

Features = dict[str, str | float]


@dataclass(frozen=True)
class CrfTagger:
    """A fitted CRF and the penalties it was fitted with."""

    crf: sklearn_crfsuite.CRF
    c1: float
    c2: float

    def predict(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """One tag per token of each sentence (a sentence is a sequence of tokens)."""
        return [list(self.crf.predict_single(sentence_features(tokens))) for tokens in sentences]


@dataclass(frozen=True)
class CrfTrial:
    """One grid point of `choose_crf`: its dev entity F1 and how long its fit took."""

    c1: float
    c2: float
    dev_f1: float
    fit_s: float


@dataclass(frozen=True)
class CrfSearch:
    """The tagger with the best dev entity F1, and every grid point tried."""

    tagger: CrfTagger
    trials: tuple[CrfTrial, ...]


def fit_crf(
    train: Sequence[Sentence], c1: float, c2: float, max_iterations: int = MAX_ITERATIONS
) -> CrfTagger:
    """A CRF fitted on `train` with L1 penalty `c1` and L2 penalty `c2`."""
    return _fit([sentence_features(s.tokens) for s in train], train, c1, c2, max_iterations)


def choose_crf(
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    grid: Sequence[tuple[float, float]] = GRID,
    max_iterations: int = MAX_ITERATIONS,
) -> CrfSearch:
    """Fit one CRF on `train` per (c1, c2) of `grid` and keep the one with the best entity F1
    on `dev` (the earlier one on a tie)."""
    if not grid:
        raise ValueError("choose_crf needs at least one (c1, c2) pair")
    features = [sentence_features(s.tokens) for s in train]
    gold = [s.tags for s in dev]
    trials: list[CrfTrial] = []
    best, best_f1 = None, -1.0
    for c1, c2 in grid:
        start = time.perf_counter()
        tagger = _fit(features, train, c1, c2, max_iterations)
        fit_s = time.perf_counter() - start
        dev_f1 = score(gold, tagger.predict([s.tokens for s in dev])).entities.f1
        trials.append(CrfTrial(c1, c2, dev_f1, fit_s))
        if dev_f1 > best_f1:
            best, best_f1 = tagger, dev_f1
    assert best is not None  # F1 is at least 0 > -1, so the first grid point set it
    return CrfSearch(best, tuple(trials))


def sentence_features(tokens: Sequence[str]) -> list[Features]:
    """CRFsuite features of each token of one sentence: its own, its neighbours' (prefixed
    with their offset, e.g. `-1:lower`), and `BOS`/`EOS` at the sentence's ends."""
    own = [token_features(token) for token in tokens]
    out = []
    for i, features in enumerate(own):
        merged: Features = {"bias": 1.0, **features}
        for offset in WINDOW:
            j = i + offset
            if 0 <= j < len(own):
                merged.update({f"{offset:+d}:{key}": value for key, value in own[j].items()})
        if i == 0:
            merged["BOS"] = 1.0
        if i == len(own) - 1:
            merged["EOS"] = 1.0
        out.append(merged)
    return out


def token_features(token: str) -> Features:
    """Features of one token on its own; a flag is present only when it holds."""
    lower = token.lower()
    features: Features = {
        "lower": lower,
        "shape": word_shape(token),
        "short_shape": re.sub(r"(.)\1+", r"\1", word_shape(token)),
    }
    for n in (1, 2, 3):
        features[f"prefix{n}"] = lower[:n]
        features[f"suffix{n}"] = lower[-n:]
    flags = {
        "is_upper": token.isupper(),
        "is_title": token.istitle(),
        "is_digit": token.isdigit(),
        "has_hyphen": "-" in token,
        "has_at": "@" in token,
        "has_hash": "#" in token,
        "is_url": _URL.match(lower) is not None,
    }
    features.update({name: 1.0 for name, holds in flags.items() if holds})
    return features


def word_shape(token: str) -> str:
    """Upper-case letters as `X`, other letters as `x`, digits as `d`, the rest as is:
    `iPhone7` → `xXxxxxd`."""
    return "".join(
        "d" if c.isdigit() else "X" if c.isupper() else "x" if c.isalpha() else c for c in token
    )


def _fit(
    features: list[list[Features]],
    train: Sequence[Sentence],
    c1: float,
    c2: float,
    max_iterations: int,
) -> CrfTagger:
    crf = sklearn_crfsuite.CRF(
        algorithm="lbfgs",
        c1=c1,
        c2=c2,
        max_iterations=max_iterations,
        # Learn weights for transitions never seen in train too (O → I-x gets a negative one).
        all_possible_transitions=True,
    )
    crf.fit(features, [list(s.tags) for s in train])
    return CrfTagger(crf, c1, c2)
