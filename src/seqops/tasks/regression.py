"""`sequence_regression`: variable-length multivariate float sequences → one number each
(time-series extrinsic regression: fat content from an NIR spectrum, a death rate from three
months of case counts).

Data: a TSER set bundled in sktime's wheel (`data.dataset`: `Tecator`, `Covid3Month`; the
official train/test split kept) or a long-format file (`data.path`: id, time, features, a
numeric label column). A label that is not a finite number stops prepare naming its sequence.
A user file's test split and every validation split are random (seeded) and stratified on
target-rank bins, so each part spans the target's range like the part it is carved from.
Features are standardised per channel and the target with its mean / std, both fitted on the
training split only; the network reads and writes the standardised target (ONNX output
`prediction`, `(batch, 1)`) and the codec answers in the target's units.

Evaluate reports RMSE, MAE and R² in the target's units beside a ridge regression fitted on
the same training split (each channel linearly resampled to the median training length,
flattened; `RidgeCV` over `RIDGE_ALPHAS`) and scored on the same test split. The release
requires beating it and compares the candidate with the champion by a one-sided
Diebold-Mariano test on per-sequence errors.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import model_validator

from seqops import onnx_contract as contract
from seqops.contracts import (
    Bundle,
    Contract,
    DataReport,
    Finite,
    MetricsReport,
    Scale,
    Scaler,
)
from seqops.errors import DataError, ExportError
from seqops.layout import SPLITS, split_file
from seqops.stats import BOOTSTRAP, bootstrap_rmse
from seqops.tasks.base import (
    Check,
    Codec,
    ErrorScorer,
    Evaluation,
    Prepared,
    Quality,
    RunModel,
    Scorer,
    Task,
    beats_baseline,
    kernel_network_args,
    longest_sequence,
)
from seqops.tasks.long_format import ScaledMeta, example_frame, load_sequences

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

    from seqops.config import DataConfig, ModelConfig, TrainConfig
    from seqops.data.sequences import SequenceSet
    from seqops.model.network import SequenceNet
    from seqops.serving import Predictor

PREDICTION = "prediction"
"""The ONNX output, float32 `(batch, 1)`: the standardised target; and the answer column,
in the target's units."""

#: Most target-rank bins a random split is stratified on.
SPLIT_BINS = 10

#: RidgeCV's candidate penalties. Wide on purpose: NIR spectra want almost none (Tecator picks
#: 1e-5) and noisy count series a lot (Covid3Month picks 1e3); an edge choice is a clipped one.
RIDGE_ALPHAS = tuple(10.0**k for k in range(-6, 7))

#: What the bundled sets' labels measure (the model card's "targets").
BUNDLED_TARGETS = {
    "Tecator": "fat content (% of the meat sample)",
    "Covid3Month": "COVID-19 death rate (deaths / confirmed cases)",
}


class TargetScaler(Contract):
    """The training split's target mean and std: the network reads and writes
    `(y - mean) / std`."""

    mean: Finite
    std: Scale


class RegressionMeta(ScaledMeta):
    task: Literal["sequence_regression"] = "sequence_regression"
    input: Literal["x"] = "x"
    target: TargetScaler

    @model_validator(mode="after")
    def _one_output_per_scaled_feature(self) -> RegressionMeta:
        self.scaler.check_features(len(self.feature_names))
        if self.n_outputs != 1:
            raise ValueError(f"n_outputs = {self.n_outputs}: a regressor predicts 1 number")
        return self


class RegressionReport(DataReport):
    task: Literal["sequence_regression"] = "sequence_regression"
    target: dict[str, dict[str, float]]
    """The target's mean / std / min / max per split, in its units."""


# -- prepare ----------------------------------------------------------------------------------


