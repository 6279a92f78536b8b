"""prepare: raw sequences → standardised train / val / test splits in `data/processed/`.

    seqops prepare [--params params.yaml]

Bundled UEA sets keep their official train/test split; a user file gets a stratified test
split. Validation is carved from train (stratified, seeded). The scaler is fitted on the
training split only. Writes `data/processed/{train,val,test}.npz`, `preprocessing.json` and
`reports/data.json`.

`data.task: forecasting` reads one regular series (bundled `co2` / `airline`, or a file
with a time column and value columns), cuts it chronologically (test = the last `horizon`
steps, or `test_windows` rolling origins), fits the scaler on the training steps only and
stores windows (inputs `(lookback, F)`, targets `(horizon, K)`) in the same `.npz` form, plus
the whole series in original units (`series.csv`, what evaluation and baselines read).

`data.task: text_classification` reads raw labelled text (`data.path`, optional
`data.val_path` / `data.test_path`), fits the tokenizer on the training split only and stores
token ids in the same `.npz` form, plus `tokenizer.json` and the raw test texts
(`test.texts.json`, what the release stage scores both registered models on).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seqops import outputs
from seqops.config import DataConfig, load_config
from seqops.data.scaling import ChannelScaler
from seqops.data.sequences import SequenceSet
from seqops.data.series import Series, load_bundled_series, load_series_file, season_from_freq
from seqops.data.sources import RawSequences, load_bundled, load_long_file
from seqops.data.splits import stratified_split
from seqops.data.windows import (
    HORIZON_COLUMN,
    Cuts,
    ForecastSpec,
    cuts,
    fit_spec,
    lag_of,
    origins,
    windows,
)
from seqops.errors import DataError
from seqops.layout import Layout

if TYPE_CHECKING:
    from tokenizers import Tokenizer

SPLITS = ("train", "val", "test")
TEST_TEXTS_FILE = "test.texts.json"
SERIES_FILE = "series.csv"


@dataclass(frozen=True)
class Prepared:
    splits: dict[str, SequenceSet]
    label_names: list[str]
    feature_names: list[str]
    scaler: ChannelScaler | None
    source: str
    tokenizer: Tokenizer | None = None
    """Text only: fitted on the training split."""
    test_texts: list[str] | None = None
    """Text only: the raw test texts, in the order of the test split."""
    text_column: str = "text"
    series: Series | None = None
    """Forecasting only: the whole (regularised) series in original units."""
    forecast: ForecastSpec | None = None
    """Forecasting only: windows, differencing and the scaler fitted on training steps."""
    cuts: Cuts | None = None

    def preprocessing(self) -> dict[str, Any]:
        """What turns raw input into model input; export copies it into the ONNX bundle."""
        max_train_length = int(max(s.lengths.max() for s in self.splits.values()))
        if self.forecast is not None:
            assert self.series is not None and self.cuts is not None
            return {
                "task": "forecasting",
                "input": "x",
                "feature_names": self.feature_names,
                "label_names": [],
                "forecast": self.forecast.to_dict(),
                "freq": self.series.freq,
                "cuts": {"val_start": self.cuts.val_start, "test_start": self.cuts.test_start},
                "series_file": SERIES_FILE,
                "max_train_length": max_train_length,
            }
        if self.tokenizer is not None:
            from seqops.data.text import TOKENIZER_FILE, TextEncoder

            encoder = TextEncoder(self.tokenizer)
            return {
                "task": "text_classification",
                "input": "tokens",
                "feature_names": [],
                "label_names": self.label_names,
                "tokenizer": TOKENIZER_FILE,
                "vocab_size": encoder.vocab_size,
                "max_len": encoder.max_len,
                "text_column": self.text_column,
                "max_train_length": max_train_length,
            }
        assert self.scaler is not None
        return {
            "task": "sequence_classification",
            "input": "x",
            "feature_names": self.feature_names,
            "label_names": self.label_names,
            "scaler": self.scaler.to_dict(),
            "max_train_length": max_train_length,
        }


def _encode_labels(raw: list[str], names: list[str], where: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(raw) - set(index))
    if unknown:
        raise DataError(f"{where}: label(s) {unknown} never appear in the training split")
    return np.array([index[v] for v in raw], dtype=np.int64)


def _check_nonempty(raw: RawSequences, where: str) -> None:
    if not raw.sequences:
        raise DataError(f"{where}: no sequences")
    for i, s in enumerate(raw.sequences):
        if len(s) == 0:
            raise DataError(f"{where}: sequence {i} has no steps")
        if not np.isfinite(s).all():
            raise DataError(f"{where}: sequence {i} holds NaN or infinite values")


def prepare_text(cfg: DataConfig, seed: int) -> Prepared:
    """Read labelled text, split, fit the tokenizer on train, encode every split."""
    from seqops.data.text import TextEncoder, read_labelled_text, train_tokenizer

    assert cfg.path is not None
    texts, labels = read_labelled_text(cfg.path, cfg.text_column, cfg.label_column)
    names = sorted(set(labels))
    if len(names) < 2:
        raise DataError(
            f"{cfg.path}: {cfg.label_column!r} has one class ({names}); need at least 2"
        )
    parts: dict[str, tuple[list[str], np.ndarray]] = {}
    rest = (texts, _encode_labels(labels, names, str(cfg.path)))
    for split, path, fraction in (
        ("test", cfg.test_path, cfg.test_fraction),
        ("val", cfg.val_path, cfg.val_fraction),
    ):
        if path is not None:
            t, raw = read_labelled_text(path, cfg.text_column, cfg.label_column)
            parts[split] = (t, _encode_labels(raw, names, str(path)))
        else:
            what = "validation" if split == "val" else split
            keep, held = stratified_split(rest[1], fraction, seed, names=names, what=what)
            parts[split] = ([rest[0][i] for i in held], rest[1][held])
            rest = ([rest[0][i] for i in keep], rest[1][keep])
    parts["train"] = rest
    tok = cfg.tokenizer
    tokenizer = train_tokenizer(
        parts["train"][0],
        kind=tok.kind,
        normalization=tok.normalization,
        lowercase=tok.lowercase,
        vocab_size=tok.vocab_size,
        min_frequency=tok.min_frequency,
        max_len=tok.max_len,
    )
    encoder = TextEncoder(tokenizer)
    splits = {
        name: SequenceSet(encoder.encode(parts[name][0], where=f"{name} split"), parts[name][1])
        for name in SPLITS
    }
    return Prepared(
        splits,
        names,
        [],
        None,
        str(cfg.path),
        tokenizer=tokenizer,
        test_texts=parts["test"][0],
        text_column=cfg.text_column,
    )


def prepare_forecast(cfg: DataConfig) -> Prepared:
    """Load a regular series, cut it chronologically, fit the scaler on training steps only,
    and cut windows (design in `seqops.data.windows`)."""
    fc = cfg.forecast
    if cfg.dataset is not None:
        series = load_bundled_series(cfg.dataset, fc.gaps)
        source = f"bundled:{cfg.dataset}"
    else:
        assert cfg.path is not None
        series = load_series_file(
            cfg.path,
            time_column=cfg.time_column,
            value_columns=cfg.feature_columns,
            freq=fc.freq,
            gaps=fc.gaps,
        )
        source = str(cfg.path)
    targets = fc.target_columns or series.names
    unknown = [t for t in targets if t not in series.names]
    if unknown:
        raise DataError(
            f"data.forecast.target_columns: {unknown} not among the series' columns {series.names}"
        )
    clash = [t for t in targets if t in (cfg.id_column, cfg.time_column, HORIZON_COLUMN)]
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
    cut = cuts(len(series), fc.horizon, fc.test_windows, cfg.val_fraction, fc.lookback + lag)
    spec = fit_spec(
        series.values,
        cut,
        lookback=fc.lookback,
        horizon=fc.horizon,
        differencing=fc.differencing,
        season_length=season,
        feature_names=series.names,
        target_names=list(targets),
    )
    splits = {
        name: SequenceSet(*windows(series.values, spec, starts))
        for name, starts in origins(cut, spec).items()
    }
    return Prepared(splits, [], series.names, None, source, series=series, forecast=spec, cuts=cut)


def prepare(cfg: DataConfig, seed: int) -> Prepared:
    """Load, split and scale; raises DataError naming the file and problem."""
    if cfg.task == "text_classification":
        return prepare_text(cfg, seed)
    if cfg.task == "forecasting":
        return prepare_forecast(cfg)
    if cfg.dataset is not None:
        train_raw = load_bundled(cfg.dataset, "train")
        test_raw = load_bundled(cfg.dataset, "test")
        source = f"sktime:{cfg.dataset}"
        _check_nonempty(train_raw, source)
        _check_nonempty(test_raw, source)
        names = sorted(set(train_raw.labels))
        train_all = SequenceSet(
            train_raw.sequences, _encode_labels(train_raw.labels, names, source)
        )
        test = SequenceSet(test_raw.sequences, _encode_labels(test_raw.labels, names, source))
        features = train_raw.feature_names
    else:
        assert cfg.path is not None
        raw = load_long_file(
            cfg.path,
            id_column=cfg.id_column,
            time_column=cfg.time_column,
            label_column=cfg.label_column,
            feature_columns=cfg.feature_columns,
        )
        source = str(cfg.path)
        _check_nonempty(raw, source)
        names = sorted(set(raw.labels))
        everything = SequenceSet(raw.sequences, _encode_labels(raw.labels, names, source))
        keep, held = stratified_split(
            everything.labels, cfg.test_fraction, seed, names=names, what="test"
        )
        train_all, test = everything.subset(keep), everything.subset(held)
        features = raw.feature_names
    if len(names) < 2:
        raise DataError(f"{source}: {cfg.label_column!r} has one class ({names}); need at least 2")
    keep, held = stratified_split(
        train_all.labels, cfg.val_fraction, seed, names=names, what="validation"
    )
    train, val = train_all.subset(keep), train_all.subset(held)
    scaler = ChannelScaler.fit(train.sequences)
    splits = {
        name: SequenceSet(scaler.transform(part.sequences), part.labels)
        for name, part in zip(SPLITS, (train, val, test), strict=True)
    }
    return Prepared(splits, names, features, scaler, source)


def data_report(prepared: Prepared, data_hash: str) -> dict[str, Any]:
    report: dict[str, Any] = {f"n_{name}": len(s) for name, s in prepared.splits.items()}
    report["n_features"] = len(prepared.feature_names)
    if prepared.tokenizer is not None:
        report["vocab_size"] = int(prepared.tokenizer.get_vocab_size())
        unknown = sum(int((s == 1).sum()) for s in prepared.splits["test"].sequences)
        total = sum(len(s) for s in prepared.splits["test"].sequences)
        report["test_unknown_token_rate"] = unknown / total
    report["source"] = prepared.source
    report["data_hash"] = data_hash
    report["length"] = {
        name: {
            "min": int(s.lengths.min()),
            "median": float(np.median(s.lengths)),
            "max": int(s.lengths.max()),
        }
        for name, s in prepared.splits.items()
    }
    if prepared.series is not None:
        assert prepared.forecast is not None and prepared.cuts is not None
        times, cut = prepared.series.times, prepared.cuts
        report["series"] = {
            "n_steps": len(prepared.series),
            "freq": prepared.series.freq,
            "start": str(times[0]),
            "end": str(times[-1]),
            "train_end": str(times[cut.val_start - 1]),
            "val": [str(times[cut.val_start]), str(times[cut.test_start - 1])],
            "test": [str(times[cut.test_start]), str(times[-1])],
            "gaps_filled": len(prepared.series.filled),
            "filled": prepared.series.filled,
            "targets": prepared.forecast.target_names,
            "lookback": prepared.forecast.lookback,
            "horizon": prepared.forecast.horizon,
            "differencing": prepared.forecast.differencing,
            "season_length": prepared.forecast.season_length,
        }
        return report
    report["n_classes"] = len(prepared.label_names)
    report["class_counts"] = {
        name: {
            prepared.label_names[c]: int(n)
            for c, n in zip(*np.unique(s.labels, return_counts=True), strict=True)
        }
        for name, s in prepared.splits.items()
    }
    return report


def hash_dir(path: Path) -> str:
    """sha256 over the files of a directory (names and bytes), order-independent."""
    digest = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(f.name.encode())
        digest.update(hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()


def write(prepared: Prepared, layout: Layout) -> dict[str, Any]:
    with outputs.atomic_dir(layout.processed) as tmp:
        for name, split in prepared.splits.items():
            split.save(tmp / f"{name}.npz")
        (tmp / "preprocessing.json").write_text(json.dumps(prepared.preprocessing(), indent=2))
        if prepared.series is not None:
            prepared.series.save(tmp / SERIES_FILE)
        if prepared.tokenizer is not None:
            from seqops.data.text import TOKENIZER_FILE

            prepared.tokenizer.save(str(tmp / TOKENIZER_FILE))
            (tmp / TEST_TEXTS_FILE).write_text(json.dumps(prepared.test_texts, ensure_ascii=False))
        data_hash = hash_dir(tmp)
    report = data_report(prepared, data_hash)
    outputs.write_json(layout.reports / "data.json", report)
    return report


def main(params: str | Path = "params.yaml", layout: Layout | None = None) -> dict[str, Any]:
    layout = layout or Layout()
    cfg = load_config(params)
    outputs.remove(layout.processed, layout.reports / "data.json")
    report = write(prepare(cfg.data, cfg.seed), layout)
    if "series" in report:
        info = report["series"]
        print(
            f"prepare: {info['n_steps']} steps of {info['targets']} from {report['source']} "
            f"({info['gaps_filled']} gaps filled): {report['n_train']} train / "
            f"{report['n_val']} val / {report['n_test']} test windows, test {info['test']}"
        )
        return report
    print(
        f"prepare: {report['n_train']} train / {report['n_val']} val / {report['n_test']} test "
        f"sequences, {report.get('vocab_size', report['n_features'])} "
        f"{'tokens' if 'vocab_size' in report else 'features'}, {report['n_classes']} classes "
        f"from {report['source']}"
    )
    return report
