"""`served_gap`: the verdict of a task's `served_checks` on answers in the data's units."""

from __future__ import annotations

import numpy as np
import pytest

from seqops.errors import ExportError
from seqops.onnx_contract import Tolerance
from seqops.tasks.parts.serve import served_gap


def test_a_gap_within_the_tolerance_is_reported() -> None:
    expected = np.array([10.0, 20.0])
    got = expected + np.array([0.01, -0.02])
    found = served_gap(got, expected, Tolerance(0.05), "predictions", "prediction")
    assert found == {"served_max_abs_diff": pytest.approx(0.02)}


def test_a_gap_beyond_the_tolerance_names_what_was_served_and_by_how_much() -> None:
    expected = np.array([10.0, 20.0])
    with pytest.raises(ExportError) as err:
        served_gap(expected + 0.5, expected, Tolerance(0.1, 0.0), "forecasts served", "forecast")
    assert str(err.value) == (
        "forecasts served differ from the evaluated model's by 0.5, 5 times the tolerance "
        "(atol 0.1 + rtol 0 × |forecast|): preprocessing.json does not match the model"
    )
