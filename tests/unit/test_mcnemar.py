"""The champion comparison's paired test flags only a significant loss."""

import numpy as np

from seqops.tasks.parts.release import mcnemar_regression


def test_mcnemar_flags_only_a_significant_loss() -> None:
    truth = np.ones(200, dtype=bool)
    champion = truth.copy()
    champion[:10] = False  # champion: 190/200
    worse = truth.copy()
    worse[:60] = False  # candidate: 140/200, loses 50 the champion had
    assert not mcnemar_regression(worse, champion, 0.05).passed
    slightly = truth.copy()
    slightly[:12] = False  # 188/200: within noise
    assert mcnemar_regression(slightly, champion, 0.05).passed
    better = truth.copy()  # significantly better is no regression
    assert mcnemar_regression(better, champion, 0.05).passed
