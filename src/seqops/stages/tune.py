"""tune: search `tune.space` with Optuna (seeded TPE + pruning) and write the best params.

    seqops tune [--params params.yaml] [--workers N]

Every trial trains with `seqops.model.training.fit`, what the train stage runs (epochs capped
by `tune.max_epochs`), and is pruned on the per-epoch `tune.metric`. The study lives in
`tune.storage` (default: a journal file under `optuna/`, outside DVC's outputs), so a killed
run resumes: finished trials are kept and only the rest of `tune.n_trials` runs. `tune.workers`
(or `--workers N`) trains that many trials side by side in deterministic rounds, one process
and one torch thread each; with a PostgreSQL URL as `tune.storage`, `seqops tune` on several
machines shares one study. Before the search, `tune.choose` fixes a few paths by k-fold
cross-validation (`seqops.tuning.choice`; on the same workers, and again after a kill: each
training is deterministic, so the choice and the study it leads to are the same).

Writes `models/best_params.yaml` (flat dotted paths, merged over params.yaml by train),
`reports/tune.json` and the optimisation-history / importance plots; MLflow gets one parent
run per study with a nested run per trial. `tune.enabled: false` writes the base params.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from tqdm import tqdm

from seqops import credentials, outputs
from seqops.config import Config, load_config, replaced
from seqops.contracts import TuneReport, choice_lines
from seqops.errors import ConfigError, SeqopsError
from seqops.layout import Layout
from seqops.tuning import rounds
from seqops.tuning import study as studies
from seqops.tuning.study import Job, dotted_params


def setup_worker(job: Job) -> None:
    """A process working on the study: quiet logs, its torch threads, the tracking store."""
    _quiet()
    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
    if job.tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(job.tracking_uri)


def run_serial(job: Job, progress_bar: bool = False) -> None:
    """Run up to `job.n_trials` trials one after another in this process, stopping early once
    the study holds `tune.n_trials` (other machines may work on the same study)."""
    from seqops.tuning.trial import Objective  # Lightning: only where trials train

    setup_worker(job)
    study = studies.open_study(job.cfg, job.storage, job.study_name, job.worker)
    objective = Objective(job.cfg, job.processed, job.parent_run_id, job.experiment_id)
    study.optimize(
        objective,
        n_trials=job.n_trials,
        timeout=job.cfg.tune.timeout_s,
        catch=studies.TRIAL_ERRORS,
        callbacks=[optuna.study.MaxTrialsCallback(job.cfg.tune.n_trials, states=studies.FINISHED)],
        show_progress_bar=progress_bar,
    )


def _quiet() -> None:
    """One line per trial from Optuna and a banner per fit from Lightning drown the bar."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def search(job: Job, workers: int = 1, progress_bar: bool = True, pool: Any = None) -> None:
    """Run `job.n_trials` trials on the study: one after another in this process, or in
    deterministic rounds of `workers` trials side by side on `pool` (`seqops.tuning.rounds`;
    one is started here when not given)."""
    if job.n_trials == 0:
        return
    if workers == 1:
        run_serial(job, progress_bar)
        return
    if pool is None:
        with rounds.start_pool(workers) as started:
            search(job, workers, progress_bar, started)
        return
    pool_job = Job(**{**job.__dict__, "threads": 1})
    desc = f"tune ({workers} workers)"
    with tqdm(total=job.n_trials, desc=desc, disable=not progress_bar) as bar:
        rounds.run_rounds(pool_job, pool, workers, setup_worker, on_round=bar.update)


def best_params(cfg: Config, study: optuna.Study) -> dict[str, Any]:
    """The best trial's value for every searched path (base values when nothing completed)."""
    flat = cfg.to_flat_dict()
    best = {path: flat[path] for path in cfg.tune.space}
    best.update(dotted_params(study.best_params))
    return best


