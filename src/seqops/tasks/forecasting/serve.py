"""`forecasting`'s export and serving part: raw history rows in, forecasts in units with
their interval bounds out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seqops import onnx_contract as contract
from seqops.contracts import (
    Bundle,
)
from seqops.errors import DataError
from seqops.tasks.forecasting.backtest import forecast_test, model_forecast
from seqops.tasks.forecasting.task import (
    LOWER,
    UPPER,
    Forecasting,
    ForecastMeta,
    ForecastMetrics,
    ForecastReport,
)
from seqops.tasks.parts.serve import Codec, Quality, RunModel, ServeTask, served_gap

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

    from seqops.data.series import Series
    from seqops.model.network import SequenceNet
    from seqops.serving import Predictor


class ForecastCodec(Codec[ForecastMeta]):
    """History rows (time, every series, optional id) → windows; forecasts → rows in units.

    Each history must be strictly increasing in time, on the model's frequency with no missing
    step or value, and at least `lookback` (+ the differencing lag) steps long; the model reads
    its last `lookback` steps. The answer is one row per future step: id, time, `horizon`
    (1..horizon) and each target, followed by `<target>_lower` and `<target>_upper` when the
    bundle carries calibrated intervals (`ForecastMeta.interval`)."""

    def __init__(self, bundle: Bundle[ForecastMeta]) -> None:
        self.bundle = bundle
        meta = bundle.data
        self.spec = meta.spec
        self.freq = meta.freq

    def future_times(self, last: Any) -> list[Any]:
        """The `horizon` steps after `last`: ISO timestamps, or integers."""
        h = self.spec.horizon
        if self.freq is None:
            return [int(last) + i for i in range(1, h + 1)]
        steps = pd.date_range(last, periods=h + 1, freq=self.freq)[1:]
        return [t.isoformat() for t in steps]

    def groups(self, frame: pd.DataFrame, where: str) -> list[tuple[Any, np.ndarray]]:
        """Each series' id and row positions, after checking the request has rows and the
        columns the model reads. The id column is optional (absent: one series, id 0)."""
        b = self.bundle
        if frame.empty:
            raise DataError(f"{where}: no rows (expected one row per time step of the history)")
        required = [b.time_column, *self.spec.feature_names]
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise DataError(
                f"{where}: missing column(s) {missing}; the model needs {required} "
                f"(and optionally {b.id_column!r}), found {[str(c) for c in frame.columns]}"
            )
        if b.id_column not in frame.columns:
            return [(0, np.arange(len(frame)))]
        found = frame.groupby(b.id_column, sort=False).indices.items()
        return [(k.item() if isinstance(k, np.generic) else k, rows) for k, rows in found]

    def series(self, part: pd.DataFrame, label: str, min_steps: int) -> Series:
        """One series' rows as a regular series in units; DataError naming `label` for a bad
        time or value, a gap, or fewer than `min_steps` steps."""
        from seqops.data.series import parse_times, regularise
        from seqops.data.sources import numeric_columns
        from seqops.data.windows import first_non_positive

        b, spec = self.bundle, self.spec
        times = parse_times(part[b.time_column].reset_index(drop=True), label, b.time_column)
        if (self.freq is None) != (not isinstance(times, pd.DatetimeIndex)):
            kind = "timestamps" if self.freq else "integer steps"
            raise DataError(f"{label}: column {b.time_column!r} must hold {kind}")
        values = numeric_columns(part, spec.feature_names, label, gaps=True)
        series = regularise(
            times, values, spec.feature_names, self.freq, "error", label, "fill them first"
        )
        targets = series.values[:, spec.target_index]
        bad = first_non_positive(targets) if spec.log else None
        if bad is not None:
            row, column = bad
            raise DataError(
                f"{label}: {spec.target_names[column]!r} is {targets[row, column]} at "
                f"{series.times[row]}; the model forecasts its logarithm, which needs "
                "positive values"
            )
        if len(series) < min_steps:
            lag = f" + {spec.lag} for {spec.differencing} differencing" if spec.lag else ""
            raise DataError(
                f"{label}: history of {len(series)} steps is too short; the model needs at "
                f"least {spec.min_history} (lookback {spec.lookback}{lag})"
            )
        return series

    def inputs(
        self, frame: pd.DataFrame, where: str
    ) -> tuple[list[Any], list[np.ndarray], list[Any]]:
        """Series ids, their regular histories `(T, F)` in units, and each one's last time."""
        ids, histories, lasts = [], [], []
        for seq_id, rows in self.groups(frame, where):
            series = self.series(
                frame.iloc[rows], f"{where}: series {seq_id!r}", self.spec.min_history
            )
            ids.append(seq_id)
            histories.append(series.values)
            lasts.append(series.times[-1])
        return ids, histories, lasts

    def forecast(self, histories: list[np.ndarray], run: RunModel) -> np.ndarray:
        """`(N, H, K)` forecasts in the series' units from raw histories `(T_i, F)`."""
        from seqops.serving import CHUNK

        spec = self.spec
        chunks = []
        for i in range(0, len(histories), CHUNK):
            part = histories[i : i + CHUNK]
            x = np.stack([spec.model_input(h) for h in part])
            z = run(x, np.full(len(part), spec.lookback, dtype=np.int64))
            chunks.append(spec.invert(z, np.stack([spec.tail(h) for h in part])))
        return np.concatenate(chunks)

    def predict_frame(self, frame: pd.DataFrame, run: RunModel, where: str) -> pd.DataFrame:
        return self.answer(*self.inputs(frame, where), run)

    def answer(
        self, ids: list[Any], histories: list[np.ndarray], lasts: list[Any], run: RunModel
    ) -> pd.DataFrame:
        """One row per (series, future step): the forecast and its interval bounds."""
        from seqops.data.windows import HORIZON_COLUMN

        b = self.bundle
        forecasts = self.forecast(histories, run)  # (N, H, K)
        h = self.spec.horizon
        out = pd.DataFrame(
            forecasts.reshape(-1, forecasts.shape[-1]), columns=self.spec.target_names
        )
        interval = b.data.interval
        if interval is not None:
            half = np.tile(np.asarray(interval.half_width), (len(ids), 1))  # (N * H, K)
            for k, name in enumerate(self.spec.target_names):
                out[f"{name}{LOWER}"] = out[name] - half[:, k]
                out[f"{name}{UPPER}"] = out[name] + half[:, k]
        out.insert(0, HORIZON_COLUMN, np.tile(np.arange(1, h + 1), len(ids)))
        out.insert(0, b.time_column, [t for last in lasts for t in self.future_times(last)])
        out.insert(0, b.id_column, np.repeat(np.array(ids, dtype=object), h))
        return out

    def next_time(self, last: Any) -> Any:
        """The step after `last` (an integer step, or a timestamp on the model's frequency)."""
        if self.freq is None:
            return int(last) + 1
        return pd.date_range(last, periods=2, freq=self.freq)[1]

    def window_stream(
        self, frame: pd.DataFrame, run: RunModel, where: str, model: str
    ) -> pd.DataFrame:
        """Forecasts for each series' history so far, where a series whose `stream_state` is
        empty sends its whole history (at least `min_history` steps) and one with a state
        sends only the steps after it: the state holds the last `min_history` raw steps and
        the last time, all the model reads, so the answer equals a request with the whole
        history, bit for bit. The answer's `stream_state` is each series' new state."""
        from seqops.stream_serving import STATE_COLUMN, WindowLayout, stream_cells

        spec = self.spec
        layout = WindowLayout(spec.min_history, len(spec.feature_names), model)
        ids, histories, lasts = [], [], []
        for seq_id, rows in self.groups(frame, where):
            label = f"{where}: series {seq_id!r}"
            state = stream_cells(frame, rows, label)
            if state is None:  # a new stream: its whole history
                series = self.series(frame.iloc[rows], label, spec.min_history)
                history = series.values
            else:
                window, last = layout.decode(state, label)
                if (self.freq is None) != isinstance(last, int):
                    kind = "an integer step" if self.freq is None else "a timestamp"
                    raise DataError(f"{label}: {STATE_COLUMN}'s last time {last!r} is not {kind}")
                series = self.series(frame.iloc[rows], label, 1)
                expected = self.next_time(last)
                if series.times[0] != expected:
                    raise DataError(
                        f"{label}: the chunk starts at {series.times[0]}, but its stream state "
                        f"ends at {last}: send the steps from {expected} on"
                    )
                history = np.concatenate([window, series.values])
            ids.append(seq_id)
            histories.append(history)
            lasts.append(series.times[-1])
        answer = self.answer(ids, histories, lasts, run)
        states = {
            i: layout.encode(h, t.isoformat() if isinstance(t, pd.Timestamp) else int(t))
            for i, h, t in zip(ids, histories, lasts, strict=True)
        }
        return answer.assign(**{STATE_COLUMN: answer[self.bundle.id_column].map(states)})

    def signature(self) -> ModelSignature:
        from mlflow.models import ModelSignature
        from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

        from seqops.data.windows import HORIZON_COLUMN

        b = self.bundle
        history: list[Any] = [
            ColSpec(AnyType(), b.id_column, required=False),
            ColSpec(AnyType(), b.time_column),
        ]
        history += [ColSpec(DataType.double, name) for name in self.spec.feature_names]
        future: list[Any] = [
            ColSpec(AnyType(), b.id_column),
            ColSpec(AnyType(), b.time_column),
            ColSpec(DataType.long, HORIZON_COLUMN),
        ]
        future += [ColSpec(DataType.double, name) for name in self.spec.target_names]
        if b.data.interval is not None:
            future += [
                ColSpec(DataType.double, f"{name}{end}")
                for name in self.spec.target_names
                for end in (LOWER, UPPER)
            ]
        return ModelSignature(Schema(history), Schema(future))


