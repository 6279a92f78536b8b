"""`text_classification`'s evaluate part: the classifier's metrics beside TF-IDF + logistic
regression (`tfidf_baseline`), fitted on the same training split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seqops.layout import split_file
from seqops.tasks.classifier.evaluate import ClassifierEvaluate
from seqops.tasks.text.task import (
    TextClassification,
    TextMeta,
    TextReport,
    texts_file,
)

if TYPE_CHECKING:
    pass

#: Logistic regression's inverse penalties, the one scoring best on validation is kept.
TFIDF_CS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


TFIDF_CS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def tfidf_baseline(
    train: tuple[list[str], np.ndarray],
    val: tuple[list[str], np.ndarray],
    test: list[str],
) -> np.ndarray:
    """Test class indices of TF-IDF (word 1-2 grams, sublinear tf, fitted on the training
    texts) + logistic regression, with C the best validation accuracy in `TFIDF_CS` (the
    smallest on a tie), refitted on the training split only: the classical text baseline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(train[0])
    x_train, x_val = vectorizer.transform(train[0]), vectorizer.transform(val[0])
    best: tuple[float, LogisticRegression] | None = None
    for c in TFIDF_CS:
        model = LogisticRegression(C=c, max_iter=1000).fit(x_train, train[1])
        accuracy = float(np.mean(model.predict(x_val) == val[1]))
        if best is None or accuracy > best[0]:
            best = (accuracy, model)
    assert best is not None
    return np.asarray(best[1].predict(vectorizer.transform(test)), dtype=np.int64)


class TextClassificationEvaluate(ClassifierEvaluate[TextMeta, TextReport], TextClassification):
    def baselines(self, processed: Path, splits: tuple[str, ...]) -> dict[str, np.ndarray]:
        from seqops.data.sequences import SequenceSet

        # A text network has no kernel-only form: it learned from the training split, and
        # the baseline's penalty is chosen on the validation split.
        assert splits == ("train",), splits

        def split(name: str) -> tuple[list[str], np.ndarray]:
            texts = json.loads((processed / texts_file(name)).read_text())
            return texts, SequenceSet.load(processed / split_file(name)).labels

        train, val, test = split("train"), split("val"), split("test")
        return {"tfidf_lr": tfidf_baseline(train, val, test[0])}
