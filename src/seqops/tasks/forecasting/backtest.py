"""The forecasting test set as evaluate, export and release read it: the prepared series,
its spec and the test origins, and a trained system's forecasts at them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seqops.tasks.forecasting.task import (
    ForecastMeta,
)

if TYPE_CHECKING:
    from seqops.data.windows import ForecastSpec
    from seqops.forecasting import ForecastTest


def forecast_test(processed: Path, meta: ForecastMeta) -> ForecastTest:
    """The prepared series, its spec and the test origins."""
    from seqops.data.series import Series
    from seqops.forecasting import ForecastTest

    spec = meta.spec
    series = Series.load(processed / meta.series_file, meta.freq)
    starts = list(range(meta.cuts.test_start, len(series) - spec.horizon + 1))
    return ForecastTest(series, spec, starts, meta.cuts.val_start)


def model_forecast(system: Any, spec: ForecastSpec, values: np.ndarray, origins: list[int]):
    """The trained system's forecasts `(N, H, K)` in units from the histories before each
    origin."""
    import torch

    system.eval()
    inputs = np.stack([spec.model_input(values[:o]) for o in origins])  # (N, L, F)
    lengths = torch.full((len(origins),), spec.lookback, dtype=torch.int64)
    with torch.no_grad():
        z = system(torch.from_numpy(inputs), lengths).numpy()
    return spec.invert(z, np.stack([spec.tail(values[:o]) for o in origins]))
