"""Where each stage reads and writes, relative to the project root (dvc.yaml lists the same).

Every file name the stages share is declared here once. Stages take a `Layout` so tests can
run the whole pipeline inside a temporary directory. Bundle file names (`model.onnx`, ...)
are part of the exported-model contract and live in `seqops.onnx_contract`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: prepare's metadata inside `data/processed/` (the task's `DataMeta`).
PROCESSED_META = "preprocessing.json"


#: The splits prepare writes, in this order.
SPLITS = ("train", "val", "test")


def split_file(split: str) -> str:
    """A split's sequences inside `data/processed/` (`train`, `val`, `test`)."""
    return f"{split}.npz"


@dataclass(frozen=True)
class Layout:
    root: Path = Path(".")

    @property
    def processed(self) -> Path:
        return self.root / "data" / "processed"

    @property
    def processed_meta(self) -> Path:
        return self.processed / PROCESSED_META

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def plots(self) -> Path:
        return self.reports / "plots"

    @property
    def evaluation_plots(self) -> Path:
        """The evaluate stage's plots (which ones depends on the task): one DVC output."""
        return self.plots / "evaluate"

    @property
    def best_params(self) -> Path:
        return self.models / "best_params.yaml"

    @property
    def checkpoint(self) -> Path:
        return self.models / "model.ckpt"

    @property
    def run_file(self) -> Path:
        return self.models / "run.json"

    @property
    def model_card(self) -> Path:
        return self.models / "MODEL_CARD.md"

    # reports/*.json: one per stage (`seqops.contracts` types each)
    @property
    def data_report(self) -> Path:
        return self.reports / "data.json"

    @property
    def tune_report(self) -> Path:
        return self.reports / "tune.json"

    @property
    def train_report(self) -> Path:
        return self.reports / "train.json"

    @property
    def metrics(self) -> Path:
        return self.reports / "metrics.json"

    @property
    def predictions(self) -> Path:
        return self.reports / "predictions.csv"

    @property
    def export_report(self) -> Path:
        return self.reports / "export.json"

    @property
    def latency_report(self) -> Path:
        return self.reports / "latency.json"

    @property
    def release_report(self) -> Path:
        return self.reports / "release.json"

    def stage_metrics(self, stage: str) -> Path:
        """`reports/metrics/<stage>.json`: a stage's headline numbers (DVC metrics)."""
        return self.reports / "metrics" / f"{stage}.json"

    # plots
    @property
    def learning_curves(self) -> Path:
        return self.plots / "learning_curves.csv"

    @property
    def tune_plots(self) -> Path:
        """The tune stage's Optuna plots (history, importances, intermediate values, parallel
        coordinates): one DVC output."""
        return self.plots / "tune"

    @property
    def latency_plot(self) -> Path:
        return self.plots / "latency.png"