class ForecastingServe(ServeTask[ForecastMeta, ForecastReport, ForecastMetrics], Forecasting):
    def calibrated_meta(self, meta: ForecastMeta, metrics: ForecastMetrics) -> ForecastMeta:
        """prepare's metadata with the intervals evaluate calibrated (what serving adds)."""
        interval = None if metrics.interval is None else metrics.interval.model_dump()
        return ForecastMeta.model_validate({**meta.model_dump(), "interval": interval})

    def output_shape(self, meta: ForecastMeta) -> list[str | int]:
        return [contract.BATCH, meta.spec.horizon, meta.n_outputs]

    def quality(self, predictor: Predictor, processed: Path) -> Quality:
        """Test RMSE in the series' units of the ONNX model, from the raw test histories."""
        codec = ForecastCodec(predictor.bundle)
        test = forecast_test(processed, codec.bundle.data)
        forecasts = codec.forecast(test.histories(), predictor.run)
        rmse = float(np.sqrt(((forecasts - test.actual()) ** 2).mean()))
        return Quality("test/rmse", rmse, lower_is_better=True)

    def served_checks(
        self,
        system: SequenceNet,
        predictor: Predictor,
        processed: Path,
        tolerance: contract.Tolerance,
    ) -> dict[str, float]:
        """The whole serving path (raw history rows → preprocessing.json → ONNX → units)
        against the evaluated PyTorch forecasts; raises when they differ beyond what
        `tolerance` on the scaled outputs allows once integrated and scaled back (its
        absolute part × target std × horizon, its relative part as it is)."""
        bundle: Bundle[ForecastMeta] = predictor.bundle
        test = forecast_test(processed, bundle.data)
        spec = test.spec
        expected = model_forecast(system, spec, test.series.values, test.origins)
        requests = test.history_frame(bundle.id_column, bundle.time_column)
        served = predictor.predict_frame(requests, where="test histories")
        got = served[spec.target_names].to_numpy().reshape(expected.shape)
        limit = tolerance.scaled(float(spec.std[spec.target_index].max()) * spec.horizon)
        return served_gap(
            got, expected, limit, "forecasts served from raw test histories", "forecast"
        )

    def request_example(
        self, processed: Path, bundle: Bundle[ForecastMeta], n: int
    ) -> pd.DataFrame:
        test = forecast_test(processed, bundle.data)
        requests = test.history_frame(bundle.id_column, bundle.time_column)
        return requests[requests[bundle.id_column].isin([f"seq{i}" for i in range(n)])]

    def codec(self, bundle: Bundle[ForecastMeta], files: dict[str, Path]) -> Codec[ForecastMeta]:
        return ForecastCodec(bundle)
