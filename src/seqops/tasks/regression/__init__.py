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
the splits the model learned from (train; train + val for a kernel-only model), each channel
linearly resampled to the median training length and flattened (`RidgeCV` over
`RIDGE_ALPHAS`), and scored on the same test split. The release
requires beating it and compares the candidate with the champion by a one-sided
Diebold-Mariano test on per-sequence errors.

The task is split by stage: `task` (the seam), `prepare`, `train`, `evaluate`, `serve`
(export and serving), `release`, `card`; each stage imports only its part.
"""
