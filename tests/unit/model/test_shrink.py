"""A forecaster's weight against the drift forecast (`train.forecast_shrink`): fitted on the
validation windows after training, kept in the checkpoint and the ONNX graph, and 0 meaning
seasonal naive with drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from seqops import onnx_contract as contract
from seqops.config import Config, parse_config
from seqops.data.series import Series
from seqops.data.windows import ForecastSpec
from seqops.layout import Layout
from seqops.model.network import SequenceNet
from seqops.model.objectives import shrink_weight
from seqops.model.runtime import load_network
from seqops.model.training import fit_final
from seqops.onnx_export import export_onnx
from seqops.stages.prepare import write
from seqops.stages.train import _path_weights
from seqops.tasks import read_meta
from seqops.tasks.forecasting.backtest import model_forecast
from seqops.tasks.forecasting.task import SERIES_FILE, ForecastMeta
from seqops.tasks.parts.prepare import get_prepare

HORIZON = 3


def _config(path: Path, shrink: bool = True) -> Config:
    return parse_config(
        {
            "data": {
                "task": "forecasting",
                "dataset": None,
                "path": str(path),
                "time_column": "month",
                "forecast": {
                    "lookback": 12,
                    "horizon": HORIZON,
                    "differencing": "seasonal",
                },
            },
            "model": {"cell": "gru", "hidden_size": 4, "num_layers": 1, "bidirectional": False},
            "train": {
                "forecast_shrink": shrink,
                "max_epochs": 3,
                "batch_size": 16,
                "epoch_examples": 0,
                "threads": 1,
            },
            "tune": {"enabled": False},
            "release": {"metric": "test/rmse", "max_metric": 10.0},
        }
    )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Config, ForecastMeta]:
    """A seasonal series with noise a few epochs of a tiny GRU cannot predict."""
    root = tmp_path_factory.mktemp("shrink")
    t = np.arange(180)
    rng = np.random.default_rng(0)
    y = 10 + 0.05 * t + np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, t.size)
    path = root / "series.csv"
    months = pd.date_range("2000-01-01", periods=t.size, freq="MS")
    pd.DataFrame({"month": months, "y": y}).to_csv(path, index=False)
    cfg = _config(path)
    layout = Layout(root)
    write(get_prepare("forecasting").prepare(cfg.data, seed=0), layout)
    meta = read_meta(layout.processed_meta)
    assert isinstance(meta, ForecastMeta)
    return layout.processed, cfg, meta


def _validation(processed: Path, meta: ForecastMeta) -> tuple[ForecastSpec, np.ndarray, list[int]]:
    values = Series.load(processed / SERIES_FILE, meta.freq).values
    spec = ForecastSpec.from_dict(meta.forecast)
    val = list(range(meta.cuts.val_start, meta.cuts.test_start - HORIZON + 1))
    return spec, values, val


def test_the_weight_minimises_the_validation_level_error_within_0_and_1(
    prepared: tuple[Path, Config, ForecastMeta], tmp_path: Path
) -> None:
    processed, cfg, meta = prepared
    result = fit_final(cfg, processed, tmp_path, progress_bar=False)
    net, _ = load_network(result.best_checkpoint)  # what export reads: the weight is saved
    assert isinstance(net, SequenceNet)
    weight = net.forecast_scale.item()
    assert 0.0 <= weight < 1.0  # three epochs of a 4-unit GRU lose to the drift forecast
    assert weight == result.model.net.forecast_scale.item()
    assert _path_weights(result.model) == {"train/forecast_weight": weight}  # MLflow
    spec, values, val = _validation(processed, meta)
    actual = np.stack([values[o : o + HORIZON][:, spec.target_index] for o in val])

    def sse(w: float) -> float:
        with torch.no_grad():
            net.forecast_scale.fill_(w)
        return float(((model_forecast(net, spec, values, val) - actual) ** 2).sum())

    best = sse(weight)
    assert all(best <= sse(w) + 1e-6 for w in np.linspace(0.0, 1.0, 21))


def test_the_weight_is_least_squares_clipped_to_0_and_1() -> None:
    actual = np.array([1.0, -2.0, 0.5])
    assert shrink_weight(2 * actual, actual) == pytest.approx(0.5)
    rng = np.random.default_rng(1)
    network = rng.normal(size=(40, 3, 2))
    found = rng.normal(size=(40, 3, 2)) + 0.3 * network
    w = shrink_weight(network, found)
    assert 0.0 < w < 1.0
    grid = np.linspace(0.0, 1.0, 101)
    assert w == pytest.approx(grid[np.argmin([((g * network - found) ** 2).sum() for g in grid])],
                              abs=0.01)  # fmt: skip
    assert shrink_weight(actual, actual) == 1.0
    assert shrink_weight(0.5 * actual, actual) == 1.0  # would be 2: clipped
    assert shrink_weight(-actual, actual) == 0.0  # the network points the wrong way
    assert shrink_weight(np.zeros(3), actual) == 1.0


def test_off_the_network_is_left_alone(
    prepared: tuple[Path, Config, ForecastMeta], tmp_path: Path
) -> None:
    processed, cfg, _ = prepared
    assert cfg.data.path is not None
    off = _config(cfg.data.path, shrink=False)
    result = fit_final(off, processed, tmp_path, progress_bar=False)
    assert result.model.net.forecast_scale.item() == 1.0
    shrunk = fit_final(cfg, processed, tmp_path / "on", progress_bar=False)
    # Shrinking changes nothing but the weight: the same trained network, weight for weight.
    weights = shrunk.model.net.state_dict()
    for name, value in result.model.net.state_dict().items():
        if name != "forecast_scale":
            torch.testing.assert_close(weights[name], value, rtol=0, atol=0)


def test_weight_0_is_seasonal_naive_with_the_training_drift(
    prepared: tuple[Path, Config, ForecastMeta],
) -> None:
    processed, _, meta = prepared
    spec, values, val = _validation(processed, meta)
    torch.manual_seed(0)
    net = SequenceNet(1, 1, cell="gru", hidden_size=4, num_layers=1, horizon=HORIZON).eval()
    with torch.no_grad():
        net.forecast_scale.zero_()
    got = model_forecast(net, spec, values, val)
    drift = spec.mean[spec.target_index]  # the training split's mean seasonal difference
    naive = np.stack([values[o - 12 : o - 12 + HORIZON][:, spec.target_index] for o in val])
    np.testing.assert_allclose(got, naive + drift, rtol=1e-10)


def test_onnx_runtime_applies_the_weight(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = SequenceNet(2, 1, cell="gru", hidden_size=4, num_layers=1, horizon=HORIZON).eval()
    x = torch.randn(5, 12, 2)
    lengths = torch.full((5,), 12, dtype=torch.int64)
    with torch.no_grad():
        alone = net(x, lengths)
        net.forecast_scale.fill_(0.4)
        shrunk = net(x, lengths)
    torch.testing.assert_close(shrunk, 0.4 * alone)
    path = tmp_path / "forecast.onnx"
    shape = [contract.BATCH, HORIZON, 1]
    expected = contract.expected_shapes(contract.INPUT, 2, contract.FORECAST, shape)
    export_onnx(net, path, Config().export.opset, contract.INPUT, contract.FORECAST, expected)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {contract.INPUT: x.numpy(), contract.LENGTHS: lengths.numpy()})[0]
    np.testing.assert_allclose(got, shrunk.numpy(), atol=1e-6, rtol=1e-5)
