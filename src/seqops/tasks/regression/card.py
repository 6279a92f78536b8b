"""`sequence_regression`'s model-card part."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from seqops.contracts import (
    MetricsReport,
)
from seqops.stats import BOOTSTRAP, bootstrap_rmse
from seqops.tasks.parts.card import CardTask
from seqops.tasks.regression.task import (
    BUNDLED_TARGETS,
    RegressionMeta,
    RegressionReport,
    SequenceRegression,
)

if TYPE_CHECKING:
    pass


def target_name(report: RegressionReport) -> str | None:
    dataset = report.source.removeprefix("sktime:")
    return BUNDLED_TARGETS.get(dataset) if report.source.startswith("sktime:") else None


class SequenceRegressionCard(
    CardTask[RegressionMeta, RegressionReport, MetricsReport], SequenceRegression
):
    def card_inputs(self, report: RegressionReport) -> str:
        return str(report.n_features)

    def card_targets(self, report: RegressionReport) -> str:
        train = report.target["train"]
        what = target_name(report) or "one number per sequence"
        return f"{what}; training range {train['min']:.4g} to {train['max']:.4g}"

    def card_data(self, report: RegressionReport) -> str:
        targets = "; ".join(
            f"{split} {s['mean']:.4g} ± {s['std']:.4g} [{s['min']:.4g}, {s['max']:.4g}]"
            for split, s in report.target.items()
        )
        return f"{super().card_data(report)}. Target mean ± std [min, max]: {targets}."

    def card_metrics(self, metrics: MetricsReport, predictions: pd.DataFrame) -> list[str]:
        """Model and ridge side by side, each RMSE with a bootstrap interval."""
        from seqops.markdown import fmt, table

        actual = predictions["actual"].to_numpy()
        rows = []
        for name, errors in (("model", metrics.test), *(metrics.baseline or {}).items()):
            low, high = bootstrap_rmse(predictions[name].to_numpy() - actual)
            rows.append(
                (name, fmt(errors["mae"]), fmt(errors["rmse"]), f"[{low:.4g}, {high:.4g}]",
                 fmt(errors["r2"]))
            )  # fmt: skip
        return [
            table(("predictor", "MAE", "RMSE", "RMSE 95 % CI", "R²"), rows),
            "",
            f"On {metrics.test.get('n')} test sequences, in the target's units; intervals by "
            f"percentile bootstrap ×{BOOTSTRAP} over sequences. Ridge regression is fitted on "
            "the splits the model learned from (each channel resampled to the median training "
            "length).",
        ]

    def card_use(self, report: RegressionReport) -> str:
        train = report.target["train"]
        what = target_name(report) or "one number"
        return (
            f"Predicts {what} from a variable-length sequence shaped like `{report.source}` "
            f"({report.n_features} standardised channels). Inputs go through "
            "`preprocessing.json` (the training split's scaler); sequences longer than the "
            "export's `max_length` are rejected, not truncated; answers come back in the "
            f"target's units. Training targets range from {train['min']:.4g} to "
            f"{train['max']:.4g}: a network does not extrapolate, so expect predictions near "
            "that range and treat inputs unlike the training sequences with suspicion. The test "
            "set is small, so read the intervals above; the model has not been checked for "
            "distribution shift or adversarial input."
        )
