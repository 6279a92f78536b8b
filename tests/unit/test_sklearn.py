"""`seqops.sklearn.SequenceClassifier`: scikit-learn's estimator checks, clone / params,
a Pipeline and GridSearchCV over raw text, and float sequences of varying length."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from seqops.sklearn import SequenceClassifier

#: Small and quick: scikit-learn's checks fit the estimator a few hundred times.
FAST = {"hidden_size": 16, "num_layers": 1, "max_epochs": 20, "batch_size": 64, "lr": 0.01}


def expected_failures(estimator: SequenceClassifier) -> dict[str, str]:
    return {}


@parametrize_with_checks([SequenceClassifier(**FAST)], expected_failed_checks=expected_failures)
def test_scikit_learn_estimator_checks(estimator: SequenceClassifier, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)


POSITIVE = ["a fine warm film", "fine acting", "warm and fine", "a fine plot", "fine fine film"]
NEGATIVE = ["a dull cold film", "dull acting", "cold and dull", "a dull plot", "dull dull film"]


def sentiment(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    texts = [str(rng.choice(POSITIVE if label else NEGATIVE)) for label in y]
    return texts, np.where(y == 1, "pos", "neg")


def test_grid_search_over_a_text_pipeline_learns_the_words() -> None:
    texts, y = sentiment(60, seed=0)
    # A text step before the classifier: the estimator takes raw strings from a Pipeline.
    pipe = Pipeline(
        [
            ("strip", FunctionTransformer(lambda xs: [x.strip() for x in xs])),
            ("clf", SequenceClassifier(hidden_size=8, embedding_dim=8, max_epochs=20, lr=0.02)),
        ]
    )
    grid = {"clf__cell": ["lstm", "gru"], "clf__pooling": ["max", "mean"]}
    search = GridSearchCV(pipe, grid, cv=3).fit(texts, y)
    assert set(search.cv_results_["params"][0]) == set(grid)
    assert len(search.cv_results_["mean_test_score"]) == 4
    test_texts, test_y = sentiment(40, seed=1)
    assert search.score(test_texts, test_y) == 1.0
    assert set(search.predict([" a FINE film ", "cold"])) <= {"pos", "neg"}
    assert search.predict(["fine", "dull"]).tolist() == ["pos", "neg"]


def test_clone_keeps_params_and_refits_identically() -> None:
    texts, y = sentiment(30, seed=2)
    est = SequenceClassifier(hidden_size=8, max_epochs=3, random_state=5)
    twin = clone(est).set_params(hidden_size=8)
    assert twin.get_params() == est.get_params()
    np.testing.assert_array_equal(
        est.fit(texts, y).predict_proba(texts), twin.fit(texts, y).predict_proba(texts)
    )


def test_float_sequences_of_varying_length_with_string_classes() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 12, 80)
    y = np.array(["rising" if i % 2 else "falling" for i in range(80)])
    X = [
        np.stack([np.linspace(0, 1 if label == "rising" else -1, n), rng.normal(size=n)], axis=1)
        for n, label in zip(lengths, y, strict=True)
    ]
    est = SequenceClassifier(hidden_size=8, max_epochs=30).fit(X, y)
    assert est.score(X, y) >= 0.95
    assert est.predict_proba(X[:3]).shape == (3, 2)
    with pytest.raises(ValueError, match="X has 3 features per step; the model was fitted on 2"):
        est.predict([np.zeros((4, 3))])


def test_empty_text_is_rejected_naming_the_row() -> None:
    est = SequenceClassifier(max_epochs=1).fit(*sentiment(10, seed=3))
    with pytest.raises(ValueError, match=r"X: column 'text' is empty at row 1"):
        est.predict(["fine", ""])