def parse_targets(labels: list[str], where: str, name: Callable[[int], str]) -> np.ndarray:
    """The loaders' string labels as float64; the first one that is not a finite number is a
    DataError naming its sequence (`name(i)`)."""
    out = np.empty(len(labels), dtype=np.float64)
    for i, raw in enumerate(labels):
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataError(
                f"{where}: {name(i)} has label {raw!r}; sequence_regression needs a finite number"
            )
        out[i] = value
    return out


def target_split(
    y: np.ndarray, fraction: float, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Indices `(keep, held_out)`, `fraction` held out at random (seeded), stratified on up to
    `SPLIT_BINS` equal-count bins of the target's rank (ties broken by order, so repeated
    values such as Covid3Month's zeros still fill equal bins)."""
    from sklearn.model_selection import train_test_split

    n = len(y)
    n_held = round(fraction * n)
    if n_held < 1 or n - n_held < 2:
        raise DataError(
            f"cannot carve a {what} split of {fraction:g} from {n} sequence(s): too few "
            "(need at least 1 held out and 2 kept)"
        )
    bins = min(SPLIT_BINS, n_held, n - n_held)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(y, kind="stable")] = np.arange(n)
    keep, held = train_test_split(
        np.arange(n), test_size=n_held, stratify=rank * bins // n, random_state=seed
    )
    return np.sort(keep), np.sort(held)


def target_stats(y: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(y.mean()),
        "std": float(y.std()),
        "min": float(y.min()),
        "max": float(y.max()),
    }


def file_sequence_name(data: DataConfig) -> Callable[[int], str]:
    """`i` → the i-th sequence of a long-format file by id (`load_long_file` orders by id).
    Reads the file again, so it is only called to name a bad label."""

    def name(i: int) -> str:
        from seqops.data.sources import read_table

        assert data.path is not None
        ids = list(read_table(data.path).groupby(data.id_column, sort=True).groups)
        return f"sequence {ids[i]!r} (column {data.label_column!r})"

    return name


# -- evaluate ---------------------------------------------------------------------------------


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


# -- serving ----------------------------------------------------------------------------------


class RegressionCodec(Codec[RegressionMeta]):
    """Long-format rows (id, time, every feature) → standardised `(T, F)` sequences, exactly as
    the classifier reads them; answers one row per sequence: id and `prediction` in the
    target's units."""

    def __init__(self, bundle: Bundle[RegressionMeta]) -> None:
        self.bundle = bundle
        meta = bundle.data
        self.mean = np.asarray(meta.scaler.mean, dtype=np.float64)
        self.std = np.asarray(meta.scaler.std, dtype=np.float64)
        self.target = meta.target

    def predict(self, sequences: Sequence[np.ndarray], run: RunModel) -> np.ndarray:
        """`(N,)` predictions in the target's units of standardised sequences."""
        from seqops.serving import run_batches

        z = np.asarray(run_batches(list(sequences), run), dtype=np.float64)  # (N, 1)
        return z[:, 0] * self.target.std + self.target.mean

    def predict_frame(self, frame: pd.DataFrame, run: RunModel, where: str) -> pd.DataFrame:
        from seqops.serving import long_format_sequences

        ids, sequences = long_format_sequences(frame, self.bundle, self.mean, self.std, where)
        out = pd.DataFrame({PREDICTION: self.predict(sequences, run)})
        out.insert(0, self.bundle.id_column, ids)
        return out

    def signature(self) -> ModelSignature:
        from mlflow.models import ModelSignature
        from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

        b = self.bundle
        inputs: list[Any] = [ColSpec(AnyType(), b.id_column), ColSpec(AnyType(), b.time_column)]
        inputs += [ColSpec(DataType.double, name) for name in b.data.feature_names]
        answer: list[Any] = [ColSpec(AnyType(), b.id_column), ColSpec(DataType.double, PREDICTION)]
        return ModelSignature(Schema(inputs), Schema(answer))


# -- release ----------------------------------------------------------------------------------


def regression_scorer(requests: pd.DataFrame, actual: np.ndarray) -> ErrorScorer:
    """Per-sequence errors of a served regressor on the raw test requests (answer rows come
    back in the requests' order, the actual values' order); Diebold-Mariano."""
    return ErrorScorer(requests, [PREDICTION], actual, points="test sequences", too_few="")


