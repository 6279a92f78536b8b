"""`forecasting`'s prepare part: a regular series → chronological cuts, the scaler fitted on
the training steps, and the windows of each split (design in `seqops.data.windows`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from seqops.errors import DataError
from seqops.tasks.base import Prepared
from seqops.tasks.forecasting.task import (
    SERIES_FILE,
    CutsInfo,
    Forecasting,
    ForecastMeta,
    ForecastMetrics,
    ForecastReport,
    SeriesInfo,
)
from seqops.tasks.parts.prepare import PrepareTask

if TYPE_CHECKING:
    from seqops.config import DataConfig


class ForecastingPrepare(PrepareTask[ForecastMeta, ForecastReport, ForecastMetrics], Forecasting):
    def prepare(self, data: DataConfig, seed: int) -> Prepared:
        """Load a regular series, cut it chronologically, fit the scaler on training steps
        only, and cut windows (design in `seqops.data.windows`)."""
        from seqops.data.sequences import SequenceSet
        from seqops.data.series import load_bundled_series, load_series_file, season_from_freq
        from seqops.data.windows import (
            HORIZON_COLUMN,
            cuts,
            first_non_positive,
            fit_spec,
            lag_of,
            origins,
            windows,
        )

        fc = data.forecast
        if data.dataset is not None:
            series = load_bundled_series(data.dataset, fc.gaps)
            source = f"bundled:{data.dataset}"
        else:
            assert data.path is not None
            series = load_series_file(
                data.path,
                time_column=data.time_column,
                value_columns=data.feature_columns,
                freq=fc.freq,
                gaps=fc.gaps,
                time_format=data.time_format,
            )
            source = str(data.path)
        targets = fc.target_columns or series.names
        unknown = [t for t in targets if t not in series.names]
        if unknown:
            raise DataError(
                f"data.forecast.target_columns: {unknown} not among the series' columns "
                f"{series.names}"
            )
        clash = [t for t in targets if t in (data.id_column, data.time_column, HORIZON_COLUMN)]
        if clash:
            raise DataError(
                f"target column(s) {clash} would collide with the forecast output's id, time or "
                f"{HORIZON_COLUMN!r} column; rename them"
            )
        season = fc.season_length or season_from_freq(series.freq)
        if season is None:
            raise DataError(
                f"{source}: no usual season for frequency {series.freq or 'integer steps'}; "
                "set data.forecast.season_length (1 for a series without seasonality)"
            )
        lag = lag_of(fc.differencing, season)
        cut = cuts(len(series), fc.horizon, fc.test_windows, data.val_fraction, fc.lookback + lag)
        target_values = series.values[:, [series.names.index(t) for t in targets]]
        bad = first_non_positive(target_values) if fc.transform == "log" else None
        if bad is not None:
            row, column = bad
            raise DataError(
                f"data.forecast.transform = 'log': {targets[column]!r} is "
                f"{target_values[row, column]} at {series.times[row]}; the logarithm needs "
                "positive values (use transform: none)"
            )
        spec = fit_spec(
            series.values,
            cut,
            lookback=fc.lookback,
            horizon=fc.horizon,
            differencing=fc.differencing,
            season_length=season,
            feature_names=series.names,
            target_names=list(targets),
            log=fc.transform == "log",
        )
        splits = {
            name: SequenceSet(*windows(series.values, spec, starts))
            for name, starts in origins(cut, spec).items()
        }
        meta = ForecastMeta(
            feature_names=series.names,
            label_names=[],
            n_outputs=len(spec.target_names),
            max_train_length=int(max(s.lengths.max() for s in splits.values())),
            forecast=spec.to_dict(),
            freq=series.freq,
            cuts=CutsInfo(val_start=cut.val_start, test_start=cut.test_start),
        )
        times = series.times
        info = SeriesInfo(
            n_steps=len(series),
            freq=series.freq,
            start=str(times[0]),
            end=str(times[-1]),
            train_end=str(times[cut.val_start - 1]),
            val=[str(times[cut.val_start]), str(times[cut.test_start - 1])],
            test=[str(times[cut.test_start]), str(times[-1])],
            gaps_filled=len(series.filled),
            filled=series.filled,
            targets=spec.target_names,
            lookback=spec.lookback,
            horizon=spec.horizon,
            differencing=spec.differencing,
            season_length=spec.season_length,
            log=spec.log,
        )
        files: dict[str, Callable[[Path], None]] = {SERIES_FILE: series.save}
        return Prepared(splits, meta, source, {"series": info}, files)

    def summary(self, report: ForecastReport) -> str:
        info = report.series
        return (
            f"prepare: {info.n_steps} steps of {info.targets} from {report.source} "
            f"({info.gaps_filled} gaps filled): {report.n_train} train / "
            f"{report.n_val} val / {report.n_test} test windows, test {info.test}"
            + ("; the targets' logarithm is modelled" if info.log else "")
        )
