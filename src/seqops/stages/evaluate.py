"""evaluate: test-set metrics of the trained checkpoint, into reports and the training run.

    seqops evaluate [--params params.yaml]

The task (`seqops.tasks`) scores the checkpoint on the test split: `reports/metrics.json`
(numbers only; classical baselines beside the model where the task has them), per-example
predictions `reports/predictions.csv` (what the release's paired test and the model card
read), and its plots in `reports/plots/evaluate/` (one DVC output: each task writes the plots
that mean something for it). Metrics and images also go to the MLflow run of
`models/run.json`. It reads `data` of the params (forecasting: `data.forecast.interval_level`
and `interval_decays`, the level its conformal intervals are calibrated at and the candidate
weights of older validation windows).

Where the task has classical baselines, the headline numbers (`reports/metrics/evaluate.json`,
what `dvc exp show` shows) carry `beats_baseline`: 1 when the model scores better on test than
every baseline, 0 when not; and a baseline that scores better is said in words, significant
or not (`seqops.gate.baseline_sentences`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from seqops import outputs
from seqops.config import load_config
from seqops.contracts import MetricsReport
from seqops.gate import baseline_sentences, model_beats_baselines, paired_baselines
from seqops.layout import Layout
from seqops.model.runtime import use_threads
from seqops.tasks.parts.evaluate import evaluate_checkpoint


def main(params: str | Path = "params.yaml", layout: Layout | None = None) -> MetricsReport:
    import mlflow

    from seqops import tracking

    layout = layout or Layout()
    # fail early on a bad params file, as every stage does
    cfg = load_config(params)
    use_threads(cfg.train.threads)
    numbers = layout.stage_metrics("evaluate")
    tracking.preflight_run(layout.run_file)  # before anything is deleted
    outputs.remove(layout.metrics, layout.predictions, layout.evaluation_plots, numbers)
    evaluation = evaluate_checkpoint(layout.checkpoint, layout.processed, cfg.data)
    with tempfile.TemporaryDirectory() as tmp, tracking.resume_run(layout.run_file):
        mlflow.log_metrics(evaluation.logged_metrics())
        outputs.write_text(layout.predictions, evaluation.predictions_csv())
        layout.evaluation_plots.mkdir(parents=True, exist_ok=True)
        for image in evaluation.write_plots(layout.evaluation_plots, Path(tmp)):
            mlflow.log_artifact(str(image), "plots")
        said = _headline(evaluation.metrics, layout.predictions, numbers)
        evaluation.metrics.write(layout.metrics)
        mlflow.log_artifact(str(layout.metrics), "reports")
    print(evaluation.summary())
    for sentence in said:
        print(f"evaluate: {sentence}")
    return evaluation.metrics


def _headline(metrics: MetricsReport, predictions: Path, numbers: Path) -> list[str]:
    """Write the headline numbers, with `beats_baseline` where the task has baselines;
    return the sentences saying which baselines scored better than the model."""
    scores = paired_baselines(metrics, predictions)
    found = metrics.numbers()
    if scores is None:
        outputs.write_json(numbers, found)
        return []
    outputs.write_json(numbers, {**found, "beats_baseline": int(model_beats_baselines(scores))})
    return baseline_sentences(scores)