# -- model card -------------------------------------------------------------------------------


def target_name(report: RegressionReport) -> str | None:
    dataset = report.source.removeprefix("sktime:")
    return BUNDLED_TARGETS.get(dataset) if report.source.startswith("sktime:") else None


# -- the task ---------------------------------------------------------------------------------


class SequenceRegression(Task[RegressionMeta, RegressionReport, MetricsReport]):
    name = "sequence_regression"
    meta_type = RegressionMeta
    data_report_type = RegressionReport
    metrics: ClassVar[frozenset[str]] = frozenset({"rmse", "mae", "r2"})
    val_metrics: ClassVar[frozenset[str]] = frozenset({"rmse", "mae", "r2"})
    output = PREDICTION
    reads = ("model.kernel_features",)
    ignored = ("train.label_smoothing",)

    def check_data(self, data: DataConfig) -> None:
        super().check_data(data)
        if data.id_column == PREDICTION:
            raise ValueError(
                f"data.id_column = {PREDICTION!r} would collide with the answer's "
                f"{PREDICTION!r} column; rename it"
            )

    def prepare(self, data: DataConfig, seed: int) -> Prepared:
        from seqops.data.scaling import ChannelScaler
        from seqops.data.sequences import SequenceSet

        raw, raw_test, source = load_sequences(data)
        if raw_test is None:
            y = parse_targets(raw.labels, source, file_sequence_name(data))
            everything = SequenceSet(raw.sequences, y)
            keep, held = target_split(y, data.test_fraction, seed, "test")
            train_all, test = everything.subset(keep), everything.subset(held)
        else:
            train_all = SequenceSet(
                raw.sequences,
                parse_targets(raw.labels, f"{source} train", lambda i: f"sequence {i}"),
            )
            test = SequenceSet(
                raw_test.sequences,
                parse_targets(raw_test.labels, f"{source} test", lambda i: f"sequence {i}"),
            )
        keep, held = target_split(train_all.labels, data.val_fraction, seed, "validation")
        train, val = train_all.subset(keep), train_all.subset(held)
        if np.ptp(train.labels) == 0:
            raise DataError(
                f"{source}: the training split's target is constant ({train.labels[0]:g}); "
                "there is nothing to learn"
            )
        scaler = ChannelScaler.fit(train.sequences)
        target = TargetScaler(mean=float(train.labels.mean()), std=float(train.labels.std()))
        parts = dict(zip(SPLITS, (train, val, test), strict=True))
        splits = {
            name: SequenceSet(
                scaler.transform(part.sequences),
                ((part.labels - target.mean) / target.std).astype(np.float32),
            )
            for name, part in parts.items()
        }
        meta = RegressionMeta(
            feature_names=raw.feature_names,
            label_names=[],
            n_outputs=1,
            max_train_length=longest_sequence(splits),
            scaler=Scaler(**scaler.to_dict()),
            target=target,
        )
        report = {"target": {name: target_stats(part.labels) for name, part in parts.items()}}
        return Prepared(splits, meta, source, report, files={})

    def network_args(
        self, meta: RegressionMeta, processed: Path, model: ModelConfig
    ) -> dict[str, Any]:
        return kernel_network_args(meta.max_train_length, model)

    def summary(self, report: RegressionReport) -> str:
        train = report.target["train"]
        return (
            f"prepare: {report.n_train} train / {report.n_val} val / {report.n_test} test "
            f"sequences, {report.n_features} features, training target mean {train['mean']:.4g} "
            f"(std {train['std']:.4g}, {train['min']:.4g} to {train['max']:.4g}) "
            f"from {report.source}"
        )

    def objective(
        self, meta: RegressionMeta, train: TrainConfig, model: ModelConfig
    ) -> dict[str, Any]:
        return {"kind": "regression", "mean": meta.target.mean, "std": meta.target.std}

    def evaluate(
        self,
        system: SequenceNet,
        processed: Path,
        meta: RegressionMeta,
        data: DataConfig | None = None,
    ) -> RegressionEvaluation:
        """The model's and ridge's test predictions in the target's units."""
        from seqops.data.sequences import SequenceSet

        train = SequenceSet.load(processed / split_file("train"))
        test = SequenceSet.load(processed / split_file("test"))
        mean, std = meta.target.mean, meta.target.std
        actual = test.labels.astype(np.float64) * std + mean
        model = model_predict(system, test) * std + mean
        train_y = train.labels.astype(np.float64) * std + mean
        ridge = ridge_baseline(train.sequences, train_y, test.sequences)
        return RegressionEvaluation(actual, {"model": model, "ridge": ridge})

    def quality(self, predictor: Predictor, processed: Path) -> Quality:
        """Test RMSE in the target's units of the ONNX model."""
        from seqops.data.sequences import SequenceSet

        codec = RegressionCodec(predictor.bundle)
        test = SequenceSet.load(processed / split_file("test"))
        predicted = codec.predict(test.sequences, predictor.run)
        actual = test.labels.astype(np.float64) * codec.target.std + codec.target.mean
        rmse = float(np.sqrt(((predicted - actual) ** 2).mean()))
        return Quality("test/rmse", rmse, lower_is_better=True)

    def served_checks(
        self,
        system: SequenceNet,
        predictor: Predictor,
        processed: Path,
        tolerance: contract.Tolerance,
    ) -> dict[str, float]:
        """Raw test rows → preprocessing.json → ONNX → units against the evaluated model; the
        limit is `tolerance` on the standardised output, in units (its absolute part × target
        std, its relative part as it is)."""
        from seqops.data.sequences import SequenceSet

        codec = RegressionCodec(predictor.bundle)
        test = SequenceSet.load(processed / split_file("test"))
        expected = model_predict(system, test) * codec.target.std + codec.target.mean
        requests = example_frame(test, codec.bundle, len(test))
        served = predictor.predict_frame(requests, where="test requests")
        got = served[PREDICTION].to_numpy()
        gap = float(np.abs(got - expected).max())
        limit = tolerance.scaled(codec.target.std)
        ratio = limit.ratio(got, expected)
        if ratio > 1.0:
            raise ExportError(
                f"predictions served from raw test rows differ from the evaluated model's by "
                f"{gap:.3g}, {ratio:.3g} times the tolerance (atol {limit.atol:.3g} + rtol "
                f"{limit.rtol:g} × |prediction|): preprocessing.json does not match the model"
            )
        return {"served_max_abs_diff": gap}

    def request_example(
        self, processed: Path, bundle: Bundle[RegressionMeta], n: int
    ) -> pd.DataFrame:
        from seqops.data.sequences import SequenceSet

        return example_frame(SequenceSet.load(processed / split_file("test")), bundle, n)

    def codec(
        self, bundle: Bundle[RegressionMeta], files: dict[str, Path]
    ) -> Codec[RegressionMeta]:
        return RegressionCodec(bundle)

    def scorer(self, processed: Path, bundle: Bundle[RegressionMeta]) -> Scorer:
        from seqops.data.sequences import SequenceSet

        test = SequenceSet.load(processed / split_file("test"))
        target = bundle.data.target
        actual = test.labels.astype(np.float64) * target.std + target.mean
        requests = example_frame(test, bundle, len(test))
        return regression_scorer(requests, actual)

    def extra_checks(self, metrics: MetricsReport) -> list[Check]:
        """A model must beat ridge regression on the same split."""
        ridge = (metrics.baseline or {})["ridge"]["rmse"]
        ours = float(metrics.test["rmse"])
        return [beats_baseline("beats_baseline", ours, ridge, "ridge regression")]

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
            "the same training split (each channel resampled to the median training length).",
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
