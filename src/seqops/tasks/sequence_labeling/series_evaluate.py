"""evaluate for series labeling: the trained labeler and the sliding-window baseline on the
test series.

    evaluation = evaluate_series(net, processed, meta)
    evaluation.metrics.test["segment_f1"], evaluation.predictions_csv()

The network's labels are its CRF's Viterbi path (or each step's argmax without a CRF;
`evaluate.predict_tags`), scored per step (accuracy) and per segment (`series.score_series`:
F1 of segments matched at intersection over union ≥ 0.5, the headline `segment_f1`, and
strict, exact start and end, `segment_f1_strict`), with per-label step precision, recall and
F1 and segment F1. Beside it the classical baseline `window` (`series.fit_window_baseline`:
fitted on the training series, window and majority filter chosen on the validation series,
seed `BASELINE_SEED`) scored on the same test series. `reports/predictions.csv` has one row
per test step (series id, time, gold label, the model's and the baseline's): what the
release's paired test and the model card read. Plots: per-label step F1 (model and
baseline) and the label confusion matrix over steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from seqops.layout import split_file
from seqops.tasks.parts.evaluate import Evaluation
from seqops.tasks.sequence_labeling import plots
from seqops.tasks.sequence_labeling.meta import LabelingMeta
from seqops.tasks.sequence_labeling.reports import SeriesLabelingMetrics
from seqops.tasks.sequence_labeling.series import SeriesScores, score_series

if TYPE_CHECKING:
    from torch import nn

    from seqops.data.sequences import SequenceSet

#: The baseline's name in `reports/metrics.json` and its column of `predictions.csv`.
BASELINE = "window"
#: Columns of `predictions.csv` before the baseline's.
PREDICTION_COLUMNS = ("series", "time", "actual", "model")
#: The baseline classifier's seed (evaluate has no seed of its own: the same baseline for
#: every model of the same data).
BASELINE_SEED = 0


def named(data: SequenceSet, names: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """A split's `(values, label names)` per series, as the baseline reads them."""
    table = np.asarray(names, dtype=object)
    return [(s, table[y].astype(str)) for s, y in zip(data.sequences, data.labels, strict=True)]


def baseline_labels(processed: Path, names: list[str]) -> list[np.ndarray]:
    """The window baseline's test labels: fitted on train, window and filter chosen on val."""
    from seqops.data.sequences import SequenceSet
    from seqops.tasks.sequence_labeling.series import fit_window_baseline, predict

    train, val, test = (
        SequenceSet.load(processed / split_file(split)) for split in ("train", "val", "test")
    )
    model = fit_window_baseline(named(train, names), named(val, names), seed=BASELINE_SEED)
    return predict(model, test.sequences)


def per_label(scores: SeriesScores) -> dict[str, dict[str, float]]:
    """Step precision, recall and F1 of each label, its segment F1 (IoU and strict) and its
    gold steps (`support`)."""
    return {
        label: {
            "precision": s.steps.precision,
            "recall": s.steps.recall,
            "f1": s.steps.f1,
            "segment_f1": s.overlap.f1,
            "segment_f1_strict": s.strict.f1,
            "support": float(s.steps.gold),
        }
        for label, s in scores.per_label.items()
    }


