"""`sequence_regression`'s evaluate part: RMSE, MAE and R² beside a ridge regression on
resampled sequences, and the scatter plot."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seqops.contracts import (
    MetricsReport,
)
from seqops.layout import split_file
from seqops.tasks.parts.evaluate import EvaluateTask, Evaluation
from seqops.tasks.regression.task import (
    RIDGE_ALPHAS,
    RegressionMeta,
    RegressionReport,
    SequenceRegression,
)

if TYPE_CHECKING:
    from seqops.config import DataConfig
    from seqops.data.sequences import SequenceSet
    from seqops.model.network import SequenceNet


def resample(sequences: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Each `(T_i, F)` sequence linearly interpolated to `length` steps per channel and
    flattened: `(N, length * F)`."""
    grid = np.linspace(0.0, 1.0, length)
    rows = []
    for s in sequences:
        steps = np.linspace(0.0, 1.0, len(s))
        channels = [np.interp(grid, steps, s[:, f]) for f in range(s.shape[1])]
        rows.append(np.stack(channels, axis=1).ravel())
    return np.stack(rows)


def ridge_baseline(
    train: Sequence[np.ndarray], train_y: np.ndarray, test: Sequence[np.ndarray]
) -> np.ndarray:
    """Ridge regression's test predictions, fitted on the training sequences resampled to their
    median length (`RidgeCV`: the penalty by efficient leave-one-out over `RIDGE_ALPHAS`)."""
    from sklearn.linear_model import RidgeCV

    length = max(round(float(np.median([len(s) for s in train]))), 1)
    model = RidgeCV(alphas=RIDGE_ALPHAS).fit(resample(train, length), train_y)
    return np.asarray(model.predict(resample(test, length)), dtype=np.float64)


def regression_errors(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    return {
        "rmse": float(root_mean_squared_error(actual, predicted)),
        "mae": float(mean_absolute_error(actual, predicted)),
        "r2": float(r2_score(actual, predicted)),
    }


def model_predict(system: Any, data: SequenceSet, batch_size: int = 256) -> np.ndarray:
    """A trained system's standardised predictions `(N,)` in the order of `data`."""
    import torch

    from seqops.data.batches import loader

    system.eval()
    with torch.no_grad():
        chunks = [
            system(x, lengths)[:, 0] for x, lengths, _ in loader(data, batch_size, shuffle=False)
        ]
    return torch.cat(chunks).numpy().astype(np.float64)


def scatter_png(actual: np.ndarray, predictions: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seqops import outputs

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    styles = {"model": ("tab:red", 1.0), "ridge": ("tab:gray", 0.6)}
    for name, predicted in predictions.items():
        color, alpha = styles.get(name, (None, 0.8))
        ax.scatter(actual, predicted, s=18, color=color, alpha=alpha, label=name)
    low = float(min(actual.min(), *(p.min() for p in predictions.values())))
    high = float(max(actual.max(), *(p.max() for p in predictions.values())))
    ax.plot([low, high], [low, high], color="black", lw=0.8, ls="--", label="y = x")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title(f"test set: predicted vs actual ({len(actual)} sequences)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    with outputs.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


class RegressionEvaluation(Evaluation):
    """Test predictions of the model and the ridge baseline, `(N,)` in the target's units."""

    def __init__(self, actual: np.ndarray, predictions: dict[str, np.ndarray]) -> None:
        self.actual = actual
        self.predictions = predictions
        """`model`, `ridge`."""
        test = regression_errors(actual, predictions["model"])
        baseline = {
            name: regression_errors(actual, p) for name, p in predictions.items() if name != "model"
        }
        self.metrics = MetricsReport(
            task=SequenceRegression.name,
            test={**test, "n": len(actual)},
            baseline=baseline,
            skill={f"rmse_vs_{name}": test["rmse"] / b["rmse"] for name, b in baseline.items()},
        )

    def predictions_csv(self) -> str:
        """One row per test sequence: the actual value, every predictor's, the model's error."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        names = list(self.predictions)
        writer.writerow(["index", "actual", *names, "error"])
        model = self.predictions["model"]
        for i, actual in enumerate(self.actual):
            got = [f"{self.predictions[n][i]:.6g}" for n in names]
            writer.writerow([i, f"{actual:.6g}", *got, f"{model[i] - actual:.6g}"])
        return buf.getvalue()

    def scatter_csv(self) -> str:
        """`actual,predicted` of the model (the DVC scatter plot)."""
        rows = ["actual,predicted"]
        model = self.predictions["model"]
        rows += [f"{a:.6g},{p:.6g}" for a, p in zip(self.actual, model, strict=True)]
        return "\n".join(rows) + "\n"

    def write_plots(self, plots: Path, scratch: Path) -> list[Path]:
        from seqops import outputs

        outputs.write_text(plots / "scatter.csv", self.scatter_csv())
        png = scratch / "predicted_vs_actual.png"
        scatter_png(self.actual, self.predictions, png)
        return [png]

    def logged_metrics(self) -> dict[str, float]:
        m = self.metrics
        logged = {f"test/{k}": float(v) for k, v in m.test.items() if k != "n"}
        return {**logged, **self.logged_baselines()}

    def summary(self) -> str:
        m = self.metrics
        test, ridge = m.test, (m.baseline or {})["ridge"]
        return (
            f"evaluate: test RMSE {test['rmse']:.4g}, MAE {test['mae']:.4g}, R² {test['r2']:.3f} "
            f"on {test['n']} sequences; ridge RMSE {ridge['rmse']:.4g}, R² {ridge['r2']:.3f} "
            f"(model / ridge RMSE {(m.skill or {})['rmse_vs_ridge']:.2f})"
        )


class SequenceRegressionEvaluate(
    EvaluateTask[RegressionMeta, RegressionReport, MetricsReport], SequenceRegression
):
    def evaluate(
        self,
        system: SequenceNet,
        processed: Path,
        meta: RegressionMeta,
        data: DataConfig | None = None,
    ) -> RegressionEvaluation:
        """The model's and ridge's test predictions in the target's units; ridge is fitted on
        the splits the model learned from (`fitted_splits`)."""
        from seqops.data.sequences import SequenceSet
        from seqops.model.network import fitted_splits

        train = SequenceSet.load_splits(processed, fitted_splits(system))
        test = SequenceSet.load(processed / split_file("test"))
        mean, std = meta.target.mean, meta.target.std
        actual = test.labels.astype(np.float64) * std + mean
        model = model_predict(system, test) * std + mean
        train_y = train.labels.astype(np.float64) * std + mean
        ridge = ridge_baseline(train.sequences, train_y, test.sequences)
        return RegressionEvaluation(actual, {"model": model, "ridge": ridge})