def tune_report(cfg: Config, tuned: optuna.Study | None, wall_s: float, **extra: Any) -> TuneReport:
    """`reports/tune.json` (docs/architecture.md, "Contracts on disk"): counts, best value,
    wall time, plus study name, storage and parent run."""
    study = tuned
    counts = (
        studies.count(study) if study else {"n_trials": 0, "complete": 0, "pruned": 0, "failed": 0}
    )
    best = study.best_trial if study and counts["complete"] else None
    epochs = sum(int(t.user_attrs.get("epochs", 0)) for t in study.trials) if study else 0
    return TuneReport(
        n_trials=counts["n_trials"],
        complete=counts["complete"],
        pruned=counts["pruned"],
        failed=counts["failed"],
        best_value=best.value if best else None,
        metric=cfg.tune.metric,
        direction=cfg.tune.goal,
        wall_s=round(wall_s, 2),
        best_trial=best.number if best else None,
        epochs=epochs,
        **extra,
    )


def _save_plot(ax_or_none: Any, path: Path, message: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if ax_or_none is None:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.text(0.5, 0.5, message, ha="center", va="center")
        ax.set_axis_off()
    else:
        fig = ax_or_none.figure
        fig.set_size_inches(8, 5)
        fig.tight_layout()
    with outputs.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


#: The tune stage's plots: file name → Optuna's matplotlib plot of a study.
PLOTS = {
    "history.png": "plot_optimization_history",
    "intermediate_values.png": "plot_intermediate_values",
    "parallel_coordinates.png": "plot_parallel_coordinate",
}


def write_plots(study: optuna.Study | None, directory: Path, seed: int) -> list[Path]:
    """Optimisation history, per-epoch intermediate values (what the pruner saw), parallel
    coordinates of the searched params, and fANOVA importances; a placeholder image saying why
    when a plot cannot be drawn."""
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization import matplotlib as vis

    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / name for name in (*PLOTS, "importance.png")]
    if study is None:
        for path in written:
            _save_plot(None, path, "tuning disabled: base params used")
        return written
    for name, plot in PLOTS.items():
        try:
            _save_plot(getattr(vis, plot)(study), directory / name)
        except (ValueError, RuntimeError) as exc:  # no trial reported what this plot needs
            _save_plot(None, directory / name, f"no {name[:-4]}: {exc}"[:80])
    try:
        evaluator = FanovaImportanceEvaluator(seed=seed)
        _save_plot(vis.plot_param_importances(study, evaluator=evaluator), written[-1])
    except (ValueError, RuntimeError) as exc:  # fewer than two completed trials
        _save_plot(None, written[-1], f"no importances: {exc}"[:80])
    return written


def _choose(cfg: Config, layout: Layout, pool: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `tune.choose` values k-fold cross-validation prefers (`seqops.tuning.choice`), on
    the pool's processes when there is one, and the per-value figures behind them."""
    if not cfg.tune.choose:
        return {}, {}
    from seqops.tuning.choice import choose

    total = sum(len(values) for values in cfg.tune.choose.values()) * cfg.tune.choose_folds
    with (
        tempfile.TemporaryDirectory(prefix="seqops-choose-") as tmp,
        tqdm(total=total, desc="tune: choose (folds)") as bar,
    ):
        chosen, report = choose(cfg, layout.processed.resolve(), Path(tmp), pool, bar.update)
    for line in choice_lines(report):
        print(f"tune: {line}")
    return chosen, report


def _parent_run(study: optuna.Study) -> str | None:
    """The study's MLflow parent run id, if it exists in the current tracking store."""
    import mlflow
    from mlflow.exceptions import MlflowException

    run_id = study.user_attrs.get(studies.PARENT_RUN_ATTR)
    if run_id is None:
        return None
    try:
        mlflow.get_run(run_id)
    except MlflowException:
        return None
    return str(run_id)


def main(
    params: str | Path = "params.yaml", layout: Layout | None = None, workers: int | None = None
) -> TuneReport:
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers}: expected at least 1")
    _quiet()
    layout = layout or Layout()
    cfg = load_config(params)
    workers = workers or cfg.tune.workers
    with contextlib.ExitStack() as stack:
        # The pool's processes import torch and Lightning while this one sets up.
        pool = (
            stack.enter_context(rounds.start_pool(workers))
            if cfg.tune.enabled and workers > 1
            else None
        )
        return _run(cfg, layout, workers, pool)