class SeriesEvaluation(Evaluation):
    """Test labels of the model and the baseline per step, and what they score."""

    def __init__(
        self,
        steps: pd.DataFrame,
        gold: list[np.ndarray],
        model: list[np.ndarray],
        baseline: list[np.ndarray],
    ) -> None:
        self.steps, self.gold, self.model, self.baseline = steps, gold, model, baseline
        self.scores, self.baseline_scores = score_series(gold, model), score_series(gold, baseline)
        ours, theirs = self.scores.metrics(), self.baseline_scores.metrics()
        self.metrics = SeriesLabelingMetrics(
            test={
                **ours,
                "n": len(gold),
                "n_steps": sum(len(g) for g in gold),
                "n_segments": self.scores.overlap.gold,
            },
            per_class=per_label(self.scores),
            baseline={BASELINE: theirs},
            skill={f"segment_f1_minus_{BASELINE}": ours["segment_f1"] - theirs["segment_f1"]},
        )

    def predictions_csv(self) -> str:
        ids, times = self.steps.columns[0], self.steps.columns[1]
        frame = pd.DataFrame(
            {
                "series": self.steps[ids],
                "time": self.steps[times],
                "actual": np.concatenate(self.gold),
                "model": np.concatenate(self.model),
                BASELINE: np.concatenate(self.baseline),
            }
        )
        return frame.to_csv(index=False, lineterminator="\n")

    def labels(self) -> list[str]:
        """Every label in gold or either prediction, sorted."""
        return sorted(self.scores.per_label.keys() | self.baseline_scores.per_label.keys())

    def write_plots(self, plots: Path, scratch: Path) -> list[Path]:
        from seqops import outputs

        outputs.write_text(plots / "confusion.csv", self.confusion_csv())
        outputs.write_text(plots / "per_label_f1.csv", self.per_label_csv())
        per_label_png, confusion = scratch / "per_label_f1.png", scratch / "confusion_matrix.png"
        self.per_label_png(per_label_png)
        self.confusion_png(confusion)
        outputs.write_bytes(plots / per_label_png.name, per_label_png.read_bytes())
        return [per_label_png, confusion]

    def confusion_csv(self) -> str:
        """One row per test step: gold label (`actual`) and the model's (`predicted`)."""
        frame = pd.DataFrame(
            {"actual": np.concatenate(self.gold), "predicted": np.concatenate(self.model)}
        )
        return frame.to_csv(index=False, lineterminator="\n")

    def step_f1(self, scores: SeriesScores) -> list[float]:
        return [
            scores.per_label[k].steps.f1 if k in scores.per_label else 0.0 for k in self.labels()
        ]

    def per_label_csv(self) -> str:
        """Step F1 per label of the model and the baseline, with the gold steps."""
        labels = self.labels()
        support = [
            self.scores.per_label[k].steps.gold if k in self.scores.per_label else 0 for k in labels
        ]
        ours, theirs = self.step_f1(self.scores), self.step_f1(self.baseline_scores)
        return plots.f1_csv("label", labels, ours, theirs, support, BASELINE)

    def per_label_png(self, path: Path) -> None:
        ours, theirs = self.step_f1(self.scores), self.step_f1(self.baseline_scores)
        plots.f1_bars_png(path, self.labels(), ours, theirs, BASELINE, "step F1 per label")

    def confusion_png(self, path: Path) -> None:
        gold, predicted = np.concatenate(self.gold).tolist(), np.concatenate(self.model).tolist()
        plots.confusion_png(path, gold, predicted, sorted(self.scores.per_label), "steps")

    def logged_metrics(self) -> dict[str, float]:
        logged = {
            f"test/{k}": float(v)
            for k, v in self.metrics.test.items()
            if k not in ("n", "n_steps", "n_segments")
        }
        return {**logged, **self.logged_baselines()}

    def summary(self) -> str:
        test, base = self.metrics.test, (self.metrics.baseline or {})[BASELINE]
        return (
            f"evaluate: test segment F1 {test['segment_f1']:.4f} (IoU >= 0.5; strict "
            f"{test['segment_f1_strict']:.4f}), step accuracy {test['step_accuracy']:.4f} on "
            f"{test['n']} series; {BASELINE} baseline segment F1 {base['segment_f1']:.4f}, step "
            f"accuracy {base['step_accuracy']:.4f}"
        )


def predict_labels(net: nn.Module, test: SequenceSet, names: list[str]) -> list[np.ndarray]:
    """The network's label names per step of each test series."""
    from seqops.tasks.sequence_labeling.evaluate import predict_tags

    table = np.asarray(names, dtype=object)
    return [table[codes].astype(str) for codes in predict_tags(net, test)]


def evaluate_series(net: nn.Module, processed: Path, meta: LabelingMeta) -> SeriesEvaluation:
    """The network's and the baseline's test labels, scored (see the module docstring)."""
    from seqops.data.sequences import SequenceSet
    from seqops.tasks.sequence_labeling.series_prepare import read_steps

    names = meta.label_names
    test = SequenceSet.load(processed / split_file("test"))
    gold = [labels for _, labels in named(test, names)]
    return SeriesEvaluation(
        read_steps(processed),
        gold,
        predict_labels(net, test, names),
        baseline_labels(processed, names),
    )
