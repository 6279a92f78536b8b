"""`forecasting`: the next `horizon` steps of one or more series from a window of their past.

Data: one regular series, bundled (`co2`, `airline`) or a file with a time column and value
columns (`data.forecast.*`). prepare cuts it chronologically (test = the last `horizon` steps,
or `test_windows` rolling origins), fits the scaler on the training steps only and stores
windows (inputs `(lookback, F)`, targets `(horizon, K)`) plus the whole series in units
(`series.csv`, what evaluation and the baselines read). The head writes `(B, H, K)` at once;
the loss is taken on integrated levels (`seqops.model.objectives.Forecast`).

Evaluate reports MAE, RMSE, sMAPE and MASE beside the seasonal-naive and Holt-Winters
baselines, and the coverage, width and interval score of split-conformal intervals calibrated
on the validation windows (`data.forecast.interval_level`; recent windows weigh more when
validation prefers one of the `interval_decays`, tried on validation alone: `interval_check`;
the baselines' own intervals beside them). The ONNX output is `forecast` in the model's
scaled space, and the predictor turns it back into units from the raw history, with
`<target>_lower` / `<target>_upper` bounds from the half-widths the bundle carries. The
release compares candidate and champion by a one-sided Diebold-Mariano test and requires
beating seasonal naive.

The task is split by stage: `task` (the seam), `prepare`, `train`, `backtest` (the test
origins and the model's forecasts at them), `evaluate`, `serve` (export and serving),
`release`, `card`; each stage imports only its part.
"""
