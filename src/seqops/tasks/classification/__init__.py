"""`sequence_classification`: variable-length multivariate float sequences → one class each.

Data: a UCR/UEA set bundled in sktime's wheel (`data.dataset`, official train/test split kept)
or a long-format file (`data.path`: id, time, features, label; stratified test split).
Validation is carved from train (stratified, seeded); the scaler is fitted on the training
split only. Evaluate reports accuracy, macro-F1 and ECE with per-class precision / recall, the
confusion matrix and micro-averaged ROC / precision-recall curves, beside a classical baseline
fitted on the splits the model learned from (train; train + val for a kernel-only model,
`fitted_splits`) and scored on the same test sequences: MiniRocket features
(sktime, sequences zero-padded in standardised units) with a ridge classifier
(`minirocket_baseline`). The release compares the candidate with the champion, and with the
baseline, by McNemar's exact test on per-example correctness.

The task is split by stage: `task` (the seam), `prepare`, `train`, `evaluate`, `serve`
(export and serving), `release`, `card`; each stage imports only its part. What it shares
with the text task is in `seqops.tasks.classifier`; the long-format loading it shares with
regression in `seqops.tasks.long_format`.
"""
