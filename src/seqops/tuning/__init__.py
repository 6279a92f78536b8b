"""Hyperparameter search behind the tune stage: the study (name, storage, sampler, pruner) in
`study.py` and one trial (sample, train with pruning, track in MLflow) in `trial.py`.

`rounds.py` runs `tune.workers` trials side by side, deterministically. Run it through the
stage: `seqops tune [--workers N]` (see `seqops.stages.tune`).
"""
