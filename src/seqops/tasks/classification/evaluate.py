"""`sequence_classification`'s evaluate part: the classifier's metrics beside MiniRocket +
ridge (`minirocket_baseline`), fitted on the splits the model learned from (`fitted_splits`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seqops.layout import split_file
from seqops.tasks.classification.task import (
    ClassificationMeta,
    ClassificationReport,
    SequenceClassification,
)
from seqops.tasks.classifier.evaluate import ClassifierEvaluate

if TYPE_CHECKING:
    from seqops.data.sequences import SequenceSet


#: MiniRocket's kernels span 9 steps: shorter sets are zero-padded to this length.
MINIROCKET_MIN_LENGTH = 9
#: Ridge penalties RidgeClassifierCV chooses from by leave-one-out on the training split (the
#: ROCKET papers' grid).
RIDGE_ALPHAS = tuple(np.logspace(-3, 3, 10).tolist())


def padded_panel(sequences: list[np.ndarray], length: int) -> np.ndarray:
    """`(N, F, length)`: each `(T_i, F)` sequence zero-padded at the end (standardised units,
    so padding is the training mean) or cut to `length`."""
    panel = np.zeros((len(sequences), sequences[0].shape[1], length))
    for i, s in enumerate(sequences):
        steps = min(len(s), length)
        panel[i, :, :steps] = s[:steps].T
    return panel


def minirocket_baseline(train: SequenceSet, test: SequenceSet) -> np.ndarray:
    """Test class indices of MiniRocket + RidgeClassifierCV fitted on `train` (Dempster et al.
    2021), the strong, cheap time-series classifier: 10k random convolution features
    (sktime's `MiniRocketMultivariate`, seeded) on sequences zero-padded to the longest
    training or test length, standardised, and a ridge classifier whose penalty leave-one-out
    picks on the training split. MiniRocket rather than ROCKET: as accurate on the UCR archive
    and about 10x faster; numba compiles its kernels on the first call in an environment
    (about 30 s, cached afterwards)."""
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sktime.transformations.rocket import MiniRocketMultivariate

    length = max(int(train.lengths.max()), int(test.lengths.max()), MINIROCKET_MIN_LENGTH)
    features = MiniRocketMultivariate(random_state=0, n_jobs=1)
    x_train = features.fit_transform(padded_panel(train.sequences, length))
    x_test = features.transform(padded_panel(test.sequences, length))
    ridge = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=RIDGE_ALPHAS))
    ridge.fit(np.asarray(x_train), train.labels)
    return np.asarray(ridge.predict(np.asarray(x_test)), dtype=np.int64)


def warm_baseline() -> None:
    """Compile MiniRocket's numba kernels into the environment's cache (`make install` calls
    this), so no pipeline run or test pays the compilation."""
    from seqops.data.sequences import SequenceSet

    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(12, 2)).astype(np.float32) for _ in range(4)]
    tiny = SequenceSet(sequences, np.array([0, 1, 0, 1], dtype=np.int64))
    minirocket_baseline(tiny, tiny)


class SequenceClassificationEvaluate(
    ClassifierEvaluate[ClassificationMeta, ClassificationReport], SequenceClassification
):
    def baselines(self, processed: Path, splits: tuple[str, ...]) -> dict[str, np.ndarray]:
        from seqops.data.sequences import SequenceSet

        train = SequenceSet.load_splits(processed, splits)
        test = SequenceSet.load(processed / split_file("test"))
        return {"minirocket": minirocket_baseline(train, test)}