def _run(cfg: Config, layout: Layout, workers: int, pool: Any) -> TuneReport:
    import mlflow

    from seqops import tracking

    # A password in MLFLOW_TRACKING_URI, or a tracking server that does not answer, stops
    # it here, before the previous outputs go.
    if cfg.tune.enabled:
        tracking.preflight(cfg.tracking)
    else:
        tracking.resolve_uri(cfg.tracking)
    report_file = layout.tune_report
    numbers = layout.stage_metrics("tune")
    outputs.remove(layout.best_params, report_file, layout.tune_plots, numbers)
    if not cfg.tune.enabled:
        flat = cfg.to_flat_dict()
        outputs.write_yaml(layout.best_params, {p: flat[p] for p in cfg.tune.space})
        write_plots(None, layout.tune_plots, cfg.seed)
        report = tune_report(cfg, None, 0.0, enabled=False, study=None, parent_run_id=None)
        report.write(report_file, numbers)
        print("tune: disabled, wrote the base params")
        return report

    note = studies.single_device_note(cfg)
    if note:
        print(note)
    start = time.perf_counter()
    chosen, choice = _choose(cfg, layout, pool)
    cfg = replaced(cfg, chosen, "tune.choose")
    name = studies.study_name(cfg, outputs.hash_dir(layout.processed))
    spec = studies.storage_spec(cfg.tune, layout.root, name)
    study = studies.open_study(cfg, spec, name)
    orphans = studies.fail_orphans(study)
    before = studies.count(study)
    remaining = max(0, cfg.tune.n_trials - before["complete"] - before["pruned"])
    print(
        f"tune: study {name} in {credentials.mask(spec)}: {before['complete'] + before['pruned']} "
        f"finished trials kept, {len(orphans)} orphaned marked failed, {remaining} to run"
    )
    uri = tracking.use_tracking(cfg.tracking)
    resumed_run = _parent_run(study)
    with mlflow.start_run(run_id=resumed_run, run_name=name) as parent:
        study.set_user_attr(studies.PARENT_RUN_ATTR, parent.info.run_id)
        mlflow.set_tags({"seqops.stage": "tune", "optuna.study": name})
        if resumed_run is None:  # MLflow refuses to change a logged param (n_trials may grow)
            tune_params = cfg.tune.model_dump(mode="json", exclude={"space"})
            tracking.log_flat_params({f"tune.{k}": v for k, v in tune_params.items()})
        job = Job(
            cfg=cfg,
            processed=layout.processed.resolve(),
            storage=spec,
            study_name=name,
            n_trials=remaining,
            tracking_uri=uri,
            parent_run_id=parent.info.run_id,
            experiment_id=parent.info.experiment_id,
        )
        search(job, workers, pool=pool)
        wall_s = time.perf_counter() - start
        study = studies.open_study(cfg, spec, name)
        extra = {
            "study": name,
            "storage": credentials.mask(spec),
            "parent_run_id": parent.info.run_id,
            "choice": choice or None,
        }
        report = tune_report(cfg, study, wall_s, **extra)
        if not report.complete or report.best_value is None:
            raise SeqopsError(
                f"tune: no trial of study {name} completed ({report.pruned} pruned, "
                f"{report.failed} failed); see the trial errors above"
            )
        best = {**chosen, **best_params(cfg, study)}
        if choice:
            mlflow.log_dict(choice, "tune/choice.json")
        # The study's outcome as reports/tune.json tells it (pruned trials' runs end KILLED).
        mlflow.log_metrics(
            {
                "tune/best_value": report.best_value,
                "tune/wall_s": wall_s,
                "tune/complete": report.complete,
                "tune/pruned": report.pruned,
                "tune/failed": report.failed,
            }
        )
        mlflow.set_tags({f"best.{k}": str(v) for k, v in best.items()})
        outputs.write_yaml(layout.best_params, best)
        report.write(report_file, numbers)
        plots = write_plots(study, layout.tune_plots, cfg.seed)
        for artifact in (report_file, *plots, layout.best_params):
            mlflow.log_artifact(str(artifact), "tune")
    print(
        f"tune: {report.complete} complete, {report.pruned} pruned, {report.failed} "
        f"failed; best {cfg.tune.metric}={report.best_value:.4f} (trial {report.best_trial}) "
        f"in {wall_s:.1f}s; MLflow parent run {parent.info.run_id}"
    )
    return report
