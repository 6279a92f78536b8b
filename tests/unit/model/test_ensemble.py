"""`train.ensemble: N`: N seeds trained with the same params, kept and exported as one network
that averages them (class probabilities for classifiers, outputs otherwise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from seqops import onnx_contract as contract
from seqops.config import load_config
from seqops.data.sequences import SequenceSet
from seqops.data.windows import ForecastSpec
from seqops.errors import ConfigError
from seqops.layout import split_file
from seqops.model.network import EnsembleNet, SequenceNet
from seqops.model.runtime import load_network
from seqops.model.training import check_trainer, fit, fit_final
from seqops.onnx_export import check_parity, parity_batches, quantize_int8
from seqops.tasks.parts.serve import get_serve
from tests.unit.bundles import classification_meta, export, forecast_meta, predictor
from tests.unit.model.test_refit import PARAMS, TINY

#: The `processed` fixture's data: 2 features, classes "no" / "yes".
F, C = 2, 2
META = classification_meta(["a", "b"], ["no", "yes"])
CLASSIFIER = get_serve(META.task)

ENSEMBLE = {**TINY, "train.refit_max_examples": 0, "train.ensemble": 3}


def _members(seed: int = 0, n: int = 3) -> list[SequenceNet]:
    torch.manual_seed(seed)
    return [SequenceNet(F, C, hidden_size=6, bidirectional=True) for _ in range(n)]


def test_a_classifier_ensemble_averages_its_members_probabilities() -> None:
    members = [m.eval() for m in _members()]
    ensemble = EnsembleNet(members, probabilities=True).eval()
    x, lengths = torch.randn(5, 7, F), torch.tensor([7, 1, 3, 7, 5])
    with torch.no_grad():
        probs = torch.stack([torch.softmax(m(x, lengths), -1) for m in members]).mean(0)
        got = torch.softmax(ensemble(x, lengths), -1)
    torch.testing.assert_close(got, probs, atol=1e-6, rtol=0)
    assert not torch.allclose(got, torch.softmax(members[0](x, lengths), -1), atol=1e-3)


def test_a_regressor_ensemble_averages_its_members_outputs() -> None:
    members = [m.eval() for m in _members()]
    ensemble = EnsembleNet(members, probabilities=False).eval()
    x, lengths = torch.randn(4, 6, F), torch.tensor([6, 2, 6, 4])
    with torch.no_grad():
        mean = torch.stack([m(x, lengths) for m in members]).mean(0)
        torch.testing.assert_close(ensemble(x, lengths), mean)


def test_fit_final_keeps_n_seeds_as_one_checkpoint(processed: Path, tmp_path: Path) -> None:
    cfg = load_config(PARAMS, overrides=ENSEMBLE)
    result = fit_final(cfg, processed, tmp_path / "ens", progress_bar=False)
    net, hparams = load_network(result.best_checkpoint)
    assert isinstance(net, EnsembleNet) and hparams["ensemble"] == 3
    # Member i is exactly the single model trained with seed + i (so a second fit_final gives
    # the same ensemble: each member is a deterministic single fit).
    for i, member in enumerate(net.members):
        single_cfg = load_config(PARAMS, overrides={**ENSEMBLE, "train.ensemble": 1})
        single_cfg = single_cfg.model_copy(update={"seed": single_cfg.seed + i})
        single = fit(single_cfg, processed, tmp_path / f"single{i}", progress_bar=False)
        alone, _ = load_network(single.best_checkpoint)
        for (name, a), b in zip(
            member.state_dict().items(), alone.state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), name
    assert sum(p.numel() for p in result.model.parameters()) == 3 * sum(
        p.numel() for p in alone.parameters()
    )


def test_the_ensemble_exports_as_one_graph_with_parity_and_int8(
    tmp_path: Path, processed: Path
) -> None:
    test_set = SequenceSet.load(processed / split_file("test"))
    ensemble = EnsembleNet([m.eval() for m in _members(n=3)], probabilities=True).eval()
    path = tmp_path / "m.onnx"
    export(ensemble, path, META)
    graph = onnx.load(str(path))
    # One graph: 3 members × 2 layers × 2 directions of the plain LSTM op.
    assert sum(node.op_type == "LSTM" for node in graph.graph.node) == 3 * 4
    batches = parity_batches(test_set, [1, 7], long_length=36)
    result = check_parity(ensemble, predictor(path, META), batches, atol=1e-5, task=CLASSIFIER)
    assert result.passed and result.max_abs_diff <= 1e-5 and result.argmax_agreement == 1.0
    assert quantize_int8("lstm", path, tmp_path / "m.int8.onnx") is None
    assert contract.has_quantized_lstm(onnx.load(str(tmp_path / "m.int8.onnx")))


def test_a_forecasting_ensemble_exports_with_parity(tmp_path: Path, processed: Path) -> None:
    test_set = SequenceSet.load(processed / split_file("test"))
    spec = ForecastSpec(
        lookback=8, horizon=5, differencing="none", season_length=1,
        feature_names=["a", "b"], target_names=["a", "b"], mean=np.zeros(F), std=np.ones(F),
    )  # fmt: skip
    meta = forecast_meta(spec, freq=None)
    torch.manual_seed(1)
    members = [SequenceNet(F, 2, hidden_size=5, horizon=5).eval() for _ in range(2)]
    ensemble = EnsembleNet(members, probabilities=False).eval()
    path = tmp_path / "f.onnx"
    export(ensemble, path, meta)
    batches = parity_batches(test_set, [1, 7], 36)
    result = check_parity(ensemble, predictor(path, meta), batches, atol=1e-5,
                          task=get_serve(meta.task))  # fmt: skip
    assert result.passed and result.max_abs_diff <= 1e-5


def test_an_ensemble_is_refused_with_several_devices() -> None:
    cfg = load_config(PARAMS, overrides={**ENSEMBLE, "train.strategy": "ddp", "train.devices": 2})
    with pytest.raises(ConfigError, match=r"train.ensemble: 3 trains its members one after"):
        check_trainer(cfg)
